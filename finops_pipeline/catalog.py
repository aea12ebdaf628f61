"""The DuckDB catalog (`<data>/finops.duckdb`): views over the Parquet lake, for people and dashboards.

The catalog holds no data, only views, so it is rebuilt whole in a new file and swapped in with one
rename. The pipeline therefore never needs a write lock on the file a person has open: someone can
keep a read-only session on `finops.duckdb` while a refresh runs, and sees the new views on their
next connection. (DuckDB allows one read-write process or many read-only ones, never both.)

The views never read a path that a writer replaces. The lake's files (`data.parquet`, the marts) are
replaced by rename, and DuckDB reading one of them while it is swapped (its glob listing, its footer
read through one handle and its pages through another, its metadata cache keyed by path and mtime)
can mix two versions of a file: `TProtocolException: Invalid data`. So `cost_daily` reads the
serving layer's compacted per-period files (serving.py), which are immutable and named once, and
every catalog build takes a snapshot of the marts: one hard link per current mart file under
`<data>/lake/.catalog/<version>/` (a copy where hard links are not possible). A session sees exactly
the state of the catalog it opened, however many refreshes follow. Snapshots and replaced serving
versions stay for `FINOPS_SNAPSHOT_GRACE_SECONDS` (default a day) after a newer catalog replaced
theirs, so sessions opened before a refresh keep working; a session open longer than that must
reconnect.

A lake on object storage (FINOPS_DATA_DIR=s3://..., az://..., gs://...): there are no hard links, and
none are needed. The catalog file lives in the local work directory (storage.work_dir); `cost_daily`
is a view over the serving files' URLs (immutable, named once), and the marts, small, are copied into
the catalog file as tables at each build (a session sees the marts of the build it opened). Reading
the view needs our fsspec filesystem registered in the connection: every connection our code opens
(`connect`, `connect_readonly`, `finops-pipeline query`, the marts, the dashboard) does it; a plain
DuckDB CLI session cannot read a remote `cost_daily` (that would need the httpfs extension), only the
mart tables.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from finops_pipeline import serving, storage
from finops_pipeline.lake import _HOST, atomic_file, lake_root, list_partitions, mart_path, pid_alive
from finops_pipeline.schema import COLUMNS, sql_literal
from finops_pipeline.serving import DEFAULT_GRACE_SECONDS, ServingState, grace_seconds  # noqa: F401 - re-exported
from finops_pipeline.storage import Location

CATALOG_FILE = "finops.duckdb"
MART_TABLES = (
    "provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status",
    "cost_by_service", "cost_by_tag", "cost_forecast", "cost_anomalies", "budget_status", "cost_in_reporting_currency",
)


def catalog_path(data_dir: Location) -> Path:
    """The catalog file: in the data directory, or for a remote lake in the local work directory."""
    return storage.work_dir(data_dir) / CATALOG_FILE


def connect(data_dir: Location, database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read the lake's files (for a remote lake, its filesystem registered)."""
    return storage.connect_duckdb(data_dir, database, read_only)


def _duckdb_type(data_type: pa.DataType) -> str:
    if pa.types.is_decimal(data_type):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(data_type):
        return "BOOLEAN"
    return "VARCHAR"


SNAPSHOT_DIR = ".catalog"
TEMPORARY_SNAPSHOT_MAX_AGE_SECONDS = 3600


def snapshots_root(data_dir: Path) -> Path:
    return lake_root(data_dir) / SNAPSHOT_DIR


@dataclass
class Snapshot:
    """Immutable names for the lake's current files: what one set of views reads (`partitions`: the
    serving layer's per-period files)."""

    directory: Path | None
    partitions: list[Location] = field(default_factory=list)
    marts: dict[str, Location] = field(default_factory=dict)


def _link(source: Path, destination: Path) -> bool:
    """Give the file `source` names now another name; False when it no longer exists."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, destination)
    except FileNotFoundError:
        return False
    except OSError:  # no hard links here (another device, some network or FUSE filesystems): copy it
        partial = destination.with_name("." + destination.name + ".tmp")
        try:
            shutil.copyfile(source, partial)  # one open(): one version of the file
        except FileNotFoundError:
            return False
        os.replace(partial, destination)
    return True


def take_snapshot(data_dir: Location, kind: str = "c", state: ServingState | None = None) -> Snapshot:
    """Name the serving layer's current files (immutable already) and link every current mart file
    under a new `<data>/lake/.catalog/<version>/`.

    `kind` is "c" for a catalog's snapshot, "t" for one that only a live process's in-memory views use.
    `state` is the serving state to read (by default the one last committed).

    A remote lake has no links: the snapshot names the serving files and the current mart objects
    (read whole in one request each, so one version; `build_catalog` copies them into the catalog).
    """
    if storage.is_remote(data_dir):
        partitions = (state or serving.current_state(data_dir)).files()
        marts = {name: mart_path(data_dir, name) for name in MART_TABLES}
        present = {str(p) for p in storage.glob(storage.join(lake_root(data_dir), "marts"), "*.parquet")}
        return Snapshot(None, partitions=partitions, marts={n: p for n, p in marts.items() if str(p) in present})
    data_dir = Path(data_dir)
    version = f"{kind}-{time.time_ns():020d}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    directory = snapshots_root(data_dir) / version
    snapshot = Snapshot(directory, partitions=(state or serving.current_state(data_dir)).files())
    for name in MART_TABLES:
        destination = directory / "marts" / f"{name}.parquet"
        if _link(mart_path(data_dir, name), destination):
            snapshot.marts[name] = destination
    return snapshot


def remove_old_snapshots(data_dir: Location, keep: Path | None = None, now: float | None = None) -> list[Path]:
    """Delete snapshots no session can still need.

    Catalog snapshots ("c-"): the newest is always kept (the catalog in place reads it), older ones
    once their grace period is over. In-memory ones ("t-"): when their process is gone, or after an hour.
    """
    if storage.is_remote(data_dir):
        return []
    root = snapshots_root(data_dir)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    versions = sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2] in ("c-", "t-"))
    newest_catalog = max((p for p in versions if p.name.startswith("c-")), default=None)
    removed = []
    for directory in versions:
        if directory in (keep, newest_catalog):
            continue
        try:
            kind, created_ns, host, pid = directory.name.split("-", 4)[:4]
            age = now - int(created_ns) / 1e9
        except ValueError:
            continue
        if kind == "c":
            stale = age > grace_seconds()
        else:
            stale = age > TEMPORARY_SNAPSHOT_MAX_AGE_SECONDS or (host == _HOST and int(pid) != os.getpid() and not pid_alive(int(pid)))
        if stale:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _typed_empty() -> str:
    typed = ", ".join(f'CAST(NULL AS {_duckdb_type(c.type)}) AS "{c.name}"' for c in COLUMNS)
    return f"SELECT {typed} WHERE false"


def cost_daily_sql(data_dir: Location, files: list[Location] | None = None) -> str:
    """SELECT for the unified table over an explicit list of files (serving files, or by default the
    current raw partitions); a typed empty result when there are none."""
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    if files is None:
        files = [path for _, path in list_partitions(data_dir)]
    if files:
        listed = ", ".join(sql_literal(f) for f in files)
        # The typed empty first, by name: a partition written before a column existed reads it as NULL
        # (even when every file is that old), with the column's type.
        return (f"SELECT {names} FROM ({_typed_empty()} UNION ALL BY NAME "
                f"SELECT * FROM read_parquet([{listed}], union_by_name = true, hive_partitioning = false))")
    return _typed_empty()


def serving_sql(files: list[Location]) -> str:
    """SELECT for the unified table over the serving layer's per-period files (all in today's schema,
    sorted by day: DuckDB skips the row groups, and files, outside a filter on ChargePeriodStart or
    BillingPeriodStart; not outside one on ChargePeriodStart::DATE, which DuckDB 2.0.1 keeps above any
    view's projection as a cast that "can throw", README "Scale"); a typed empty result when there are none."""
    if not files:
        return _typed_empty()
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    return f"SELECT {names} FROM read_parquet([{', '.join(sql_literal(f) for f in files)}], hive_partitioning = false)"


def register_views(connection: duckdb.DuckDBPyConnection, data_dir: Location, *, temporary: bool = False,
                   snapshot: Snapshot | None = None, state: ServingState | None = None) -> Snapshot:
    """Create the cost_daily view and one view per mart file present, over a snapshot of the lake
    (taken here unless given). Also used in-memory by the marts (temporary views).

    Without `snapshot` or `state`, the serving layer is first brought up to date with the partitions
    (a listing when nothing changed), so a caller never reads a period older than its partitions.
    For a remote lake the connection gets the lake's filesystem, and a catalog file (not `temporary`)
    gets the marts as tables, copied now."""
    if snapshot is None:
        state = state or serving.refresh(data_dir).state
        snapshot = take_snapshot(data_dir, "t" if temporary else "c", state)
    storage.register_duckdb(connection, data_dir)
    kind = "TEMP VIEW" if temporary else "VIEW"
    connection.execute(f"CREATE OR REPLACE {kind} cost_daily AS {serving_sql(snapshot.partitions)}")
    for name, path in snapshot.marts.items():
        if storage.is_remote(path) and not temporary:
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet({sql_literal(path)})")
        else:
            connection.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM read_parquet({sql_literal(path)})")
    return snapshot


def build_catalog(data_dir: Location, state: ServingState | None = None) -> Path:
    """Bring the serving layer up to date (unless its fresh `state` is given), snapshot the marts,
    write a fresh catalog file over both and swap it in atomically."""
    target = catalog_path(data_dir)
    snapshot = take_snapshot(data_dir, "c", state or serving.refresh(data_dir).state)
    with atomic_file(target) as temporary:
        connection = storage.connect_duckdb(None, str(temporary))
        try:
            register_views(connection, data_dir, snapshot=snapshot)
            connection.execute("CHECKPOINT")
        finally:
            connection.close()
    remove_old_snapshots(data_dir, keep=snapshot.directory)
    return target


def connect_readonly(data_dir: Location) -> duckdb.DuckDBPyConnection:
    """The catalog, read-only, in UTC and able to read the lake (remote too)."""
    path = catalog_path(data_dir)
    if not path.exists():
        where = "the data directory that holds it" if not storage.is_remote(data_dir) else "the lake, and FINOPS_WORK_DIR at the directory that holds it"
        raise FileNotFoundError(
            f"{path} does not exist yet: run the pipeline first (make demo, or materialize the assets), "
            f"or point FINOPS_DATA_DIR at {where}."
        )
    return connect(data_dir, str(path), read_only=True)


def query(data_dir: Location, sql: str, parameters: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
    connection = connect_readonly(data_dir)
    try:
        cursor = connection.execute(sql, parameters or [])
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return columns, cursor.fetchall()
    finally:
        connection.close()
