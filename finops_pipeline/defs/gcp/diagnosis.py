"""What BigQuery and Google auth errors mean, for every BigQuery source (each passes its knowledge-base advice)."""

from __future__ import annotations

from finops_pipeline.defs.gcp.client import GaveUp
from finops_pipeline.diagnosis import ERROR, Advice, Diagnosis


def classify_bigquery(exc: BaseException, detail: str, kb: Advice, table: str = "billing export table") -> Diagnosis | None:
    """BigQuery's own errors. Network failures (DNS, TLS, timeouts, refused) are left to the core's
    transport diagnosis, which reads the whole exception chain; answers that are not BigQuery's never
    get here (they are refused as malformed before the client reads them)."""
    try:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as gauth
    except ImportError:  # pragma: no cover - the dependency is always installed
        return None
    if isinstance(exc, gexc.RetryError):  # the retries ran out of time: what the last attempt met decides
        return classify_bigquery(exc.cause, detail, kb, table) if exc.cause is not None else None
    if isinstance(exc, GaveUp):  # give_up_after_seconds spent: a server error if that is what it kept getting
        return classify_bigquery(exc.last_error, detail, kb, table) if exc.last_error is not None else None
    if isinstance(exc, (gauth.DefaultCredentialsError, gauth.RefreshError)):
        return Diagnosis("gcp.credentials", ERROR, "The Google credentials could not be loaded or were refused.",
                         "Set credentials_env to a variable holding the service account key (file path or JSON), "
                         "or configure application default credentials.", detail)
    text = str(exc)
    if isinstance(exc, gexc.NotFound):
        if "Not found: Table" in text:
            return Diagnosis("gcp.export_table_not_found", ERROR, f"The {table} disappeared from the dataset while it was read.",
                             f"Check that the {table} is still in this dataset (the export still enabled); the next refresh finds "
                             "it again. " + kb.fix, detail, retryable=True)
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
    if isinstance(exc, gexc.ServerError):
        return Diagnosis("gcp.provider_error", ERROR,
                         f"BigQuery answered with a server error (HTTP {exc.code}) until the retries ran out; "
                         "the fault is on Google's side, not in the settings. The month keeps its last good data.",
                         "Nothing to change in the settings: retry later (the next scheduled refresh does). If it lasts, "
                         "check the Google Cloud status page for BigQuery.", detail, retryable=True)
    if isinstance(exc, gexc.TooManyRequests):
        return Diagnosis("gcp.throttled", ERROR, "BigQuery kept refusing requests as too many (HTTP 429) until the retries ran out.",
                         "Nothing to change in the settings: the next scheduled refresh retries. If it lasts, check the "
                         "query project's BigQuery quotas (IAM & Admin -> Quotas).", detail, retryable=True)
    if isinstance(exc, gexc.BadRequest):
        return Diagnosis("gcp.query_rejected", ERROR, "BigQuery rejected the export query; the export table's schema may differ from the billing export's.",
                         "Check that the table is an unmodified Cloud Billing export (standard or detailed usage cost); "
                         "report the detail if it is.", detail)
    return None  # network failures: the core's transport diagnosis reads the chain
