"""The FOCUS export manifest sensor (the CUR sensor's code, watching FOCUS exports) against moto's S3."""

from __future__ import annotations

import json

from dagster import SensorResult, build_sensor_context

from finops_pipeline.jobs import load_definitions_for
from finops_pipeline.resources import FinopsResource
from finops_pipeline_tests.conftest import write_config
from finops_sandbox import focus as sf

from .conftest import BUCKET, entry

NOW = "2026-11-03T08:00:00Z"
ACCOUNT_TAG = "finops/account"


def _tick(config, tmp_path, cursor: str | None) -> SensorResult:
    resource = FinopsResource(config_file=str(config), data_dir=str(tmp_path / "data"), now=NOW)
    sensor = load_definitions_for(resource).resolve_sensor_def("focus_manifest_sensor")
    with build_sensor_context(cursor=cursor, resources={"finops": resource}) as context:
        return sensor(context)


def test_new_and_redelivered_focus_manifests_request_their_month(moto, bucket, tmp_path):
    config = write_config(tmp_path, [
        entry("focus-a", export="exp-a", endpoint=moto.url),
        {**entry("focus-b", export="exp-b", endpoint=moto.url), "account_id": "222233334444"},
        {**entry("focus-denied", export="exp-a", bucket="no-such-bucket", endpoint=moto.url),  # must not blind the others
         "account_id": "333344445555"},
    ])
    first = _tick(config, tmp_path, None)
    assert first.run_requests == []

    sf.deliver(bucket, BUCKET, "exports", "exp-a", "2026-11", sf.rows("2026-11", days=2))
    sf.deliver(bucket, BUCKET, "exports", "exp-b", "2026-10", sf.rows("2026-10", days=2))
    sf.deliver(bucket, BUCKET, "exports", "exp-a", "2026-08", sf.rows("2026-08", days=1))  # not watched
    second = _tick(config, tmp_path, first.cursor)
    assert sorted((r.tags[ACCOUNT_TAG], r.partition_key) for r in second.run_requests) == [("focus-a", "2026-11"), ("focus-b", "2026-10")]
    for request in second.run_requests:
        assert request.run_key.startswith(f"focus:{request.tags[ACCOUNT_TAG]}:{request.partition_key}:")
        assert request.tags["finops/focus_manifest"].endswith("-Manifest.json")
        selected = {k.to_user_string() for k in request.asset_selection}
        assert f"aws_focus/{request.tags[ACCOUNT_TAG]}" in selected and "cost_daily" in selected
        assert not any(k.startswith("aws_focus/") and k != f"aws_focus/{request.tags[ACCOUNT_TAG]}" for k in selected)

    third = _tick(config, tmp_path, second.cursor)
    assert third.run_requests == [] and json.loads(third.cursor) == json.loads(second.cursor)

    # October re-delivered: the same manifest key rewritten (newer files), so one new request with a new run key.
    sf.deliver(bucket, BUCKET, "exports", "exp-b", "2026-10", sf.rows("2026-10", days=3, seed="restated"))
    fourth = _tick(config, tmp_path, third.cursor)
    assert [(r.tags[ACCOUNT_TAG], r.partition_key) for r in fourth.run_requests] == [("focus-b", "2026-10")]
    assert fourth.run_requests[0].run_key not in {r.run_key for r in second.run_requests}
