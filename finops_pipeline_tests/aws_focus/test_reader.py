"""The shared FOCUS reader (finops_pipeline.focus) on files: versions, types, rollup, tags, and every bad input."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_pipeline import focus
from finops_pipeline.defs.aws.focus.pull import DERIVED
from finops_pipeline.lake import _check_partition_file, partition_metadata
from finops_pipeline.schema import COLUMN_NAMES, totals_by_currency
from finops_pipeline.workdir import spilling_duckdb
from finops_sandbox import focus as sf

PERIOD = "2026-10"


def _write(tmp_path: Path, lines, fmt: str = "parquet", name: str = "f") -> focus.FocusFile:
    body, extension = sf.encode(lines, fmt)
    path = tmp_path / f"{name}{extension}"
    path.write_bytes(body)
    return focus.FocusFile(f"exports/e/data/{path.name}", path)


def _read(tmp_path: Path, files, declared: str | None = None):
    connection = spilling_duckdb(tmp_path / "spill", "1GB")
    groups = focus.group_files(connection, files, declared)
    totals = focus.raw_totals(connection, groups, PERIOD)
    target = tmp_path / "out.parquet"
    select = focus.rollup_sql(groups, provider_name="AWS", invoice_issuer="Amazon Web Services", provider_key="aws", source="focus",
                              account_key="k", account_name="Acme", billing_period=PERIOD, source_updated_at=None,
                              ingested_at=datetime(2026, 11, 1, tzinfo=timezone.utc), derived=DERIVED)
    focus.copy_to_parquet(connection, select, target, partition_metadata(totals.billed), groups)
    _check_partition_file(target)  # the lake's own check: exactly cost_daily's schema, required columns filled
    return totals, pq.read_table(target), groups


@pytest.mark.parametrize("version,fmt", [("1.2", "parquet"), ("1.0", "parquet"), ("1.2", "csv"), ("1.0", "csv")])
def test_versions_and_formats_reconcile_exactly(tmp_path, version, fmt):
    lines = sf.as_version(sf.rows(PERIOD, days=6), version)
    totals, table, groups = _read(tmp_path, [_write(tmp_path, lines[::2], fmt, "a"), _write(tmp_path, lines[1::2], fmt, "b")])
    expected = sf.expected_totals(lines)
    assert totals.billed == expected == totals_by_currency(table)
    assert totals.rows == len(lines)
    assert groups[0][0].version == version
    assert table.column_names == list(COLUMN_NAMES)
    # Rolled up to days: one row per day and grain, ChargePeriodStart at 00:00Z.
    starts = table.column("ChargePeriodStart").to_pylist()
    assert {s.hour for s in starts} == {0} and len({s.date() for s in starts}) == 6
    assert table.num_rows < len(lines)
    effective = sum((Decimal(repr(line["EffectiveCost"])) for line in lines), Decimal(0))
    assert sum(table.column("EffectiveCost").to_pylist(), Decimal(0)) == effective


def test_tags_are_sorted_json_and_cost_categories_move_into_tags(tmp_path):
    lines = sf.as_version(sf.rows(PERIOD, days=1), "1.0")
    _, table, _ = _read(tmp_path, [_write(tmp_path, lines)])
    tags = {t for t in table.column("Tags").to_pylist()}
    assert None in tags  # the tax and credit rows have none
    sample = next(t for t in tags if t)
    assert list(json.loads(sample)) == sorted(json.loads(sample))
    assert json.loads(sample)["costCategory/business-unit"] == "retail"


def test_columns_are_selected_by_name_and_unknown_x_columns_dropped(tmp_path):
    lines = sf.rows(PERIOD, days=1)
    _, table, groups = _read(tmp_path, [_write(tmp_path, lines)])
    described = focus.describe_files(groups)
    assert described["x_columns_dropped"] == ["x_Discounts", "x_Operation", "x_ServiceCode"]
    row = next(r for r in table.to_pylist() if r["ChargeCategory"] == "Usage")
    assert row["RegionId"] in ("us-east-1", "eu-west-1") and row["SubAccountId"] and row["ResourceId"].startswith("arn:aws:")
    assert row["ProviderName"] == "AWS" and row["x_Provider"] == "aws" and row["x_Source"] == "focus" and row["x_AccountKey"] == "k"
    assert row["BillingPeriodStart"] == datetime(2026, 10, 1, tzinfo=timezone.utc)


def test_new_cost_daily_columns_are_filled_by_name(tmp_path, monkeypatch):
    """When cost_daily gains a FOCUS column the files hold, the reader fills it without a change."""
    from finops_pipeline import schema

    extra = schema.Column("SkuMeter", pa.string(), True, "test")
    extended = (*schema.COLUMNS, extra)
    monkeypatch.setattr(focus, "COLUMNS", extended)
    lines = sf.as_version(sf.rows(PERIOD, days=1), "1.0")  # 1.0: x_UsageType is SkuMeter
    file = _write(tmp_path, lines)
    connection = spilling_duckdb(tmp_path / "spill", "1GB")
    groups = focus.group_files(connection, [file])
    select = focus.rollup_sql(groups, provider_name="AWS", invoice_issuer="AWS", provider_key="aws", source="focus", account_key="k",
                              account_name="A", billing_period=PERIOD, source_updated_at=None, ingested_at=datetime.now(timezone.utc))
    rows = connection.execute(f"SELECT DISTINCT SkuMeter FROM ({select})").fetchall()
    assert {r[0] for r in rows} >= {"BoxUsage:m7g.large"}


def test_double_costs_cast_exactly_through_their_repr(tmp_path):
    lines = sf.rows(PERIOD, days=1)[:3]
    for line, amount in zip(lines, (0.1, 1234567.1234567891, 0.0000000001)):
        line["BilledCost"] = amount
    totals, table, _ = _read(tmp_path, [_write(tmp_path, lines)])
    assert totals.billed["USD"] == sum((Decimal(repr(v)) for v in (0.1, 1234567.1234567891, 0.0000000001)), Decimal(0))


def test_an_empty_delivery_is_an_empty_month(tmp_path):
    totals, table, _ = _read(tmp_path, [])
    assert table.num_rows == 0 and totals.billed == {}


def _error(tmp_path, files, declared=None) -> focus.FocusFileError:
    with pytest.raises(focus.FocusFileError) as raised:
        _read(tmp_path, files, declared)
    return raised.value


def test_unknown_version_is_refused(tmp_path):
    lines = sf.rows(PERIOD, days=1)
    error = _error(tmp_path, [_write(tmp_path, lines)], declared="0.5")
    assert "0.5" in error.problem and "supported FOCUS version" in error.fix and error.key.endswith(".parquet")
    newer = [{("ServiceProviderName" if k == "ProviderName" else k): v for k, v in line.items()} for line in lines]
    error = _error(tmp_path, [_write(tmp_path, newer, name="newer")])
    assert "newer than 1.2" in error.problem
    not_focus = [{k: v for k, v in line.items() if k not in ("BilledCost", "ChargeCategory")} for line in lines]
    assert "not a FOCUS file" in _error(tmp_path, [_write(tmp_path, not_focus, name="cur")]).problem


def test_missing_mandatory_column(tmp_path):
    lines = [{k: v for k, v in line.items() if k != "BillingCurrency"} for line in sf.rows(PERIOD, days=1)]
    error = _error(tmp_path, [_write(tmp_path, lines)])
    assert "BillingCurrency" in error.problem and error.column == "BillingCurrency" and "Edit the export" in error.fix


def test_wrong_types_and_bad_values(tmp_path):
    good = _write(tmp_path, sf.rows(PERIOD, days=1), name="good")
    path = tmp_path / "wrongtype.parquet"
    table = pq.read_table(good.path)
    index = table.column_names.index("BilledCost")
    pq.write_table(table.set_column(index, "BilledCost", pa.array([True] * table.num_rows)), path)
    error = _error(tmp_path, [good, focus.FocusFile("exports/e/data/wrongtype.parquet", path)])
    assert error.key == "exports/e/data/wrongtype.parquet" and "BOOLEAN" in error.problem and error.column == "BilledCost"
    lines = sf.rows(PERIOD, days=1)
    lines[3]["BilledCost"] = "12,5 EUR"  # text in a CSV
    error = _error(tmp_path, [_write(tmp_path, lines, "csv", "badvalue")])
    assert error.column == "BilledCost" and error.sample == "12,5 EUR" and "badvalue" in error.key
    lines = sf.rows(PERIOD, days=1)
    lines[0]["ChargeCategory"] = "Refund"
    assert "ChargeCategory" in _error(tmp_path, [_write(tmp_path, lines, name="category")]).problem
    lines = sf.rows(PERIOD, days=1)
    lines[0]["ChargePeriodStart"] = datetime(2026, 11, 3, tzinfo=timezone.utc)
    assert "after the end of billing period" in _error(tmp_path, [_write(tmp_path, lines, name="late")]).problem


def test_truncated_file_is_named(tmp_path):
    good = _write(tmp_path, sf.rows(PERIOD, days=2), name="good")
    cut = tmp_path / "cut.snappy.parquet"
    cut.write_bytes(good.path.read_bytes()[: good.path.stat().st_size // 2])
    error = _error(tmp_path, [good, focus.FocusFile("exports/e/data/cut.snappy.parquet", cut)])
    assert error.key == "exports/e/data/cut.snappy.parquet" and "truncated" in error.problem and "re-sync" in error.fix
    gz = _write(tmp_path, sf.rows(PERIOD, days=2), "csv", "gz")
    gz.path.write_bytes(gz.path.read_bytes()[:-200])
    error = _error(tmp_path, [gz])
    assert "gz" in error.key and "truncated" in error.problem


def test_file_error_is_a_provider_error_naming_file_and_fix():
    error = focus.FocusFileError("exports/e/data/x.parquet", "lacks the mandatory FOCUS column(s) BilledCost", "Edit the export.", column="BilledCost")
    provider_error = focus.file_error(error, provider="aws", title="AWS FOCUS export", where="s3://b/exports/e/data/x.parquet")
    assert provider_error.diagnosis.code == "aws.focus_column_missing"
    assert "s3://b/exports/e/data/x.parquet" in provider_error.diagnosis.cause and provider_error.diagnosis.fix == "Edit the export."



def test_an_azure_focuscost_csv_reads_with_its_declared_version(tmp_path):
    """The reader has no provider branch: an Azure FocusCost 1.0 CSV (dates without seconds, Azure x_ columns,
    tags as JSON text) reads through the same code when its manifest declares dataVersion 1.0r2 / 1.0."""
    import csv
    import gzip
    import io

    lines = sf.as_version(sf.rows(PERIOD, days=2), "1.0")
    names = [n for n in lines[0] if n not in ("x_CostCategories", "x_UsageType")] + ["x_BillingExchangeRate", "x_ResourceGroupName"]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(names)
    for line in lines:
        row = {**line, "x_BillingExchangeRate": "1", "x_ResourceGroupName": "rg-prod", "ProviderName": "Microsoft"}
        writer.writerow([v.strftime("%Y-%m-%dT%H:%MZ") if isinstance(v, datetime) else
                         (json.dumps(v) if isinstance(v, dict) else ("" if v is None else str(v))) for v in (row[n] for n in names)])
    path = tmp_path / "part_0_0001.csv.gz"
    path.write_bytes(gzip.compress(text.getvalue().encode()))
    file = focus.FocusFile("costs/focus/daily/20261001-20261031/run/part_0_0001.csv.gz", path)
    for declared in ("1.0r2", "1.0"):
        totals, table, groups = _read(tmp_path, [file], declared)
        assert totals.billed == sf.expected_totals(lines) == totals_by_currency(table)
        assert groups[0][0].version == "1.0"
        assert set(table.column("ProviderName").to_pylist()) == {"Microsoft"}
        assert "x_ResourceGroupName" in focus.describe_files(groups)["x_columns_dropped"]


def test_a_map_column_for_a_text_column_is_kept_as_json(tmp_path, monkeypatch):
    """AWS writes some FOCUS columns as maps (x_Discounts, SkuPriceDetails): a text column of cost_daily holds their JSON."""
    from finops_pipeline import schema

    monkeypatch.setattr(focus, "COLUMNS", (*schema.COLUMNS, schema.Column("x_Discounts", pa.string(), True, "test")))
    lines = sf.rows(PERIOD, days=1)
    lines[0]["x_Discounts"] = {"bundled": "-0.5"}
    file = _write(tmp_path, lines)
    connection = spilling_duckdb(tmp_path / "spill", "1GB")
    groups = focus.group_files(connection, [file])
    select = focus.rollup_sql(groups, provider_name="AWS", invoice_issuer="AWS", provider_key="aws", source="focus", account_key="k",
                              account_name="A", billing_period=PERIOD, source_updated_at=None, ingested_at=datetime.now(timezone.utc))
    values = {r[0] for r in connection.execute(f"SELECT DISTINCT x_Discounts FROM ({select})").fetchall()}
    assert values == {None, '{"bundled":"-0.5"}'}


def test_focus_10_columns_map_to_their_12_names(tmp_path):
    """1.0's x_UsageType is 1.2's SkuMeter, and 1.0's x_CostCategories join Tags as costCategory/<name>."""
    lines = sf.as_version(sf.rows(PERIOD, days=2), "1.0")
    assert "SkuMeter" not in lines[0] and "x_UsageType" in lines[0]
    _, table, groups = _read(tmp_path, [_write(tmp_path, lines)])
    rows = table.to_pylist()
    usage = [r for r in rows if r["ChargeCategory"] == "Usage"]
    assert {r["SkuMeter"] for r in usage} == {line["x_UsageType"] for line in lines if line["ChargeCategory"] == "Usage"}
    assert all(json.loads(r["Tags"])["costCategory/business-unit"] == "retail" for r in usage)
    assert all(set(json.loads(r["Tags"])) >= {"team", "env"} for r in usage)
    dropped = focus.describe_files(groups)["x_columns_dropped"]
    assert "x_UsageType" not in dropped and "x_CostCategories" not in dropped
    # A 1.2 file keeps its own SkuMeter; a stray x_UsageType next to it is not used.
    both = [{**line, "x_UsageType": "stale"} for line in sf.rows(PERIOD, days=1)]
    _, table, _ = _read(tmp_path, [_write(tmp_path, both, name="both")])
    assert "stale" not in set(table.column("SkuMeter").to_pylist())


def test_tags_as_a_list_of_key_value_records_read_as_a_json_object(tmp_path):
    """FOCUS Tags as BigQuery (and Parquet written from it) hold them: a list of key/value structs."""
    lines = sf.rows(PERIOD, days=1)
    table = sf.arrow_table(lines)
    pairs = pa.array([[{"key": k, "value": v} for k, v in sorted((line["Tags"] or {}).items())] for line in lines],
                     pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())])))
    path = tmp_path / "listtags.parquet"
    pq.write_table(table.set_column(table.column_names.index("Tags"), "Tags", pairs), path)
    totals, out, _ = _read(tmp_path, [focus.FocusFile("exports/e/data/listtags.parquet", path)])
    assert totals.billed == sf.expected_totals(lines)
    tags = {t for t in out.column("Tags").to_pylist() if t}
    assert tags and all(set(json.loads(t)) == {"env", "team"} for t in tags)


def test_rows_are_made_focus_12_conformant_without_touching_a_cost(tmp_path):
    """The export's own values that break FOCUS 1.2's column rules (the stand-in's Tax and Credit lines carry the usage
    line's SKU, price and quantities; its ResourceType is NULL) come out conformant; every cost reconciles exactly."""
    from finops_pipeline_tests.test_focus_conformance import check_native_export

    lines = sf.rows(PERIOD, days=2)
    tax = next(line for line in lines if line["ChargeCategory"] == "Tax")
    credit = next(line for line in lines if line["ChargeCategory"] == "Credit")
    assert tax["SkuId"] and tax["ListUnitPrice"] and credit["ConsumedQuantity"] and credit["ResourceType"] is None  # the input breaks them
    lines.append({**lines[0], "ServiceCategory": "Other", "ServiceSubcategory": None, "BilledCost": 0.25, "EffectiveCost": 0.25,
                  "ListCost": 0.25, "ContractedCost": 0.25, "ResourceId": "i-0123456789abcdef0"})  # a second category, no subcategory
    totals, table, _ = _read(tmp_path, [_write(tmp_path, lines)])
    assert totals.billed == sf.expected_totals(lines) == totals_by_currency(table)
    for measure in ("EffectiveCost", "ListCost", "ContractedCost"):
        assert sum(table.column(measure).to_pylist(), Decimal(0)) == sum((Decimal(repr(line[measure])) for line in lines), Decimal(0))
    check_native_export(table)
    rows = table.to_pylist()
    tax_row = next(r for r in rows if r["ChargeCategory"] == "Tax")
    assert tax_row["SkuId"] is tax_row["ListUnitPrice"] is tax_row["PricingCategory"] is tax_row["PricingUnit"] is None
    credit_row = next(r for r in rows if r["ChargeCategory"] == "Credit")
    assert credit_row["ConsumedQuantity"] is credit_row["ConsumedUnit"] is None
    assert credit_row["SkuId"] == credit["SkuId"]  # the spec lets a Credit keep its SKU: kept
    # ResourceType from the id (defs/aws/resource_types.py), as for CUR.
    types = {r["ResourceId"]: r["ResourceType"] for r in rows if r["ResourceId"]}
    assert types["i-0123456789abcdef0"] == "ec2:instance"
    assert {types[i] for i in types if i.startswith("arn:aws:amazonec2:")} == {"amazonec2:res"}
    # One ServiceCategory per ServiceName: the shared mapping's where the file gave two.
    assert {r["ServiceCategory"] for r in rows if r["ServiceName"] == lines[0]["ServiceName"]} == {"Compute"}
    # ServiceSubcategory where the export gives none: the shared mapping's (the one every source uses), under that category.
    assert next(r for r in rows if r["ResourceId"] == "i-0123456789abcdef0")["ServiceSubcategory"] == "Virtual Machines"
    # A subcategory under another category than the row's (the stand-in's Tax line keeps the usage line's Virtual
    # Machines while the mapping makes Tax 'Other'): FOCUS's 'Other (<ServiceCategory>)'.
    assert tax["ServiceSubcategory"] == "Virtual Machines" and tax_row["ServiceSubcategory"] == "Other (Other)"
    # Units in FOCUS UnitFormat: AWS's Hrs and GB-Mo are hours and GB-months; the quantities are the export's.
    assert {line["PricingUnit"] for line in lines} >= {"Hrs", "GB-Mo"}
    assert {r["PricingUnit"] for r in rows} - {None} <= {"Hours", "GB-Months", "GB-Seconds"}


def test_an_exports_own_value_wins_over_a_derivation(tmp_path):
    lines = [{**line, "ResourceType": "Virtual Machine"} if line["ChargeCategory"] == "Usage" else line for line in sf.rows(PERIOD, days=1)]
    connection = spilling_duckdb(tmp_path / "spill", "1GB")
    groups = focus.group_files(connection, [_write(tmp_path, lines)])
    select = focus.rollup_sql(groups, provider_name="AWS", invoice_issuer="AWS", provider_key="aws", source="focus", account_key="k",
                              account_name="Acme", billing_period=PERIOD, source_updated_at=None,
                              ingested_at=datetime(2026, 11, 1, tzinfo=timezone.utc), derived={"ResourceType": "'derived'"})
    types = {r[0] for r in connection.sql(f"SELECT DISTINCT ResourceType, ChargeCategory FROM ({select})").fetchall() if r[1] == "Usage"}
    assert types == {"Virtual Machine"}
    with pytest.raises(ValueError, match="NoSuchColumn"):
        focus.rollup_sql(groups, provider_name="AWS", invoice_issuer="AWS", provider_key="aws", source="focus", account_key="k",
                         account_name="Acme", billing_period=PERIOD, source_updated_at=None,
                         ingested_at=datetime(2026, 11, 1, tzinfo=timezone.utc), derived={"NoSuchColumn": "1"})
