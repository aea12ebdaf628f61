"""Run the real Dagster jobs from Python: `finops-pipeline refresh`, the demo, and the tests.

A refresh is one run of the source's job per billing period, selecting exactly the accounts asked
for, then one run of `build_cost_tables`. Each account's result is read back from its pull record,
which the run wrote (matched by run id), so what is printed is what the pipeline recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from finops_pipeline import pulls
from finops_pipeline.config import Account, FinopsConfig
from finops_pipeline.dagster_sources import BUILD_TABLES_JOB, FULL_REFRESH_TAG, account_asset_key, refresh_job_name
from finops_pipeline.resources import FinopsResource
from finops_pipeline.sources import Source, get_source
from finops_pipeline.status import not_there_yet

# The runs' full logs are in the Dagster UI; what the CLI and the demo print is each account's result.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class AccountResult:
    """What one account's pull of one billing period came to."""

    account: str
    provider: str
    source: str
    billing_period: str
    ok: bool
    rows: int = 0
    api_calls: int = 0
    totals: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    waiting: bool = False  # "not there yet" inside the 48 hours: expected, not a failure
    cause: str | None = None
    fix: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # the account's materialization metadata, when it succeeded


@dataclass
class Refreshed:
    """Every account's result, and the Dagster runs that produced them (their events, for the curious)."""

    results: list[AccountResult]
    runs: list[dg.ExecuteInProcessResult]

    @property
    def ok(self) -> bool:
        """Every account pulled, or still inside its 48 hours with nothing there yet."""
        return all(r.ok or r.waiting for r in self.results)


@contextmanager
def registry_env(config_file: str | Path | None) -> Iterator[None]:
    """Point FINOPS_CONFIG at a registry while definitions are built from it."""
    if config_file is None:
        yield
        return
    before = os.environ.get("FINOPS_CONFIG")
    os.environ["FINOPS_CONFIG"] = str(config_file)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FINOPS_CONFIG", None)
        else:
            os.environ["FINOPS_CONFIG"] = before


def load_definitions_for(finops: FinopsResource) -> dg.Definitions:
    """The definitions for the registry `finops` names, with `finops` as the resource."""
    from finops_pipeline.definitions import load_definitions

    with registry_env(finops.config_file):
        return load_definitions(finops)


def select_accounts(config: FinopsConfig, provider: str | None = None, source: str | None = None, account: str | None = None) -> list[Account]:
    return [
        a for a in config.accounts
        if (provider is None or a.provider == provider) and (source is None or a.source == source) and (account is None or a.key == account)
    ]


def _result(account: Account, period: str, run: Any, data_dir: Path, now: datetime) -> AccountResult:
    record = pulls.read_record(data_dir, account.key, period) or {}
    base = {"account": account.key, "provider": account.provider, "source": account.source, "billing_period": period, "run_id": run.run_id}
    if record.get("run_id") != run.run_id:
        failure = run.get_run_failure_event() if not run.success else None
        reason = failure.message if failure else "the run ended before this account was pulled"
        return AccountResult(**base, ok=False, code="run.failed", cause=f"The Dagster run failed before the pull: {reason}",
                             fix="Open the run in the Dagster UI for its logs, fix what it names, and refresh again.")
    if record.get("last_outcome") == "success":
        key = account_asset_key(account)
        materialized = [e.materialization for e in run.get_asset_materialization_events() if e.asset_key == key]
        return AccountResult(**base, ok=True, rows=record.get("rows", 0), api_calls=record.get("api_calls", 0), totals=record.get("totals") or {},
                             metadata=dict(materialized[-1].metadata) if materialized else {})
    error = record.get("last_error") or {}
    waiting = not_there_yet(account, error.get("status", ""), now)
    return AccountResult(**base, ok=False, code=error.get("code"), waiting=waiting, cause=error.get("cause"), fix=error.get("fix"))


def refresh(
    finops: FinopsResource,
    accounts: Sequence[Account],
    periods: Sequence[str],
    *,
    instance: dg.DagsterInstance | None = None,
    run_config: dict[str, Any] | None = None,
    build_tables: bool = True,
    full_refresh: bool = False,
) -> Refreshed:
    """Pull `periods` for `accounts` through each source's refresh job, then rebuild the tables once.

    `full_refresh`: whole months, also from sources that otherwise pull only the days that can still change.
    """
    defs = load_definitions_for(finops)
    data_dir = finops.data_path()
    by_source: dict[Source, list[Account]] = {}
    for account in accounts:
        by_source.setdefault(get_source(account.provider, account.source), []).append(account)
    results: list[AccountResult] = []
    runs: list[dg.ExecuteInProcessResult] = []
    for source, selected in by_source.items():
        job = defs.resolve_job_def(refresh_job_name(source))
        for period in periods:
            if not job.partitions_def.has_partition_key(period):
                first = job.partitions_def.get_first_partition_key()
                results += [
                    AccountResult(a.key, a.provider, a.source, period, ok=False, code="refresh.period_out_of_range",
                                  cause=f"{period} is outside the billing periods {source.title} offers (from {first}).",
                                  fix="Pick a period from the history start on (history_start in finops.yaml), up to this month.")
                    for a in selected
                ]
                continue
            run = job.execute_in_process(
                partition_key=period,
                asset_selection=[account_asset_key(a) for a in selected],
                instance=instance,
                run_config=run_config,
                raise_on_error=False,
                tags={FULL_REFRESH_TAG: "true"} if full_refresh else None,
            )
            runs.append(run)
            results += [_result(a, period, run, data_dir, finops.current_time()) for a in selected]
    if build_tables:
        runs.append(defs.resolve_job_def(BUILD_TABLES_JOB).execute_in_process(instance=instance, run_config=run_config, raise_on_error=True))
    return Refreshed(results, runs)


def run_checks(finops: FinopsResource, *, instance: dg.DagsterInstance | None = None,
               run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
    """The hourly check job: the 48-hour and reconciliation checks, the status table and the page."""
    return load_definitions_for(finops).resolve_job_def("check_billing_connections").execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )
