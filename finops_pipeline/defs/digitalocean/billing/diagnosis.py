"""What DigitalOcean API errors (pydo, on azure-core) mean."""

from __future__ import annotations

from finops_pipeline.diagnosis import ERROR, Advice, Diagnosis

# The knowledge base: why an account shows "No data" 48 hours after it was connected.
NO_DATA = Advice(
    cause="The API token lacks billing read access.",
    fix="Regenerate a token with billing read access (scope billing:read) in API -> Tokens, and update it "
    "in the environment variable the account settings name.",
)

TITLE = "DigitalOcean billing"


def _digitalocean_path(exc: BaseException) -> str:
    """The API path a pydo (azure-core) error came from, without host or query."""
    from urllib.parse import urlsplit

    request = getattr(getattr(exc, "response", None), "request", None)
    return urlsplit(getattr(request, "url", "") or "").path


def classify(exc: BaseException, detail: str) -> Diagnosis | None:
    try:  # pydo is generated on azure-core
        from azure.core.exceptions import DecodeError, HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError:  # pragma: no cover
        return None
    from finops_pipeline.diagnosis import classify_transport, malformed_answer

    kb = NO_DATA
    if isinstance(exc, DecodeError) and getattr(exc, "status_code", None) in (None, 200):
        d = malformed_answer("digitalocean", TITLE, "a body that is not JSON (an HTML page or garbage)").diagnosis
        return Diagnosis(d.code, d.status, d.cause, d.fix, detail, d.retryable)
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
        return classify_transport(exc, detail, "digitalocean", TITLE) or Diagnosis(
            "digitalocean.unreachable", ERROR, "The DigitalOcean API could not be reached.",
            "Check the network (and 'endpoint' in the account settings, if set); the next scheduled refresh retries.",
            detail, retryable=True)
    if isinstance(exc, ServiceResponseError):  # timeouts included: the core tells a timeout from a dropped connection
        return classify_transport(exc, detail, "digitalocean", TITLE) or Diagnosis(
            "digitalocean.unreachable", ERROR, "The DigitalOcean API did not answer.",
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
