"""The dashboard tables: windows, zero-filled days, one row per currency, never a sum across currencies."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from finops_pipeline.config import parse_config
from finops_pipeline.lake import PartitionKey, write_partition
from finops_pipeline.marts import billing_connection_status, cost_by_account, daily_cost_trend, provider_cost_summary
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table
from finops_pipeline_tests.test_schema import row

TODAY = date(2026, 11, 26)
CONFIG = parse_config(
    {
        "accounts": [
            {"key": "aws-a", "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01", "account_id": "111111111111"},
            {"key": "do-team", "provider": "digitalocean", "connected_at": "2026-11-25T00:00:00Z", "token_env": "DO_TOKEN"},
        ]
    },
    Path("finops.yaml"),
)


def cost(day: date, amount: str, currency: str = "USD", sub: str = "111111111111") -> dict:
    start, end = day_bounds(day)
    period_start, period_end = month_bounds(day.strftime("%Y-%m"))
    return row(
        BilledCost=amount, EffectiveCost=amount, BillingCurrency=currency, ChargePeriodStart=start, ChargePeriodEnd=end,
        BillingPeriodStart=period_start, BillingPeriodEnd=period_end, x_AccountKey="aws-a", SubAccountId=sub,
    )


def seed(tmp_path: Path, rows: list[dict]) -> Path:
    by_period: dict[str, list[dict]] = {}
    for r in rows:
        by_period.setdefault(r["BillingPeriodStart"].strftime("%Y-%m"), []).append(r)
    for period, items in by_period.items():
        write_partition(tmp_path, PartitionKey("aws", "cost_explorer", "aws-a", period), rows_to_table(items), {})
    return tmp_path


def test_summary_windows_are_whole_days_before_today(tmp_path: Path) -> None:
    rows = [cost(TODAY - timedelta(days=n), "1.01") for n in range(0, 70)]  # one charge a day, today included
    summary = provider_cost_summary(seed(tmp_path, rows), CONFIG, TODAY).to_pylist()
    aws = next(r for r in summary if r["provider"] == "aws")
    assert aws["month_to_date"] == Decimal("26.26")  # Nov 1..26, today's partial day included
    assert aws["last_7_days"] == Decimal("7.07")
    assert aws["last_30_days"] == Decimal("30.30")
    assert aws["previous_30_days"] == Decimal("30.30")
    assert aws["change_pct_vs_previous_30_days"] == 0.0
    do = next(r for r in summary if r["provider"] == "digitalocean")
    assert do["has_data"] is False and do["last_30_days"] is None  # a card saying "No data", not 0


def test_currencies_are_never_added_together(tmp_path: Path) -> None:
    rows = [cost(TODAY - timedelta(days=1), "10", "USD"), cost(TODAY - timedelta(days=1), "7", "EUR")]
    summary = provider_cost_summary(seed(tmp_path, rows), CONFIG, TODAY).to_pylist()
    assert sorted((r["currency"], r["last_7_days"]) for r in summary if r["provider"] == "aws") == [
        ("EUR", Decimal("7")), ("USD", Decimal("10"))
    ]
    by_account = cost_by_account(tmp_path, CONFIG, TODAY).to_pylist()
    assert sorted((r["currency"], r["last_30_days"]) for r in by_account) == [("EUR", Decimal("7")), ("USD", Decimal("10"))]


def test_trend_has_every_day_with_zero_for_days_without_cost(tmp_path: Path) -> None:
    rows = [cost(TODAY - timedelta(days=3), "5.5"), cost(TODAY - timedelta(days=10), "2")]
    trend = daily_cost_trend(seed(tmp_path, rows), TODAY).to_pylist()
    assert len(trend) == 30
    assert [r["day"] for r in trend] == [TODAY - timedelta(days=n) for n in range(30, 0, -1)]
    by_day = {r["day"]: r["billed_cost"] for r in trend}
    assert by_day[TODAY - timedelta(days=3)] == Decimal("5.5")
    assert by_day[TODAY - timedelta(days=4)] == Decimal("0")
    assert sum(by_day.values()) == Decimal("7.5")


def test_connection_status_puts_accounts_needing_attention_first(tmp_path: Path) -> None:
    seed(tmp_path, [cost(TODAY - timedelta(days=1), "1")])
    now = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)  # 60 h after the DigitalOcean team connected
    table = billing_connection_status(tmp_path, CONFIG, now).to_pylist()
    assert [(r["account_key"], r["status"]) for r in table] == [("do-team", "NO_DATA"), ("aws-a", "OK")]
    assert "billing read" in table[0]["fix"]
    assert table[1]["first_day_with_data"] == TODAY - timedelta(days=1)
