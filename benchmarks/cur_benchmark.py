"""CUR rollup benchmark: our normalization vs plain pandas vs a bare DuckDB GROUP BY (a script, not a test).

    python benchmarks/cur_benchmark.py                 # 10 million line items (several minutes)
    python benchmarks/cur_benchmark.py --rows 1000000  # quicker
    python benchmarks/cur_benchmark.py --skip pandas   # leave a contender out

Generates one CUR 2.0 month (Parquet, map columns, DOUBLE amounts as AWS writes them) with a manifest
in a local directory, then runs each contender in its own child process and reports wall time,
line items per second and the child's peak resident memory (ru_maxrss), plus the ratios.

- ours: finops_pipeline's real pull (manifest, exact DECIMAL source totals, the FOCUS rollup) writing
  the partition file, exactly as a refresh does with `local_dir`.
- pandas: read the files with pandas, group the same keys (tags as JSON text), float sums, write Parquet.
- duckdb: one bare GROUP BY over the same files and keys (double sums, no FOCUS rules), COPY to Parquet.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run from a checkout: import this repository's finops_pipeline, not an installed copy.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PERIOD = "2026-10"
REPORT = "bench"
KEYS = ["line_item_usage_account_id", "line_item_product_code", "product_region_code", "line_item_resource_id",
        "line_item_line_item_type", "line_item_usage_type", "pricing_unit", "line_item_currency_code"]


def data_directory(root: Path) -> Path:
    return root / "exports" / REPORT / "data" / f"BILLING_PERIOD={PERIOD}"


def generate(root: Path, rows: int, files: int) -> list[Path]:
    from finops_sandbox.cur import cur2_manifest_key, write_bulk_cur2

    paths = write_bulk_cur2(data_directory(root), PERIOD, rows, files=files)
    manifest = root / cur2_manifest_key("exports", REPORT, PERIOD)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    keys = [str(p.relative_to(root)) for p in paths]
    manifest.write_text(json.dumps({"executionId": "bench", "dataFiles": [f"s3://bench-bucket/{k}" for k in keys]}))
    return paths


# --- contenders (each runs in a child process) --------------------------------------------------------

def run_ours(root: Path, out: Path) -> int:
    from finops_pipeline.config import parse_config
    from finops_pipeline.defs.aws.cur.pull import pull_cur

    config = parse_config({"accounts": [{
        "key": "bench", "provider": "aws", "source": "cur", "connected_at": "2026-01-01T00:00:00Z",
        "account_id": "111122223333", "local_dir": str(root), "prefix": "exports", "report_name": REPORT, "cur_version": "cur2",
    }]}, Path("benchmark.yaml"))
    pull = pull_cur(config.accounts[0], PERIOD)
    pull.produce(out)
    return pull.metadata["line_items"]


def run_pandas(root: Path, out: Path) -> int:
    import pandas as pd

    columns = KEYS + ["line_item_usage_start_date", "product", "resource_tags", "line_item_unblended_cost",
                      "pricing_public_on_demand_cost", "line_item_usage_amount"]
    frame = pd.concat([pd.read_parquet(p, columns=columns) for p in sorted(data_directory(root).glob("*.parquet"))],
                      ignore_index=True)
    frame["day"] = frame["line_item_usage_start_date"].dt.floor("D")
    frame["product_name"] = frame["product"].map(lambda m: dict(m).get("product_name"))
    frame["tags"] = frame["resource_tags"].map(lambda m: json.dumps(dict(sorted(m)), separators=(",", ":")) if len(m) else None)
    daily = (frame.groupby(["day", "product_name", "tags", *KEYS], dropna=False)
             .agg(billed=("line_item_unblended_cost", "sum"), list=("pricing_public_on_demand_cost", "sum"),
                  usage=("line_item_usage_amount", "sum"))
             .reset_index())
    daily.to_parquet(out)
    return len(frame)


def run_duckdb(root: Path, out: Path) -> int:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    files = str(data_directory(root) / "*.parquet")
    keys = ", ".join(KEYS)
    connection.execute(f"""
        COPY (SELECT CAST(line_item_usage_start_date AS DATE) AS day, product['product_name'] AS product_name, resource_tags, {keys},
                     sum(line_item_unblended_cost) AS billed, sum(pricing_public_on_demand_cost) AS list,
                     sum(line_item_usage_amount) AS usage
              FROM read_parquet('{files}') GROUP BY ALL)
        TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
    return connection.execute(f"SELECT count(*) FROM read_parquet('{files}')").fetchone()[0]


CONTENDERS = {"ours": run_ours, "pandas": run_pandas, "duckdb": run_duckdb}


WARM_IMPORTS = {"ours": ("finops_pipeline.defs.aws.cur.pull",), "pandas": ("pandas", "pyarrow.parquet"), "duckdb": ("duckdb",)}


def child(name: str, root: Path, out: Path) -> None:
    import importlib

    for module in WARM_IMPORTS[name]:  # time the work, not the interpreter loading libraries
        importlib.import_module(module)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    rows = CONTENDERS[name](root, out)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    # CPU of the work (all threads), like the wall time without the imports; the whole process's too.
    work_cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu_seconds": work_cpu,
                      "process_cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_mb": peak_mb,
                      "output_rows": _rows_of(out)}))


def _rows_of(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def measure(name: str, root: Path, workdir: Path) -> dict:
    out = workdir / f"out-{name}.parquet"
    completed = subprocess.run([sys.executable, __file__, "--child", name, "--data", str(root), "--out", str(out)],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{name} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="line items in the month (default 10 million)")
    parser.add_argument("--files", type=int, default=8, help="Parquet files in the delivery")
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temporary directory, removed after)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours and duckdb, interleaved; the median is reported")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(CONTENDERS), help="leave a contender out")
    parser.add_argument("--child", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cur-benchmark-"))
    try:
        root = workdir / "bucket"
        started = time.perf_counter()
        paths = generate(root, args.rows, args.files)
        size_mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"generated {args.rows:,} CUR 2.0 line items in {len(paths)} Parquet files ({size_mb:,.0f} MiB) "
              f"in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs")
        runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS if name not in args.skip}
        for attempt in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits all alike
            for name in runs:
                if name == "pandas" and attempt:
                    continue  # one pandas run is enough to see the gap, and it is the slow one
                r = measure(name, root, workdir)
                runs[name].append(r)
                print(f"  run {attempt + 1} {name:>6}: {r['seconds']:6.1f} s wall, {r['cpu_seconds']:6.1f} s CPU "
                      f"({r['process_cpu_seconds']:.1f} s with imports), peak {r['peak_mb']:,.0f} MiB", flush=True)
        results = {name: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for name, rs in runs.items()}  # median run
        print(f"\n{args.rows:,} line items, median of {args.repeat} run(s) (pandas: 1):")
        for name, r in results.items():
            print(f"{name:>7}: {r['seconds']:7.1f} s wall {r['cpu_seconds']:7.1f} s CPU {r['rows'] / r['seconds']:>12,.0f} rows/s  "
                  f"peak {r['peak_mb']:7,.0f} MiB  -> {r['output_rows']:,} daily rows")
        def median(name: str, key: str) -> float:
            values = sorted(r[key] for r in runs[name])
            return values[len(values) // 2]

        for name in runs:
            if len(runs[name]) > 1:
                print(f"{name:>7}: median {median(name, 'seconds'):.1f} s wall (best {min(r['seconds'] for r in runs[name]):.1f}), "
                      f"median {median(name, 'cpu_seconds'):.1f} s CPU (range {min(r['cpu_seconds'] for r in runs[name]):.1f} - "
                      f"{max(r['cpu_seconds'] for r in runs[name]):.1f})")
        if "ours" in results and "duckdb" in results:
            o, d = results["ours"], results["duckdb"]
            print(f"ours / bare duckdb: {o['seconds'] / d['seconds']:.2f}x wall, {o['cpu_seconds'] / d['cpu_seconds']:.2f}x CPU "
                  f"(median run); medians taken separately: {median('ours', 'seconds') / median('duckdb', 'seconds'):.2f}x wall, "
                  f"{median('ours', 'cpu_seconds') / median('duckdb', 'cpu_seconds'):.2f}x CPU; best runs: "
                  f"{min(r['seconds'] for r in runs['ours']) / min(r['seconds'] for r in runs['duckdb']):.2f}x wall, "
                  f"{min(r['cpu_seconds'] for r in runs['ours']) / min(r['cpu_seconds'] for r in runs['duckdb']):.2f}x CPU "
                  f"(target <= 1.5x)")
        if "ours" in results and "pandas" in results:
            o, p = results["ours"], results["pandas"]
            print(f"pandas / ours: {p['seconds'] / o['seconds']:.1f}x wall, {p['cpu_seconds'] / o['cpu_seconds']:.1f}x CPU (target >= 5x)")
        if "ours" in results:
            print(f"ours peak memory: {results['ours']['peak_mb']:,.0f} MiB (target < 1536 MiB)")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
