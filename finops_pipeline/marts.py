"""The tables a FinOps dashboard reads, computed from `cost_daily` with DuckDB.

Windows are whole UTC days ending yesterday ("last 7 days" = the 7 days before today); month to
date includes today's partial figures. Every amount is BilledCost, summed per currency: a total is
never taken across currencies.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from finops_pipeline.catalog import build_catalog, register_views
from finops_pipeline.config import FinopsConfig
from finops_pipeline.lake import mart_path, write_table
from finops_pipeline.status import connection_statuses

TREND_DAYS = 30


def _connection(data_dir: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    register_views(connection, data_dir, temporary=True)
    return connection


def provider_cost_summary(data_dir: Path, config: FinopsConfig, today: date) -> pa.Table:
    """Per provider and currency: month to date, last 7 and 30 days, the 30 days before, and the change."""
    connection = _connection(data_dir)
    try:
        table = connection.sql(
            """
            WITH c AS (SELECT x_Provider AS provider, BillingCurrency AS currency,
                              ChargePeriodStart::DATE AS day, BilledCost, x_AccountKey FROM cost_daily)
            SELECT provider, currency,
                   coalesce(sum(BilledCost) FILTER (day >= date_trunc('month', $today::DATE) AND day <= $today::DATE), 0) AS month_to_date,
                   coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 7 AND day < $today::DATE), 0) AS last_7_days,
                   coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 30 AND day < $today::DATE), 0) AS last_30_days,
                   coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 60 AND day < $today::DATE - 30), 0) AS previous_30_days,
                   count(DISTINCT x_AccountKey) AS accounts_with_data,
                   max(day) AS last_day_with_data,
                   true AS has_data
            FROM c GROUP BY provider, currency
            """,
            params={"today": today},
        ).to_arrow_table()
    finally:
        connection.close()
    change = pa.array(
        [
            None if prev == 0 else round(float((last - prev) / prev * 100), 1)
            for last, prev in zip(table.column("last_30_days").to_pylist(), table.column("previous_30_days").to_pylist())
        ],
        type=pa.float64(),
    )
    table = table.append_column("change_pct_vs_previous_30_days", change)
    # A configured provider with no rows still gets a card: "No data", with no amounts (NULL, not 0).
    seen = set(table.column("provider").to_pylist())
    missing = sorted({a.provider for a in config.accounts} - seen)
    if missing:
        empty = {name: [None] * len(missing) for name in table.column_names}
        empty["provider"] = missing
        empty["has_data"] = [False] * len(missing)
        empty["accounts_with_data"] = [0] * len(missing)
        table = pa.concat_tables([table, pa.table(empty, schema=table.schema)])
    table = table.append_column("as_of", pa.array([today] * table.num_rows, type=pa.date32()))
    return table.sort_by([("provider", "ascending"), ("currency", "ascending")])


def daily_cost_trend(data_dir: Path, today: date, days: int = TREND_DAYS) -> pa.Table:
    """Per provider, currency and day for the last `days` days; a day without cost is 0, not missing."""
    connection = _connection(data_dir)
    try:
        table = connection.sql(
            """
            WITH days AS (SELECT unnest(generate_series($start::DATE, $end::DATE, INTERVAL 1 DAY))::DATE AS day),
                 pairs AS (SELECT DISTINCT x_Provider AS provider, BillingCurrency AS currency FROM cost_daily),
                 costs AS (SELECT x_Provider AS provider, BillingCurrency AS currency, ChargePeriodStart::DATE AS day,
                                  sum(BilledCost) AS billed_cost, sum(EffectiveCost) AS effective_cost
                           FROM cost_daily WHERE ChargePeriodStart::DATE BETWEEN $start::DATE AND $end::DATE GROUP BY ALL)
            SELECT p.provider, p.currency, d.day,
                   coalesce(c.billed_cost, 0)::DECIMAL(38,10) AS billed_cost,
                   coalesce(c.effective_cost, 0)::DECIMAL(38,10) AS effective_cost
            FROM pairs p CROSS JOIN days d
            LEFT JOIN costs c ON c.provider = p.provider AND c.currency = p.currency AND c.day = d.day
            ORDER BY p.provider, p.currency, d.day
            """,
            params={"start": today - timedelta(days=days), "end": today - timedelta(days=1)},
        ).to_arrow_table()
    finally:
        connection.close()
    return table


def cost_by_account(data_dir: Path, config: FinopsConfig, today: date) -> pa.Table:
    """Per provider and cloud account (linked account, project, subscription, team), per currency."""
    names = pa.table(
        {"account_key": [a.key for a in config.accounts], "account_name": [a.name for a in config.accounts]},
        schema=pa.schema([("account_key", pa.string()), ("account_name", pa.string())]),
    )
    connection = _connection(data_dir)
    try:
        connection.register("account_names", names)
        table = connection.sql(
            """
            WITH c AS (SELECT x_Provider AS provider, x_AccountKey AS account_key,
                              coalesce(SubAccountId, BillingAccountId) AS cloud_account_id,
                              any_value(coalesce(SubAccountName, BillingAccountName)) OVER (
                                  PARTITION BY x_AccountKey, coalesce(SubAccountId, BillingAccountId)) AS cloud_account_name,
                              BillingCurrency AS currency, ChargePeriodStart::DATE AS day, BilledCost
                       FROM cost_daily)
            SELECT c.provider, c.account_key, n.account_name, c.cloud_account_id, any_value(c.cloud_account_name) AS cloud_account_name,
                   c.currency,
                   coalesce(sum(BilledCost) FILTER (day >= date_trunc('month', $today::DATE) AND day <= $today::DATE), 0) AS month_to_date,
                   coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 30 AND day < $today::DATE), 0) AS last_30_days,
                   coalesce(sum(BilledCost) FILTER (day >= $today::DATE - 60 AND day < $today::DATE - 30), 0) AS previous_30_days,
                   min(day) AS first_day, max(day) AS last_day
            FROM c LEFT JOIN account_names n USING (account_key)
            GROUP BY c.provider, c.account_key, n.account_name, c.cloud_account_id, c.currency
            ORDER BY c.provider, last_30_days DESC, c.cloud_account_id
            """,
            params={"today": today},
        ).to_arrow_table()
    finally:
        connection.close()
    return table


CONNECTION_STATUS_SCHEMA = pa.schema(
    [
        ("account_key", pa.string()),
        ("account_name", pa.string()),
        ("provider", pa.string()),
        ("source", pa.string()),
        ("connected_at", pa.timestamp("us", tz="UTC")),
        ("hours_since_connected", pa.float64()),
        ("connected_for", pa.string()),
        ("status", pa.string()),
        ("first_day_with_data", pa.date32()),
        ("last_day_with_data", pa.date32()),
        ("rows", pa.int64()),
        ("last_successful_pull", pa.timestamp("us", tz="UTC")),
        ("last_error", pa.string()),
        ("error_code", pa.string()),
        ("cause", pa.string()),
        ("fix", pa.string()),
        ("becomes_no_data_at", pa.timestamp("us", tz="UTC")),
        ("failing_periods", pa.list_(pa.string())),
    ]
)

_STATUS_ORDER = {"ERROR": 0, "NO_DATA": 1, "PENDING": 2, "OK": 3}


def billing_connection_status(data_dir: Path, config: FinopsConfig, now: datetime) -> pa.Table:
    """One row per configured account, the accounts that need attention first."""
    statuses = sorted(connection_statuses(config, data_dir, now), key=lambda s: (_STATUS_ORDER.get(s.status, 9), s.provider, s.account_key))
    rows = [{**asdict(s), "status": str(s.status), "failing_periods": list(s.failing_periods)} for s in statuses]
    return pa.Table.from_pylist(rows, schema=CONNECTION_STATUS_SCHEMA)


def build_mart(name: str, data_dir: Path, config: FinopsConfig, now: datetime) -> pa.Table:
    from finops_pipeline import insight
    from finops_pipeline.currency import cost_in_reporting_currency

    today = now.date()
    builders = {
        "cost_by_service": lambda: insight.cost_by_service(data_dir),
        "cost_by_tag": lambda: insight.cost_by_tag(data_dir),
        "cost_forecast": lambda: insight.cost_forecast(data_dir, today),
        "cost_anomalies": lambda: insight.cost_anomalies(data_dir, today),
        "budget_status": lambda: insight.budget_status(data_dir, config.budgets, today),
        "cost_in_reporting_currency": lambda: cost_in_reporting_currency(data_dir, config.reporting_currency),
        "provider_cost_summary": lambda: provider_cost_summary(data_dir, config, today),
        "daily_cost_trend": lambda: daily_cost_trend(data_dir, today),
        "cost_by_account": lambda: cost_by_account(data_dir, config, today),
        "billing_connection_status": lambda: billing_connection_status(data_dir, config, now),
    }
    return builders[name]()


def write_mart(name: str, table: pa.Table, data_dir: Path) -> Path:
    """Replace the mart file atomically and refresh the catalog's views."""
    path = mart_path(data_dir, name)
    write_table(path, table)
    build_catalog(data_dir)
    return path
