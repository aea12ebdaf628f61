"""GCP billing export in BigQuery -> cost_daily, one invoice month per refresh.

How a refresh of billing period M (invoice.month M) reads the export:
1. Find the export table in the configured dataset: detailed (`gcp_billing_export_resource_v1_*`)
   when present, else standard (`gcp_billing_export_v1_*`).
2. The partition days that can hold rows of invoice month M are the month plus PARTITION_MARGIN_DAYS
   on each side (late usage is billed in the next invoice; exports land after the usage). Of these,
   the refresh checks the days it has never seen and the last `recent_days` days (default 10); days
   older than that which it has already read are final.
3. A small state query gives, per checked day and currency, MAX(export_time) and the raw cost and
   credit sums. Only days whose MAX(export_time) or sums moved are re-read, with one aggregating query
   (never raw rows); unchanged days keep their rows from the day cache.
4. The month's lake partition is rebuilt from the day cache. Each month partition re-reads its own
   days, so late usage billed in the next invoice lands in that month's partition, and no refresh
   writes another month's partition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finops_pipeline.config import Account
from finops_pipeline.defs.gcp.bigquery_export import day_cache
from finops_pipeline.defs.gcp.bigquery_export.client import TITLE, Budget, bigquery_client
from finops_pipeline.defs.gcp.bigquery_export.diagnosis import NO_DATA
from finops_pipeline.defs.gcp.bigquery_export.export_query import (
    CHARGES_NOT_NULL,
    DAY_STATE_COLUMNS,
    DAY_STATE_NOT_NULL,
    ExportTable,
    as_of_parameter,
    charges_columns,
    charges_sql,
    checked_dataset,
    checked_project,
    choose_export_table,
    day_parameters,
    day_state_sql,
)
from finops_pipeline.defs.gcp.bigquery_export.normalize import unified_rows
from finops_pipeline.diagnosis import PENDING, Diagnosis, ProviderError, malformed_answer
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import month_bounds

if TYPE_CHECKING:  # google-cloud-bigquery is imported where a query runs: loading the definitions stays cheap
    from google.cloud import bigquery

SOURCE = "bigquery_export"
PARTITION_MARGIN_DAYS = 15


@dataclass
class DayState:
    last_export_time: datetime
    totals: dict[str, Decimal] = field(default_factory=dict)
    export_rows: int = 0


# BigQuery's REST schema names types the legacy way; GoogleSQL names are accepted as the same.
_TYPE_ALIASES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "BIGNUMERIC": "NUMERIC"}


def _malformed(what: str, sample: str = "") -> ProviderError:
    return malformed_answer("gcp", TITLE, what, sample)


@dataclass
class QueryLog:
    """What the refresh cost in BigQuery: API calls and bytes scanned. Every call runs within `budget`."""

    budget: Budget
    api_calls: int = 0
    bytes_processed: int = 0
    queries: int = 0

    def run(self, client: bigquery.Client, sql: str, parameters: list[Any], columns: dict[str, str],
            not_null: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The query's rows, once the answer proved it is this query's: every expected column with its
        type, as many rows as it counted, no NULL where the query cannot produce one."""
        from google.cloud import bigquery

        budget = self.budget
        rows = client.query_and_wait(
            sql, job_config=bigquery.QueryJobConfig(query_parameters=parameters),
            api_timeout=budget.remaining(), wait_timeout=budget.remaining(), retry=budget.retry(), job_retry=budget.job_retry(),
        )
        self.api_calls += 1
        self.queries += 1
        found = {f.name: _TYPE_ALIASES.get(f.field_type, f.field_type) for f in rows.schema or []}
        wrong = [f"{name} {kind}" + (f" (got {found[name]})" if name in found else " (missing)")
                 for name, kind in columns.items() if found.get(name) != kind]
        if wrong:
            raise _malformed(f"the query result lacks or mistypes column(s) {', '.join(wrong)}",
                             ", ".join(f"{n} {t}" for n, t in found.items()))
        try:
            result = [dict(row.items()) for row in rows]
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            raise _malformed(f"a query result row could not be read as its schema says ({type(exc).__name__})", str(exc)) from None
        if rows.total_rows is not None and rows.total_rows != len(result):
            raise _malformed(f"the query reported {rows.total_rows} row(s) and sent {len(result)}")
        for row in result:
            empty = [name for name in not_null if row.get(name) is None]
            if empty:
                raise _malformed(f"a query result row has NULL in {', '.join(empty)}, which the query never yields",
                                 str({k: row.get(k) for k in empty + ["partition_day"]}))
        self.bytes_processed += rows.total_bytes_processed or 0
        return result


def partition_days(billing_period: str, today: date) -> list[date]:
    """The partition days that may hold rows of this invoice month, up to today."""
    start, end = month_bounds(billing_period)
    first = start.date() - timedelta(days=PARTITION_MARGIN_DAYS)
    last = min(end.date() - timedelta(days=1) + timedelta(days=PARTITION_MARGIN_DAYS), today)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def find_export_table(client: bigquery.Client, account: Account, log: QueryLog) -> ExportTable:
    from google.cloud import bigquery

    settings = account.settings
    project = checked_project(settings.get("dataset_project_id") or settings["project_id"])
    dataset = checked_dataset(settings["dataset"])
    reference = bigquery.DatasetReference(project, dataset)
    budget = log.budget
    # NotFound / Forbidden here name the dataset, not a table
    client.get_dataset(reference, retry=budget.retry(), timeout=budget.remaining())
    log.api_calls += 1
    listing = client.list_tables(reference, retry=budget.retry(), timeout=budget.remaining())
    try:
        names = [table.table_id for table in listing]
    except (ValueError, TypeError, KeyError) as exc:
        raise _malformed(f"the table list could not be read ({type(exc).__name__})", str(exc)) from None
    if not all(isinstance(name, str) for name in names):
        raise _malformed("the table list holds tables without a name")
    log.api_calls += max(listing.page_number, 1)
    chosen = choose_export_table(names, settings["billing_account_id"])
    if chosen is None:
        found = ", ".join(sorted(n for n in names if n.startswith("gcp_billing_export"))) or "none"
        raise ProviderError(Diagnosis(
            code="gcp.no_export_table",
            status=PENDING,  # the export creates its tables a few hours after it is enabled
            cause=f"Dataset {project}.{dataset} has no billing export table for billing account "
            f"{settings['billing_account_id']} (export tables found: {found}).",
            fix=f"In Billing -> Billing export -> BigQuery export, enable the standard or detailed usage cost export "
            f"into dataset {dataset} of project {project} (tables appear within a few hours). "
            + NO_DATA.fix,
            detail=f"{len(names)} table(s) in {project}.{dataset}",
        ))
    return ExportTable(project, dataset, chosen)


def read_day_states(client: bigquery.Client, table: ExportTable, days: list[date], billing_period: str, log: QueryLog) -> dict[date, DayState]:
    states: dict[date, DayState] = {}
    asked = set(days)
    for row in log.run(client, day_state_sql(table), day_parameters(days, billing_period), DAY_STATE_COLUMNS, DAY_STATE_NOT_NULL):
        if row["partition_day"] not in asked:
            raise _malformed(f"the state query answered for partition day {row['partition_day']}, which it was not asked about")
        state = states.setdefault(row["partition_day"], DayState(row["last_export_time"]))
        state.last_export_time = max(state.last_export_time, row["last_export_time"])
        state.totals[row["currency"]] = state.totals.get(row["currency"], Decimal(0)) + row["cost"] + row["credits"]
        state.export_rows += row["export_rows"]
    return states


def check_lines_match_states(lines: list[dict[str, Any]], states: dict[date, DayState], changed: list[date]) -> None:
    """The charges query's lines must add up, per day and currency, to what the state query counted:
    a day with export rows and no lines, or other sums, is not an answer to this query."""
    sums: dict[date, dict[str, Decimal]] = {}
    for line in lines:
        day = line["partition_day"]
        if day not in states or day not in changed:
            raise _malformed(f"the charges query answered for partition day {day}, which it was not asked about")
        per_currency = sums.setdefault(day, {})
        per_currency[line["currency"]] = per_currency.get(line["currency"], Decimal(0)) + line["amount"]
    for day in changed:
        state = states[day]
        if state.export_rows and day not in sums:
            raise _malformed(f"the charges query returned no rows for partition day {day}, where the state query counted "
                             f"{state.export_rows} export row(s)")
        if {c: v for c, v in sums.get(day, {}).items()} != state.totals:
            raise _malformed(f"the charges of partition day {day} add up to {sums.get(day, {})}, not to the {state.totals} "
                             "the state query counted")


def pull_bigquery_export(account: Account, billing_period: str, *, data_dir: Path, now: datetime) -> Pull:
    settings = account.settings
    budget = Budget(settings.get("give_up_after_seconds", 120))
    client = bigquery_client(account, budget)
    log = QueryLog(budget)
    table = find_export_table(client, account, log)
    table_id = f"{table.project}.{table.dataset}.{table.table}"

    today = now.astimezone(timezone.utc).date()
    recent_from = today - timedelta(days=settings.get("recent_days", 10) - 1)
    window = partition_days(billing_period, today)
    cache = day_cache.load(data_dir, account.key, billing_period, table_id)
    candidates = [d for d in window if d not in cache.days or d >= recent_from]

    changed: list[date] = []
    emptied: list[date] = []
    if candidates:
        states = read_day_states(client, table, candidates, billing_period, log)
        for day in candidates:
            state, before = states.get(day), cache.days.get(day)
            if state is None:
                if before is None or before.last_export_time is not None:
                    cache.replace_day(day, day_cache.DayInfo(None, {}), [])
                    emptied.append(day)
            elif before is None or (before.last_export_time, before.totals) != (state.last_export_time, state.totals):
                changed.append(day)
        if changed:
            as_of = max(states[d].last_export_time for d in changed)
            lines = log.run(client, charges_sql(table), [*day_parameters(changed, billing_period), as_of_parameter(as_of)],
                            charges_columns(table), CHARGES_NOT_NULL)
            check_lines_match_states(lines, states, changed)
            rows = unified_rows(lines, account, billing_period, datetime.now(timezone.utc), recent_from)
            for day in changed:
                cache.replace_day(day, day_cache.DayInfo(states[day].last_export_time, states[day].totals), rows.get(day, []))
        if changed or emptied:
            day_cache.save(data_dir, account.key, billing_period, cache)

    with_data = cache.days_with_data()
    return Pull(
        source_totals=cache.totals(),
        batches=cache.month_table(recent_from),
        api_calls=log.api_calls,
        metadata={
            "export_table": table_id,
            "export_table_kind": table.kind,
            "bytes_processed": log.bytes_processed,
            "queries": log.queries,
            "partition_days_checked": len(candidates),
            "partition_days_reread": [d.isoformat() for d in changed],
            "partition_days_kept": len([d for d in with_data if d not in changed]),
            "partition_days_with_data": f"{with_data[0]} .. {with_data[-1]}" if with_data else "none",
            "partition": {"export_table": table_id, "bytes_processed": log.bytes_processed},
        },
    )


def pull_function(data_dir: Path, now: Callable[[], datetime]) -> Callable[[Account, str], Pull]:
    """The refresh loop's `pull(account, billing_period)`, bound to the data directory and the clock."""

    def pull(account: Account, billing_period: str) -> Pull:
        return pull_bigquery_export(account, billing_period, data_dir=data_dir, now=now())

    return pull
