"""The Azure Cost Management Query API as a source."""

from finops_pipeline.defs.azure import PROVIDER
from finops_pipeline.defs.azure.cost_management.diagnosis import NO_DATA, classify
from finops_pipeline.defs.azure.cost_management.settings import CostManagementSettings
from finops_pipeline.diagnosis import Advice
from finops_pipeline.sources import Source

EMPTY_PULL = Advice(
    cause="The queries succeed, but Cost Management returns no costs for this subscription.",
    fix="Check subscription_id: a subscription without resources has no costs, and costs of a new subscription "
    "appear 8 to 24 hours after use.",
)

SOURCE = Source(
    provider=PROVIDER,
    name="cost_management",
    title="Azure Cost Management",
    settings=CostManagementSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    default=True,  # registries written before the exports source name no source for Azure
)
