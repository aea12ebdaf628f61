"""Dagster assets for AWS: Cost Explorer and Cost and Usage Reports (the CUR sensor is in sensors.py)."""


from dagster import AssetExecutionContext, MaterializeResult, asset

from finops_pipeline.providers.aws.cost_explorer import pull_cost_explorer
from finops_pipeline.providers.aws.cur import pull_cur
from finops_pipeline.resources import FinopsResource
from finops_pipeline.source_asset import BILLING_PERIODS, materialize_source, source_checks, source_definition_metadata


@asset(
    group_name="aws",
    kinds={"aws", "parquet"},
    partitions_def=BILLING_PERIODS,
    description=(
        "Daily AWS cost per linked account and service from Cost Explorer (GetCostAndUsage, DAILY, grouped by "
        "LINKED_ACCOUNT and SERVICE - Cost Explorer allows two GroupBy dimensions). One partition per billing "
        "period; each refresh replaces that month for every configured account. Each API page costs USD 0.01."
    ),
    metadata=source_definition_metadata("aws", "cost_explorer"),
)
def aws_cost_explorer_costs(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
    return materialize_source(context, finops, "aws", "cost_explorer", pull_cost_explorer)


aws_cost_explorer_checks = source_checks(aws_cost_explorer_costs.key, "aws", "cost_explorer")


@asset(
    group_name="aws",
    kinds={"aws", "s3", "duckdb", "parquet"},
    partitions_def=BILLING_PERIODS,
    description=(
        "Daily AWS cost from Cost and Usage Reports on S3 (legacy CUR or CUR 2.0 Data Exports), per payer and usage "
        "account, service, region, resource, line item type and tags. Each refresh reads exactly the files the month's "
        "latest manifest lists and replaces that month whole, so a redelivery never counts twice. Hourly line items are "
        "rolled up to days by DuckDB over the files, streaming, with bounded memory. No API charges (S3 GETs only)."
    ),
    metadata=source_definition_metadata(
        "aws", "cur",
        notes="FOCUS rules: BilledCost = net unblended if present, else unblended; EffectiveCost amortizes Savings Plans "
        "and Reserved Instances; see docs/aws_cur.md.",
    ),
)
def aws_cur_costs(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
    return materialize_source(context, finops, "aws", "cur", pull_cur)


aws_cur_checks = source_checks(aws_cur_costs.key, "aws", "cur")
