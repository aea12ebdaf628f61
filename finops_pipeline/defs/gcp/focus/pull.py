"""GCP's FOCUS export in BigQuery -> cost_daily, one invoice month (BillingPeriodStart) per refresh.

1. Find the table: `table` from the settings (a FOCUS view) or the export's
   gcp_billing_export_focus_<BILLING_ACCOUNT>, and read its schema (tables.get). The shared FOCUS reader's
   rules map its columns onto cost_daily and refuse a table of an unknown FOCUS version, without a mandatory
   column or with a column of the wrong type, naming the table and the fix, before any query runs.
2. The late-data rule of every BigQuery source (defs/gcp/query.py): the charge days that can hold rows of the
   invoice month (15 days before it, for late usage, to the day after it, for invoice months in Pacific time)
   that were never read, or are within `recent_days`, are checked with the state query; only days whose
   MAX(x_ExportTime) or BilledCost moved are re-read, aggregated per day in BigQuery.
3. The aggregated rows go through the shared FOCUS reader (value checks, the daily rollup, Tags as JSON,
   ServiceCategory, the constants) via one local Parquet file of the answer; the day cache keeps each day's
   cost_daily rows whole, and the month's partition is rebuilt from it, reconciling exactly per currency to
   the table's SUM(BilledCost).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finops_pipeline import focus
from finops_pipeline.config import Account
from finops_pipeline.defs.gcp import PROVIDER, day_cache
from finops_pipeline.defs.gcp.bigquery_export.normalize import resource_type
from finops_pipeline.defs.gcp.client import Budget, bigquery_client
from finops_pipeline.defs.gcp.focus.focus_query import (
    ALIASES,
    EXPORT_TIME,
    STATE_COLUMNS,
    STATE_NOT_NULL,
    FocusTable,
    as_of_parameter,
    checked_table,
    day_parameters,
    default_table,
    duckdb_type,
    rows_sql,
    state_sql,
)
from finops_pipeline.defs.gcp.focus.source import NO_DATA
from finops_pipeline.defs.gcp.query import (
    DayState,
    QueryLog,
    check_lines_match_states,
    checked_dataset,
    checked_project,
    collect_states,
    dataset_tables,
    refresh_days,
)
from finops_pipeline.diagnosis import PENDING, Diagnosis, ProviderError
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import month_bounds
from finops_pipeline.workdir import WorkSession

if TYPE_CHECKING:  # google-cloud-bigquery is imported where a query runs: loading the definitions stays cheap
    import pyarrow as pa
    from google.cloud import bigquery

SOURCE = "focus"
# Changed when the rows a day becomes change: a cache built by another version is read again, once.
MAPPING_VERSION = "focus-3"  # 3: units in FOCUS UnitFormat, subcategories under their category. 2: FOCUS 1.2 conformance and the derivations below
MARGIN_DAYS = 15
# Google's FOCUS export leaves ResourceType (and on some rows SubAccountType) NULL: ResourceType from the resource
# name the way the billing export's source names it (bigquery_export.normalize.resource_type, once per distinct id,
# looked up from a table registered on the connection), SubAccountType `Project` (a GCP sub account is a project).
RESOURCE_TYPES = "gcp_resource_types"
DERIVED = {"ResourceType": f'(SELECT t.type FROM {RESOURCE_TYPES} AS t WHERE t.id = "ResourceId")',
           "SubAccountType": "CASE WHEN \"SubAccountId\" IS NOT NULL THEN 'Project' END"}


def charge_days(billing_period: str, today: date) -> list[date]:
    """The UTC charge days that may hold rows of this invoice month, up to today."""
    start, end = month_bounds(billing_period)
    first = start.date() - timedelta(days=MARGIN_DAYS)
    last = min(end.date(), today)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def find_focus_table(client: bigquery.Client, account: Account, log: QueryLog) -> FocusTable:
    """The configured view or the export's table, with its schema; PENDING while the export has not created it."""
    from google.api_core.exceptions import NotFound

    settings = account.settings
    project = checked_project(settings.get("dataset_project_id") or settings["project_id"])
    dataset = checked_dataset(settings["dataset"])
    name = checked_table(settings.get("table") or default_table(settings["billing_account_id"]))
    budget = log.budget
    names = None
    try:
        client.get_dataset(f"{project}.{dataset}", retry=budget.retry(), timeout=budget.remaining())
        log.api_calls += 1
        found = client.get_table(f"{project}.{dataset}.{name}", retry=budget.retry(), timeout=budget.remaining())
        log.api_calls += 1
    except NotFound as exc:
        if "Table" not in str(exc):
            raise  # the dataset: the classifier says which fix
        names = dataset_tables(client, project, dataset, log)
    if names is not None:
        others = ", ".join(sorted(n for n in names if n.startswith("gcp_billing_export"))) or "none"
        what = f"view {name}" if settings.get("table") else f"FOCUS export table {name}"
        raise ProviderError(Diagnosis(
            code="gcp.no_focus_table",
            status=PENDING,  # the export creates its table a few hours after it is enabled
            cause=f"Dataset {project}.{dataset} has no {what} (billing export tables found: {others}).",
            fix=("Create the FOCUS view in that dataset, or correct `table` in the account settings. " if settings.get("table") else
                 "In Billing -> Billing export -> BigQuery export, enable the FOCUS usage cost export (its table appears within a "
                 "few hours, in the dataset gcp_billing_immutable_<BILLING_ACCOUNT_ID>_<location>, which `dataset` must name). ")
            + NO_DATA.fix,
            detail=f"{len(names)} table(s) in {project}.{dataset}",
        ))
    schema = list(found.schema or [])
    if not schema or not all(getattr(f, "name", None) for f in schema):
        from finops_pipeline.defs.gcp.query import malformed

        raise malformed(f"tables.get answered for {project}.{dataset}.{name} without a schema")
    bigquery_types, duckdb_types, sources = {}, {}, {}
    for field in schema:
        column = ALIASES.get(field.name, field.name) if ALIASES.get(field.name) not in {f.name for f in schema} else field.name
        sources[column] = field.name
        bigquery_types[column] = field.field_type + ("[]" if field.mode == "REPEATED" else "")
        duckdb_types[column] = duckdb_type(field)
    return FocusTable(project, dataset, name, found.table_type == "VIEW", bigquery_types, duckdb_types, sources)


_SCHEMA_FIX = {
    False: "Point the account at the FOCUS export's table (leave `table` unset) in its gcp_billing_immutable_... dataset; "
           "the month keeps its last good data.",
    True: "Change the view so it selects every mandatory FOCUS column with its FOCUS type (TIMESTAMP periods, NUMERIC "
          "costs), and x_ExportTime (the export's export time); the month keeps its last good data.",
}


def table_layout(table: FocusTable) -> focus.Layout:
    """The shared reader's mapping of the table; refuses what it cannot read, naming the table and the fix."""
    try:
        layout = focus.layout_from_types(table.id, "bigquery", table.duckdb_types)
        for name in ("ChargePeriodStart", "BillingPeriodStart", EXPORT_TIME):
            raw = layout.columns.get(name, name)
            if raw not in table.bigquery_types:
                raise focus.FocusFileError(table.id, f"lacks the column {raw}", _SCHEMA_FIX[table.view], column=raw)
            if table.bigquery_types[raw] != "TIMESTAMP":
                raise focus.FocusFileError(table.id, f"holds column {raw} as {table.bigquery_types[raw]}, not TIMESTAMP",
                                           _SCHEMA_FIX[table.view], column=raw)
    except focus.FocusFileError as exc:
        if "version" not in exc.problem and exc.sample is None:
            exc.fix = _SCHEMA_FIX[table.view]
        raise file_error(exc, table) from None
    return layout


def file_error(exc: focus.FocusFileError, table: FocusTable) -> ProviderError:
    return focus.file_error(exc, provider="gcp", title="GCP FOCUS", where=table.id, kind="view" if table.view else "table")


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {"NUMERIC": pa.decimal128(38, 9), "BIGNUMERIC": pa.decimal128(38, 9), "FLOAT": pa.float64(), "INTEGER": pa.int64(),
            "BOOLEAN": pa.bool_(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
            "DATETIME": pa.timestamp("us")}.get(kind, pa.string())


def unified_days(lines: list[dict[str, Any]], columns: dict[str, str], table: FocusTable, account: Account, billing_period: str,
                 updated_at: datetime, work: WorkSession) -> dict[date, pa.Table]:
    """The aggregated lines through the shared FOCUS reader -> cost_daily rows per charge day (the caller releases `work`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    arrays = {name: pa.array([line[name] for line in lines], _arrow_type(kind)) for name, kind in columns.items()}
    path = work.dir / "lines.parquet"
    pq.write_table(pa.table(arrays), path)
    connection = work.connect(focus.memory_limit())
    ids = sorted({str(line["ResourceId"]) for line in lines if line.get("ResourceId")})
    connection.register(RESOURCE_TYPES, pa.table({"id": pa.array(ids, pa.string()),
                                                  "type": pa.array([resource_type(i) for i in ids], pa.string())}))
    try:
        groups = focus.group_files(connection, [focus.FocusFile(table.id, path)])
        focus.raw_totals(connection, groups, billing_period)  # the value checks, on what BigQuery answered
        select = focus.rollup_sql(groups, provider_name=PROVIDER.focus_name, invoice_issuer=PROVIDER.invoice_issuer,
                                  provider_key=PROVIDER.key, source=SOURCE, account_key=account.key, account_name=account.name,
                                  billing_period=billing_period, source_updated_at=updated_at, ingested_at=datetime.now(timezone.utc),
                                  derived=DERIVED)
        rows = connection.sql(select).to_arrow_table()
    except focus.FocusFileError as exc:
        raise file_error(exc, table) from None
    days = pc.cast(rows.column("ChargePeriodStart"), pa.date32())
    return {day: rows.filter(pc.equal(days, pa.scalar(day, pa.date32())))
            for day in sorted(set(days.to_pylist()))}


def pull_gcp_focus(account: Account, billing_period: str, *, data_dir: Path, now: datetime) -> Pull:
    settings = account.settings
    budget = Budget(settings.get("give_up_after_seconds", 120))
    client = bigquery_client(account, budget)
    log = QueryLog(budget)
    table = find_focus_table(client, account, log)
    layout = table_layout(table)

    today = now.astimezone(timezone.utc).date()
    recent_from = today - timedelta(days=settings.get("recent_days", 10) - 1)
    cache = day_cache.load(data_dir, account.key, billing_period, table.id, MAPPING_VERSION)
    currency, billed = layout.columns["BillingCurrency"], layout.columns["BilledCost"]

    def read_states(days: list[date]) -> dict[date, DayState]:
        rows = log.run(client, state_sql(table, layout), day_parameters(days, billing_period), STATE_COLUMNS, STATE_NOT_NULL)
        return collect_states(rows, days, day="charge_day", currency="currency", amounts=("billed",), label="charge day")

    def read_rows(changed: list[date], states: dict[date, DayState]) -> dict[date, pa.Table]:
        as_of = max(states[d].last_export_time for d in changed)
        sql, columns = rows_sql(table, layout)
        lines = log.run(client, sql, [*day_parameters(changed, billing_period), as_of_parameter(as_of)], columns,
                        (layout.columns["ChargePeriodStart"],))
        check_lines_match_states(lines, states, changed, day=layout.columns["ChargePeriodStart"], currency=currency, amount=billed,
                                 label="charge day")
        work = WorkSession(data_dir, "gcpfocus")
        try:
            return unified_days(lines, columns, table, account, billing_period, as_of, work)
        finally:
            work.close()

    days = refresh_days(cache, charge_days(billing_period, today), recent_from, read_states, read_rows,
                        lambda done: day_cache.save(data_dir, account.key, billing_period, done))
    with_data = cache.days_with_data()
    return Pull(
        source_totals=cache.totals(),
        batches=cache.month_table(recent_from),
        api_calls=log.api_calls,
        metadata={
            "focus_table": table.id,
            "focus_table_kind": "view" if table.view else "table",
            "focus_version": layout.version,
            "x_columns_dropped": list(layout.dropped),
            "bytes_processed": log.bytes_processed,
            "queries": log.queries,
            "charge_days_checked": len(days.checked),
            "charge_days_reread": [d.isoformat() for d in days.changed],
            "charge_days_with_data": f"{with_data[0]} .. {with_data[-1]}" if with_data else "none",
            "partition": {"focus_table": table.id, "bytes_processed": log.bytes_processed},
        },
    )


def pull_function(data_dir: Path, now: Callable[[], datetime]) -> Callable[[Account, str], Pull]:
    """The refresh loop's `pull(account, billing_period)`, bound to the data directory and the clock."""

    def pull(account: Account, billing_period: str) -> Pull:
        return pull_gcp_focus(account, billing_period, data_dir=data_dir, now=now())

    return pull
