"""The real refresh and check jobs, in-process, against the BigQuery stand-in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from finops_pipeline import catalog
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_sandbox.gcp import export_table_name, raw_totals
from finops_pipeline_tests.conftest import check_results, run_checks, run_refresh, write_config
from finops_pipeline_tests.gcp.scenario import EUR_BILLING, NOW, PROJECT, USD_BILLING, account

ASSET = "gcp_bigquery_export_costs"
CONNECTED = NOW - timedelta(days=40)
EMPTY_BILLING = "0F0F0F-0F0F0F-0F0F0F"


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _gcp_totals(data_dir, period: str) -> dict[tuple[str, str], Decimal]:
    _, rows = catalog.query(
        data_dir,
        "SELECT x_AccountKey, BillingCurrency, sum(BilledCost) FROM cost_daily "
        "WHERE x_Provider = 'gcp' AND BillingPeriodStart = ?::TIMESTAMPTZ GROUP BY ALL",
        [f"{period}-01 00:00:00+00"],
    )
    return {(key, currency): Decimal(str(total)) for key, currency, total in rows}


def test_materialization_writes_lake_and_catalog_and_passes_checks(scenario, bigquery, tmp_path):
    data_dir = tmp_path / "data"
    bigquery.create_dataset(PROJECT, "billing_new")
    bigquery.create_export_table(PROJECT, "billing_new", export_table_name(EMPTY_BILLING))
    connected_new = NOW - timedelta(hours=47)
    config = write_config(tmp_path, [
        account("gcp-usd", USD_BILLING, "billing_usd", bigquery.url, _iso(CONNECTED)),
        account("gcp-eur", EUR_BILLING, "billing_eur", bigquery.url, _iso(CONNECTED)),
        account("gcp-new", EMPTY_BILLING, "billing_new", bigquery.url, _iso(connected_new)),
    ])
    result = run_refresh(config, data_dir, "2026-11", now=_iso(NOW))
    assert result.success

    expected = {("gcp-usd", "USD"): raw_totals(scenario.rows[USD_BILLING], "2026-11")["USD"],
                ("gcp-eur", "EUR"): raw_totals(scenario.rows[EUR_BILLING], "2026-11")["EUR"]}
    assert _gcp_totals(data_dir, "2026-11") == expected
    partition = PartitionKey("gcp", "bigquery_export", "gcp-usd", "2026-11").path(data_dir)
    assert partition.exists() and read_partition_totals(partition) == {"USD": expected[("gcp-usd", "USD")]}

    materialization = result.asset_materializations_for_node(ASSET)[0]
    details = materialization.metadata["source_details"].value
    assert details["gcp-usd"]["bytes_processed"] > 0 and details["gcp-usd"]["export_table_kind"] == "detailed"
    assert materialization.metadata["accounts_failed"].value == 0

    # 47 h after gcp-new was connected it has no data yet: PENDING, the check passes.
    checks = check_results(run_checks(config, data_dir, now=_iso(NOW)))
    assert checks[(ASSET, "reconciles_with_source")].passed
    assert checks[(ASSET, "billing_data_within_48h")].passed
    # At 49 h it fails, with the knowledge base's fix.
    later = check_results(run_checks(config, data_dir, now=_iso(connected_new + timedelta(hours=49))))
    no_data = later[(ASSET, "billing_data_within_48h")]
    assert not no_data.passed
    assert no_data.metadata["by_status"].value == {"gcp-usd": "OK", "gcp-eur": "OK", "gcp-new": "NO_DATA"}
    assert "BigQuery Data Viewer on the billing dataset" in no_data.metadata["fixes"].value["gcp-new"]["fix"]


def test_failing_account_keeps_its_last_good_data_and_others_refresh(scenario, bigquery, tmp_path):
    data_dir = tmp_path / "data"
    config = write_config(tmp_path, [
        account("gcp-usd", USD_BILLING, "billing_usd", bigquery.url, _iso(CONNECTED)),
        account("gcp-eur", EUR_BILLING, "billing_eur", bigquery.url, _iso(CONNECTED)),
    ])
    run_refresh(config, data_dir, "2026-11", now=_iso(NOW))
    before = _gcp_totals(data_dir, "2026-11")

    bigquery.create_dataset(PROJECT, "billing_usd", denied=True)  # someone removed Data Viewer
    result = run_refresh(config, data_dir, "2026-11", now=_iso(NOW + timedelta(hours=6)))
    failures = result.asset_materializations_for_node(ASSET)[0].metadata["failures"].value
    assert "gcp-usd" in failures and "gcp.permission_denied" in failures and "gcp-eur" not in failures
    assert _gcp_totals(data_dir, "2026-11") == before  # its last good month is still there

    checks = check_results(run_checks(config, data_dir, now=_iso(NOW + timedelta(hours=6))))
    flowing = checks[(ASSET, "billing_data_within_48h")]
    assert not flowing.passed
    assert flowing.metadata["by_status"].value == {"gcp-usd": "ERROR", "gcp-eur": "OK"}
    assert "BigQuery Data Viewer" in flowing.metadata["fixes"].value["gcp-usd"]["fix"]
    _, status = catalog.query(data_dir, "SELECT account_key, status, error_code FROM billing_connection_status ORDER BY 1")
    assert status == [("gcp-eur", "OK", None), ("gcp-usd", "ERROR", "gcp.permission_denied")]


def test_missing_dataset_and_missing_export_table_reach_the_status_table(bigquery, tmp_path):
    data_dir = tmp_path / "data"
    bigquery.create_dataset(PROJECT, "billing_empty")
    config = write_config(tmp_path, [
        account("gcp-typo", USD_BILLING, "billing_typo", bigquery.url, _iso(CONNECTED)),
        account("gcp-empty", USD_BILLING, "billing_empty", bigquery.url, _iso(NOW - timedelta(hours=3))),
    ])
    run_refresh(config, data_dir, "2026-11", now=_iso(NOW))
    _, status = catalog.query(data_dir, "SELECT account_key, status, error_code, fix FROM billing_connection_status ORDER BY 1")
    by_key = {key: (state, code, fix) for key, state, code, fix in status}
    assert by_key["gcp-typo"][:2] == ("ERROR", "gcp.dataset_not_found") and "Verify the dataset name" in by_key["gcp-typo"][2]
    # Export tables appear hours after the export is enabled: inside 48 h that is PENDING, not an error.
    assert by_key["gcp-empty"][:2] == ("PENDING", "gcp.no_export_table")
