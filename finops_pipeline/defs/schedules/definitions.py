"""The hourly 48-hour checks: absent data never triggers a materialization, so they run on their own.

Each source's refresh job and 6-hourly schedule come with the source (dagster_sources.py);
FINOPS_REFRESH_CRON and FINOPS_CHECKS_CRON override the two cron strings (read when the code loads),
for a deployment that wants another cadence, and for the end-to-end test that watches the daemon tick.
"""

import os

import dagster as dg

# The checks and the status table are light (lake metadata, small DuckDB queries): run them in one
# process. The default executor starts a process per step, each costing more CPU to start than its work.
billing_checks_job = dg.define_asset_job(
    "check_billing_connections",
    executor_def=dg.in_process_executor,
    selection=dg.AssetSelection.all_asset_checks() | dg.AssetSelection.assets("billing_connection_status", "finops_dashboard"),
    description="The 48-hour 'No data' checks and the reconciliation checks, plus the connection status table and the dashboard page.",
)

check_billing_connections_schedule = dg.ScheduleDefinition(
    job=billing_checks_job,
    cron_schedule=os.environ.get("FINOPS_CHECKS_CRON") or "15 * * * *",
    execution_timezone="UTC",
    description="Hourly: absent data never triggers a materialization, so the 48-hour checks run on their own.",
)
