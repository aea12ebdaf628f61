"""Cost Explorer end to end through Dagster: the lake, the catalog, the dashboard tables and the checks.

The refresh, reconciliation and failing-account tests run on every lake backend (`lake`: a local
directory, S3 on moto, Azure Blob on Azurite), with the same assertions."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetCheckSeverity

from finops_pipeline import serving, storage
from finops_pipeline.catalog import catalog_path, query
from finops_pipeline.config import load_config
from finops_pipeline.dashboard import write_dashboard
from finops_pipeline.lake import PartitionKey, mart_path, read_partition, write_partition
from finops_pipeline.storage import Location
from finops_pipeline_tests.aws.test_cost_explorer import LINKED, SERVICES, account_entry
from finops_pipeline_tests.conftest import by_account, check_results, lake_files, run_checks, run_events, run_refresh, statuses, write_config
from finops_sandbox.aws import MotoSandbox, cost_explorer_pages
from finops_sandbox.faults import FaultProxy
from finops_sandbox.synthetic import daily_charges, totals

SECRET = "ext-id-4f1c9b"
SOURCE_ID = "aws_cost_explorer"


def check(account: str, name: str = "billing_data_within_48h") -> tuple[str, str]:
    return (f"{SOURCE_ID}/{account}", name)


@pytest.fixture(autouse=True)
def external_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", SECRET)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


@pytest.fixture
def seeded(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path):
    """Two accounts with two months of data (one through the fault proxy), one with none, connected 2026-11-20."""
    return _seed(moto, proxy, tmp_path, tmp_path / "data")


@pytest.fixture
def seeded_lake(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path, lake: Location):
    """The same, with the data directory on each lake backend."""
    return _seed(moto, proxy, tmp_path, lake)


def _seed(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path, data_dir: Location):
    config_path = write_config(
        tmp_path,
        [
            account_entry("aws-main", "111111111111", proxy.url),
            account_entry("aws-second", "444444444444", moto.url),
            {**account_entry("aws-empty", "555555555555", moto.url), "connected_at": "2026-11-20T12:00:00Z"},
        ],
    )
    config = load_config(config_path)
    charges = {
        "aws-main": daily_charges("main", date(2026, 10, 1), 56, LINKED, SERVICES),
        "aws-second": daily_charges("second", date(2026, 10, 1), 56, [("444444444444", "data")], SERVICES),
    }
    for key, items in charges.items():
        moto.seed_cost_explorer(config.account(key), {p: cost_explorer_pages(items, p, days_per_page=12) for p in ("2026-10", "2026-11")})
    proxy.clear()
    return config_path, data_dir, charges


def month_total(charges, month: int) -> Decimal:
    return totals([c for c in charges if c.day.month == month])["USD"]


def test_refresh_writes_the_lake_the_catalog_and_the_dashboard_tables(seeded_lake) -> None:
    config_path, data_dir, charges = seeded_lake
    result = run_refresh(config_path, data_dir, "2026-10", now="2026-11-26T08:00:00Z")
    run_refresh(config_path, data_dir, "2026-11", now="2026-11-26T08:00:00Z")

    assert result.ok
    accounts = by_account(result)
    assert [accounts[k].api_calls for k in ("aws-main", "aws-second", "aws-empty")] == [3, 3, 1]  # 31 days in pages of 12; one empty answer
    assert Decimal(accounts["aws-main"].totals["USD"]) == month_total(charges["aws-main"], 10)
    assert Decimal(accounts["aws-second"].totals["USD"]) == month_total(charges["aws-second"], 10)
    main = accounts["aws-main"].metadata
    assert Decimal(main["totals_by_currency"].value["USD"]) == month_total(charges["aws-main"], 10)
    assert main["billed"].value == f"USD {month_total(charges['aws-main'], 10):,.2f}"
    details = main["source_details"].value  # what the refresh paid for, and which days it asked for
    assert (details["pages"], details["cost_usd_for_api_calls"], details["pulled"]) == (3, "0.03", "whole month")
    assert "cost_explorer" not in details  # the partition's planning state stays in the file, not in the UI
    assert accounts["aws-empty"].rows == 0 and "no costs" in accounts["aws-empty"].metadata["note"].value

    # The lake: one partition per account and month, exact to the last decimal.
    main_october = read_partition(data_dir, PartitionKey("aws", "cost_explorer", "aws-main", "2026-10"))
    assert sum(main_october.column("BilledCost").to_pylist()) == month_total(charges["aws-main"], 10)

    # The catalog: SQL over everything, grand total equal to what the source sent.
    _, [(total,)] = query(data_dir, "SELECT sum(BilledCost) FROM cost_daily")
    assert total == totals(charges["aws-main"])["USD"] + totals(charges["aws-second"])["USD"]
    _, summary = query(data_dir, "SELECT provider, currency, month_to_date, has_data FROM provider_cost_summary")
    november_to_date = sum(c.amount for items in charges.values() for c in items if c.day.month == 11)
    assert summary == [("aws", "USD", november_to_date, True)]
    _, trend = query(data_dir, "SELECT count(*), min(day), max(day) FROM daily_cost_trend")
    assert trend == [(30, date(2026, 10, 27), date(2026, 11, 25))]
    _, cloud_accounts = query(data_dir, "SELECT cloud_account_id, cloud_account_name FROM cost_by_account ORDER BY 1")
    assert cloud_accounts == [("111111111111", "payer"), ("222222222222", "production"), ("444444444444", "data")]
    _, status = query(data_dir, "SELECT account_key, status FROM billing_connection_status ORDER BY account_key")
    assert status == [("aws-empty", "NO_DATA"), ("aws-main", "OK"), ("aws-second", "OK")]  # connected 5.8 days before

    # Where each file is: the lake (local or in the bucket), the catalog and the page in the local work directory.
    assert serving.verify(data_dir) == {}
    assert storage.exists(mart_path(data_dir, "provider_cost_summary"))
    page = write_dashboard(data_dir, datetime(2026, 11, 26, 8, tzinfo=timezone.utc))
    assert page == storage.work_dir(data_dir) / "dashboard.html" and catalog_path(data_dir).parent == page.parent
    assert f"USD {november_to_date:,.2f}" in page.read_text(encoding="utf-8")
    if storage.is_remote(data_dir):  # a plain DuckDB session: the marts are tables in the file, cost_daily needs our filesystem
        plain = duckdb.connect(str(catalog_path(data_dir)), read_only=True)
        try:
            assert plain.execute("SELECT sum(month_to_date) FROM provider_cost_summary").fetchone() == (november_to_date,)
            with pytest.raises(duckdb.Error):
                plain.execute("SELECT count(*) FROM cost_daily").fetchone()
        finally:
            plain.close()


def test_the_48_hour_check_waits_then_fails_with_the_fix(seeded) -> None:
    config_path, data_dir, _ = seeded
    run_refresh(config_path, data_dir, "2026-11", now="2026-11-22T11:00:00Z")

    result = run_checks(config_path, data_dir, now="2026-11-22T11:00:00Z")
    at_47h = check_results(result)[check("aws-empty")]
    assert at_47h.passed
    assert statuses(result, SOURCE_ID) == {"aws-main": "OK", "aws-second": "OK", "aws-empty": "PENDING"}
    assert at_47h.metadata["becomes_no_data_at"].value == "2026-11-22T12:00:00+00:00"
    assert at_47h.metadata["connected"].value == "47 hours"

    result = run_checks(config_path, data_dir, now="2026-11-22T13:00:00Z")
    at_49h = check_results(result)[check("aws-empty")]
    assert not at_49h.passed and at_49h.severity == AssetCheckSeverity.ERROR
    assert [a for a, s in statuses(result, SOURCE_ID).items() if s != "OK"] == ["aws-empty"]
    assert at_49h.metadata["status"].value == "NO_DATA" and at_49h.metadata["connected"].value == "2 days"
    # Its pulls succeed and return nothing: that disproves "cannot read Cost Explorer"; the fix is about the payer.
    assert "returns no costs" in at_49h.metadata["cause"].value
    assert "payer (management) account" in at_49h.metadata["fix"].value
    assert "not be activated" not in at_49h.metadata["cause"].value


def test_reconciliation_check_catches_a_partition_that_disagrees_with_its_source(seeded_lake) -> None:
    config_path, data_dir, _ = seeded_lake
    run_refresh(config_path, data_dir, "2026-10")
    checks = check_results(run_checks(config_path, data_dir))
    assert checks[check("aws-second", "reconciles_with_source")].passed

    key = PartitionKey("aws", "cost_explorer", "aws-second", "2026-10")
    rows = read_partition(data_dir, key)
    write_partition(data_dir, key, rows.slice(1), {"USD": sum(rows.column("BilledCost").to_pylist())})  # one row lost
    checks = check_results(run_checks(config_path, data_dir))
    failed = checks[check("aws-second", "reconciles_with_source")]
    assert not failed.passed
    assert list(failed.metadata["mismatches"].value) == ["aws-second/2026-10"]
    assert checks[check("aws-main", "reconciles_with_source")].passed


def test_a_failing_account_keeps_its_last_good_month_and_does_not_stop_the_others(seeded_lake, proxy: FaultProxy, tmp_path: Path) -> None:
    config_path, data_dir, charges = seeded_lake
    run_refresh(config_path, data_dir, "2026-10", now="2026-11-26T08:00:00Z")
    proxy.fail("GetCostAndUsage", "AccessDeniedException", f"not authorized to perform ce:GetCostAndUsage (external id {SECRET})")

    # The closed month is final after its first pull: ask for it whole, so every account calls Cost Explorer again.
    result = run_refresh(config_path, data_dir, "2026-10", now="2026-11-26T09:00:00Z", full_refresh=True)

    # The run is red, the healthy accounts are written and materialized, the failed one names its fix.
    assert not result.ok
    [run] = [r for r in result.runs if r.job_def.name == "refresh_aws_cost_explorer"]
    assert not run.success
    failure = run.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "aws-main" in failure.description and "AWSCostExplorerReadOnlyAccess" in failure.description
    materialized = {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()}
    assert materialized == {"aws_cost_explorer/aws-second", "aws_cost_explorer/aws-empty"}
    accounts = by_account(result)
    assert (accounts["aws-main"].ok, accounts["aws-main"].code) == (False, "aws.cost_explorer_access_denied")
    assert accounts["aws-second"].ok
    kept = read_partition(data_dir, PartitionKey("aws", "cost_explorer", "aws-main", "2026-10"))
    assert sum(kept.column("BilledCost").to_pylist()) == month_total(charges["aws-main"], 10)
    second = read_partition(data_dir, PartitionKey("aws", "cost_explorer", "aws-second", "2026-10"))
    assert sum(second.column("BilledCost").to_pylist()) == month_total(charges["aws-second"], 10)

    _, [(status, code, fix, error)] = query(
        data_dir, "SELECT status, error_code, fix, last_error FROM billing_connection_status WHERE account_key = 'aws-main'"
    )
    assert (status, code) == ("ERROR", "aws.cost_explorer_access_denied")
    assert "AWSCostExplorerReadOnlyAccess" in fix
    checks = run_checks(config_path, data_dir, now="2026-11-26T09:00:00Z")
    main = check_results(checks)[check("aws-main")]
    assert not main.passed and main.severity == AssetCheckSeverity.WARN  # its data flowed before: a warning
    assert main.metadata["status"].value == "ERROR" and "AWSCostExplorerReadOnlyAccess" in main.metadata["fix"].value
    assert statuses(checks, SOURCE_ID) == {"aws-main": "ERROR", "aws-second": "OK", "aws-empty": "NO_DATA"}

    # The secret the provider echoed back is nowhere: not in the status, the state, the event log.
    assert SECRET not in error and "***" in error
    files = {**lake_files(data_dir), **lake_files(tmp_path / "work")}  # a remote lake's work directory too
    assert any("state/pulls/aws-main" in path for path in files)
    for path, content in files.items():
        assert SECRET.encode() not in content, path
    assert SECRET not in run_events(result)
