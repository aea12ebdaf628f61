"""What BigQuery and Google auth errors mean for the billing export source."""

from __future__ import annotations

from finops_pipeline.diagnosis import ERROR, Advice, Diagnosis

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="The BigQuery billing export is not configured, or the service account has no access to it.",
    fix="Verify the dataset name in the account settings (Billing -> Billing export -> BigQuery export); "
    "grant the service account BigQuery Data Viewer on the billing dataset.",
)

def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    try:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as gauth
    except ImportError:  # pragma: no cover - the dependency is always installed
        return None
    kb = NO_DATA
    if isinstance(exc, (gauth.DefaultCredentialsError, gauth.RefreshError)):
        return Diagnosis("gcp.credentials", ERROR, "The Google credentials could not be loaded or were refused.",
                         "Set credentials_env to a variable holding the service account key (file path or JSON), "
                         "or configure application default credentials.", detail)
    text = str(exc)
    if isinstance(exc, gexc.NotFound):
        if "Not found: Table" in text:
            return Diagnosis("gcp.export_table_not_found", ERROR, "The billing export table disappeared from the dataset while it was read.",
                             "Check that the BigQuery billing export is still enabled into this dataset; the next refresh finds "
                             "the table again. " + kb.fix, detail, retryable=True)
        return Diagnosis("gcp.dataset_not_found", ERROR,
                         "The billing dataset was not found: wrong dataset name or project, or the export is not enabled.", kb.fix, detail)
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
        if "jobs.create" in text:
            return Diagnosis("gcp.cannot_run_queries", ERROR, "The service account may not run query jobs in the query project.",
                             "Grant the service account BigQuery Job User (roles/bigquery.jobUser) on the project named by "
                             "project_id in the account settings.", detail)
        if "has not been used in project" in text or "is disabled" in text:
            return Diagnosis("gcp.bigquery_api_disabled", ERROR, "The BigQuery API is disabled in the query project.",
                             "Enable the BigQuery API (APIs & Services -> Library -> BigQuery API) in the project named by "
                             "project_id, then wait a few minutes.", detail)
        return Diagnosis("gcp.permission_denied", ERROR, "The service account may not read the billing dataset.",
                         "Grant the service account BigQuery Data Viewer on the billing dataset (and BigQuery Job User on "
                         "the query project).", detail)
    if isinstance(exc, (gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.InternalServerError)):
        return Diagnosis("gcp.unavailable", ERROR, "BigQuery was busy or unavailable and retries ran out.",
                         "Nothing to change: the next scheduled refresh retries.", detail, retryable=True)
    if isinstance(exc, gexc.BadRequest):
        return Diagnosis("gcp.query_rejected", ERROR, "BigQuery rejected the export query; the export table's schema may differ from the billing export's.",
                         "Check that the table is an unmodified Cloud Billing export (standard or detailed usage cost); "
                         "report the detail if it is.", detail)
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import Timeout
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, (RequestsConnectionError, Timeout)):
        return Diagnosis("gcp.unreachable", ERROR, "The BigQuery API could not be reached.",
                         "Check the network (and api_endpoint in the account settings, if set).", detail, retryable=True)
    return None
