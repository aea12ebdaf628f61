"""What every source shares in Dagster: one asset per configured account, monthly partitions from
where data can exist, a job and a schedule per source, and the per-account checks.

Each account is its own asset (`<source id>/<account key>`, e.g. `aws_cur/payer-main`), because the
account is what people ask about: "is my account's billing flowing", "refresh this account". The
assets of one source are one multi-asset step, so a refresh of a billing period is one run per
source however many accounts there are, and selecting one account refreshes only that account.
An account that fails does not stop the others: the healthy ones are written and materialized,
then the step fails naming each failed account with its cause and fix, so the run is red and can
be re-executed. (Per-account partitions were tried on paper: a run covering many accounts of a
multi-partitioned asset is a partition range, which Dagster marks materialized or failed as a
whole; one run per account and month would make the schedule unbounded.)

A source's `definitions.py` stays thin: it calls `source_definitions` with a pull factory and
adds what only it has (the CUR sensor, the DigitalOcean invoice check).
"""


import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetCheckExecutionContext, AssetExecutionContext

from finops_pipeline import storage
from finops_pipeline.catalog import MART_TABLES
from finops_pipeline.config import Account, FinopsConfig, registry_for_definitions
from finops_pipeline.lake import list_partitions, read_partition_totals
from finops_pipeline.refresh import AccountOutcome, PullFunction, full_refresh, refresh_accounts
from finops_pipeline.resources import FinopsResource
from finops_pipeline.schema import COLUMNS
from finops_pipeline.sources import Source
from finops_pipeline.status import Status, connection_statuses, describe_age, not_there_yet, open_periods

# Partitions begin where data can exist: by default 13 billing periods (this one and the 12 before),
# which is also what Cost Explorer keeps; `history_start` in finops.yaml moves it.
DEFAULT_HISTORY_MONTHS = 13
CATALOG_POOL = "duckdb_catalog"  # dagster.yaml limits every pool to one op at a time
BUILD_TABLES_JOB = "build_cost_tables"
SOURCE_TAG = "finops/source"
# A run tagged finops/full_refresh=true pulls whole months even where a source pulls only what can still change.
FULL_REFRESH_TAG = "finops/full_refresh"
# What a refresh rebuilds after the pulls: the catalog (cost_daily), the dashboard tables and the page.
TABLE_ASSET_KEYS = (dg.AssetKey("cost_daily"), *(dg.AssetKey(name) for name in MART_TABLES), dg.AssetKey("finops_dashboard"))

PullFactory = Callable[[Path, Callable[[], datetime]], PullFunction]

COST_DAILY_COLUMN_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(c.name, str(c.type), description=c.doc) for c in COLUMNS]
)


def account_asset_key(account: Account) -> dg.AssetKey:
    return dg.AssetKey([f"{account.provider}_{account.source}", account.key])


def all_account_asset_keys(config: FinopsConfig) -> list[dg.AssetKey]:
    return [account_asset_key(a) for a in config.accounts]


def month_shift(period: str, months: int) -> str:
    year, month = map(int, period.split("-"))
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def first_period(source: Source, history_start: str | None, today: datetime) -> str:
    """The oldest billing period to offer: the registry's history start (default 13 months back),
    never older than the source can serve."""
    current = today.strftime("%Y-%m")
    start = history_start or month_shift(current, -(DEFAULT_HISTORY_MONTHS - 1))
    if source.history_months:
        start = max(start, month_shift(current, -(source.history_months - 1)))
    return min(start, current)


def billing_periods(source: Source, config: FinopsConfig, today: datetime | None = None) -> dg.MonthlyPartitionsDefinition:
    today = today or datetime.now(timezone.utc)
    return dg.MonthlyPartitionsDefinition(start_date=first_period(source, config.history_start, today), fmt="%Y-%m", end_offset=1)


def money(amount: Decimal | str, currency: str) -> str:
    """An amount as people read it: 'USD 29,821.48'."""
    return f"{currency} {Decimal(amount):,.2f}"


def _account_metadata(outcome: AccountOutcome, billing_period: str) -> dict[str, Any]:
    totals = {c: str(v) for c, v in sorted(outcome.source_totals.items())}
    metadata: dict[str, Any] = {
        "billing_period": billing_period,
        "rows": outcome.rows,
        "api_calls": outcome.api_calls,
        "billed": ", ".join(money(v, c) for c, v in totals.items()) or "no costs",
        "totals_by_currency": dg.MetadataValue.json(totals),
    }
    details = {k: v for k, v in outcome.metadata.items() if k != "partition"}
    if details:
        metadata["source_details"] = dg.MetadataValue.json(details)
    if outcome.rows == 0:
        metadata["note"] = "The provider answered with no costs for this account and month."
    return metadata


def _failure(failed: Sequence[AccountOutcome], pulled: int, billing_period: str) -> dg.Failure:
    lines = [f"- **{o.account.key}** `{o.diagnosis.code}`: {o.diagnosis.cause} Fix: {o.diagnosis.fix}" for o in failed if o.diagnosis]
    return dg.Failure(
        description=(
            f"{len(failed)} of {pulled} account(s) failed for {billing_period}: "
            + "; ".join(f"{o.account.key}: {o.diagnosis.cause} Fix: {o.diagnosis.fix}" for o in failed if o.diagnosis)
        ),
        metadata={
            "failed_accounts": dg.MetadataValue.md("\n".join(lines)),
            "failures": dg.MetadataValue.json({o.account.key: o.diagnosis.as_dict() for o in failed if o.diagnosis}),
        },
        allow_retries=True,
    )


@dataclass(frozen=True)
class SourceDagsterSpec:
    """How a source looks in Dagster, beyond what `Source` says."""

    source: Source
    make_pull: PullFactory
    description: str
    kinds: frozenset[str]
    notes: str = ""


def source_assets(spec: SourceDagsterSpec, accounts: Sequence[Account], periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    source = spec.source
    lake_path = f"lake/cost_daily/provider={source.provider.key}/source={source.name}/account=<key>/billing_period=<YYYY-MM>/data.parquet"
    specs = [
        dg.AssetSpec(
            key=account_asset_key(account),
            group_name=source.provider.key,
            kinds=set(spec.kinds),
            description=f"{account.name}: {spec.description}",
            tags={SOURCE_TAG: source.id},
            partitions_def=periods,
            metadata={
                "dagster/column_schema": COST_DAILY_COLUMN_SCHEMA,
                "account": account.key,
                "source": source.title,
                "connected_at": account.connected_at.isoformat(),
                "lake_path": lake_path.replace("<key>", account.key),
                **({"notes": dg.MetadataValue.md(spec.notes)} if spec.notes else {}),
            },
        )
        for account in accounts
    ]
    by_key = {account_asset_key(a): a.key for a in accounts}

    @dg.multi_asset(name=f"{source.id}_accounts", specs=specs, can_subset=True, partitions_def=periods)
    def pull_accounts(context: AssetExecutionContext, finops: FinopsResource) -> Iterator[dg.MaterializeResult]:
        config = finops.load_config()  # read now: settings and secrets as they are at run time
        wanted = {by_key[k] for k in context.selected_asset_keys}
        selected = [a for a in config.for_source(source.provider.key, source.name) if a.key in wanted]
        billing_period = context.partition_key
        with full_refresh(context.run.tags.get(FULL_REFRESH_TAG, "").lower() == "true"):
            outcomes = refresh_accounts(
                finops.data_path(), selected, billing_period, spec.make_pull(finops.data_path(), finops.current_time),
                finops.current_time, config.secret_values(), context.log, run_id=context.run_id,
                concurrency=config.concurrency_for(source),
            )
        failed = []
        for outcome in outcomes:
            if outcome.ok:
                yield dg.MaterializeResult(asset_key=account_asset_key(outcome.account), metadata=_account_metadata(outcome, billing_period))
            elif not_there_yet(outcome.account, outcome.diagnosis.status, finops.current_time()):
                context.log.warning(f"{outcome.account.key}: no data yet, as expected inside 48 hours of connection: {outcome.diagnosis.cause}")
            else:
                failed.append(outcome)
        if failed:
            raise _failure(failed, len(outcomes), billing_period)

    return pull_accounts


def source_checks(source: Source, accounts: Sequence[Account]) -> list[dg.AssetChecksDefinition]:
    """Per account: billing data within 48 hours of connection, and reconciliation with the source."""
    keys = {a.key: account_asset_key(a) for a in accounts}

    @dg.multi_asset_check(
        name=f"{source.id}_billing_data_within_48h",
        specs=[
            dg.AssetCheckSpec(
                "billing_data_within_48h", asset=key,
                description=(
                    "Fails (ERROR) when the account still has no cost data 48 hours after its connected_at, or its latest "
                    "pull of a month that matters failed, with the knowledge base's cause and fix. Runs hourly on its own "
                    "schedule, because absent data never triggers a materialization."
                ),
            )
            for key in keys.values()
        ],
        can_subset=True,
    )
    def billing_data_within_48h(context: AssetCheckExecutionContext, finops: FinopsResource) -> Iterator[dg.AssetCheckResult]:
        wanted = {k.asset_key for k in context.selected_asset_check_keys}
        statuses = {s.account_key: s for s in connection_statuses(finops.load_config(), finops.data_path(), finops.current_time())}
        for account_key, asset_key in keys.items():
            if asset_key not in wanted or account_key not in statuses:
                continue
            s = statuses[account_key]
            failing = s.status in (Status.NO_DATA, Status.ERROR)
            metadata: dict[str, Any] = {
                "status": str(s.status),
                "connected": describe_age(s.connected_at, finops.current_time()),
                "rows": s.rows,
            }
            if s.becomes_no_data_at and s.status == Status.PENDING:
                metadata["becomes_no_data_at"] = s.becomes_no_data_at.isoformat()
            if s.cause:
                metadata["cause"] = s.cause
                metadata["fix"] = s.fix
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name="billing_data_within_48h",
                passed=not failing,
                # No data after 48 h is what this check exists for; data that flows but whose latest pull failed is a warning.
                severity=dg.AssetCheckSeverity.ERROR if s.rows == 0 else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
                description=f"{s.status}: {s.cause} Fix: {s.fix}" if failing else f"{s.status}.",
            )

    @dg.multi_asset_check(
        name=f"{source.id}_reconciles_with_source",
        specs=[
            dg.AssetCheckSpec(
                "reconciles_with_source", asset=key,
                description="For every billing period, the unified rows' BilledCost per currency equals the raw source total, exactly.",
            )
            for key in keys.values()
        ],
        can_subset=True,
    )
    def reconciles_with_source(context: AssetCheckExecutionContext, finops: FinopsResource) -> Iterator[dg.AssetCheckResult]:
        wanted = {k.asset_key for k in context.selected_asset_check_keys}
        for account_key, asset_key in keys.items():
            if asset_key not in wanted:
                continue
            mismatches, checked = reconcile_partitions(finops.data_path(), source.provider.key, source.name, account_key)
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name="reconciles_with_source",
                passed=not mismatches,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"partitions_checked": checked, "mismatches": dg.MetadataValue.json(mismatches)},
            )

    return [billing_data_within_48h, reconciles_with_source]


def reconcile_partitions(data_dir: Path, provider: str, source: str, account: str | None = None) -> tuple[dict[str, Any], int]:
    """Compare each partition's summed BilledCost with the source totals stored in its file."""

    mismatches: dict[str, Any] = {}
    partitions = [(k, p) for k, p in list_partitions(data_dir, provider, source) if account is None or k.account == account]
    connection = storage.connect_duckdb(data_dir)
    try:
        for key, path in partitions:
            expected = read_partition_totals(path)
            actual = {
                currency: Decimal(str(total))
                for currency, total in connection.execute(
                    "SELECT BillingCurrency, sum(BilledCost) FROM read_parquet(?) GROUP BY 1", [str(path)]
                ).fetchall()
            }
            diff = {
                c: {"source": str(expected.get(c, 0)), "unified": str(actual.get(c, 0))}
                for c in set(expected) | set(actual)
                if expected.get(c, Decimal(0)) != actual.get(c, Decimal(0))
            }
            if diff:
                mismatches[f"{key.account}/{key.billing_period}"] = diff
    finally:
        connection.close()
    return mismatches, len(partitions)


def refresh_job_name(source: Source) -> str:
    return f"refresh_{source.id}"


def source_definitions(
    spec: SourceDagsterSpec,
    *,
    extra_checks: Callable[[Sequence[Account]], Sequence[dg.AssetChecksDefinition]] | None = None,
    sensors: Callable[[Any], Sequence[dg.SensorDefinition]] | None = None,
) -> dg.Definitions:
    """The Dagster face of one source for the accounts the registry lists: assets, checks, job, schedule."""
    source = spec.source
    config = registry_for_definitions()
    accounts = config.for_source(source.provider.key, source.name)
    if not accounts:
        return dg.Definitions()
    periods = billing_periods(source, config)
    assets = source_assets(spec, accounts, periods)
    job = dg.define_asset_job(
        refresh_job_name(source),
        selection=dg.AssetSelection.assets(assets).downstream(),
        partitions_def=periods,
        tags={SOURCE_TAG: source.id},
        description=f"Pull one billing period of every {source.title} account (or those selected), then rebuild cost_daily and the dashboard tables.",
    )

    @dg.schedule(
        name=f"{refresh_job_name(source)}_schedule",
        job=job,
        cron_schedule=os.environ.get("FINOPS_REFRESH_CRON") or "0 */6 * * *",
        execution_timezone="UTC",
        description="Every 6 hours: the open month, and the previous one while providers may still restate it.",
    )
    def refresh_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        scheduled = context.scheduled_execution_time
        for period in open_periods(scheduled):
            if period >= first_period(source, config.history_start, scheduled):
                yield dg.RunRequest(run_key=f"{source.id}:{period}@{scheduled.isoformat()}", partition_key=period)

    checks = [*source_checks(source, accounts), *(extra_checks(accounts) if extra_checks else [])]
    return dg.Definitions(
        assets=[assets],
        asset_checks=checks,
        jobs=[job],
        schedules=[refresh_schedule],
        sensors=list(sensors(job)) if sensors else [],
    )
