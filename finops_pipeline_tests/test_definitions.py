"""What a user sees in the Dagster UI: an asset per account, described, grouped and typed; checks per
account; a job and a schedule per source; partitions from where data can exist."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from finops_pipeline.config import load_config
from finops_pipeline.dagster_sources import first_period
from finops_pipeline.jobs import load_definitions_for
from finops_pipeline.resources import FinopsResource
from finops_pipeline.sources import all_sources, get_source

EXAMPLE = Path(__file__).resolve().parent.parent / "finops.example.yaml"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "finops.yaml"
    shutil.copy(EXAMPLE, path)
    return path


@pytest.fixture
def defs(registry: Path) -> dg.Definitions:
    return load_definitions_for(FinopsResource(config_file=str(registry)))


def test_every_account_is_an_asset_with_a_description_a_group_kinds_and_a_column_schema(registry: Path, defs: dg.Definitions) -> None:
    config = load_config(registry)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {f"{a.provider}_{a.source}/{a.key}" for a in config.accounts} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in {"aws", "gcp", "azure", "digitalocean", "unified", "dashboard"}, key
        assert node.kinds, key
    for account in config.accounts:
        node = graph.get(dg.AssetKey([f"{account.provider}_{account.source}", account.key]))
        columns = [c.name for c in node.metadata["dagster/column_schema"].columns]
        assert "BilledCost" in columns and "x_AccountKey" in columns
        assert node.description.startswith(account.name)


def test_each_account_has_the_48_hour_and_reconciliation_checks(registry: Path, defs: dg.Definitions) -> None:
    checks = {(c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys}
    for account in load_config(registry).accounts:
        asset = f"{account.provider}_{account.source}/{account.key}"
        assert (asset, "billing_data_within_48h") in checks and (asset, "reconciles_with_source") in checks


def test_a_job_and_a_schedule_per_source_and_the_hourly_checks(defs: dg.Definitions) -> None:
    for source in all_sources():
        job = defs.resolve_job_def(f"refresh_{source.id}")
        assert job.partitions_def is not None
        selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
        assert "cost_daily" in selected and "finops_dashboard" in selected
        assert all(k.startswith(source.id + "/") for k in selected if "/" in k)  # only this source's accounts
    schedules = {s.name for s in defs.schedules}
    assert {f"refresh_{s.id}_schedule" for s in all_sources()} | {"check_billing_connections_schedule"} <= schedules
    assert dg.AssetKey("billing_connection_status") in defs.resolve_job_def("check_billing_connections").asset_layer.executable_asset_keys
    assert defs.resolve_job_def("build_cost_tables").partitions_def is None


def test_partitions_begin_where_data_can_exist(registry: Path) -> None:
    today = datetime(2026, 11, 30, tzinfo=timezone.utc)
    cur, cost_explorer = get_source("aws", "cur"), get_source("aws", "cost_explorer")
    assert first_period(cur, None, today) == "2025-11"  # default: this month and the 12 before
    assert first_period(cur, "2024-01", today) == "2024-01"  # further back when the registry says so
    assert first_period(cost_explorer, "2024-01", today) == "2025-11"  # never before Cost Explorer's 13 months
    assert first_period(cur, "2030-01", today) == "2026-11"

    raw = yaml.safe_load(registry.read_text())
    registry.write_text(yaml.safe_dump({**raw, "history_start": "2024-06"}))
    defs = load_definitions_for(FinopsResource(config_file=str(registry)))
    job = defs.resolve_job_def("refresh_aws_cur")
    assert job.partitions_def.get_first_partition_key() == "2024-06"
    assert job.partitions_def.get_last_partition_key() == datetime.now(timezone.utc).strftime("%Y-%m")


def test_the_schedule_requests_one_run_per_open_period_however_many_accounts(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("refresh_aws_cur_schedule")
    with dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)) as context:
        requests = list(schedule(context))
    assert [r.partition_key for r in requests] == ["2026-12", "2026-11"]
    assert len({r.run_key for r in requests}) == 2


def test_definitions_load_without_a_registry(tmp_path: Path) -> None:
    defs = load_definitions_for(FinopsResource(config_file=str(tmp_path / "absent.yaml")))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"cost_daily", "provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status",
                    "cost_by_service", "cost_by_tag", "cost_forecast", "cost_anomalies", "budget_status", "cost_in_reporting_currency",
                    "finops_dashboard"}
