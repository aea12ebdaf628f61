"""What Entra ID and Cost Management errors mean."""

from __future__ import annotations

import re

from finops_pipeline.diagnosis import ERROR, Advice, Diagnosis, exception_chain

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


TITLE = "Azure Cost Management"
_TRANSPORT_SIGNS = ("Failed to resolve", "Name or service not known", "Temporary failure in name resolution", "Connection refused",
                    "timed out", "Failed to establish a new connection", "Connection aborted", "Connection reset", "SSLError")
_MALFORMED_SIGN_IN = ("Expecting value", "not in json format", "Authentication failed: None", "JSONDecodeError")


def _chain_text(exc: BaseException) -> str:
    """The whole chain as text (MSAL keeps Entra ID's answer in what the error was raised from)."""
    return " | ".join(f"{type(e).__name__}: {e}" for e in exception_chain(exc))


def _sign_in(exc: BaseException, text: str, detail: str) -> Diagnosis | None:
    """Entra ID failures that are not about the tenant, the app or its secret: the sign-in endpoint itself."""
    from finops_pipeline.diagnosis import classify_transport, malformed_answer

    if any(sign in text for sign in _TRANSPORT_SIGNS):  # DNS, refused, timeout: the core reads the chain
        return classify_transport(exc, detail, "azure", "Entra ID sign-in")
    status = re.search(r"HTTP Error: (\d{3})|HTTP status: (\d{3})", text)
    code = int(next(g for g in status.groups() if g)) if status else None
    # An error page that is not JSON fails azure-core's decoding before MSAL sees the status: read it there.
    answered = [getattr(getattr(e, "response", None), "status_code", None) for e in exception_chain(exc)]
    code = code or next((s for s in answered if isinstance(s, int) and s >= 400), None)
    if code is not None and code >= 500 or "Unable to complete OIDC Discovery" in text:
        return Diagnosis("azure.sign_in_unavailable", ERROR,
                         f"Entra ID (the sign-in endpoint) failed with a server error{f' (HTTP {code})' if code else ''}; nothing was read.",
                         "Nothing to change in the settings: the next refresh retries. If it persists, check Azure's status page and "
                         "'authority_host' / 'cloud' in the account settings.", detail, retryable=True)
    if any(sign in text for sign in _MALFORMED_SIGN_IN) or ("Unable to get authority configuration" in text and code is None):
        fix = malformed_answer("azure", "Entra ID", "").diagnosis.fix
        return Diagnosis("azure.malformed_answer", ERROR,
                         "Entra ID (the sign-in endpoint) answered, but with neither a token nor an error the pipeline can read; "
                         "nothing was read and the month keeps its last good data.",
                         fix.replace("the endpoint in the account settings", "'authority_host' / 'cloud' in the account settings"),
                         detail, retryable=True)
    return None


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    try:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, ServiceRequestError
    except ImportError:  # pragma: no cover
        return None
    from finops_pipeline.diagnosis import classify_transport

    kb = NO_DATA
    code = _azure_error_code(exc)
    text = _chain_text(exc)
    status = getattr(exc, "status_code", None)
    # Match on the error code, not the status: RBACAccessDenied arrives as 401 as well as 403. Only these
    # codes say the role is missing; a sign-in that failed says nothing about the role.
    if code in {"RBACAccessDenied", "AuthorizationFailed"}:
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
    if "AADSTS90002" in text or ("Unable to get authority configuration" in text and re.search(r"HTTP status: 4\d\d", text)):
        return Diagnosis("azure.unknown_tenant", ERROR, "Entra ID does not know the configured tenant_id (or the cloud is wrong).",
                         "Check tenant_id against the app registration's Directory (tenant) ID, and 'cloud' / 'authority_host' "
                         "in the account settings for sovereign clouds.", detail)
    if isinstance(exc, ClientAuthenticationError) and not isinstance(exc, HttpResponseError) or (
            isinstance(exc, ClientAuthenticationError) and getattr(exc, "response", None) is None):
        found = _sign_in(exc, text, detail)
        if found is not None:
            return found
        return Diagnosis("azure.sign_in_failed", ERROR, "Entra ID did not sign the app registration in, for a reason the pipeline does not recognise.",
                         "Read the detail (Entra ID's AADSTS code says why); check tenant_id, client_id and the secret in the variable "
                         "client_secret_env names.", detail)
    if code in {"SubscriptionNotFound", "InvalidSubscriptionId"} or isinstance(exc, ResourceNotFoundError):
        return Diagnosis("azure.subscription_not_found", ERROR, "The subscription was not found.",
                         "Check subscription_id in the account settings (Subscriptions -> Subscription ID); it must belong to the "
                         "app registration's tenant and the configured cloud.", detail)
    if isinstance(exc, HttpResponseError) and status == 429:
        return Diagnosis("azure.throttled", ERROR, "Cost Management throttled the queries (QPU quota per tenant) and retries ran out." + _azure_wait(exc),
                         "Nothing to change: the next scheduled refresh retries. Other tools querying Cost Management in the same "
                         "tenant share the quota; raise max_throttle_wait_seconds to wait longer.", detail, retryable=True)
    if isinstance(exc, HttpResponseError) and status is not None and status >= 500:
        return Diagnosis("azure.provider_error", ERROR,
                         f"Cost Management failed with a server error (HTTP {status}) and the retries within give_up_after_seconds ran out.",
                         "Nothing to change in the settings: the next refresh retries. If it persists, check Azure's status page.",
                         detail, retryable=True)
    if isinstance(exc, ServiceRequestError):
        return classify_transport(exc, detail, "azure", TITLE) or Diagnosis(
            "azure.unreachable", ERROR, "The Azure endpoint could not be reached.",
            "Check the network and 'endpoint' / 'cloud' in the account settings.", detail, retryable=True)
    if isinstance(exc, HttpResponseError) and status in (401, 403):
        return Diagnosis("azure.access_denied", ERROR,
                         f"Cost Management refused the request (HTTP {status}{f', {code}' if code else ''}) without saying a role is missing.",
                         "Read the detail: an expired or foreign token points at 'cloud' / 'endpoint' / 'authority_host' in the account "
                         "settings; the next refresh signs in again.", detail)
    return None
