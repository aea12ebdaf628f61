"""The real refresh and check jobs, in-process, against the BigQuery stand-in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from finops_pipeline import catalog
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_pipeline_tests.conftest import by_account, check_results, run_checks, run_refresh, statuses, write_config
from finops_pipeline_tests.gcp.scenario import EUR_BILLING, NOW, PROJECT, USD_BILLING, account
from finops_sandbox.gcp import export_table_name, raw_totals

SOURCE_ID = "gcp_bigquery_export"
CONNECTED = NOW - timedelta(days=40)
EMPTY_BILLING = "0F0F0F-0F0F0F-0F0F0F"


def check(account: str, name: str = "billing_data_within_48h") -> tuple[str, str]:
    return (f"{SOURCE_ID}/{account}", name)


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
    assert result.ok

    expected = {("gcp-usd", "USD"): raw_totals(scenario.rows[USD_BILLING], "2026-11")["USD"],
                ("gcp-eur", "EUR"): raw_totals(scenario.rows[EUR_BILLING], "2026-11")["EUR"]}
    assert _gcp_totals(data_dir, "2026-11") == expected
    partition = PartitionKey("gcp", "bigquery_export", "gcp-usd", "2026-11").path(data_dir)
    assert partition.exists() and read_partition_totals(partition) == {"USD": expected[("gcp-usd", "USD")]}

    details = by_account(result)["gcp-usd"].metadata["source_details"].value
    assert details["bytes_processed"] > 0 and details["export_table_kind"] == "detailed"

    # 47 h after gcp-new was connected it has no data yet: PENDING, the check passes.
    checks = check_results(run_checks(config, data_dir, now=_iso(NOW)))
    assert all(checks[check(a, "reconciles_with_source")].passed for a in ("gcp-usd", "gcp-eur"))
    assert checks[check("gcp-new")].passed
    # At 49 h it fails. Its pulls succeed on an empty export table, so the fix is about which billing account
    # exports there, not about access (the successful pull disproves "no access").
    later = run_checks(config, data_dir, now=_iso(connected_new + timedelta(hours=49)))
    no_data = check_results(later)[check("gcp-new")]
    assert not no_data.passed
    assert statuses(later, SOURCE_ID) == {"gcp-usd": "OK", "gcp-eur": "OK", "gcp-new": "NO_DATA"}
    assert "billing_account_id" in no_data.metadata["fix"].value


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
    assert by_account(result)["gcp-usd"].code == "gcp.permission_denied" and by_account(result)["gcp-eur"].ok
    assert _gcp_totals(data_dir, "2026-11") == before  # its last good month is still there

    checks = run_checks(config, data_dir, now=_iso(NOW + timedelta(hours=6)))
    flowing = check_results(checks)[check("gcp-usd")]
    assert not flowing.passed
    assert statuses(checks, SOURCE_ID) == {"gcp-usd": "ERROR", "gcp-eur": "OK"}
    assert "BigQuery Data Viewer" in flowing.metadata["fix"].value
    _, status = catalog.query(data_dir, "SELECT account_key, status, error_code FROM billing_connection_status ORDER BY 1")
    assert status == [("gcp-eur", "OK", None), ("gcp-usd", "ERROR", "gcp.permission_denied")]


def test_missing_dataset_and_missing_export_table_reach_the_status_table(bigquery, tmp_path):
    data_dir = tmp_path / "data"
    bigquery.create_dataset(PROJECT, "billing_empty")
    config = write_config(tmp_path, [
        account("gcp-typo", USD_BILLING, "billing_typo", bigquery.url, _iso(CONNECTED)),
        account("gcp-empty", EMPTY_BILLING, "billing_empty", bigquery.url, _iso(NOW - timedelta(hours=3))),
    ])
    run_refresh(config, data_dir, "2026-11", now=_iso(NOW))
    _, status = catalog.query(data_dir, "SELECT account_key, status, error_code, fix FROM billing_connection_status ORDER BY 1")
    by_key = {key: (state, code, fix) for key, state, code, fix in status}
    assert by_key["gcp-typo"][:2] == ("ERROR", "gcp.dataset_not_found") and "Verify the dataset name" in by_key["gcp-typo"][2]
    # Export tables appear hours after the export is enabled: inside 48 h that is PENDING, not an error.
    assert by_key["gcp-empty"][:2] == ("PENDING", "gcp.no_export_table")
