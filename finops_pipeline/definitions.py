"""The one Definitions object: `dagster dev` / `dagster asset materialize -m finops_pipeline.definitions`."""


from dagster import Definitions

from finops_pipeline.assets import build_unified_assets
from finops_pipeline.providers.aws.assets import aws_cost_explorer_checks, aws_cost_explorer_costs, aws_cur_checks, aws_cur_costs
from finops_pipeline.providers.aws.sensors import cur_manifest_sensor, refresh_cur_job
from finops_pipeline.providers.azure.assets import azure_cost_management_checks, azure_cost_management_costs
from finops_pipeline.providers.gcp.assets import gcp_bigquery_export_checks, gcp_bigquery_export_costs
from finops_pipeline.providers.digitalocean.assets import digitalocean_billing_checks, digitalocean_billing_costs
from finops_pipeline.resources import FinopsResource
from finops_pipeline.schedules import (
    billing_checks_job,
    check_billing_connections_schedule,
    refresh_costs_job,
    refresh_costs_schedule,
)

SOURCE_ASSETS = [aws_cost_explorer_costs, aws_cur_costs, gcp_bigquery_export_costs, azure_cost_management_costs, digitalocean_billing_costs]
SOURCE_CHECKS = [
    *aws_cost_explorer_checks,
    *aws_cur_checks,
    *gcp_bigquery_export_checks,
    *azure_cost_management_checks,
    *digitalocean_billing_checks,
]

defs = Definitions(
    assets=[*SOURCE_ASSETS, *build_unified_assets(SOURCE_ASSETS)],
    asset_checks=SOURCE_CHECKS,
    jobs=[refresh_costs_job, billing_checks_job, refresh_cur_job],
    schedules=[refresh_costs_schedule, check_billing_connections_schedule],
    sensors=[cur_manifest_sensor],
    resources={"finops": FinopsResource()},
)
