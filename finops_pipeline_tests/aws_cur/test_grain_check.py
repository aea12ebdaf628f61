"""The data checks behind the rollup's shortcuts: the grain check that lets it skip the second aggregation,
and CSV amounts written in spellings other than AWS's plain 10 decimals (parsed once, flagged, then the
exact checks decide)."""

from __future__ import annotations

import copy
import csv
import gzip
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.aws.cur import normalize
from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_pipeline.diagnosis import ProviderError
from finops_pipeline.workdir import spilling_duckdb
from finops_sandbox import cur as sandbox_cur

from .conftest import account_of, entry, lines_for

PERIOD = "2026-10"


def _deliver(root: Path, fmt: str, lines) -> sandbox_cur.Delivery:
    return sandbox_cur.deliver(sandbox_cur.LocalBucket(root), "b", "exports", "rep", PERIOD, lines, fmt, files=2)


def _pull(root: Path, fmt: str):
    version = "legacy" if fmt.startswith("legacy") else "cur2"
    return pull_cur(account_of(entry(local_dir=root, report="rep", version=version)), PERIOD)


def _grain_unique(root: Path, delivery: sandbox_cur.Delivery, tmp_path: Path) -> bool:
    files = [normalize.CurFile(key, root / key) for key in delivery.data_keys]
    groups = normalize.group_files(files)
    connection = spilling_duckdb(tmp_path / "spill", "1GB")
    try:
        return normalize.grain_unique(connection, groups, normalize.stage(connection, groups))
    finally:
        connection.close()


def _twins(lines):
    """Pairs of lines whose raw tags differ but normalize alike ({Name, team: ''} vs {Name})."""
    out = copy.deepcopy(lines)
    for line in out[:20]:
        line["tags"] = {"user:Name": "shared", "user:team": ""}
        twin = copy.deepcopy(line)
        twin["tags"] = {"user:Name": "shared"}
        twin["identity_line_item_id"] = line["identity_line_item_id"] + "-twin"
        out.append(twin)
    return out


@pytest.mark.parametrize("fmt", ["cur2-parquet", "legacy-parquet", "cur2-csv-gz"])
def test_the_grain_check_finds_daily_rows_that_meet_only_when_they_do(tmp_path, fmt):
    plain = _deliver(tmp_path / "plain", fmt, lines_for(PERIOD))
    assert _grain_unique(tmp_path / "plain", plain, tmp_path / "a") is True

    twins = _twins(lines_for(PERIOD))
    delivery = _deliver(tmp_path / "twins", fmt, twins)
    assert _grain_unique(tmp_path / "twins", delivery, tmp_path / "b") is False
    # ... and the rollup then merges them: one row per grain, the exact total.
    pull = _pull(tmp_path / "twins", fmt)
    pull.produce(tmp_path / "out.parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    grains = [(r["ChargePeriodStart"], r["SubAccountId"], r["ResourceId"], r["x_SourceChargeType"], r["SkuId"], r["SkuMeter"],
               r["Tags"], r["ChargeDescription"], r["CommitmentDiscountStatus"]) for r in rows]
    assert len(grains) == len(set(grains))
    assert sum(r["BilledCost"] for r in rows) == sandbox_cur.expected_totals(twins)["USD"]


def _respell(root: Path, delivery: sandbox_cur.Delivery, spell) -> None:
    """Rewrite every unblended cost of the first CSV file with `spell(text)` (the same number)."""
    path = root / delivery.data_keys[0]
    rows = list(csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    column = rows[0].index("lineItem/UnblendedCost")
    for row in rows[1:]:
        if row[column]:
            row[column] = spell(row[column])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    path.write_bytes(gzip.compress(text.getvalue().encode()))


SPELLINGS = {
    "padded": lambda text: f"  {text} ",
    "exponent": lambda text: f"{text}0E0",
    "trailing zeros past 10 decimals": lambda text: f"{text}000" if "." in text else text,
}


@pytest.mark.parametrize("case", list(SPELLINGS))
def test_csv_amounts_in_other_exact_spellings_give_the_same_partition(tmp_path, case):
    lines = lines_for(PERIOD)
    _deliver(tmp_path / "plain", "legacy-csv-gz", lines)
    plain = _pull(tmp_path / "plain", "legacy-csv-gz")
    plain.produce(tmp_path / "plain.parquet")
    delivery = _deliver(tmp_path / "spelled", "legacy-csv-gz", lines)
    _respell(tmp_path / "spelled", delivery, SPELLINGS[case])
    spelled = _pull(tmp_path / "spelled", "legacy-csv-gz")
    spelled.produce(tmp_path / "spelled.parquet")

    assert spelled.source_totals == plain.source_totals == sandbox_cur.expected_totals(lines)
    def rows(name):
        table = pq.read_table(tmp_path / name).drop(["x_IngestedAt", "x_SourceUpdatedAt"])
        return sorted(map(repr, table.to_pylist()))
    assert rows("spelled.parquet") == rows("plain.parquet")


def test_a_csv_amount_with_digit_separators_fails_the_month_by_name(tmp_path):
    """DuckDB's cast reads 1_000 as 1000; the suspect flag sends it to the exact checks, which refuse it."""
    lines = lines_for(PERIOD)
    delivery = _deliver(tmp_path, "legacy-csv-gz", lines)
    _respell(tmp_path, delivery, lambda text: "1_000")
    with pytest.raises(ProviderError) as raised:
        _pull(tmp_path, "legacy-csv-gz")
    diagnosis = raised.value.diagnosis
    assert diagnosis.code == "aws.cur_bad_value" and "line_item_unblended_cost" in diagnosis.cause and "'1_000'" in diagnosis.cause
