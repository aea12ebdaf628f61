"""The Dagster instance on PostgreSQL: `finops-pipeline refresh` and the check job with DAGSTER_HOME
holding finops_pipeline/instance/dagster.postgres.yaml as shipped, against a real PostgreSQL server.
The runs, their events, the materializations and the check evaluations must be in that database (read
back through the instance and straight from its tables), and nothing in the local SQLite files."""

from __future__ import annotations

from decimal import Decimal

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from finops_pipeline.cli import main
from finops_pipeline.config import load_config
from finops_pipeline.dagster_sources import BUILD_TABLES_JOB, account_asset_key, refresh_job_name
from finops_pipeline.jobs import run_checks
from finops_pipeline.sources import get_source
from finops_pipeline_tests.conftest import finops_resource
from finops_pipeline_tests.deploy.conftest import DagsterHome, Registry
from finops_sandbox.postgres import PostgresServer
from finops_sandbox.synthetic import totals


def test_refresh_and_checks_are_recorded_in_postgresql(postgres_server: PostgresServer, postgres_home: DagsterHome,
                                                       cost_explorer_registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    registry = cost_explorer_registry
    assert main(["refresh", "--config", str(registry.path), "--data-dir", str(registry.data_dir), "--period", registry.period]) == 0
    printed = capsys.readouterr().out
    assert f"runs recorded in the Dagster instance at {postgres_home.path}" in printed
    assert sorted(line.split()[1] for line in printed.splitlines() if line.startswith("ok ")) == ["aws-main", "aws-second"]

    with DagsterInstance.get() as instance:
        # The instance the yaml describes: every storage in PostgreSQL, the queue and the pools as written.
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        assert type(instance.event_log_storage).__module__.startswith("dagster_postgres")
        assert type(instance.schedule_storage).__module__.startswith("dagster_postgres")
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

        checks = run_checks(finops_resource(registry.path, registry.data_dir), instance=instance)
        assert checks.success

        runs = {run.run_id: run for run in instance.get_runs()}
        refresh_job = refresh_job_name(get_source("aws", "cost_explorer"))
        assert sorted(run.job_name for run in runs.values()) == sorted([refresh_job, BUILD_TABLES_JOB, "check_billing_connections"])
        assert all(run.status == DagsterRunStatus.SUCCESS for run in runs.values())
        refresh_run = next(run for run in runs.values() if run.job_name == refresh_job)
        assert refresh_run.tags["dagster/partition"] == registry.period
        assert refresh_run.tags["finops/source"] == "aws_cost_explorer"

        # Materializations: each account's month, its total exactly what Cost Explorer sent.
        config = load_config(registry.path)
        for key in ("aws-main", "aws-second"):
            event = instance.get_latest_materialization_event(account_asset_key(config.account(key)))
            assert event is not None and event.run_id == refresh_run.run_id
            materialization = event.asset_materialization
            assert materialization.partition == registry.period
            assert Decimal(materialization.metadata["totals_by_currency"].value["USD"]) == totals(registry.charges[key])["USD"]

        # Check evaluations: what the check run reported is what PostgreSQL holds.
        reported = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in checks.get_asset_check_evaluations()}
        stored = {}
        for record in instance.get_records_for_run(checks.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            stored[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = evaluation.passed
        assert stored == reported
        assert reported[("aws_cost_explorer/aws-main", "reconciles_with_source")] is True
        assert ("aws_cost_explorer/aws-second", "billing_data_within_48h") in reported

    # Straight from PostgreSQL's tables, not through Dagster's classes.
    with postgres_server.connect(postgres_home.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, pipeline_name, status FROM runs ORDER BY pipeline_name")
        assert sorted(cursor.fetchall()) == sorted((run.run_id, run.job_name, "SUCCESS") for run in runs.values())
        cursor.execute("SELECT run_id, dagster_event_type, count(*) FROM event_logs WHERE dagster_event_type IS NOT NULL GROUP BY 1, 2")
        events = {(run_id, kind): count for run_id, kind, count in cursor.fetchall()}
        assert events[(refresh_run.run_id, "ASSET_MATERIALIZATION")] >= 2
        assert events[(checks.run_id, "ASSET_CHECK_EVALUATION")] == len(reported)
        assert all(events[(run_id, DagsterEventType.RUN_SUCCESS.value)] == 1 for run_id in runs)  # stored as PIPELINE_SUCCESS
        cursor.execute("SELECT asset_key FROM asset_keys")
        asset_keys = {row[0] for row in cursor.fetchall()}
        assert '["aws_cost_explorer", "aws-main"]' in asset_keys and '["cost_daily"]' in asset_keys
        cursor.execute("SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s", (checks.run_id,))
        assert sorted(cursor.fetchall()) == sorted((name, "SUCCEEDED" if passed else "FAILED") for (_, name), passed in reported.items())

    # Nothing went to a local SQLite store beside the yaml.
    assert not list(postgres_home.path.rglob("*.db"))
