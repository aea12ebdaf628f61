"""Readers never fail while the lake and the catalog are rewritten; a dead writer's temporaries go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from finops_pipeline.catalog import build_catalog, catalog_path
from finops_pipeline.lake import PartitionKey, atomic_file, mart_path, temporary_name, write_partition, write_table
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.test_schema import row

KEYS = [PartitionKey("aws", "cost_explorer", f"acct-{i}", "2026-11") for i in range(4)]

READER = textwrap.dedent("""
    import duckdb, json, sys, time
    catalog, stop, out, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    import os
    seen, errors, queries = {}, [], 0
    SQL = "SELECT (SELECT coalesce(sum(BilledCost), 0) FROM cost_daily)::VARCHAR, (SELECT total FROM provider_cost_summary)::VARCHAR"
    # One process per mode: DuckDB shares one open database among the connections of a process, so a
    # "fresh" connection beside a long-lived one would reuse its catalog.
    long_lived = duckdb.connect(catalog, read_only=True) if mode == "long" else None
    while not os.path.exists(stop):
        for fresh in [mode == "fresh"]:
            try:
                connection = duckdb.connect(catalog, read_only=True) if fresh else long_lived
                state = connection.execute(SQL).fetchone()
                if fresh:
                    connection.close()
                seen[repr(state)] = seen.get(repr(state), 0) + 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            queries += 1
    json.dump({"queries": queries, "errors": errors, "seen": seen}, open(out, "w"))
""")


def _write_state(data_dir: Path, step: int) -> str:
    """One consistent state: every partition's amount and the mart's total agree on `step`."""
    amount = Decimal(step)
    for key in KEYS:
        write_partition(data_dir, key, rows_to_table([row(BilledCost=str(amount), x_AccountKey=key.account)]), {"USD": amount})
    write_table(mart_path(data_dir, "provider_cost_summary"), pa.table({"total": pa.array([amount * len(KEYS)], pa.decimal128(38, 10))}))
    build_catalog(data_dir)
    return repr((str((amount * len(KEYS)).quantize(Decimal("1.0000000000"))), str((amount * len(KEYS)).quantize(Decimal("1.0000000000")))))


def test_readers_see_no_error_and_only_consistent_states(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    consistent = {_write_state(data_dir, 1)}
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    readers = {mode: subprocess.Popen([sys.executable, "-c", READER, str(catalog_path(data_dir)), str(stop), str(out) + mode, mode])
               for mode in ("fresh", "long")}
    try:
        time.sleep(1.5)
        for step in range(2, 42):  # 40 refreshes: every partition, the mart and the catalog replaced each time
            consistent.add(_write_state(data_dir, step))
            time.sleep(0.05)
    finally:
        stop.touch()
        for reader in readers.values():
            reader.wait(60)
    for mode in readers:
        report = json.loads(Path(str(out) + mode).read_text())
        print(f"{mode} reader: {report['queries']} queries, {len(report['errors'])} errors, {len(report['seen'])} states seen")
        assert report["queries"] > 50
        assert not report["errors"], report["errors"][:5]
        assert set(report["seen"]) <= consistent, set(report["seen"]) - consistent
        assert len(report["seen"]) > (5 if mode == "fresh" else 0)


def test_dead_writers_temporaries_are_removed_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "data.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    ours = temporary_name(target.name)
    dead_name = ours.replace(f".{os.getpid()}.", f".{dead_pid}.")
    leftovers = [tmp_path / dead_name, tmp_path / (dead_name + ".wal"), tmp_path / ".finops.duckdb.0123abcd.tmp"]
    for path in leftovers:
        path.write_bytes(b"")
    os.utime(leftovers[2], (time.time() - 2 * 86400,) * 2)  # an old-style name, a day old
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_name = tmp_path / ours.replace(f".{os.getpid()}.", f".{live.pid}.")
        live_name.write_bytes(b"")
        own = tmp_path / temporary_name(target.name)
        own.write_bytes(b"")
        with atomic_file(target) as temporary:
            temporary.write_bytes(b"new")
        assert target.read_bytes() == b"new"
        assert not any(p.exists() for p in leftovers)
        assert live_name.exists() and own.exists()  # a live writer's, and this process's own
    finally:
        live.kill()
        live.wait()
