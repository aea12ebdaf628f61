"""FOCUS reader benchmark: the aws/focus pull (finops_pipeline.focus) vs a bare DuckDB read of the same files.

    python benchmarks/focus_benchmark.py                  # 1 million hourly FOCUS 1.2 rows, 4 Parquet files
    python benchmarks/focus_benchmark.py --rows 200000    # quicker
    python benchmarks/focus_benchmark.py --azure          # the azure/exports pull, downloading the run from Azurite

The month is read three ways: the AWS FOCUS reader, the GCP FOCUS path (the same rows as a BigQuery FOCUS
table in the stand-in) and a bare DuckDB read.

Generates one "FOCUS 1.2 with AWS columns" month (Parquet, DOUBLE costs, ms timestamps, a Tags map) with
its manifest in a local directory (the `local_dir` mode), then runs each contender in its own child
process and reports wall time, rows per second and the child's peak resident memory (ru_maxrss):

- reader: the real pull (manifest, value checks, exact DECIMAL source totals per currency, the daily
  rollup by every FOCUS column, tags to JSON) writing the partition file, as a refresh does.
- gcp: the gcp/focus pull through the real google-cloud-bigquery client against the BigQuery stand-in
  holding the same rows as a FOCUS export table (NUMERIC costs, Tags as key/value records, x_ExportTime);
  the load into the stand-in is not timed. The stand-in aggregates with DuckDB, so this measures the
  pipeline's side (REST round trips, the answer, the shared reader, the cost_daily rows), not Google's.
- reader with --azure: the same files uploaded to Azurite as one Cost Management export run (manifest.json
  with blobs[]), read by the azure/exports pull: list, manifest, download through azure-storage-blob, read.
- duckdb: one bare `SELECT BillingCurrency, sum(BilledCost) ... GROUP BY 1` over the same files (a read
  floor: no casts, no rollup, no write).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "sandbox"))

PERIOD = "2026-10"
EXPORT = "bench"


def generate(root: Path, rows: int, files: int) -> None:
    from finops_sandbox import focus as sf
    from finops_sandbox.cur import LocalBucket, cur2_manifest_key

    data = root / EXPORT / "data" / f"BILLING_PERIOD={PERIOD}"
    paths = sf.write_bulk(data, PERIOD, rows, files)
    manifest = {"executionId": "bench", "dataFiles": [f"s3://bench/{p.relative_to(root)}" for p in paths]}
    LocalBucket(root).put(cur2_manifest_key("", EXPORT, PERIOD), json.dumps(manifest).encode())


def upload_azure_run(root: Path) -> None:
    """The generated files as one run of a FocusCost export in Azurite (FINOPS_BENCH_AZURITE: its connection string)."""
    import os

    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(os.environ["FINOPS_BENCH_AZURITE"]).create_container("bench")
    folder = f"exports/{EXPORT}/20261001-20261031/202611010500/bench-run"
    blobs = []
    for path in sorted((root / EXPORT / "data").rglob("*.parquet")):
        with open(path, "rb") as data:
            container.upload_blob(f"{folder}/{path.name}", data, max_concurrency=4)
        blobs.append({"blobName": f"{folder}/{path.name}", "byteCount": path.stat().st_size})
    manifest = {"manifestVersion": "2024-04-01", "blobCount": len(blobs), "blobs": blobs,
                "exportConfig": {"exportName": EXPORT, "type": "FocusCost", "dataVersion": "1.2-preview"},
                "runInfo": {"runId": "bench-run", "submittedTime": "2026-11-01T05:00:00Z"}}
    container.upload_blob(f"{folder}/manifest.json", json.dumps(manifest).encode())


def run_azure_reader(root: Path, work: Path) -> dict:
    import os

    from finops_pipeline.config import parse_config
    from finops_pipeline.defs.azure.exports.pull import pull_exports

    account = parse_config({"accounts": [{"key": "bench", "provider": "azure", "source": "exports", "name": "Bench",
                                          "connected_at": "2026-09-01T00:00:00Z", "account_url": os.environ["FINOPS_BENCH_AZURITE_URL"],
                                          "container": "bench", "root_path": "exports", "export_name": EXPORT,
                                          "connection_string_env": "FINOPS_BENCH_AZURITE", "give_up_after_seconds": 600}]},
                           Path("finops.yaml")).accounts[0]
    pull = pull_exports(account, PERIOD, data_dir=work)
    target = work / "out.parquet"
    pull.produce(target)
    import pyarrow.parquet as pq

    return {"rows_out": pq.ParquetFile(target).metadata.num_rows, "totals": {k: str(v) for k, v in pull.source_totals.items()},
            "bytes_fetched": pull.metadata["bytes_fetched"]}


def run_reader(root: Path, work: Path) -> dict:
    from finops_pipeline.config import parse_config
    from finops_pipeline.defs.aws.focus.pull import pull_focus

    account = parse_config({"accounts": [{"key": "bench", "provider": "aws", "source": "focus", "name": "Bench",
                                          "connected_at": "2026-09-01T00:00:00Z", "account_id": "111122223333",
                                          "local_dir": str(root), "export_name": EXPORT}]}, Path("finops.yaml")).accounts[0]
    pull = pull_focus(account, PERIOD, data_dir=work)
    target = work / "out.parquet"
    pull.produce(target)
    import pyarrow.parquet as pq

    return {"rows_out": pq.ParquetFile(target).metadata.num_rows, "totals": {k: str(v) for k, v in pull.source_totals.items()}}


def run_duckdb(root: Path, work: Path) -> dict:
    import duckdb

    files = sorted(str(p) for p in (root / EXPORT / "data").rglob("*.parquet"))
    rows = duckdb.connect().execute(f"SELECT BillingCurrency, sum(BilledCost), count(*) FROM read_parquet({files}) GROUP BY 1").fetchall()
    return {"totals": {c: float(s) for c, s, _ in rows}}


GCP_BILLING = "0C1D2E-3F4A5B-6C7D8E"


def load_gcp(root: Path):
    """The month's files as a FOCUS export table of a fresh BigQuery stand-in (untimed)."""
    from finops_sandbox.gcp import BigQuerySandbox, focus_dataset_name, focus_table_name

    sandbox = BigQuerySandbox().start()
    files = sorted(str(p) for p in (root / EXPORT / "data").rglob("*.parquet"))
    sandbox.load_focus_parquet("bench-project", focus_dataset_name(GCP_BILLING), focus_table_name(GCP_BILLING), files,
                               billing_account_id=GCP_BILLING)
    return sandbox


def run_gcp(sandbox, work: Path) -> dict:
    from datetime import datetime, timezone

    from finops_pipeline.config import parse_config
    from finops_pipeline.defs.gcp.focus.pull import pull_gcp_focus
    from finops_sandbox.gcp import focus_dataset_name

    account = parse_config({"accounts": [{"key": "bench", "provider": "gcp", "source": "focus", "name": "Bench",
                                          "connected_at": "2026-09-01T00:00:00Z", "billing_account_id": GCP_BILLING,
                                          "project_id": "bench-project", "dataset": focus_dataset_name(GCP_BILLING),
                                          "api_endpoint": sandbox.url, "give_up_after_seconds": 600}]},
                           Path("finops.yaml")).accounts[0]
    pull = pull_gcp_focus(account, PERIOD, data_dir=work, now=datetime(2026, 11, 20, tzinfo=timezone.utc))
    return {"rows_out": pull.batches.num_rows, "totals": {k: str(v) for k, v in pull.source_totals.items()}}


def child(name: str, root: Path, work: Path) -> None:
    import duckdb  # noqa: F401  (imports are not the read: both contenders start timing with their modules loaded)

    if name == "reader":
        import finops_pipeline.config  # noqa: F401
        import finops_pipeline.defs.aws.focus.pull  # noqa: F401
    if name == "gcp":
        import finops_pipeline.defs.gcp.focus.pull  # noqa: F401

        sandbox = load_gcp(root)
        start = time.perf_counter()
        try:
            result = run_gcp(sandbox, work)
        finally:
            seconds = time.perf_counter() - start
            sandbox.stop()
        result["seconds"] = seconds
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # stand-in included
        print(json.dumps(result))
        return
    if name == "azure":
        import azure.storage.blob  # noqa: F401

        import finops_pipeline.config  # noqa: F401
        import finops_pipeline.defs.azure.exports.pull  # noqa: F401
    start = time.perf_counter()
    result = {"reader": run_reader, "azure": run_azure_reader, "duckdb": run_duckdb}[name](root, work)
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--azure", action="store_true", help="also read the month as an Azure export run from Azurite")
    parser.add_argument("--child")
    parser.add_argument("--root")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.child == "generate":
        generate(Path(args.root), args.rows, args.files)
        return
    if args.child == "upload":
        upload_azure_run(Path(args.root))
        return
    if args.child:
        child(args.child, Path(args.root), Path(args.work))
        return
    import contextlib
    import os

    azurite = contextlib.nullcontext()
    if args.azure:
        from finops_sandbox.azurite import running_azurite

        azurite = running_azurite()
    with tempfile.TemporaryDirectory() as directory, azurite as emulator:
        root, work = Path(directory) / "export", Path(directory) / "work"
        work.mkdir()
        started = time.perf_counter()
        # In a child: ru_maxrss survives exec, so a parent that generated the data would inflate every child's figure.
        subprocess.run([sys.executable, __file__, "--child", "generate", "--root", str(root), "--work", str(work),
                        "--rows", str(args.rows), "--files", str(args.files)], check=True)
        print(f"generated {args.rows:,} FOCUS 1.2 rows in {args.files} Parquet files in {time.perf_counter() - started:.1f} s")
        contenders = ["duckdb", "reader"]
        if emulator is not None:
            os.environ.update(FINOPS_BENCH_AZURITE=emulator.connection_string, FINOPS_BENCH_AZURITE_URL=emulator.account_url)
            subprocess.run([sys.executable, __file__, "--child", "upload", "--root", str(root), "--work", str(work)], check=True)
            contenders.append("azure")
        results = {}
        contenders.append("gcp")
        for name in contenders:
            output = subprocess.run([sys.executable, __file__, "--child", name, "--root", str(root), "--work", str(work)],
                                    check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(output.strip().splitlines()[-1])
        for name, result in results.items():
            rate = args.rows / result["seconds"]
            print(f"{name:7s} {result['seconds']:7.2f} s  {rate:>12,.0f} rows/s  peak RSS {result['peak_rss_mb']:.0f} MB  "
                  f"{'rows out ' + format(result['rows_out'], ',') if 'rows_out' in result else ''}")
        print(f"reader / duckdb time: {results['reader']['seconds'] / results['duckdb']['seconds']:.1f}x")
        if "azure" in results:
            print(f"azure (Azurite download + read) / duckdb time: {results['azure']['seconds'] / results['duckdb']['seconds']:.1f}x; "
                  f"totals equal the local reader's: {results['azure']['totals'] == results['reader']['totals']}")
        print(f"gcp / duckdb time: {results['gcp']['seconds'] / results['duckdb']['seconds']:.1f}x; source totals (exact): "
              f"reader {results['reader'].get('totals')}, gcp {results['gcp'].get('totals')}")


if __name__ == "__main__":
    main()
