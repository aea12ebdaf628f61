"""The unified rows of each export partition day, kept between refreshes, so a refresh re-reads only
the days whose MAX(export_time) moved.

One Parquet file per account and invoice month, `<data>/state/gcp_export/<account>/<YYYY-MM>.parquet`:
the cost_daily rows plus the partition day each came from, and in its metadata the export table and,
per partition day checked, MAX(export_time) and the raw totals per currency. A day checked and found
empty is recorded too, so it is not scanned again. The file is replaced atomically; the month's lake
partition is always rebuilt from it, so a day is replaced whole or kept whole, never added twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_pipeline.lake import atomic_file
from finops_pipeline.money import merge_totals
from finops_pipeline.schema import COST_DAILY_SCHEMA, rows_to_table
from finops_pipeline.storage import work_dir

PARTITION_DAY = "partition_day"
CACHE_SCHEMA = COST_DAILY_SCHEMA.append(pa.field(PARTITION_DAY, pa.date32(), nullable=False))
_TABLE = b"finops.export_table"
_DAYS = b"finops.partition_days"
_MAPPING = b"finops.mapping_version"


@dataclass(frozen=True)
class DayInfo:
    last_export_time: datetime | None  # None: checked, no rows of this invoice month
    totals: dict[str, Decimal]


@dataclass
class MonthCache:
    export_table: str
    days: dict[date, DayInfo] = field(default_factory=dict)
    rows: pa.Table = field(default_factory=CACHE_SCHEMA.empty_table)
    mapping: str = ""  # the source's mapping version that built the rows

    def replace_day(self, day: date, info: DayInfo, rows: list[dict[str, Any]] | pa.Table) -> None:
        """Drop the day's previous rows and keep these (cost_daily rows, as dicts or a table) instead."""
        keep = pc.not_equal(self.rows.column(PARTITION_DAY), pa.scalar(day, pa.date32()))
        fresh = rows.select(COST_DAILY_SCHEMA.names).cast(COST_DAILY_SCHEMA) if isinstance(rows, pa.Table) else rows_to_table(rows)
        fresh = fresh.append_column(CACHE_SCHEMA.field(PARTITION_DAY), pa.array([day] * fresh.num_rows, pa.date32()))
        self.rows = pa.concat_tables([self.rows.filter(keep), fresh])
        self.days[day] = info

    def days_with_data(self) -> list[date]:
        return sorted(d for d, info in self.days.items() if info.last_export_time is not None)

    def totals(self) -> dict[str, Decimal]:
        return merge_totals(info.totals for info in self.days.values())

    def month_table(self, estimated_from: date) -> pa.Table:
        """The month as cost_daily rows; x_Estimated re-derived from today's re-read window."""
        estimated = pc.greater_equal(self.rows.column(PARTITION_DAY), pa.scalar(estimated_from, pa.date32()))
        table = self.rows.drop_columns([PARTITION_DAY])
        index = table.schema.get_field_index("x_Estimated")
        return table.set_column(index, COST_DAILY_SCHEMA.field("x_Estimated"), estimated).cast(COST_DAILY_SCHEMA)


def cache_path(data_dir: Path | str, account_key: str, billing_period: str) -> Path:
    """Local even for a remote lake (in storage.work_dir): a cache, rebuilt by reading the days again if lost."""
    return work_dir(data_dir) / "state" / "gcp_export" / account_key / f"{billing_period}.parquet"


def load(data_dir: Path, account_key: str, billing_period: str, export_table: str, mapping: str) -> MonthCache:
    """The month's cache, or an empty one when there is none, it came from another export table, or its
    rows were built by another version of the source's mapping (then every day is read again, once)."""
    path = cache_path(data_dir, account_key, billing_period)
    if not path.exists():
        return MonthCache(export_table, mapping=mapping)
    table = pq.read_table(path, schema=CACHE_SCHEMA.with_metadata(pq.read_schema(path).metadata))
    metadata = table.schema.metadata or {}
    if metadata.get(_TABLE, b"").decode() != export_table or metadata.get(_MAPPING, b"").decode() != mapping:
        return MonthCache(export_table, mapping=mapping)
    days = {
        date.fromisoformat(day): DayInfo(
            datetime.fromisoformat(info["last_export_time"]) if info["last_export_time"] else None,
            {c: Decimal(v) for c, v in info["totals"].items()},
        )
        for day, info in json.loads(metadata[_DAYS]).items()
    }
    return MonthCache(export_table, days, table.replace_schema_metadata(None).cast(CACHE_SCHEMA), mapping)


def save(data_dir: Path, account_key: str, billing_period: str, cache: MonthCache) -> None:
    days = {
        day.isoformat(): {
            "last_export_time": info.last_export_time.isoformat() if info.last_export_time else None,
            "totals": {c: str(v) for c, v in sorted(info.totals.items())},
        }
        for day, info in sorted(cache.days.items())
    }
    metadata = {_TABLE: cache.export_table.encode(), _DAYS: json.dumps(days).encode(), _MAPPING: cache.mapping.encode()}
    with atomic_file(cache_path(data_dir, account_key, billing_period)) as temporary:
        pq.write_table(cache.rows.replace_schema_metadata(metadata), temporary, compression="zstd")
