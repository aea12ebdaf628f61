"""The lake on each backend (local directory, S3 on moto's server, Azure Blob on Azurite): the same
partition round trip, atomic replace, crash safety and DuckDB reads."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from finops_pipeline import storage
from finops_pipeline.lake import (
    LakeError,
    PartitionKey,
    atomic_file,
    cost_daily_glob,
    cost_daily_root,
    list_partitions,
    mart_path,
    read_json,
    read_partition,
    read_partition_totals,
    write_json,
    write_partition,
    write_partition_with,
    write_table,
)
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.test_schema import row

REPO = Path(__file__).resolve().parents[2]
KEY = PartitionKey("aws", "cost_explorer", "aws-main", "2026-11")
AMOUNTS = ["0.0000000001", "12345678.9012345678", "-3.30", "0.1", "0.2"]


def table(*amounts: str, **fields: str) -> pa.Table:
    return rows_to_table([row(BilledCost=a, **fields) for a in amounts])


def names_in(directory: storage.Location) -> list[str]:
    """Every file name under a directory (temporaries included), on any backend."""
    if not storage.is_remote(directory):
        return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).exists() else []
    fs, path = storage.filesystem(directory)
    return sorted(storage.name(p) for p in fs.find(path))


def test_partition_round_trip_keeps_exact_decimals(data_dir: storage.Location) -> None:
    totals = {"USD": sum((Decimal(a) for a in AMOUNTS), Decimal(0))}
    assert write_partition(data_dir, KEY, table(*AMOUNTS), totals) == len(AMOUNTS)
    back = read_partition(data_dir, KEY)
    assert back.column("BilledCost").to_pylist() == [Decimal(a) for a in AMOUNTS]
    assert sum(back.column("BilledCost").to_pylist()) == Decimal("12345675.9012345679")
    assert read_partition_totals(KEY.path(data_dir)) == totals
    assert list_partitions(data_dir) == [(KEY, KEY.path(data_dir))]
    assert str(KEY.path(data_dir)).endswith("/lake/cost_daily/provider=aws/source=cost_explorer/account=aws-main/billing_period=2026-11/data.parquet")
    assert names_in(KEY.directory(data_dir)) == ["data.parquet"]
    assert read_partition(data_dir, PartitionKey("aws", "cost_explorer", "aws-main", "2026-10")) is None

    write_partition(data_dir, KEY, table("7"), {"USD": Decimal("7")})
    assert read_partition(data_dir, KEY).column("BilledCost").to_pylist() == [Decimal("7")]
    assert read_partition_totals(KEY.path(data_dir)) == {"USD": Decimal("7")}


def test_json_and_tables_round_trip(data_dir: storage.Location) -> None:
    record = storage.join(data_dir, "state", "pulls", "aws-main.json")
    assert read_json(record) is None
    write_json(record, {"2026-11": {"outcome": "ok", "total": Decimal("1.10")}})
    assert read_json(record) == {"2026-11": {"outcome": "ok", "total": "1.10"}}
    mart = mart_path(data_dir, "monthly")
    write_table(mart, pa.table({"amount": pa.array([Decimal("1.23")], pa.decimal128(38, 10))}))
    assert pa.parquet.read_table(storage.open_read(mart)).column("amount").to_pylist() == [Decimal("1.23")]
    assert storage.exists(mart)
    storage.delete(mart)
    assert not storage.exists(mart)
    storage.delete(mart)  # missing_ok


def test_listing_filters_and_skips_other_files(data_dir: storage.Location) -> None:
    keys = [PartitionKey("aws", "cost_explorer", "aws-main", "2026-10"), KEY, PartitionKey("gcp", "bigquery_export", "gcp-main", "2026-11")]
    for key in keys:
        write_partition(data_dir, key, table("1"), {"USD": Decimal("1")})
    with atomic_file(storage.join(KEY.directory(data_dir), "notes.txt")) as temporary:
        temporary.write_text("not a partition")
    assert [k for k, _ in list_partitions(data_dir)] == keys
    assert [k for k, _ in list_partitions(data_dir, provider="gcp")] == keys[2:]
    assert [k for k, _ in list_partitions(data_dir, provider="aws", source="cost_explorer")] == keys[:2]


def test_a_failed_check_or_exception_leaves_the_last_good_object_and_no_temporaries(data_dir: storage.Location, tmp_path: Path) -> None:
    write_partition(data_dir, KEY, table("1", "2"), {"USD": Decimal("3")})
    before = storage.read_bytes(KEY.path(data_dir))

    def batches_then_crash():
        yield table("100")
        raise RuntimeError("connection reset while reading page 2")

    with pytest.raises(RuntimeError, match="page 2"):
        write_partition(data_dir, KEY, batches_then_crash(), {"USD": Decimal("100")})
    with pytest.raises(LakeError, match="not readable Parquet"):
        write_partition_with(data_dir, KEY, lambda path: path.write_bytes(b"PAR1 half a file"))
    assert storage.read_bytes(KEY.path(data_dir)) == before
    assert names_in(KEY.directory(data_dir)) == ["data.parquet"]
    assert names_in(tmp_path / "staging") == []


CRASHING_WRITER = """
import os, sys
from decimal import Decimal
from finops_pipeline.lake import PartitionKey, write_partition_with
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.test_schema import row
import pyarrow.parquet as pq

def produce(path):
    pq.write_table(rows_to_table([row(BilledCost="999")]), path)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)  # half written when the process dies
    os._exit(9)

write_partition_with(sys.argv[1], PartitionKey("aws", "cost_explorer", "aws-main", "2026-11"), produce)
"""


def crashed_pid(temporary: str) -> int:
    match = storage._TEMP_NAME.match(temporary)
    assert match is not None, temporary
    pid = int(match["pid"])
    assert pid != os.getpid() and not storage.pid_alive(pid)
    return pid


def test_a_killed_writer_leaves_the_last_good_object_and_its_temporary_is_swept(data_dir: storage.Location, tmp_path: Path) -> None:
    write_partition(data_dir, KEY, table("1", "2"), {"USD": Decimal("3")})
    before = storage.read_bytes(KEY.path(data_dir))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'sandbox'}"}
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(data_dir)], env=env, capture_output=True, timeout=120)
    assert crashed.returncode == 9, crashed.stderr.decode()[-2000:]
    assert storage.read_bytes(KEY.path(data_dir)) == before
    # The dead writer's half file: in the local staging directory for a remote lake (the bucket never
    # holds a temporary object), beside the partition for a local one.
    where = tmp_path / "staging" if storage.is_remote(data_dir) else Path(KEY.directory(data_dir))
    leftovers = [n for n in names_in(where) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".data.parquet.") and f".{crashed_pid(leftovers[0])}." in leftovers[0]
    assert [n for n in names_in(KEY.directory(data_dir)) if not n.endswith(".tmp")] == ["data.parquet"]
    write_partition(data_dir, KEY, table("5"), {"USD": Decimal("5")})  # the next writer sweeps it
    assert [n for n in names_in(where) if n.endswith(".tmp")] == []
    assert read_partition(data_dir, KEY).column("BilledCost").to_pylist() == [Decimal("5")]


def test_a_concurrent_reader_sees_one_whole_version_at_a_time(data_dir: storage.Location) -> None:
    """A writer replaces one object with versions of different sizes while a reader reads and lists it
    in a loop: every read is byte for byte one of the written versions, and the listing never shows
    a second version."""
    target = storage.join(data_dir, "lake", "probe", "data.json")
    documents = {number: json.dumps({"version": number, "padding": "x" * (number * 40_000)}).encode() for number in range(12)}
    versions = {hashlib.sha256(document).hexdigest(): number for number, document in documents.items()}
    with atomic_file(target) as temporary:
        temporary.write_bytes(documents[0])
    stop = threading.Event()
    failures: list[BaseException] = []
    reads = [0]

    def write() -> None:
        try:
            for round_ in range(3):
                for number in range(1, 12) if round_ % 2 == 0 else range(11, 0, -1):
                    with atomic_file(target) as temporary:
                        temporary.write_bytes(documents[number])
                    before, waited = reads[0], time.monotonic()
                    while reads[0] < before + 2 and time.monotonic() - waited < 5:  # let the reader overlap the next write
                        time.sleep(0.001)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            data = storage.read_bytes(target)
            digest = hashlib.sha256(data).hexdigest()
            assert digest in versions, f"read {len(data)} bytes that are no written version"
            seen.add(versions[digest])
            reads[0] += 1
            listed = names_in(storage.parent(target))
            # Object storage never holds a temporary; locally they start with '.', which no lake glob matches.
            assert (listed if storage.is_remote(target) else [n for n in listed if not n.startswith(".")]) == ["data.json"]
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures, failures
    assert len(seen) >= 6, seen  # the reads overlapped many replacements
    assert json.loads(storage.read_bytes(target))["version"] == 11  # rounds: 1 to 11, 11 to 1, 1 to 11


def test_duckdb_reads_the_hive_layout_through_the_registered_filesystem(data_dir: storage.Location) -> None:
    written: dict[tuple[str, str], Decimal] = {}
    for account in ("aws-main", "aws-dev"):
        for period, amounts in (("2026-10", ["1.01", "2.02"]), ("2026-11", ["0.0000000001", "3.3"])):
            key = PartitionKey("aws", "cost_explorer", account, period)
            write_partition(data_dir, key, table(*amounts, x_AccountKey=account), {"USD": sum(map(Decimal, amounts), Decimal(0))})
            written[(account, period)] = sum(map(Decimal, amounts), Decimal(0))
    sql = (f"SELECT account, billing_period, sum(BilledCost), count(*) FROM read_parquet('{cost_daily_glob(data_dir)}', hive_partitioning = true) "
           f"GROUP BY ALL ORDER BY ALL")
    connection = duckdb.connect()
    try:
        storage.register_duckdb(connection, data_dir)
        storage.register_duckdb(connection, data_dir)  # twice is harmless
        rows = connection.execute(sql).fetchall()
        assert {(a, p): total for a, p, total, _ in rows} == written
        assert [count for *_, count in rows] == [2, 2, 2, 2]
        # A partition replaced by this process is read anew at once (the readers' metadata cache is dropped).
        key = PartitionKey("aws", "cost_explorer", "aws-dev", "2026-11")
        write_partition(data_dir, key, table("42.0000000001", "1", "1", x_AccountKey="aws-dev"), {"USD": Decimal("44.0000000001")})
        again = {(a, p): (total, count) for a, p, total, count in connection.execute(sql).fetchall()}
    finally:
        connection.close()
    assert again[("aws-dev", "2026-11")] == (Decimal("44.0000000001"), 3)
    assert again[("aws-main", "2026-11")] == (written[("aws-main", "2026-11")], 2)


def test_versions_tell_a_replaced_partition_and_listings_give_them(data_dir: storage.Location) -> None:
    """What a reader (the serving layer) compares to see that a partition changed: `info`'s version, or
    the same from one listing (`glob_info`), on every backend."""
    other = PartitionKey("aws", "cost_explorer", "aws-dev", "2026-11")
    write_partition(data_dir, KEY, table("1"), {"USD": Decimal("1")})
    write_partition(data_dir, other, table("2"), {"USD": Decimal("2")})
    first = storage.info(KEY.path(data_dir))
    assert first["size"] == len(storage.read_bytes(KEY.path(data_dir)))
    assert storage.info(KEY.path(data_dir))["version"] == first["version"]  # unchanged: the same version
    listed = dict(storage.glob_info(cost_daily_root(data_dir), "*/*/*/*/data.parquet"))
    assert sorted(map(str, listed)) == sorted([str(KEY.path(data_dir)), str(other.path(data_dir))])
    assert listed[KEY.path(data_dir)]["version"] == first["version"] and listed[KEY.path(data_dir)]["size"] == first["size"]
    write_partition(data_dir, KEY, table("1", "3"), {"USD": Decimal("4")})
    assert storage.info(KEY.path(data_dir))["version"] != first["version"]
    assert dict(storage.glob_info(cost_daily_root(data_dir), "*/*/*/*/data.parquet"))[KEY.path(data_dir)]["version"] != first["version"]
    with pytest.raises(FileNotFoundError):
        storage.info(PartitionKey("aws", "cost_explorer", "nobody", "2026-11").path(data_dir))


def test_duckdb_threads_reading_one_file_of_many_row_groups_get_the_right_bytes(data_dir: storage.Location) -> None:
    """DuckDB's threads share one handle per file and read it as seek, then read: each thread must read
    from its own position (a serving file of several row groups once read "only 17804 bytes returned")."""
    import pyarrow.parquet as pq

    rows = 120_000
    table = pa.table({"n": pa.array(range(rows), pa.int64()),
                      "amount": pa.array([Decimal(n % 997) / 100 for n in range(rows)], pa.decimal128(38, 10))})
    target = storage.join(data_dir, "lake", "serving", "many_row_groups.parquet")
    with storage.atomic_replace(target) as temporary:
        pq.write_table(table, temporary, row_group_size=5_000, compression="zstd")
    expected = (sum(range(rows)), sum(Decimal(n % 997) / 100 for n in range(rows)), rows)
    for _ in range(3):
        connection = duckdb.connect()
        try:
            storage.register_duckdb(connection, data_dir)
            connection.execute("SET threads = 4")
            assert connection.execute(f"SELECT sum(n), sum(amount), count(*) FROM read_parquet('{target}')").fetchone() == expected
        finally:
            connection.close()
