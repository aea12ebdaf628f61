"""The pull, through the unchanged google-cloud-bigquery client, against the BigQuery stand-in."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import Account, ConfigError, parse_config
from finops_pipeline.defs.gcp.bigquery_export.pull import pull_bigquery_export
from finops_pipeline.diagnosis import ProviderError, diagnose
from finops_pipeline.schema import totals_by_currency
from finops_pipeline_tests.gcp.scenario import EUR_BILLING, NOW, PROJECT, USD_BILLING, account
from finops_sandbox.gcp import export_row, export_table_name, raw_totals


def _account(entry: dict) -> Account:
    return parse_config({"accounts": [entry]}, Path("finops.yaml")).accounts[0]


def _pull(entry: dict, period: str, data_dir: Path, now: datetime = NOW):
    return pull_bigquery_export(_account(entry), period, data_dir=data_dir, now=now)


def test_month_totals_match_the_seeded_export_exactly(scenario, bigquery, tmp_path):
    for billing, dataset in ((USD_BILLING, "billing_usd"), (EUR_BILLING, "billing_eur")):
        entry = account(f"acct-{dataset}", billing, dataset, bigquery.url)
        for period in ("2026-10", "2026-11"):
            expected = raw_totals(scenario.rows[billing], period)
            pull = _pull(entry, period, tmp_path)
            assert pull.source_totals == expected
            assert totals_by_currency(pull.batches) == expected
            if period == "2026-11":
                assert set(expected) == {"USD" if billing == USD_BILLING else "EUR"}


def test_detailed_table_preferred_and_rows_follow_focus(scenario, bigquery, tmp_path):
    pull = _pull(account("usd", USD_BILLING, "billing_usd", bigquery.url), "2026-11", tmp_path)
    assert pull.metadata["export_table_kind"] == "detailed"
    rows = pull.batches.to_pylist()
    credits = [r for r in rows if r["ChargeCategory"] == "Credit"]
    usage = [r for r in rows if r["ChargeCategory"] == "Usage"]
    # Credits are their own rows: cost and credits never share a row, so nothing nets twice.
    assert {r["x_SourceChargeType"] for r in credits} == {"SUSTAINED_USAGE_DISCOUNT", "PROMOTION"}
    assert all(r["BilledCost"] < 0 and r["ListCost"] == 0 and r["PricingQuantity"] is None for r in credits)
    seeded_credits = sum(Decimal(c["amount"]) for row in scenario.rows[USD_BILLING] if row["invoice"]["month"] == "202611" for c in row["credits"])
    assert sum(r["BilledCost"] for r in credits) == seeded_credits
    compute = next(r for r in usage if r["ServiceName"] == "Compute Engine")
    assert compute["ResourceId"].endswith("/instances/web-1") and compute["ResourceName"] == "web-1"
    assert compute["Tags"] == '{"env":"prod","team":"checkout"}'
    assert compute["ServiceCategory"] == "Compute" and compute["SubAccountName"] == "Shop (prod)"
    # the export's "seconds" and "hour" in FOCUS UnitFormat (schema.focus_unit); the quantities as exported
    assert compute["ConsumedUnit"] == "Seconds" and compute["PricingUnit"] == "Hours"
    # ListCost is cost_at_list; ContractedCost the cost at the account's (negotiated) prices; the unit prices
    # are the tier's, per hour, so price x PricingQuantity is the cost (FOCUS).
    compute_rows = [r for r in usage if r["ServiceName"] == "Compute Engine"]
    assert all(r["ListCost"] == r["ContractedCost"] + Decimal("0.3") and r["ContractedCost"] == r["BilledCost"] for r in compute_rows)
    assert all(r["ListUnitPrice"] * r["PricingQuantity"] == r["ListCost"] for r in compute_rows)
    assert all(r["ContractedUnitPrice"] * r["PricingQuantity"] == r["ContractedCost"] for r in compute_rows)
    assert all(r["ListUnitPrice"] is None and r["ContractedUnitPrice"] is None for r in rows if r["ChargeCategory"] != "Usage")
    assert all(r["SkuPriceId"] == f"{r['SkuId']}/0" for r in compute_rows)  # the SKU's first (only) tier
    # FOCUS: a resource has a type; the zone comes from location.zone.
    assert compute["ResourceType"] == "compute.googleapis.com/Instance" and compute["AvailabilityZone"] == "us-central1-a"
    storage = next(r for r in usage if r["ServiceName"] == "Cloud Storage")
    assert storage["Tags"] is None and storage["ServiceCategory"] == "Storage"
    assert storage["ResourceType"] == "storage.googleapis.com/Bucket" and storage["AvailabilityZone"] is None
    assert all(r["ResourceType"] is not None for r in rows if r["ResourceId"] is not None)
    assert all(r["CommitmentDiscountId"] is None for r in rows)  # no committed use discount in this account
    assert {r["PricingCategory"] for r in usage} == {"Standard"} and all(r["PricingCategory"] is None for r in credits)
    by_type = {r["x_SourceChargeType"]: r for r in rows}
    assert by_type["tax"]["ChargeCategory"] == "Tax" and by_type["tax"]["RegionId"] is None
    assert (by_type["adjustment"]["ChargeCategory"], by_type["adjustment"]["ChargeClass"]) == ("Adjustment", "Correction")
    assert by_type["rounding_error"]["ChargeCategory"] == "Adjustment" and by_type["rounding_error"]["ChargeClass"] is None


def test_standard_table_and_non_usd_currency_with_conversion_rate(scenario, bigquery, tmp_path):
    pull = _pull(account("eur", EUR_BILLING, "billing_eur", bigquery.url), "2026-11", tmp_path)
    assert pull.metadata["export_table_kind"] == "standard"
    rows = pull.batches.to_pylist()
    assert {r["BillingCurrency"] for r in rows} == {"EUR"}
    assert {r["x_CurrencyConversionRate"] for r in rows} == {Decimal("0.921834")}
    assert all(r["ResourceId"] is None and r["ResourceType"] is None for r in rows)
    # Google prices in USD: the pricing-currency cost is the EUR cost over the export's USD->EUR rate.
    assert {r["PricingCurrency"] for r in rows} == {"USD"}
    assert all(r["PricingCurrencyEffectiveCost"] == (r["EffectiveCost"] / Decimal("0.921834")).quantize(Decimal("1e-10")) for r in rows)
    # The committed use discount's credits carry the commitment (resource-based: Usage); status is for usage rows.
    cud = [r for r in rows if r["x_SourceChargeType"] == "COMMITTED_USAGE_DISCOUNT"]
    assert cud and all(r["ChargeCategory"] == "Credit" and r["CommitmentDiscountCategory"] == "Usage" for r in cud)
    assert {(r["CommitmentDiscountId"], r["CommitmentDiscountName"], r["CommitmentDiscountType"]) for r in cud} == {
        ("committed_usage_discount-committed-use-discount", "Committed use discount", "Committed Use Discount")}
    assert all(r["CommitmentDiscountStatus"] is None for r in cud)
    assert all(r["CommitmentDiscountId"] is None for r in rows if r["ChargeCategory"] != "Credit")
    # Every BigQuery usage group of this account has a committed use discount credit: priced as Committed.
    assert {r["PricingCategory"] for r in rows if r["ChargeCategory"] == "Usage"} == {"Committed"}


def test_late_usage_lands_in_the_invoice_month_it_is_billed_in(scenario, bigquery, tmp_path):
    entry = account("usd", USD_BILLING, "billing_usd", bigquery.url)
    november = _pull(entry, "2026-11", tmp_path).batches.to_pylist()
    october = _pull(entry, "2026-10", tmp_path).batches.to_pylist()
    late = [r for r in november if r["ServiceName"] == "Cloud Run"]
    assert len(late) == 1 and late[0]["BilledCost"] == Decimal("2.468")
    assert late[0]["ChargePeriodStart"].date() == date(2026, 10, 31)
    assert late[0]["BillingPeriodStart"].date() == date(2026, 11, 1)
    assert not [r for r in october if r["ServiceName"] == "Cloud Run"]


def test_refresh_rereads_only_days_whose_export_time_moved(scenario, bigquery, tmp_path):
    entry = account("usd", USD_BILLING, "billing_usd", bigquery.url)
    first = _pull(entry, "2026-11", tmp_path)
    assert first.metadata["partition_days_checked"] > 30  # first run: the whole window

    later = NOW + timedelta(hours=3)
    unchanged = _pull(entry, "2026-11", tmp_path, now=later)
    assert unchanged.metadata["partition_days_reread"] == [] and unchanged.metadata["partition_days_checked"] == 10
    assert unchanged.metadata["bytes_processed"] < first.metadata["bytes_processed"]  # pruned to 10 partitions
    assert unchanged.source_totals == first.source_totals

    late_row = export_row(billing_account_id=USD_BILLING, day=date(2026, 11, 15), project_id="shop-prod", service="Compute Engine",
                          sku="N2 Instance Core running in Americas", cost=Decimal("5.500001"),
                          export_time=datetime(2026, 11, 20, 13, tzinfo=timezone.utc))
    too_old = export_row(billing_account_id=USD_BILLING, day=date(2026, 11, 5), project_id="shop-prod", service="Compute Engine",
                         sku="N2 Instance Core running in Americas", cost=Decimal("1"), export_time=datetime(2026, 11, 20, 13, tzinfo=timezone.utc))
    scenario.add(USD_BILLING, [late_row, too_old])
    changed = _pull(entry, "2026-11", tmp_path, now=later)
    assert changed.metadata["partition_days_reread"] == ["2026-11-15"]
    # The 15th changed; the 5th is older than recent_days, so it is final and not scanned again.
    assert changed.source_totals["USD"] == first.source_totals["USD"] + Decimal("5.500001")
    assert totals_by_currency(changed.batches) == changed.source_totals
    before = {r["ChargePeriodStart"]: r["x_IngestedAt"] for r in first.batches.to_pylist()}
    after = {r["ChargePeriodStart"]: r["x_IngestedAt"] for r in changed.batches.to_pylist()}
    rewritten = {day.date() for day in after if after[day] != before.get(day)}
    assert rewritten == {date(2026, 11, 15)}  # unchanged days were kept, not rewritten


def test_a_cache_built_by_an_older_mapping_is_read_again(scenario, bigquery, tmp_path):
    import pyarrow.parquet as pq

    from finops_pipeline.defs.gcp import day_cache

    entry = account("usd", USD_BILLING, "billing_usd", bigquery.url)
    first = _pull(entry, "2026-11", tmp_path)
    path = day_cache.cache_path(tmp_path, "usd", "2026-11")
    cached = pq.read_table(path)
    old = {k: v for k, v in (cached.schema.metadata or {}).items() if k != b"finops.mapping_version"}
    pq.write_table(cached.replace_schema_metadata(old), path)  # as the previous mapping wrote it
    again = _pull(entry, "2026-11", tmp_path, now=NOW + timedelta(hours=3))
    assert again.metadata["partition_days_checked"] == first.metadata["partition_days_checked"] > 30  # every day again
    assert again.source_totals == first.source_totals
    assert all(r["ResourceType"] for r in again.batches.to_pylist() if r["ResourceId"])


def test_recent_days_setting_widens_the_rechecked_window(scenario, bigquery, tmp_path):
    entry = account("usd", USD_BILLING, "billing_usd", bigquery.url, recent_days=20)
    _pull(entry, "2026-11", tmp_path)
    scenario.add(USD_BILLING, [export_row(billing_account_id=USD_BILLING, day=date(2026, 11, 5), project_id="shop-prod",
                                          service="Compute Engine", sku="N2", cost=Decimal("1.25"),
                                          export_time=datetime(2026, 11, 20, 13, tzinfo=timezone.utc))])
    again = _pull(entry, "2026-11", tmp_path, now=NOW + timedelta(hours=3))
    assert again.metadata["partition_days_reread"] == ["2026-11-05"]
    assert again.source_totals == raw_totals(scenario.rows[USD_BILLING], "2026-11")


def test_dataset_name_with_sql_is_refused_before_any_query(bigquery, tmp_path):
    with pytest.raises(ConfigError, match="dataset.*letters, digits, underscores"):  # a broken account fails when used
        _pull(account("bad", USD_BILLING, "billing; DROP TABLE x", bigquery.url), "2026-11", tmp_path)
    entry = _account(account("bad", USD_BILLING, "billing_usd", bigquery.url))
    forged = Account(entry.key, "gcp", "bigquery_export", entry.name, entry.connected_at,
                     {**entry.settings, "dataset": "billing`; DROP TABLE x; --"})
    with pytest.raises(ProviderError) as raised:
        pull_bigquery_export(forged, "2026-11", data_dir=tmp_path, now=NOW)
    diagnosis = diagnose("gcp", "bigquery_export", raised.value)
    assert diagnosis.code == "gcp.invalid_identifier" and "dataset name" in diagnosis.cause and "finops.yaml" in diagnosis.fix
    assert bigquery.queries == []


def _diagnosed(entry: dict, tmp_path: Path):
    with pytest.raises(Exception) as raised:
        _pull(entry, "2026-11", tmp_path)
    return diagnose("gcp", "bigquery_export", raised.value)


def test_dataset_not_found_is_diagnosed(scenario, bigquery, tmp_path):
    d = _diagnosed(account("typo", USD_BILLING, "billing_usdd", bigquery.url), tmp_path)
    assert d.code == "gcp.dataset_not_found" and "Verify the dataset name" in d.fix and "billing_usdd" in d.detail


def test_permission_denied_on_dataset_is_diagnosed(scenario, bigquery, tmp_path):
    bigquery.create_dataset(PROJECT, "billing_usd", denied=True)
    d = _diagnosed(account("usd", USD_BILLING, "billing_usd", bigquery.url), tmp_path)
    assert d.code == "gcp.permission_denied" and "BigQuery Data Viewer on the billing dataset" in d.fix


def test_missing_job_user_is_diagnosed(scenario, bigquery, tmp_path):
    bigquery.projects_without_job_user.add(PROJECT)
    d = _diagnosed(account("usd", USD_BILLING, "billing_usd", bigquery.url), tmp_path)
    assert d.code == "gcp.cannot_run_queries" and "BigQuery Job User" in d.fix


def test_dataset_without_export_table_is_diagnosed_as_pending(bigquery, tmp_path):
    bigquery.create_dataset(PROJECT, "empty_billing")
    bigquery.create_export_table(PROJECT, "empty_billing", export_table_name(EUR_BILLING))  # another billing account's
    d = _diagnosed(account("empty", USD_BILLING, "empty_billing", bigquery.url), tmp_path)
    assert d.code == "gcp.no_export_table" and d.status == "PENDING"
    assert USD_BILLING in d.cause and export_table_name(EUR_BILLING) in d.cause
    assert "enable the standard or detailed usage cost export" in d.fix and "BigQuery Data Viewer" in d.fix


def test_credentials_from_environment_never_leak(monkeypatch, bigquery, tmp_path):
    secret = '{"type": "service_account", "private_key": "-----BEGIN SECRET-----abc", "client_email": "x"}'
    monkeypatch.setenv("GCP_KEY_JSON", secret)
    entry = account("creds", USD_BILLING, "billing_usd", bigquery.url, credentials_env="GCP_KEY_JSON")
    entry.pop("api_endpoint")  # a real account: the key is loaded and refused as malformed
    d = _diagnosed(entry, tmp_path)
    assert d.code == "gcp.credentials" and "GCP_KEY_JSON" in d.fix
    assert "SECRET" not in d.detail + d.cause + d.fix


def test_enabling_the_detailed_export_later_switches_tables_without_double_counting(scenario, bigquery, tmp_path):
    entry = account("eur", EUR_BILLING, "billing_eur", bigquery.url)
    standard = _pull(entry, "2026-11", tmp_path)
    detailed_table = export_table_name(EUR_BILLING, detailed=True)
    bigquery.create_export_table(PROJECT, "billing_eur", detailed_table)
    rows = [{**row, "resource": {"name": "warehouse", "global_name": "//bigquery.googleapis.com/projects/analytics-eu"}}
            for row in scenario.rows[EUR_BILLING]]
    bigquery.insert_rows(PROJECT, "billing_eur", detailed_table, rows)
    switched = _pull(entry, "2026-11", tmp_path, now=NOW + timedelta(hours=1))
    assert switched.metadata["export_table_kind"] == "detailed"
    assert switched.metadata["partition_days_checked"] > 10  # the old table's cache was not reused
    assert switched.source_totals == standard.source_totals == totals_by_currency(switched.batches)
    assert {r["ResourceName"] for r in switched.batches.to_pylist()} == {"warehouse"}


def test_table_that_is_not_an_export_is_diagnosed_as_query_rejected(bigquery, tmp_path):
    bigquery.create_dataset(PROJECT, "billing_odd")
    # Named like a detailed export but without its `resource` column: BigQuery answers 400 invalidQuery.
    bigquery.create_export_table(PROJECT, "billing_odd", export_table_name(USD_BILLING, detailed=True), detailed=False)
    bigquery.insert_rows(PROJECT, "billing_odd", export_table_name(USD_BILLING, detailed=True), [export_row(
        billing_account_id=USD_BILLING, day=date(2026, 11, 18), project_id="shop-prod", service="Compute Engine", sku="N2", cost=Decimal("1"))])
    d = _diagnosed(account("odd", USD_BILLING, "billing_odd", bigquery.url), tmp_path)
    assert d.code == "gcp.query_rejected" and "resource" in d.detail


def test_unreadable_key_file_is_diagnosed_without_the_path_contents(monkeypatch, bigquery, tmp_path):
    monkeypatch.setenv("GCP_KEY_FILE", str(tmp_path / "missing-key.json"))
    entry = account("creds", USD_BILLING, "billing_usd", bigquery.url, credentials_env="GCP_KEY_FILE")
    entry.pop("api_endpoint")
    d = _diagnosed(entry, tmp_path)
    assert d.code == "gcp.credentials" and "does not exist" in d.cause
