"""Dagster assets for AWS: Cost Explorer (CUR joins in its own module)."""


from dagster import AssetExecutionContext, MaterializeResult, asset

from finops_pipeline.providers.aws.cost_explorer import pull_cost_explorer
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
