"""The serving layer: one compacted, immutable Parquet file per billing period for readers.

The lake's partitions (one file per provider, source, account and billing period) stay the unit of
replacement and of reconciliation. Readers (the catalog's `cost_daily`, the marts) read instead one
file per billing period, sorted by day, provider and account so DuckDB skips row groups outside a
query's days, plus a small per-period daily aggregate per account that the marts are computed from:

    <data>/lake/serving/cost_daily/billing_period=2026-11/<version>.parquet
    <data>/lake/serving/daily_by_account/billing_period=2026-11/<version>.parquet
    <data>/lake/serving/state.json     the current version of every period, and what it was built from

`refresh` rebuilds only the periods whose partition files changed since the last compaction (their
size, mtime and inode, recorded in the state), each into a new file under a name never used before,
then replaces `state.json` in one atomic write. A reader that read the state (or a catalog built from
it) keeps reading the files it names: they are never rewritten, and a version replaced by a newer one
is deleted only after `FINOPS_SNAPSHOT_GRACE_SECONDS` (default a day), like the catalog's snapshots.
A crash mid-compaction leaves the previous state and its files; the next refresh redoes the period.

Every write goes through lake.py's atomic helpers and nothing here needs hard links, so the same
layout lives on object storage (a PUT of a new object name, then a PUT of the state). There a
partition's fingerprint is its size and ETag (GCS: generation) from one listing, files are read whole
in one request (one version), and the compaction lock is a local file in the work directory
(storage.work_dir): a remote lake's compactions must run on one host (a Dagster pool of 1 for the
jobs that refresh the serving layer); other hosts only read.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline import storage
from finops_pipeline.lake import (
    _HOST,
    PARTITION_FILE,
    LakeError,
    PartitionKey,
    atomic_file,
    cost_daily_root,
    lake_root,
    partition_files,
    partition_key,
    read_json,
    write_json,
)
from finops_pipeline.schema import COST_DAILY_SCHEMA, sql_literal
from finops_pipeline.storage import Location

STATE_FILE = "state.json"
STATE_FORMAT = 1
DEFAULT_GRACE_SECONDS = 24 * 3600
ROW_GROUP_ROWS = 32_768
# The per-period aggregate the marts read: one row per provider, account, cloud account, currency and day.
DAILY_SQL = """
    SELECT x_Provider AS provider, x_AccountKey AS account_key,
           coalesce(SubAccountId, BillingAccountId) AS cloud_account_id,
           any_value(coalesce(SubAccountName, BillingAccountName)) AS cloud_account_name,
           BillingCurrency AS currency, ChargePeriodStart::DATE AS day,
           sum(BilledCost) AS billed_cost, sum(EffectiveCost) AS effective_cost, count(*) AS row_count
    FROM {source} GROUP BY ALL ORDER BY day, provider, account_key, cloud_account_id, currency
"""



def grace_seconds() -> float:
    """How long a replaced catalog snapshot or serving version stays for the sessions that still read it."""
    return float(os.environ.get("FINOPS_SNAPSHOT_GRACE_SECONDS") or DEFAULT_GRACE_SECONDS)


def serving_root(data_dir: Location) -> Location:
    return storage.join(lake_root(data_dir), "serving")


def state_path(data_dir: Location) -> Location:
    return storage.join(serving_root(data_dir), STATE_FILE)


@dataclass(frozen=True)
class Period:
    """One billing period's current serving files and what they hold."""

    billing_period: str
    cost_daily: Location
    daily: Location
    first_day: date | None
    last_day: date | None
    rows: int
    totals: dict[str, Decimal]
    inputs: dict[str, list[int]]  # "provider/source/account" -> the fingerprint of the partition file compacted
    version: str
    own_rows_only: bool  # every row's BillingPeriodStart is in this billing period



@dataclass(frozen=True)
class ServingState:
    periods: dict[str, Period]

    def files(self, kind: str = "cost_daily", first: date | None = None, last: date | None = None) -> list[Location]:
        """The period files of `kind` ("cost_daily" or "daily") holding days in [first, last] (all by default)."""
        chosen = []
        for period in sorted(self.periods.values(), key=lambda p: p.billing_period):
            if period.rows == 0 or period.first_day is None or period.last_day is None:
                continue
            if (first is not None and period.last_day < first) or (last is not None and period.first_day > last):
                continue
            chosen.append(period.cost_daily if kind == "cost_daily" else period.daily)
        return chosen

    def only(self, billing_periods: list[str]) -> ServingState:
        """The same state restricted to some billing periods (a mart fragment reads just those)."""
        return ServingState({p: v for p, v in self.periods.items() if p in billing_periods})

    def account_fingerprints(self) -> dict[str, str]:
        """Per account key, a digest of the versions of its partitions: it changes when any of them does."""
        parts: dict[str, list[str]] = {}
        for period in sorted(self.periods.values(), key=lambda p: p.billing_period):
            for relative, fingerprint in sorted(period.inputs.items()):
                parts.setdefault(relative.rsplit("/", 1)[1], []).append(f"{period.billing_period}/{relative}:{fingerprint}")
        return {account: hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32] for account, lines in parts.items()}


@dataclass(frozen=True)
class RefreshResult:
    state: ServingState
    rebuilt: list[str]
    removed: list[str]
    deleted_files: list[Location]
    failed: dict[str, str]  # billing period -> why it kept its previous version


def _fingerprint(stat: os.stat_result) -> list[int]:
    """What tells that a partition file was replaced: a replace gives a new inode, and a new mtime and size."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _remote_fingerprint(info: Mapping[str, Any]) -> list[Any]:
    """The same on object storage: every PUT gives a new ETag (GCS: generation)."""
    return [info["size"], info["version"]]


def _remote_partitions(data_dir: Location) -> list[tuple[PartitionKey, str, list[Any]]]:
    """Every partition of a remote lake with its fingerprint, from one listing."""
    root = cost_daily_root(data_dir)
    found = []
    for path, info in storage.glob_info(root, f"*/*/*/*/{PARTITION_FILE}"):
        found.append((partition_key(path, root), str(path), _remote_fingerprint(info)))
    return found


def _relative(key: PartitionKey) -> str:
    return f"{key.provider}/{key.source}/{key.account}"


def _period_from_record(data_dir: Location, billing_period: str, record: Mapping[str, Any]) -> Period:
    root = serving_root(data_dir)
    return Period(
        billing_period=billing_period,
        cost_daily=storage.join(root, record["cost_daily"]),
        daily=storage.join(root, record["daily"]),
        first_day=date.fromisoformat(record["first_day"]) if record.get("first_day") else None,
        last_day=date.fromisoformat(record["last_day"]) if record.get("last_day") else None,
        rows=int(record["rows"]),
        totals={c: Decimal(v) for c, v in record["totals"].items()},
        inputs=record["inputs"],
        version=record["version"],
        own_rows_only=record.get("billing_periods") in ([], [billing_period]),
    )


def _read_state_document(data_dir: Location) -> dict[str, Any]:
    document = read_json(state_path(data_dir))
    if not document or document.get("format") != STATE_FORMAT:
        return {"format": STATE_FORMAT, "periods": {}, "retired": {}}
    return document


def current_state(data_dir: Location, document: Mapping[str, Any] | None = None) -> ServingState:
    """The serving state as last committed (without looking at the partitions)."""
    data_dir = storage.as_location(data_dir)
    document = document or _read_state_document(data_dir)
    return ServingState({p: _period_from_record(data_dir, p, r) for p, r in document["periods"].items()})


def _partitions_by_period(data_dir: Location) -> dict[str, dict[str, tuple[str, list[Any]]]]:
    by_period: dict[str, dict[str, tuple[str, list[Any]]]] = {}
    if storage.is_remote(data_dir):
        listed = _remote_partitions(data_dir)
    else:
        listed = [(key, path, _fingerprint(stat)) for key, path, stat in partition_files(data_dir)]
    for key, path, fingerprint in listed:
        by_period.setdefault(key.billing_period, {})[_relative(key)] = (path, fingerprint)
    return by_period


def _with_todays_columns(table: pa.Table) -> pa.Table:
    """A partition read back with today's columns: NULL for a column added since it was written."""
    arrays = []
    for field in COST_DAILY_SCHEMA:
        if field.name in table.column_names:
            column = table.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        else:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(arrays, schema=COST_DAILY_SCHEMA.remove_metadata())


def _read_one_by_one(files: Mapping[str, tuple[str, list[int]]], read: dict[str, list[int]]) -> Iterator[pa.RecordBatch]:
    """Each partition's rows (and its path in `filename`), read through one open handle, so one version
    of the file whatever replaces it meanwhile; records the fingerprint of the version read."""
    for relative, (path, _) in sorted(files.items()):
        try:
            if storage.is_remote(path):
                # The fingerprint asked before the read: if the object is replaced meanwhile, the one
                # recorded is older than what was read, so the next refresh only redoes the period.
                fingerprint = _remote_fingerprint(storage.info(path))
                handle = storage.open_read(path)  # the whole object in one request: one version
            else:
                handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
                fingerprint = _fingerprint(os.fstat(handle.fileno()))
        except FileNotFoundError:
            continue
        with handle:
            read[relative] = fingerprint
            try:
                table = _with_todays_columns(pq.read_table(handle))
            except (pa.ArrowInvalid, OSError) as exc:
                raise LakeError(f"partition {path} is not readable Parquet ({exc}); the serving layer keeps its previous version") from exc
        yield from table.append_column("filename", pa.array([str(path)] * table.num_rows, pa.string())).to_batches()


def _version() -> str:
    return f"v-{time.time_ns():020d}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _file_totals(connection: duckdb.DuckDBPyConnection, path: Location) -> tuple[dict[str, Decimal], int, date | None, date | None]:
    rows = connection.execute(f"SELECT BillingCurrency, sum(BilledCost), count(*), min(ChargePeriodStart)::DATE, max(ChargePeriodStart)::DATE "
                              f"FROM read_parquet({sql_literal(path)}, hive_partitioning = false) GROUP BY ALL").fetchall()
    return ({c: t for c, t, *_ in rows}, sum(r[2] for r in rows), min((r[3] for r in rows), default=None), max((r[4] for r in rows), default=None))


def _stat_all(files: Mapping[str, tuple[str, list[Any]]]) -> dict[str, list[Any]]:
    found = {}
    remote = [path for path, _ in files.values() if storage.is_remote(path)]
    if remote:  # one listing of the lake, not a request per file
        root = remote[0]
        for _ in range(5):  # <root>/provider=/source=/account=/billing_period=/data.parquet
            root = storage.parent(root)
        listed = {str(p): _remote_fingerprint(i) for p, i in storage.glob_info(root, f"*/*/*/*/{PARTITION_FILE}")}
        return {relative: listed[path] for relative, (path, _) in files.items() if path in listed}
    for relative, (path, _) in files.items():
        try:
            found[relative] = _fingerprint(os.stat(path))
        except FileNotFoundError:
            pass
    return found


def _sum(totals: Iterator[Mapping[str, Decimal]] | list[Mapping[str, Decimal]]) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for one in totals:
        for currency, amount in one.items():
            result[currency] = result.get(currency, Decimal(0)) + Decimal(amount)
    return {c: v for c, v in result.items() if v}


def _insert_partitions(connection: duckdb.DuckDBPyConnection, files: Mapping[str, tuple[str, list[int]]]
                       ) -> tuple[dict[str, list[int]], dict[str, dict[str, Decimal]]]:
    """Add the rows of `files` to the temp table `period`; return the fingerprints of the versions read
    and each partition's BilledCost per currency.

    One DuckDB scan is fast (parallel, no Python per file), but DuckDB opens a file by path more than
    once, so a partition replaced during the scan could be read half old, half new: the scan counts
    only when every file's fingerprint (a replace gives a new inode) is the same before and after it.
    Otherwise each file is read through one open handle."""
    # DuckDB names a remote file by its filesystem's protocol (abfs:// for az://): match without the scheme.
    relative_of = {str(path).split("://", 1)[-1]: relative for relative, (path, _) in files.items()}
    totals_sql = "SELECT filename, BillingCurrency, sum(BilledCost) FROM period WHERE filename IS NOT NULL GROUP BY ALL"
    if not files:
        return {}, {}
    storage.register_duckdb(connection, next(iter(files.values()))[0])  # every partition is in the same lake
    before = _stat_all(files)
    connection.execute("BEGIN")
    try:
        listed = ", ".join(sql_literal(files[r][0]) for r in sorted(before))
        connection.execute(f"INSERT INTO period BY NAME SELECT * FROM read_parquet([{listed}], union_by_name = true, filename = true, "
                           f"hive_partitioning = false)")
        scanned = _stat_all(files) == before
    except duckdb.Error:  # a file gone or swapped mid-scan (or a bad file, which the one-by-one read names)
        scanned = False
    if scanned:
        connection.execute("COMMIT")
        read = before
    else:
        connection.execute("ROLLBACK")
        read = {}
        connection.register("one_by_one", pa.RecordBatchReader.from_batches(
            COST_DAILY_SCHEMA.remove_metadata().append(pa.field("filename", pa.string())), _read_one_by_one(files, read)))
        connection.execute("INSERT INTO period BY NAME SELECT * FROM one_by_one")
        connection.unregister("one_by_one")
    totals: dict[str, dict[str, Decimal]] = {relative: {} for relative in read}
    for filename, currency, amount in connection.execute(totals_sql).fetchall():
        totals[relative_of[filename.split("://", 1)[-1]]][currency] = amount
    return read, totals


def _compact_period(data_dir: Location, billing_period: str, files: Mapping[str, tuple[str, list[int]]],
                    previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write one period's compacted file and daily aggregate under new names; return its state record.

    With the `previous` record, only the partitions that changed are read: the previous compacted
    file (immutable) gives the rows of the others. Either way, the written file's BilledCost per
    currency must equal the sum of every partition's, to the cent, or nothing is committed (and an
    incremental pass that does not add up is redone from all the partitions).
    """
    from finops_pipeline.catalog import _duckdb_type

    root = serving_root(data_dir)
    version = _version()
    relative_file = f"cost_daily/billing_period={billing_period}/{version}.parquet"
    relative_daily = f"daily_by_account/billing_period={billing_period}/{version}.parquet"
    options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
    columns = ", ".join(f'"{f.name}" {_duckdb_type(f.type)}' for f in COST_DAILY_SCHEMA)
    connection = storage.connect_duckdb(data_dir)
    try:
        # The changed partitions go to a temp table (read once, checked); the others' rows come
        # straight from the previous compacted file, which no one rewrites.
        connection.execute(f"CREATE TEMP TABLE period ({columns}, filename VARCHAR)")
        incremental = previous is not None and "partition_totals" in previous
        unchanged = {r for r, (_, f) in files.items() if previous["inputs"].get(r) == f} if incremental else set()
        read, partition_totals = _insert_partitions(connection, {r: v for r, v in files.items() if r not in unchanged})
        source = "SELECT * EXCLUDE (filename) FROM period"
        if incremental:
            assert previous is not None
            read.update({r: previous["inputs"][r] for r in unchanged})
            partition_totals.update({r: {c: Decimal(v) for c, v in previous["partition_totals"][r].items()} for r in unchanged})
            dropped = sorted(set(previous["inputs"]) - unchanged)
            connection.execute("CREATE TEMP TABLE dropped AS SELECT unnest($drop::VARCHAR[]) AS relative", {"drop": dropped})
            source = (f"SELECT * FROM read_parquet({sql_literal(storage.join(root, previous['cost_daily']))}, hive_partitioning = false) "
                      f"WHERE x_Provider || '/' || x_Source || '/' || x_AccountKey NOT IN (SELECT relative FROM dropped) "
                      f"UNION ALL BY NAME {source}")
        expected = _sum(list(partition_totals.values()))
        with atomic_file(storage.join(root, relative_file)) as temporary:
            connection.execute(f"COPY (SELECT * FROM ({source}) {ORDER}) TO {sql_literal(temporary)} ({options})")
            output_totals, rows, first, last = _file_totals(connection, temporary)
            if _sum([output_totals]) != expected:
                if incremental:  # a row not where its partition's key says: redo it from every partition
                    return _compact_period(data_dir, billing_period, files)
                raise LakeError(f"the compacted {billing_period} totals {output_totals} differ from its partitions' {expected}; "
                                f"kept the previous serving version")
            _check_serving_schema(temporary)
            held = [p for (p,) in connection.execute(f"SELECT DISTINCT strftime(BillingPeriodStart, '%Y-%m') FROM read_parquet("
                                                     f"{sql_literal(temporary)}) ORDER BY 1").fetchall()]
        with atomic_file(storage.join(root, relative_daily)) as temporary:
            source = f"read_parquet({sql_literal(storage.join(root, relative_file))}, hive_partitioning = false)"
            connection.execute(f"COPY ({DAILY_SQL.format(source=source)}) TO {sql_literal(temporary)} (FORMAT parquet, COMPRESSION zstd)")
    finally:
        connection.close()
    return {
        "cost_daily": relative_file, "daily": relative_daily, "version": version, "inputs": read, "rows": rows,
        "first_day": first.isoformat() if first else None, "last_day": last.isoformat() if last else None,
        "totals": {c: str(v) for c, v in sorted(output_totals.items())}, "compacted_at": time.time(),
        "billing_periods": held,
        "partition_totals": {r: {c: str(v) for c, v in sorted(t.items())} for r, t in sorted(partition_totals.items())},
    }


ORDER = "ORDER BY ChargePeriodStart, x_Provider, x_AccountKey, x_Source"


def _check_serving_schema(path: Path) -> None:
    expected = {f.name: f.type for f in COST_DAILY_SCHEMA}
    actual = {f.name: f.type for f in pq.read_schema(path)}
    if actual != expected:
        diff = sorted(set(expected.items()) ^ set(actual.items()), key=str)
        raise LakeError(f"the compacted file does not match the cost_daily schema ({diff[:4]}); kept the previous serving version")


def lock_path(data_dir: Location) -> Path:
    """The compaction lock: beside the serving files locally; for a remote lake, in the local work
    directory (so it serializes the compactions of one host only: run them on one host)."""
    if storage.is_remote(data_dir):
        digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
        return storage.work_dir(data_dir) / "state" / "serving" / f"{digest}.lock"
    return Path(serving_root(data_dir)) / ".lock"


@contextmanager
def _compaction_lock(data_dir: Location) -> Iterator[None]:
    """One compaction at a time on this data directory (others wait); readers never take it."""
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def stale_periods(data_dir: Location) -> list[str]:
    """Billing periods whose partitions changed (or appeared, or went) since the last compaction."""
    data_dir = storage.as_location(data_dir)
    document = _read_state_document(data_dir)
    current = _partitions_by_period(data_dir)
    changed = [p for p, files in current.items()
               if {r: f for r, (_, f) in files.items()} != document["periods"].get(p, {}).get("inputs")]
    return sorted(changed + [p for p in document["periods"] if p not in current])


def refresh(data_dir: Location, now: float | None = None) -> RefreshResult:
    """Compact the periods whose partitions changed, commit the new state atomically, drop old versions."""
    data_dir = storage.as_location(data_dir)
    with _compaction_lock(data_dir):
        document = _read_state_document(data_dir)
        current = _partitions_by_period(data_dir)
        periods: dict[str, Any] = dict(document["periods"])
        retired: dict[str, float] = dict(document.get("retired", {}))
        rebuilt, removed, failed = [], [], {}
        moment = time.time() if now is None else now
        for billing_period, files in sorted(current.items()):
            previous = periods.get(billing_period)
            if previous is not None and {r: f for r, (_, f) in files.items()} == previous["inputs"]:
                continue
            try:
                periods[billing_period] = _compact_period(data_dir, billing_period, files, previous)
            except (LakeError, duckdb.Error) as exc:  # this period keeps its last good version; the others go on
                failed[billing_period] = str(exc)
                continue
            rebuilt.append(billing_period)
            if previous is not None:
                retired.update({previous["cost_daily"]: moment, previous["daily"]: moment})
        for billing_period in [p for p in periods if p not in current]:
            previous = periods.pop(billing_period)
            retired.update({previous["cost_daily"]: moment, previous["daily"]: moment})
            removed.append(billing_period)
        document = {"format": STATE_FORMAT, "periods": periods, "retired": retired}
        deleted = _collect_garbage(data_dir, document, moment)
        if rebuilt or removed or deleted or not storage.exists(state_path(data_dir)):
            write_json(state_path(data_dir), document, indent=None)
    return RefreshResult(current_state(data_dir, document), rebuilt, removed, deleted, failed)


def _collect_garbage(data_dir: Location, document: dict[str, Any], now: float) -> list[Location]:
    """Delete versions retired longer than the grace period, and files no state ever named (a crash's);
    `document` (the state about to be committed) forgets the retired versions deleted."""
    root = serving_root(data_dir)
    live = {r[kind] for r in document["periods"].values() for kind in ("cost_daily", "daily")}
    retired: dict[str, float] = document.get("retired", {})
    deleted: list[Location] = []
    keep_retired = {}
    for relative, retired_at in retired.items():
        if now - retired_at > grace_seconds():
            storage.delete(storage.join(root, relative))
            deleted.append(storage.join(root, relative))
        else:
            keep_retired[relative] = retired_at
    for kind in ("cost_daily", "daily_by_account"):
        for path, info in storage.glob_info(storage.join(root, kind), "billing_period=*/*.parquet"):
            relative = "/".join(storage.relative_parts(path, root))
            if relative in live or relative in keep_retired:
                continue
            if now - info["mtime"] > grace_seconds():
                storage.delete(path)
                deleted.append(path)
    document["retired"] = keep_retired
    return deleted


def partition_totals(data_dir: Location) -> dict[str, dict[str, Decimal]]:
    """Sum of BilledCost per billing period and currency over the raw partitions, each read whole through
    one handle (independently of the compaction's scan)."""
    totals: dict[str, dict[str, Decimal]] = {}
    for billing_period, files in _partitions_by_period(storage.as_location(data_dir)).items():
        period: dict[str, Decimal] = {}
        for batch in _read_one_by_one(files, {}):
            for row in pa.Table.from_batches([batch]).group_by("BillingCurrency").aggregate([("BilledCost", "sum")]).to_pylist():
                period[row["BillingCurrency"]] = period.get(row["BillingCurrency"], Decimal(0)) + row["BilledCost_sum"]
        totals[billing_period] = period
    return totals


def serving_totals(data_dir: Location, state: ServingState | None = None) -> dict[str, dict[str, Decimal]]:
    """Sum of BilledCost per billing period and currency, read from the serving files themselves."""
    state = state or current_state(data_dir)
    connection = storage.connect_duckdb(data_dir)
    try:
        return {p.billing_period: _file_totals(connection, p.cost_daily)[0] for p in state.periods.values()}
    finally:
        connection.close()


def verify(data_dir: Location) -> dict[str, dict[str, tuple[str, str]]]:
    """Periods and currencies where the serving files' totals differ from the partitions' (empty: all equal)."""
    raw, served = partition_totals(data_dir), serving_totals(data_dir)
    mismatches: dict[str, dict[str, tuple[str, str]]] = {}
    for billing_period in sorted(set(raw) | set(served)):
        left, right = raw.get(billing_period, {}), served.get(billing_period, {})
        for currency in sorted(set(left) | set(right)):
            if left.get(currency, Decimal(0)) != right.get(currency, Decimal(0)):
                mismatches.setdefault(billing_period, {})[currency] = (str(left.get(currency, 0)), str(right.get(currency, 0)))
    return mismatches
