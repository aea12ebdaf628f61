"""The SQL face: the catalog, `finops-pipeline query`, headless materialization and the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from finops_pipeline.catalog import build_catalog, catalog_path, query
from finops_pipeline.cli import main
from finops_pipeline.config import load_config
from finops_pipeline.lake import PartitionKey, write_partition
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.aws.test_cost_explorer import LINKED, SERVICES, account_entry
from finops_pipeline_tests.conftest import write_config
from finops_pipeline_tests.test_schema import row
from finops_sandbox.aws import MotoSandbox, cost_explorer_pages
from finops_sandbox.synthetic import daily_charges, totals

REPO = Path(__file__).resolve().parent.parent


def test_empty_catalog_has_a_typed_cost_daily_view(tmp_path: Path) -> None:
    build_catalog(tmp_path)
    columns, rows = query(tmp_path, "SELECT * FROM cost_daily")
    assert rows == [] and columns[0] == "BilledCost"
    _, [(kind,)] = query(tmp_path, "SELECT data_type FROM information_schema.columns WHERE column_name = 'BilledCost'")
    assert kind == "DECIMAL(38,10)"


def test_a_reader_can_hold_the_catalog_open_while_the_pipeline_rebuilds_it(tmp_path: Path) -> None:
    build_catalog(tmp_path)
    reader = duckdb.connect(str(catalog_path(tmp_path)), read_only=True)
    try:
        write_partition(tmp_path, PartitionKey("aws", "cost_explorer", "a", "2026-11"), rows_to_table([row(BilledCost="2.5")]), {"USD": Decimal("2.5")})
        build_catalog(tmp_path)  # no lock conflict with the open reader
        assert reader.execute("SELECT count(*) FROM cost_daily").fetchone() == (0,)  # the reader's catalog still answers
    finally:
        reader.close()
    assert query(tmp_path, "SELECT sum(BilledCost) FROM cost_daily")[1] == [(Decimal("2.5"),)]


def test_query_command_prints_a_table_or_csv_and_errors_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_partition(tmp_path, PartitionKey("aws", "cost_explorer", "a", "2026-11"), rows_to_table([row(BilledCost="2.5")]), {"USD": Decimal("2.5")})
    build_catalog(tmp_path)
    assert main(["query", "SELECT BillingCurrency, sum(BilledCost) AS total FROM cost_daily GROUP BY 1", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "BillingCurrency" in out and "2.50" in out
    assert main(["query", "SELECT 1 AS one", "--csv", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["one", "1"]
    assert main(["query", "SELECT nope FROM cost_daily", "--data-dir", str(tmp_path)]) == 2
    assert "error: BinderException" in capsys.readouterr().err
    assert main(["query", "SELECT 1", "--data-dir", str(tmp_path / "elsewhere")]) == 2
    assert "run the pipeline first" in capsys.readouterr().err


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "finops_pipeline" / "instance" / "dagster.yaml").read_text())
    return {**os.environ, "DAGSTER_HOME": str(home), **extra}


def test_headless_materialization_with_the_dagster_cli(moto: MotoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", "ext")
    config_path = write_config(tmp_path, [account_entry("aws-main", "111111111111", moto.url)])
    charges = daily_charges("cli", date(2026, 10, 1), 31, LINKED, SERVICES)
    moto.seed_cost_explorer(load_config(config_path).account("aws-main"), {"2026-10": cost_explorer_pages(charges, "2026-10")})
    data_dir = tmp_path / "data"
    env = _env(tmp_path, FINOPS_CONFIG=str(config_path), FINOPS_DATA_DIR=str(data_dir))
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "finops_pipeline.definitions",
               "--select", "aws_cost_explorer/aws-main,cost_daily", "--partition", "2026-10"]
    completed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert query(data_dir, "SELECT sum(BilledCost) FROM cost_daily")[1] == [(totals(charges)["USD"],)]


def test_refresh_runs_one_account_and_exits_non_zero_with_the_fix_when_it_fails(
    moto: MotoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`finops-pipeline refresh`: the knowledge base's 'click Refresh', through the real jobs, per account."""
    from finops_sandbox.faults import FaultProxy

    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", "ext")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    proxy = FaultProxy(moto.url).start()
    try:
        config_path = write_config(tmp_path, [
            account_entry("aws-main", "111111111111", moto.url),
            account_entry("aws-denied", "222222222222", proxy.url),
        ])
        config = load_config(config_path)
        charges = daily_charges("cli", date(2026, 10, 1), 31, LINKED, SERVICES)
        moto.seed_cost_explorer(config.account("aws-main"), {"2026-10": cost_explorer_pages(charges, "2026-10")})
        proxy.fail("GetCostAndUsage", "AccessDeniedException", "not authorized to perform ce:GetCostAndUsage")
        data_dir = tmp_path / "data"
        common = ["--config", str(config_path), "--data-dir", str(data_dir), "--period", "2026-10"]

        assert main(["refresh", "--account", "aws-main", *common]) == 0
        out = capsys.readouterr().out
        assert "ok    aws-main" in out and f"USD {totals(charges)['USD']:,.2f}" in out and "aws-denied" not in out

        assert main(["refresh", "--account", "aws-denied", *common]) == 1
        captured = capsys.readouterr()
        assert "FAIL  aws-denied" in captured.out and "[aws.cost_explorer_access_denied]" in captured.out
        assert "Fix: Attach AWSCostExplorerReadOnlyAccess" in captured.out
        assert "failed; the runs are red" in captured.err
        # The healthy account's month is intact; the runs are in the instance, the failed one red.
        assert query(data_dir, "SELECT sum(BilledCost) FROM cost_daily")[1] == [(totals(charges)["USD"],)]
        from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(job_name="refresh_aws_cost_explorer"))
            assert sorted(r.status.value for r in runs) == sorted([DagsterRunStatus.SUCCESS.value, DagsterRunStatus.FAILURE.value])

        assert main(["refresh", "--account", "nobody", *common]) == 2
        assert "no account" in capsys.readouterr().err
    finally:
        proxy.stop()


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = _env(tmp_path, FINOPS_DATA_DIR=str(tmp_path / "data"), FINOPS_SANDBOX_PORT="0")
    completed = subprocess.run(
        [sys.executable, "-m", "finops_pipeline.cli", "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for heading in ("Cost by provider", "By account", "Daily trend, last 30 days", "Billing connections"):
        assert heading in out
    assert "NO_DATA aws-new-sandbox" in out and "Fix:" in out
    assert f"Dashboard (open in a browser): {tmp_path / 'data' / 'dashboard.html'}" in out
    assert "aws-new-sandbox" in (tmp_path / "data" / "dashboard.html").read_text()
    _, statuses = query(tmp_path / "data", "SELECT status, count(*) FROM billing_connection_status GROUP BY 1 ORDER BY 1")
    assert dict(statuses)["NO_DATA"] >= 1 and dict(statuses)["OK"] >= 2
    _, [(days,)] = query(tmp_path / "data", "SELECT count(DISTINCT ChargePeriodStart) FROM cost_daily")
    assert days >= 60
    # The dashboard tables the pipeline built from the serving layer equal the queries as they were
    # before it, over every raw partition of the demo's lake; the serving files add up to the partitions.
    from finops_pipeline import serving
    from finops_pipeline.lake import mart_path
    from finops_pipeline_tests.test_marts import REFERENCE_SQL, assert_dashboard_marts_match_a_full_scan

    data_dir = tmp_path / "data"
    tables = {name: pq.read_table(mart_path(data_dir, name)) for name in REFERENCE_SQL}
    today = tables["provider_cost_summary"].column("as_of")[0].as_py()
    assert_dashboard_marts_match_a_full_scan(data_dir, tables, today)
    assert serving.verify(data_dir) == {} and serving.stale_periods(data_dir) == []
