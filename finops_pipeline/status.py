"""Is billing data flowing for each configured account? The 48-hour rule, as a plain function.

Billing data takes 24 to 48 hours to appear after access is granted, so an account without data is
PENDING until 48 hours after `connected_at` and NO_DATA after that. An account is ERROR when the
latest pull of a month that matters failed: its open billing period(s), and every month from its
first data on (any month while it has no data at all). A failed pull of a month older than its first
data (a backfill from before the export existed) is reported on that partition only. The "not there yet" errors (Cost Explorer not activated yet, data
not ingested yet) stay PENDING inside the window. A pull that succeeded and found nothing is its own
case, with its own cause and fix: its success disproves "cannot read it".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from finops_pipeline import pulls
from finops_pipeline.catalog import cost_daily_sql
from finops_pipeline.config import Account, FinopsConfig
from finops_pipeline.diagnosis import Advice, Status
from finops_pipeline.sources import get_source
from finops_pipeline.storage import connect_duckdb

GRACE_PERIOD = timedelta(hours=48)
# Providers restate the previous month for a while after it closes (AWS may re-deliver CUR for up to
# two weeks), so during these first days of a month the previous month is still open.
RESTATEMENT_DAYS = 14

# Kept as names for readers of the old constants.
OK, PENDING, NO_DATA, ERROR = Status.OK, Status.PENDING, Status.NO_DATA, Status.ERROR


@dataclass(frozen=True)
class Coverage:
    first_day: date
    last_day: date
    rows: int


@dataclass(frozen=True)
class ConnectionStatus:
    account_key: str
    account_name: str
    provider: str
    source: str
    connected_at: datetime
    hours_since_connected: float
    connected_for: str  # '31 hours' inside the 48-hour window, '5 days' after it
    status: Status
    first_day_with_data: date | None
    last_day_with_data: date | None
    rows: int
    last_successful_pull: datetime | None
    last_error: str | None
    error_code: str | None
    cause: str | None
    fix: str | None
    becomes_no_data_at: datetime | None = None  # when a PENDING account turns NO_DATA
    failing_periods: tuple[str, ...] = ()  # every month whose latest pull failed, mattering or not


def open_periods(now: datetime, restatement_days: int = RESTATEMENT_DAYS) -> list[str]:
    """The open billing period, and the previous one during the first days of a month."""
    periods = [now.strftime("%Y-%m")]
    if now.day <= restatement_days:
        periods.append((now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    return periods


def not_there_yet(account: Account, diagnosis_status: str, now: datetime) -> bool:
    """A "data not there yet" answer inside the 48 hours: expected for a new account, not a failure."""
    return diagnosis_status == Status.PENDING and now - account.connected_at < GRACE_PERIOD


def describe_age(since: datetime, now: datetime) -> str:
    """'31 hours' inside the 48-hour window, '5 days' past it."""
    age = now - since
    if age < GRACE_PERIOD:
        return f"{max(age.total_seconds(), 0) / 3600:.0f} hours"
    return f"{age.days} days"


def coverage_by_account(data_dir: Path | str) -> dict[str, Coverage]:
    connection = connect_duckdb(data_dir)
    try:
        rows = connection.execute(
            f"""SELECT x_AccountKey, min(ChargePeriodStart)::DATE, max(ChargePeriodStart)::DATE, count(*)
                FROM ({cost_daily_sql(data_dir)}) GROUP BY x_AccountKey"""
        ).fetchall()
    finally:
        connection.close()
    return {key: Coverage(first, last, count) for key, first, last, count in rows}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def account_status(account: Account, records: dict[str, dict[str, Any]], covered: Coverage | None, now: datetime) -> ConnectionStatus:
    """One account's status from its pull records (billing period -> last outcome) and its data in the lake."""
    # With data somewhere, the months that matter are the open ones and those from its first data on; a
    # failed backfill of an older month says nothing about today. Without any data, every failure may be why.
    if covered:
        first_month = covered.first_day.strftime("%Y-%m")
        matters = set(open_periods(now)) | {p for p in records if p >= first_month}
    else:
        matters = set(records)
    failing = sorted(
        (_time(r.get("last_failure_at")), period, r.get("last_error") or {})
        for period, r in records.items()
        if r.get("last_outcome") == "failure" and r.get("last_failure_at")
    )
    error = next((e for _, p, e in reversed(failing) if p in matters), None)
    successes = [t for t in (_time(r.get("last_success_at")) for r in records.values()) if t]
    last_success = max(successes) if successes else None
    age = now - account.connected_at
    within_grace = age < GRACE_PERIOD
    cause = fix = None
    becomes_no_data_at = None
    if account.broken:  # its settings are unusable: no pull can run until finops.yaml is fixed
        error = {"code": "config.invalid", "detail": "; ".join(p.message for p in account.problems)}
        status = Status.ERROR
        cause = "The account's settings in finops.yaml are not usable: " + " ".join(p.message.rstrip(".") + "." for p in account.problems)
        fix = " ".join(p.fix for p in account.problems)
    elif error and (error.get("status") != Status.PENDING or not within_grace):
        status = Status.ERROR
        cause, fix = error.get("cause"), error.get("fix")
    elif covered:
        status = Status.OK
    elif within_grace:
        status = Status.PENDING
        becomes_no_data_at = account.connected_at + GRACE_PERIOD
        if error:
            cause, fix = error.get("cause"), error.get("fix")
    else:
        status = Status.NO_DATA
        advice = _no_data_advice(account, pulled=last_success is not None)
        cause, fix = advice.cause, advice.fix
    return ConnectionStatus(
        account_key=account.key,
        account_name=account.name,
        provider=account.provider,
        source=account.source,
        connected_at=account.connected_at,
        hours_since_connected=round(age.total_seconds() / 3600, 1),
        connected_for=describe_age(account.connected_at, now),
        status=status,
        first_day_with_data=covered.first_day if covered else None,
        last_day_with_data=covered.last_day if covered else None,
        rows=covered.rows if covered else 0,
        last_successful_pull=last_success,
        last_error=error.get("detail") if error else None,
        error_code=error.get("code") if error else None,
        cause=cause,
        fix=fix,
        becomes_no_data_at=becomes_no_data_at,
        failing_periods=tuple(p for _, p, _ in failing),
    )


def _no_data_advice(account: Account, *, pulled: bool) -> Advice:
    """No data after 48 h and no error to explain it: an empty answer, or no pull at all."""
    source = get_source(account.provider, account.source)
    if pulled:
        return source.empty_pull
    return Advice(
        cause=f"No pull of this account has run yet. When one runs and fails, its error names the cause; the usual one: {source.no_data.cause}",
        fix=f"Run `finops-pipeline refresh --account {account.key}` (or turn on the source's refresh schedule). {source.no_data.fix}",
    )


def coverage_from_daily(connection: duckdb.DuckDBPyConnection, relation: str) -> dict[str, Coverage]:
    """The same coverage, from the serving layer's daily aggregates (serving.DAILY_SQL) in `relation`."""
    rows = connection.execute(f"SELECT account_key, min(day), max(day), sum(row_count)::BIGINT FROM {relation} GROUP BY account_key").fetchall()
    return {key: Coverage(first, last, count) for key, first, last, count in rows}


def connection_statuses(config: FinopsConfig, data_dir: Path, now: datetime, coverage: dict[str, Coverage] | None = None) -> list[ConnectionStatus]:
    """Every configured account's status; `coverage` (days and rows per account) is read from the lake unless given."""
    coverage = coverage_by_account(data_dir) if coverage is None else coverage
    return [account_status(a, pulls.records(data_dir, a.key), coverage.get(a.key), now) for a in config.accounts]
