"""What every provider asset shares in Dagster: the monthly partitions, the materialization metadata,
and the two checks (billing data within 48 hours, reconciliation with the source).

A provider's assets.py stays thin: it builds a `pull` function from its resources and calls
`materialize_source`; `source_checks` gives it its checks.
"""


from decimal import Decimal
from typing import Any

import duckdb
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    TableColumn,
    TableSchema,
    asset_check,
)

from finops_pipeline.lake import list_partitions, read_partition_totals
from finops_pipeline.refresh import PullFunction, outcome_metadata, refresh_accounts
from finops_pipeline.resources import FinopsResource
from finops_pipeline.schema import COLUMNS
from finops_pipeline.status import ERROR, NO_DATA, connection_statuses

# A run tagged with an account key (the CUR sensor's runs) refreshes only that account.
ACCOUNT_TAG = "finops/account"

# One partition per billing period (invoice month), the open month included.
BILLING_PERIODS = MonthlyPartitionsDefinition(start_date="2024-01", fmt="%Y-%m", end_offset=1)

COST_DAILY_COLUMN_SCHEMA = TableSchema(
    columns=[TableColumn(c.name, str(c.type), description=c.doc) for c in COLUMNS]
)


def source_definition_metadata(provider: str, source: str, notes: str = "") -> dict[str, Any]:
    return {
        "dagster/column_schema": COST_DAILY_COLUMN_SCHEMA,
        "provider": provider,
        "source": source,
        "lake_path": f"lake/cost_daily/provider={provider}/source={source}/account=<key>/billing_period=<YYYY-MM>/data.parquet",
        **({"notes": MetadataValue.md(notes)} if notes else {}),
    }


def materialize_source(
    context: AssetExecutionContext,
    finops: FinopsResource,
    provider: str,
    source: str,
    pull: PullFunction,
) -> MaterializeResult:
    """Refresh every configured account of one source for the run's billing period."""
    config = finops.load_config()
    data_dir = finops.data_path()
    billing_period = context.partition_key
    accounts = config.for_source(provider, source)
    only = context.run.tags.get(ACCOUNT_TAG)
    if only:
        accounts = [a for a in accounts if a.key == only]
    if not accounts:
        context.log.info(f"No {provider}/{source} accounts in {config.path}; nothing to pull.")
    outcomes = refresh_accounts(
        data_dir, accounts, billing_period, pull, finops.current_time, config.secret_values(), context.log
    )
    summary = outcome_metadata(outcomes)
    metadata: dict[str, Any] = {
        "billing_period": billing_period,
        "rows": summary["rows"],
        "api_calls": summary["api_calls"],
        "accounts_ok": summary["accounts_ok"],
        "accounts_failed": summary["accounts_failed"],
        "totals_by_currency": MetadataValue.json(summary["totals"]),
    }
    if summary["failures"]:
        metadata["failures"] = MetadataValue.md(
            "\n".join(f"- **{key}** `{f['code']}`: {f['cause']} Fix: {f['fix']}" for key, f in summary["failures"].items())
        )
    per_account = {o.account.key: {k: v for k, v in o.metadata.items() if k != "partition"} for o in outcomes if o.metadata}
    if any(per_account.values()):
        metadata["source_details"] = MetadataValue.json(per_account)
    preview = _partition_preview(data_dir, provider, source, billing_period)
    if preview:
        metadata["preview"] = MetadataValue.md(preview)
    return MaterializeResult(metadata=metadata)


def _partition_preview(data_dir, provider: str, source: str, billing_period: str, limit: int = 10) -> str:
    """The month's biggest services per account and currency, as a Markdown table."""
    paths = [str(p) for k, p in list_partitions(data_dir, provider, source) if k.billing_period == billing_period]
    if not paths:
        return ""
    connection = duckdb.connect()
    try:
        rows = connection.execute(
            """SELECT x_AccountKey, ServiceName, BillingCurrency, sum(BilledCost) AS billed
               FROM read_parquet(?) GROUP BY ALL ORDER BY billed DESC LIMIT ?""",
            [paths, limit],
        ).fetchall()
    finally:
        connection.close()
    lines = ["| account | service | currency | billed |", "|---|---|---|---:|"]
    lines += [f"| {a} | {s} | {c} | {b:,.2f} |" for a, s, c, b in rows]
    return "\n".join(lines)


def source_checks(asset_key: AssetKey, provider: str, source: str) -> list[AssetChecksDefinition]:
    """The 48-hour no-data check and the reconciliation check for one source asset."""

    @asset_check(
        asset=asset_key,
        name="billing_data_within_48h",
        description=(
            "Fails (ERROR) for every account of this source that still has no cost data 48 hours after its "
            "connected_at, with the knowledge base's cause and fix. Runs on its own schedule too, because "
            "absent data never triggers a materialization."
        ),
    )
    def billing_data_within_48h(finops: FinopsResource) -> AssetCheckResult:
        config = finops.load_config()
        statuses = [
            s for s in connection_statuses(config, finops.data_path(), finops.current_time())
            if s.provider == provider and s.source == source
        ]
        no_data = [s for s in statuses if s.status == NO_DATA]
        errors = [s for s in statuses if s.status == ERROR]
        failing = no_data + errors
        metadata: dict[str, Any] = {
            "accounts": len(statuses),
            "by_status": MetadataValue.json({s.account_key: s.status for s in statuses}),
        }
        if failing:
            metadata["failing_accounts"] = MetadataValue.md(
                "\n".join(
                    f"- **{s.account_key}** ({s.account_name}): {s.status}, connected {s.hours_since_connected} h ago. "
                    f"Cause: {s.cause} Fix: {s.fix}"
                    for s in failing
                )
            )
            metadata["fixes"] = MetadataValue.json({s.account_key: {"status": s.status, "cause": s.cause, "fix": s.fix} for s in failing})
        # Missing data after 48 h is the failure this check exists for; an account whose data flows
        # but whose latest pull failed is worth a warning.
        has_no_data = [s for s in failing if s.rows == 0]
        return AssetCheckResult(
            passed=not failing,
            severity=AssetCheckSeverity.ERROR if has_no_data else AssetCheckSeverity.WARN,
            metadata=metadata,
            description=(
                "All accounts have data or are inside the 48-hour window." if not failing
                else f"{len(failing)} account(s) without flowing billing data. "
                + " ".join(f"{s.account_key} ({s.status}): {s.fix}" for s in failing)
            ),
        )

    @asset_check(
        asset=asset_key,
        name="reconciles_with_source",
        description="For every account and billing period, the unified rows' BilledCost per currency equals the raw source total, exactly.",
    )
    def reconciles_with_source(finops: FinopsResource) -> AssetCheckResult:
        mismatches, checked = reconcile_partitions(finops.data_path(), provider, source)
        return AssetCheckResult(
            passed=not mismatches,
            severity=AssetCheckSeverity.ERROR,
            metadata={"partitions_checked": checked, "mismatches": MetadataValue.json(mismatches)},
        )

    return [billing_data_within_48h, reconciles_with_source]


def reconcile_partitions(data_dir, provider: str, source: str) -> tuple[dict[str, Any], int]:
    """Compare each partition's summed BilledCost with the source totals stored in its file."""
    mismatches: dict[str, Any] = {}
    partitions = list_partitions(data_dir, provider, source)
    connection = duckdb.connect()
    try:
        for key, path in partitions:
            expected = read_partition_totals(path)
            actual = {
                currency: Decimal(str(total))
                for currency, total in connection.execute(
                    "SELECT BillingCurrency, sum(BilledCost) FROM read_parquet(?) GROUP BY 1", [str(path)]
                ).fetchall()
            }
            currencies = set(expected) | set(actual)
            diff = {
                c: {"source": str(expected.get(c, 0)), "unified": str(actual.get(c, 0))}
                for c in currencies
                if expected.get(c, Decimal(0)) != actual.get(c, Decimal(0))
            }
            if diff:
                mismatches[f"{key.account}/{key.billing_period}"] = diff
    finally:
        connection.close()
    return mismatches, len(partitions)
