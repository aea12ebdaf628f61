"""Dagster asset for GCP: the BigQuery billing export."""


from dagster import AssetExecutionContext, MaterializeResult, asset

from finops_pipeline.providers.gcp.bigquery_export import pull_function
from finops_pipeline.resources import FinopsResource
from finops_pipeline.source_asset import BILLING_PERIODS, materialize_source, source_checks, source_definition_metadata


@asset(
    group_name="gcp",
    kinds={"gcp", "bigquery", "parquet"},
    partitions_def=BILLING_PERIODS,
    description=(
        "Daily GCP cost per project, service, SKU, region, cost type and (detailed export) resource, aggregated in "
        "BigQuery from the Cloud Billing export (detailed table preferred, else standard). One partition per "
        "invoice month: each refresh re-checks the last `recent_days` export partitions (default 10) and re-reads "
        "only the days whose MAX(export_time) moved; credits are their own Credit rows. Bytes scanned are in the "
        "materialization metadata (source_details)."
    ),
    metadata=source_definition_metadata("gcp", "bigquery_export", notes="See docs/gcp.md for the data dictionary and the late-data rule."),
)
def gcp_bigquery_export_costs(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
    pull = pull_function(finops.data_path(), finops.current_time)
    return materialize_source(context, finops, "gcp", "bigquery_export", pull)


gcp_bigquery_export_checks = source_checks(gcp_bigquery_export_costs.key, "gcp", "bigquery_export")
