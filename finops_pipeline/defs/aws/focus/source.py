"""AWS Data Exports of the FOCUS table ("FOCUS 1.0/1.2 with AWS columns") on S3, as a source."""

from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.diagnosis import classify_aws
from finops_pipeline.defs.aws.focus.settings import FocusExportSettings
from finops_pipeline.diagnosis import Advice, Diagnosis
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits

NO_DATA = Advice(
    cause="No FOCUS export has been delivered to the bucket yet, or the pipeline cannot read the bucket.",
    fix="AWS Console -> Billing and Cost Management -> Data Exports -> Create: export type 'FOCUS 1.2 with AWS columns' "
    "(or 1.0), Parquet, to the configured bucket and prefix (the first delivery takes up to 24 h); grant the role "
    "s3:ListBucket and s3:GetObject on that bucket and prefix.",
)

EMPTY_PULL = Advice(
    cause="The export is delivered, but its latest manifest lists no costs for this month.",
    fix="Check that the export belongs to the payer (management) account; a month without usage has no rows.",
)


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    return classify_aws(exc, detail, kb=NO_DATA, s3=True)


SOURCE = Source(
    provider=PROVIDER,
    name="focus",
    title="AWS FOCUS export",
    settings=FocusExportSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    limits=PullLimits(concurrency=1),  # like CUR: S3 is not the bound, this machine's memory and cores are (a DuckDB scan)
)
