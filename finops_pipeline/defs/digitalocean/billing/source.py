"""DigitalOcean billing (insights, invoices, balance) as a source."""

from finops_pipeline.defs.digitalocean import PROVIDER
from finops_pipeline.defs.digitalocean.billing.diagnosis import NO_DATA, classify
from finops_pipeline.defs.digitalocean.billing.settings import BillingSettings
from finops_pipeline.diagnosis import Advice
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits, Rate

EMPTY_PULL = Advice(
    cause="The pulls succeed, but billing insights report no usage for this team.",
    fix="Check that the token belongs to the team that owns the resources (tokens are per team); a team without "
    "billable resources has no data.",
)

SOURCE = Source(
    provider=PROVIDER,
    name="billing",
    title="DigitalOcean billing",
    settings=BillingSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    # 250 requests a minute and 5,000 an hour per token; each team has its own token, so many teams run at once.
    limits=PullLimits(concurrency=16, rates=(Rate(250, 60), Rate(5000, 3600)), key=lambda account: account.env("token_env"), scope="token"),
)
