"""The lake at scale: catalog, marts and queries at 1,000 and 10,000 partitions (a script, not a test).

Method. The demo's partition files (run here with `finops-pipeline demo` on the stand-ins unless
--demo-data names a data directory that holds them) are replicated to N partitions over 12 billing
periods, each copy with its own account key (x_AccountKey) and its days moved into its billing period,
so the files keep the demo's realistic sizes and contents. On each lake:

1. a first build (compaction of every period, catalog, all ten marts), then a one-month refresh: one
   partition of the latest month rewritten through lake.write_partition, then the catalog and all the
   marts again, each step timed (this is what every scheduled refresh costs);
2. a month-to-date summary and a 30-day trend, over the catalog's `cost_daily` (a read-only session,
   as people and dashboards use it) against the same query over one Parquet file holding the same
   rows sorted by day (the best case for a reader), read directly and through a view; each with a
   `ChargePeriodStart::DATE` filter (which DuckDB does not push through a view) and with filters it
   does push; best and median of --repeat runs, ratio in the same run, row groups each scan read;
3. the definitions load time (benchmarks/definitions_load.py), and, with --pulls, the pulls benchmark
   (benchmarks/pulls.py) next to it.

    python benchmarks/scale.py                          # 1,000 and 10,000 partitions
    python benchmarks/scale.py --partitions 10000 --demo-data /tmp/demo/data --keep /tmp/lake10k
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "sandbox")]

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from finops_pipeline import serving  # noqa: E402
from finops_pipeline.catalog import MART_TABLES, build_catalog, catalog_path  # noqa: E402
from finops_pipeline.config import FinopsConfig, parse_config  # noqa: E402
from finops_pipeline.lake import PartitionKey, list_partitions, read_partition_totals, write_partition  # noqa: E402
from finops_pipeline.marts import build_marts  # noqa: E402
from finops_pipeline.schema import month_bounds  # noqa: E402

MONTHS = 12
# The queries, as people write them: over the catalog's cost_daily, then over one file. `{today}` is the
# last day with data (a month to date on the 1st would be empty).
MTD_SQL = """SELECT x_Provider, BillingCurrency, sum(BilledCost) AS billed FROM {source}
             WHERE ChargePeriodStart::DATE >= date_trunc('month', DATE '{today}') AND ChargePeriodStart::DATE <= DATE '{today}'
             GROUP BY ALL ORDER BY ALL"""
TREND_SQL = """SELECT x_Provider, BillingCurrency, ChargePeriodStart::DATE AS day, sum(BilledCost) AS billed FROM {source}
               WHERE ChargePeriodStart::DATE BETWEEN DATE '{today}' - 29 AND DATE '{today}'
               GROUP BY ALL ORDER BY ALL"""
MTD_TS_SQL = """SELECT x_Provider, BillingCurrency, sum(BilledCost) AS billed FROM {source}
                WHERE ChargePeriodStart >= date_trunc('month', DATE '{today}') AND ChargePeriodStart < DATE '{today}' + 1
                GROUP BY ALL ORDER BY ALL"""
MTD_TRUNC_SQL = """SELECT x_Provider, BillingCurrency, sum(BilledCost) AS billed FROM {source}
                   WHERE date_trunc('month', ChargePeriodStart) = date_trunc('month', DATE '{today}') AND ChargePeriodStart < DATE '{today}' + 1
                   GROUP BY ALL ORDER BY ALL"""
TREND_TS_SQL = """SELECT x_Provider, BillingCurrency, ChargePeriodStart::DATE AS day, sum(BilledCost) AS billed FROM {source}
                  WHERE ChargePeriodStart >= DATE '{today}' - 29 AND ChargePeriodStart < DATE '{today}' + 1
                  GROUP BY ALL ORDER BY ALL"""
QUERIES = (("month to date, ::DATE filter", MTD_SQL), ("30-day trend, ::DATE filter", TREND_SQL),
           ("month to date, on ChargePeriodStart", MTD_TS_SQL), ("month to date, date_trunc('month')", MTD_TRUNC_SQL),
           ("30-day trend, on ChargePeriodStart", TREND_TS_SQL))


def demo_data(directory: Path) -> Path:
    """Run the demo (the pipeline through Dagster on the stand-ins) into `directory`; return its data dir."""
    data = directory / "data"
    env = {**os.environ, "FINOPS_DATA_DIR": str(data), "FINOPS_SANDBOX_PORT": "0", "DAGSTER_HOME": str(directory / "dagster_home"),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "sandbox")])}
    (directory / "dagster_home").mkdir(parents=True, exist_ok=True)
    print(f"running the demo into {data} (a few minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "finops_pipeline.cli", "demo"], env=env, cwd=directory, check=True, capture_output=True)
    return data


def _shift(table: pa.Table, column: str, delta: timedelta) -> pa.Table:
    index = table.schema.get_field_index(column)
    shifted = pc.add(table.column(column), pa.scalar(delta, pa.duration("us")))
    return table.set_column(index, table.schema.field(index), shifted.cast(table.schema.field(index).type))


def _month(period: str, back: int) -> str:
    year, month = map(int, period.split("-"))
    month -= back
    while month < 1:
        year, month = year - 1, month + 12
    return f"{year:04d}-{month:02d}"


def replicate(templates_dir: Path, target: Path, partitions: int) -> tuple[list[PartitionKey], date]:
    """Copy the template lake's files to `partitions` distinct (account, period) partitions; returns
    them and the 'today' of the copy (the day after the newest day)."""
    templates = [(key, pq.read_table(path), pq.read_schema(path).metadata) for key, path in list_partitions(templates_dir)]
    latest = max(key.billing_period for key, *_ in templates)
    keys = []
    for index in range(partitions):
        clone, back = divmod(index, MONTHS)
        key, table, metadata = templates[clone % len(templates)]
        period = _month(latest, back)
        start, end = month_bounds(period)
        template_start, _ = month_bounds(key.billing_period)
        table = _shift(_shift(table, "ChargePeriodStart", start - template_start), "ChargePeriodEnd", start - template_start)
        for column, value in (("BillingPeriodStart", start), ("BillingPeriodEnd", end), ("x_AccountKey", f"{key.account}-{clone:05d}")):
            field_index = table.schema.get_field_index(column)
            table = table.set_column(field_index, table.schema.field(field_index), pa.array([value] * table.num_rows, table.schema.field(field_index).type))
        new_key = PartitionKey(key.provider, key.source, f"{key.account}-{clone:05d}", period)
        path = new_key.path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(metadata), path, compression="zstd")
        keys.append(new_key)
    return keys, template_today(templates_dir)


def template_today(templates_dir: Path) -> date:
    """The day after the newest day of the demo's data: 'today' for the marts."""
    days = [pc.max(pq.read_table(path, columns=["ChargePeriodStart"]).column(0)).as_py() for _, path in list_partitions(templates_dir)]
    return max(day for day in days if day is not None).date() + timedelta(days=1)


def config_for(keys: list[PartitionKey]) -> FinopsConfig:
    """A registry with every account of the lake (as Cost Explorer entries: the status mart needs only
    the key and when it was connected), so billing_connection_status has one row per account."""
    accounts = sorted({key.account for key in keys})
    rows = [{"key": a, "provider": "aws", "source": "cost_explorer", "connected_at": "2025-01-01T00:00:00Z", "account_id": "111111111111"}
            for a in accounts]
    return parse_config({"accounts": rows}, Path("finops.yaml"))


def timed(function, *args, **kwargs) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


class Clock:
    """Wall time and this process's CPU time (all its threads, DuckDB's included). On a shared machine
    the wall time grows with the others' load; CPU time much less: with 2 cores, an idle machine
    would take between CPU/2 and CPU seconds of wall time."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.2f} s wall, {self.cpu:.2f} s CPU"


def interleaved(runs: list[tuple[duckdb.DuckDBPyConnection, str]], repeat: int) -> list[list[float]]:
    """Each query `repeat` times, taking turns (so a burst of load from other processes hits both)."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for index, (connection, sql) in enumerate(runs):
            start = time.perf_counter()
            connection.execute(sql).fetchall()
            times[index].append(time.perf_counter() - start)
    return times


def scanned(connection: duckdb.DuckDBPyConnection, sql: str) -> str:
    """'[row groups read / row groups]' of the query's Parquet scan, from DuckDB's profile (EXPLAIN ANALYZE)."""
    profile = json.loads(connection.execute(f"EXPLAIN (ANALYZE, FORMAT json) {sql}").fetchall()[0][1])
    operators = list(profile["operator"])
    while operators:
        operator = operators.pop()
        if operator["type"] == "TABLE_SCAN":
            return f"[{operator['row_groups_scanned']}/{operator['total_row_groups_to_scan']}]"
        operators.extend(operator.get("children", []))
    return "[?]"


def measure(lake: Path, keys: list[PartitionKey], today: date, repeat: int, refreshes: int) -> None:
    config = config_for(keys)
    now = datetime.combine(today, dtime(6), tzinfo=timezone.utc)
    rows = sum(pq.ParquetFile(p).metadata.num_rows for _, p in list_partitions(lake))
    print(f"\n== {len(keys):,} partitions, {rows:,} rows, {MONTHS} billing periods, today {today} ==")

    with Clock() as first:
        result = serving.refresh(lake)
    with Clock() as catalog_first:
        build_catalog(lake, result.state)
    with Clock() as marts_first:
        build_marts(lake, config, now)
    print(f"first build (or the first run of a day, when the lake was kept): compaction of {len(result.rebuilt)} periods {first}; "
          f"catalog {catalog_first}; all {len(MART_TABLES)} marts {marts_first}")

    # One-month refreshes: one partition of the latest month replaced, as a pull does it, then what a
    # run does after its pulls. Several, each another account, since the machine's load varies.
    latest = sorted((k for k in keys if k.billing_period == max(keys, key=lambda k: k.billing_period).billing_period), key=lambda k: k.account)
    walls, cpus = [], []
    for key in latest[:refreshes]:
        table = pq.read_table(key.path(lake))
        write_partition(lake, key, table, read_partition_totals(key.path(lake)))
        with Clock() as total:
            with Clock() as compaction:
                result = serving.refresh(lake)
            with Clock() as catalog:
                build_catalog(lake, result.state)
            per_mart: dict[str, float] = {}
            with Clock() as marts:
                build_marts(lake, config, now, timings=per_mart)
        walls.append(total.wall)
        cpus.append(total.cpu)
        load = os.getloadavg()[0]
        print(f"after a one-month refresh ({key.billing_period}, {key.account}; load average {load:.1f}): serving {compaction} "
              f"(recompacted {result.rebuilt}); catalog {catalog}; all marts {marts}; total {total}")
        print("  wall: " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in per_mart.items()))
    print(f"catalog and all marts after a one-month refresh: wall best {min(walls):.2f} s, median {statistics.median(walls):.2f} s; "
          f"CPU best {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s")

    with tempfile.TemporaryDirectory(dir=lake) as scratch:
        one_file = Path(scratch) / "all.parquet"
        writer = duckdb.connect()
        files = ", ".join(repr(str(p)) for p in result.state.files())
        writer.execute(f"COPY (SELECT * FROM read_parquet([{files}]) ORDER BY ChargePeriodStart, x_Provider, x_AccountKey) "
                       f"TO '{one_file}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {serving.ROW_GROUP_ROWS})")
        writer.close()
        catalog_session = duckdb.connect(str(catalog_path(lake)), read_only=True)
        file_session = duckdb.connect()
        file_session.execute(f"CREATE VIEW one_file AS SELECT * FROM read_parquet('{one_file}')")
        print(f"queries as of {today - timedelta(days=1)}, best of {repeat} (median), the sides taking turns; 'one file' is the same "
              f"rows in one Parquet file sorted by day; [row groups read / row groups]:")
        for name, sql in QUERIES:
            day = today - timedelta(days=1)
            on_catalog = sql.format(source="cost_daily", today=day)
            on_file = sql.format(source=f"read_parquet('{one_file}')", today=day)
            on_file_view = sql.format(source="one_file", today=day)
            same = catalog_session.execute(on_catalog).fetchall() == file_session.execute(on_file).fetchall()
            catalog_times, file_times, view_times = interleaved(
                [(catalog_session, on_catalog), (file_session, on_file), (file_session, on_file_view)], repeat)

            def ms(times: list[float]) -> str:
                return f"{min(times) * 1000:6.1f} ms ({statistics.median(times) * 1000:6.1f})"

            print(f"  {name:36s} catalog {ms(catalog_times)} {scanned(catalog_session, on_catalog)}; "
                  f"one file read_parquet(...) {ms(file_times)} {scanned(file_session, on_file)}: {min(catalog_times) / min(file_times):.2f}x; "
                  f"one file through a view {ms(view_times)} {scanned(file_session, on_file_view)}: "
                  f"{min(catalog_times) / min(view_times):.2f}x (same result: {same}; load {os.getloadavg()[0]:.1f})", flush=True)
        catalog_session.close()
        file_session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--demo-data", type=Path, help="a data directory the demo wrote (default: run the demo)")
    parser.add_argument("--keep", type=Path, help="build the lakes here and keep them (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=15, help="runs per query, the two sides taking turns (best and median printed)")
    parser.add_argument("--refreshes", type=int, default=3, help="one-month refreshes measured (each another account)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: measure a lake kept from an earlier run instead of replicating")
    parser.add_argument("--no-definitions", action="store_true", help="skip the definitions load time")
    parser.add_argument("--pulls", action="store_true", help="also run benchmarks/pulls.py (concurrent pulls) when present")
    args = parser.parse_args()

    load = os.getloadavg()
    print(f"{sys.executable}; {os.cpu_count()} cores; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    root = args.keep or Path(tempfile.mkdtemp(prefix="finops-scale-"))
    try:
        templates = args.demo_data or demo_data(root / "demo")
        for count in args.partitions:
            lake = root / f"lake-{count}"
            if args.reuse and len(kept := list_partitions(lake)) == count:
                keys, today = [key for key, _ in kept], template_today(templates)
                print(f"\nreusing the lake of {count:,} partitions in {lake} (and its serving layer and tables)")
            else:
                shutil.rmtree(lake, ignore_errors=True)
                seconds, (keys, today) = timed(replicate, templates, lake, count)
                print(f"\nreplicated {len(list_partitions(templates))} demo partition files to {count:,} in {seconds:.1f} s ({lake})")
            measure(lake, keys, today, args.repeat, args.refreshes)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if not args.no_definitions:
        print("\n== definitions load (benchmarks/definitions_load.py --runs 3) ==", flush=True)
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "definitions_load.py"), "--runs", "3", "--top", "5"], check=False)
    pulls = REPO / "benchmarks" / "pulls.py"
    if args.pulls:
        if pulls.exists():
            print("\n== pulls (benchmarks/pulls.py) ==", flush=True)
            subprocess.run([sys.executable, str(pulls)], check=False)
        else:
            print(f"\n{pulls} is not here yet: run it next to this one when it is.")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
