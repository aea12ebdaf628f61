"""The Dagster UI's server as a user drives it: materialize a provider partition, run the 48-hour
checks, turn on the check schedule and the CUR sensor and watch the daemon's ticks launch runs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from finops_pipeline.catalog import query
from finops_pipeline.lake import list_partitions, read_partition_totals
from finops_pipeline.schedules import periods_to_refresh
from finops_pipeline_tests.ui.conftest import DagsterDev

pytestmark = pytest.mark.e2e

CHECK_SCHEDULE = "check_billing_connections_schedule"


def source_totals(dev: DagsterDev, provider: str, source: str, period: str) -> dict[str, Decimal]:
    """What the source sent for one month, summed from the raw amounts each partition file records."""
    totals: dict[str, Decimal] = {}
    for key, path in list_partitions(dev.data_dir, provider, source):
        if key.billing_period == period:
            for currency, amount in read_partition_totals(path).items():
                totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def test_a_provider_partition_materializes_from_the_webserver(dagster_dev: DagsterDev, materialized: dict[str, str]) -> None:
    period = dagster_dev.now.strftime("%Y-%m")
    data = dagster_dev.graphql(
        """query($key: AssetKeyInput!, $partition: String!) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(partitions: [$partition], limit: 1) { runId partition
               metadataEntries { label ... on JsonMetadataEntry { jsonString } ... on IntMetadataEntry { intValue } } } } } }""",
        {"key": {"path": ["aws_cost_explorer_costs"]}, "partition": period},
    )
    [materialization] = data["assetOrError"]["assetMaterializations"]
    assert materialization["runId"] == materialized[period]
    entries = {e["label"]: e for e in materialization["metadataEntries"]}
    expected = source_totals(dagster_dev, "aws", "cost_explorer", period)
    assert expected and {c: Decimal(v) for c, v in json.loads(entries["totals_by_currency"]["jsonString"]).items()} == expected
    assert entries["accounts_failed"]["intValue"] == 0
    # The dashboard tables in the catalog say the same: month to date is this month's source total.
    _, rows = query(dagster_dev.data_dir, "SELECT currency, month_to_date FROM provider_cost_summary WHERE provider = 'aws'")
    assert dict(rows) == expected


def test_the_48_hour_checks_run_and_name_the_account_and_its_fix(dagster_dev: DagsterDev, checked: str) -> None:
    def latest(check: str) -> dict:
        """The execution from our run (the check schedule, turned on, may have run them since)."""
        data = dagster_dev.graphql(
            """query($key: AssetKeyInput!, $check: String!) { assetCheckExecutions(assetKey: $key, checkName: $check, limit: 20) {
                 runId status evaluation { success severity
                   metadataEntries { label ... on MarkdownMetadataEntry { mdStr } ... on JsonMetadataEntry { jsonString } } } } }""",
            {"key": {"path": ["aws_cost_explorer_costs"]}, "check": check},
        )
        [execution] = [e for e in data["assetCheckExecutions"] if e["runId"] == checked]
        return execution

    no_data = latest("billing_data_within_48h")
    assert no_data["runId"] == checked and no_data["status"] == "FAILED"
    assert no_data["evaluation"]["severity"] == "ERROR"
    entries = {e["label"]: e for e in no_data["evaluation"]["metadataEntries"]}
    statuses = json.loads(entries["by_status"]["jsonString"])
    _, with_rows = query(dagster_dev.data_dir, "SELECT DISTINCT x_AccountKey FROM cost_daily")
    expected = {  # the 48-hour rule, applied to the registry's connected_at and what the lake holds
        a.key: ("NO_DATA" if (dagster_dev.now - a.connected_at).total_seconds() > 48 * 3600 else "PENDING")
        for a in dagster_dev.config.for_source("aws", "cost_explorer")
        if (a.key,) not in with_rows
    }
    assert {k: v for k, v in statuses.items() if k in expected} == expected and "NO_DATA" in expected.values()
    for key in (k for k, v in expected.items() if v == "NO_DATA"):
        assert f"**{key}**" in entries["failing_accounts"]["mdStr"]
    assert "AWSCostExplorerReadOnlyAccess" in entries["failing_accounts"]["mdStr"]
    reconciliation = latest("reconciles_with_source")
    assert reconciliation["runId"] == checked and reconciliation["evaluation"]["success"] is True


def test_the_refresh_schedule_asks_for_the_open_month_and_the_restated_one(dagster_dev: DagsterDev) -> None:
    """The real cron (every 6 h) is too slow to wait for: evaluate its tick as the UI's 'Test schedule' does."""
    at = datetime(2026, 11, 3, 6, tzinfo=timezone.utc)
    data = dagster_dev.graphql(
        """mutation($selector: ScheduleSelector!, $at: Float!) { scheduleDryRun(selectorData: $selector, timestamp: $at) {
             __typename ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
               runRequests { runKey tags { key value } } } } ... on PythonError { message } } }""",
        {"selector": dagster_dev.selector("schedule", "refresh_costs_schedule"), "at": at.timestamp()},
    )["scheduleDryRun"]
    assert data["__typename"] == "DryRunInstigationTick", data
    requests = data["evaluationResult"]["runRequests"]
    partitions = [next(t["value"] for t in r["tags"] if t["key"] == "dagster/partition") for r in requests]
    assert partitions == periods_to_refresh(at) == ["2026-11", "2026-10"]


def test_the_check_schedule_ticks_and_its_run_succeeds(dagster_dev: DagsterDev, instigators_on: dict[str, str]) -> None:
    selector = dagster_dev.selector("schedule", CHECK_SCHEDULE)

    def ticked() -> list[str]:
        data = dagster_dev.graphql(
            """query($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) { ... on Schedule {
                 scheduleState { status ticks(limit: 5) { status runIds } } } } }""",
            {"selector": selector},
        )
        state = data["scheduleOrError"]["scheduleState"]
        assert state["status"] == "RUNNING"
        failed = [t for t in state["ticks"] if t["status"] == "FAILURE"]
        assert not failed, failed
        return [run for t in state["ticks"] if t["status"] == "SUCCESS" for run in t["runIds"]]

    runs = dagster_dev.wait_for("a tick of the check schedule", ticked, timeout=100, interval=3)
    # Off again: one tick is the proof, a run a minute would only load the machine.
    dagster_dev.graphql("mutation($s: ScheduleSelector!) { resetSchedule(scheduleSelector: $s) { __typename } }", {"s": selector})
    assert dagster_dev.wait_for_run(runs[0]) == "SUCCESS"
    tags = dagster_dev.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { jobName tags { key value } } } }", {"id": runs[0]})
    run = tags["runOrError"]
    assert run["jobName"] == "check_billing_connections"
    assert {"key": "dagster/schedule_name", "value": CHECK_SCHEDULE} in run["tags"]


def test_the_cur_sensor_ticks_and_requests_runs(dagster_dev: DagsterDev, instigators_on: dict[str, str]) -> None:
    sensor = instigators_on.get("sensor")
    if not sensor:
        pytest.skip(
            "No CUR sensor in the definitions yet (providers/aws/sensors.py is being written on another branch); "
            "this test starts it and waits for a tick with runs as soon as a sensor named *cur* is defined."
        )

    def ticked() -> list[str]:
        data = dagster_dev.graphql(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { ... on Sensor {
                 sensorState { status ticks(limit: 5) { status runIds error { message } } } } } }""",
            {"selector": dagster_dev.selector("sensor", sensor)},
        )
        state = data["sensorOrError"]["sensorState"]
        assert state["status"] == "RUNNING"
        failed = [t for t in state["ticks"] if t["status"] == "FAILURE"]
        assert not failed, failed
        return [run for t in state["ticks"] if t["status"] == "SUCCESS" for run in t["runIds"]]

    runs = dagster_dev.wait_for(f"a tick of {sensor} with runs", ticked, timeout=90, interval=3)
    assert all(dagster_dev.wait_for_run(run) == "SUCCESS" for run in runs)
