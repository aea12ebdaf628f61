"""The one-read rollup on real-shaped CUR (varying descriptions, 12 tag keys, untagged resources) in all four
bulk formats: every partition row matches an oracle computed in Python from the files, and the source
totals are the files' exact sums."""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.aws.cur import normalize
from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_sandbox.cur import BULK_FORMATS, bulk_manifest, write_bulk

from .conftest import account_of, entry

PERIOD = "2026-10"


def _deliver(root: Path, fmt: str, rows: int = 3000) -> list[Path]:
    directory = root / ("exports/rep/20261001-20261101/rep" if fmt.startswith("legacy") else f"exports/rep/data/BILLING_PERIOD={PERIOD}")
    paths = write_bulk(directory, PERIOD, rows, fmt=fmt, shape="real", files=2)
    bulk_manifest(root, "exports", "rep", PERIOD, fmt, paths)
    return paths


def _lines(paths: list[Path]) -> list[dict]:
    """Every line item with canonical names (legacy CSV headers snake-cased, tags as a dict)."""
    out = []
    for path in paths:
        if path.name.endswith(".parquet"):
            records = pq.read_table(path).to_pylist()
        else:
            with gzip.open(path, "rt", newline="") as handle:
                records = list(csv.DictReader(handle))
        for record in records:
            line, tags = {}, {}
            for name, value in record.items():
                if name.startswith("resourceTags/"):
                    tags[normalize.tag_key(name.split("/", 1)[1])] = value
                elif name.startswith("resource_tags_"):
                    tags[name[len("resource_tags_"):]] = value
                elif name == "resource_tags":
                    tags.update(json.loads(value) if isinstance(value, str) else dict(value or []))
                else:
                    line[normalize.snake_case(name) if "/" in name else name] = value
            line["tags"] = {k: v for k, v in tags.items() if v not in (None, "")}
            out.append(line)
    return out


def _amount(value) -> Decimal:
    return Decimal(value).quantize(Decimal("1e-10")) if isinstance(value, str) else Decimal(repr(value)).quantize(Decimal("1e-10"))


@pytest.mark.parametrize("fmt", BULK_FORMATS)
def test_real_shaped_month_matches_a_python_oracle(tmp_path, fmt):
    root = tmp_path / "bucket"
    paths = _deliver(root, fmt)
    version = "legacy" if fmt.startswith("legacy") else "cur2"
    pull = pull_cur(account_of(entry(local_dir=root, report="rep", version=version)), PERIOD)
    target = tmp_path / "partition.parquet"
    pull.produce(target)
    rows = pq.read_table(target).to_pylist()

    lines = _lines(paths)
    expected: dict[tuple, dict] = defaultdict(lambda: {"billed": Decimal(0), "descriptions": set(), "lines": 0, "priced": set()})
    for line in lines:
        start = line["line_item_usage_start_date"]
        day = start[:10] if isinstance(start, str) else start.date().isoformat()
        tags = json.dumps(dict(sorted(line["tags"].items())), separators=(",", ":")) if line["tags"] else None
        key = (day, line["line_item_resource_id"], line["line_item_line_item_type"], tags)
        expected[key]["billed"] += _amount(line["line_item_unblended_cost"])
        expected[key]["descriptions"].add(line["line_item_line_item_description"])
        expected[key]["lines"] += 1
        # ContractedUnitPrice: the unblended rate, except on tax, credits and refunds; the capacity reservation as CUR 2.0 states it.
        rate = line.get("line_item_unblended_rate")
        price = None if rate in (None, "") or line["line_item_line_item_type"] in ("Tax", "Credit", "Refund") else Decimal(rate)
        expected[key]["priced"].add((price, line.get("capacity_reservation_capacity_reservation_arn") or None,  # CSV: '' is NULL
                                     line.get("capacity_reservation_capacity_reservation_status") or None))

    got = {}
    for row in rows:
        key = (row["ChargePeriodStart"].date().isoformat(), row["ResourceId"], row["x_SourceChargeType"], row["Tags"])
        assert key not in got, f"two partition rows for one grain {key}"
        got[key] = row
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key]["BilledCost"] == want["billed"], key
        assert got[key]["ChargeDescription"] == min(want["descriptions"]), key
        row = got[key]
        assert want["priced"] == {(row["ContractedUnitPrice"], row["CapacityReservationId"], row["CapacityReservationStatus"])}, key
    priced = [r for r in rows if r["ContractedUnitPrice"] is not None]
    assert priced and any(r["ContractedUnitPrice"] > 0 for r in priced)
    assert {r["CapacityReservationStatus"] for r in rows if r["CapacityReservationId"]} == (set() if fmt.startswith("legacy") else {"Used", "Unused"})
    assert len({row["Tags"] for row in rows}) > 50  # many distinct tag sets (100 resources), untagged ones among them
    assert any(row["Tags"] is None for row in rows)
    assert len({row["ChargeDescription"] for row in rows}) > 20

    total = sum((_amount(line["line_item_unblended_cost"]) for line in lines), Decimal(0))
    assert pull.source_totals == {"USD": total} == {"USD": sum(row["BilledCost"] for row in rows)}
    assert pull.metadata["line_items"] == len(lines) == 3000
