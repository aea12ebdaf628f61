"""Billing insights -> cost_daily, without HTTP or Dagster."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.digitalocean.billing.client import RateLimiter
from finops_pipeline.defs.digitalocean.billing.invoices import CLOSED, OPEN, InvoiceFigures
from finops_pipeline.defs.digitalocean.billing.pull import (
    OTHER_PRODUCT,
    charge_category,
    date_ranges,
    normalize,
    period_days,
    product_name,
    raw_totals,
)
from finops_pipeline.schema import rows_to_table, service_category, totals_by_currency

URN = "do:team:5b1c3f0e-0000-4000-8000-000000000001"
OTHER_TEAM = "do:team:5b1c3f0e-0000-4000-8000-000000000002"
NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def account():
    return parse_config({"accounts": [{"key": "do-prod", "provider": "digitalocean", "name": "Prod (DO)",
                                       "connected_at": "2026-01-01T00:00:00Z", "token_env": "DO_TOKEN"}]},
                        Path("finops.yaml")).accounts[0]


def point(day: str, amount: str, **fields) -> dict:
    base = {"usage_team_urn": URN, "start_date": day, "total_amount": amount, "region": "nyc3",
            "sku": "1-DO-DROPLET-S-2VCPU-4GB", "description": "web-1 (s-2vcpu-4gb)", "group_description": ""}
    base.update(fields)
    return base


def test_date_ranges_cover_every_day_once_in_ranges_of_at_most_31_days():
    first, last = date(2026, 1, 1), date(2026, 3, 15)
    ranges = date_ranges(first, last)
    assert ranges[0][0] == first and ranges[-1][1] == last
    for (_start, end), (next_start, _) in zip(ranges, ranges[1:]):
        assert (next_start - end).days == 1  # contiguous, no overlap
    assert all((end - start).days + 1 <= 31 for start, end in ranges)
    assert sum((end - start).days + 1 for start, end in ranges) == (last - first).days + 1
    # A 31-day month is one request, as in DigitalOcean's own example (2025-01-01/2025-01-31).
    assert date_ranges(date(2025, 1, 1), date(2025, 1, 31)) == [(date(2025, 1, 1), date(2025, 1, 31))]


def test_period_days_closed_open_and_future_months():
    today = date(2026, 11, 20)
    assert period_days("2026-10", today) == (date(2026, 10, 1), date(2026, 10, 31))
    assert period_days("2026-11", today) == (date(2026, 11, 1), date(2026, 11, 20))
    assert period_days("2026-12", today) is None
    assert period_days("2024-02", today) == (date(2024, 2, 1), date(2024, 2, 29))


@pytest.mark.parametrize(
    "fields, product, category",
    [
        ({"description": "web-1 (s-2vcpu-4gb)", "sku": "1-DO-DROPLET-S-2VCPU-4GB"}, "Droplets", "Compute"),
        ({"description": "Kubernetes node pool worker (s-4vcpu-8gb)", "group_description": "prod-doks"}, "Kubernetes", "Compute"),
        ({"description": "PostgreSQL database cluster (db-s-2vcpu-4gb)"}, "Managed Databases", "Databases"),
        ({"description": "Spaces ($5/mo 250GB storage & 1TB bandwidth)"}, "Spaces Object Storage", "Storage"),
        ({"description": "Load Balancer lb-1 (small)"}, "Load Balancers", "Networking"),
        ({"description": "Reserved IP 203.0.113.7", "sku": ""}, "Reserved IPs", "Networking"),
        ({"description": "App Platform api (professional-xs)"}, "App Platform", "Web"),
        ({"description": "GenAI agent inference tokens", "sku": ""}, "GenAI Platform", "AI and Machine Learning"),
        ({"description": "a56e086a317d8410c8b4cfd1f4dc9f82", "sku": "", "group_description": ""}, OTHER_PRODUCT, "Other"),
    ],
)
def test_products_and_focus_service_categories(fields, product, category):
    assert product_name(point("2026-11-01", "1.00", **fields)) == product
    assert service_category(product) == category


def test_charge_categories():
    assert charge_category("Tax", "VAT", Decimal("1.20")) == "Tax"
    assert charge_category(OTHER_PRODUCT, "Promotional credit", Decimal("-5")) == "Credit"
    assert charge_category(OTHER_PRODUCT, "Refund for outage", Decimal("-2")) == "Adjustment"
    assert charge_category("Droplets", "web-1", Decimal("2")) == "Usage"


def test_normalize_maps_every_column_and_keeps_decimals_exact():
    pages = [
        {"data_points": [point("2026-11-01", "0.1"), point("2026-11-01", "0.2", region="", group_description="prod-doks",
                                                           description="Kubernetes node pool worker", sku="")],
         "total_items": 3, "total_pages": 2, "current_page": 1},
        {"data_points": [point("2026-11-02", "12.345678901", usage_team_urn=OTHER_TEAM, region="FRA1")],
         "total_items": 3, "total_pages": 2, "current_page": 2},
    ]
    rows = normalize(pages, account(), "2026-11", URN, "Acme", estimated=True, ingested_at=NOW)
    table = rows_to_table(rows)
    first, second, third = table.to_pylist()

    assert first["BilledCost"] == Decimal("0.1") and first["EffectiveCost"] == Decimal("0.1")
    assert first["BillingCurrency"] == "USD"
    assert first["ChargePeriodStart"] == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert first["ChargePeriodEnd"] == datetime(2026, 11, 2, tzinfo=timezone.utc)
    assert first["BillingPeriodStart"] == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert first["BillingPeriodEnd"] == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert (first["BillingAccountId"], first["BillingAccountName"]) == (URN, "Acme")
    assert first["SubAccountId"] is None and first["SubAccountType"] is None  # the team itself
    assert first["BillingAccountType"] == "Team" and first["InvoiceId"] is None  # no invoice given: not invoiced
    assert (first["ProviderName"], first["PublisherName"], first["InvoiceIssuerName"]) == ("DigitalOcean",) * 3
    assert (first["ServiceName"], first["ServiceCategory"], first["ChargeCategory"]) == ("Droplets", "Compute", "Usage")
    assert (first["RegionId"], first["RegionName"], first["SkuId"]) == ("nyc3", "New York 3", "1-DO-DROPLET-S-2VCPU-4GB")
    assert first["ResourceName"] is None and first["Tags"] is None and first["PricingQuantity"] is None
    assert (first["x_Provider"], first["x_Source"], first["x_AccountKey"], first["x_Estimated"]) == ("digitalocean", "billing", "do-prod", True)

    # Blank strings from the API become NULL, never ''.
    assert second["RegionId"] is None and second["RegionName"] is None and second["SkuId"] is None
    assert (second["ResourceName"], second["ServiceName"]) == ("prod-doks", "Kubernetes")
    # In an organization the team that used the resource is the sub account.
    assert third["SubAccountId"] == OTHER_TEAM and third["RegionId"] == "fra1" and third["SubAccountType"] == "Team"
    assert third["BilledCost"] == Decimal("12.345678901")

    assert totals_by_currency(table) == raw_totals(pages) == {"USD": Decimal("12.645678901")}


def test_team_name_falls_back_to_the_registry_name_and_empty_pages_give_no_totals():
    rows = normalize([{"data_points": [point("2026-11-03", "1")]}], account(), "2026-11", URN, None, False, NOW)
    assert rows[0]["BillingAccountName"] == "Prod (DO)" and rows[0]["x_Estimated"] is False
    assert raw_totals([{"data_points": [], "total_pages": 0}]) == {}


def test_invoice_comparison_reports_the_difference():
    figures = InvoiceFigures("2026-10", CLOSED, invoice_uuid="u", invoice_amount=Decimal("100.00"), items_total=Decimal("100.00"),
                             items_by_product={"Droplets": Decimal("100.00")})
    same = figures.compare(Decimal("99.996"))
    assert same["matches_to_the_cent"] is True and same["difference"] == "-0.004"
    differs = figures.compare(Decimal("96.83"))
    assert differs["matches_to_the_cent"] is False
    assert (differs["difference"], differs["difference_percent"]) == ("-3.17", "-3.17")
    assert figures.final and not InvoiceFigures("2026-11", OPEN).final
    assert "difference" not in InvoiceFigures("2026-11", OPEN, month_to_date_usage=Decimal("5")).compare(Decimal("5"))


def test_rate_limiter_allows_a_burst_then_paces_at_250_a_minute():
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(per_minute=250, clock=lambda: clock[0], sleep=sleep)
    for _ in range(250):
        limiter.acquire()
    assert sleeps == []
    limiter.acquire()
    limiter.acquire()
    assert sleeps == [pytest.approx(60 / 250), pytest.approx(60 / 250)]
    clock[0] += 60  # a quiet minute refills the bucket
    for _ in range(250):
        limiter.acquire()
    assert len(sleeps) == 2
