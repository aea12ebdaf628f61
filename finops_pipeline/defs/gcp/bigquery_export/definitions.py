"""The GCP BigQuery billing export in Dagster: one asset per billing account, its checks, job and schedule."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.gcp.bigquery_export.source import SOURCE


def _pull(data_dir, now):
    from finops_pipeline.defs.gcp.bigquery_export.pull import pull_function

    return pull_function(data_dir, now)


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"gcp", "bigquery", "parquet"}),
    description=(
        "daily GCP cost per project, service, SKU, region, cost type and (detailed export) resource, aggregated in "
        "BigQuery from the Cloud Billing export (detailed table preferred, else standard). One partition per "
        "invoice month: each refresh re-checks the last `recent_days` export partitions (default 10) and re-reads "
        "only the days whose MAX(export_time) moved; credits are their own Credit rows. Bytes scanned are in the "
        "materialization metadata (source_details)."
    ),
    notes="See docs/gcp.md for the data dictionary and the late-data rule.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC)
