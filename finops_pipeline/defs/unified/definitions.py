"""The unified table and the dashboard tables as Dagster assets, downstream of every account's asset."""


import json
from decimal import Decimal
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
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

from finops_pipeline import serving
from finops_pipeline.catalog import build_catalog, catalog_path, connect
from finops_pipeline.config import registry_for_definitions
from finops_pipeline.dagster_sources import BUILD_TABLES_JOB, CATALOG_POOL, COST_DAILY_COLUMN_SCHEMA, all_account_asset_keys, money
from finops_pipeline.dashboard import preview_markdown, read_dashboard_data, write_dashboard
from finops_pipeline.insight import Verdict, anomaly_verdict, budget_verdict
from finops_pipeline.lake import mart_path
from finops_pipeline.marts import build_mart, daily_sql, write_mart
from finops_pipeline.money import sum_by_currency
from finops_pipeline.resources import FinopsResource
from finops_pipeline.storage import open_read

MART_DESCRIPTIONS = {
    "provider_cost_summary": "Cost card per provider and currency: month to date, last 7 and 30 days, the 30 days before and the change. "
    "A configured provider without data has a row with has_data = false and NULL amounts.",
    "daily_cost_trend": "Daily billed and effective cost per provider and currency for the last 30 days; days without cost are 0.",
    "cost_by_account": "Cost per provider and cloud account (AWS linked account, GCP project, Azure subscription, DO team) and currency.",
    "billing_connection_status": "Per configured account: OK, PENDING, NO_DATA or ERROR, first and last day with data, the last "
    "successful pull, the last error, and the knowledge base's cause and fix.",
    "cost_by_service": "Billed and effective cost per provider, service and currency, per day (grain 'daily') and per billing "
    "period (grain 'billing_period').",
    "cost_by_tag": "Billed and effective cost per normalized tag key and value, provider and currency, per day and per billing "
    "period; the rows without the key are its untagged bucket (tag_value NULL).",
    "cost_forecast": "Month-end EffectiveCost forecast per provider, account and currency: the month's complete days, plus the "
    "same weekday's median of the last 4 weeks for each day ahead, plus recurring charges; a 10-90 % interval from past errors.",
    "cost_anomalies": "Days whose EffectiveCost for a provider, account, service and currency departs from the same weekday's "
    "median of 8 weeks by more than 3.5 x 1.4826 x MAD and max(20, 20 %); Purchase/Credit/Tax apart; the last 2 days provisional.",
    "budget_status": "Each budget of finops.yaml: this month's EffectiveCost in its scope and currency, actual and forecast, "
    "against the amount (OK, FORECAST_OVER, OVER).",
    "cost_in_reporting_currency": "With reporting_currency set in finops.yaml: each day, provider, account and billing currency with "
    "billed and effective cost converted beside the billed amounts, with the rate, its date and source (the provider's rate, "
    "else the ECB reference rates dropped in <data>/rates/, else 'missing'). The only table whose amounts may be summed across currencies.",
}


def build_unified_assets(upstream: list[AssetKey]) -> list[AssetsDefinition]:
    @asset(
        name="cost_daily",
        group_name="unified",
        kinds={"duckdb", "parquet"},
        deps=upstream,
        pool=CATALOG_POOL,
        description=(
            "The unified daily cost table in FOCUS 1.2 column names: a DuckDB view (catalog finops.duckdb) over the serving "
            "layer, one compacted Parquet file per billing period. Materializing it recompacts the periods whose partitions "
            "changed; the catalog is built once per run (by finops_dashboard when the run includes it, else here)."
        ),
        metadata={"dagster/column_schema": COST_DAILY_COLUMN_SCHEMA},
    )
    def cost_daily(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
        data_dir = finops.data_path()
        refreshed = serving.refresh(data_dir)
        catalog = catalog_path(data_dir)
        if not _run_includes(context, AssetKey("finops_dashboard")):
            catalog = build_catalog(data_dir, refreshed.state)
        connection = connect(data_dir)
        try:
            connection.execute(f"CREATE TEMP VIEW daily AS SELECT * FROM {daily_sql(refreshed.state)}")
            rows = connection.execute("SELECT coalesce(sum(row_count), 0)::BIGINT FROM daily").fetchone()[0]
            totals = connection.execute(
                """SELECT provider, currency, sum(billed_cost), count(DISTINCT account_key), min(day), max(day)
                   FROM daily GROUP BY ALL ORDER BY 1, 2"""
            ).fetchall()
        finally:
            connection.close()
        table = ["| provider | currency | billed | accounts | first day | last day |", "|---|---|---:|---:|---|---|"]
        table += [f"| {p} | {c} | {money(t, c)} | {a} | {first} | {last} |" for p, c, t, a, first, last in totals]
        by_currency = sum_by_currency((currency, total) for _, currency, total, *_ in totals)
        return MaterializeResult(
            metadata={
                "rows": rows,
                "catalog": MetadataValue.path(str(catalog)),
                "periods_recompacted": MetadataValue.json(refreshed.rebuilt),
                "periods_removed": MetadataValue.json(refreshed.removed),
                "billed": ", ".join(money(v, c) for c, v in sorted(by_currency.items())) or "no costs",
                "billed_exact": MetadataValue.json({c: str(v) for c, v in sorted(by_currency.items())}),
                "totals_by_provider_and_currency": MetadataValue.md("\n".join(table)),
                "totals_exact": MetadataValue.json([{"provider": p, "currency": c, "billed": str(t)} for p, c, t, *_ in totals]),
            }
        )

    return [cost_daily, *[_mart_asset(name) for name in MART_DESCRIPTIONS], finops_dashboard]


def _run_includes(context: AssetExecutionContext, key: AssetKey) -> bool:
    """Whether this run also materializes `key`."""
    return key in (context.run.asset_selection or context.job_def.asset_layer.selected_asset_keys)


def _table_schema(table: Any) -> TableSchema:
    return TableSchema(columns=[TableColumn(f.name, str(f.type)) for f in table.schema])


def _cell(value: Any, currency: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return money(value, currency) if currency else f"{value:,.2f}"
    return str(value).replace("|", "\\|")


def mart_metadata(table: Any, preview_rows: int = 10) -> dict[str, Any]:
    """A preview with amounts as people read them ("USD 29,821.48"), and the exact values as JSON."""
    preview = table.slice(0, preview_rows).to_pylist()
    lines = ["| " + " | ".join(table.column_names) + " |", "|" + "---|" * len(table.column_names)]
    lines += ["| " + " | ".join(_cell(v, row.get("currency")) for v in row.values()) + " |" for row in preview]
    exact = [{k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in preview]
    return {"preview": MetadataValue.md("\n".join(lines)), "preview_exact": MetadataValue.json(json.loads(json.dumps(exact, default=str)))}


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
        # When cost_daily runs before it in this run, it brought the serving layer up to date: read that state.
        state = serving.current_state(data_dir) if _run_includes(context, AssetKey("cost_daily")) else serving.refresh(data_dir).state
        table = build_mart(name, data_dir, finops.load_config(), finops.current_time(), state)
        path = write_mart(name, table, data_dir)
        return MaterializeResult(
            metadata={
                "rows": table.num_rows,
                "path": MetadataValue.path(str(path)),
                "dagster/column_schema": _table_schema(table),
                **mart_metadata(table),
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
    build_catalog(data_dir, serving.current_state(data_dir))  # the run's one catalog build: cost_daily and the new tables
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


def _read_mart(finops: FinopsResource, name: str) -> list[dict[str, Any]] | None:
    try:
        with open_read(mart_path(finops.data_path(), name)) as handle:  # one version, whole (also on object storage)
            return pq.read_table(handle).to_pylist()
    except FileNotFoundError:
        return None


def _check_result(verdict: Verdict, name: str) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if verdict.severity == "ERROR" else dg.AssetCheckSeverity.WARN
    metadata: dict[str, Any] = {"summary": verdict.description, name: MetadataValue.json(verdict.details)}
    if verdict.details and "where_to_look" in verdict.details[0]:
        metadata["where_to_look"] = MetadataValue.md("\n".join(
            f"- {d['day']} {d['provider']}/{d['account_key']} {d['service_name']} ({d['charge_category']}): {d['reason']}"
            f"{' (provisional)' if d['provisional'] else ''}\n  `finops-pipeline query \"{d['where_to_look']}\"`"
            for d in verdict.details[:20]
        ))
    return dg.AssetCheckResult(passed=verdict.passed, severity=severity, description=verdict.description, metadata=metadata)


@dg.asset_check(asset=AssetKey("cost_anomalies"), name="no_recent_cost_anomalies",
                description="WARN with the anomalies of the last 7 complete days, their impact and the query that shows where to look.")
def no_recent_cost_anomalies(finops: FinopsResource) -> dg.AssetCheckResult:
    rows = _read_mart(finops, "cost_anomalies")
    if rows is None:
        return dg.AssetCheckResult(passed=True, description="cost_anomalies is not built yet.")
    return _check_result(anomaly_verdict(rows, finops.current_time().date()), "anomalies")


@dg.asset_check(asset=AssetKey("budget_status"), name="within_budget",
                description="ERROR when a budget's actual cost passed its amount this month, WARN when its forecast does.")
def within_budget(finops: FinopsResource) -> dg.AssetCheckResult:
    rows = _read_mart(finops, "budget_status")
    if rows is None:
        return dg.AssetCheckResult(passed=True, description="budget_status is not built yet.")
    return _check_result(budget_verdict(rows), "budgets")


@dg.definitions
def defs() -> dg.Definitions:
    assets = build_unified_assets(all_account_asset_keys(registry_for_definitions()))
    build_tables = dg.define_asset_job(
        BUILD_TABLES_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description="Rebuild cost_daily (the catalog) and the dashboard tables from the lake as it is.",
    )
    return dg.Definitions(assets=assets, asset_checks=[no_recent_cost_anomalies, within_budget], jobs=[build_tables])
