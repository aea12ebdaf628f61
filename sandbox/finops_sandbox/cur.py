"""CUR stand-in: Cost and Usage Report deliveries written the way AWS writes them, to moto S3 or a directory.

Line items come from sandbox/synthetic.py charges: each day's charge is split into hourly line items
of several line item types (plain usage, Savings Plan covered usage with its negation, reserved
usage, fees, tax, a credit, a refund of last month, and a type the pipeline does not know), and
written as legacy CUR (CSV gzip or zip, Parquet) or CUR 2.0 (Parquet, CSV gzip) with a manifest.
Never used for a real account.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.schema import month_bounds
from finops_sandbox.synthetic import Charge, daily_charges

FORMATS = ("legacy-csv-gz", "legacy-csv-zip", "legacy-parquet", "cur2-parquet", "cur2-csv-gz")
PRODUCT_CODES = {
    "Amazon Elastic Compute Cloud": "AmazonEC2",
    "Amazon Simple Storage Service": "AmazonS3",
    "Amazon Relational Database Service": "AmazonRDS",
    "AWS Lambda": "AWSLambda",
    "Amazon CloudFront": "AmazonCloudFront",
    "Amazon DynamoDB": "AmazonDynamoDB",
}
SERVICES = (
    ("Amazon Elastic Compute Cloud", "us-east-1", Decimal("182.40")),
    ("Amazon Simple Storage Service", "us-east-1", Decimal("23.15")),
    ("Amazon Relational Database Service", "eu-west-1", Decimal("96.70")),
    ("AWS Lambda", "us-west-2", Decimal("4.32")),
    ("Amazon CloudFront", None, Decimal("11.90")),
)
MONEY_COLUMNS = (
    "line_item_unblended_cost", "line_item_usage_amount", "pricing_public_on_demand_cost",
    "savings_plan_savings_plan_effective_cost", "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "line_item_net_unblended_cost",
)
TEXT_COLUMNS = (
    "identity_line_item_id", "identity_time_interval", "bill_invoice_id", "bill_invoicing_entity", "bill_billing_entity",
    "bill_bill_type", "bill_payer_account_id", "line_item_usage_account_id", "line_item_line_item_type",
    "line_item_product_code", "line_item_usage_type", "line_item_operation", "line_item_resource_id",
    "line_item_currency_code", "line_item_line_item_description", "line_item_legal_entity", "product_sku", "pricing_unit",
    "reservation_reservation_a_r_n", "savings_plan_savings_plan_a_r_n", "pricing_rate_code", "pricing_term",
    "pricing_public_on_demand_rate", "line_item_availability_zone", "line_item_unblended_rate",
)
# CUR 2.0 only (an export with "INCLUDE CAPACITY RESERVATION DATA").
CUR2_TEXT_COLUMNS = ("capacity_reservation_capacity_reservation_arn", "capacity_reservation_capacity_reservation_status",
                     "capacity_reservation_capacity_reservation_type")
TIME_COLUMNS = ("line_item_usage_start_date", "line_item_usage_end_date")
_LEGACY_SPECIAL = {"product_region": "product/region", "product_sku": "product/sku", "pricing_unit": "pricing/unit",
                   "pricing_public_on_demand_cost": "pricing/publicOnDemandCost"}
_LEGACY_CATEGORIES = (("identity_", "identity"), ("bill_", "bill"), ("line_item_", "lineItem"), ("product_", "product"),
                      ("pricing_", "pricing"), ("reservation_", "reservation"), ("savings_plan_", "savingsPlan"))


def legacy_header(canonical: str) -> str:
    """`line_item_unblended_cost` -> `lineItem/UnblendedCost` (reservation_a_r_n -> ReservationARN)."""
    if canonical in _LEGACY_SPECIAL:
        return _LEGACY_SPECIAL[canonical]
    for prefix, category in _LEGACY_CATEGORIES:
        if canonical.startswith(prefix):
            return f"{category}/" + "".join(p.upper() if len(p) == 1 else p.capitalize() for p in canonical[len(prefix):].split("_"))
    raise ValueError(canonical)


# --- line items ---------------------------------------------------------------------------------------

def _split(amount: Decimal, parts: int) -> list[Decimal]:
    """Split exactly: the pieces sum to `amount` to the last of its 10 decimals."""
    piece = (amount / parts).quantize(Decimal("0.0000000001"), rounding=ROUND_DOWN)
    return [piece] * (parts - 1) + [amount - piece * (parts - 1)]


def _ts(day: date, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)


def line_items(
    charges: Sequence[Charge],
    billing_period: str,
    payer_account_id: str,
    hours: Sequence[int] = (0, 9, 17),
    invoiced: bool = False,
    extras: bool = True,
) -> list[dict[str, Any]]:
    """CUR line items (canonical CUR 2.0 names, amounts as Decimal) for one billing period."""
    start, end = month_bounds(billing_period)
    lines: list[dict[str, Any]] = []
    invoice = f"INV-{billing_period}" if invoiced else None

    def base(day: date, hour: int, account_id: str, account_name: str, product: str, region: str | None) -> dict[str, Any]:
        return {
            "identity_line_item_id": uuid.uuid4().hex,
            "identity_time_interval": f"{_ts(day, hour):%Y-%m-%dT%H:%M:%SZ}/{_ts(day, hour) + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
            "bill_invoice_id": invoice, "bill_invoicing_entity": "Amazon Web Services, Inc.", "bill_billing_entity": "AWS",
            "bill_bill_type": "Anniversary", "bill_payer_account_id": payer_account_id, "bill_payer_account_name": "Sandbox payer",
            "line_item_usage_account_id": account_id, "line_item_usage_account_name": account_name,
            "line_item_usage_start_date": _ts(day, hour), "line_item_usage_end_date": _ts(day, hour) + timedelta(hours=1),
            "line_item_product_code": PRODUCT_CODES.get(product, product.replace(" ", "")), "product_product_name": product,
            "product_region": region, "line_item_currency_code": "USD", "line_item_legal_entity": "Amazon Web Services, Inc.",
            "line_item_operation": "RunInstances", "product_sku": f"SKU{zlib.crc32(product.encode()) % 10**8:08d}",
            "pricing_unit": "Hrs", "tags": {},
        }

    for index, charge in enumerate(c for c in charges if start.date() <= c.day < end.date()):
        code = PRODUCT_CODES.get(charge.service, charge.service.replace(" ", ""))
        resource = f"arn:aws:{code.lower()}:{charge.region or 'global'}:{charge.account_id}:resource/{code.lower()}-{index % 7}"
        tags = {"user:Name": f"{code.lower()}-{index % 7}", "user:team": ("platform", "data", "")[(index // 3) % 3]}
        pieces = _split(charge.amount, len(hours))
        effective = _split(charge.amortized, len(hours))
        mode = ("Usage", "SavingsPlanCoveredUsage", "DiscountedUsage")[index % 3] if extras else "Usage"
        # The unblended rate per pricing unit: each hour's cost is (to the rate's 10 decimals) rate x 1.5 units.
        rate = (charge.amount / (Decimal("1.5") * len(hours))).quantize(Decimal("0.0000000001"))
        # EC2 on-demand usage runs in a capacity reservation (ODCR): used in the first hours, unused in the last.
        reserved = extras and mode == "Usage" and code == "AmazonEC2"
        for hour, amount, amortized in zip(hours, pieces, effective):
            line = base(charge.day, hour, charge.account_id, charge.account_name, charge.service, charge.region)
            line.update({"line_item_line_item_type": mode, "line_item_usage_type": f"{code}-Usage", "line_item_resource_id": resource,
                         "line_item_usage_amount": Decimal("1.5"), "line_item_unblended_cost": amount,
                         "pricing_public_on_demand_cost": amount, "line_item_line_item_description": f"{charge.service} usage",
                         "tags": tags, "pricing_rate_code": f"{code}.RATE.{index % 3}", "pricing_public_on_demand_rate": "0.0960000000",
                         "pricing_term": "OnDemand" if mode == "Usage" else None,
                         "line_item_availability_zone": f"{charge.region}a" if charge.region else None,
                         "line_item_unblended_rate": format(rate, "f")})
            if reserved:
                unused = hour == hours[-1]
                line.update({"capacity_reservation_capacity_reservation_arn":
                             f"arn:aws:ec2:{charge.region}:{charge.account_id}:capacity-reservation/cr-{index % 2}",
                             "capacity_reservation_capacity_reservation_status": "Unused" if unused else "Used",
                             "capacity_reservation_capacity_reservation_type": "ODCR"})
                if unused:
                    line["line_item_usage_type"] = f"{code}-UnusedBox:m5.large"
            if mode == "SavingsPlanCoveredUsage":
                line["savings_plan_savings_plan_a_r_n"] = f"arn:aws:savingsplans::{payer_account_id}:savingsplan/sp-1"
                line["savings_plan_savings_plan_effective_cost"] = amortized
                negation = base(charge.day, hour, charge.account_id, charge.account_name, charge.service, charge.region)
                negation.update({"line_item_line_item_type": "SavingsPlanNegation", "line_item_usage_type": f"{code}-Usage",
                                 "line_item_resource_id": resource, "line_item_unblended_cost": -amount,
                                 "line_item_line_item_description": "Savings Plan negation", "tags": tags})
                lines.append(negation)
            elif mode == "DiscountedUsage":
                line["reservation_effective_cost"] = amortized
                line["reservation_reservation_a_r_n"] = f"arn:aws:ec2:us-east-1:{payer_account_id}:reserved-instances/ri-1"
            lines.append(line)

    if extras and lines:
        first = start.date()
        accounts = sorted({(l["line_item_usage_account_id"], l["line_item_usage_account_name"]) for l in lines})
        for account_id, account_name in accounts:
            def extra(kind: str, amount: str, day: date = first, account_id: str = account_id, account_name: str = account_name,
                      **more: Any) -> None:
                line = base(day, 0, account_id, account_name, "Amazon Elastic Compute Cloud", "us-east-1")
                line.update({"line_item_line_item_type": kind, "line_item_unblended_cost": Decimal(amount),
                             "line_item_usage_type": f"{kind}-line", "line_item_line_item_description": f"{kind} line", **more})
                lines.append(line)
            extra("Tax", "12.3400000000", product_region=None)
            extra("Credit", "-5.0000000000")
            extra("RIFee", "30.0000000000", reservation_unused_amortized_upfront_fee_for_billing_period=Decimal("1.25"),
                  reservation_reservation_a_r_n=f"arn:aws:ec2:us-east-1:{payer_account_id}:reserved-instances/ri-1",
                  reservation_unused_recurring_fee=Decimal("0.75"))
            extra("Fee", "100.0000000000", reservation_reservation_a_r_n=f"arn:aws:ec2:us-east-1:{payer_account_id}:reserved-instances/ri-1")
            extra("Refund", "-2.5000000000", day=first - timedelta(days=3))
            extra("FutureLineType", "0.4200000000")
    return lines


def billed(line: dict[str, Any]) -> Decimal:
    net = line.get("line_item_net_unblended_cost")
    return net if net is not None else line["line_item_unblended_cost"]


def expected_totals(lines: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    """The oracle: per currency, the billed amount of every line item, in Python Decimal."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        currency = line["line_item_currency_code"]
        totals[currency] = totals.get(currency, Decimal(0)) + billed(line)
    return totals


# --- file formats -------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _legacy_columns(lines: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    canonical = [*TEXT_COLUMNS, *TIME_COLUMNS, "product_product_name", "product_region", *MONEY_COLUMNS]
    tag_keys = sorted({k for l in lines for k in l.get("tags", {})})
    return canonical, tag_keys


def legacy_csv(lines: Sequence[dict[str, Any]], drop: Sequence[str] = ()) -> bytes:
    canonical, tag_keys = _legacy_columns(lines)
    canonical = [c for c in canonical if c not in drop]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([legacy_header(c) for c in canonical] + [f"resourceTags/{k}" for k in tag_keys])
    for line in lines:
        writer.writerow([_text(line.get(c)) for c in canonical] + [line.get("tags", {}).get(k, "") for k in tag_keys])
    return buffer.getvalue().encode()


def _arrow(lines: Sequence[dict[str, Any]], cur2: bool, drop: Sequence[str] = ()) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    for name in TEXT_COLUMNS:
        columns[name] = pa.array([l.get(name) for l in lines], pa.string())
    for name in TIME_COLUMNS:
        columns[name] = pa.array([l[name].replace(tzinfo=None) for l in lines], pa.timestamp("ms"))
    for name in MONEY_COLUMNS:  # AWS writes amounts as DOUBLE in Parquet
        columns[name] = pa.array([None if l.get(name) is None else float(l[name]) for l in lines], pa.float64())
    if cur2:
        for name in CUR2_TEXT_COLUMNS:
            columns[name] = pa.array([l.get(name) for l in lines], pa.string())
        columns["line_item_usage_account_name"] = pa.array([l.get("line_item_usage_account_name") for l in lines], pa.string())
        columns["bill_payer_account_name"] = pa.array([l.get("bill_payer_account_name") for l in lines], pa.string())
        columns["product_region_code"] = pa.array([l.get("product_region") for l in lines], pa.string())
        map_type = pa.map_(pa.string(), pa.string())
        columns["product"] = pa.array([[("product_name", l["product_product_name"]), ("servicecode", l["line_item_product_code"])]
                                       for l in lines], map_type)
        columns["resource_tags"] = pa.array([[(k.replace("user:", "user_").lower(), v) for k, v in l.get("tags", {}).items()]
                                             for l in lines], map_type)
        columns["cost_category"] = pa.array([[("team", "finops")] for _ in lines], map_type)
    else:
        columns["product_product_name"] = pa.array([l["product_product_name"] for l in lines], pa.string())
        columns["product_region"] = pa.array([l.get("product_region") for l in lines], pa.string())
        for key in sorted({k for l in lines for k in l.get("tags", {})}):
            name = "resource_tags_" + key.replace(":", "_").lower()
            columns[name] = pa.array([l.get("tags", {}).get(key) for l in lines], pa.string())
    return pa.table({k: v for k, v in columns.items() if k not in drop})


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    return buffer.getvalue()


def cur2_csv(lines: Sequence[dict[str, Any]], drop: Sequence[str] = ()) -> bytes:
    """CUR 2.0 CSV: snake_case headers, map columns as JSON text."""
    table = _arrow(lines, cur2=True, drop=drop)
    names = table.column_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for line in lines:
        row = []
        for name in names:
            if name == "product":
                row.append(json.dumps({"product_name": line["product_product_name"], "servicecode": line["line_item_product_code"]}))
            elif name == "resource_tags":
                row.append(json.dumps({k.replace("user:", "user_").lower(): v for k, v in line.get("tags", {}).items()}))
            elif name == "cost_category":
                row.append(json.dumps({"team": "finops"}))
            elif name == "product_region_code":
                row.append(_text(line.get("product_region")))
            else:
                row.append(_text(line.get(name)))
        writer.writerow(row)
    return buffer.getvalue().encode()


def encode(lines: Sequence[dict[str, Any]], fmt: str, drop: Sequence[str] = ()) -> tuple[bytes, str]:
    """File content and extension for one delivery file in `fmt`."""
    if fmt == "legacy-csv-gz":
        return gzip.compress(legacy_csv(lines, drop), mtime=0), ".csv.gz"
    if fmt == "legacy-csv-zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("report.csv", legacy_csv(lines, drop))
        return buffer.getvalue(), ".csv.zip"
    if fmt == "legacy-parquet":
        return parquet_bytes(_arrow(lines, cur2=False, drop=drop)), ".snappy.parquet"
    if fmt == "cur2-parquet":
        return parquet_bytes(_arrow(lines, cur2=True, drop=drop)), ".snappy.parquet"
    if fmt == "cur2-csv-gz":
        return gzip.compress(cur2_csv(lines, drop), mtime=0), ".csv.gz"
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")


# --- deliveries ---------------------------------------------------------------------------------------

class LocalBucket:
    """A directory standing in for a bucket (the synced-copy mode)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def put(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


class S3Bucket:
    def __init__(self, client: Any, bucket: str, create: bool = True):
        self.client = client
        self.bucket = bucket
        if create:
            try:
                client.create_bucket(Bucket=bucket)
            except client.exceptions.BucketAlreadyOwnedByYou:
                pass

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


@dataclass
class Delivery:
    manifest_key: str
    data_keys: list[str]
    assembly_id: str


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def legacy_manifest_key(prefix: str, report: str, billing_period: str) -> str:
    start, end = month_bounds(billing_period)
    return _join(prefix, report, f"{start:%Y%m%d}-{end:%Y%m%d}", f"{report}-Manifest.json")


def cur2_manifest_key(prefix: str, export: str, billing_period: str) -> str:
    return _join(prefix, export, "metadata", f"BILLING_PERIOD={billing_period}", f"{export}-Manifest.json")


def deliver(
    bucket: LocalBucket | S3Bucket,
    bucket_name: str,
    prefix: str,
    report: str,
    billing_period: str,
    lines: Sequence[dict[str, Any]],
    fmt: str,
    files: int = 2,
    assembly_id: str | None = None,
    drop: Sequence[str] = (),
    write_manifest: bool = True,
) -> Delivery:
    """Write one delivery of `lines` in `fmt`, split over `files` files, then its manifest (data first, as AWS does)."""
    assembly_id = assembly_id or uuid.uuid4().hex
    start, end = month_bounds(billing_period)
    chunks = [list(lines[i::files]) for i in range(files)] if lines else [[]]
    data_keys = []
    for number, chunk in enumerate(chunks, start=1):
        body, extension = encode(chunk, fmt, drop)
        if fmt.startswith("legacy"):
            if fmt == "legacy-parquet":  # legacy Parquet is written for Athena: year=/month= folders, overwritten
                key = _join(prefix, report, report, f"year={start.year}", f"month={start.month}", f"{report}-{number:05d}{extension}")
            else:  # legacy CSV: one folder per assembly, old assemblies stay beside the new one
                key = _join(prefix, report, f"{start:%Y%m%d}-{end:%Y%m%d}", assembly_id, f"{report}-{number:05d}{extension}")
        else:
            key = _join(prefix, report, "data", f"BILLING_PERIOD={billing_period}", f"{report}-{assembly_id[:8]}-{number:05d}{extension}")
        bucket.put(key, body)
        data_keys.append(key)
    if fmt.startswith("legacy"):
        manifest_key = legacy_manifest_key(prefix, report, billing_period)
        manifest = {
            "assemblyId": assembly_id, "account": lines[0]["bill_payer_account_id"] if lines else "",
            "columns": [], "charset": "UTF-8", "compression": "Parquet" if fmt == "legacy-parquet" else ("ZIP" if fmt.endswith("zip") else "GZIP"),
            "contentType": "Parquet" if fmt == "legacy-parquet" else "text/csv", "reportId": uuid.uuid5(uuid.NAMESPACE_URL, report).hex,
            "reportName": report, "billingPeriod": {"start": f"{start:%Y%m%d}T000000.000Z", "end": f"{end:%Y%m%d}T000000.000Z"},
            "bucket": bucket_name, "reportKeys": data_keys, "additionalArtifactKeys": [],
        }
    else:
        manifest_key = cur2_manifest_key(prefix, report, billing_period)
        manifest = {
            "executionId": assembly_id, "exportArn": f"arn:aws:bcm-data-exports:us-east-1:000000000000:export/{report}",
            "exportName": report, "billingPeriod": {"start": f"{start:%Y-%m-%dT%H:%M:%S.000Z}", "end": f"{end:%Y-%m-%dT%H:%M:%S.000Z}"},
            "bucket": bucket_name, "dataFiles": [f"s3://{bucket_name}/{k}" for k in data_keys], "dataFileCount": len(data_keys),
            "deliveryTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "columns": [],
        }
    if write_manifest:
        bucket.put(manifest_key, json.dumps(manifest, indent=1).encode())
    return Delivery(manifest_key, data_keys, assembly_id)


# --- large months for the benchmark -------------------------------------------------------------------

def write_bulk_cur2(directory: Path, billing_period: str, rows: int, files: int = 8, seed: int = 7) -> list[Path]:
    """A CUR 2.0 Parquet month of `rows` line items in the benchmark's simple shape (see `write_bulk`)."""
    return write_bulk(directory, billing_period, rows, files=files, seed=seed)


BULK_FORMATS = ("cur2-parquet", "cur2-csv-gz", "legacy-parquet", "legacy-csv-gz")
# Real-shaped tags: (CUR 2.0 key, legacy CSV key, share of resources carrying it, distinct values)
_BULK_TAGS = (
    ("user_team", "user:Team", 2, 6), ("user_env", "user:Env", 2, 3), ("user_cost_center", "user:CostCenter", 3, 20),
    ("user_owner", "user:Owner", 3, 50), ("user_application", "user:Application", 3, 30), ("user_name", "user:Name", 4, 0),
    ("user_project", "user:Project", 5, 40), ("user_service", "user:Service", 5, 25), ("user_component", "user:Component", 7, 15),
    ("user_created_by", "user:CreatedBy", 8, 10), ("aws_created_by", "aws:createdBy", 6, 12), ("user_backup", "user:Backup", 9, 2),
)


def write_bulk(directory: Path, billing_period: str, rows: int, fmt: str = "cur2-parquet", shape: str = "simple",
               files: int = 8, seed: int = 7) -> list[Path]:
    """A month of `rows` line items in one of `BULK_FORMATS`, generated inside DuckDB (no Python loop).

    Like a real month, each resource belongs to one usage account, service, region and usage type and
    bills every few hours, so hourly line items roll up about 15:1 to days (rows / 500 resources, 120
    accounts, 40 services). Parquet amounts are DOUBLE with 10 decimals, as AWS writes them; CSV amounts
    are decimal strings with 10 decimals.

    shape "simple": one description, one pricing unit, one tag key on every line (the footers prove
    most of it constant). shape "real": what real CUR looks like: descriptions that vary with the usage
    type, price and line item type, several pricing units, 12 tag keys of which each resource carries a
    subset (a quarter none), a unique Name tag on some, long resource ARNs, commitment ARNs on covered
    usage, account names, availability zones, rate codes and some columns the rollup does not read.
    """
    import duckdb

    if fmt not in BULK_FORMATS:
        raise ValueError(f"unknown bulk format {fmt!r}; one of {BULK_FORMATS}")
    if shape not in ("simple", "real"):
        raise ValueError(f"unknown shape {shape!r}: simple or real")
    directory.mkdir(parents=True, exist_ok=True)
    start, end = month_bounds(billing_period)
    hours = int((end - start).total_seconds() // 3600)
    paths = []
    connection = duckdb.connect(config={"memory_limit": "1GB", "preserve_insertion_order": False})
    csv = fmt.endswith("csv-gz")
    legacy = fmt.startswith("legacy")
    try:
        connection.execute("SET TimeZone = 'UTC'")
        per_file = -(-rows // files)
        resources = max(100, rows // 500)
        for number in range(files):
            first, last = number * per_file, min(rows, (number + 1) * per_file)
            if first >= last:
                break
            path = directory / (f"bench-{number:05d}" + (".csv.gz" if csv else ".snappy.parquet"))

            def h(salt: int, modulo: int) -> str:  # a deterministic pseudo-random 0..modulo-1 per line item
                return f"CAST(hash(i, {seed + salt}) % {modulo} AS BIGINT)"

            def r(salt: int, modulo: int) -> str:  # the same, per resource
                return f"CAST(hash(resource, {seed + salt}) % {modulo} AS BIGINT)"

            def money(expression: str) -> str:  # DOUBLE in Parquet, a 10-decimal string in CSV (as AWS writes them)
                return f"CAST(CAST({expression} AS DECIMAL(20,10)) AS VARCHAR)" if csv else expression

            fraction = f"CAST({h(6, 10**10)} AS DOUBLE) / 1e10"
            kind = f"['Usage','Usage','Usage','Usage','SavingsPlanCoveredUsage','DiscountedUsage','Tax','Credit'][1 + {h(1, 8)}]"
            columns: dict[str, str] = {
                "identity_line_item_id": "md5(CAST(i AS VARCHAR))",
                "bill_payer_account_id": "'111122223333'",
                "bill_invoice_id": "'INV-1'",
                "bill_invoicing_entity": "'Amazon Web Services, Inc.'",
                "line_item_usage_account_id": f"CAST(100000000000 + {r(0, 120)} AS VARCHAR)",
                "line_item_line_item_type": "kind",
                "line_item_usage_start_date": f"TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' + to_hours({h(2, hours)})",
                "line_item_product_code": f"'AmazonService' || CAST({r(3, 40)} AS VARCHAR)",
                "line_item_usage_type": f"'Usage-' || CAST({r(3, 40)} AS VARCHAR)",
                "line_item_resource_id": "'arn:aws:svc:us-east-1:1:r/' || CAST(resource AS VARCHAR)",
                "line_item_usage_amount": money(f"CAST({h(5, 1000)} AS DOUBLE) / 100"),
                "line_item_currency_code": "'USD'",
                "line_item_unblended_cost": money(f"round({fraction} * 3, 10)"),
                "pricing_public_on_demand_cost": money(f"round({fraction} * 3, 10)"),
                "savings_plan_savings_plan_effective_cost": money(f"round({fraction} * 2, 10)"),
                "reservation_effective_cost": money(f"round({fraction} * 2, 10)"),
                "line_item_line_item_description": "'Service usage'",
                "product_region_code": f"['us-east-1','eu-west-1','ap-south-1','us-west-2'][1 + {r(7, 4)}]",
                "pricing_unit": "'Hrs'",
            }
            product = {"product_name": f"'Amazon Service ' || CAST({r(3, 40)} AS VARCHAR)"}
            tags = {"user_team": f"['platform','data','web'][1 + {r(4, 3)}]"}
            tag_share = {"user_team": 1}
            legacy_tag = {"user_team": "user:Team"}
            if shape == "real":
                size = f"['nano','micro','small','medium','large','xlarge','2xlarge','4xlarge'][1 + {r(10, 8)}]"
                region = columns["product_region_code"]
                rate = f"CAST(round(0.0042 * (1 + {r(10, 8)}) * (1 + {r(3, 40)} % 5), 4) AS VARCHAR)"
                columns.update({
                    "bill_payer_account_name": "'Example Corp (payer)'",
                    "bill_billing_entity": "CASE WHEN " + r(3, 40) + " = 39 THEN 'AWS Marketplace' ELSE 'AWS' END",
                    "line_item_usage_account_name": f"'workload-' || CAST({r(0, 120)} AS VARCHAR) || '-prod'",
                    "line_item_usage_end_date": f"TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' + to_hours({h(2, hours)} + 1)",
                    "line_item_usage_type": f"upper(substr({region}, 1, 2)) || '-Usage' || CAST({r(3, 40)} AS VARCHAR) || ':' || {size}",
                    "line_item_operation": f"'RunInstances:' || lpad(CAST({r(11, 30)} AS VARCHAR), 4, '0')",
                    "line_item_resource_id": (f"'arn:aws:service' || CAST({r(3, 40)} AS VARCHAR) || ':' || {region} || ':' "
                                              f"|| CAST(100000000000 + {r(0, 120)} AS VARCHAR) || ':resource/r-' "
                                              "|| substr(md5(CAST(resource AS VARCHAR)), 1, 17)"),
                    "line_item_line_item_description": (
                        f"CASE kind WHEN 'Tax' THEN 'Tax for product code AmazonService' || CAST({r(3, 40)} AS VARCHAR) "
                        f"WHEN 'Credit' THEN 'AWS Credit for ' || CAST({r(3, 40)} AS VARCHAR) "
                        f"WHEN 'SavingsPlanCoveredUsage' THEN 'Savings Plan covered usage: ' || {size} || ' in ' || {region} "
                        f"ELSE '$' || {rate} || ' per On Demand Linux ' || {size} || ' Instance Hour' END"),
                    "line_item_legal_entity": f"CASE WHEN {r(0, 120)} % 7 = 0 THEN 'Amazon Web Services EMEA SARL' ELSE 'Amazon Web Services, Inc.' END",
                    "line_item_availability_zone": f"CASE WHEN {r(12, 3)} > 0 THEN {region} || ['a','b','c'][1 + {r(13, 3)}] END",
                    "line_item_blended_cost": columns["line_item_unblended_cost"],
                    "line_item_blended_rate": money(f"round({fraction}, 10)"),
                    "product_sku": f"upper(substr(md5(CAST({r(3, 40)} * 8 + {r(10, 8)} AS VARCHAR)), 1, 16))",
                    "pricing_unit": f"['Hrs','GB-Mo','Requests','GB','LCU-Hrs'][1 + {r(3, 40)} % 5]",
                    "pricing_term": "CASE WHEN kind IN ('Tax', 'Credit') THEN NULL ELSE 'OnDemand' END",
                    "pricing_rate_code": ("CASE WHEN kind IN ('Tax', 'Credit') THEN NULL ELSE "
                                          f"upper(substr(md5(CAST({r(3, 40)} * 8 + {r(10, 8)} AS VARCHAR)), 1, 16)) || '.JRTCKXETXF.6YS6EN2CT7' END"),
                    "pricing_public_on_demand_rate": f"CASE WHEN kind IN ('Tax', 'Credit') THEN NULL ELSE {rate} END",
                    # The unblended rate: the public rate, 0 on reserved usage (its cost is in the RI fee), as AWS writes it.
                    "line_item_unblended_rate": (f"CASE WHEN kind IN ('Tax', 'Credit') THEN NULL WHEN kind = 'DiscountedUsage' THEN '0.0000000000' "
                                                 f"ELSE {rate} END"),
                    "savings_plan_savings_plan_a_r_n": ("CASE WHEN kind = 'SavingsPlanCoveredUsage' THEN "
                                                         f"'arn:aws:savingsplans::111122223333:savingsplan/sp-' || CAST({r(14, 4)} AS VARCHAR) END"),
                    "reservation_reservation_a_r_n": ("CASE WHEN kind = 'DiscountedUsage' THEN "
                                                       f"'arn:aws:ec2:us-east-1:111122223333:reserved-instances/ri-' || CAST({r(15, 6)} AS VARCHAR) END"),
                    "savings_plan_savings_plan_effective_cost": money(f"CASE WHEN kind = 'SavingsPlanCoveredUsage' THEN round({fraction} * 2, 10) ELSE 0 END"),
                    "reservation_effective_cost": money(f"CASE WHEN kind = 'DiscountedUsage' THEN round({fraction} * 2, 10) ELSE 0 END"),
                })
                product.update({"servicecode": columns["line_item_product_code"], "region": region,
                                "instance_type": f"'m5.' || {size}", "operating_system": "'Linux'", "tenancy": "'Shared'",
                                "product_family": "['Compute Instance','Storage','Data Transfer','API Request'][1 + " + r(3, 40) + " % 4]"})
                tags, tag_share, legacy_tag = {}, {}, {}
                for number_, (key, legacy_key, share, distinct) in enumerate(_BULK_TAGS):
                    value = "'res-' || CAST(resource AS VARCHAR)" if not distinct else f"'{key[5:]}-' || CAST({r(20 + number_, distinct)} AS VARCHAR)"
                    tags[key] = value
                    tag_share[key] = share
                    legacy_tag[key] = legacy_key
            # Which tag keys a resource carries: each key on 1/share of the resources; in the real shape a
            # quarter of the resources carry none.
            untagged = f"{r(19, 4)} = 0" if shape == "real" else "false"
            carried = {key: f"(NOT {untagged} AND {r(40 + n, tag_share[key])} = 0)" for n, key in enumerate(tags)}
            if legacy:
                select = {(legacy_header(k) if csv else k): v for k, v in columns.items()
                          if k not in ("product_region_code", "bill_payer_account_name", "line_item_usage_account_name")}
                select["product/region" if csv else "product_region"] = columns["product_region_code"]
                for key, value in product.items():
                    name = "product_" + key if key != "product_name" else "product_product_name"
                    if key != "region":
                        select[(("product/productName" if key == "product_name" else "product/" + key) if csv else name)] = value
                for key, value in tags.items():
                    if csv:
                        select["resourceTags/" + legacy_tag[key]] = f"CASE WHEN {carried[key]} THEN {value} ELSE '' END"
                    else:
                        select["resource_tags_" + key] = f"CASE WHEN {carried[key]} THEN {value} END"
            else:
                select = dict(columns)
                if shape == "real":  # a tenth of the resources run in a capacity reservation (CUR 2.0 only), some of them unused
                    arn = f"'arn:aws:ec2:us-east-1:111122223333:capacity-reservation/cr-' || CAST({r(16, 10)} AS VARCHAR)"
                    reserved = f"kind = 'Usage' AND {r(17, 10)} = 0"
                    select.update({
                        "capacity_reservation_capacity_reservation_arn": f"CASE WHEN {reserved} THEN {arn} END",
                        "capacity_reservation_capacity_reservation_status":
                            f"CASE WHEN {reserved} THEN (CASE WHEN {r(18, 4)} = 0 THEN 'Unused' ELSE 'Used' END) END",
                        "capacity_reservation_capacity_reservation_type": f"CASE WHEN {reserved} THEN 'ODCR' END",
                    })
                select["product"] = "MAP {" + ", ".join(f"'{k}': {v}" for k, v in product.items()) + "}"
                entries = ", ".join(f"CASE WHEN {carried[k]} THEN {{'key': '{k}', 'value': {v}}} END" for k, v in tags.items())
                select["resource_tags"] = f"map_from_entries(list_filter([{entries}], lambda e: e IS NOT NULL))"
                if csv:
                    select = {k: (f"CAST(to_json({v}) AS VARCHAR)" if k in ("product", "resource_tags") else v) for k, v in select.items()}
            if csv:  # timestamps as AWS writes them in CSV
                stamps = {"line_item_usage_start_date", "line_item_usage_end_date", "lineItem/UsageStartDate", "lineItem/UsageEndDate"}
                select = {k: (f"strftime({v}, '%Y-%m-%dT%H:%M:%SZ')" if k in stamps else v) for k, v in select.items()}
            body = ",\n                    ".join(f"{v} AS \"{k}\"" for k, v in select.items())
            options = "FORMAT csv, HEADER true, COMPRESSION gzip" if csv else "FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880"
            connection.execute(f"""
                COPY (
                  SELECT
                    {body}
                  FROM (SELECT i, resource, {kind} AS kind
                        FROM (SELECT i, {h(4, resources)} AS resource FROM range({first}, {last}) t(i)))
                ) TO '{path}' ({options})""")
            paths.append(path)
    finally:
        connection.close()
    return paths


def bulk_manifest(root: Path, prefix: str, report: str, billing_period: str, fmt: str, paths: Sequence[Path]) -> Path:
    """The manifest for files `write_bulk` wrote under `root` (a local bucket), at the key a refresh reads."""
    keys = [str(p.relative_to(root)) for p in paths]
    if fmt.startswith("legacy"):
        key = legacy_manifest_key(prefix, report, billing_period)
        document = {"assemblyId": "bench", "reportKeys": keys, "bucket": "bench-bucket", "reportName": report}
    else:
        key = cur2_manifest_key(prefix, report, billing_period)
        document = {"executionId": "bench", "dataFiles": [f"s3://bench-bucket/{k}" for k in keys]}
    manifest = root / key
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(document))
    return manifest


# --- the demo -----------------------------------------------------------------------------------------

DEMO_BUCKET = "finops-demo-cur"
DEMO_ACCESS_KEY_ENV = "FINOPS_DEMO_CUR_ACCESS_KEY_ID"
DEMO_SECRET_KEY_ENV = "FINOPS_DEMO_CUR_SECRET_ACCESS_KEY"


class AwsCurDemo:
    """Drives the CUR stand-in for finops_pipeline/demo.py: moto S3 with CUR 2.0 deliveries."""

    provider = "aws"
    source = "cur"

    def __init__(self) -> None:
        self._moto = None

    def start(self, port: int) -> None:
        from finops_sandbox.aws import MotoSandbox

        self._moto = MotoSandbox(port=port).start()

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    @property
    def url(self) -> str:
        assert self._moto is not None, "start() first"
        return self._moto.url

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        """Two payers delivering to one bucket: CUR 2.0 Parquet, and a legacy CUR in gzip CSV."""
        common = {"provider": "aws", "source": "cur", "bucket": DEMO_BUCKET, "endpoint_url": self.url,
                  "access_key_id_env": DEMO_ACCESS_KEY_ENV, "secret_access_key_env": DEMO_SECRET_KEY_ENV,
                  "connected_at": (now - timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        return [
            {"key": "aws-cur-retail", "name": "Retail payer (CUR 2.0)", "account_id": "888811112222", "prefix": "billing",
             "report_name": "finops-demo", "cur_version": "cur2", **common},
            {"key": "aws-cur-legacy", "name": "Media payer (legacy CUR)", "account_id": "999911112222", "prefix": "legacy-cur",
             "report_name": "hourly-cur", "cur_version": "legacy", **common},
        ]

    def environment(self) -> dict[str, str]:
        return {DEMO_ACCESS_KEY_ENV: "sandbox-cur-key", DEMO_SECRET_KEY_ENV: "sandbox-cur-secret"}

    def seed(self, config: Any, periods: list[str], today: date) -> None:
        import boto3

        start = today - timedelta(days=75)  # the demo's whole history, ending yesterday
        for account in config.for_source("aws", "cur"):
            settings = account.settings
            client = boto3.client("s3", endpoint_url=settings.get("endpoint_url", self.url), region_name="us-east-1",
                                  aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
            bucket = S3Bucket(client, settings["bucket"])
            charges = daily_charges(f"cur-{account.key}", start, (today - start).days,
                                    [("210987654321", "Production"), ("345678901234", "Analytics")], SERVICES)
            for period in periods:  # every period gets a delivery, an empty one if it has no usage
                lines = line_items(charges, period, settings["account_id"], invoiced=period < today.strftime("%Y-%m"))
                deliver(bucket, settings["bucket"], settings.get("prefix", ""), settings["report_name"], period, lines,
                        "cur2-parquet" if settings.get("cur_version", "cur2") == "cur2" else "legacy-csv-gz")
