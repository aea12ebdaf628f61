"""What every BigQuery source shares: identifiers checked before they enter SQL, queries whose answers must
prove they are theirs, the dataset's table list, and the late-data rule over days.

The late-data rule (`refresh_days`): of the days that can hold rows of an invoice month, a refresh checks
the days it has never seen and the last `recent_days` days; a small state query gives, per checked day and
currency, the newest export time and the raw sums; only days whose export time or sums moved are re-read
(aggregated in BigQuery), the others keep their rows from the day cache (day_cache.py). Days older than
`recent_days` that were read before are final.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from finops_pipeline.defs.gcp import day_cache
from finops_pipeline.defs.gcp.client import TITLE, Budget
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError, malformed_answer
from finops_pipeline.money import money_sum, sum_by_currency

if TYPE_CHECKING:  # google-cloud-bigquery is imported where a query runs: loading the definitions stays cheap
    from google.cloud import bigquery

_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")


def refuse_identifier(what: str, value: str, rule: str) -> ProviderError:
    return ProviderError(Diagnosis(
        code="gcp.invalid_identifier", status=ERROR,
        cause=f"The {what} {value!r} is not a valid BigQuery identifier ({rule}); it was not sent to BigQuery.",
        fix=f"Correct the {what} in the account settings (finops.yaml): copy it from Billing -> Billing export -> BigQuery export.",
        detail=f"{what} failed validation",
    ))


def checked_project(value: str) -> str:
    if not isinstance(value, str) or not _PROJECT.fullmatch(value):
        raise refuse_identifier("project id", str(value), "6-30 lowercase letters, digits and hyphens")
    return value


def checked_dataset(value: str) -> str:
    if not isinstance(value, str) or not _DATASET.fullmatch(value):
        raise refuse_identifier("dataset name", str(value), "letters, digits and underscores only")
    return value


# BigQuery's REST schema names types the legacy way; GoogleSQL names are accepted as the same.
TYPE_ALIASES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "BIGNUMERIC": "NUMERIC", "STRUCT": "RECORD"}


def malformed(what: str, sample: str = "") -> ProviderError:
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
        found = {f.name: TYPE_ALIASES.get(f.field_type, f.field_type) for f in rows.schema or []}
        wrong = [f"{name} {kind}" + (f" (got {found[name]})" if name in found else " (missing)")
                 for name, kind in columns.items() if found.get(name) != kind]
        if wrong:
            raise malformed(f"the query result lacks or mistypes column(s) {', '.join(wrong)}",
                            ", ".join(f"{n} {t}" for n, t in found.items()))
        try:
            result = [dict(row.items()) for row in rows]
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            raise malformed(f"a query result row could not be read as its schema says ({type(exc).__name__})", str(exc)) from None
        if rows.total_rows is not None and rows.total_rows != len(result):
            raise malformed(f"the query reported {rows.total_rows} row(s) and sent {len(result)}")
        for row in result:
            empty = [name for name in not_null if row.get(name) is None]
            if empty:
                raise malformed(f"a query result row has NULL in {', '.join(empty)}, which the query never yields",
                                str({k: row.get(k) for k in empty + ["partition_day"]}))
        self.bytes_processed += rows.total_bytes_processed or 0
        return result


def dataset_tables(client: bigquery.Client, project: str, dataset: str, log: QueryLog) -> list[str]:
    """The dataset's table (and view) names. NotFound / Forbidden raised here name the dataset, not a table."""
    from google.cloud import bigquery

    reference = bigquery.DatasetReference(checked_project(project), checked_dataset(dataset))
    budget = log.budget
    client.get_dataset(reference, retry=budget.retry(), timeout=budget.remaining())
    log.api_calls += 1
    listing = client.list_tables(reference, retry=budget.retry(), timeout=budget.remaining())
    try:
        names = [table.table_id for table in listing]
    except (ValueError, TypeError, KeyError) as exc:
        raise malformed(f"the table list could not be read ({type(exc).__name__})", str(exc)) from None
    if not all(isinstance(name, str) for name in names):
        raise malformed("the table list holds tables without a name")
    log.api_calls += max(listing.page_number, 1)
    return names


@dataclass
class DayState:
    """What the state query counted for one day: the newest export time and the raw totals per currency."""

    last_export_time: datetime
    totals: dict[str, Decimal] = field(default_factory=dict)
    export_rows: int = 0


def collect_states(rows: list[dict[str, Any]], asked: list[date], *, day: str, currency: str, amounts: tuple[str, ...],
                   export_time: str = "last_export_time", count: str = "export_rows", label: str = "partition day") -> dict[date, DayState]:
    """State query rows (one per day and currency) -> DayState per day; a day not asked about is no answer."""
    states: dict[date, DayState] = {}
    wanted = set(asked)
    for row in rows:
        if row[day] not in wanted:
            raise malformed(f"the state query answered for {label} {row[day]}, which it was not asked about")
        state = states.setdefault(row[day], DayState(row[export_time]))
        state.last_export_time = max(state.last_export_time, row[export_time])
        sum_by_currency([(row[currency], money_sum(row[a] for a in amounts))], state.totals)
        state.export_rows += row[count]
    return states


def check_lines_match_states(lines: list[dict[str, Any]], states: dict[date, DayState], changed: list[date], *,
                             day: str = "partition_day", currency: str = "currency", amount: str = "amount",
                             label: str = "partition day") -> None:
    """The rows query's lines must add up, per day and currency, to what the state query counted:
    a day with export rows and no lines, or other sums, is not an answer to this query."""
    sums: dict[date, dict[str, Decimal]] = {}
    for line in lines:
        when = line[day]
        if when not in states or when not in changed:
            raise malformed(f"the charges query answered for {label} {when}, which it was not asked about")
        per_currency = sums.setdefault(when, {})
        sum_by_currency([(line[currency], line[amount])], per_currency)
    for when in changed:
        state = states[when]
        if state.export_rows and when not in sums:
            raise malformed(f"the charges query returned no rows for {label} {when}, where the state query counted "
                            f"{state.export_rows} export row(s)")
        if dict(sums.get(when, {})) != state.totals:
            raise malformed(f"the charges of {label} {when} add up to {sums.get(when, {})}, not to the {state.totals} "
                            "the state query counted")


@dataclass
class DayRefresh:
    checked: list[date]
    changed: list[date]



def refresh_days(cache: day_cache.MonthCache, window: list[date], recent_from: date,
                 read_states: Callable[[list[date]], dict[date, DayState]],
                 read_rows: Callable[[list[date], dict[date, DayState]], dict[date, Any]],
                 save: Callable[[day_cache.MonthCache], None]) -> DayRefresh:
    """The late-data rule (module docstring): re-read only the days whose export time or totals moved,
    replace each whole in the cache, and save the cache only after every read succeeded."""
    candidates = [d for d in window if d not in cache.days or d >= recent_from]
    changed: list[date] = []
    emptied: list[date] = []
    if candidates:
        states = read_states(candidates)
        for day in candidates:
            state, before = states.get(day), cache.days.get(day)
            if state is None:
                if before is None or before.last_export_time is not None:
                    cache.replace_day(day, day_cache.DayInfo(None, {}), [])
                    emptied.append(day)
            elif before is None or (before.last_export_time, before.totals) != (state.last_export_time, state.totals):
                changed.append(day)
        if changed:
            rows = read_rows(changed, states)
            for day in changed:
                cache.replace_day(day, day_cache.DayInfo(states[day].last_export_time, states[day].totals), rows.get(day, []))
        if changed or emptied:
            save(cache)
    return DayRefresh(candidates, changed)
