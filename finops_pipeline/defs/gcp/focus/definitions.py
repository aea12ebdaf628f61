"""GCP's FOCUS export in Dagster: one asset per billing account, its checks, job and schedule."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.gcp.focus.source import SOURCE


def _pull(data_dir, now):
    from finops_pipeline.defs.gcp.focus.pull import pull_function

    return pull_function(data_dir, now)


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"gcp", "bigquery", "duckdb", "parquet"}),
    description=(
        "daily GCP cost from the FOCUS export to BigQuery (gcp_billing_export_focus_<BILLING_ACCOUNT>) or a FOCUS view, "
        "aggregated per day and FOCUS column in BigQuery and mapped by the shared FOCUS reader (finops_pipeline.focus). "
        "One partition per invoice month (BillingPeriodStart): each refresh re-checks the last `recent_days` charge "
        "days (default 10) and re-reads only the days whose MAX(x_ExportTime) or BilledCost moved. Bytes scanned are "
        "in the materialization metadata."
    ),
    notes="See docs/gcp_focus.md.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC)
