"""A sensor on S3 export deliveries (CUR, FOCUS Data Exports): when a month's manifest appears or is rewritten,
refresh that account and month. Each source builds its own sensor from this code (`manifest_sensor`).

It watches manifests, not data files: AWS writes the manifest after the data, and a redelivery
rewrites the same manifest key, so the cursor keeps each manifest's LastModified and ETag (a
key-name cursor would miss every redelivery). Each tick lists only the open and the previous
billing period's manifest key per account, never a whole report prefix.
"""


import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.dagster_sources import TABLE_ASSET_KEYS, account_asset_key
from finops_pipeline.diagnosis import diagnose
from finops_pipeline.resources import FinopsResource


def watched_periods(now: datetime) -> list[str]:
    """The open billing period and the previous one (AWS re-delivers a closed month for a while)."""
    previous = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return [previous, now.strftime("%Y-%m")]


def _token(stored: Any) -> str:
    return f"{stored.last_modified.isoformat()}#{stored.etag}"


@dataclass(frozen=True)
class Watched:
    """What one source's sensor watches: its accounts' manifest key per billing period."""

    source: str  # "cur", "focus": the source of provider aws, and the run key's prefix
    title: str  # for the log: "CUR", "FOCUS export"
    manifest_key: Callable[[Any, str], str]  # (account, billing period) -> the manifest's key


def evaluate(config: FinopsConfig, now: datetime, cursor: dict[str, str], log: Any,
             watched: Watched | None = None) -> tuple[list[dg.RunRequest], dict[str, str]]:
    """The sensor's logic without Dagster's context: new or rewritten manifests -> run requests, new cursor."""
    watched = watched or cur_watched()
    periods = watched_periods(now)
    requests = []
    new_cursor = {k: v for k, v in cursor.items() if k.rsplit("|", 1)[-1] in periods}
    secrets = config.secret_values()
    from finops_pipeline.defs.aws.cur.pull import open_store

    for account in config.for_source("aws", watched.source):
        try:
            store = open_store(account)
            # The prefix is the manifest key itself, so each look lists one object, never a report prefix.
            states = {period: store.stat(watched.manifest_key(account, period)) for period in periods}
        except Exception as exc:  # one unreadable bucket must not blind the sensor to the others
            diagnosis = diagnose("aws", watched.source, exc, secrets)
            log.warning(f"{account.key}: cannot look for {watched.title} manifests: {diagnosis.cause} Fix: {diagnosis.fix} "
                        f"[{diagnosis.code}]")
            continue
        for period, stored in states.items():
            if stored is None:
                continue
            slot = f"{account.key}|{period}"
            token = _token(stored)
            if new_cursor.get(slot) == token:
                continue
            new_cursor[slot] = token
            requests.append(dg.RunRequest(
                run_key=f"{watched.source}:{account.key}:{period}:{token}",
                partition_key=period,
                asset_selection=[account_asset_key(account), *TABLE_ASSET_KEYS],
                tags={"finops/account": account.key, f"finops/{watched.source}_manifest": stored.key},
            ))
    return requests, new_cursor


def cur_watched() -> Watched:
    from finops_pipeline.defs.aws.cur.pull import manifest_key

    return Watched("cur", "CUR", manifest_key)


def focus_watched() -> Watched:
    from finops_pipeline.defs.aws.focus.pull import manifest_key

    return Watched("focus", "FOCUS export", manifest_key)


def manifest_sensor(job: Any, name: str, watched: Callable[[], Watched], what: str) -> dg.SensorDefinition:
    """One source's sensor: every 15 minutes, its accounts' manifests of the open and previous billing period."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=15 * 60,
        description=(
            f"Watches every configured {what} location's manifests for the open and previous billing period and requests a "
            "refresh of that account and month when a manifest is new or rewritten (LastModified/ETag cursor; run keys dedupe)."
        ),
    )
    def sensor(context: dg.SensorEvaluationContext, finops: FinopsResource) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, new_cursor = evaluate(finops.load_config(), finops.current_time(), cursor, context.log, watched())
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))

    return sensor


def cur_manifest_sensor(job: Any) -> dg.SensorDefinition:
    return manifest_sensor(job, "cur_manifest_sensor", cur_watched, "CUR")


def focus_manifest_sensor(job: Any) -> dg.SensorDefinition:
    return manifest_sensor(job, "focus_manifest_sensor", focus_watched, "AWS FOCUS export")
