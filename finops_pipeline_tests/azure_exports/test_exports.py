"""Azure cost exports through the real azure-storage-blob client against Azurite: runs, redelivery, bad input, auth."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.azure.exports.pull import pull_exports
from finops_pipeline.diagnosis import PENDING, ProviderError
from finops_pipeline.lake import PartitionKey, read_partition, read_partition_totals
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline.schema import totals_by_currency
from finops_pipeline_tests.test_focus_conformance import check_native_export
from finops_sandbox import azure_exports as ax

from .conftest import account_of, entry

PERIOD = "2026-10"


def _now():
    return datetime(2026, 11, 5, tzinfo=timezone.utc)


def _pull(account, tmp_path: Path, period: str = PERIOD):
    pull = pull_exports(account, period, data_dir=tmp_path / "data")
    target = tmp_path / "out.parquet"
    pull.produce(target)
    return pull, pq.read_table(target)


def _sum(table, column: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for currency, amount in zip(table.column("BillingCurrency").to_pylist(), table.column(column).to_pylist()):
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_focus_export_reads_exactly_the_newest_runs_blobs(azurite, container, tmp_path, fmt):
    lines = ax.focus_rows(PERIOD, days=6)
    run = ax.deliver(container, "exports", "focus-daily", PERIOD, lines, fmt, files=3)
    pull, table = _pull(account_of(entry(container.container_name, azurite)), tmp_path)
    assert totals_by_currency(table) == ax.expected_totals(lines) == pull.source_totals
    assert _sum(table, "EffectiveCost") == ax.expected_totals(lines, "EffectiveCost")
    assert pull.metadata["files"] == 3 and pull.metadata["run_ids"] == [run.run_id]
    assert pull.metadata["manifests"] == [f"{azurite.account_url}/{container.container_name}/{run.manifest_name}"]
    assert pull.metadata["focus_versions"] == ["1.2"] and pull.metadata["rows_read"] == len(lines)
    assert pull.api_calls == 1 + 1 + 3  # list the month, read the manifest, one GET per blob
    # Daily rows per subscription, service, region, resource and tags; Azure's x_ columns dropped and listed.
    assert set(table.column("RegionId").to_pylist()) == {"eastus", "westeurope"}
    assert set(table.column("x_Source").to_pylist()) == {"exports"} and set(table.column("ProviderName").to_pylist()) == {"Microsoft"}
    assert '{"env":"prod","team":"data"}' in table.column("Tags").to_pylist()
    assert "x_ResourceGroupName" in pull.metadata["x_columns_dropped"]
    assert set(table.column("PricingCurrency").to_pylist()) == {"USD"}  # FocusCost 1.2-preview writes it
    categories = {(r["ServiceName"], r["ServiceCategory"]) for r in table.select(["ServiceName", "ServiceCategory"]).to_pylist()}
    assert ("Azure App Service", "Web") in categories and len(categories) == len({name for name, _ in categories})
    assert not list((tmp_path / "data" / "tmp").glob("azexp-*"))  # the private download directory is gone


def test_focus_10r2_is_read_by_its_declared_version(azurite, container, tmp_path):
    # FocusCost 1.0r2 has none of 1.2's SkuMeter, ServiceSubcategory, InvoiceId, PricingCurrency and PricingCurrency* columns:
    # it names the meter x_SkuMeterName, the price list's currency x_PricingCurrency and the invoice x_InvoiceId.
    only_12 = ("SkuMeter", "ServiceSubcategory", "PricingCurrency", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice")
    lines = [{**{k: v for k, v in line.items() if k not in only_12}, "x_PricingCurrency": line["PricingCurrency"], "x_InvoiceId": "G012345678"}
             for line in ax.focus_rows(PERIOD, days=2)]
    ax.deliver(container, "exports", "focus-daily", PERIOD, lines, "csv", version="1.0r2")
    pull, table = _pull(account_of(entry(container.container_name, azurite)), tmp_path)
    assert pull.metadata["focus_versions"] == ["1.0"] and totals_by_currency(table) == ax.expected_totals(lines)
    # ... read under their 1.2 names; the PricingCurrency amounts are the billing ones where the two currencies are one.
    rows = table.to_pylist()
    assert {r["PricingCurrency"] for r in rows} == {"USD"} and {r["InvoiceId"] for r in rows} == {"G012345678"}
    assert {r["SkuMeter"] for r in rows if r["ChargeCategory"] == "Usage"} == {meter for _, _, _, meter, _, _ in ax.SERVICES}
    assert all(r["PricingCurrencyEffectiveCost"] == r["EffectiveCost"] for r in rows)
    assert all(r["PricingCurrencyListUnitPrice"] == r["ListUnitPrice"] for r in rows)
    assert not {"x_PricingCurrency", "x_InvoiceId", "x_SkuMeterName"} & set(pull.metadata["x_columns_dropped"])
    # Azure's "1 Hour" and "1 GB/Month" in FOCUS UnitFormat; a subcategory for every service, under its category.
    assert {r["PricingUnit"] for r in rows} - {None} == {"Hours", "GB-Months"}
    check_native_export(table)


@pytest.mark.parametrize("pascal", [False, True], ids=["mca-names", "ea-names"])
def test_cost_details_fill_billed_from_actual_and_effective_from_amortized(azurite, container, tmp_path, pascal):
    actual = ax.cost_details_rows(PERIOD, amortized=False, days=4, pascal=pascal)
    amortized = ax.cost_details_rows(PERIOD, amortized=True, days=4, pascal=pascal)
    if not pascal:  # MCA names the price list's currency; EA has no such column and prices in the billing currency
        actual, amortized = ([{**line, "pricingCurrency": "USD"} for line in lines] for lines in (actual, amortized))
    ax.deliver(container, "exports", "costs-actual", PERIOD, actual, "csv", kind="ActualCost")
    ax.deliver(container, "exports", "costs-amortized", PERIOD, amortized, "parquet", kind="AmortizedCost")
    account = account_of(entry(container.container_name, azurite, dataset="cost_details", export="costs-actual",
                               amortized="costs-amortized"))
    pull, table = _pull(account, tmp_path)
    column = "CostInBillingCurrency" if pascal else "costInBillingCurrency"
    billed, effective = ax.expected_totals(actual, column), ax.expected_totals(amortized, column)
    assert billed != effective  # the reservation: bought in actual, spread in amortized
    assert totals_by_currency(table) == billed == pull.source_totals
    assert _sum(table, "EffectiveCost") == effective
    assert pull.metadata["effective_cost_totals"] == {c: str(v) for c, v in effective.items()}
    # Actual and amortized lines of the same usage merge into one row; the purchase stays apart.
    categories = table.column("ChargeCategory").to_pylist()
    assert categories.count("Purchase") == 1 and len(categories) == len(amortized) + 1
    assert set(table.column("SubAccountId").to_pylist()) == {f"/subscriptions/{s}" for s, _ in ax.SUBSCRIPTIONS}
    assert set(table.column("RegionId").to_pylist()) == {"eastus", "westeurope"}
    assert '{"env":"dev","team":"web"}' in table.column("Tags").to_pylist()
    assert set(table.column("PricingCategory").to_pylist()) == {"Standard", "Committed"}
    # What Microsoft's FOCUS export writes and the files hold: names for regions and resource types, the account kind.
    rows = table.to_pylist()
    assert {(r["RegionId"], r["RegionName"]) for r in rows} == {("eastus", "East US"), ("westeurope", "West Europe")}
    assert {r["ResourceType"] for r in rows if r["ResourceId"]} == {"Virtual machine"}
    assert all(r["ResourceType"] is None for r in rows if not r["ResourceId"])
    assert {r["BillingAccountType"] for r in rows} == {"Billing Account"}
    assert {r["SubAccountType"] for r in rows} == {"Subscription"}
    assert {r["PricingCurrency"] for r in rows} == {"EUR" if pascal else "USD"}
    assert {r["ServiceName"]: r["ServiceSubcategory"] for r in rows}["SQL Database"] == "Relational Databases"
    assert {r["ServiceName"]: r["ServiceSubcategory"] for r in rows}["Virtual Machines"] == "Virtual Machines"
    assert {r["ServiceName"]: r["ServiceCategory"] for r in rows}["Azure App Service"] == "Web"
    assert [r["EffectiveCost"] for r in rows if r["ChargeCategory"] == "Purchase"] == [Decimal(0)]
    assert {r["ServiceName"]: r["ServiceSubcategory"] for r in rows}["Azure App Service"] == "Other (Web)"
    assert {(r["ChargeCategory"], r["CommitmentDiscountCategory"], r["CommitmentDiscountType"], r["CommitmentDiscountStatus"])
            for r in rows if r["CommitmentDiscountId"]} == {("Usage", "Usage", "Reservation", "Used"), ("Purchase", "Usage", "Reservation", None)}
    assert {(r["CommitmentDiscountCategory"], r["CommitmentDiscountType"], r["CommitmentDiscountStatus"])
            for r in rows if not r["CommitmentDiscountId"]} == {(None, None, None)}
    if pascal:  # priced in the billing currency: the same amount; another pricing currency is not converted back
        assert all(r["PricingCurrencyEffectiveCost"] == r["EffectiveCost"] for r in rows)
    else:
        assert {r["PricingCurrencyEffectiveCost"] for r in rows} == {None}


def test_a_newer_run_replaces_the_month_never_adds_to_it(azurite, container, tmp_path):
    account = account_of(entry(container.container_name, azurite))
    data_dir = tmp_path / "data"
    first, rerun = ax.focus_rows(PERIOD, seed="first", days=5), ax.focus_rows(PERIOD, seed="rerun", days=7)
    submitted = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)
    ax.deliver(container, "exports", "focus-daily", PERIOD, first, "parquet", submitted=submitted)
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_exports, _now, [])
    assert outcome.ok, outcome.diagnosis
    newer = ax.deliver(container, "exports", "focus-daily", PERIOD, rerun, "csv.gz", submitted=submitted + timedelta(days=1))
    # An older run uploaded last (a re-sync) does not win: the newest by runInfo.submittedTime does.
    ax.deliver(container, "exports", "focus-daily", PERIOD, first, "csv", submitted=submitted - timedelta(days=1))
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_exports, _now, [])
    assert outcome.ok, outcome.diagnosis
    key = PartitionKey("azure", "exports", account.key, PERIOD)
    assert totals_by_currency(read_partition(data_dir, key)) == ax.expected_totals(rerun) != ax.expected_totals(first)
    assert read_partition_totals(key.path(data_dir)) == ax.expected_totals(rerun)
    assert outcome.metadata["run_ids"] == [newer.run_id]


def test_an_empty_month_only_when_the_manifest_says_so(azurite, container, tmp_path):
    account = account_of(entry(container.container_name, azurite))
    ax.deliver(container, "exports", "focus-daily", PERIOD, [], "csv")  # blobs [], dataRowCount 0
    pull, table = _pull(account, tmp_path)
    assert table.num_rows == 0 and pull.source_totals == {}
    ax.deliver(container, "exports", "focus-daily", PERIOD, [], "csv", manifest={"dataRowCount": 1200},
               submitted=datetime.now(timezone.utc) + timedelta(minutes=1))
    with pytest.raises(ProviderError) as raised:
        pull_exports(account, PERIOD, data_dir=tmp_path)
    assert raised.value.diagnosis.code == "azure.export_run_partial" and "Run now" in raised.value.diagnosis.fix


def test_no_run_yet_is_pending_with_the_fix(azurite, container, tmp_path):
    with pytest.raises(ProviderError) as raised:
        pull_exports(account_of(entry(container.container_name, azurite)), PERIOD, data_dir=tmp_path)
    diagnosis = raised.value.diagnosis
    assert diagnosis.status == PENDING and diagnosis.code == "azure.export_not_delivered"
    assert "Cost Management -> Exports" in diagnosis.fix and "24 hours" in diagnosis.fix and "Storage Blob Data Reader" in diagnosis.fix


def test_a_run_without_manifest_is_a_failed_or_unfinished_run(azurite, container, tmp_path):
    ax.deliver(container, "exports", "focus-daily", PERIOD, ax.focus_rows(PERIOD, days=1), "csv", write_manifest=False)
    with pytest.raises(ProviderError) as raised:
        pull_exports(account_of(entry(container.container_name, azurite)), PERIOD, data_dir=tmp_path)
    assert raised.value.diagnosis.code == "azure.export_run_incomplete" and "Run history" in raised.value.diagnosis.fix
