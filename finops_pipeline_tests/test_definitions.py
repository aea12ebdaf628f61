"""What a user sees in the Dagster UI: every asset described, grouped, typed; jobs and schedules wired."""

from __future__ import annotations

from datetime import datetime, timezone

from dagster import AssetKey, build_schedule_context

from finops_pipeline.definitions import SOURCE_ASSETS, defs
from finops_pipeline.schedules import periods_to_refresh, refresh_costs_schedule


def test_every_asset_has_a_description_a_group_kinds_and_provider_assets_a_column_schema() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in {"aws", "gcp", "azure", "digitalocean", "unified", "dashboard"}, key
        assert node.kinds, key
    for asset in SOURCE_ASSETS:
        metadata = asset.specs_by_key[asset.key].metadata
        columns = [c.name for c in metadata["dagster/column_schema"].columns]
        assert "BilledCost" in columns and "x_AccountKey" in columns


def test_each_provider_asset_has_the_48_hour_and_reconciliation_checks() -> None:
    checks = {(c.asset_key, c.name) for c in defs.resolve_asset_graph().asset_check_keys}
    for asset in SOURCE_ASSETS:
        assert (asset.key, "billing_data_within_48h") in checks
        assert (asset.key, "reconciles_with_source") in checks


def test_jobs_and_schedules_load() -> None:
    assert defs.resolve_job_def("refresh_costs").partitions_def is not None
    assert AssetKey("billing_connection_status") in defs.resolve_job_def("check_billing_connections").asset_layer.executable_asset_keys
    assert {s.name for s in defs.schedules} >= {"refresh_costs_schedule", "check_billing_connections_schedule"}


def test_refresh_covers_the_previous_month_while_providers_restate_it() -> None:
    assert periods_to_refresh(datetime(2026, 12, 3, tzinfo=timezone.utc)) == ["2026-12", "2026-11"]
    assert periods_to_refresh(datetime(2026, 1, 14, tzinfo=timezone.utc)) == ["2026-01", "2025-12"]
    assert periods_to_refresh(datetime(2026, 11, 26, tzinfo=timezone.utc)) == ["2026-11"]


def test_schedule_requests_one_run_per_period() -> None:
    context = build_schedule_context(scheduled_execution_time=datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc))
    requests = list(refresh_costs_schedule(context))
    assert [r.partition_key for r in requests] == ["2026-12", "2026-11"]
    assert len({r.run_key for r in requests}) == 2
