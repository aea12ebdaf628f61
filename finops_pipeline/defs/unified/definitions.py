"""The unified table and the dashboard tables as Dagster assets, downstream of every account's asset."""


from typing import Any

import dagster as dg
import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from finops_pipeline.catalog import build_catalog, register_views
from finops_pipeline.config import registry_for_definitions
from finops_pipeline.dagster_sources import BUILD_TABLES_JOB, CATALOG_POOL, COST_DAILY_COLUMN_SCHEMA, all_account_asset_keys
from finops_pipeline.dashboard import preview_markdown, read_dashboard_data, write_dashboard
from finops_pipeline.marts import build_mart, write_mart
from finops_pipeline.resources import FinopsResource

MART_DESCRIPTIONS = {
    "provider_cost_summary": "Cost card per provider and currency: month to date, last 7 and 30 days, the 30 days before and the change. "
    "A configured provider without data has a row with has_data = false and NULL amounts.",
    "daily_cost_trend": "Daily billed and effective cost per provider and currency for the last 30 days; days without cost are 0.",
    "cost_by_account": "Cost per provider and cloud account (AWS linked account, GCP project, Azure subscription, DO team) and currency.",
    "billing_connection_status": "Per configured account: OK, PENDING, NO_DATA or ERROR, first and last day with data, the last "
    "successful pull, the last error, and the knowledge base's cause and fix.",
}


def build_unified_assets(upstream: list[AssetKey]) -> list[AssetsDefinition]:
    @asset(
        name="cost_daily",
        group_name="unified",
        kinds={"duckdb", "parquet"},
        deps=upstream,
        pool=CATALOG_POOL,
        description=(
            "The unified daily cost table in FOCUS 1.2 column names: a DuckDB view (catalog finops.duckdb) over every "
            "provider's Parquet partitions. Materializing it rebuilds the catalog."
        ),
        metadata={"dagster/column_schema": COST_DAILY_COLUMN_SCHEMA},
    )
    def cost_daily(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
        data_dir = finops.data_path()
        catalog = build_catalog(data_dir)
        connection = duckdb.connect()
        try:
            register_views(connection, data_dir, temporary=True)
            rows = connection.execute("SELECT count(*) FROM cost_daily").fetchone()[0]
            totals = connection.execute(
                """SELECT x_Provider, BillingCurrency, sum(BilledCost), count(DISTINCT x_AccountKey),
                          min(ChargePeriodStart)::DATE, max(ChargePeriodStart)::DATE
                   FROM cost_daily GROUP BY ALL ORDER BY 1, 2"""
            ).fetchall()
        finally:
            connection.close()
        table = ["| provider | currency | billed | accounts | first day | last day |", "|---|---|---:|---:|---|---|"]
        table += [f"| {p} | {c} | {t:,.2f} | {a} | {first} | {last} |" for p, c, t, a, first, last in totals]
        return MaterializeResult(
            metadata={
                "rows": rows,
                "catalog": MetadataValue.path(str(catalog)),
                "totals_by_provider_and_currency": MetadataValue.md("\n".join(table)),
            }
        )

    return [cost_daily, *[_mart_asset(name) for name in MART_DESCRIPTIONS], finops_dashboard]


def _table_schema(table: Any) -> TableSchema:
    return TableSchema(columns=[TableColumn(f.name, str(f.type)) for f in table.schema])


def _mart_asset(name: str) -> AssetsDefinition:
    @asset(
        name=name,
        group_name="dashboard",
        kinds={"duckdb", "parquet"},
        deps=[AssetKey("cost_daily")],
        pool=CATALOG_POOL,
        description=MART_DESCRIPTIONS[name],
    )
    def mart(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
        data_dir = finops.data_path()
        table = build_mart(name, data_dir, finops.load_config(), finops.current_time())
        path = write_mart(name, table, data_dir)
        preview = table.slice(0, 10).to_pylist()
        lines = ["| " + " | ".join(table.column_names) + " |", "|" + "---|" * len(table.column_names)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row.values()) + " |" for row in preview]
        return MaterializeResult(
            metadata={
                "rows": table.num_rows,
                "path": MetadataValue.path(str(path)),
                "dagster/column_schema": _table_schema(table),
                "preview": MetadataValue.md("\n".join(lines)),
            }
        )

    return mart


@asset(
    name="finops_dashboard",
    group_name="dashboard",
    kinds={"html"},
    deps=[AssetKey(name) for name in MART_DESCRIPTIONS],
    pool=CATALOG_POOL,  # reads the marts: never while another run is replacing them
    description=(
        "The FinOps dashboard as one self-contained HTML file (<data>/dashboard.html, no network needed to view it): "
        "a cost card per provider (or 'No data' with the cause and fix), the daily trend for the last 7 and 30 days, "
        "the By Account breakdown and the connection status. Every figure is read from the dashboard tables."
    ),
)
def finops_dashboard(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
    data_dir = finops.data_path()
    data = read_dashboard_data(data_dir)
    path = write_dashboard(data_dir, finops.current_time(), data)
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "providers": len(data.providers()),
            "accounts_needing_attention": sum(1 for c in data.connections if c["status"] in ("ERROR", "NO_DATA")),
            "preview": MetadataValue.md(preview_markdown(data)),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    assets = build_unified_assets(all_account_asset_keys(registry_for_definitions()))
    build_tables = dg.define_asset_job(
        BUILD_TABLES_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description="Rebuild cost_daily (the catalog) and the dashboard tables from the lake as it is.",
    )
    return dg.Definitions(assets=assets, jobs=[build_tables])
