"""The tables a FinOps dashboard reads, computed from `cost_daily` with DuckDB.

Windows are whole UTC days ending yesterday ("last 7 days" = the 7 days before today); month to
date includes today's partial figures. Every amount is BilledCost, summed per currency: a total is
never taken across currencies.

The four dashboard tables are computed from the serving layer's per-period daily aggregates
(serving.py: one row per provider, account, cloud account, currency and day), which a refresh
rebuilds only for the billing periods it touched; a window (month to date, 30 days, the 30 before)
reads only the periods whose days it covers. `build_marts` computes all tables over one serving
state and writes them; the catalog is built once afterwards, not after every table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_pipeline import serving, storage
from finops_pipeline.catalog import connect, register_views
from finops_pipeline.config import FinopsConfig
from finops_pipeline.lake import mart_path, write_table
from finops_pipeline.schema import sql_literal
from finops_pipeline.serving import ServingState
from finops_pipeline.status import connection_statuses, coverage_from_daily

TREND_DAYS = 30
WINDOW_DAYS = 60  # the longest window: the 30 days before the last 30
DASHBOARD_MARTS = ("provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status")
_DAILY_EMPTY = ("SELECT NULL::VARCHAR AS provider, NULL::VARCHAR AS account_key, NULL::VARCHAR AS cloud_account_id, "
                "NULL::VARCHAR AS cloud_account_name, NULL::VARCHAR AS currency, NULL::DATE AS day, NULL::DECIMAL(38,10) AS billed_cost, "
                "NULL::DECIMAL(38,10) AS effective_cost, NULL::BIGINT AS row_count WHERE false")


def _connection(data_dir: Path, state: ServingState | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory views over the serving layer (`state`, or the serving layer brought up to date)."""
    connection = connect(data_dir)
    register_views(connection, data_dir, temporary=True, state=state)
    return connection


def daily_sql(state: ServingState, first: date | None = None, last: date | None = None) -> str:
    """The per-period daily aggregates of the periods holding days in [first, last] (all by default)."""
    files = state.files("daily", first, last)
    return f"(SELECT * FROM read_parquet([{', '.join(sql_literal(f) for f in files)}], hive_partitioning = false))" if files else f"({_DAILY_EMPTY})"


def _daily_connection(data_dir: Path, state: ServingState | None, today: date) -> duckdb.DuckDBPyConnection:
    """Views `daily_all` (every period's daily aggregate) and `daily_window` (the periods with days in
    the last 60 days up to today, the longest window)."""
    state = state or serving.refresh(data_dir).state
    connection = connect(data_dir)
    connection.execute(f"CREATE TEMP VIEW daily_all AS SELECT * FROM {daily_sql(state)}")
    connection.execute(f"CREATE TEMP VIEW daily_window AS SELECT * FROM {daily_sql(state, today - timedelta(days=WINDOW_DAYS), today)}")
    return connection


def provider_cost_summary(data_dir: Path, config: FinopsConfig, today: date, state: ServingState | None = None) -> pa.Table:
    """Per provider and currency: month to date, last 7 and 30 days, the 30 days before, and the change."""
    connection = _daily_connection(data_dir, state, today)
    try:
        table = connection.sql(
            """
            WITH every AS (SELECT provider, currency, count(DISTINCT account_key) AS accounts_with_data, max(day) AS last_day_with_data
                           FROM daily_all GROUP BY provider, currency),
                 windows AS (
                   SELECT provider, currency,
                          sum(billed_cost) FILTER (day >= date_trunc('month', $today::DATE) AND day <= $today::DATE) AS month_to_date,
                          sum(billed_cost) FILTER (day >= $today::DATE - 7 AND day < $today::DATE) AS last_7_days,
                          sum(billed_cost) FILTER (day >= $today::DATE - 30 AND day < $today::DATE) AS last_30_days,
                          sum(billed_cost) FILTER (day >= $today::DATE - 60 AND day < $today::DATE - 30) AS previous_30_days
                   FROM daily_window GROUP BY provider, currency)
            SELECT e.provider, e.currency,
                   coalesce(w.month_to_date, 0) AS month_to_date, coalesce(w.last_7_days, 0) AS last_7_days,
                   coalesce(w.last_30_days, 0) AS last_30_days, coalesce(w.previous_30_days, 0) AS previous_30_days,
                   e.accounts_with_data, e.last_day_with_data, true AS has_data
            FROM every e LEFT JOIN windows w USING (provider, currency)
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


def daily_cost_trend(data_dir: Path, today: date, days: int = TREND_DAYS, state: ServingState | None = None) -> pa.Table:
    """Per provider, currency and day for the last `days` days; a day without cost is 0, not missing."""
    state = state or serving.refresh(data_dir).state
    connection = connect(data_dir)
    try:
        table = connection.sql(
            f"""
            WITH days AS (SELECT unnest(generate_series($start::DATE, $end::DATE, INTERVAL 1 DAY))::DATE AS day),
                 pairs AS (SELECT DISTINCT provider, currency FROM {daily_sql(state)}),
                 costs AS (SELECT provider, currency, day, sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost
                           FROM {daily_sql(state, today - timedelta(days=days), today - timedelta(days=1))}
                           WHERE day BETWEEN $start::DATE AND $end::DATE GROUP BY ALL)
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


def cost_by_account(data_dir: Path, config: FinopsConfig, today: date, state: ServingState | None = None) -> pa.Table:
    """Per provider and cloud account (linked account, project, subscription, team), per currency."""
    names = pa.table(
        {"account_key": [a.key for a in config.accounts], "account_name": [a.name for a in config.accounts]},
        schema=pa.schema([("account_key", pa.string()), ("account_name", pa.string())]),
    )
    connection = _daily_connection(data_dir, state, today)
    try:
        connection.register("account_names", names)
        table = connection.sql(
            """
            WITH named AS (SELECT account_key, cloud_account_id, any_value(cloud_account_name) AS cloud_account_name
                           FROM daily_all GROUP BY account_key, cloud_account_id),
                 every AS (SELECT provider, account_key, cloud_account_id, currency, min(day) AS first_day, max(day) AS last_day
                           FROM daily_all GROUP BY ALL),
                 windows AS (
                   SELECT provider, account_key, cloud_account_id, currency,
                          sum(billed_cost) FILTER (day >= date_trunc('month', $today::DATE) AND day <= $today::DATE) AS month_to_date,
                          sum(billed_cost) FILTER (day >= $today::DATE - 30 AND day < $today::DATE) AS last_30_days,
                          sum(billed_cost) FILTER (day >= $today::DATE - 60 AND day < $today::DATE - 30) AS previous_30_days
                   FROM daily_window GROUP BY ALL)
            SELECT e.provider, e.account_key, n.account_name, e.cloud_account_id, m.cloud_account_name, e.currency,
                   coalesce(w.month_to_date, 0) AS month_to_date, coalesce(w.last_30_days, 0) AS last_30_days,
                   coalesce(w.previous_30_days, 0) AS previous_30_days, e.first_day, e.last_day
            FROM every e
            LEFT JOIN windows w ON w.provider = e.provider AND w.account_key = e.account_key AND w.currency = e.currency
                               AND w.cloud_account_id IS NOT DISTINCT FROM e.cloud_account_id
            LEFT JOIN named m ON m.account_key = e.account_key AND m.cloud_account_id IS NOT DISTINCT FROM e.cloud_account_id
            LEFT JOIN account_names n ON n.account_key = e.account_key
            ORDER BY e.provider, last_30_days DESC, e.cloud_account_id
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


def billing_connection_status(data_dir: Path, config: FinopsConfig, now: datetime, state: ServingState | None = None) -> pa.Table:
    """One row per configured account, the accounts that need attention first."""
    connection = _daily_connection(data_dir, state, now.date())
    try:
        coverage = coverage_from_daily(connection, "daily_all")
    finally:
        connection.close()
    statuses = sorted(connection_statuses(config, data_dir, now, coverage), key=lambda s: (_STATUS_ORDER.get(s.status, 9), s.provider, s.account_key))
    rows = [{**asdict(s), "status": str(s.status), "failing_periods": list(s.failing_periods)} for s in statuses]
    return pa.Table.from_pylist(rows, schema=CONNECTION_STATUS_SCHEMA)


PER_ACCOUNT_META = b"finops.per_account"


def _previous_mart(data_dir: Path, name: str, key: bytes) -> tuple[pa.Table, dict] | None:
    """The table as last written, with the record (`key` in its metadata) of what it was computed from."""
    path = mart_path(data_dir, name)
    try:
        with storage.open_read(path) as handle:  # one version, whole (also on object storage)
            table = pq.read_table(handle)
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return None
    record = (table.schema.metadata or {}).get(key)
    return (table.replace_schema_metadata(None), json.loads(record)) if record else None


def per_account(name: str, data_dir: Path, state: ServingState, today: date,
                compute: Callable[[list[str] | None], pa.Table], order: Callable[[pa.Table], pa.Table]) -> pa.Table:
    """A table whose rows each belong to one account key (its series are its own), rebuilt only for the
    accounts whose partitions changed since the table was written for the same `today`; the rows of
    the others are taken from that table. Each account's partition versions are recorded in the file
    (so the record and the rows it describes are replaced together)."""
    fingerprints = state.account_fingerprints()
    changed: list[str] | None = None
    previous = _previous_mart(data_dir, name, PER_ACCOUNT_META)
    if previous is not None and previous[1].get("today") == today.isoformat():
        table, record = previous
        known = record.get("accounts", {})
        if set(table.column("account_key").to_pylist()) <= set(fingerprints):
            changed = sorted({a for a, f in fingerprints.items() if known.get(a) != f} | (set(known) - set(fingerprints)))
    if changed is None:
        result = compute(None)
    else:
        kept = table.filter(pc.invert(pc.is_in(table.column("account_key"), pa.array(changed, pa.string()))))
        fresh = compute(changed) if changed else kept.slice(0, 0)
        result = order(pa.concat_tables([kept, fresh.cast(kept.schema)]))
    record = json.dumps({"today": today.isoformat(), "accounts": fingerprints}, sort_keys=True)
    return result.replace_schema_metadata({**(result.schema.metadata or {}), PER_ACCOUNT_META: record})


PER_PERIOD_META = b"finops.per_period"


class _RecomputeAll(Exception):
    """A fragment cannot be combined with the previous rows (e.g. a tag key appeared or went)."""


def per_period(name: str, data_dir: Path, state: ServingState, compute: Callable[[ServingState, pa.Table | None], pa.Table],
               order: list[tuple[str, str]]) -> pa.Table:
    """A table whose rows each belong to one billing period (column `billing_period`), rebuilt only for
    the periods whose serving version changed since the table was written; the other periods' rows are
    taken from that table. `compute(state, kept)` computes the rows of the periods in `state` (with
    `kept`, the previous rows it will be combined with, or None for a whole rebuild)."""
    versions = {p.billing_period: p.version for p in state.periods.values()}
    previous = _previous_mart(data_dir, name, PER_PERIOD_META)
    result = None
    if previous is not None and all(p.own_rows_only for p in state.periods.values()):
        table, record = previous
        known = record.get("periods", {})
        changed = sorted({p for p, v in versions.items() if known.get(p) != v} | (set(known) - set(versions)))
        kept = table.filter(pc.invert(pc.is_in(table.column("billing_period"), pa.array(changed, pa.string()))))
        try:
            fresh = compute(state.only(changed), kept) if changed else kept.slice(0, 0)
            result = pa.concat_tables([kept, fresh.cast(kept.schema)]).sort_by(order)
        except _RecomputeAll:
            result = None
    if result is None:
        result = compute(state, None)
    record = json.dumps({"periods": versions}, sort_keys=True)
    return result.replace_schema_metadata({**(result.schema.metadata or {}), PER_PERIOD_META: record})


def _cost_by_tag(data_dir: Path, state: ServingState, kept: pa.Table | None) -> pa.Table:
    """cost_by_tag for the periods of `state`; combined with `kept` only while the lake's tag keys stay the same."""
    from finops_pipeline import insight

    if kept is None:
        return insight.cost_by_tag(data_dir, state)
    before = set(kept.column("tag_key").to_pylist())  # every key has rows in every period (its untagged bucket at least)
    still = set(kept.filter(pc.is_valid(kept.column("tag_value"))).column("tag_key").to_pylist())
    found = insight.tag_keys(data_dir, state)
    if (still | found) != before and kept.num_rows:
        raise _RecomputeAll
    return insight.cost_by_tag(data_dir, state, keys=before if kept.num_rows else found)


def _forecast_order(table: pa.Table) -> pa.Table:
    """The order of cost_forecast (stable, as its rows are built)."""
    return table.sort_by([("provider", "ascending"), ("account_key", "ascending"), ("currency", "ascending")])


def _anomaly_order(table: pa.Table) -> pa.Table:
    """insight.anomaly_order in Arrow: newest day first, then the largest impact (stable)."""
    keyed = table.append_column("_impact", pc.abs(table.column("impact")))
    keyed = keyed.sort_by([("day", "descending"), ("_impact", "descending"), ("provider", "ascending"), ("account_key", "ascending"),
                           ("service_name", "ascending")])
    return keyed.drop_columns(["_impact"])


def build_mart(name: str, data_dir: Path, config: FinopsConfig, now: datetime, state: ServingState | None = None) -> pa.Table:
    """One table over the serving `state` (by default the serving layer brought up to date first)."""
    from finops_pipeline import insight
    from finops_pipeline.currency import cost_in_reporting_currency

    state = state or serving.refresh(data_dir).state
    today = now.date()
    builders: dict[str, Callable[[], pa.Table]] = {
        "cost_by_service": lambda: per_period(name, data_dir, state, lambda part, _: insight.cost_by_service(data_dir, part), [
            ("grain", "ascending"), ("period_start", "ascending"), ("provider", "ascending"), ("currency", "ascending"),
            ("effective_cost", "descending"), ("service_name", "ascending")]),
        "cost_by_tag": lambda: per_period(name, data_dir, state, lambda part, kept: _cost_by_tag(data_dir, part, kept), [
            ("grain", "ascending"), ("period_start", "ascending"), ("provider", "ascending"), ("tag_key", "ascending"),
            ("currency", "ascending"), ("untagged", "ascending"), ("effective_cost", "descending"), ("tag_value", "ascending")]),
        "cost_forecast": lambda: per_account(name, data_dir, state, today, lambda accounts: insight.cost_forecast(data_dir, today, state, accounts),
                                             _forecast_order),
        "cost_anomalies": lambda: per_account(name, data_dir, state, today, lambda accounts: insight.cost_anomalies(data_dir, today, state, accounts),
                                              _anomaly_order),
        "budget_status": lambda: insight.budget_status(data_dir, config.budgets, today, state=state),
        "cost_in_reporting_currency": lambda: cost_in_reporting_currency(data_dir, config.reporting_currency, state=state),
        "provider_cost_summary": lambda: provider_cost_summary(data_dir, config, today, state),
        "daily_cost_trend": lambda: daily_cost_trend(data_dir, today, state=state),
        "cost_by_account": lambda: cost_by_account(data_dir, config, today, state),
        "billing_connection_status": lambda: billing_connection_status(data_dir, config, now, state),
    }
    return builders[name]()


def write_mart(name: str, table: pa.Table, data_dir: Path) -> Path:
    """Replace the mart file atomically. The catalog's views pick it up at its next build (once per
    run, after the tables), not after every table."""
    path = mart_path(data_dir, name)
    write_table(path, table)
    return path


def build_marts(data_dir: Path, config: FinopsConfig, now: datetime, names: tuple[str, ...] | None = None,
                timings: dict[str, float] | None = None) -> dict[str, pa.Table]:
    """Build and write the tables `names` (all by default) over one serving state, brought up to date once."""
    import time

    from finops_pipeline.catalog import MART_TABLES

    state = serving.refresh(data_dir).state
    tables = {}
    for name in names or MART_TABLES:
        start = time.perf_counter()
        tables[name] = build_mart(name, data_dir, config, now, state)
        write_mart(name, tables[name], data_dir)
        if timings is not None:
            timings[name] = time.perf_counter() - start
    return tables
