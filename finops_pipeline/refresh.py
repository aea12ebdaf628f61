"""Refresh one source for one billing period across all its accounts, without Dagster.

A provider contributes only a `pull` function: (account, billing period) -> a `Pull` with the unified
rows and the raw totals they must reconcile to. This module does the rest the same way for every
provider: write the partition atomically, record the outcome, and keep going when an account fails,
so one broken connection never stops the others.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from finops_pipeline import pulls, redaction, throttle
from finops_pipeline.config import Account
from finops_pipeline.diagnosis import Diagnosis, diagnose, redact
from finops_pipeline.lake import PartitionKey, write_partition, write_partition_with
from finops_pipeline.schema import COST_DAILY_SCHEMA

log = logging.getLogger(__name__)


@dataclass
class Pull:
    """What a provider returns for one account and month.

    Either `batches` (cost_daily tables or record batches, streamed into the partition) or `produce`
    (a function that writes the partition file itself, e.g. with DuckDB, embedding
    lake.partition_metadata). `source_totals` are summed from the raw source amounts, independently
    of the normalization, so the reconciliation check can compare the two.
    """

    source_totals: dict[str, Decimal]
    batches: pa.Table | Iterable[pa.RecordBatch | pa.Table] | None = None
    produce: Callable[[Path], None] | None = None
    api_calls: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


PullFunction = Callable[[Account, str], Pull]

# Set for a refresh that asks sources which pull only what can still change (Cost Explorer) to pull
# whole months instead (the run tag finops/full_refresh=true).
_full_refresh: contextvars.ContextVar[bool] = contextvars.ContextVar("finops_full_refresh", default=False)


def full_refresh_requested() -> bool:
    return _full_refresh.get()


@contextmanager
def full_refresh(wanted: bool = True) -> Iterator[None]:
    """Inside, pulls are asked for whole months."""
    token = _full_refresh.set(wanted)
    try:
        yield
    finally:
        _full_refresh.reset(token)


@dataclass
class AccountOutcome:
    account: Account
    rows: int = 0
    api_calls: int = 0
    source_totals: dict[str, Decimal] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None

    @property
    def ok(self) -> bool:
        return self.diagnosis is None


def refresh_accounts(
    data_dir: Path,
    accounts: list[Account],
    billing_period: str,
    pull: PullFunction,
    now: Callable[[], datetime],
    secrets: list[str],
    logger: logging.Logger | Any = log,
    run_id: str | None = None,
    concurrency: int = 1,
) -> list[AccountOutcome]:
    """Pull, write and record each account, up to `concurrency` at once; outcomes in the accounts' order.

    Each account is done whole in its worker (pull, atomic partition write, pull record), so at most
    `concurrency` months are in memory, and a failure stays that account's. Workers never log: the
    lines are collected and written here, on the caller's thread (Dagster's logger is not for threads).
    Provider quotas are shared through the data directory (throttle.py), across runs and processes.
    """
    # Client libraries log on their own (botocore's DEBUG wire logs, azure-identity's WARNINGs): from
    # now on no log record of this process carries a secret, whatever handler (stderr, Dagster's
    # compute log and event log) writes it.
    redaction.install(secrets)

    def one(account: Account) -> tuple[AccountOutcome, str, str]:
        with throttle.shared_through(data_dir):
            return _refresh_one(data_dir, account, billing_period, pull, now, secrets, run_id)

    outcomes: list[AccountOutcome] = []
    workers = max(1, min(concurrency, len(accounts)))
    if workers == 1:
        for account in accounts:
            outcome, level, line = one(account)
            getattr(logger, level)(line)
            outcomes.append(outcome)
        return outcomes
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finops-pull") as pool:
        # A copy of the caller's context per account: context variables (the throttle's directory,
        # a full-refresh request) reach the workers.
        futures = [pool.submit(contextvars.copy_context().run, one, account) for account in accounts]
        for future in futures:  # in order: the lines come out as each account finishes, in registry order
            outcome, level, line = future.result()
            getattr(logger, level)(line)
            outcomes.append(outcome)
    return outcomes


def _refresh_one(
    data_dir: Path, account: Account, billing_period: str, pull: PullFunction, now: Callable[[], datetime], secrets: list[str],
    run_id: str | None,
) -> tuple[AccountOutcome, str, str]:
    """One account: its outcome and the log line (level, text) that says what happened."""
    outcome = AccountOutcome(account)
    key = PartitionKey(account.provider, account.source, account.key, billing_period)
    try:
        result = pull(account, billing_period)
        outcome.api_calls = result.api_calls
        outcome.source_totals = result.source_totals
        outcome.metadata = result.metadata
        if result.produce is not None:
            outcome.rows = write_partition_with(data_dir, key, result.produce)
        else:
            batches = result.batches if result.batches is not None else COST_DAILY_SCHEMA.empty_table()
            outcome.rows = write_partition(data_dir, key, batches, result.source_totals, result.metadata.get("partition"))
        pulls.record_success(data_dir, account.key, billing_period, now(), outcome.rows, outcome.api_calls, outcome.source_totals, run_id)
        return outcome, "info", f"{account.key} {billing_period}: wrote {outcome.rows} rows ({outcome.api_calls} API calls)"
    except Exception as exc:  # one account's failure must not stop the others
        outcome.diagnosis = diagnose(account.provider, account.source, exc, secrets)
        pulls.record_failure(data_dir, account.key, billing_period, now(), outcome.diagnosis, run_id)
        return outcome, "error", redact(
            f"{account.key} {billing_period}: {outcome.diagnosis.cause} Fix: {outcome.diagnosis.fix} "
            f"[{outcome.diagnosis.code}] {outcome.diagnosis.detail}", secrets)
