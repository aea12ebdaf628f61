"""Bad input in an Azure export (issue item 6): a clear error naming the blob and the fix, the last good month
kept, the other accounts going on. And the storage account's own refusals, diagnosed truthfully."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from finops_pipeline.defs.azure.exports.pull import pull_exports
from finops_pipeline.diagnosis import ERROR, diagnose
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline.schema import totals_by_currency
from finops_sandbox import azure_exports as ax

from .conftest import CONNECTION_ENV, account_of, entry

PERIOD = "2026-10"
GOOD_AT = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)


def _now():
    return datetime(2026, 11, 5, tzinfo=timezone.utc)


def _lines(**change):
    return [{**line, **change} for line in ax.focus_rows(PERIOD, days=3)]


def _without(column):
    return [{k: v for k, v in line.items() if k != column} for line in ax.focus_rows(PERIOD, days=3)]


def _bad_runs(container):
    """name -> (deliver the bad run, expected diagnosis code, words the cause names, words the fix names)."""
    later = GOOD_AT + timedelta(days=1)
    good = ax.focus_rows(PERIOD, days=3)

    def truncated():
        body, _ = ax.encode(good, "parquet")
        return ax.deliver(container, "exports", "focus-daily", PERIOD, good, "parquet", submitted=later, bodies={2: body[: len(body) // 3]})

    def outside():
        run = ax.deliver(container, "exports", "focus-daily", PERIOD, good, "csv", submitted=later)
        manifest = json.loads(container.download_blob(run.manifest_name).readall())
        manifest["blobs"][0]["blobName"] = "exports/other-export/20261001-20261031/x/part_0_0001.csv"
        container.upload_blob(run.manifest_name, json.dumps(manifest).encode(), overwrite=True)
        return run

    def missing():
        run = ax.deliver(container, "exports", "focus-daily", PERIOD, good, "csv", submitted=later)
        container.delete_blob(run.blob_names[1])
        return run

    def resized():
        run = ax.deliver(container, "exports", "focus-daily", PERIOD, good, "csv", submitted=later)
        container.upload_blob(run.blob_names[0], b"BilledCost\n1\n", overwrite=True)
        return run

    return {
        "unknown_version": (lambda: ax.deliver(container, "exports", "focus-daily", PERIOD, good, "csv", version="1.3", submitted=later),
                            "azure.focus_version_unsupported", "'1.3'", "supported FOCUS version"),
        "missing_column": (lambda: ax.deliver(container, "exports", "focus-daily", PERIOD, _without("BillingCurrency"), "csv", submitted=later),
                           "azure.focus_column_missing", "BillingCurrency", "FocusCost dataset"),
        "wrong_type_text": (lambda: ax.deliver(container, "exports", "focus-daily", PERIOD, _lines(BilledCost="12,50"), "csv", submitted=later),
                            "azure.focus_bad_value", "'12,50'", "Restore the export's original file"),
        "wrong_type_parquet": (lambda: ax.deliver(container, "exports", "focus-daily", PERIOD,
                                                  _lines(ChargePeriodStart=None, BillingPeriodStart=True), "parquet", submitted=later),
                               "azure.focus_", "", "month keeps its last good data"),
        "truncated_blob": (truncated, "azure.focus_file_unreadable", "corrupt, truncated", "re-sync"),
        "blob_outside_export": (outside, "azure.export_manifest_invalid", "outside the export's folder", "Run now"),
        "missing_blob": (missing, "azure.export_blob_missing", "not there", "Run now"),
        "size_mismatch": (resized, "azure.export_blob_size_mismatch", "the run's manifest says", "Run now"),
        "row_count_mismatch": (lambda: ax.deliver(container, "exports", "focus-daily", PERIOD, good, "csv", submitted=later,
                                                  manifest={"dataRowCount": len(good) + 40}),
                               "azure.export_run_partial", f"wrote {len(good) + 40} rows", "Run now"),
    }


@pytest.mark.parametrize("case", ["unknown_version", "missing_column", "wrong_type_text", "wrong_type_parquet", "truncated_blob",
                                  "blob_outside_export", "missing_blob", "size_mismatch", "row_count_mismatch"])
def test_bad_input_keeps_the_last_good_month_and_the_other_accounts(azurite, container, tmp_path, case):
    from azure.storage.blob import BlobServiceClient

    data_dir = tmp_path / "data"
    bad_account = account_of(entry(container.container_name, azurite, key="bad"))
    other = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(f"{container.container_name}-ok")
    try:
        other_account = account_of(entry(other.container_name, azurite, key="other"))
        good = ax.focus_rows(PERIOD, days=3)
        ax.deliver(container, "exports", "focus-daily", PERIOD, good, "csv", submitted=GOOD_AT)
        ax.deliver(other, "exports", "focus-daily", PERIOD, good, "parquet", submitted=GOOD_AT)
        outcomes = refresh_accounts(data_dir, [bad_account, other_account], PERIOD, pull_exports, _now, [])
        assert all(o.ok for o in outcomes), [o.diagnosis for o in outcomes]

        deliver, code, cause_words, fix_words = _bad_runs(container)[case]
        run = deliver()
        bad, ok = refresh_accounts(data_dir, [bad_account, other_account], PERIOD, pull_exports, _now, [])
        assert ok.ok and not bad.ok and bad.diagnosis.status == ERROR
        assert bad.diagnosis.code.startswith(code), bad.diagnosis
        assert cause_words in bad.diagnosis.cause and fix_words in bad.diagnosis.fix
        # The error names the run's blob (or manifest) by its place in the storage account.
        named = f"{azurite.account_url}/{container.container_name}/exports/focus-daily/20261001-20261031/"
        assert named in bad.diagnosis.cause + bad.diagnosis.detail and run.run_id in bad.diagnosis.cause + bad.diagnosis.detail
        table = read_partition(data_dir, PartitionKey("azure", "exports", "bad", PERIOD))
        assert totals_by_currency(table) == ax.expected_totals(good)  # the last good month, untouched
        assert not list((data_dir / "tmp").glob("azexp-*"))
    finally:
        other.delete_container()


def test_wrong_account_key_is_authentication_failed(azurite, container, tmp_path, monkeypatch):
    wrong = azurite.connection_string.replace(azurite.account_key, "d3Jvbmcta2V5LW5vdC10aGUtZW11bGF0b3JzLWtleS0xMjM0NTY3OA==")
    monkeypatch.setenv(CONNECTION_ENV, wrong)
    outcome, = refresh_accounts(tmp_path / "data", [account_of(entry(container.container_name, azurite))], PERIOD, pull_exports, _now,
                                [wrong])
    assert outcome.diagnosis.code == "azure.storage_authentication_failed" and "did not accept the credentials" in outcome.diagnosis.cause
    assert "Access keys" in outcome.diagnosis.fix
    assert "d3Jvbmcta2V5" not in json.dumps(outcome.diagnosis.as_dict())


def test_sas_without_read_permission_is_permission_mismatch(azurite, container, tmp_path, monkeypatch):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(azurite.account_name, container.container_name, account_key=azurite.account_key,
                                 permission=ContainerSasPermissions(write=True), expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    monkeypatch.setenv("TEST_AZURE_EXPORT_SAS", sas)
    ax.deliver(container, "exports", "focus-daily", PERIOD, ax.focus_rows(PERIOD, days=1), "csv")
    account = account_of(entry(container.container_name, azurite, sas_token_env="TEST_AZURE_EXPORT_SAS"))
    outcome, = refresh_accounts(tmp_path / "data", [account], PERIOD, pull_exports, _now, [sas])
    assert outcome.diagnosis.code == "azure.storage_permission_missing", outcome.diagnosis
    assert "AuthorizationPermissionMismatch" in outcome.diagnosis.cause and "Storage Blob Data Reader" in outcome.diagnosis.fix
    signature = sas.split("sig=")[1].split("&")[0]
    assert signature not in json.dumps(outcome.diagnosis.as_dict())

    readable = generate_container_sas(azurite.account_name, container.container_name, account_key=azurite.account_key,
                                      permission=ContainerSasPermissions(read=True, list=True),
                                      expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    monkeypatch.setenv("TEST_AZURE_EXPORT_SAS", "?" + readable)
    outcome, = refresh_accounts(tmp_path / "data", [account], PERIOD, pull_exports, _now, [readable])
    assert outcome.ok, outcome.diagnosis
    assert readable.split("sig=")[1].split("&")[0] not in json.dumps(outcome.metadata)


def test_container_not_found(azurite, container, tmp_path):
    outcome, = refresh_accounts(tmp_path / "data", [account_of(entry("no-such-container", azurite))], PERIOD, pull_exports, _now, [])
    assert outcome.diagnosis.code == "azure.export_container_not_found" and "container" in outcome.diagnosis.fix


def test_an_endpoint_that_never_answers_times_out_within_the_budget(container, azurite, tmp_path):
    import time

    from finops_sandbox.server import SilentEndpoint

    with SilentEndpoint() as silent:
        item = entry(container.container_name, azurite, give_up_after_seconds=2, sas_token_env="TEST_AZURE_EXPORT_SAS")
        item["account_url"] = f"{silent.url}/devstoreaccount1"
        account = account_of(item)
        import os

        os.environ["TEST_AZURE_EXPORT_SAS"] = "sv=2024-01-01&sig=abc"
        try:
            started = time.monotonic()
            outcome, = refresh_accounts(tmp_path / "data", [account], PERIOD, pull_exports, _now, [])
            assert time.monotonic() - started < 30  # bounded, not the SDK's default minutes
        finally:
            del os.environ["TEST_AZURE_EXPORT_SAS"]
    assert outcome.diagnosis.code == "azure.timeout", outcome.diagnosis


def test_diagnose_reads_storage_errors_without_a_server():
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message="This request is not authorized to perform this operation using this permission.")
    error.error_code = "AuthorizationFailure"
    found = diagnose("azure", "exports", error)
    assert found.code == "azure.storage_permission_missing" and "network" in found.fix


def test_settings_need_exactly_one_way_to_sign_in_and_two_exports_for_cost_details(azurite):
    from pathlib import Path

    from finops_pipeline.config import parse_config

    item = entry("costs", azurite, sas_token_env="A_SAS")
    item["connection_string_env"] = "A_CONNECTION"
    problems = parse_config({"accounts": [item]}, Path("finops.yaml")).problems
    assert problems and "exactly one way to sign in" in str(problems[0])
    problems = parse_config({"accounts": [entry("costs", azurite, dataset="cost_details")]}, Path("finops.yaml")).problems
    assert problems and "amortized_export_name" in str(problems[0])
    problems = parse_config({"accounts": [entry("costs", azurite, tenant_id="7a1c0d2e-3f4b-4c5d-8e6f-0a1b2c3d4e5f")]}, Path("finops.yaml")).problems
    assert problems and "client_id" in str(problems[0])


@pytest.mark.parametrize("change, code, words", [
    ({"costInBillingCurrency": None}, "azure.focus_column_missing", "lacks the column(s) costInBillingCurrency"),
    ({"date": "31.10.2026"}, "azure.focus_bad_value", "holds a value in date that is not a date"),
    ({"costInBillingCurrency": "n/a"}, "azure.focus_bad_value", "holds a value in costInBillingCurrency that is not an amount"),
], ids=["missing-cost-column", "bad-date", "bad-amount"])
def test_bad_cost_details_name_the_blob_and_column(azurite, container, tmp_path, change, code, words):
    actual = ax.cost_details_rows(PERIOD, amortized=False, days=2)
    amortized = ax.cost_details_rows(PERIOD, amortized=True, days=2)
    if change.get("costInBillingCurrency", "") is None:
        broken = [{k: v for k, v in row.items() if k != "costInBillingCurrency"} for row in amortized]
    else:
        broken = [{**row, **change} if i == 3 else row for i, row in enumerate(amortized)]
    ax.deliver(container, "exports", "costs-actual", PERIOD, actual, "csv", kind="ActualCost")
    run = ax.deliver(container, "exports", "costs-amortized", PERIOD, broken, "csv", kind="AmortizedCost", files=1)
    account = account_of(entry(container.container_name, azurite, dataset="cost_details", export="costs-actual",
                               amortized="costs-amortized"))
    outcome, = refresh_accounts(tmp_path / "data", [account], PERIOD, pull_exports, _now, [])
    assert outcome.diagnosis.code == code and words in outcome.diagnosis.cause, outcome.diagnosis
    assert f"{container.container_name}/{run.blob_names[0]}" in outcome.diagnosis.cause
