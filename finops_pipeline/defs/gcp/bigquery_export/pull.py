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
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finops_pipeline.config import Account
from finops_pipeline.defs.gcp import day_cache
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
from finops_pipeline.defs.gcp.bigquery_export.normalize import MAPPING_VERSION, unified_rows
from finops_pipeline.defs.gcp.client import Budget, bigquery_client
from finops_pipeline.defs.gcp.query import (
    DayState,
    QueryLog,
    check_lines_match_states,
    collect_states,
    dataset_tables,
    refresh_days,
)
from finops_pipeline.diagnosis import PENDING, Diagnosis, ProviderError
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import month_bounds

if TYPE_CHECKING:  # google-cloud-bigquery is imported where a query runs: loading the definitions stays cheap
    from google.cloud import bigquery

SOURCE = "bigquery_export"
PARTITION_MARGIN_DAYS = 15


def partition_days(billing_period: str, today: date) -> list[date]:
    """The partition days that may hold rows of this invoice month, up to today."""
    start, end = month_bounds(billing_period)
    first = start.date() - timedelta(days=PARTITION_MARGIN_DAYS)
    last = min(end.date() - timedelta(days=1) + timedelta(days=PARTITION_MARGIN_DAYS), today)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def find_export_table(client: bigquery.Client, account: Account, log: QueryLog) -> ExportTable:
    settings = account.settings
    project = checked_project(settings.get("dataset_project_id") or settings["project_id"])
    dataset = checked_dataset(settings["dataset"])
    names = dataset_tables(client, project, dataset, log)
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
    rows = log.run(client, day_state_sql(table), day_parameters(days, billing_period), DAY_STATE_COLUMNS, DAY_STATE_NOT_NULL)
    return collect_states(rows, days, day="partition_day", currency="currency", amounts=("cost", "credits"))


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
    cache = day_cache.load(data_dir, account.key, billing_period, table_id, MAPPING_VERSION)

    def read_rows(changed: list[date], states: dict[date, DayState]) -> dict[date, list[dict[str, Any]]]:
        as_of = max(states[d].last_export_time for d in changed)
        lines = log.run(client, charges_sql(table), [*day_parameters(changed, billing_period), as_of_parameter(as_of)],
                        charges_columns(table), CHARGES_NOT_NULL)
        check_lines_match_states(lines, states, changed)
        return unified_rows(lines, account, billing_period, datetime.now(timezone.utc), recent_from)

    days = refresh_days(cache, window, recent_from, lambda asked: read_day_states(client, table, asked, billing_period, log),
                        read_rows, lambda done: day_cache.save(data_dir, account.key, billing_period, done))
    candidates, changed = days.checked, days.changed

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
