"""The Azure Cost Management Query API as a source."""

from finops_pipeline.defs.azure import PROVIDER
from finops_pipeline.defs.azure.cost_management.diagnosis import NO_DATA, classify
from finops_pipeline.defs.azure.cost_management.settings import CostManagementSettings
from finops_pipeline.diagnosis import Advice
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits, Rate

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
    # Cost Management's query quota is per tenant: 12 QPU per 10 s, 60 per minute, 600 per hour, a query of
    # one month costing about 1 QPU (Microsoft Learn, "Optimize automation for large Azure environments").
    limits=PullLimits(concurrency=4, rates=(Rate(12, 10), Rate(60, 60), Rate(600, 3600)),
                      key=lambda account: account.settings.get("tenant_id", "").lower() or None, scope="tenant"),
)
