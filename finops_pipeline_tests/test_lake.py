"""Partition writes are atomic: readers see the old month or the new one, never half of one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from finops_pipeline.lake import (
    LakeError,
    PartitionKey,
    list_partitions,
    read_partition,
    read_partition_totals,
    write_partition,
)
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.test_schema import row

KEY = PartitionKey("aws", "cost_explorer", "aws-main", "2026-11")


def table(*amounts: str) -> pa.Table:
    return rows_to_table([row(BilledCost=a) for a in amounts])


def test_write_then_replace_a_partition(tmp_path: Path) -> None:
    assert write_partition(tmp_path, KEY, table("1.5", "2.5"), {"USD": Decimal("4.0")}) == 2
    assert write_partition(tmp_path, KEY, table("7"), {"USD": Decimal("7")}) == 1
    assert read_partition(tmp_path, KEY).column("BilledCost").to_pylist() == [Decimal("7")]
    assert read_partition_totals(KEY.path(tmp_path)) == {"USD": Decimal("7")}
    assert [k for k, _ in list_partitions(tmp_path)] == [KEY]
    assert KEY.path(tmp_path).relative_to(tmp_path).as_posix() == (
        "lake/cost_daily/provider=aws/source=cost_explorer/account=aws-main/billing_period=2026-11/data.parquet"
    )


def test_a_crash_mid_write_leaves_the_previous_month_whole(tmp_path: Path) -> None:
    write_partition(tmp_path, KEY, table("1", "2"), {"USD": Decimal("3")})

    def batches_then_crash():
        yield table("100")
        raise RuntimeError("connection reset while reading page 2")

    with pytest.raises(RuntimeError, match="page 2"):
        write_partition(tmp_path, KEY, batches_then_crash(), {"USD": Decimal("100")})
    assert read_partition(tmp_path, KEY).column("BilledCost").to_pylist() == [Decimal("1"), Decimal("2")]
    assert sorted(p.name for p in KEY.directory(tmp_path).iterdir()) == ["data.parquet"]  # no temporaries left


def test_a_batch_that_does_not_fit_the_schema_leaves_the_previous_month(tmp_path: Path) -> None:
    write_partition(tmp_path, KEY, table("1"), {"USD": Decimal("1")})
    bad = table("5").drop_columns(["BillingCurrency"])
    with pytest.raises(Exception, match="BillingCurrency"):
        write_partition(tmp_path, KEY, bad, {"USD": Decimal("5")})
    assert read_partition(tmp_path, KEY).column("BilledCost").to_pylist() == [Decimal("1")]


def test_a_produced_file_is_checked_before_it_replaces_anything(tmp_path: Path) -> None:
    from finops_pipeline.lake import write_partition_with

    write_partition(tmp_path, KEY, table("1"), {"USD": Decimal("1")})

    def truncated(path: Path) -> None:
        path.write_bytes(b"PAR1 not really parquet")

    with pytest.raises(LakeError, match="not readable Parquet"):
        write_partition_with(tmp_path, KEY, truncated)
    assert read_partition(tmp_path, KEY).num_rows == 1


def test_a_reader_holding_the_old_file_keeps_reading_it(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    write_partition(tmp_path, KEY, table("1", "2"), {"USD": Decimal("3")})
    reader = pq.ParquetFile(KEY.path(tmp_path))
    write_partition(tmp_path, KEY, table("9"), {"USD": Decimal("9")})
    assert reader.read().num_rows == 2  # the open file is the old, whole month
    assert read_partition(tmp_path, KEY).num_rows == 1


def test_a_produced_file_with_nulls_in_a_required_column_is_refused(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from finops_pipeline.lake import partition_metadata, write_partition_with
    from finops_pipeline.schema import COST_DAILY_SCHEMA

    write_partition(tmp_path, KEY, table("1"), {"USD": Decimal("1")})
    good = table("5")
    loose = pa.schema([f.with_nullable(True) for f in COST_DAILY_SCHEMA]).with_metadata(partition_metadata({"USD": Decimal("5")}))
    broken = good.cast(loose).set_column(good.schema.get_field_index("ServiceName"), "ServiceName", pa.array([None], pa.string()))

    with pytest.raises(LakeError, match="NULLs in required column ServiceName"):
        write_partition_with(tmp_path, KEY, lambda path: pq.write_table(broken, path))
    assert read_partition(tmp_path, KEY).column("BilledCost").to_pylist() == [Decimal("1")]
