"""The Azure export run sensor's ticks against Azurite, through Dagster's build_sensor_context."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from dagster import SensorResult, build_sensor_context

from finops_pipeline import delivery_sensor
from finops_pipeline.config import load_config
from finops_pipeline.defs.azure.exports.sensor import RUN_TAG, exports_watched
from finops_pipeline.jobs import load_definitions_for
from finops_pipeline.resources import FinopsResource
from finops_pipeline_tests.conftest import write_config
from finops_sandbox import azure_exports as ax

from .conftest import entry

NOW = "2026-11-03T08:00:00Z"
ACCOUNT_TAG = "finops/account"
SUBMITTED = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)


def _tick(config, tmp_path, cursor: str | None) -> SensorResult:
    resource = FinopsResource(config_file=str(config), data_dir=str(tmp_path / "data"), now=NOW)
    sensor = load_definitions_for(resource).resolve_sensor_def("azure_exports_run_sensor")
    with build_sensor_context(cursor=cursor, resources={"finops": resource}) as context:
        return sensor(context)


def test_new_unchanged_and_redelivered_runs(azurite, container, tmp_path):
    config = write_config(tmp_path, [
        entry(container.container_name, azurite, key="focus", root="focus"),
        entry(container.container_name, azurite, key="details", root="details", dataset="cost_details", export="actual",
              amortized="amortized"),
    ])
    first = _tick(config, tmp_path, None)
    assert first.run_requests == [] and first.skip_reason is None  # nothing delivered yet is not an error

    run = ax.deliver(container, "focus", "focus-daily", "2026-11", ax.focus_rows("2026-11", days=2), submitted=SUBMITTED)
    ax.deliver(container, "focus", "focus-daily", "2026-08", ax.focus_rows("2026-08", days=1), submitted=SUBMITTED)  # not watched
    # Half of a cost details month (ActualCost ran, AmortizedCost not yet): not requested, the refresh would fail.
    actual = ax.deliver(container, "details", "actual", "2026-10", ax.cost_details_rows("2026-10", False, days=2), "csv.gz",
                        kind="ActualCost", submitted=SUBMITTED)
    # October's first run is still writing (files, no manifest yet): nothing to request, and no error either.
    ax.deliver(container, "focus", "focus-daily", "2026-10", ax.focus_rows("2026-10", days=1), submitted=SUBMITTED,
               write_manifest=False)
    second = _tick(config, tmp_path, first.cursor)
    assert second.skip_reason is None
    assert [(r.tags[ACCOUNT_TAG], r.partition_key) for r in second.run_requests] == [("focus", "2026-11")]
    request = second.run_requests[0]
    assert request.run_key == f"exports:focus:2026-11:{run.run_id}" and request.tags[RUN_TAG] == run.run_id
    resource = FinopsResource(config_file=str(config), data_dir=str(tmp_path / "data"), now=NOW)
    assert load_definitions_for(resource).resolve_sensor_def("azure_exports_run_sensor").job_name == "refresh_azure_exports"
    selected = {k.to_user_string() for k in request.asset_selection}
    assert "azure_exports/focus" in selected and "cost_daily" in selected and "azure_exports/details" not in selected

    # The same runs again: nothing to do, the cursor unchanged.
    third = _tick(config, tmp_path, second.cursor)
    assert third.run_requests == [] and json.loads(third.cursor) == json.loads(second.cursor)

    # The amortized export runs too: the details month is complete, one request carrying both runs.
    amortized = ax.deliver(container, "details", "amortized", "2026-10", ax.cost_details_rows("2026-10", True, days=2), "csv.gz",
                           kind="AmortizedCost", submitted=SUBMITTED)
    fourth = _tick(config, tmp_path, third.cursor)
    assert [(r.tags[ACCOUNT_TAG], r.partition_key, r.run_key) for r in fourth.run_requests] == [
        ("details", "2026-10", f"exports:details:2026-10:{actual.run_id}+{amortized.run_id}")]

    # A redelivery: a newer run of November beside the old one -> exactly one request, for the new run id.
    rerun = ax.deliver(container, "focus", "focus-daily", "2026-11", ax.focus_rows("2026-11", days=3),
                       submitted=SUBMITTED + timedelta(hours=20))
    fifth = _tick(config, tmp_path, fourth.cursor)
    assert [(r.tags[ACCOUNT_TAG], r.partition_key, r.run_key) for r in fifth.run_requests] == [
        ("focus", "2026-11", f"exports:focus:2026-11:{rerun.run_id}")]
    assert _tick(config, tmp_path, fifth.cursor).run_requests == []
    # A lost cursor asks again with the same run keys, which Dagster dedupes: a run is never launched twice.
    again = _tick(config, tmp_path, None)
    assert {r.run_key for r in again.run_requests} == {fifth.run_requests[0].run_key, fourth.run_requests[0].run_key}


def test_auth_failure_is_a_skip_with_its_diagnosis_and_no_secret(azurite, container, tmp_path, monkeypatch):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    wrong_key = base64.b64encode(b"not the account key, 32 bytes!!!").decode()
    sas = generate_container_sas(azurite.account_name, container.container_name, account_key=wrong_key,
                                 permission=ContainerSasPermissions(read=True, list=True), expiry="2099-01-01T00:00:00Z")
    monkeypatch.setenv("TEST_AZURE_EXPORT_BAD_SAS", sas)
    ax.deliver(container, "focus", "focus-daily", "2026-11", ax.focus_rows("2026-11", days=2), submitted=SUBMITTED)
    config = write_config(tmp_path, [entry(container.container_name, azurite, key="bad-sas", root="focus",
                                           sas_token_env="TEST_AZURE_EXPORT_BAD_SAS")])
    result = _tick(config, tmp_path, json.dumps({"bad-sas|2026-10": "kept"}))
    assert result.run_requests == []
    reason = result.skip_reason.skip_message
    assert reason.startswith("bad-sas: cannot look for Azure cost export run deliveries:")
    assert "[azure.storage_authentication_failed]" in reason and "SAS token" in reason
    assert sas.split("sig=")[1].split("&")[0] not in reason and "sig=" not in reason
    assert json.loads(result.cursor) == {"bad-sas|2026-10": "kept"}  # a failing account keeps its cursor


def test_the_tick_time_budget_defers_accounts(azurite, container, tmp_path):
    """With the budget spent, later accounts are not looked at (and are named), instead of overrunning the tick."""
    config_file = write_config(tmp_path, [entry(container.container_name, azurite, key="late", root="focus")])
    ax.deliver(container, "focus", "focus-daily", "2026-11", ax.focus_rows("2026-11", days=1), submitted=SUBMITTED)
    config = load_config(config_file)
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00"))

    class Log:
        def __init__(self):
            self.lines = []

        def warning(self, text):
            self.lines.append(text)

    log = Log()
    tick = delivery_sensor.evaluate(config, now, {}, log, exports_watched(), budget_seconds=0)
    assert tick.requests == [] and tick.problems == log.lines and tick.problems[0].startswith("late: not looked at")
    assert [r.partition_key for r in delivery_sensor.evaluate(config, now, {}, log, exports_watched()).requests] == ["2026-11"]
