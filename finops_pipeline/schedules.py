"""When things run: cost refreshes every 6 hours, the 48-hour checks every hour.

FINOPS_REFRESH_CRON and FINOPS_CHECKS_CRON override the two cron strings (read when the code loads),
for a deployment that wants another cadence, and for the end-to-end test that watches the daemon tick.
"""

import os
from datetime import datetime, timedelta

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    schedule,
)

from finops_pipeline.source_asset import BILLING_PERIODS

# Providers restate the previous month for a while after it closes (AWS may re-deliver CUR for up to
# two weeks), so during these first days of a month the refresh also re-pulls last month.
RESTATEMENT_DAYS = 14

refresh_costs_job = define_asset_job(
    "refresh_costs",
    selection=AssetSelection.groups("aws", "gcp", "azure", "digitalocean", "unified", "dashboard"),
    partitions_def=BILLING_PERIODS,
    description="Pull one billing period from every configured provider, then rebuild cost_daily and the dashboard tables.",
)

# The checks and the status table are light (lake metadata, small DuckDB queries): run them in one
# process. The default executor starts a process per step, ~12 steps with every source, each costing
# more CPU to start than its work, every hour.
billing_checks_job = define_asset_job(
    "check_billing_connections",
    executor_def=in_process_executor,
    selection=AssetSelection.all_asset_checks() | AssetSelection.assets("billing_connection_status", "finops_dashboard"),
    description="The 48-hour 'No data' checks and the reconciliation checks, plus the connection status table and the dashboard page.",
)


def periods_to_refresh(now: datetime, restatement_days: int = RESTATEMENT_DAYS) -> list[str]:
    """The open billing period, and the previous one during the first days of a month."""
    periods = [now.strftime("%Y-%m")]
    if now.day <= restatement_days:
        periods.append((now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    return periods


@schedule(job=refresh_costs_job, cron_schedule=os.environ.get("FINOPS_REFRESH_CRON") or "0 */6 * * *", execution_timezone="UTC",
          description="Every 6 hours: the open month, and the previous one while providers may still restate it.")
def refresh_costs_schedule(context: ScheduleEvaluationContext):
    scheduled = context.scheduled_execution_time
    for period in periods_to_refresh(scheduled):
        yield RunRequest(run_key=f"{period}@{scheduled.isoformat()}", partition_key=period)


check_billing_connections_schedule = ScheduleDefinition(
    job=billing_checks_job,
    cron_schedule=os.environ.get("FINOPS_CHECKS_CRON") or "15 * * * *",
    execution_timezone="UTC",
    description="Hourly: absent data never triggers a materialization, so the 48-hour checks run on their own.",
)
