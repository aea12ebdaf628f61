"""`finops-pipeline status`: an "as of" time, exit 1 when an account needs attention, clean errors, a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from finops_pipeline.catalog import build_catalog
from finops_pipeline.cli import main
from finops_pipeline.config import parse_config
from finops_pipeline.marts import billing_connection_status, write_mart
from finops_pipeline_tests.test_marts import CONFIG, TODAY, cost, seed

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)  # the DigitalOcean team of CONFIG is NO_DATA by then
REPO = Path(__file__).resolve().parent.parent


def status_table(data_dir: Path, config=CONFIG) -> Path:
    seed(data_dir, [cost(TODAY - timedelta(days=1), "1")])
    write_mart("billing_connection_status", billing_connection_status(data_dir, config, NOW), data_dir)
    build_catalog(data_dir)
    return data_dir


def test_status_exits_1_when_an_account_needs_attention_and_says_as_of_when(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status_table(tmp_path)
    assert main(["status", "--data-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("Billing connections as of 20") and " UTC " in captured.out.splitlines()[0]
    assert "NO_DATA do-team" in captured.out and "Fix:" in captured.out
    assert "1 account(s) need attention (ERROR or NO_DATA)." in captured.err


def test_status_exits_0_when_every_account_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    only_aws = parse_config({"accounts": [
        {"key": "aws-a", "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01", "account_id": "111111111111"}]},
        Path("finops.yaml"))
    status_table(tmp_path, only_aws)
    assert main(["status", "--data-dir", str(tmp_path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_status_without_a_catalog_or_table_is_a_message_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["status", "--data-dir", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert "run the pipeline first" in captured.err and "Traceback" not in captured.err and captured.out == ""
    build_catalog(tmp_path)  # a catalog, but no status table yet
    assert main(["status", "--data-dir", str(tmp_path)]) == 2
    assert "billing_connection_status table is not in" in capsys.readouterr().err


def test_status_survives_a_closed_pipe(tmp_path: Path) -> None:
    status_table(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "sandbox"), os.environ.get("PYTHONPATH", "")])}
    try:
        completed = subprocess.run([sys.executable, "-m", "finops_pipeline.cli", "status", "--data-dir", str(tmp_path)],
                                   stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(write_end)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr and "Exception ignored" not in completed.stderr


def test_the_report_prints_totals_per_currency_top_services_forecast_and_anomalies(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from decimal import Decimal

    from finops_pipeline.catalog import MART_TABLES
    from finops_pipeline.cli import print_report
    from finops_pipeline.marts import build_mart
    from finops_pipeline_tests.test_insight import charge, usage_pattern
    from finops_pipeline_tests.test_insight import seed as seed_insight

    first, spike = TODAY - timedelta(days=84), TODAY - timedelta(days=3)
    days = [first + timedelta(days=n) for n in range(84)]
    rows = [charge(d, str(usage_pattern(d) + (Decimal(300) if d == spike else 0))) for d in days]
    seed_insight(tmp_path, rows + [charge(d, "5", service="Amazon S3", currency="EUR") for d in days])
    now = datetime(2026, 11, 26, 8, tzinfo=timezone.utc)
    for name in MART_TABLES:
        write_mart(name, build_mart(name, tmp_path, CONFIG, now), tmp_path)
    build_catalog(tmp_path)
    print_report(tmp_path)
    out = capsys.readouterr().out
    assert "EUR              125.00        35.00        150.00          1" in out
    assert "USD          1  aws       Amazon EC2        3,160.00" in out
    assert "aws       aws-a        USD       2026-11    25       2,665.00  3,115.00" in out
    assert "2026-11-23  aws       aws-a        Amazon EC2    USD         103.50  405.00  301.50" in out
