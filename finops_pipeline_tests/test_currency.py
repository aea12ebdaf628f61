"""The reporting currency: converted amounts beside billed ones, the provider's rate first, else the ECB's."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import ConfigError, parse_config
from finops_pipeline.currency import RateFileError, cost_in_reporting_currency, read_ecb_csv
from finops_pipeline.lake import PartitionKey, write_partition
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table

HIST = """Date,USD,JPY,GBP,XYZ,
2026-11-27,1.0580,160.12,0.8331,N/A,
2026-11-26,1.0500,159.90,0.8300,N/A,
"""
DAILY = """Date, USD, JPY, GBP,
27 November 2026, 1.0580, 160.12, 0.8331,
"""


def rows(provider: str, account: str, currency: str, day: date, billed: str, rate: str | None = None) -> list[dict]:
    start, end = day_bounds(day)
    period_start, period_end = month_bounds(day.strftime("%Y-%m"))
    return [{
        "BilledCost": billed, "EffectiveCost": billed, "ListCost": billed, "ContractedCost": billed, "BillingCurrency": currency,
        "BillingPeriodStart": period_start, "BillingPeriodEnd": period_end, "ChargePeriodStart": start, "ChargePeriodEnd": end,
        "ChargeCategory": "Usage", "BillingAccountId": "b", "InvoiceIssuerName": "x", "ProviderName": "x", "PublisherName": "x",
        "ServiceName": "Compute", "ServiceCategory": "Compute", "x_Provider": provider, "x_Source": "s", "x_AccountKey": account,
        "x_Estimated": False, "x_IngestedAt": datetime(2026, 11, 28, tzinfo=timezone.utc), "x_CurrencyConversionRate": rate,
    }]


def lake(tmp_path: Path) -> Path:
    for provider, source, account, currency, billed, rate in (
        ("aws", "cur", "aws-a", "USD", "105.80", None),
        ("gcp", "bigquery_export", "gcp-eu", "EUR", "100.00", "0.9400"),  # 0.94 EUR per USD, the export's own rate
        ("azure", "cost_management", "az-jp", "JPY", "16012", None),
    ):
        table = rows_to_table(rows(provider, account, currency, date(2026, 11, 27), billed, rate))
        write_partition(tmp_path, PartitionKey(provider, source, account, "2026-11"), table, {currency: Decimal(billed)})
    return tmp_path


def test_both_ecb_layouts_read_and_cross_rates_go_through_the_euro(tmp_path: Path) -> None:
    (tmp_path / "hist.csv").write_text(HIST)
    (tmp_path / "daily.csv").write_text(DAILY)
    hist, daily = read_ecb_csv(tmp_path / "hist.csv"), read_ecb_csv(tmp_path / "daily.csv")
    assert hist.per_euro("USD", date(2026, 11, 27)) == (Decimal("1.0580"), date(2026, 11, 27))
    assert daily.per_euro("JPY", date(2026, 11, 27)) == (Decimal("160.12"), date(2026, 11, 27))
    assert hist.per_euro("XYZ", date(2026, 11, 27)) is None  # N/A
    # A Saturday has no fixing: Friday's is used and its date is kept.
    assert hist.rate("JPY", "USD", date(2026, 11, 28)) == (Decimal("1.0580") / Decimal("160.12"), date(2026, 11, 27))
    assert hist.per_euro("USD", date(2026, 12, 10)) is None  # older than a week: no rate rather than a stale one
    (tmp_path / "bad.csv").write_text("Currency,Rate\nUSD,1\n")
    with pytest.raises(RateFileError, match="first column must be 'Date'"):
        read_ecb_csv(tmp_path / "bad.csv")


def test_amounts_convert_beside_the_billed_ones_with_rate_date_and_source(tmp_path: Path) -> None:
    data = lake(tmp_path)
    (data / "rates").mkdir()
    (data / "rates" / "eurofxref-hist.csv").write_text(HIST)
    table = {r["account_key"]: r for r in cost_in_reporting_currency(data, "USD").to_pylist()}
    assert table["aws-a"]["rate_source"] == "identity" and table["aws-a"]["billed_cost_reporting"] == Decimal("105.80")
    # GCP's own rate comes first: 100 EUR at 0.94 EUR per USD.
    gcp = table["gcp-eu"]
    assert gcp["rate_source"] == "provider" and gcp["billed_cost_reporting"] == Decimal("106.3829787234")
    assert gcp["billed_cost"] == Decimal("100.00")  # the billed amount is never overwritten
    jpy = table["az-jp"]
    assert jpy["rate_source"] == "ECB (eurofxref-hist.csv)" and jpy["rate_date"] == date(2026, 11, 27)
    assert jpy["billed_cost_reporting"] == (Decimal(16012) * (Decimal("1.0580") / Decimal("160.12")).quantize(Decimal("1e-18"))).quantize(Decimal("1e-10"))
    total = sum(r["billed_cost_reporting"] for r in table.values())
    assert total == Decimal("105.80") + Decimal("106.3829787234") + jpy["billed_cost_reporting"]


def test_without_a_rate_the_converted_amounts_are_null_and_say_why(tmp_path: Path) -> None:
    data = lake(tmp_path)
    table = {r["account_key"]: r for r in cost_in_reporting_currency(data, "GBP").to_pylist()}
    assert table["az-jp"]["rate_source"] == "missing" and table["az-jp"]["billed_cost_reporting"] is None
    assert table["gcp-eu"]["rate_source"] == "missing"  # GCP's rate is to USD only
    assert cost_in_reporting_currency(data, None).num_rows == 0


def test_the_registry_takes_a_reporting_currency_and_refuses_a_bad_one() -> None:
    good = parse_config({"accounts": [], "reporting_currency": "EUR"}, Path("finops.yaml"))
    assert good.reporting_currency == "EUR" and not good.problems
    with pytest.raises(ConfigError, match="'reporting_currency' must be an ISO 4217 code like EUR, got 'euro'"):
        parse_config({"accounts": [], "reporting_currency": "euro"}, Path("finops.yaml"))


def test_the_page_shows_the_month_in_the_reporting_currency_with_its_rates(tmp_path: Path) -> None:
    from finops_pipeline.catalog import build_catalog
    from finops_pipeline.dashboard import write_dashboard
    from finops_pipeline.marts import build_mart, write_mart

    data = lake(tmp_path)
    (data / "rates").mkdir()
    (data / "rates" / "eurofxref-hist.csv").write_text(HIST)
    config = parse_config({"accounts": [], "reporting_currency": "USD"}, Path("finops.yaml"))
    now = datetime(2026, 11, 28, 8, tzinfo=timezone.utc)
    for name in ("provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status", "cost_in_reporting_currency"):
        write_mart(name, build_mart(name, data, config, now), data)
    build_catalog(data)
    html = write_dashboard(data, now).read_text(encoding="utf-8")
    table = {r["account_key"]: r for r in cost_in_reporting_currency(data, "USD").to_pylist()}
    total = sum(r["billed_cost_reporting"] for r in table.values())
    assert f'<span data-field="reporting_billed">USD {total:,.2f}</span>' in html
    assert "Converted: EUR (provider), JPY (ECB (eurofxref-hist.csv)); latest rate of 2026-11-27." in html
