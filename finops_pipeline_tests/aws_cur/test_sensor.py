"""The CUR manifest sensor's ticks against moto S3 (and a local directory)."""

from __future__ import annotations

import json
import os

from dagster import SensorResult, build_sensor_context

from finops_pipeline.defs.aws.manifest_sensor import watched_periods
from finops_pipeline.jobs import load_definitions_for
from finops_pipeline.resources import FinopsResource
from finops_pipeline_tests.conftest import write_config
from finops_sandbox import cur as sandbox_cur

from .conftest import BUCKET, entry, lines_for

NOW = "2026-11-03T08:00:00Z"
ACCOUNT_TAG = "finops/account"


def _tick(config, tmp_path, cursor: str | None) -> SensorResult:
    resource = FinopsResource(config_file=str(config), data_dir=str(tmp_path / "data"), now=NOW)
    sensor = load_definitions_for(resource).resolve_sensor_def("cur_manifest_sensor")
    with build_sensor_context(cursor=cursor, resources={"finops": resource}) as context:
        return sensor(context)


def test_watched_periods_are_the_open_and_previous_month():
    from datetime import datetime, timezone

    assert watched_periods(datetime(2026, 1, 3, tzinfo=timezone.utc)) == ["2025-12", "2026-01"]


def test_ticks_new_same_and_rewritten_manifests(moto, bucket, tmp_path):
    config = write_config(tmp_path, [
        entry("cur-v2", report="rep", endpoint=moto.url),
        entry("cur-legacy", report="old", version="legacy", endpoint=moto.url),
        entry("cur-denied", report="rep", bucket="no-such-bucket", endpoint=moto.url),  # must not blind the others
    ])

    first = _tick(config, tmp_path, None)
    assert first.run_requests == []
    # Nothing delivered is no problem; the bucket that does not exist is, and the tick's skip reason says so.
    assert first.skip_reason.skip_message.startswith("cur-denied: cannot look for CUR manifest deliveries:")
    assert "cur-v2" not in first.skip_reason.skip_message

    sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", "2026-11", lines_for("2026-11"), "cur2-parquet")
    sandbox_cur.deliver(bucket, BUCKET, "exports", "old", "2026-10", lines_for("2026-10"), "legacy-csv-gz")
    sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", "2026-08", lines_for("2026-09"), "cur2-parquet")  # not watched
    second = _tick(config, tmp_path, first.cursor)
    requested = sorted((r.tags[ACCOUNT_TAG], r.partition_key) for r in second.run_requests)
    assert requested == [("cur-legacy", "2026-10"), ("cur-v2", "2026-11")]
    assert all(r.run_key and r.run_key.startswith(f"cur:{r.tags[ACCOUNT_TAG]}:{r.partition_key}:") for r in second.run_requests)
    # Each run refreshes only its account's asset, then the tables downstream.
    for request in second.run_requests:
        selected = {k.to_user_string() for k in request.asset_selection}
        assert f"aws_cur/{request.tags[ACCOUNT_TAG]}" in selected and "cost_daily" in selected
        assert not any(k.startswith("aws_cur/") and k != f"aws_cur/{request.tags[ACCOUNT_TAG]}" for k in selected)

    # The same manifests again: nothing to do.
    third = _tick(config, tmp_path, second.cursor)
    assert third.run_requests == []
    assert json.loads(third.cursor) == json.loads(second.cursor)

    # AWS re-delivers October for the legacy report: the same manifest key, rewritten.
    # (within the same second LastModified may not move; the cursor holds the ETag too)
    sandbox_cur.deliver(bucket, BUCKET, "exports", "old", "2026-10", lines_for("2026-10", seed="restated"), "legacy-csv-gz")
    fourth = _tick(config, tmp_path, third.cursor)
    assert [(r.tags[ACCOUNT_TAG], r.partition_key) for r in fourth.run_requests] == [("cur-legacy", "2026-10")]
    old_key = [r.run_key for r in second.run_requests if r.tags[ACCOUNT_TAG] == "cur-legacy"][0]
    assert fourth.run_requests[0].run_key != old_key


def test_local_directory_manifests(tmp_path):
    root = tmp_path / "synced"
    config = write_config(tmp_path, [entry("cur-local", report="rep", local_dir=root)])
    root.mkdir()
    assert _tick(config, tmp_path, None).run_requests == []
    delivery = sandbox_cur.deliver(sandbox_cur.LocalBucket(root), BUCKET, "exports", "rep", "2026-11", lines_for("2026-11"), "cur2-parquet")
    second = _tick(config, tmp_path, None)
    assert [r.partition_key for r in second.run_requests] == ["2026-11"]
    assert _tick(config, tmp_path, second.cursor).run_requests == []
    manifest = root / delivery.manifest_key
    later = manifest.stat().st_mtime + 60
    os.utime(manifest, (later, later))
    assert [r.partition_key for r in _tick(config, tmp_path, second.cursor).run_requests] == ["2026-11"]
