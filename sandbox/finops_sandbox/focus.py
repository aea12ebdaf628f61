"""A stand-in for AWS Data Exports "FOCUS 1.2 with AWS columns" (and 1.0): Parquet or CSV files plus the
CUR 2.0-style manifest, with realistic multi-day, multi-service, multi-region, tagged hourly rows.

Costs are written as DOUBLE (as AWS does) with at most 10 decimals, so their exact value is their repr;
`expected_totals` sums them that way, independently of the pipeline.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from finops_sandbox.cur import LocalBucket, S3Bucket, _join, cur2_manifest_key

PAYER = "111122223333"
ACCOUNTS = (("210987654321", "Production"), ("345678901234", "Analytics"))
# (ServiceName, ServiceCategory, ServiceSubcategory, x_ServiceCode, SkuMeter, PricingUnit, typical hourly cost)
SERVICES = (
    ("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "AmazonEC2", "BoxUsage:m7g.large", "Hrs", 0.0816),
    ("Amazon Simple Storage Service", "Storage", "Object Storage", "AmazonS3", "TimedStorage-ByteHrs", "GB-Mo", 0.0231),
    ("Amazon Relational Database Service", "Databases", "Relational Databases", "AmazonRDS", "InstanceUsage:db.r6g.large", "Hrs", 0.2580),
    ("AWS Lambda", "Compute", "Serverless Compute", "AWSLambda", "Lambda-GB-Second", "Lambda-GB-Second", 0.0042),
)
REGIONS = (("us-east-1", "US East (N. Virginia)"), ("eu-west-1", "Europe (Ireland)"))
TEAMS = ("platform", "data", "web")

# The FOCUS 1.2 columns this stand-in writes, in AWS's order, plus its x_ columns.
COLUMNS_12 = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountQuantity", "CommitmentDiscountStatus",
    "CommitmentDiscountType", "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
    "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName",
    "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
    "SubAccountId", "SubAccountName", "SubAccountType", "Tags", "x_Discounts", "x_Operation", "x_ServiceCode",
)
MONEY = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ContractedUnitPrice", "ListUnitPrice",
         "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice",
         "PricingQuantity", "ConsumedQuantity", "CommitmentDiscountQuantity"}
TIMES = {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"}
MAPS = {"Tags", "x_Discounts", "x_CostCategories"}
# FOCUS 1.0 with AWS columns: 1.1/1.2 additions absent, SkuMeter still x_UsageType, cost categories apart.
NOT_IN_10 = {"CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity", "CommitmentDiscountUnit",
             "ServiceSubcategory", "SkuPriceDetails", "InvoiceId", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
             "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "SkuMeter"}


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def rows(billing_period: str, seed: str = "focus", days: int | None = None, hours: Sequence[int] = (0, 6, 13, 19),
         currency: str = "USD") -> list[dict[str, Any]]:
    """Hourly FOCUS 1.2 rows for `days` days of the month (all of it by default): 2 accounts x 4 services x 2 regions."""
    rng = random.Random(f"{seed}:{billing_period}")
    start = datetime.strptime(billing_period, "%Y-%m").replace(tzinfo=timezone.utc)
    end = (start + timedelta(days=32)).replace(day=1)
    count = days if days is not None else (end - start).days
    out = []
    for day in range(count):
        for hour in hours:
            charge_start = start + timedelta(days=day, hours=hour)
            for account_id, account_name in ACCOUNTS:
                for service, category, subcategory, code, meter, unit, typical in SERVICES:
                    for region, region_name in REGIONS:
                        quantity = round(rng.uniform(0.5, 4.0), 6)
                        price = typical
                        list_cost = round(quantity * price, 10)
                        billed = round(list_cost * rng.uniform(0.9, 1.0), 10)
                        team = TEAMS[rng.randrange(len(TEAMS))]
                        resource = f"arn:aws:{code.lower()}:{region}:{account_id}:res/{rng.randrange(3)}"
                        out.append({
                            "AvailabilityZone": f"{region}a", "BilledCost": billed, "BillingAccountId": PAYER,
                            "BillingAccountName": "Acme payer", "BillingAccountType": "Billing Account", "BillingCurrency": currency,
                            "BillingPeriodEnd": end, "BillingPeriodStart": start, "CapacityReservationId": None,
                            "CapacityReservationStatus": None, "ChargeCategory": "Usage", "ChargeClass": None,
                            "ChargeDescription": f"{meter} in {region}", "ChargeFrequency": "Usage-Based",
                            "ChargePeriodEnd": charge_start + timedelta(hours=1), "ChargePeriodStart": charge_start,
                            "CommitmentDiscountCategory": None, "CommitmentDiscountId": None, "CommitmentDiscountName": None,
                            "CommitmentDiscountQuantity": None, "CommitmentDiscountStatus": None, "CommitmentDiscountType": None,
                            "CommitmentDiscountUnit": None, "ConsumedQuantity": quantity, "ConsumedUnit": unit,
                            "ContractedCost": list_cost, "ContractedUnitPrice": price, "EffectiveCost": billed,
                            "InvoiceId": None, "InvoiceIssuerName": "Amazon Web Services, Inc.", "ListCost": list_cost,
                            "ListUnitPrice": price, "PricingCategory": "Standard", "PricingCurrency": currency,
                            "PricingCurrencyContractedUnitPrice": price, "PricingCurrencyEffectiveCost": billed,
                            "PricingCurrencyListUnitPrice": price, "PricingQuantity": quantity, "PricingUnit": unit,
                            "ProviderName": "AWS", "PublisherName": "Amazon Web Services, Inc.", "RegionId": region,
                            "RegionName": region_name, "ResourceId": resource, "ResourceName": None, "ResourceType": None,
                            "ServiceCategory": category, "ServiceName": service, "ServiceSubcategory": subcategory,
                            "SkuId": f"SKU{abs(hash((code, region))) % 10**8:08d}", "SkuMeter": meter, "SkuPriceDetails": None,
                            "SkuPriceId": None, "SubAccountId": account_id, "SubAccountName": account_name,
                            "SubAccountType": "Account", "Tags": {"team": team, "env": "prod" if account_name == "Production" else "dev"},
                            "x_Discounts": None, "x_Operation": "RunInstances", "x_ServiceCode": code,
                        })
    # A monthly tax line (ChargeFrequency Recurring) and a credit, as real months have.
    if out:
        out.append({**out[0], "ChargeCategory": "Tax", "BilledCost": 12.34, "EffectiveCost": 12.34, "ListCost": 12.34,
                    "ContractedCost": 12.34, "ServiceName": "Tax", "ServiceCategory": "Other", "Tags": {},
                    "ChargeDescription": "Tax for the month", "ConsumedQuantity": None, "PricingQuantity": None})
        out.append({**out[1], "ChargeCategory": "Credit", "BilledCost": -5.5, "EffectiveCost": -5.5, "ListCost": 0.0,
                    "ContractedCost": 0.0, "ChargeDescription": "Promotional credit", "Tags": {}})
    return out


def as_version(lines: Sequence[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    if version == "1.2":
        return [dict(line) for line in lines]
    out = []
    for line in lines:
        row = {k: v for k, v in line.items() if k not in NOT_IN_10}
        row["x_UsageType"] = line["SkuMeter"]
        row["x_CostCategories"] = {"business-unit": "retail"} if line["ChargeCategory"] == "Usage" else {}
        out.append(row)
    return out


def expected_totals(lines: Sequence[dict[str, Any]]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for line in lines:
        totals[line["BillingCurrency"]] = totals.get(line["BillingCurrency"], Decimal(0)) + Decimal(repr(line["BilledCost"]))
    return totals


def _type(name: str) -> pa.DataType:
    if name in MONEY:
        return pa.float64()
    if name in TIMES:
        return pa.timestamp("ms", tz="UTC")
    if name in MAPS:
        return pa.map_(pa.string(), pa.string())
    return pa.string()


def arrow_table(lines: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> pa.Table:
    names = list(columns or (lines[0].keys() if lines else COLUMNS_12))
    data = {}
    for name in names:
        values = [line.get(name) for line in lines]
        if name in MAPS:
            values = [list(v.items()) if v else ([] if v is not None else None) for v in values]
        if name in TIMES:
            values = [_ms(v) if v is not None else None for v in values]
        data[name] = pa.array(values, type=_type(name))
    return pa.table(data)


def encode(lines: Sequence[dict[str, Any]], fmt: str) -> tuple[bytes, str]:
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(arrow_table(lines), sink, compression="snappy")
        return sink.getvalue(), ".snappy.parquet"
    names = list(lines[0].keys()) if lines else list(COLUMNS_12)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(names)
    for line in lines:
        writer.writerow([_csv(line.get(n), n) for n in names])
    return gzip.compress(text.getvalue().encode()), ".csv.gz"


def _csv(value: Any, name: str) -> str:
    if value is None:
        return ""
    if name in MAPS:
        return json.dumps(value, sort_keys=True) if value else ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return repr(value) if isinstance(value, float) else str(value)


@dataclass
class Delivery:
    manifest_key: str
    data_keys: list[str]
    execution_id: str


def deliver(bucket: LocalBucket | S3Bucket, bucket_name: str, prefix: str, export: str, billing_period: str,
            lines: Sequence[dict[str, Any]], fmt: str = "parquet", files: int = 2, bodies: dict[int, bytes] | None = None) -> Delivery:
    """One delivery of a FOCUS export: data files under data/BILLING_PERIOD=..., then the manifest (data first, as AWS)."""
    execution = uuid.uuid4().hex
    chunks = [list(lines[i::files]) for i in range(files)] if lines else []
    keys = []
    for number, chunk in enumerate(chunks, start=1):
        body, extension = encode(chunk, fmt)
        if bodies and number in bodies:
            body = bodies[number]
        key = _join(prefix, export, "data", f"BILLING_PERIOD={billing_period}", f"{export}-{execution[:8]}-{number:05d}{extension}")
        bucket.put(key, body)
        keys.append(key)
    start = datetime.strptime(billing_period, "%Y-%m")
    manifest = {
        "executionId": execution, "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{PAYER}:export/{export}",
        "exportName": export, "billingPeriod": {"start": f"{start:%Y-%m-%dT00:00:00.000Z}"}, "bucket": bucket_name,
        "dataFiles": [f"s3://{bucket_name}/{k}" for k in keys], "dataFileCount": len(keys),
        "columns": [{"name": n} for n in (lines[0].keys() if lines else COLUMNS_12)],
        "deliveryTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    key = cur2_manifest_key(prefix, export, billing_period)
    bucket.put(key, json.dumps(manifest, indent=1).encode())
    return Delivery(key, keys, execution)


def write_bulk(directory: Path, billing_period: str, total_rows: int, files: int = 4, seed: int = 7) -> list[Path]:
    """A large FOCUS 1.2 month (hourly rows over 200 resources x 12 services x 3 regions) for the benchmark."""
    rng = random.Random(seed)
    start = datetime.strptime(billing_period, "%Y-%m").replace(tzinfo=timezone.utc)
    end = (start + timedelta(days=32)).replace(day=1)
    hours = int((end - start).total_seconds() // 3600)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    per_file = -(-total_rows // files)
    services = [(f"{s[0]} {i}" if i else s[0], s[1], s[3], s[4]) for i in range(3) for s in SERVICES]
    for number in range(files):
        count = min(per_file, total_rows - number * per_file)
        lines = []
        for i in range(count):
            n = number * per_file + i
            service, category, code, meter = services[n % len(services)]
            region = REGIONS[(n // 7) % 2][0]
            moment = start + timedelta(hours=(n // 97) % hours)
            billed = round(rng.uniform(0.0001, 3.0), 10)
            lines.append({
                "BilledCost": billed, "EffectiveCost": billed, "ListCost": billed, "ContractedCost": billed,
                "BillingAccountId": PAYER, "BillingAccountName": "Acme payer", "BillingCurrency": "USD",
                "BillingPeriodStart": start, "BillingPeriodEnd": end, "ChargePeriodStart": moment,
                "ChargePeriodEnd": moment + timedelta(hours=1), "ChargeCategory": "Usage", "ChargeClass": None,
                "ChargeDescription": meter, "ChargeFrequency": "Usage-Based", "InvoiceIssuerName": "Amazon Web Services, Inc.",
                "ProviderName": "AWS", "PublisherName": "Amazon Web Services, Inc.", "ServiceName": service,
                "ServiceCategory": category, "RegionId": region, "ResourceId": f"arn:aws:{code.lower()}:{region}:r/{n % 200}",
                "SkuId": f"SKU{n % 50}", "SkuMeter": meter, "PricingQuantity": 1.5, "PricingUnit": "Hrs", "ConsumedQuantity": 1.5,
                "ConsumedUnit": "Hrs", "SubAccountId": ACCOUNTS[n % 2][0], "SubAccountName": ACCOUNTS[n % 2][1],
                "Tags": {"team": TEAMS[n % 3]}, "x_ServiceCode": code, "x_Operation": "RunInstances",
            })
        path = directory / f"bulk-{number:05d}.snappy.parquet"
        pq.write_table(arrow_table(lines), path, compression="snappy")
        paths.append(path)
    return paths


# --- the demo -----------------------------------------------------------------------------------------

class AwsFocusDemo:
    """The demo's AWS FOCUS export: a payer whose Data Export "FOCUS 1.2 with AWS columns" delivers Parquet to moto's
    S3 every month of the demo's history (hourly rows: 2 accounts x 4 services x 2 regions, tagged, tax and credit),
    and the previous month re-delivered (AWS restates a closed month: the newer manifest replaces the month)."""

    BUCKET = "finops-demo-focus"
    PREFIX = "data-exports"
    EXPORT = "focus-12-daily"

    def __init__(self) -> None:
        self._moto: Any = None

    def start(self, port: int) -> None:
        from finops_sandbox.aws import MotoSandbox

        self._moto = MotoSandbox(port=port).start()

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        assert self._moto is not None, "start() first"
        return [{"key": "aws-focus-retail", "provider": "aws", "source": "focus", "name": "Retail payer (FOCUS 1.2 export)",
                 "connected_at": (now - timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ"), "account_id": PAYER,
                 "bucket": self.BUCKET, "prefix": self.PREFIX, "export_name": self.EXPORT, "endpoint_url": self._moto.url,
                 "access_key_id_env": "FINOPS_DEMO_FOCUS_ACCESS_KEY_ID", "secret_access_key_env": "FINOPS_DEMO_FOCUS_SECRET_ACCESS_KEY"}]

    def environment(self) -> dict[str, str]:
        return {"FINOPS_DEMO_FOCUS_ACCESS_KEY_ID": "sandbox-focus-key", "FINOPS_DEMO_FOCUS_SECRET_ACCESS_KEY": "sandbox-focus-secret"}

    def seed(self, config: Any, periods: list[str], today: Any) -> None:
        import boto3

        for account in config.for_source("aws", "focus"):
            settings = account.settings
            if settings.get("endpoint_url") != self._moto.url:
                continue
            client = boto3.client("s3", endpoint_url=self._moto.url, region_name="us-east-1",
                                  aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
            bucket = S3Bucket(client, settings["bucket"])
            for period in periods:
                days = (today - datetime.strptime(period, "%Y-%m").date()).days  # up to yesterday
                lines = rows(period, seed=f"demo-{account.key}", days=min(days, 31)) if days > 0 else []
                if period == periods[-2]:  # first delivered, then restated with final figures
                    deliver(bucket, settings["bucket"], settings["prefix"], settings["export_name"], period, lines)
                    lines = rows(period, seed=f"demo-{account.key}-restated", days=min(days, 31))
                deliver(bucket, settings["bucket"], settings["prefix"], settings["export_name"], period, lines)
