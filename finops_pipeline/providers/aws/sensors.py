"""A sensor on CUR deliveries: when a month's manifest appears or is rewritten, refresh that account and month.

It watches manifests, not data files: AWS writes the manifest after the data, and a redelivery
rewrites the same manifest key, so the cursor keeps each manifest's LastModified and ETag (a
key-name cursor would miss every redelivery). Each tick lists only the open and the previous
billing period's manifest key per account, never a whole report prefix.
"""


import json
from datetime import datetime, timedelta
from typing import Any

from dagster import (
    AssetSelection,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    sensor,
)
from dagster_aws.s3.sensor import get_objects

from finops_pipeline.config import Account
from finops_pipeline.diagnostics import diagnose
from finops_pipeline.providers.aws.assets import aws_cur_costs
from finops_pipeline.providers.aws.cur import LocalStore, S3Store, StoredObject, manifest_key, open_store
from finops_pipeline.resources import FinopsResource
from finops_pipeline.source_asset import ACCOUNT_TAG, BILLING_PERIODS

refresh_cur_job = define_asset_job(
    "refresh_cur",
    selection=AssetSelection.assets(aws_cur_costs) | AssetSelection.groups("unified", "dashboard"),
    partitions_def=BILLING_PERIODS,
    description="Refresh one CUR account's billing period (tag finops/account), then rebuild cost_daily and the dashboard tables.",
)


def watched_periods(now: datetime) -> list[str]:
    """The open billing period and the previous one (AWS re-delivers a closed month for a while)."""
    previous = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return [previous, now.strftime("%Y-%m")]


def manifest_state(store: S3Store | LocalStore, account: Account, billing_period: str) -> StoredObject | None:
    key = manifest_key(account, billing_period)
    if isinstance(store, S3Store):
        # dagster-aws paginates the listing; the prefix is the manifest key itself, so it lists one object.
        for item in get_objects(store.bucket, prefix=key, client=store.client):
            if item["Key"] == key:
                return StoredObject(key, item["LastModified"], str(item.get("ETag", "")).strip('"'), item.get("Size", 0))
        return None
    return store.stat(key)


def _token(stored: StoredObject) -> str:
    return f"{stored.last_modified.isoformat()}#{stored.etag}"


def evaluate(config, now: datetime, cursor: dict[str, str], log: Any) -> tuple[list[RunRequest], dict[str, str]]:
    """The sensor's logic without Dagster's context: new or rewritten manifests -> run requests, new cursor."""
    periods = watched_periods(now)
    requests = []
    new_cursor = {k: v for k, v in cursor.items() if k.rsplit("|", 1)[-1] in periods}
    secrets = config.secret_values()
    for account in config.for_source("aws", "cur"):
        try:
            store = open_store(account)
            states = {period: manifest_state(store, account, period) for period in periods}
        except Exception as exc:  # one unreadable bucket must not blind the sensor to the others
            diagnosis = diagnose("aws", "cur", exc, secrets)
            log.warning(f"{account.key}: cannot look for CUR manifests: {diagnosis.cause} Fix: {diagnosis.fix} [{diagnosis.code}]")
            continue
        for period, stored in states.items():
            if stored is None:
                continue
            slot = f"{account.key}|{period}"
            token = _token(stored)
            if new_cursor.get(slot) == token:
                continue
            new_cursor[slot] = token
            requests.append(RunRequest(
                run_key=f"cur:{account.key}:{period}:{token}",
                partition_key=period,
                tags={ACCOUNT_TAG: account.key, "finops/cur_manifest": stored.key},
            ))
    return requests, new_cursor


@sensor(
    job=refresh_cur_job,
    minimum_interval_seconds=15 * 60,
    description=(
        "Watches every configured CUR location's manifests for the open and previous billing period and requests a "
        "refresh of that account and month when a manifest is new or rewritten (LastModified/ETag cursor; run keys dedupe)."
    ),
)
def cur_manifest_sensor(context: SensorEvaluationContext, finops: FinopsResource) -> SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests, new_cursor = evaluate(finops.load_config(), finops.current_time(), cursor, context.log)
    return SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))
