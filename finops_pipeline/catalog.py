"""The DuckDB catalog (`<data>/finops.duckdb`): views over the Parquet lake, for people and dashboards.

The catalog holds no data, only views, so it is rebuilt whole in a new file and swapped in with one
rename. The pipeline therefore never needs a write lock on the file a person has open: someone can
keep a read-only session on `finops.duckdb` while a refresh runs, and sees the new views on their
next connection. (DuckDB allows one read-write process or many read-only ones, never both.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from finops_pipeline.lake import atomic_file, cost_daily_glob, cost_daily_root, mart_path
from finops_pipeline.schema import COLUMNS

CATALOG_FILE = "finops.duckdb"
MART_TABLES = (
    "provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status",
    "cost_by_service", "cost_by_tag", "cost_forecast", "cost_anomalies", "budget_status",
)


def catalog_path(data_dir: Path) -> Path:
    return Path(data_dir) / CATALOG_FILE


def _duckdb_type(data_type: pa.DataType) -> str:
    if pa.types.is_decimal(data_type):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(data_type):
        return "BOOLEAN"
    return "VARCHAR"


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def cost_daily_sql(data_dir: Path) -> str:
    """SELECT for the unified table over every partition file; a typed empty result when there are none."""
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    if any(cost_daily_root(data_dir).glob("*/*/*/*/data.parquet")):
        return f"SELECT {names} FROM read_parquet({_quote(cost_daily_glob(data_dir))}, union_by_name = true, hive_partitioning = false)"
    typed = ", ".join(f'CAST(NULL AS {_duckdb_type(c.type)}) AS "{c.name}"' for c in COLUMNS)
    return f"SELECT {typed} WHERE false"


def register_views(connection: duckdb.DuckDBPyConnection, data_dir: Path, *, temporary: bool = False) -> None:
    """Create the cost_daily view and one view per mart file present. Also used in-memory by the marts."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    connection.execute(f"CREATE OR REPLACE {kind} cost_daily AS {cost_daily_sql(data_dir)}")
    for name in MART_TABLES:
        path = mart_path(data_dir, name)
        if path.exists():
            connection.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM read_parquet({_quote(path)})")


def build_catalog(data_dir: Path) -> Path:
    """Write a fresh catalog file and swap it in atomically."""
    target = catalog_path(data_dir)
    with atomic_file(target) as temporary:
        connection = duckdb.connect(str(temporary))
        try:
            register_views(connection, data_dir)
            connection.execute("CHECKPOINT")
        finally:
            connection.close()
    return target


def connect_readonly(data_dir: Path) -> duckdb.DuckDBPyConnection:
    path = catalog_path(data_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist yet: run the pipeline first (make demo, or materialize the assets), "
            f"or point FINOPS_DATA_DIR at the data directory that holds it."
        )
    return duckdb.connect(str(path), read_only=True)


def query(data_dir: Path, sql: str, parameters: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
    connection = connect_readonly(data_dir)
    try:
        cursor = connection.execute(sql, parameters or [])
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return columns, cursor.fetchall()
    finally:
        connection.close()
