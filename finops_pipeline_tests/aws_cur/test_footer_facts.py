"""The shortcuts the Parquet footers allow (constant columns, 64-bit decimals, no second aggregation)
give the same partition as the general path, and are only taken when the footers prove them safe."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.aws.cur import normalize
from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_sandbox import cur as sandbox_cur

from .conftest import account_of, entry, lines_for

PERIOD = "2026-10"


def _deliver(root: Path, fmt: str, lines, files: int = 2) -> None:
    sandbox_cur.deliver(sandbox_cur.LocalBucket(root), "b", "exports", "rep", PERIOD, lines, fmt, files=files)


def _produce(root: Path, fmt: str, target: Path, monkeypatch, facts: bool) -> tuple[pa.Table, bool, object]:
    """Pull and write the partition with the footer shortcuts on or off; returns the rows (without the
    ingestion time), whether the rollup aggregated a second time, and the pull."""
    monkeypatch.setattr(normalize, "USE_PARQUET_FACTS", facts)
    decisions = []
    original = normalize.needs_reaggregation
    monkeypatch.setattr(normalize, "needs_reaggregation", lambda groups: decisions.append(original(groups)) or decisions[-1])
    version = "legacy" if fmt.startswith("legacy") else "cur2"
    pull = pull_cur(account_of(entry(local_dir=root, report="rep", version=version)), PERIOD)
    pull.produce(target)
    table = pq.read_table(target).drop(["x_IngestedAt"])
    return table, decisions[-1], pull


def _sorted_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _single_tag(lines):
    """Every line tagged with exactly one non-empty tag: normalization cannot merge two raw tag values."""
    out = copy.deepcopy(lines)
    for index, line in enumerate(out):
        line["tags"] = {"user:team": ("platform", "data", "web")[index % 3]}
    return out


def _colliding(lines):
    """Pairs of lines that differ only in raw tags that normalize alike ({a, team: ''} vs {a}): they must
    end up in one row of the partition."""
    out = copy.deepcopy(lines)
    extra = []
    for line in out[:40]:
        line["tags"] = {"user:Name": "shared", "user:team": ""}
        twin = copy.deepcopy(line)
        twin["tags"] = {"user:Name": "shared"}
        twin["identity_line_item_id"] = line["identity_line_item_id"] + "-twin"
        extra.append(twin)
    return out + extra


@pytest.mark.parametrize("fmt", ["cur2-parquet", "legacy-parquet"])
@pytest.mark.parametrize("case", ["single-tag", "colliding", "default", "invoiced"])
def test_footer_shortcuts_give_the_same_partition(tmp_path, monkeypatch, fmt, case):
    if case == "invoiced":
        lines = lines_for(PERIOD, invoiced=True)
    else:
        lines = lines_for(PERIOD)
    if case == "single-tag":
        lines = _single_tag(lines)
    elif case == "colliding":
        lines = _colliding(lines)
    root = tmp_path / "bucket"
    _deliver(root, fmt, lines)

    fast, fast_reaggregated, fast_pull = _produce(root, fmt, tmp_path / "fast.parquet", monkeypatch, facts=True)
    slow, slow_reaggregated, slow_pull = _produce(root, fmt, tmp_path / "slow.parquet", monkeypatch, facts=False)

    assert slow_reaggregated is True  # without footer facts nothing is proven: always the general path
    # The second aggregation is skipped exactly when the footers prove tags cannot collide.
    # The second aggregation is skipped exactly when the footers prove tags cannot collide (the default
    # lines have an empty team tag, which normalization drops).
    assert fast_reaggregated is (case != "single-tag")
    # Same names and types (a column the footers prove constant is written as a literal, which DuckDB may
    # mark not-null in the file; the lake checks names and types, as here).
    assert [(f.name, f.type) for f in fast.schema] == [(f.name, f.type) for f in slow.schema]
    fast = fast.cast(slow.schema)
    assert _sorted_rows(fast) == _sorted_rows(slow)
    assert fast_pull.source_totals == slow_pull.source_totals == sandbox_cur.expected_totals(lines)
    assert sum(fast.column("BilledCost").to_pylist()) == sandbox_cur.expected_totals(lines)["USD"]

    grains = [(r["ChargePeriodStart"], r["SubAccountId"], r["ServiceName"], r["x_SourceChargeType"], r["ResourceId"],
               r["Tags"], r["SkuId"], r["RegionId"], r["PricingUnit"], r["ChargeDescription"], r["CommitmentDiscountStatus"],
               r["SkuMeter"]) for r in fast.to_pylist()]
    assert len(grains) == len(set(grains))
    if case == "colliding":
        key = "user_name"  # both Parquet layouts snake_case the tag key
        shared = [r for r in fast.to_pylist() if r["Tags"] and json.loads(r["Tags"]) == {key: "shared"}]
        twins = [l for l in lines if l["tags"].get("user:Name") == "shared"]
        assert len(twins) == 80 and shared and len(shared) <= 40
        assert sum(r["BilledCost"] for r in shared) == sum(sandbox_cur.billed(l) for l in twins)


def _write(path: Path, table: pa.Table, row_group_size: int = 3) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _layout(path: Path) -> normalize.FileLayout:
    return normalize.layout_of(normalize.CurFile(path.name, path))


def _base_columns(n: int) -> dict[str, pa.Array]:
    from datetime import datetime
    return {
        "line_item_usage_start_date": pa.array([datetime(2026, 10, 1)] * n, pa.timestamp("ms")),
        "line_item_line_item_type": pa.array(["Usage"] * n),
        "line_item_currency_code": pa.array(["USD"] * n),
        "line_item_usage_account_id": pa.array([str(100 + i % 2) for i in range(n)]),
        "line_item_product_code": pa.array(["AmazonEC2"] * n),
    }


def test_parquet_facts_prove_constants_nulls_and_narrow_amounts(tmp_path):
    n = 7
    columns = _base_columns(n)
    columns["line_item_unblended_cost"] = pa.array([0.5, -99_999_998.25, 1.0, 2.0, 3.0, 4.0, 5.0])
    columns["pricing_public_on_demand_cost"] = pa.array([0.5, 1.0, 123_456_789.5, 2.0, 3.0, 4.0, 5.0])
    columns["line_item_line_item_description"] = pa.array(["one"] * (n - 1) + ["two"])
    columns["bill_invoice_id"] = pa.array([None] * n, pa.string())
    columns["pricing_unit"] = pa.array(["Hrs"] * (n - 1) + [None])
    path = _write(tmp_path / "a.parquet", pa.table(columns))
    facts = normalize.parquet_facts(_layout(path), [path])
    assert facts.constants == {"line_item_line_item_type": "Usage", "line_item_currency_code": "USD",
                               "line_item_product_code": "AmazonEC2"}
    assert "line_item_line_item_description" not in facts.constants  # "two" in the last row group
    assert "pricing_unit" not in facts.constants  # one NULL
    assert facts.all_null == {"bill_invoice_id"}
    assert facts.narrow == {"line_item_unblended_cost"}  # 123,456,789.5 does not fit DECIMAL(18,10)
    # Never '' (smallest value "one"): no NULLIF per line. A column with '' keeps it.
    assert {"line_item_usage_account_id", "line_item_line_item_description"} <= facts.nonempty
    assert "line_item_usage_account_id" not in normalize.parquet_facts(_layout(_write(tmp_path / "e.parquet", pa.table(
        {**columns, "line_item_usage_account_id": pa.array(["100", "", "101", "100", "101", "100", "101"])}))),
        [tmp_path / "e.parquet"]).nonempty
    assert facts.tags_injective  # no tags at all


def test_an_amount_too_large_for_a_narrow_decimal_stays_exact(tmp_path):
    n = 4
    columns = _base_columns(n)
    columns["line_item_unblended_cost"] = pa.array([123_456_789.5, 0.0000000001, 99_999_998.25, 1.25])
    path = _write(tmp_path / "big.parquet", pa.table(columns))
    group = [(layout, files) for layout, files in normalize.group_files([normalize.CurFile("big.parquet", path)])]
    assert "line_item_unblended_cost" not in group[0][0].facts.narrow
    import duckdb
    with duckdb.connect() as connection:
        total = connection.execute(f"SELECT sum(contracted) FROM ({normalize.daily_sql(group)})").fetchone()[0]
    assert total == Decimal("123456789.5") + Decimal("0.0000000001") + Decimal("99999998.25") + Decimal("1.25")


def test_tag_columns_with_both_null_and_empty_values_are_not_injective(tmp_path):
    n = 6
    columns = _base_columns(n)
    columns["line_item_unblended_cost"] = pa.array([1.0] * n)
    columns["resource_tags_user_team"] = pa.array(["a", None, "b", "", "a", "b"])
    columns["resource_tags_user_name"] = pa.array(["x", None, "y", "z", "x", None])
    path = _write(tmp_path / "t.parquet", pa.table(columns))
    assert not normalize.parquet_facts(_layout(path), [path]).tags_injective
    columns["resource_tags_user_team"] = pa.array(["a", None, "b", None, "a", "b"])  # NULLs only: injective
    path = _write(tmp_path / "u.parquet", pa.table(columns))
    assert normalize.parquet_facts(_layout(path), [path]).tags_injective


def test_map_tags_with_several_keys_or_empty_values_are_not_injective(tmp_path):
    n = 4
    map_type = pa.map_(pa.string(), pa.string())
    columns = _base_columns(n)
    columns["line_item_unblended_cost"] = pa.array([1.0] * n)
    cases = [
        ([[("team", "a")], [("team", "b")], [("team", "a")], [("team", "c")]], True),
        ([[("team", "a"), ("name", "x")], [("name", "x"), ("team", "a")], [("team", "a")], [("team", "c")]], False),
        ([[("team", "a")], [("team", "")], [("team", "a")], [("team", "c")]], False),
        ([[("team", "a")], [], [("team", "a")], [("team", "c")]], False),  # an empty map: NULL leaves, proves nothing
    ]
    for index, (tags, injective) in enumerate(cases):
        columns["resource_tags"] = pa.array(tags, map_type)
        path = _write(tmp_path / f"m{index}.parquet", pa.table(columns))
        assert normalize.parquet_facts(_layout(path), [path]).tags_injective is injective, tags
