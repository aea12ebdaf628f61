"""The lake on each storage backend: partition writes, listing, whole reads, and DuckDB scans through the
registered fsspec filesystem, local directory vs S3 (moto's server), Azure Blob (Azurite) and GCS
(gcp-storage-emulator), all on 127.0.0.1 (a script, not a test).

    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/lake_storage.py                       # 20 accounts x 3 months x 2,000 rows
    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/lake_storage.py --accounts 50 --rows 5000
    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/lake_storage.py --backends local,s3     # without Azurite (make setup installs it)

The emulators are local processes (moto and the GCS emulator in Python, Azurite in Node.js), so the
remote figures show the cost of the client path and the protocol round trips, not a cloud's latency
or bandwidth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from finops_pipeline import storage  # noqa: E402
from finops_pipeline.lake import PartitionKey, cost_daily_glob, list_partitions, read_partition, write_partition  # noqa: E402
from finops_pipeline.schema import rows_to_table  # noqa: E402
from finops_pipeline_tests.test_schema import row  # noqa: E402

PERIODS = ("2026-09", "2026-10", "2026-11")


def base_table(rows: int) -> pa.Table:
    return rows_to_table([row(BilledCost=f"{(i % 997) / 100 + 0.0000000001:.10f}", ServiceName=f"svc-{i % 40}") for i in range(rows)])


@contextmanager
def backend(name: str, scratch: Path) -> Iterator[storage.Location]:
    """A data directory on `name`, with its server started here and stopped after."""
    os.environ["FINOPS_LAKE_STAGING_DIR"] = str(scratch / "staging")
    storage.reset_clients()
    if name == "local":
        yield scratch / "local"
    elif name == "s3":
        import boto3

        from finops_sandbox.aws import MotoSandbox

        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        server = MotoSandbox().start()
        try:
            os.environ["FINOPS_LAKE_S3_ENDPOINT"] = server.url
            boto3.client("s3", endpoint_url=server.url, region_name="us-east-1").create_bucket(Bucket="bench")
            yield "s3://bench/data"
        finally:
            server.stop()
    elif name == "azure":
        from azure.storage.blob import BlobServiceClient

        from finops_sandbox.azurite import Azurite

        server = Azurite().start()
        try:
            os.environ["AZURE_STORAGE_CONNECTION_STRING"] = server.connection_string
            with BlobServiceClient.from_connection_string(server.connection_string) as client:
                client.create_container("bench")
            yield "az://bench/data"
        finally:
            server.stop()
    elif name == "gcs":
        from gcp_storage_emulator.server import create_server

        server = create_server("127.0.0.1", 0, in_memory=True)
        server.start()
        try:
            os.environ["FINOPS_LAKE_GCS_ENDPOINT"] = f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
            fs, _ = storage.filesystem("gs://bench")
            fs.mkdir("bench")
            yield "gs://bench/data"
        finally:
            server.stop()
    else:
        raise SystemExit(f"unknown backend {name}")
    storage.reset_clients()


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def run(name: str, accounts: int, table: pa.Table, scratch: Path) -> dict[str, str]:
    keys = [PartitionKey("aws", "cost_explorer", f"acct-{a:04d}", p) for a in range(accounts) for p in PERIODS]
    total = sum(table.column("BilledCost").to_pylist(), Decimal(0))
    with backend(name, scratch) as data_dir:
        write_seconds, _ = timed(lambda: [write_partition(data_dir, k, table, {"USD": total}) for k in keys])
        list_seconds, listed = timed(lambda: list_partitions(data_dir))
        assert len(listed) == len(keys)
        read_seconds, _ = timed(lambda: [read_partition(data_dir, k) for k in keys[:10]])
        connection = duckdb.connect()
        storage.register_duckdb(connection, data_dir)
        sql = (f"SELECT account, billing_period, sum(BilledCost), count(*) FROM read_parquet('{cost_daily_glob(data_dir)}', hive_partitioning = true) "
               f"GROUP BY ALL")
        first_scan, rows = timed(lambda: connection.execute(sql).fetchall())
        second_scan, _ = timed(lambda: connection.execute(sql).fetchall())
        connection.close()
        assert len(rows) == len(keys) and all(r[2] == total for r in rows), "the scan does not reconcile"
        size = sum(storage.info(p)["size"] for _, p in listed)
    return {
        "backend": name, "partitions": str(len(keys)), "MB": f"{size / 1e6:.1f}",
        "write/partition ms": f"{write_seconds / len(keys) * 1000:.1f}", "list ms": f"{list_seconds * 1000:.0f}",
        "read/partition ms": f"{read_seconds / 10 * 1000:.1f}", "DuckDB scan s (1st, 2nd)": f"{first_scan:.2f}, {second_scan:.2f}",
        "scan rows/s": f"{len(keys) * table.num_rows / second_scan:,.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000, help="rows per partition")
    parser.add_argument("--backends", default="local,s3,azure,gcs")
    args = parser.parse_args()
    table = base_table(args.rows)
    results = []
    with tempfile.TemporaryDirectory(prefix=f"finops-lake-bench-{uuid.uuid4().hex[:6]}-") as scratch:
        for name in args.backends.split(","):
            results.append(run(name, args.accounts, table, Path(scratch) / name))
            print("  ".join(f"{k}: {v}" for k, v in results[-1].items()), flush=True)


if __name__ == "__main__":
    main()
