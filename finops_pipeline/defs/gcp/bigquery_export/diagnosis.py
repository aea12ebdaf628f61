"""The billing export source's knowledge-base advice, and its error reading (the shared BigQuery one)."""

from __future__ import annotations

from finops_pipeline.defs.gcp.diagnosis import classify_bigquery
from finops_pipeline.diagnosis import Advice, Diagnosis

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="The BigQuery billing export is not configured, or the service account has no access to it.",
    fix="Verify the dataset name in the account settings (Billing -> Billing export -> BigQuery export); "
    "grant the service account BigQuery Data Viewer on the billing dataset.",
)


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    return classify_bigquery(exc, detail, NO_DATA)
