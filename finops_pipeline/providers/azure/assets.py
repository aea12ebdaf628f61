"""Dagster asset for Azure: Cost Management Query API, one partition per billing period."""


from dagster import AssetExecutionContext, MaterializeResult, asset

from finops_pipeline.providers.azure.cost_management import pull_cost_management
from finops_pipeline.resources import FinopsResource
from finops_pipeline.source_asset import BILLING_PERIODS, materialize_source, source_checks, source_definition_metadata


@asset(
    group_name="azure",
    kinds={"azure", "parquet"},
    partitions_def=BILLING_PERIODS,
    description=(
        "Daily Azure cost per subscription, service and charge type from the Cost Management Query API "
        "(subscription scope, Daily; ActualCost -> BilledCost, AmortizedCost -> EffectiveCost; grouped by ServiceName "
        "and ChargeType, the API allows two dimensions). One partition per billing period; each refresh replaces that "
        "month for every configured subscription with two queries (about 2 QPU of the tenant's 12 per 10 s / 600 per hour). "
        "429s are retried after the wait Cost Management asks for."
    ),
    metadata=source_definition_metadata("azure", "cost_management"),
)
def azure_cost_management_costs(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
    return materialize_source(context, finops, "azure", "cost_management", pull_cost_management)


azure_cost_management_checks = source_checks(azure_cost_management_costs.key, "azure", "cost_management")
