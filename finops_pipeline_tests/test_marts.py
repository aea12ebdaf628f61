"""The dashboard tables: windows, zero-filled days, one row per currency, never a sum across currencies."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq

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


# --- the tables as computed before the serving layer: a full scan of every partition (the oracle) -----------

REFERENCE_SQL = {
    "provider_cost_summary": """
        WITH c AS (SELECT x_Provider AS provider, BillingCurrency AS currency,
                          ChargePeriodStart::DATE AS day, BilledCost, x_AccountKey FROM cost_daily)
        SELECT provider, currency,
               coalesce(sum(BilledCost) FILTER (day >= date_trunc('month', $today::DATE) AND day <= $today::DATE), 0) AS month_to_date,
               coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 7 AND day < $today::DATE), 0) AS last_7_days,
               coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 30 AND day < $today::DATE), 0) AS last_30_days,
               coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 60 AND day < $today::DATE - 30), 0) AS previous_30_days,
               count(DISTINCT x_AccountKey) AS accounts_with_data, max(day) AS last_day_with_data, true AS has_data
        FROM c GROUP BY provider, currency""",
    "daily_cost_trend": """
        WITH days AS (SELECT unnest(generate_series($today::DATE - 30, $today::DATE - 1, INTERVAL 1 DAY))::DATE AS day),
             pairs AS (SELECT DISTINCT x_Provider AS provider, BillingCurrency AS currency FROM cost_daily),
             costs AS (SELECT x_Provider AS provider, BillingCurrency AS currency, ChargePeriodStart::DATE AS day,
                              sum(BilledCost) AS billed_cost, sum(EffectiveCost) AS effective_cost
                       FROM cost_daily WHERE ChargePeriodStart::DATE BETWEEN $today::DATE - 30 AND $today::DATE - 1 GROUP BY ALL)
        SELECT p.provider, p.currency, d.day, coalesce(c.billed_cost, 0)::DECIMAL(38,10) AS billed_cost,
               coalesce(c.effective_cost, 0)::DECIMAL(38,10) AS effective_cost
        FROM pairs p CROSS JOIN days d LEFT JOIN costs c ON c.provider = p.provider AND c.currency = p.currency AND c.day = d.day""",
    "cost_by_account": """
        WITH c AS (SELECT x_Provider AS provider, x_AccountKey AS account_key, coalesce(SubAccountId, BillingAccountId) AS cloud_account_id,
                          any_value(coalesce(SubAccountName, BillingAccountName)) OVER (
                              PARTITION BY x_AccountKey, coalesce(SubAccountId, BillingAccountId)) AS cloud_account_name,
                          BillingCurrency AS currency, ChargePeriodStart::DATE AS day, BilledCost
                   FROM cost_daily)
        SELECT c.provider, c.account_key, c.cloud_account_id, any_value(c.cloud_account_name) AS cloud_account_name, c.currency,
               coalesce(sum(BilledCost) FILTER (day >= date_trunc('month', $today::DATE) AND day <= $today::DATE), 0) AS month_to_date,
               coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 30 AND day < $today::DATE), 0) AS last_30_days,
               coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 60 AND day < $today::DATE - 30), 0) AS previous_30_days,
               min(day) AS first_day, max(day) AS last_day
        FROM c GROUP BY c.provider, c.account_key, c.cloud_account_id, c.currency""",
}


def _rows(table: pa.Table, columns: list[str] | None = None) -> list[tuple]:
    """A table's rows as sorted tuples (the order of ties is not part of a table's meaning)."""
    data = table.select(columns or table.column_names).to_pylist()
    return sorted((tuple(r.values()) for r in data), key=repr)


def assert_dashboard_marts_match_a_full_scan(data_dir: Path, tables: dict[str, pa.Table], today: date) -> None:
    """The four dashboard tables equal the same queries over every raw partition (the lake before the serving layer)."""
    import duckdb

    from finops_pipeline.catalog import cost_daily_sql

    connection = duckdb.connect()
    try:
        connection.execute(f"CREATE TEMP VIEW cost_daily AS {cost_daily_sql(data_dir)}")
        for name, sql in REFERENCE_SQL.items():
            reference = connection.sql(sql, params={"today": today}).to_arrow_table()
            table = tables[name].filter(pa.compute.field("provider").is_valid())
            if name == "provider_cost_summary":
                table = table.filter(pa.compute.field("has_data"))
            assert _rows(table, reference.column_names) == _rows(reference), name
            assert table.select(reference.column_names).schema.types == reference.schema.types, name
    finally:
        connection.close()


def test_incremental_tables_equal_a_full_rebuild_after_one_month_is_restated(tmp_path: Path) -> None:
    from finops_pipeline import insight, serving
    from finops_pipeline.catalog import MART_TABLES
    from finops_pipeline.marts import build_marts
    from finops_pipeline_tests.test_serving import ACCOUNTS, TODAY, make_lake, write_month

    config = parse_config({"accounts": [{"key": key, "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01",
                                         "account_id": "111111111111"} for _, _, key, _ in ACCOUNTS]}, Path("finops.yaml"))
    now = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
    make_lake(tmp_path)
    first = build_marts(tmp_path, config, now)
    assert_dashboard_marts_match_a_full_scan(tmp_path, first, TODAY)
    # One month restated (one account), then a new tag key in another month: each time only what changed is
    # recomputed, and every table equals a rebuild from nothing.
    for account, period, seed in ((ACCOUNTS[2], "2026-10", "restated"), (ACCOUNTS[0], "2026-11", "new-tag")):
        write_month(tmp_path, account, period, seed=seed)
        if seed == "new-tag":
            key = serving.PartitionKey(*account[:3], period)
            table = pq.read_table(key.path(tmp_path))
            tags = pa.array(['{"cost-center": "42"}'] * table.num_rows, pa.string())
            write_partition(tmp_path, key, table.set_column(table.schema.get_field_index("Tags"), "Tags", tags),
                            {"USD": sum(table.column("BilledCost").to_pylist(), Decimal(0))})
        tables = build_marts(tmp_path, config, now)
        assert_dashboard_marts_match_a_full_scan(tmp_path, tables, TODAY)
        state = serving.current_state(tmp_path)
        full = {
            "cost_by_service": insight.cost_by_service(tmp_path, state), "cost_by_tag": insight.cost_by_tag(tmp_path, state),
            "cost_forecast": insight.cost_forecast(tmp_path, TODAY, state), "cost_anomalies": insight.cost_anomalies(tmp_path, TODAY, state),
        }
        for name, reference in full.items():
            assert _rows(tables[name]) == _rows(reference), name
            assert tables[name].num_rows > 0 or name == "cost_anomalies"
        # Combined rows come out in each table's order.
        keys = [insight.anomaly_order(r) for r in tables["cost_anomalies"].to_pylist()]
        assert keys == sorted(keys)
        keys = [(r["provider"], r["account_key"], r["currency"]) for r in tables["cost_forecast"].to_pylist()]
        assert keys == sorted(keys)
        service_keys = [(r["grain"], r["period_start"], r["provider"], r["currency"], -r["effective_cost"]) for r in tables["cost_by_service"].to_pylist()]
        assert service_keys == sorted(service_keys)
        assert set(tables) == set(MART_TABLES)
    assert "cost_center" in tables["cost_by_tag"].column("tag_key").to_pylist()
