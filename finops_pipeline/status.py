"""Is billing data flowing for each configured account? The 48-hour rule, as a plain function.

Billing data takes 24 to 48 hours to appear after access is granted, so an account without data is
PENDING until 48 hours after `connected_at` and NO_DATA after that. An account whose newest pull
failed is ERROR, except for the "not there yet" errors (Cost Explorer not activated yet, data not
ingested yet), which stay PENDING inside the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from finops_pipeline import pulls
from finops_pipeline.catalog import cost_daily_sql
from finops_pipeline.config import FinopsConfig
from finops_pipeline.diagnostics import PENDING, no_data_advice

GRACE_PERIOD = timedelta(hours=48)

OK = "OK"
NO_DATA = "NO_DATA"
ERROR = "ERROR"


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
    status: str
    first_day_with_data: date | None
    last_day_with_data: date | None
    rows: int
    last_successful_pull: datetime | None
    last_error: str | None
    error_code: str | None
    cause: str | None
    fix: str | None


def coverage_by_account(data_dir: Path) -> dict[str, Coverage]:
    connection = duckdb.connect()
    try:
        rows = connection.execute(
            f"""SELECT x_AccountKey, min(ChargePeriodStart)::DATE, max(ChargePeriodStart)::DATE, count(*)
                FROM ({cost_daily_sql(data_dir)}) GROUP BY x_AccountKey"""
        ).fetchall()
    finally:
        connection.close()
    return {key: Coverage(first, last, count) for key, first, last, count in rows}


def connection_statuses(config: FinopsConfig, data_dir: Path, now: datetime) -> list[ConnectionStatus]:
    coverage = coverage_by_account(data_dir)
    statuses = []
    for account in config.accounts:
        covered = coverage.get(account.key)
        pull = pulls.summarize(data_dir, account.key)
        age = now - account.connected_at
        within_grace = age < GRACE_PERIOD
        error = pull.last_error if pull.failing else None
        cause = fix = None
        if error and (error.get("status") != PENDING or not within_grace):
            status = ERROR
            cause, fix = error.get("cause"), error.get("fix")
        elif covered:
            status = OK
        elif within_grace:
            status = "PENDING"
            if error:
                cause, fix = error.get("cause"), error.get("fix")
        else:
            status = NO_DATA
            advice = no_data_advice(account.provider, account.source)
            cause, fix = advice.cause, advice.fix
        statuses.append(
            ConnectionStatus(
                account_key=account.key,
                account_name=account.name,
                provider=account.provider,
                source=account.source,
                connected_at=account.connected_at,
                hours_since_connected=round(age.total_seconds() / 3600, 1),
                status=status,
                first_day_with_data=covered.first_day if covered else None,
                last_day_with_data=covered.last_day if covered else None,
                rows=covered.rows if covered else 0,
                last_successful_pull=pull.last_success_at,
                last_error=error.get("detail") if error else None,
                error_code=error.get("code") if error else None,
                cause=cause,
                fix=fix,
            )
        )
    return statuses
