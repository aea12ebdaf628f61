"""The CUR rollup without Dagster or S3: a local_dir delivery in each format against a Python oracle."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.aws.cur.normalize import snake_case
from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_pipeline.diagnosis import ProviderError
from finops_pipeline.lake import read_partition_totals
from finops_pipeline.schema import COST_DAILY_SCHEMA, SERVICE_CATEGORIES, service_category
from finops_sandbox import cur as sandbox_cur

from .conftest import account_of, effective_oracle, entry, lines_for

PERIOD = "2026-10"
FORMATS = ["legacy-csv-gz", "legacy-csv-zip", "legacy-parquet", "cur2-parquet", "cur2-csv-gz"]


def _pull_local(tmp_path: Path, fmt: str, lines, drop=(), files: int = 2):
    version = "legacy" if fmt.startswith("legacy") else "cur2"
    root = tmp_path / "bucket"
    sandbox_cur.deliver(sandbox_cur.LocalBucket(root), "b", "exports", "rep", PERIOD, lines, fmt, files=files, drop=drop)
    pull = pull_cur(account_of(entry(local_dir=root, report="rep", version=version)), PERIOD)
    target = tmp_path / f"out-{fmt}.parquet"
    pull.produce(target)
    return pull, pq.read_table(target), target


def test_snake_case_matches_aws_parquet_names():
    assert snake_case("lineItem/UnblendedCost") == "line_item_unblended_cost"
    assert snake_case("reservation/ReservationARN") == "reservation_reservation_a_r_n"
    assert snake_case("product/region") == "product_region"
    assert snake_case("savingsPlan/SavingsPlanEffectiveCost") == "savings_plan_savings_plan_effective_cost"


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_rolls_up_to_the_oracle(tmp_path, fmt):
    lines = lines_for(PERIOD)
    pull, table, target = _pull_local(tmp_path, fmt, lines)

    assert table.schema.remove_metadata() == COST_DAILY_SCHEMA.remove_metadata() or \
        {f.name: f.type for f in table.schema} == {f.name: f.type for f in COST_DAILY_SCHEMA}
    rows = table.to_pylist()

    # Billed and effective cost per (day, usage account, line item type), exactly, from the line items in Python.
    expected_billed: dict[tuple, Decimal] = defaultdict(Decimal)
    expected_effective: dict[tuple, Decimal] = defaultdict(Decimal)
    for line in lines:
        key = (line["line_item_usage_start_date"].date(), line["line_item_usage_account_id"], line["line_item_line_item_type"])
        expected_billed[key] += sandbox_cur.billed(line)
        expected_effective[key] += effective_oracle(line)
    got_billed: dict[tuple, Decimal] = defaultdict(Decimal)
    got_effective: dict[tuple, Decimal] = defaultdict(Decimal)
    for row in rows:
        key = (row["ChargePeriodStart"].date(), row["SubAccountId"], row["x_SourceChargeType"])
        got_billed[key] += row["BilledCost"]
        got_effective[key] += row["EffectiveCost"]
    assert dict(got_billed) == dict(expected_billed)
    assert dict(got_effective) == dict(expected_effective)

    # The reconciliation figure and the partition metadata agree with the oracle.
    assert pull.source_totals == sandbox_cur.expected_totals(lines)
    assert read_partition_totals(target) == sandbox_cur.expected_totals(lines)
    assert pull.metadata["line_items"] == len(lines)

    # Hourly items became one row per day and grain: no two rows share a grain.
    grains = [(r["ChargePeriodStart"], r["SubAccountId"], r["ServiceName"], r["x_SourceChargeType"], r["ResourceId"], r["Tags"],
               r["SkuId"], r["RegionId"], r["CommitmentDiscountStatus"], r["SkuMeter"]) for r in rows]
    assert len(grains) == len(set(grains))
    assert len(rows) < len(lines)


@pytest.mark.parametrize("fmt", ["legacy-csv-gz", "cur2-parquet"])
def test_focus_columns(tmp_path, fmt):
    lines = lines_for(PERIOD)
    pull, table, _ = _pull_local(tmp_path, fmt, lines)
    rows = table.to_pylist()
    by_type = defaultdict(list)
    for row in rows:
        by_type[row["x_SourceChargeType"]].append(row)

    categories = {t: {r["ChargeCategory"] for r in rs if r["CommitmentDiscountStatus"] != "Unused"} for t, rs in by_type.items()}
    # The unused part of a commitment fee is its own Usage row (FOCUS): BilledCost 0, EffectiveCost the unused amount.
    unused = [r for r in rows if r["CommitmentDiscountStatus"] == "Unused"]
    assert unused and {r["ChargeCategory"] for r in unused} == {"Usage"} and {r["BilledCost"] for r in unused} == {0}
    assert {r["EffectiveCost"] for r in by_type["RIFee"] if r["ChargeCategory"] == "Purchase"} == {0}
    assert categories["Tax"] == {"Tax"}
    assert categories["RIFee"] == categories["Fee"] == {"Purchase"}
    assert categories["Credit"] == {"Credit"}
    assert categories["Refund"] == {"Adjustment"}
    assert categories["Usage"] == categories["SavingsPlanCoveredUsage"] == categories["DiscountedUsage"] == {"Usage"}
    # A line item type we do not know is kept (as Usage, verbatim type) and counted, never dropped.
    assert categories["FutureLineType"] == {"Usage"}
    assert pull.metadata["unknown_line_item_types"] == {"FutureLineType": 2}

    # The refund is for a day of the previous month: a correction of an invoiced period.
    assert {r["ChargeClass"] for r in by_type["Refund"]} == {"Correction"}
    assert {r["ChargeClass"] for r in by_type["Usage"]} == {None}

    for row in rows:
        assert row["BillingAccountId"] == "111122223333"
        assert row["ServiceCategory"] in SERVICE_CATEGORIES
        assert row["ServiceCategory"] == service_category(row["ServiceName"])
        assert row["x_Provider"] == "aws" and row["x_Source"] == "cur" and row["x_AccountKey"] == "cur-main"
        assert row["x_Estimated"] is True  # no invoice id yet: the month is not final
        for column in ("RegionId", "ResourceId", "Tags", "ChargeDescription", "SubAccountName", "PricingUnit"):
            assert row[column] != "", column
    usage = by_type["Usage"][0]
    assert usage["ServiceName"] in {s for s, _, _ in sandbox_cur.SERVICES}
    assert usage["ConsumedQuantity"] == usage["PricingQuantity"] and usage["ConsumedUnit"] == "Hours"  # CUR's Hrs, in FOCUS UnitFormat
    assert by_type["Tax"][0]["ConsumedQuantity"] is None and by_type["Tax"][0]["RegionId"] is None

    # Tags: a FOCUS JSON object, empty values dropped, NULL when a line has none.
    tagged = [json.loads(r["Tags"]) for r in by_type["Usage"] if r["Tags"]]
    name_key = "user_name"  # one convention: legacy CSV's user:Name is written as CUR 2.0 names it
    assert tagged and all(name_key in t for t in tagged)
    assert all("" not in t.values() for t in tagged)
    assert any(len(t) == 1 for t in tagged)  # the lines whose team tag is empty
    assert {r["Tags"] for r in by_type["Tax"]} == {None}


def test_invoiced_month_is_not_estimated(tmp_path):
    _, table, _ = _pull_local(tmp_path, "cur2-parquet", lines_for(PERIOD, invoiced=True))
    assert set(table.column("x_Estimated").to_pylist()) == {False}


def test_net_unblended_is_billed_when_present(tmp_path):
    lines = lines_for(PERIOD)
    for line in lines:
        line["line_item_net_unblended_cost"] = (line["line_item_unblended_cost"] * Decimal("0.97")).quantize(Decimal("0.0000000001"))
    pull, table, _ = _pull_local(tmp_path, "cur2-parquet", lines)
    expected = sum(l["line_item_net_unblended_cost"] for l in lines)
    assert sum(table.column("BilledCost").to_pylist()) == expected == pull.source_totals["USD"]
    assert Decimal(pull.metadata["unblended_by_currency"]["USD"]) == sum(l["line_item_unblended_cost"] for l in lines)


def test_absent_optional_columns_become_null_and_extra_columns_are_ignored(tmp_path):
    lines = lines_for(PERIOD)
    drop = ("pricing_public_on_demand_cost", "line_item_resource_id", "product_sku")
    pull, table, _ = _pull_local(tmp_path, "legacy-csv-gz", lines, drop=drop)
    assert set(table.column("ResourceId").to_pylist()) == {None}
    assert set(table.column("SkuId").to_pylist()) == {None}
    # Without a public on-demand cost, ListCost is the unblended cost (documented).
    assert sum(table.column("ListCost").to_pylist()) == sum(l["line_item_unblended_cost"] for l in lines)
    assert {"pricing_public_on_demand_cost", "line_item_resource_id", "product_sku"} <= set(pull.metadata["optional_columns_absent"])
    assert pull.metadata["columns_ignored"] >= 2  # identity/TimeInterval, lineItem/Operation, ...


def test_missing_required_column_names_file_and_column(tmp_path):
    with pytest.raises(ProviderError) as raised:
        _pull_local(tmp_path, "cur2-parquet", lines_for(PERIOD), drop=("line_item_unblended_cost",))
    diagnosis = raised.value.diagnosis
    assert diagnosis.code == "aws.cur_column_missing"
    assert "line_item_unblended_cost" in diagnosis.cause
    assert "rep-" in diagnosis.cause and ".parquet" in diagnosis.cause


def test_an_empty_delivery_writes_an_empty_partition(tmp_path):
    pull, table, target = _pull_local(tmp_path, "cur2-parquet", [], files=1)
    assert table.num_rows == 0
    assert pull.source_totals == {}


def test_temporary_files_are_removed(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _pull_local(tmp_path, "legacy-csv-zip", lines_for(PERIOD))
    root = scratch / "finops-pipeline"  # without a data_dir the private working directories live here
    assert list(scratch.iterdir()) == [root] and list(root.iterdir()) == []
    with pytest.raises(ProviderError):
        _pull_local(tmp_path / "bad", "cur2-parquet", lines_for(PERIOD), drop=("line_item_currency_code",))
    assert list(scratch.iterdir()) == [root] and list(root.iterdir()) == []


def test_zone_aware_parquet_timestamps_use_the_utc_day(tmp_path):
    """A usage hour at 23:30 UTC (written zone-aware, as America/New_York 18:30) belongs to its UTC day."""
    import pyarrow as pa

    lines = lines_for(PERIOD, extras=False)[:6]
    root = tmp_path / "bucket"
    delivery = sandbox_cur.deliver(sandbox_cur.LocalBucket(root), "b", "exports", "rep", PERIOD, lines, "cur2-parquet", files=1)
    path = root / delivery.data_keys[0]
    table = pq.read_table(path)
    late = [t.replace(hour=23, minute=30) for t in table.column("line_item_usage_start_date").to_pylist()]
    index = table.schema.get_field_index("line_item_usage_start_date")
    zoned = pa.array(late, pa.timestamp("ms")).cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("ms", tz="America/New_York"))
    pq.write_table(table.set_column(index, "line_item_usage_start_date", zoned), path)

    pull = pull_cur(account_of(entry(local_dir=root, report="rep")), PERIOD)
    pull.produce(tmp_path / "out.parquet")
    days = {d.date() for d in pq.read_table(tmp_path / "out.parquet").column("ChargePeriodStart").to_pylist()}
    assert days == {t.date() for t in late}
