"""GCP's FOCUS export to BigQuery (or a FOCUS view), as a source."""

from finops_pipeline.defs.gcp import PROVIDER
from finops_pipeline.defs.gcp.diagnosis import classify_bigquery
from finops_pipeline.defs.gcp.focus.settings import FocusTableSettings
from finops_pipeline.diagnosis import Advice, Diagnosis
from finops_pipeline.sources import Source
from finops_pipeline.throttle import PullLimits

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="The FOCUS export to BigQuery is not enabled for this billing account, or the service account cannot read it.",
    fix="Billing -> Billing export -> BigQuery export -> FOCUS usage cost: enable it (Google creates the dataset "
    "gcp_billing_immutable_<BILLING_ACCOUNT_ID>_<location> and the table gcp_billing_export_focus_<BILLING_ACCOUNT_ID>; "
    "data appears within a few hours) and set dataset to that dataset, or create a FOCUS view and name it in table; "
    "grant the service account BigQuery Data Viewer on the dataset and BigQuery Job User on project_id.",
)

EMPTY_PULL = Advice(
    cause="The FOCUS table is found, but it holds no costs for this billing account and invoice month.",
    fix="Check billing_account_id against the export's billing account (Billing -> Account management); the FOCUS "
    "export holds data from the day it was enabled on (multi-region datasets: from the previous month), and a month "
    "without usage has no rows.",
)


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    return classify_bigquery(exc, detail, NO_DATA, table="FOCUS table")


SOURCE = Source(
    provider=PROVIDER,
    name="focus",
    title="GCP FOCUS export",
    settings=FocusTableSettings,
    no_data=NO_DATA,
    empty_pull=EMPTY_PULL,
    classify=classify,
    limits=PullLimits(concurrency=8),  # aggregated in BigQuery, like the billing export: a few queries per account
)
