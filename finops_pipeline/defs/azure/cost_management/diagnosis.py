"""What Entra ID and Cost Management errors mean."""

from __future__ import annotations

from finops_pipeline.diagnosis import ERROR, Advice, Diagnosis

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="Cost Management Reader is not assigned at subscription level.",
    fix="Assign the Cost Management Reader role at the subscription (not a resource group) to the app "
    "registration's service principal: Subscription -> Access control (IAM) -> Add role assignment.",
)

def _azure_error_code(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    return code or ""


def _azure_wait(exc: BaseException) -> str:
    """The wait a 429 asked for, from Cost Management's retry headers, as words for the user."""
    from finops_pipeline.defs.azure.cost_management.client import throttle_wait  # the one reader of those headers

    response = getattr(exc, "response", None)
    wait = throttle_wait(getattr(response, "headers", None) or {})
    return f" Cost Management asked to wait {wait:g} s, longer than max_throttle_wait_seconds allows." if wait is not None else ""


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    try:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, ServiceRequestError
    except ImportError:  # pragma: no cover
        return None
    kb = NO_DATA
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
        return Diagnosis("azure.bad_client_secret", ERROR,
                         "Entra ID refused the app registration's client secret (wrong, expired, or the secret ID instead of its value).",
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
