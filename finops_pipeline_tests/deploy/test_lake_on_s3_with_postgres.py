"""docs/deploy.md steps 2 and 6 together, as a deployment configures them: the Dagster instance on a real
PostgreSQL server (finops_pipeline/instance/dagster.postgres.yaml as shipped, connection from the
DAGSTER_PG_* variables) and the lake in a bucket (FINOPS_DATA_DIR=s3://bucket/prefix on moto, the endpoint
from FINOPS_LAKE_S3_ENDPOINT) with the catalog in FINOPS_WORK_DIR. Everything is read from the environment
variables the guide sets, as the code location does: the resource is given no paths."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from finops_pipeline import catalog, storage
from finops_pipeline.config import load_config
from finops_pipeline.dagster_sources import BUILD_TABLES_JOB, refresh_job_name
from finops_pipeline.jobs import refresh, run_checks
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_pipeline.resources import FinopsResource
from finops_pipeline.sources import get_source
from finops_pipeline_tests.deploy.conftest import DagsterHome, Registry
from finops_sandbox.aws import MotoSandbox
from finops_sandbox.postgres import PostgresServer
from finops_sandbox.synthetic import totals

ACCOUNTS = ("aws-main", "aws-second")


def test_refresh_tables_and_checks_with_the_lake_in_s3_and_the_instance_on_postgresql(
        postgres_server: PostgresServer, postgres_home: DagsterHome, cost_explorer_registry: Registry, s3_lake: str,
        moto: MotoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = cost_explorer_registry
    work = tmp_path / "work"
    monkeypatch.chdir(tmp_path)  # a relative ./data written by mistake would land here
    monkeypatch.setenv("FINOPS_CONFIG", str(registry.path))
    monkeypatch.setenv("FINOPS_DATA_DIR", s3_lake)  # s3_lake set FINOPS_LAKE_S3_ENDPOINT to moto
    monkeypatch.setenv("FINOPS_WORK_DIR", str(work))
    finops = FinopsResource()  # paths from FINOPS_CONFIG / FINOPS_DATA_DIR, as in the guide
    assert finops.data_path() == s3_lake

    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        refreshed = refresh(finops, load_config(registry.path).accounts, [registry.period], instance=instance, build_tables=True)
        assert refreshed.ok, [(r.key, r.code, r.cause) for r in refreshed.results if not r.ok]
        checks = run_checks(finops, instance=instance)
        assert checks.success
        runs = [*refreshed.runs, checks]
        stored = {run.run_id: (run.job_name, run.status) for run in instance.get_runs()}
        refresh_job = refresh_job_name(get_source("aws", "cost_explorer"))
        assert sorted(stored.values()) == sorted((job, DagsterRunStatus.SUCCESS) for job in (refresh_job, BUILD_TABLES_JOB, "check_billing_connections"))
        assert set(stored) == {run.run_id for run in runs}
        reported = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in checks.get_asset_check_evaluations()}
        assert reported[("aws_cost_explorer/aws-main", "reconciles_with_source")] is True
        assert reported[("aws_cost_explorer/aws-second", "reconciles_with_source")] is True

    # The runs, straight from PostgreSQL's runs table.
    with postgres_server.connect(postgres_home.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        assert sorted(cursor.fetchall()) == sorted((run.run_id, "SUCCESS") for run in runs)

    # The partitions are objects in the bucket, each reconciling to the cent with what Cost Explorer sent.
    bucket, prefix = s3_lake.removeprefix("s3://").split("/", 1)
    listed = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/lake/")
    keys = {item["Key"] for item in listed.get("Contents", [])}
    expected: dict[str, Decimal] = {}
    for key in ACCOUNTS:
        partition = PartitionKey("aws", "cost_explorer", key, registry.period).path(s3_lake)
        assert storage.exists(partition) and partition.removeprefix(f"s3://{bucket}/") in keys
        assert read_partition_totals(partition) == totals(registry.charges[key])
        for currency, amount in totals(registry.charges[key]).items():
            expected[currency] = expected.get(currency, Decimal(0)) + amount

    # `finops-pipeline query` over cost_daily: the catalog in FINOPS_WORK_DIR reads the bucket; same totals.
    assert catalog.catalog_path(s3_lake) == work / catalog.CATALOG_FILE and (work / catalog.CATALOG_FILE).is_file()
    _, rows = catalog.query(s3_lake, "SELECT BillingCurrency, sum(BilledCost) FROM cost_daily WHERE x_AccountKey IN ('aws-main', 'aws-second') "
                                     "GROUP BY 1 ORDER BY 1")
    assert dict(rows) == expected

    # Nothing local but the registry, the Dagster home (its yaml, compute logs) and the work directory:
    # no ./data, no lake file anywhere on disk.
    assert {p.name for p in tmp_path.iterdir()} == {registry.path.name, postgres_home.path.name, work.name}
    assert not list(tmp_path.rglob("*.parquet"))
    assert not list(postgres_home.path.rglob("*.db"))
