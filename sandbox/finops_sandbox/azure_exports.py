"""A stand-in for Azure Cost Management exports to Blob Storage (run in Azurite): FocusCost and cost details.

Each run writes its files under `<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<runId>/` and then its
`manifest.json` (Microsoft's documented shape: manifestVersion, byteCount, blobCount, dataRowCount,
exportConfig, deliveryConfig, runInfo, blobs[] with blobName, byteCount, dataRowCount), data first, as
Cost Management does. Rows are daily, over two subscriptions, four services, two regions, with tags.

Amounts are written as decimal text with at most 10 decimals (CSV) or as DOUBLE whose repr is that text
(Parquet), so `expected_totals` sums them exactly, independently of the pipeline.
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
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

BILLING_ACCOUNT = "/providers/Microsoft.Billing/billingAccounts/5e1d9c3a-0000-4000-8000-0000000a2b3c:7d3c_2019-05-31"
SUBSCRIPTIONS = (("3f2a7c1e-5b8d-4e9f-a1c2-0d4e6f8a9b10", "Contoso Production"), ("9c8b7a6d-1e2f-4a3b-8c9d-0e1f2a3b4c5d", "Contoso Dev/Test"))
FABRIKAM = (("61d0c4b2-7a9e-4f3d-b5c8-2e1a0f9d8c7b", "Fabrikam Production"), ("a4e2f0c9-3b7d-4e8a-9f1c-5d6b7a8e9f0a", "Fabrikam Dev/Test"))
# (ServiceName, ServiceCategory, meterCategory, meterName, unit, typical daily cost): the categories of Microsoft's
# services mapping (FinOps toolkit Services.csv: App Service is Web, as schema.service_category maps it too)
SERVICES = (
    ("Virtual Machines", "Compute", "Virtual Machines", "D4s v5", "1 Hour", 4.61),
    ("Storage", "Storage", "Storage", "Hot LRS Data Stored", "1 GB/Month", 1.37),
    ("Azure SQL Database", "Databases", "SQL Database", "vCore", "1 Hour", 6.92),
    ("Azure App Service", "Web", "Azure App Service", "P1 v3 App", "1 Hour", 2.18),
)
# ServiceName -> FOCUS 1.2 ServiceSubcategory (FocusCost 1.2-preview writes the column; Services.csv's Other is "Other (<category>)")
SUBCATEGORIES = {"Virtual Machines": "Virtual Machines", "Storage": "Other (Storage)", "Azure SQL Database": "Relational Databases",
                 "Azure App Service": "Other (Web)"}
REGIONS = (("eastus", "East US"), ("westeurope", "West Europe"))
TEAMS = ("platform", "data", "web")
FOCUS_VERSIONS = {"1.0r2": "1.0r2", "1.2-preview": "1.2-preview", "1.0": "1.0"}
MONEY = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity", "ConsumedQuantity", "ListUnitPrice",
         "ContractedUnitPrice", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice"}


def _amount(value: float) -> str:
    return format(Decimal(repr(round(value, 10))).normalize(), "f")


def _days(billing_period: str, days: int | None, until: date | None) -> list[date]:
    start = datetime.strptime(billing_period, "%Y-%m").date()
    end = (start + timedelta(days=32)).replace(day=1)
    if until is not None:
        end = min(end, until)
    count = (end - start).days if days is None else min(days, (end - start).days)
    return [start + timedelta(days=i) for i in range(max(count, 0))]


def focus_rows(billing_period: str, seed: str = "azure-focus", days: int | None = None, until: date | None = None,
               currency: str = "USD") -> list[dict[str, Any]]:
    """Daily FocusCost rows (FOCUS 1.0r2 / 1.2-preview names): 2 subscriptions x 4 services x 2 regions, tagged."""
    rng = random.Random(f"{seed}:{billing_period}")
    start = datetime.strptime(billing_period, "%Y-%m").replace(tzinfo=timezone.utc)
    end = (start + timedelta(days=32)).replace(day=1)
    out = []
    for day in _days(billing_period, days, until):
        moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        for sub_id, sub_name in SUBSCRIPTIONS:
            for service, category, meter_category, meter, unit, typical in SERVICES:
                for region, region_name in REGIONS:
                    quantity = round(rng.uniform(4, 24), 4)
                    list_cost = round(typical * rng.uniform(0.7, 1.3), 6)
                    billed = round(list_cost * rng.uniform(0.85, 1.0), 10)
                    team = TEAMS[rng.randrange(len(TEAMS))]
                    group = f"rg-{team}"
                    resource = (f"/subscriptions/{sub_id}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/"
                                f"{team}-{region}-{rng.randrange(3)}")
                    out.append({
                        "BilledCost": _amount(billed), "EffectiveCost": _amount(billed), "ListCost": _amount(list_cost),
                        "ContractedCost": _amount(billed), "BillingAccountId": BILLING_ACCOUNT, "BillingAccountName": "Contoso",
                        "BillingAccountType": "Billing Profile", "BillingCurrency": currency, "PricingCurrency": currency,
                        "PricingCurrencyEffectiveCost": _amount(billed),
                        "BillingPeriodStart": start, "BillingPeriodEnd": end, "ChargeCategory": "Usage", "ChargeClass": None,
                        "ChargeDescription": f"{meter} - {region_name}", "ChargeFrequency": "Usage-Based",
                        "ChargePeriodStart": moment, "ChargePeriodEnd": moment + timedelta(days=1),
                        "ConsumedQuantity": _amount(quantity), "ConsumedUnit": unit, "InvoiceIssuerName": "Microsoft",
                        "ListUnitPrice": _amount(round(list_cost / quantity, 8)),
                        "PricingCurrencyListUnitPrice": _amount(round(list_cost / quantity, 8)), "PricingCategory": "Standard",
                        "PricingQuantity": _amount(quantity), "PricingUnit": unit, "ProviderName": "Microsoft",
                        "PublisherName": "Microsoft", "RegionId": region, "RegionName": region_name, "ResourceId": resource,
                        "ResourceName": resource.rsplit("/", 1)[-1], "ResourceType": "Virtual machine", "ServiceCategory": category,
                        "ServiceName": service,
                        "ServiceSubcategory": SUBCATEGORIES[service], "SkuMeter": meter,
                        "SkuId": f"DZH318Z0{abs(hash((meter, region))) % 10**4:04d}", "SkuPriceId": None,
                        "SubAccountId": f"/subscriptions/{sub_id}", "SubAccountName": sub_name, "SubAccountType": "Subscription",
                        "Tags": {"team": team, "env": "prod" if "Production" in sub_name else "dev"},
                        "x_ResourceGroupName": group, "x_SkuMeterCategory": meter_category, "x_SkuMeterName": meter,
                    })
    if out:  # a monthly tax line and a marketplace purchase, as real months have
        out.append({**out[0], "ChargeCategory": "Tax", "BilledCost": "3.21", "EffectiveCost": "3.21", "ListCost": "3.21",
                    "ContractedCost": "3.21", "PricingCurrencyEffectiveCost": "3.21", "ResourceType": None,
                    "ServiceName": "Tax", "ServiceCategory": "Other", "ServiceSubcategory": "Other (Other)", "Tags": {},
                    "ResourceId": None,
                    "ResourceName": None, "ChargeDescription": "Sales tax", "ConsumedQuantity": None, "PricingQuantity": None,
                    # FOCUS: a Tax row has no SKU, pricing category, units or unit prices
                    **dict.fromkeys(("SkuId", "SkuPriceId", "SkuMeter", "PricingCategory", "ConsumedUnit", "PricingUnit", "ListUnitPrice",
                                     "PricingCurrencyListUnitPrice"))})
        out.append({**out[1], "ChargeCategory": "Purchase", "ChargeFrequency": "One-Time", "BilledCost": "120", "EffectiveCost": "120",
                    "ListCost": "120", "ContractedCost": "120", "PricingCurrencyEffectiveCost": "120", "ChargeDescription": "Marketplace purchase", "Tags": {},
                    "ConsumedQuantity": None, "ConsumedUnit": None})  # FOCUS: consumption is Usage only
    return out


def cost_details_rows(billing_period: str, amortized: bool, seed: str = "azure-cost-details", days: int | None = None,
                      until: date | None = None, pascal: bool = False, subscriptions: Sequence[tuple[str, str]] = SUBSCRIPTIONS
                      ) -> list[dict[str, Any]]:
    """Daily ActualCost or AmortizedCost rows (MCA column names; `pascal` for EA-style names), with a reservation:
    bought once in ActualCost (a Purchase), spread over the days it covers in AmortizedCost."""
    rng = random.Random(f"{seed}:{billing_period}")
    period_days = _days(billing_period, days, until)
    out = []
    reservation = "/providers/Microsoft.Capacity/reservationOrders/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/reservations/r1"
    for day in period_days:
        for sub_id, sub_name in subscriptions:
            for _, _, meter_category, meter, unit, typical in SERVICES:
                for region, _ in REGIONS:
                    quantity = round(rng.uniform(4, 24), 4)
                    cost = round(typical * rng.uniform(0.7, 1.3), 10)
                    team = TEAMS[rng.randrange(len(TEAMS))]
                    covered = meter_category == "Virtual Machines" and region == "eastus" and "Production" in sub_name
                    resource = f"/subscriptions/{sub_id}/resourceGroups/rg-{team}/providers/Microsoft.Compute/virtualMachines/{team}-{region}"
                    out.append({
                        "billingAccountId": BILLING_ACCOUNT.rsplit("/", 1)[-1], "billingAccountName": "Contoso",
                        "date": day.strftime("%m/%d/%Y"), "subscriptionId": sub_id, "subscriptionName": sub_name,
                        "resourceGroupName": f"rg-{team}", "resourceId": resource, "resourceLocation": region.upper() if pascal else region,
                        "meterCategory": meter_category, "meterName": meter, "productName": f"{meter_category} {meter}",
                        "productId": f"DZH318Z0{abs(hash((meter, region))) % 10**4:04d}", "quantity": _amount(quantity),
                        "unitOfMeasure": unit, "costInBillingCurrency": _amount(cost if (amortized or not covered) else 0.0),
                        "paygCostInBillingCurrency": _amount(cost * 1.25), "billingCurrency": "EUR", "chargeType": "Usage",
                        "frequency": "UsageBased", "pricingModel": "Reservation" if covered else "OnDemand",
                        "benefitId": reservation if covered else "", "benefitName": "VM reservation" if covered else "",
                        "tags": f'"team": "{team}","env": "{"prod" if "Production" in sub_name else "dev"}"',
                    })
    if out and not amortized:  # the reservation's yearly upfront purchase, on the first day, in the actual cost only
        covered_total = sum(Decimal(r["costInBillingCurrency"]) for r in cost_details_rows(billing_period, True, seed, days, until, subscriptions=subscriptions)
                            if r["pricingModel"] == "Reservation")
        out.append({**out[0], "resourceId": "", "meterCategory": "Virtual Machines Licenses", "meterName": "Reservation",
                    "productName": "Reserved VM Instance, D4s v5", "quantity": "1", "unitOfMeasure": "1 Unit",
                    "costInBillingCurrency": format(covered_total * 12, "f"), "paygCostInBillingCurrency": "0", "chargeType": "Purchase",
                    "frequency": "OneTime", "pricingModel": "Reservation", "benefitId": reservation, "benefitName": "VM reservation",
                    "tags": ""})
    if pascal:
        out = [{("BillingCurrencyCode" if k == "billingCurrency" else k[0].upper() + k[1:]): v for k, v in row.items()} for row in out]
    return out


def expected_totals(lines: Sequence[dict[str, Any]], column: str = "BilledCost") -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for line in lines:
        currency = next(line[c] for c in ("BillingCurrency", "billingCurrency", "BillingCurrencyCode") if c in line)
        value = line.get(column)
        if value is None:
            value = line.get(column[0].upper() + column[1:])
        totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(value))
    return totals


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def encode(lines: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str] | None = None) -> tuple[bytes, str]:
    """One file of rows: csv, csv.gz, or parquet (snappy); FOCUS amounts become DOUBLE in Parquet."""
    names = list(columns or (lines[0].keys() if lines else ()))
    if fmt == "parquet":
        data = {}
        for name in names:
            values = [line.get(name) for line in lines]
            if name in MONEY:
                data[name] = pa.array([float(v) if v not in (None, "") else None for v in values], pa.float64())
            elif values and isinstance(next((v for v in values if v is not None), None), datetime):
                data[name] = pa.array(values, pa.timestamp("ms", tz="UTC"))
            elif name == "Tags":
                data[name] = pa.array([(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v) or None for v in values], pa.string())
            else:
                data[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
        sink = io.BytesIO()
        pq.write_table(pa.table(data), sink, compression="snappy")
        return sink.getvalue(), ".snappy.parquet"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    for line in lines:
        writer.writerow([_csv_value(line.get(n)) for n in names])
    body = text.getvalue().encode("utf-8-sig" if fmt == "csv" else "utf-8")
    return (gzip.compress(body), ".csv.gz") if fmt == "csv.gz" else (body, ".csv")


@dataclass
class Run:
    manifest_name: str
    blob_names: list[str]
    run_id: str
    submitted: datetime


def month_folder(billing_period: str) -> str:
    start = datetime.strptime(billing_period, "%Y-%m").date()
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return f"{start:%Y%m%d}-{end:%Y%m%d}"


def deliver(container: Any, root: str, export: str, billing_period: str, lines: Sequence[dict[str, Any]], fmt: str = "parquet",
            files: int = 2, kind: str = "FocusCost", version: str = "1.2-preview", submitted: datetime | None = None,
            bodies: dict[int, bytes] | None = None, manifest: dict[str, Any] | None = None, write_manifest: bool = True) -> Run:
    """One export run into `container` (an azure-storage-blob ContainerClient): data blobs, then manifest.json.

    `bodies` replaces file n's bytes (a truncated blob), `manifest` overrides manifest fields (blobs outside
    the export, a wrong count), `write_manifest=False` leaves a run that failed before its manifest."""
    submitted = submitted or datetime.now(timezone.utc)
    run_id = str(uuid.uuid4())
    folder = "/".join(p for p in (root, export, month_folder(billing_period), f"{submitted:%Y%m%d%H%M}", run_id) if p)
    chunks = [list(lines[i::files]) for i in range(files)] if lines else []
    blobs = []
    columns = list(lines[0].keys()) if lines else None
    for number, chunk in enumerate(chunks, start=1):
        body, extension = encode(chunk, fmt, columns)
        if bodies and number in bodies:
            body = bodies[number]
        name = f"{folder}/part_{number - 1}_0001{extension}"
        container.upload_blob(name, body, overwrite=True)
        blobs.append({"blobName": name, "byteCount": len(body), "dataRowCount": len(chunk)})
    start = datetime.strptime(billing_period, "%Y-%m")
    last = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    document = {
        "manifestVersion": "2024-04-01", "byteCount": sum(b["byteCount"] for b in blobs), "blobCount": len(blobs),
        "dataRowCount": sum(b["dataRowCount"] for b in blobs),
        "exportConfig": {"exportName": export, "resourceId": f"{BILLING_ACCOUNT}/providers/Microsoft.CostManagement/exports/{export}",
                         "dataVersion": version if kind == "FocusCost" else "2021-10-01", "apiVersion": "2023-07-01-preview",
                         "type": kind, "timeFrame": "MonthToDate", "granularity": "Daily"},
        "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": "CreateNewReport",
                           "fileFormat": "Parquet" if fmt == "parquet" else "Csv",
                           "compressionMode": {"parquet": "Snappy", "csv.gz": "Gzip"}.get(fmt, "None"),
                           "containerUri": "/subscriptions/3f2a7c1e-5b8d-4e9f-a1c2-0d4e6f8a9b10/resourceGroups/finops/providers/"
                                           "Microsoft.Storage/storageAccounts/contosocosts", "rootFolderPath": root},
        "runInfo": {"executionType": "Scheduled", "submittedTime": submitted.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"), "runId": run_id,
                    "startDate": f"{start:%Y-%m-%dT00:00:00}", "endDate": f"{last:%Y-%m-%dT00:00:00}"},
        "blobs": blobs,
    }
    document.update(manifest or {})
    if write_manifest:
        container.upload_blob(f"{folder}/manifest.json", json.dumps(document, indent=2).encode(), overwrite=True)
    return Run(f"{folder}/manifest.json", [b["blobName"] for b in blobs], run_id, submitted)


DEMO_CONTAINER = "cost-exports"
DEMO_CONNECTION_ENV = "FINOPS_DEMO_AZURE_EXPORTS_CONNECTION"
DEMO_SAS_ENV = "FINOPS_DEMO_AZURE_EXPORTS_SAS"


class AzureExportsDemo:
    """Drives Azurite for finops_sandbox/demo.py: a daily FocusCost export and ActualCost + AmortizedCost exports.

    Every billing period of the demo gets a run per export (month to date up to yesterday); the previous
    month is re-delivered by a newer FOCUS run whose data replaces the first run's. Without Azurite (npm
    missing), the demo goes on without these two accounts and says so."""

    provider = "azure"
    source = "exports"

    def __init__(self) -> None:
        self._azurite = None
        self.missing: str | None = None

    def start(self, port: int) -> None:
        from finops_sandbox.azurite import Azurite, AzuriteMissing

        try:
            self._azurite = Azurite(port=port).start()
        except AzuriteMissing as exc:
            self.missing = str(exc)
            print(f"  Azure export accounts skipped: {exc}", flush=True)

    def stop(self) -> None:
        if self._azurite is not None:
            self._azurite.stop()
            self._azurite = None

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        if self._azurite is None:
            return []
        common = {"provider": "azure", "source": "exports", "account_url": self._azurite.account_url, "container": DEMO_CONTAINER,
                  "connected_at": (now - timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        return [
            {"key": "azure-focus-export", "name": "Contoso billing account (FOCUS export)", "root_path": "focus", "dataset": "focus",
             "export_name": "contoso-focus-daily", "connection_string_env": DEMO_CONNECTION_ENV, **common},
            {"key": "azure-cost-details", "name": "Fabrikam EA (cost details exports)", "root_path": "cost-details",
             "dataset": "cost_details", "export_name": "fabrikam-actual", "amortized_export_name": "fabrikam-amortized",
             "sas_token_env": DEMO_SAS_ENV, **common},
        ]

    def environment(self) -> dict[str, str]:
        if self._azurite is None:
            return {}
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(self._azurite.account_name, DEMO_CONTAINER, account_key=self._azurite.account_key,
                                     permission=ContainerSasPermissions(read=True, list=True),
                                     expiry=datetime.now(timezone.utc) + timedelta(days=7))
        return {DEMO_CONNECTION_ENV: self._azurite.connection_string, DEMO_SAS_ENV: sas}

    def seed(self, config: Any, periods: list[str], today: date) -> None:
        if self._azurite is None:
            return
        from azure.storage.blob import BlobServiceClient

        container = BlobServiceClient.from_connection_string(self._azurite.connection_string).get_container_client(DEMO_CONTAINER)
        if not container.exists():
            container.create_container()
        start = today - timedelta(days=75)
        redelivered = periods[-2] if len(periods) > 1 else None
        for account in config.for_source("azure", "exports"):
            settings = account.settings
            root = settings.get("root_path", "")
            for period in periods:
                first = datetime.strptime(period, "%Y-%m").date()
                month_end = (first + timedelta(days=32)).replace(day=1)
                if month_end <= start:
                    continue
                until = min(month_end, today)  # month to date, ending yesterday
                run_at = datetime.combine(until, datetime.min.time(), timezone.utc) + timedelta(hours=5)
                if settings["dataset"] == "focus":
                    if period == redelivered:  # the previous month, delivered twice: the newer run replaces the first
                        deliver(container, root, settings["export_name"], period, focus_rows(period, seed="first", until=until),
                                "csv.gz", files=2, submitted=run_at - timedelta(days=1))
                    deliver(container, root, settings["export_name"], period, focus_rows(period, until=until), "parquet", files=2,
                            submitted=run_at)
                else:
                    for amortized, name in ((False, settings["export_name"]), (True, settings["amortized_export_name"])):
                        deliver(container, root, name, period, cost_details_rows(period, amortized, until=until, pascal=True, subscriptions=FABRIKAM), "csv.gz",
                                kind="AmortizedCost" if amortized else "ActualCost", submitted=run_at)
