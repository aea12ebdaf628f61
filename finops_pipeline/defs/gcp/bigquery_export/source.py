"""The GCP BigQuery billing export as a source."""

from finops_pipeline.defs.gcp import PROVIDER
from finops_pipeline.defs.gcp.bigquery_export.diagnosis import NO_DATA, classify
from finops_pipeline.defs.gcp.bigquery_export.settings import BigQueryExportSettings
from finops_pipeline.diagnosis import Advice
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits

EMPTY_PULL = Advice(
    cause="The export table is found, but it holds no costs for this billing account and month.",
    fix="Check billing_account_id against the export's billing account (Billing -> Account management); the export "
    "holds data from the day it was enabled on, and a month without usage has no rows.",
)

SOURCE = Source(
    provider=PROVIDER,
    name="bigquery_export",
    title="GCP BigQuery billing export",
    settings=BigQueryExportSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    # BigQuery runs up to 100 interactive queries at once per project; a pull runs a few, so 8 accounts at once.
    limits=PullLimits(concurrency=8),
    default=True,  # registries written before the FOCUS source name no source for gcp
)
