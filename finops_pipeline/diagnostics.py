"""Provider errors -> a status, a cause and a fix, in the words of the product's knowledge base.

Every failure a user can hit ends here, so the Dagster UI, the connection status table and the
48-hour check all say the same thing, and no bare client traceback reaches the user. Every message
is redacted against the secrets the registry names before it is stored or shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

from finops_pipeline.config import ConfigError, MissingEnvironmentVariable

ERROR = "ERROR"
PENDING = "PENDING"


@dataclass(frozen=True)
class Advice:
    cause: str
    fix: str


# The knowledge base: why an account shows "No data" 48 hours after it was connected, per source.
NO_DATA_ADVICE: dict[tuple[str, str], Advice] = {
    ("aws", "cost_explorer"): Advice(
        cause="Cost Explorer may not be activated for this account, or the role cannot read it.",
        fix="AWS Console -> Cost Management -> Cost Explorer: confirm it is active (first activation takes 24 h). "
        "The role needs AWSCostExplorerReadOnlyAccess, or ce:GetCostAndUsage + ce:GetDimensionValues.",
    ),
    ("aws", "cur"): Advice(
        cause="No Cost and Usage Report has been delivered to the bucket yet, or the pipeline cannot read the bucket.",
        fix="AWS Console -> Billing and Cost Management -> Data Exports (CUR 2.0) or Cost and Usage Reports (legacy): "
        "confirm the export exists and delivers to the configured bucket and prefix (the first delivery takes up to 24 h); "
        "grant the role s3:ListBucket and s3:GetObject on that bucket and prefix.",
    ),
    ("gcp", "bigquery_export"): Advice(
        cause="The BigQuery billing export is not configured, or the service account has no access to it.",
        fix="Verify the dataset name in the account settings (Billing -> Billing export -> BigQuery export); "
        "grant the service account BigQuery Data Viewer on the billing dataset.",
    ),
    ("azure", "cost_management"): Advice(
        cause="Cost Management Reader is not assigned at subscription level.",
        fix="Assign the Cost Management Reader role at the subscription (not a resource group) to the app "
        "registration's service principal: Subscription -> Access control (IAM) -> Add role assignment.",
    ),
    ("digitalocean", "billing"): Advice(
        cause="The API token lacks billing read access.",
        fix="Regenerate a token with billing read access (scope billing:read) in API -> Tokens, and update it "
        "in the environment variable the account settings name.",
    ),
}


@dataclass(frozen=True)
class Diagnosis:
    code: str  # stable machine-readable name, e.g. aws.cost_explorer_not_enabled
    status: str  # ERROR, or PENDING for "data not there yet" while inside the 48-hour window
    cause: str
    fix: str
    detail: str  # the provider's own message, redacted
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"{self.cause} Fix: {self.fix}"


class ProviderError(Exception):
    """Raised by provider code for a condition it recognised itself (a missing manifest, no export table)."""

    def __init__(self, diagnosis: Diagnosis):
        self.diagnosis = diagnosis
        super().__init__(f"{diagnosis.cause} Fix: {diagnosis.fix} ({diagnosis.detail})")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def no_data_advice(provider: str, source: str) -> Advice:
    return NO_DATA_ADVICE[(provider, source)]


def diagnose(provider: str, source: str, exc: BaseException, secrets: Iterable[str] = ()) -> Diagnosis:
    """Classify any exception raised while pulling one account. Unknown errors still get a status and a hint."""
    secrets = list(secrets)
    if isinstance(exc, ProviderError):
        d = exc.diagnosis
        return Diagnosis(d.code, d.status, d.cause, d.fix, redact(d.detail, secrets), d.retryable)
    detail = redact(f"{type(exc).__name__}: {exc}", secrets)[:2000]
    if isinstance(exc, MissingEnvironmentVariable):
        return Diagnosis("config.missing_environment_variable", ERROR, f"Environment variable {exc.variable} is not set.", str(exc).split("Fix: ", 1)[-1], detail)
    if isinstance(exc, ConfigError):
        return Diagnosis("config.invalid", ERROR, "The account's settings in finops.yaml are not usable.", "Correct the field named in the detail and run again.", detail)
    for classify in _CLASSIFIERS.get(provider, ()):
        found = classify(source, exc, detail)
        if found is not None:
            return found
    advice = NO_DATA_ADVICE.get((provider, source))
    return Diagnosis(
        code=f"{provider}.unexpected_error",
        status=ERROR,
        cause=f"Unexpected error while reading {provider} billing ({type(exc).__name__}).",
        fix=(advice.fix if advice else "See the detail.") + " If the settings are right, retry later; report the detail if it persists.",
        detail=detail,
    )


# --- AWS -------------------------------------------------------------------------------------------

def _aws(source: str, exc: BaseException, detail: str) -> Diagnosis | None:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ParamValidationError

    if isinstance(exc, NoCredentialsError):
        return Diagnosis("aws.no_credentials", ERROR, "No AWS credentials were found for the pipeline.",
                         "Set access_key_id_env/secret_access_key_env in the account settings, or give the process "
                         "credentials through the default chain (AWS_PROFILE, instance role).", detail)
    if isinstance(exc, EndpointConnectionError):
        return Diagnosis("aws.unreachable", ERROR, "The AWS endpoint could not be reached.",
                         "Check the network and endpoint_url in the account settings.", detail, retryable=True)
    if isinstance(exc, ParamValidationError):
        return Diagnosis("aws.bad_request", ERROR, "The request to AWS was not valid.", "Check the account settings.", detail)
    if not isinstance(exc, ClientError):
        return None
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "")
    operation = getattr(exc, "operation_name", "")
    kb = NO_DATA_ADVICE[("aws", source)] if ("aws", source) in NO_DATA_ADVICE else NO_DATA_ADVICE[("aws", "cost_explorer")]

    if operation == "AssumeRole" or code in {"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken"}:
        return Diagnosis("aws.assume_role_failed", ERROR,
                         "The pipeline could not assume the billing role (wrong role ARN, external id, or trust policy).",
                         "Check role_arn and the external id in the account settings; the role's trust policy must allow "
                         "the pipeline's principal with that external id.", detail)
    if "not enabled for cost explorer" in message.lower():
        return Diagnosis("aws.cost_explorer_not_enabled", PENDING,
                         "Cost Explorer is not activated for this account.",
                         "AWS Console -> Cost Management -> Cost Explorer: activate it (first activation takes 24 h).", detail)
    if code == "DataUnavailableException":
        return Diagnosis("aws.data_unavailable", PENDING, "Cost Explorer has not ingested data for this period yet.",
                         "Wait: billing data appears 24 to 48 hours after access is granted. " + kb.fix, detail, retryable=True)
    if code in {"LimitExceededException", "ThrottlingException", "RequestLimitExceeded", "SlowDown"}:
        return Diagnosis("aws.throttled", ERROR, "AWS throttled the requests and retries ran out.",
                         "Nothing to change: the next scheduled refresh retries. Avoid running many refreshes at once.", detail, retryable=True)
    if source == "cur" and code in {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}:
        return Diagnosis("aws.s3_wrong_region", ERROR, "The CUR bucket is in another region than the one configured.",
                         "Set region in the account settings to the bucket's region (S3 console -> the bucket -> Properties).", detail)
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled", "403", "Forbidden"}:
        if source == "cur":
            return Diagnosis("aws.s3_access_denied", ERROR, "The pipeline may not read the Cost and Usage Report bucket.",
                             "Grant the role (or access key) s3:ListBucket on the bucket and s3:GetObject on the export prefix "
                             "(plus kms:Decrypt on the key if the bucket uses SSE-KMS).", detail)
        return Diagnosis("aws.cost_explorer_access_denied", ERROR,
                         "The role is missing the Cost Explorer read permission.",
                         "Attach AWSCostExplorerReadOnlyAccess to the role, or a policy allowing ce:GetCostAndUsage and "
                         "ce:GetDimensionValues.", detail)
    if code in {"NoSuchBucket"}:
        return Diagnosis("aws.no_such_bucket", ERROR, "The configured S3 bucket does not exist.",
                         "Check 'bucket' in the account settings against the export's destination.", detail)
    if code in {"NoSuchKey", "404", "NotFound"}:
        return Diagnosis("aws.object_missing", ERROR, "An object the report names is missing from the bucket.", kb.fix, detail)
    return None


# --- GCP -------------------------------------------------------------------------------------------

def _gcp(source: str, exc: BaseException, detail: str) -> Diagnosis | None:
    try:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as gauth
    except ImportError:  # pragma: no cover - the dependency is always installed
        return None
    kb = NO_DATA_ADVICE[("gcp", "bigquery_export")]
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
        return Diagnosis("gcp.dataset_not_found", ERROR, "The billing dataset was not found: wrong dataset name or project, or the export is not enabled.", kb.fix, detail)
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
        from requests.exceptions import ConnectionError as RequestsConnectionError, Timeout
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, (RequestsConnectionError, Timeout)):
        return Diagnosis("gcp.unreachable", ERROR, "The BigQuery API could not be reached.",
                         "Check the network (and api_endpoint in the account settings, if set).", detail, retryable=True)
    return None


# --- Azure -----------------------------------------------------------------------------------------

def _azure_error_code(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    return code or ""


def _azure_wait(exc: BaseException) -> str:
    """The wait a 429 asked for, from Cost Management's retry headers, as words for the user."""
    from finops_pipeline.providers.azure.client import throttle_wait  # the one reader of those headers

    response = getattr(exc, "response", None)
    wait = throttle_wait(getattr(response, "headers", None) or {})
    return f" Cost Management asked to wait {wait:g} s, longer than max_throttle_wait_seconds allows." if wait is not None else ""


def _azure(source: str, exc: BaseException, detail: str) -> Diagnosis | None:
    try:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, ServiceRequestError
    except ImportError:  # pragma: no cover
        return None
    kb = NO_DATA_ADVICE[("azure", "cost_management")]
    code = _azure_error_code(exc)
    text = str(exc)
    status = getattr(exc, "status_code", None)
    # Match on the error code, not the status: RBACAccessDenied arrives as 401 as well as 403.
    if code in {"RBACAccessDenied", "AuthorizationFailed"} or "RBACAccessDenied" in text:
        return Diagnosis("azure.rbac_access_denied", ERROR,
                         kb.cause + " The app registration signed in, but may not read costs of this subscription "
                         "(a role on a resource group only, or no role at all).",
                         kb.fix + " A new assignment can take up to 30 minutes to apply.", detail)
    if "CERTIFICATE_VERIFY_FAILED" in text:  # at sign-in (ClientAuthenticationError) or at the query (ServiceRequestError)
        return Diagnosis("azure.tls_untrusted", ERROR, "The Azure endpoint's TLS certificate is not trusted by this machine.",
                         "Check 'endpoint' / 'authority_host' in the account settings; behind a TLS-inspecting proxy, name a PEM "
                         "file with its CA in the account's 'ca_bundle'.", detail)
    if code == "InvalidAuthenticationTokenTenant":
        return Diagnosis("azure.subscription_in_other_tenant", ERROR,
                         "The subscription belongs to a different Entra ID tenant than the configured tenant_id.",
                         "Set tenant_id to the tenant that owns the subscription (Subscriptions -> the subscription -> Overview shows "
                         "its directory) with an app registration of that tenant, or correct subscription_id.", detail)
    if "AADSTS7000215" in text or "AADSTS7000222" in text or "invalid_client" in text:
        return Diagnosis("azure.bad_client_secret", ERROR, "Entra ID refused the app registration's client secret (wrong, expired, or the secret ID instead of its value).",
                         "In Entra ID -> App registrations -> the app -> Certificates & secrets, create a new client secret and put "
                         "its Value (not the Secret ID) in the environment variable client_secret_env names.", detail)
    if "AADSTS700016" in text:
        return Diagnosis("azure.unknown_client_id", ERROR, "Entra ID has no application with this client_id in the tenant.",
                         "Check client_id against the app registration's Application (client) ID, and tenant_id against its "
                         "Directory (tenant) ID (App registrations -> the app -> Overview).", detail)
    if "AADSTS90002" in text or "Unable to get authority configuration" in text:
        return Diagnosis("azure.unknown_tenant", ERROR, "Entra ID does not know the configured tenant_id (or the cloud is wrong).",
                         "Check tenant_id against the app registration's Directory (tenant) ID, and 'cloud' / 'authority_host' "
                         "in the account settings for sovereign clouds.", detail)
    if code in {"SubscriptionNotFound", "InvalidSubscriptionId"} or isinstance(exc, ResourceNotFoundError):
        return Diagnosis("azure.subscription_not_found", ERROR, "The subscription was not found.",
                         "Check subscription_id in the account settings (Subscriptions -> Subscription ID); it must belong to the "
                         "app registration's tenant and the configured cloud.", detail)
    if isinstance(exc, HttpResponseError) and status == 429:
        return Diagnosis("azure.throttled", ERROR, "Cost Management throttled the queries (QPU quota per tenant) and retries ran out." + _azure_wait(exc),
                         "Nothing to change: the next scheduled refresh retries. Other tools querying Cost Management in the same "
                         "tenant share the quota; raise max_throttle_wait_seconds to wait longer.", detail, retryable=True)
    if isinstance(exc, ServiceRequestError):
        return Diagnosis("azure.unreachable", ERROR, "The Azure endpoint could not be reached.",
                         "Check the network and 'endpoint' / 'cloud' in the account settings.", detail, retryable=True)
    if isinstance(exc, ClientAuthenticationError) or (isinstance(exc, HttpResponseError) and status in (401, 403)):
        return Diagnosis("azure.access_denied", ERROR, kb.cause, kb.fix, detail)
    return None


# --- DigitalOcean ----------------------------------------------------------------------------------

def _digitalocean_path(exc: BaseException) -> str:
    """The API path a pydo (azure-core) error came from, without host or query."""
    from urllib.parse import urlsplit

    request = getattr(getattr(exc, "response", None), "request", None)
    return urlsplit(getattr(request, "url", "") or "").path


def _digitalocean(source: str, exc: BaseException, detail: str) -> Diagnosis | None:
    try:  # pydo is generated on azure-core
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError:  # pragma: no cover
        return None
    kb = NO_DATA_ADVICE[("digitalocean", "billing")]
    if isinstance(exc, ServiceRequestError):
        text = str(exc)
        if "non-TLS" in text or "non-https" in text:
            return Diagnosis("digitalocean.endpoint_not_https", ERROR,
                             "The DigitalOcean endpoint is not https, and the API token is never sent in clear text.",
                             "Set 'endpoint' in the account settings to an https:// URL, or remove it to use https://api.digitalocean.com.", detail)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text or "certificate" in text.lower():
            return Diagnosis("digitalocean.tls_untrusted", ERROR,
                             "The DigitalOcean endpoint's TLS certificate is not trusted.",
                             "Check 'endpoint' in the account settings; behind a TLS-inspecting proxy, set 'ca_bundle' to the "
                             "proxy's CA file (PEM).", detail)
        return Diagnosis("digitalocean.unreachable", ERROR, "The DigitalOcean API could not be reached.",
                         "Check the network (and 'endpoint' in the account settings, if set); the next scheduled refresh retries.",
                         detail, retryable=True)
    if isinstance(exc, ServiceResponseError):
        return Diagnosis("digitalocean.unreachable", ERROR, "The DigitalOcean API did not answer.",
                         "Nothing to change if it is temporary: the next scheduled refresh retries.", detail, retryable=True)
    if not isinstance(exc, HttpResponseError):
        return None
    status = getattr(exc, "status_code", None)
    path = _digitalocean_path(exc)
    detail = f"HTTP {status} from {path or 'the API'}: {detail}"
    if status == 401:
        return Diagnosis("digitalocean.token_rejected", ERROR,
                         "DigitalOcean rejected the API token: it was revoked, has expired, or is mistyped.", kb.fix, detail)
    if status == 403 and path.rstrip("/") == "/v2/account":
        return Diagnosis("digitalocean.missing_account_scope", ERROR,
                         "The API token may not read the account (scope account:read), which the pipeline needs to find the team.",
                         "Regenerate a token with billing read access (billing:read) and account:read in API -> Tokens, and "
                         "update it in the environment variable the account settings name.", detail)
    if status == 403:
        return Diagnosis("digitalocean.missing_billing_scope", ERROR, kb.cause, kb.fix, detail)
    if status == 429:
        return Diagnosis("digitalocean.throttled", ERROR,
                         "DigitalOcean rate-limited the requests (250 a minute, 5,000 an hour per token) and retries ran out.",
                         "Nothing to change: the next scheduled refresh retries. Other tools sharing this token share its limits.",
                         detail, retryable=True)
    if status is not None and status >= 500:
        return Diagnosis("digitalocean.unavailable", ERROR, "The DigitalOcean API failed with a server error and retries ran out.",
                         "Nothing to change: the next scheduled refresh retries.", detail, retryable=True)
    if status == 400:
        return Diagnosis("digitalocean.bad_request", ERROR, f"DigitalOcean refused the request to {path or 'the API'}.",
                         "Check 'endpoint' in the account settings; report the detail if it persists.", detail)
    return None


_CLASSIFIERS = {"aws": (_aws,), "gcp": (_gcp,), "azure": (_azure,), "digitalocean": (_digitalocean,)}
