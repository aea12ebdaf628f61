"""A seeded billing export that exercises what the real one does: two billing accounts in two
currencies (detailed and standard tables), credits, tax, adjustment and rounding rows, and usage of
October billed in the November invoice. Expected figures are computed from these rows directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from finops_sandbox.gcp import BigQuerySandbox, export_row, export_table_name

USD_BILLING = "012345-6789AB-CDEF01"
EUR_BILLING = "0A1B2C-3D4E5F-6A7B8C"
PROJECT = "billing-admin"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@dataclass
class Scenario:
    sandbox: BigQuerySandbox
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # billing account -> seeded rows

    def add(self, billing_account: str, rows: list[dict[str, Any]]) -> None:
        dataset, table = DATASETS[billing_account]
        self.sandbox.insert_rows(PROJECT, dataset, table, rows)
        self.rows.setdefault(billing_account, []).extend(rows)


DATASETS = {
    USD_BILLING: ("billing_usd", export_table_name(USD_BILLING, detailed=True)),
    EUR_BILLING: ("billing_eur", export_table_name(EUR_BILLING, detailed=False)),
}


def usd_rows() -> list[dict[str, Any]]:
    rows = []
    for offset in range(-31, 19):  # 2026-10-01 .. 2026-11-19
        day = date(2026, 11, 1) + timedelta(days=offset)
        cents = Decimal(100 + offset * 3)
        rows.append(export_row(
            billing_account_id=USD_BILLING, day=day, project_id="shop-prod", project_name="Shop (prod)",
            service="Compute Engine", sku="N2 Instance Core running in Americas", cost=cents / 100 + Decimal("0.000123"),
            cost_at_list=cents / 100 + Decimal("0.300123"),  # a negotiated price 0.30 below list
            credits=[("SUSTAINED_USAGE_DISCOUNT", "Sustained usage discount", Decimal("-0.250001")),
                     ("PROMOTION", "Free trial credit", Decimal("-0.100000"))],
            labels={"env": "prod", "team": "checkout"}, resource="//compute.googleapis.com/projects/shop-prod/zones/us-central1-a/instances/web-1",
            zone="us-central1-a",
        ))
        rows.append(export_row(
            billing_account_id=USD_BILLING, day=day, project_id="shop-dev", service="Cloud Storage",
            sku="Standard Storage US Multi-region", cost=Decimal("0.333333"), region="us", labels=None,
            resource="//storage.googleapis.com/projects/_/buckets/shop-dev-assets",
        ))
    for month in ("202610", "202611"):
        first = date(int(month[:4]), int(month[4:]), 1)
        rows.append(export_row(billing_account_id=USD_BILLING, day=first, project_id="shop-prod", service="Invoice",
                               sku="Sales tax", cost=Decimal("7.77"), cost_type="tax", region=None))
    rows.append(export_row(billing_account_id=USD_BILLING, day=date(2026, 11, 3), project_id="shop-prod", service="Compute Engine",
                           sku="Billing adjustment for October", cost=Decimal("-4.50"), cost_type="adjustment", region=None))
    rows.append(export_row(billing_account_id=USD_BILLING, day=date(2026, 11, 3), project_id="shop-prod", service="Invoice",
                           sku="Rounding", cost=Decimal("0.000001"), cost_type="rounding_error", region=None))
    # Usage of 31 October that reached Cloud Billing late: billed in the November invoice, exported on 2 November.
    rows.append(export_row(billing_account_id=USD_BILLING, day=date(2026, 10, 31), project_id="shop-prod", service="Cloud Run",
                           sku="CPU Allocation Time", cost=Decimal("2.468"), invoice_month="202611",
                           partition_day=date(2026, 11, 2), export_time=datetime(2026, 11, 2, 9, tzinfo=timezone.utc)))
    return rows


def eur_rows() -> list[dict[str, Any]]:
    rows = []
    for offset in range(0, 19):
        day = date(2026, 11, 1) + timedelta(days=offset)
        rows.append(export_row(
            billing_account_id=EUR_BILLING, day=day, project_id="analytics-eu", service="BigQuery", sku="Analysis",
            cost=Decimal("12.345678") + offset, currency="EUR", conversion_rate=Decimal("0.921834"), region="europe-west1",
            credits=[("COMMITTED_USAGE_DISCOUNT", "Committed use discount", Decimal("-1.000001"))],
        ))
    return rows


def seed(sandbox: BigQuerySandbox) -> Scenario:
    scenario = Scenario(sandbox)
    for dataset, table in DATASETS.values():
        sandbox.create_dataset(PROJECT, dataset)
        sandbox.create_export_table(PROJECT, dataset, table)
    scenario.add(USD_BILLING, usd_rows())
    scenario.add(EUR_BILLING, eur_rows())
    return scenario


def account(key: str, billing: str, dataset: str, url: str, connected_at: str = "2026-10-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "key": key, "provider": "gcp", "source": "bigquery_export", "name": f"GCP {key}", "connected_at": connected_at,
        "billing_account_id": billing, "project_id": PROJECT, "dataset": dataset, "api_endpoint": url, **extra,
    }
