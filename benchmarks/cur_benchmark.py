"""CUR rollup benchmark: our normalization vs plain pandas vs a bare DuckDB GROUP BY (a script, not a test).

    python benchmarks/cur_benchmark.py                          # 10 million real-shaped CUR 2.0 Parquet line items
    python benchmarks/cur_benchmark.py --rows 1000000           # quicker
    python benchmarks/cur_benchmark.py --format legacy-csv-gz   # legacy CUR, gzip CSV (also cur2-csv-gz, legacy-parquet)
    python benchmarks/cur_benchmark.py --shape simple           # the old generator: one description, one tag key
    python benchmarks/cur_benchmark.py --workdir /tmp/cur-40m --skip pandas --skip duckdb --repeat 1 --rows 40000000
                                                                # peak memory at 40 million (the data is kept and reused)

Generates one month (`finops_sandbox.cur.write_bulk`: the format, the shape) with a manifest in a local
directory (kept and reused when --workdir names one that has it), then runs each contender in its own
child process and reports wall time, CPU time and the child's peak resident memory (ru_maxrss), plus the ratios.

- ours: finops_pipeline's real pull (manifest, exact DECIMAL source totals, the FOCUS rollup) writing
  the partition file, exactly as a refresh does with `local_dir`.
- pandas (CUR 2.0 Parquet only): read the files with pandas, group the same keys (tags as JSON text), float sums.
- duckdb, the bare scan: one GROUP BY over the same files, by the same grain the partition has (day,
  product name, tags and every grain column the files have), summing the same cost columns (as DOUBLE; CSV
  with DuckDB's own type detection), no FOCUS rules, COPY to Parquet; in a DuckDB session with the same
  memory limit, spill directory and threads as ours.
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
# pandas' keys (the grain columns of the simple shape)
KEYS = ["line_item_usage_account_id", "line_item_product_code", "product_region_code", "line_item_resource_id",
        "line_item_line_item_type", "line_item_usage_type", "pricing_unit", "line_item_currency_code"]
# The bare scan's grain: every canonical column behind normalize.GRAIN (plus the day, the product name and the tags)
GRAIN_COLUMNS = ("line_item_currency_code", "bill_payer_account_id", "bill_payer_account_name", "line_item_usage_account_id",
                 "line_item_usage_account_name", "line_item_product_code", "product_product_name", "product_region_code",
                 "product_region", "line_item_resource_id", "line_item_line_item_type", "line_item_usage_type", "product_sku",
                 "pricing_unit", "bill_invoicing_entity", "line_item_legal_entity", "bill_invoice_id", "line_item_availability_zone",
                 "pricing_rate_code", "pricing_term", "pricing_public_on_demand_rate", "savings_plan_savings_plan_a_r_n",
                 "reservation_reservation_a_r_n", "line_item_unblended_rate", "capacity_reservation_capacity_reservation_arn",
                 "capacity_reservation_capacity_reservation_status")
COST_COLUMNS = ("line_item_unblended_cost", "line_item_net_unblended_cost", "pricing_public_on_demand_cost", "line_item_usage_amount",
                "savings_plan_savings_plan_effective_cost", "reservation_effective_cost")


def data_directory(root: Path, fmt: str = "cur2-parquet") -> Path:
    if fmt.startswith("legacy"):
        return root / "exports" / REPORT / "20261001-20261101" / REPORT
    return root / "exports" / REPORT / "data" / f"BILLING_PERIOD={PERIOD}"


def data_files(root: Path, fmt: str) -> list[Path]:
    return sorted(p for p in data_directory(root, fmt).iterdir() if p.name.startswith("bench-"))


def generate(root: Path, rows: int, files: int, fmt: str, shape: str) -> list[Path]:
    from finops_sandbox.cur import bulk_manifest, write_bulk

    stamp = root / "generated.json"
    wanted = {"rows": rows, "files": files, "format": fmt, "shape": shape}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return data_files(root, fmt)  # generated before with the same settings: reuse
    paths = write_bulk(data_directory(root, fmt), PERIOD, rows, fmt=fmt, shape=shape, files=files)
    bulk_manifest(root, "exports", REPORT, PERIOD, fmt, paths)
    stamp.write_text(json.dumps(wanted))
    return paths


# --- contenders (each runs in a child process) --------------------------------------------------------

def run_ours(root: Path, out: Path, fmt: str) -> int:
    from finops_pipeline.config import parse_config
    from finops_pipeline.defs.aws.cur.pull import pull_cur

    config = parse_config({"accounts": [{
        "key": "bench", "provider": "aws", "source": "cur", "connected_at": "2026-01-01T00:00:00Z",
        "account_id": "111122223333", "local_dir": str(root), "prefix": "exports", "report_name": REPORT,
        "cur_version": "legacy" if fmt.startswith("legacy") else "cur2",
    }]}, Path("benchmark.yaml"))
    pull = pull_cur(config.accounts[0], PERIOD)
    pull.produce(out)
    return pull.metadata["line_items"]


def run_pandas(root: Path, out: Path, fmt: str) -> int:
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


def bare_query(root: Path, fmt: str) -> str:
    """The bare scan's statement: built before the clock starts (it reads only the headers)."""
    from finops_pipeline.defs.aws.cur import normalize

    paths = data_files(root, fmt)
    layout = normalize.layout_of(normalize.CurFile(paths[0].name, paths[0]))
    files = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    source = f"read_parquet({files})" if layout.kind == "parquet" else f"read_csv({files}, header = true)"
    raw = {canonical: f'"{name}"' for canonical, name in layout.columns.items()}
    start = raw["line_item_usage_start_date"]
    keys = [f"CAST({start} AS DATE) AS day"] + [raw[c] for c in GRAIN_COLUMNS if c in raw]
    if layout.product_map:
        keys.append(f"\"{layout.product_map}\"['product_name'] AS product_name" if layout.kind == "parquet"
                    else f"json_extract_string(\"{layout.product_map}\", '$.product_name') AS product_name")
    keys += [f'"{layout.tags_map}"'] if layout.tags_map else [f'"{name}"' for _, name in layout.tag_columns]
    sums = [f"sum(CAST({raw[c]} AS DOUBLE))" for c in COST_COLUMNS if c in raw]
    return f"SELECT {', '.join(keys)}, {', '.join(sums)} FROM {source} GROUP BY ALL"


def run_duckdb(root: Path, out: Path, fmt: str, query: str) -> int:
    import tempfile as tf

    from finops_pipeline.defs.aws.cur.pull import memory_limit
    from finops_pipeline.workdir import spilling_duckdb

    with tf.TemporaryDirectory() as spill:  # the same session settings as ours
        connection = spilling_duckdb(Path(spill), memory_limit())
        connection.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        connection.close()
    return 0  # not counted (a count would read CSV files again); the report uses ours' count


def run_duckdb_before(root: Path, out: Path, fmt: str) -> int:
    """The bare scan as this benchmark defined it before issue 15: CUR 2.0 Parquet, 8 of the grain columns
    (enough for the simple shape, where the others are constant), three sums, DuckDB's default settings (no
    memory limit below the machine's). Kept to compare with the figures measured that way."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    files = str(data_directory(root, fmt) / "*.parquet")
    connection.execute(f"""
        COPY (SELECT CAST(line_item_usage_start_date AS DATE) AS day, product['product_name'] AS product_name, resource_tags,
                     {", ".join(KEYS)}, sum(line_item_unblended_cost) AS billed, sum(pricing_public_on_demand_cost) AS list,
                     sum(line_item_usage_amount) AS usage
              FROM read_parquet('{files}') GROUP BY ALL)
        TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
    return 0


CONTENDERS = {"ours": run_ours, "pandas": run_pandas, "duckdb": run_duckdb, "duckdb-before": run_duckdb_before}


WARM_IMPORTS = {"ours": ("finops_pipeline.defs.aws.cur.pull",), "pandas": ("pandas", "pyarrow.parquet"),
                "duckdb": ("finops_pipeline.defs.aws.cur.pull",), "duckdb-before": ("duckdb",)}


def child(name: str, root: Path, out: Path, fmt: str) -> None:
    import importlib

    for module in WARM_IMPORTS[name]:  # time the work, not the interpreter loading libraries
        importlib.import_module(module)
    if name == "ours":  # parsing the config imports every source's module (0.2 s, the HTTP clients' libraries): not the rollup
        importlib.import_module("finops_pipeline.sources").all_sources()
    extra = (bare_query(root, fmt),) if name == "duckdb" else ()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    rows = CONTENDERS[name](root, out, fmt, *extra)
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


def measure(name: str, root: Path, workdir: Path, fmt: str) -> dict:
    out = workdir / f"out-{name}.parquet"
    completed = subprocess.run([sys.executable, __file__, "--child", name, "--data", str(root), "--out", str(out), "--format", fmt],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{name} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="line items in the month (default 10 million)")
    parser.add_argument("--files", type=int, default=8, help="files in the delivery")
    parser.add_argument("--format", default="cur2-parquet", choices=("cur2-parquet", "cur2-csv-gz", "legacy-parquet", "legacy-csv-gz"))
    parser.add_argument("--shape", default="real", choices=("real", "simple"),
                        help="real: varying descriptions, 12 tag keys, untagged resources (default); simple: the old generator")
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temporary directory, removed after)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours and duckdb, interleaved; the median is reported")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(CONTENDERS), help="leave a contender out")
    parser.add_argument("--child", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out, args.format)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cur-benchmark-"))
    try:
        root = workdir / "bucket"
        started = time.perf_counter()
        paths = generate(root, args.rows, args.files, args.format, args.shape)
        size_mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{args.rows:,} {args.shape}-shaped line items, {args.format}, {len(paths)} files ({size_mb:,.0f} MiB), ready after "
              f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        skip = set(args.skip) | ({"pandas", "duckdb-before"} if args.format != "cur2-parquet" else set())
        runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS if name not in skip}
        for attempt in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits all alike
            for name in runs:
                if name == "pandas" and attempt:
                    continue  # one pandas run is enough to see the gap, and it is the slow one
                r = measure(name, root, workdir, args.format)
                runs[name].append(r)
                print(f"  run {attempt + 1} {name:>6}: {r['seconds']:6.1f} s wall, {r['cpu_seconds']:6.1f} s CPU "
                      f"({r['process_cpu_seconds']:.1f} s with imports), peak {r['peak_mb']:,.0f} MiB", flush=True)
        results = {name: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for name, rs in runs.items()}  # median run
        print(f"\n{args.rows:,} line items, median of {args.repeat} run(s) (pandas: 1):")
        for name, r in results.items():
            print(f"{name:>7}: {r['seconds']:7.1f} s wall {r['cpu_seconds']:7.1f} s CPU {args.rows / r['seconds']:>12,.0f} rows/s  "
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
                  f"(target <= 1.2x); load average now {os.getloadavg()[0]:.1f}")
        if "ours" in results and "duckdb-before" in results:
            o, d = results["ours"], results["duckdb-before"]
            print(f"ours / the bare scan as defined before (8 keys, no memory limit): {o['seconds'] / d['seconds']:.2f}x wall, "
                  f"{o['cpu_seconds'] / d['cpu_seconds']:.2f}x CPU")
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
