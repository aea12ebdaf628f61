"""Every write to the data directory: Parquet partitions of `cost_daily`, mart tables, pull records.

One rule holds for all of them: write a temporary file beside the target, check it, then
`os.replace` it over the target. The rename is atomic on POSIX, so a reader (DuckDB, a person with
the catalog open) sees either the old file or the new one, never half of one, and a crash or an
exception mid-write leaves the last good file in place.

Layout (hive-style, readable as-is by DuckDB, Athena, BigQuery external tables, Spark):

    <data>/lake/cost_daily/provider=aws/source=cost_explorer/account=<key>/billing_period=2026-11/data.parquet
    <data>/lake/marts/<table>.parquet
    <data>/state/pulls/<account key>.json
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.schema import COST_DAILY_SCHEMA, conform

PARTITION_FILE = "data.parquet"
META_SOURCE_TOTALS = "finops.source_totals"
META_WRITTEN_AT = "finops.written_at"
_TMP_MAX_AGE_SECONDS = 24 * 3600


class LakeError(RuntimeError):
    """A partition could not be written or read; the previous data is untouched."""


@dataclass(frozen=True)
class PartitionKey:
    provider: str
    source: str
    account: str
    billing_period: str  # YYYY-MM

    def directory(self, data_dir: Path) -> Path:
        return (
            cost_daily_root(data_dir)
            / f"provider={self.provider}"
            / f"source={self.source}"
            / f"account={self.account}"
            / f"billing_period={self.billing_period}"
        )

    def path(self, data_dir: Path) -> Path:
        return self.directory(data_dir) / PARTITION_FILE


def lake_root(data_dir: Path) -> Path:
    return Path(data_dir) / "lake"


def cost_daily_root(data_dir: Path) -> Path:
    return lake_root(data_dir) / "cost_daily"


def cost_daily_glob(data_dir: Path) -> str:
    return str(cost_daily_root(data_dir) / "*" / "*" / "*" / "*" / PARTITION_FILE)


def mart_path(data_dir: Path, name: str) -> Path:
    return lake_root(data_dir) / "marts" / f"{name}.parquet"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp(?P<suffix>\.wal)?$")


def temporary_name(target_name: str) -> str:
    """`.<target>.<host>.<pid>.<random>.tmp`: the writer's host and pid tell a later writer whether it is alive."""
    return f".{target_name}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _process_start_time(pid: int) -> float | None:
    """When process `pid` started (Linux /proc), or None when that cannot be told."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, counted after the command name
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _process_started_after(pid: int, moment: float) -> bool:
    """True when process `pid` started after `moment` (so it reused the pid of the writer that made the file)."""
    started = _process_start_time(pid)
    return started is not None and started > moment + 2


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """A temporary left by a writer that can no longer finish it.

    Ours (host and pid in the name): stale when that process is gone, or the pid now belongs to a
    process started after the file was made. Any temporary (other hosts, older names without a pid,
    DuckDB's `.tmp.wal` beside a temporary catalog): stale when untouched for a day.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    if (now or time.time()) - stat.st_mtime > _TMP_MAX_AGE_SECONDS:
        return True
    match = _TEMP_NAME.match(path.name)
    if match is None or match["host"] != _HOST:
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    return not pid_alive(pid) or _process_started_after(pid, min(stat.st_mtime, stat.st_ctime))


def _remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove temporaries (and DuckDB `.wal` files of temporary catalogs) whose writer is dead or a day old."""
    removed = []
    for leftover in [*directory.glob(".*.tmp"), *directory.glob(".*.tmp.wal")]:
        if is_stale_temporary(leftover):
            try:
                leftover.unlink()
                removed.append(leftover)
            except FileNotFoundError:
                pass
    return removed


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.

    Temporary names start with '.' and end in '.tmp', so no '*.parquet' glob ever sees them. A
    DuckDB database written there may leave `<temporary>.wal`; it goes with the temporary.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target.parent)
    temporary = target.parent / temporary_name(target.name)
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(target.parent)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def partition_metadata(source_totals: Mapping[str, Decimal], extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Key/value metadata every partition file carries: the raw source totals it must reconcile to."""
    metadata = {
        META_SOURCE_TOTALS: json.dumps({c: str(v) for c, v in sorted(source_totals.items())}),
        META_WRITTEN_AT: str(int(time.time())),
    }
    for key, value in (extra or {}).items():
        metadata[f"finops.{key}"] = value if isinstance(value, str) else json.dumps(value, default=str)
    return metadata


def _check_partition_file(path: Path) -> pq.FileMetaData:
    try:
        parquet_file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LakeError(f"the new partition file is not readable Parquet ({exc}); kept the previous data") from exc
    schema = parquet_file.schema_arrow
    expected = {f.name: f.type for f in COST_DAILY_SCHEMA}
    actual = {f.name: f.type for f in schema}
    if actual != expected:
        diff = sorted(set(expected.items()) ^ set(actual.items()), key=str)
        raise LakeError(f"the new partition file does not match the cost_daily schema ({diff[:4]}); kept the previous data")
    metadata = parquet_file.schema_arrow.metadata or {}
    if META_SOURCE_TOTALS.encode() not in metadata:
        raise LakeError("the new partition file lacks its source totals metadata; kept the previous data")
    # Required columns must have no NULLs; the row-group statistics tell without reading the data.
    file_metadata = parquet_file.metadata
    required = {f.name for f in COST_DAILY_SCHEMA if not f.nullable}
    for group in range(file_metadata.num_row_groups):
        row_group = file_metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            stats = column.statistics
            if column.path_in_schema in required and stats is not None and stats.has_null_count and stats.null_count:
                raise LakeError(f"the new partition file has NULLs in required column {column.path_in_schema}; kept the previous data")
    return file_metadata


def write_partition(
    data_dir: Path,
    key: PartitionKey,
    batches: pa.Table | Iterable[pa.RecordBatch | pa.Table],
    source_totals: Mapping[str, Decimal],
    extra_metadata: Mapping[str, Any] | None = None,
) -> int:
    """Replace one (provider, source, account, month) partition with `batches`; returns the row count.

    Batches are conformed to the cost_daily schema and streamed to disk one at a time, so a large
    month never has to be in memory whole.
    """
    if isinstance(batches, pa.Table):
        batches = [batches]
    schema = COST_DAILY_SCHEMA.with_metadata(partition_metadata(source_totals, extra_metadata))
    rows = 0
    with atomic_file(key.path(data_dir)) as temporary:
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for batch in batches:
                table = conform(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
                if table.num_rows:
                    writer.write_table(table.replace_schema_metadata(schema.metadata))
                    rows += table.num_rows
        _check_partition_file(temporary)
    return rows


def write_partition_with(data_dir: Path, key: PartitionKey, produce: Callable[[Path], None]) -> int:
    """Replace a partition with a file that `produce(path)` writes (e.g. a DuckDB COPY).

    The producer must write the cost_daily schema and embed `partition_metadata(...)`; the file is
    checked before it replaces anything.
    """
    with atomic_file(key.path(data_dir)) as temporary:
        produce(temporary)
        metadata = _check_partition_file(temporary)
    return metadata.num_rows


def read_partition_totals(path: Path) -> dict[str, Decimal]:
    """The raw source totals recorded when the partition was written."""
    metadata = pq.ParquetFile(path).schema_arrow.metadata or {}
    raw = metadata.get(META_SOURCE_TOTALS.encode())
    return {c: Decimal(v) for c, v in json.loads(raw).items()} if raw else {}


def read_partition_extra(path: Path, name: str) -> Any:
    """A value a source stored beside the totals (`partition_metadata`'s `extra`), or None."""
    try:
        metadata = pq.ParquetFile(path).schema_arrow.metadata or {}
    except FileNotFoundError:
        return None
    raw = metadata.get(f"finops.{name}".encode())
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _subdirectories(directory: str, prefix: str, wanted: str | None) -> list[tuple[str, str]]:
    """(value, path) of the `prefix=value` directories in `directory` (only `wanted`, when given)."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        name, _, value = entry.name.partition("=")
        if name == prefix and (wanted is None or value == wanted) and entry.is_dir():
            found.append((value, entry.path))
    return found


def partition_files(data_dir: Path, provider: str | None = None, source: str | None = None) -> list[tuple[PartitionKey, str, os.stat_result]]:
    """Every partition file (its path as a string) with its stat, sorted by path. os.scandir, level by level, and one stat per
    file: a lake of 10,000 partitions is listed in a fraction of what a four-level glob takes."""
    found = []
    for provider_name, provider_dir in _subdirectories(str(cost_daily_root(data_dir)), "provider", provider):
        for source_name, source_dir in _subdirectories(provider_dir, "source", source):
            for account, account_dir in _subdirectories(source_dir, "account", None):
                for period, period_dir in _subdirectories(account_dir, "billing_period", None):
                    path = os.path.join(period_dir, PARTITION_FILE)
                    try:
                        stat = os.stat(path)
                    except FileNotFoundError:
                        continue
                    found.append((path, PartitionKey(provider_name, source_name, account, period), stat))
    found.sort(key=lambda item: item[0])
    return [(key, path, stat) for path, key, stat in found]


def list_partitions(data_dir: Path, provider: str | None = None, source: str | None = None) -> list[tuple[PartitionKey, Path]]:
    return [(key, Path(path)) for key, path, _ in partition_files(data_dir, provider, source)]


def read_partition(data_dir: Path, key: PartitionKey) -> pa.Table | None:
    path = key.path(data_dir)
    return pq.read_table(path) if path.exists() else None


def write_table(path: Path, table: pa.Table) -> None:
    """Replace a whole small table (a mart) atomically."""
    with atomic_file(path) as temporary:
        pq.write_table(table, temporary, compression="zstd")


def write_json(path: Path, document: Mapping[str, Any], indent: int | None = 2) -> None:
    """Replace a JSON document atomically (`indent=None`: compact, for large machine-read state)."""
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(document, indent=indent, sort_keys=True, default=str), encoding="utf-8")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
