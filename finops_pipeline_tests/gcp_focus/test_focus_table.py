"""GCP's FOCUS export through the unchanged google-cloud-bigquery client against the BigQuery stand-in:
exact reconciliation, the late-data rule, the shared reader's mapping, bad tables named with their fix."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.defs.gcp import day_cache
from finops_pipeline.defs.gcp.focus.pull import charge_days, pull_gcp_focus
from finops_pipeline.diagnosis import ERROR, PENDING, ProviderError, diagnose
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline.schema import totals_by_currency
from finops_pipeline_tests.conftest import by_account, run_refresh, write_config
from finops_sandbox.gcp import FOCUS_COLUMNS, create_focus_table, focus_dataset_name, focus_rows, focus_table_name, focus_totals

from .conftest import EUR_BILLING, NOW, PROJECT, USD_BILLING, account_of, entry


def _pull(item: dict, period: str, data_dir: Path, now: datetime = NOW):
    return pull_gcp_focus(account_of(item), period, data_dir=data_dir, now=now)


def _error(item: dict, tmp_path: Path, period: str = "2026-11"):
    with pytest.raises(Exception) as raised:
        _pull(item, period, tmp_path)
    return diagnose("gcp", "focus", raised.value)


def test_months_reconcile_exactly_per_currency_with_the_tables_billed_cost(scenario, bigquery, tmp_path):
    for billing in (USD_BILLING, EUR_BILLING):
        for period in ("2026-10", "2026-11"):
            pull = _pull(entry(f"k-{billing[:2].lower()}", billing, bigquery.url), period, tmp_path)
            expected = focus_totals(scenario.rows[billing], period)
            assert pull.source_totals == expected == totals_by_currency(pull.batches)
            assert set(expected) == {"USD" if billing == USD_BILLING else "EUR"}
    # Aggregated in BigQuery: two queries per month, never a raw row out of it.
    assert all("GROUP BY" in q["sql"] for q in bigquery.queries)


def test_rows_follow_focus_through_the_shared_reader(scenario, bigquery, tmp_path):
    pull = _pull(entry("usd", USD_BILLING, bigquery.url), "2026-10", tmp_path)
    rows = pull.batches.to_pylist()
    assert pull.metadata["focus_version"] == "1.2" and pull.metadata["focus_table_kind"] == "table"
    assert "x_Credits" in pull.metadata["x_columns_dropped"] and "x_CostType" not in pull.metadata["x_columns_dropped"]
    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Credit", "Tax"}
    assert {r["ChargePeriodStart"].hour for r in rows} == {0}  # hourly rows rolled up to UTC days
    usage = next(r for r in rows if r["ChargeCategory"] == "Usage" and r["ServiceName"] == "Compute Engine")
    assert json.loads(usage["Tags"]).keys() == {"env", "team"} and list(json.loads(usage["Tags"])) == ["env", "team"]
    assert usage["SkuMeter"] and usage["RegionName"] in ("Iowa", "Belgium") and usage["SubAccountType"] == "Project"
    assert usage["x_SourceChargeType"] == "regular" and usage["x_CurrencyConversionRate"] == Decimal(1)
    assert usage["ProviderName"] == "Google Cloud" and usage["x_Provider"] == "gcp" and usage["x_Source"] == "focus"
    assert usage["BillingPeriodStart"] == datetime(2026, 10, 1, tzinfo=timezone.utc)
    tax = [r for r in rows if r["ChargeCategory"] == "Tax"]
    assert len(tax) == 1 and tax[0]["Tags"] is None and tax[0]["x_SourceChargeType"] == "tax"
    # Usage of 31 October exported in November is billed in the November invoice: it is there, not here.
    assert date(2026, 10, 31) not in {r["ChargePeriodStart"].date() for r in rows}
    november = _pull(entry("usd", USD_BILLING, bigquery.url), "2026-11", tmp_path).batches.to_pylist()
    late = [r for r in november if r["ChargePeriodStart"].date() == date(2026, 10, 31)]
    assert late and all(r["BillingPeriodStart"].date() == date(2026, 11, 1) for r in late)


def test_late_rows_reread_only_their_day_and_never_count_twice(scenario, bigquery, tmp_path):
    item = entry("usd", USD_BILLING, bigquery.url)
    first = _pull(item, "2026-11", tmp_path)
    later = NOW + timedelta(hours=3)
    unchanged = _pull(item, "2026-11", tmp_path, now=later)
    assert unchanged.metadata["charge_days_reread"] == [] and unchanged.metadata["charge_days_checked"] == 10
    assert unchanged.source_totals == first.source_totals

    # A correction for 15 November arrives with a later x_ExportTime.
    fifteenth = next(r for r in scenario.rows[USD_BILLING] if r["ChargePeriodStart"].date() == date(2026, 11, 15))
    correction = dict(fifteenth, x_ExportTime=datetime(2026, 11, 20, 13, tzinfo=timezone.utc), BilledCost=Decimal("2.500001"),
                      EffectiveCost=Decimal("2.500001"), ChargeClass="Correction")
    scenario.add(USD_BILLING, [correction])
    changed = _pull(item, "2026-11", tmp_path, now=later)
    assert changed.metadata["charge_days_reread"] == ["2026-11-15"]
    assert changed.source_totals["USD"] == first.source_totals["USD"] + Decimal("2.500001")
    assert totals_by_currency(changed.batches) == changed.source_totals == focus_totals(scenario.rows[USD_BILLING], "2026-11")
    before = {r["ChargePeriodStart"]: r["x_IngestedAt"] for r in first.batches.to_pylist()}
    after = {r["ChargePeriodStart"]: r["x_IngestedAt"] for r in changed.batches.to_pylist()}
    assert {d.date() for d in after if after[d] != before.get(d)} == {date(2026, 11, 15)}
    assert [r for r in changed.batches.to_pylist() if r["ChargeClass"] == "Correction"]
    estimated = {r["ChargePeriodStart"].date() for r in changed.batches.to_pylist() if r["x_Estimated"]}
    assert min(estimated) == date(2026, 11, 11)  # the recent_days window may still change


def test_charge_days_cover_late_usage_and_pacific_invoice_months():
    days = charge_days("2026-10", date(2026, 11, 20))
    assert days[0] == date(2026, 9, 16) and days[-1] == date(2026, 11, 1)
    assert charge_days("2026-11", date(2026, 11, 20))[-1] == date(2026, 11, 20)


def test_a_refresh_writes_the_partition_and_other_accounts_continue(scenario, bigquery, tmp_path):
    data_dir = tmp_path / "data"
    config = write_config(tmp_path, [entry("gcp-usd", USD_BILLING, bigquery.url),
                                     entry("gcp-broken", "0E1F2A-3B4C5D-6E7F8A", bigquery.url, dataset="no_such_dataset"),
                                     entry("gcp-eur", EUR_BILLING, bigquery.url, table="missing_view")])
    results = by_account(run_refresh(config, data_dir, "2026-11", now="2026-11-20T12:00:00Z"))
    assert results["gcp-usd"].ok
    assert results["gcp-broken"].code == "gcp.dataset_not_found" and "FOCUS usage cost" in results["gcp-broken"].fix
    assert results["gcp-eur"].code == "gcp.no_focus_table" and "missing_view" in results["gcp-eur"].cause
    table = read_partition(data_dir, PartitionKey("gcp", "focus", "gcp-usd", "2026-11"))
    assert totals_by_currency(table) == focus_totals(scenario.rows[USD_BILLING], "2026-11")


def test_no_focus_table_yet_is_pending_with_how_to_enable_it(bigquery, tmp_path):
    dataset = focus_dataset_name(USD_BILLING)
    bigquery.create_dataset(PROJECT, dataset)
    bigquery.create_export_table(PROJECT, dataset, "gcp_billing_export_v1_" + USD_BILLING.replace("-", "_"))
    d = _error(entry("new", USD_BILLING, bigquery.url), tmp_path)
    assert d.code == "gcp.no_focus_table" and d.status == PENDING
    assert focus_table_name(USD_BILLING) in d.cause and "gcp_billing_export_v1_" in d.cause
    assert "enable the FOCUS usage cost export" in d.fix and "BigQuery Data Viewer" in d.fix and "BigQuery Job User" in d.fix


def test_permissions_are_diagnosed_with_the_roles_to_grant(scenario, bigquery, tmp_path):
    bigquery.create_dataset(PROJECT, focus_dataset_name(USD_BILLING), denied=True)
    d = _error(entry("usd", USD_BILLING, bigquery.url), tmp_path)
    assert d.code == "gcp.permission_denied" and "BigQuery Data Viewer" in d.fix
    bigquery.create_dataset(PROJECT, focus_dataset_name(USD_BILLING), denied=False)
    bigquery.projects_without_job_user.add(PROJECT)
    d = _error(entry("usd", USD_BILLING, bigquery.url), tmp_path)
    assert d.code == "gcp.cannot_run_queries" and "BigQuery Job User" in d.fix


def test_table_name_with_sql_is_refused_before_any_request(bigquery, tmp_path):
    from finops_pipeline.config import Account

    parsed = account_of(entry("bad", USD_BILLING, bigquery.url))
    forged = Account(parsed.key, "gcp", "focus", parsed.name, parsed.connected_at, {**parsed.settings, "table": "t`; DROP TABLE x; --"})
    with pytest.raises(ProviderError) as raised:
        pull_gcp_focus(forged, "2026-11", data_dir=tmp_path, now=NOW)
    assert raised.value.diagnosis.code == "gcp.invalid_identifier" and "finops.yaml" in raised.value.diagnosis.fix
    assert bigquery.calls == {} and bigquery.queries == []


def _bad_view(bigquery, name: str, columns: dict[str, str], rows: list[dict] | None = None) -> dict:
    dataset = focus_dataset_name(USD_BILLING)
    bigquery.create_dataset(PROJECT, dataset)
    create_focus_table(bigquery, PROJECT, dataset, name, columns, view=True)
    if rows:
        bigquery.insert_rows(PROJECT, dataset, name, rows)
    return entry("view", USD_BILLING, bigquery.url, table=name)


def test_a_view_missing_a_mandatory_column_is_named_with_the_fix(bigquery, tmp_path):
    columns = {k: v for k, v in FOCUS_COLUMNS.items() if k != "BillingCurrency"}
    d = _error(_bad_view(bigquery, "focus_view", columns), tmp_path)
    assert d.code == "gcp.focus_column_missing" and d.status == ERROR
    assert "focus_view" in d.cause and "BillingCurrency" in d.cause and "Change the view" in d.fix
    assert "keeps its last good data" in d.cause
    assert bigquery.queries == []  # refused from the schema, before any query


def test_a_view_with_wrong_types_or_an_unknown_version_is_refused(bigquery, tmp_path):
    d = _error(_bad_view(bigquery, "typed_view", {**FOCUS_COLUMNS, "BilledCost": "BOOLEAN"}), tmp_path)
    assert d.code == "gcp.focus_column_missing" and d.status == ERROR
    assert "BilledCost" in d.cause and "BOOL" in d.cause and "typed_view" in d.cause
    d = _error(_bad_view(bigquery, "dated_view", {**FOCUS_COLUMNS, "ChargePeriodStart": "DATE"}), tmp_path)
    assert "ChargePeriodStart" in d.cause and "TIMESTAMP" in d.cause and "Change the view" in d.fix
    newer = {("ServiceProviderName" if k == "ProviderName" else k): v for k, v in FOCUS_COLUMNS.items()}
    d = _error(_bad_view(bigquery, "newer_view", newer), tmp_path)
    assert d.code == "gcp.focus_version_unsupported" and "newer than 1.2" in d.cause
    no_export_time = {k: v for k, v in FOCUS_COLUMNS.items() if k != "x_ExportTime"}
    d = _error(_bad_view(bigquery, "no_time_view", no_export_time), tmp_path)
    assert "x_ExportTime" in d.cause and "x_ExportTime" in d.fix


def test_a_bad_value_fails_the_month_and_keeps_the_last_good_partition(scenario, bigquery, tmp_path):
    data_dir = tmp_path / "data"
    config = write_config(tmp_path, [entry("gcp-usd", USD_BILLING, bigquery.url), entry("gcp-eur", EUR_BILLING, bigquery.url)])
    assert run_refresh(config, data_dir, "2026-11", now="2026-11-20T12:00:00Z").ok
    key = PartitionKey("gcp", "focus", "gcp-usd", "2026-11")
    good = totals_by_currency(read_partition(data_dir, key))
    cache = day_cache.cache_path(data_dir, "gcp-usd", "2026-11").read_bytes()
    bad = dict(scenario.rows[USD_BILLING][-1], ChargeCategory="Refund", x_ExportTime=datetime(2026, 11, 20, 14, tzinfo=timezone.utc),
               ChargePeriodStart=datetime(2026, 11, 18, 5, tzinfo=timezone.utc))
    scenario.add(USD_BILLING, [bad])
    results = by_account(run_refresh(config, data_dir, "2026-11", now="2026-11-20T15:00:00Z"))
    failed = results["gcp-usd"]
    assert not failed.ok and failed.code == "gcp.focus_bad_value" and "ChargeCategory" in failed.cause
    assert focus_table_name(USD_BILLING) in failed.cause and "Refund" in failed.cause
    assert results["gcp-eur"].ok  # the other account went on
    assert totals_by_currency(read_partition(data_dir, key)) == good
    assert day_cache.cache_path(data_dir, "gcp-usd", "2026-11").read_bytes() == cache


def test_the_48_hour_check_knows_the_focus_cause_and_fix():
    from finops_pipeline.sources import get_source

    source = get_source("gcp", "focus")
    assert "FOCUS export" in source.no_data.cause
    assert "FOCUS usage cost" in source.no_data.fix and "BigQuery Data Viewer" in source.no_data.fix
    assert "BigQuery Job User" in source.no_data.fix


def test_a_focus_account_and_an_export_account_of_one_billing_account_are_refused():
    from finops_pipeline.config import parse_config

    export = {"key": "exp", "provider": "gcp", "source": "bigquery_export", "name": "E", "connected_at": "2026-09-01T00:00:00Z",
              "billing_account_id": USD_BILLING, "project_id": PROJECT, "dataset": "billing"}
    config = parse_config({"accounts": [export, entry("foc", USD_BILLING, "http://127.0.0.1:1")]}, Path("finops.yaml"))
    assert any("counted twice" in str(p) for p in config.problems)


def test_seeded_rows_look_like_the_export():
    rows = focus_rows(USD_BILLING, date(2026, 10, 30), 3)
    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Credit", "Tax"}
    assert {r["RegionId"] for r in rows if r["ChargeCategory"] == "Usage"} == {"us-central1", "europe-west1"}
    assert {r["BillingPeriodStart"].hour for r in rows} == {8}  # Pacific midnight


def test_inside_48_hours_no_focus_table_is_not_there_yet_and_after_it_the_fix(bigquery, tmp_path):
    from finops_pipeline_tests.conftest import run_checks, statuses

    dataset = focus_dataset_name(USD_BILLING)
    bigquery.create_dataset(PROJECT, dataset)  # export enabled hours ago: dataset there, table not yet
    connected = NOW - timedelta(hours=6)
    config = write_config(tmp_path, [entry("gcp-new", USD_BILLING, bigquery.url, connected_at=connected.isoformat().replace("+00:00", "Z"))])
    data_dir = tmp_path / "data"
    refreshed = run_refresh(config, data_dir, "2026-11", now="2026-11-20T12:00:00Z")
    [result] = refreshed.results
    assert refreshed.ok and result.waiting and result.code == "gcp.no_focus_table"
    assert statuses(run_checks(config, data_dir, now="2026-11-20T12:00:00Z"), "gcp_focus") == {"gcp-new": "PENDING"}
    later = run_checks(config, data_dir, now=(connected + timedelta(hours=49)).isoformat().replace("+00:00", "Z"))
    assert statuses(later, "gcp_focus") == {"gcp-new": "ERROR"}  # past 48 h the same answer is an error, with its fix
    from finops_pipeline_tests.conftest import check_results

    evaluation = next(e for (asset, name), e in check_results(later).items() if name == "billing_data_within_48h")
    assert not evaluation.passed and "enable the FOCUS usage cost export" in evaluation.metadata["fix"].value


def test_rows_are_made_focus_12_conformant_and_carry_the_derived_columns(scenario, bigquery, tmp_path):
    """Google's export leaves ResourceType NULL, gives its committed use discount credits a category without an id and
    its tax no SubAccountType: the shared reader's conformance step and this source's derivations fix each."""
    from finops_pipeline.defs.gcp.bigquery_export.normalize import resource_type
    from finops_pipeline.schema import service_category
    from finops_pipeline_tests.test_focus_conformance import check_native_export

    raw = [r for r in scenario.rows[USD_BILLING] if r["ChargeCategory"] == "Credit"]
    assert raw and all(r["CommitmentDiscountCategory"] and not r.get("CommitmentDiscountId") for r in raw)  # the input breaks it
    pull = _pull(entry("usd", USD_BILLING, bigquery.url), "2026-10", tmp_path)
    check_native_export(pull.batches)
    rows = pull.batches.to_pylist()
    assert pull.source_totals == totals_by_currency(pull.batches)
    with_id = [r for r in rows if r["ResourceId"]]
    assert with_id and all(r["ResourceType"] == resource_type(r["ResourceId"]) for r in with_id)  # as the billing export names it
    assert {r["SubAccountType"] for r in rows if r["ChargeCategory"] == "Tax"} == {"Project"}
    credits = [r for r in rows if r["ChargeCategory"] == "Credit"]
    assert credits and {(r["CommitmentDiscountCategory"], r["CommitmentDiscountType"], r["CommitmentDiscountStatus"]) for r in credits} == {
        (None, None, None)}
    # BigQuery: one ServiceCategory with the billing export's source (schema.service_category), Databases as the FOCUS file (its stand-in) says.
    assert {r["ServiceCategory"] for r in rows if r["ServiceName"] == "BigQuery"} == {service_category("BigQuery")} == {"Databases"}
