"""Azure Cost Management exports (FocusCost, or ActualCost + AmortizedCost cost details) in Blob Storage, as a source."""

from finops_pipeline.defs.azure import PROVIDER
from finops_pipeline.defs.azure.exports.diagnosis import classify
from finops_pipeline.defs.azure.exports.settings import ExportsSettings
from finops_pipeline.diagnosis import Advice
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="No Cost Management export run has delivered to the storage account yet, or the pipeline cannot read the container.",
    fix="Azure portal -> Cost Management -> Exports -> Create: a daily month-to-date export of 'Cost and usage details (FOCUS)' "
    "(or ActualCost and AmortizedCost cost details), CSV or Parquet, to the configured storage account, container and directory "
    "(its first run comes within 24 hours; Run now starts one at once); grant the app registration Storage Blob Data Reader on "
    "the storage account (or give a SAS with read and list permission).",
)

EMPTY_PULL = Advice(
    cause="The export runs and is read, but its newest run says the month has no rows.",
    fix="Check the export's scope (a billing account, billing profile or subscription with usage); a month without usage has no rows.",
)

SOURCE = Source(
    provider=PROVIDER,
    name="exports",
    title="Azure cost export",
    settings=ExportsSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    limits=PullLimits(concurrency=1),  # like CUR: a DuckDB scan of the downloaded blobs, bound by this machine's memory and cores
)
