"""AWS Cost Explorer as a source: what the core needs to know about it."""

from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.cost_explorer.settings import CostExplorerSettings
from finops_pipeline.defs.aws.diagnosis import classify_aws
from finops_pipeline.diagnosis import Advice, Diagnosis
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits, Rate

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="Cost Explorer may not be activated for this account, or the role cannot read it.",
    fix="AWS Console -> Cost Management -> Cost Explorer: confirm it is active (first activation takes 24 h). "
    "The role needs AWSCostExplorerReadOnlyAccess, or ce:GetCostAndUsage + ce:GetDimensionValues.",
)

EMPTY_PULL = Advice(
    cause="The pulls succeed, but Cost Explorer returns no costs for this account.",
    fix="Check that account_id and the role belong to the payer (management) account: a member account's role sees only "
    "its own costs. A new account has no costs until something runs in it.",
)


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    return classify_aws(exc, detail, kb=NO_DATA, s3=False)


SOURCE = Source(
    provider=PROVIDER,
    name="cost_explorer",
    title="AWS Cost Explorer",
    settings=CostExplorerSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    history_months=13,  # Cost Explorer keeps 13 months of daily data
    # AWS publishes no request rate for GetCostAndUsage (it answers LimitExceededException); the quota is the
    # payer account's, so every pull of one payer shares a conservative 5 requests a second, 2 payers at once.
    limits=PullLimits(concurrency=2, rates=(Rate(5, 1),), key=lambda account: account.settings.get("account_id"), scope="payer account"),
)
