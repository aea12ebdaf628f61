"""A sensor on export deliveries, for any source whose provider delivers a billing month as runs or manifests.

Each tick asks the source, per account, what identifies the newest delivery of the open and the previous
billing period (a manifest's LastModified/ETag, an export run's id). A token that differs from the
cursor's requests a refresh of exactly that account and month; the run key carries the token, so one
delivery never launches twice. The source's look-up is the only provider part (`Watched.look`); the
cursor, the run requests, the time budget and the errors are handled here, the same for every source.

Bounded time: one tick spends at most EVALUATION_SECONDS on the providers (each account's look gets
the smaller of its give_up_after_seconds and what is left, and bounds its requests by it); accounts not reached wait for the next
tick. An account whose look fails keeps its cursor and is reported: in the log, and as the tick's
SkipReason (its diagnosis, redacted) when nothing else was requested. The sensor itself never raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from finops_pipeline.config import Account, FinopsConfig
from finops_pipeline.dagster_sources import TABLE_ASSET_KEYS, account_asset_key
from finops_pipeline.diagnosis import diagnose, redact
from finops_pipeline.http_budget import Deadline, give_up_after
from finops_pipeline.resources import FinopsResource

# Dagster gives a sensor evaluation 60 s by default; stay well inside it.
EVALUATION_SECONDS = 40.0
INTERVAL_SECONDS = 15 * 60


def watched_periods(now: datetime) -> list[str]:
    """The open billing period and the previous one (providers re-deliver a closed month for a while)."""
    previous = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return [previous, now.strftime("%Y-%m")]


@dataclass(frozen=True)
class Delivery:
    """The newest delivery of one account's billing period, as the provider identifies it."""

    period: str
    token: str  # changes when the provider delivers again: the cursor's value and the run key's suffix
    tags: dict[str, str] = field(default_factory=dict)  # where it was found, for the run's tags


@dataclass(frozen=True)
class Watched:
    """What one source's sensor watches, and how to look (the only provider-specific part)."""

    provider: str
    source: str  # the run key's prefix
    title: str  # for the log: "CUR", "Azure cost export"
    # (account, billing periods, seconds it may spend) -> the newest deliveries; periods not delivered yet are left out
    look: Callable[[Account, list[str], float], Sequence[Delivery]]


@dataclass
class Tick:
    requests: list[dg.RunRequest]
    cursor: dict[str, str]
    problems: list[str]  # one line per account that could not be looked at: its diagnosis, redacted


def evaluate(config: FinopsConfig, now: datetime, cursor: dict[str, str], log: Any, watched: Watched,
             budget_seconds: float = EVALUATION_SECONDS) -> Tick:
    """The sensor's logic without Dagster's context: new deliveries -> run requests, new cursor, problems."""
    periods = watched_periods(now)
    budget = Deadline(budget_seconds)
    new_cursor = {k: v for k, v in cursor.items() if k.rsplit("|", 1)[-1] in periods}
    requests: list[dg.RunRequest] = []
    problems: list[str] = []
    secrets = config.secret_values()
    for account in config.for_source(watched.provider, watched.source):
        left = budget.remaining()
        if left <= 1:
            problems.append(f"{account.key}: not looked at, the tick's {budget_seconds:g} s were spent on the accounts before it; "
                            "the next tick looks again.")
            continue
        seconds = give_up_after(account)
        try:
            deliveries = list(watched.look(account, periods, min(seconds, left)))
        except Exception as exc:  # one unreadable account must not blind the sensor to the others
            diagnosis = diagnose(watched.provider, watched.source, exc, secrets)
            problems.append(f"{account.key}: cannot look for {watched.title} deliveries: {diagnosis.summary()} [{diagnosis.code}]")
            continue
        for delivery in deliveries:
            slot = f"{account.key}|{delivery.period}"
            if new_cursor.get(slot) == delivery.token:
                continue
            new_cursor[slot] = delivery.token
            requests.append(dg.RunRequest(
                run_key=f"{watched.source}:{account.key}:{delivery.period}:{delivery.token}",
                partition_key=delivery.period,
                asset_selection=[account_asset_key(account), *TABLE_ASSET_KEYS],
                tags={"finops/account": account.key, **delivery.tags},
            ))
    for problem in problems:
        log.warning(problem)
    return Tick(requests, new_cursor, problems)


def result(tick: Tick) -> dg.SensorResult:
    """Run requests, or (nothing to run) a SkipReason that says why, naming every account that failed."""
    cursor = json.dumps(tick.cursor, sort_keys=True)
    if tick.requests or not tick.problems:
        return dg.SensorResult(run_requests=tick.requests, cursor=cursor)
    return dg.SensorResult(skip_reason=dg.SkipReason(" | ".join(tick.problems)[:4000]), cursor=cursor)


def delivery_sensor(job: Any, name: str, watched: Callable[[], Watched], description: str) -> dg.SensorDefinition:
    """One source's sensor: every 15 minutes, its accounts' newest deliveries of the open and previous billing period."""

    @dg.sensor(name=name, job=job, minimum_interval_seconds=INTERVAL_SECONDS, description=description)
    def sensor(context: dg.SensorEvaluationContext, finops: FinopsResource) -> dg.SensorResult:
        try:
            cursor = json.loads(context.cursor) if context.cursor else {}
        except ValueError:
            cursor = {}  # an unreadable cursor: every delivery once more (their run keys still dedupe)
        try:
            config = finops.load_config()
        except Exception as exc:  # a broken registry: say so instead of failing the tick
            problem = redact(f"cannot read the account registry: {type(exc).__name__}: {exc}", [])[:4000]
            return dg.SensorResult(skip_reason=dg.SkipReason(problem), cursor=context.cursor)
        return result(evaluate(config, finops.current_time(), cursor if isinstance(cursor, dict) else {}, context.log, watched()))

    return sensor
