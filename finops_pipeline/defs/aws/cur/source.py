"""AWS Cost and Usage Reports on S3 (legacy CUR and CUR 2.0) as a source."""

from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.cur.settings import CurSettings
from finops_pipeline.defs.aws.diagnosis import classify_aws
from finops_pipeline.diagnosis import Advice, Diagnosis
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="No Cost and Usage Report has been delivered to the bucket yet, or the pipeline cannot read the bucket.",
    fix="AWS Console -> Billing and Cost Management -> Data Exports (CUR 2.0) or Cost and Usage Reports (legacy): "
    "confirm the export exists and delivers to the configured bucket and prefix (the first delivery takes up to 24 h); "
    "grant the role s3:ListBucket and s3:GetObject on that bucket and prefix.",
)

EMPTY_PULL = Advice(
    cause="The report is delivered, but its latest manifest lists no costs for this month.",
    fix="Check that the export belongs to the payer (management) account and is not filtered to other accounts; "
    "a month without usage has no line items.",
)


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    return classify_aws(exc, detail, kb=NO_DATA, s3=True)


SOURCE = Source(
    provider=PROVIDER,
    name="cur",
    title="AWS Cost and Usage Reports",
    settings=CurSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    # S3 allows thousands of GETs a second per prefix; the bound is this machine: a month of CUR is a
    # DuckDB scan holding up to its 1 GB memory limit and using every core, so one at a time by default.
    limits=PullLimits(concurrency=1),
)
