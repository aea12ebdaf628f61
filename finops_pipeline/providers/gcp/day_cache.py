"""The unified rows of each export partition day, kept between refreshes, so a refresh re-reads only
the days whose MAX(export_time) moved.

One Parquet file per (account, invoice month, partition day) under
`<data>/state/gcp_export/<account>/<YYYY-MM>/<YYYY-MM-DD>.parquet`, written atomically, carrying in
its metadata the export table it came from, the day's MAX(export_time) and the raw totals per currency.
A day checked and found empty gets an empty file, so it is not scanned again. The month's lake
partition is always rebuilt from these files: a day is replaced whole or kept whole, never added twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.lake import atomic_file
from finops_pipeline.schema import COST_DAILY_SCHEMA, rows_to_table

_TABLE = b"finops.export_table"
_LAST_EXPORT = b"finops.last_export_time"
_TOTALS = b"finops.source_totals"


@dataclass(frozen=True)
class CachedDay:
    day: date
    export_table: str
    last_export_time: datetime | None  # None: checked, no rows for this invoice month
    totals: dict[str, Decimal]
    path: Path

    def table(self) -> pa.Table:
        return pq.read_table(self.path, schema=COST_DAILY_SCHEMA)


def month_dir(data_dir: Path, account_key: str, billing_period: str) -> Path:
    return Path(data_dir) / "state" / "gcp_export" / account_key / billing_period


def read_days(data_dir: Path, account_key: str, billing_period: str, export_table: str) -> dict[date, CachedDay]:
    """The cached days of a month that came from `export_table` (others are stale and ignored)."""
    days = {}
    for path in sorted(month_dir(data_dir, account_key, billing_period).glob("*.parquet")):
        metadata = pq.read_schema(path).metadata or {}
        if metadata.get(_TABLE, b"").decode() != export_table:
            continue
        last = metadata.get(_LAST_EXPORT, b"").decode()
        day = date.fromisoformat(path.stem)
        days[day] = CachedDay(
            day=day,
            export_table=export_table,
            last_export_time=datetime.fromisoformat(last) if last else None,
            totals={c: Decimal(v) for c, v in json.loads(metadata.get(_TOTALS, b"{}")).items()},
            path=path,
        )
    return days


def write_day(
    data_dir: Path,
    account_key: str,
    billing_period: str,
    day: date,
    export_table: str,
    last_export_time: datetime | None,
    totals: dict[str, Decimal],
    rows: list[dict[str, Any]],
) -> None:
    metadata: dict[bytes, bytes] = {
        _TABLE: export_table.encode(),
        _LAST_EXPORT: (last_export_time.isoformat() if last_export_time else "").encode(),
        _TOTALS: json.dumps({c: str(v) for c, v in sorted(totals.items())}).encode(),
    }
    table = rows_to_table(rows).replace_schema_metadata(metadata)
    with atomic_file(month_dir(data_dir, account_key, billing_period) / f"{day.isoformat()}.parquet") as temporary:
        pq.write_table(table, temporary, compression="zstd")


def month_table(days: dict[date, CachedDay], estimated_from: date) -> pa.Table:
    """All cached days of the month as one table; x_Estimated re-derived from today's window."""
    tables = [cached.table() for _, cached in sorted(days.items())]
    if not tables:
        return COST_DAILY_SCHEMA.empty_table()
    flags = []
    for (day, _), table in zip(sorted(days.items()), tables):
        flags.append(pa.array([day >= estimated_from] * table.num_rows, pa.bool_()))
    combined = pa.concat_tables(tables)
    estimated = pa.chunked_array(flags, pa.bool_())
    index = combined.schema.get_field_index("x_Estimated")
    return combined.set_column(index, COST_DAILY_SCHEMA.field("x_Estimated"), estimated)


def month_totals(days: dict[date, CachedDay]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for cached in days.values():
        for currency, amount in cached.totals.items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def rows_in(days: dict[date, CachedDay]) -> int:
    return sum(pq.ParquetFile(c.path).metadata.num_rows for c in days.values())

