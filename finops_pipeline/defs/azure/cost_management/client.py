"""Signing in as the app registration and talking to Cost Management within its quota.

The client is the real azure-mgmt-costmanagement one; what we add is the cloud's endpoints (public,
China, US Government, or an explicit endpoint) and a retry policy that understands Cost
Management's throttling: a 429 says how long to wait in `x-ms-ratelimit-microsoft.costmanagement-
*-retry-after` (or Retry-After). We wait exactly that, a bounded number of times, and give up at
once when the wait asked for is longer than the account's `max_throttle_wait_seconds`: waiting less
would only spend quota on another 429.

Time is bounded (finops_pipeline.http_budget): the sign-in (azure-identity's own pipeline) and the
queries share one Deadline per pull, the account's `give_up_after_seconds`; every attempt has a
connect and a read timeout cut to the time left, and a retry whose wait would pass it is not taken.
The tenant's quota (12 QPU per 10 s, 60 per minute, 600 per hour) is metered before each query by
finops_pipeline.throttle, shared by every pull of the tenant, and a 429's wait holds them all back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from finops_pipeline import throttle
from finops_pipeline.config import Account
from finops_pipeline.http_budget import Deadline, bounded, requests_transport
from finops_pipeline.tls import connection_verify

if TYPE_CHECKING:  # the Azure SDK is imported where a client is made: loading the definitions stays cheap
    from azure.identity import ClientSecretCredential
    from azure.mgmt.costmanagement import CostManagementClient

# cloud setting -> (management endpoint, Entra ID authority host). The hosts are azure.identity's
# AzureAuthorityHosts values, spelled out so that this module does not import the SDK (a test checks them).
CLOUDS = {
    "public": ("https://management.azure.com", "login.microsoftonline.com"),
    "china": ("https://management.chinacloudapi.cn", "login.chinacloudapi.cn"),
    "usgovernment": ("https://management.usgovcloudapi.net", "login.microsoftonline.us"),
}
_KNOWN_AUTHORITIES = {host for _, host in CLOUDS.values()}
RATE_LIMIT_PREFIX = "x-ms-ratelimit-microsoft.costmanagement-"
QPU_CONSUMED = RATE_LIMIT_PREFIX + "qpu-consumed"
QPU_REMAINING = RATE_LIMIT_PREFIX + "qpu-remaining"
DEFAULT_MAX_THROTTLE_WAIT = 60
THROTTLE_RETRIES = 4
SIGN_IN_RETRIES = 2  # Entra ID: a blip is retried twice, within the pull's deadline


def endpoints(account: Account) -> tuple[str, str]:
    """(management endpoint, authority host) for the account's cloud, overrides applied."""
    management, authority = CLOUDS[account.settings.get("cloud", "public")]
    return account.settings.get("endpoint", management).rstrip("/"), account.settings.get("authority_host", authority)


def throttle_wait(headers: Any) -> float | None:
    """The longest wait any of Cost Management's retry-after headers asks for, in seconds."""
    waits = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "retry-after" or (lowered.startswith("x-ms-ratelimit-microsoft.") and lowered.endswith("retry-after")):
            try:
                waits.append(float(value))
            except (TypeError, ValueError):
                continue
    return max(waits) if waits else None


@dataclass
class QuotaMeter:
    """What one pull cost: HTTP requests to the Query API, 429s, seconds waited, QPU consumed."""

    account: Account | None = None  # whose tenant: a 429's retry-after holds back every pull of the tenant
    requests: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    qpu_consumed: float = 0.0
    qpu_remaining: str | None = None
    statuses: dict[int, int] = field(default_factory=dict)

    def record(self, response: Any) -> None:
        self.requests += 1
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        headers = response.headers
        if status == 429:
            self.throttled += 1
            wait = throttle_wait(headers)
            if self.account is not None and wait:
                throttle.back_off(self.account, wait)
        consumed = headers.get(QPU_CONSUMED)
        if consumed:
            try:
                self.qpu_consumed += float(consumed)
            except ValueError:
                pass
        if headers.get(QPU_REMAINING):
            self.qpu_remaining = headers.get(QPU_REMAINING)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "query_requests": self.requests,
            "throttled_responses": self.throttled,
            "throttle_wait_seconds": round(self.waited_seconds, 3),
            "qpu_consumed": int(self.qpu_consumed) if self.qpu_consumed == int(self.qpu_consumed) else self.qpu_consumed,
            "qpu_remaining": self.qpu_remaining,
        }


@functools.cache
def retry_policy_class() -> type:
    """The retry policy class, made on first use: it subclasses azure-core's, which is imported only then."""
    from azure.core.pipeline.policies import RetryPolicy

    class CostManagementRetryPolicy(RetryPolicy):
        """azure-core's retry policy, taught Cost Management's QPU retry headers and a ceiling on waits."""

        def __init__(self, meter: QuotaMeter, max_wait: float, **kwargs: Any):
            kwargs.setdefault("retry_status", THROTTLE_RETRIES)
            super().__init__(**kwargs)
            self.meter = meter
            self.max_wait = max_wait

        def get_retry_after(self, response: Any) -> float | None:
            return throttle_wait(response.http_response.headers)

        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            http_response = response.http_response
            self.meter.record(http_response)
            if http_response.status_code == 429:
                wait = throttle_wait(http_response.headers)
                if wait is not None and wait > self.max_wait:
                    return False  # waiting less would only spend quota on another 429
                return bool(settings["total"]) and settings["status"] > 0  # the query is a read: safe to repeat
            return super().is_retry(settings, response)

        def _sleep_for_retry(self, response: Any, transport: Any) -> bool:
            wait = self.get_retry_after(response)
            if wait is not None:  # "0" means retry now, not "back off exponentially"
                self.meter.waited_seconds += wait
                transport.sleep(wait)
                return True
            return False

    return CostManagementRetryPolicy


def credential(account: Account, deadline: Deadline) -> ClientSecretCredential:
    """The app registration's service principal; the secret is read from its variable only here.

    azure-identity signs in through its own pipeline: it gets the same deadline, timeouts and a
    bounded retry as the queries.
    """
    from azure.core.pipeline.policies import RetryPolicy
    from azure.identity import ClientSecretCredential

    _, authority = endpoints(account)
    host = urlsplit(authority if "://" in authority else f"https://{authority}").netloc
    return ClientSecretCredential(
        tenant_id=account.settings["tenant_id"],
        client_id=account.settings["client_id"],
        client_secret=account.env("client_secret_env"),
        authority=authority,
        # Instance discovery asks login.microsoftonline.com about the authority: only meaningful for
        # Microsoft's own hosts, impossible for a private or local one.
        disable_instance_discovery=host not in _KNOWN_AUTHORITIES,
        connection_verify=connection_verify(account),
        retry_policy_class=functools.partial(bounded(RetryPolicy), deadline=deadline),
        retry_total=SIGN_IN_RETRIES,
        retry_backoff_factor=0.5,
        **deadline.timeouts(),
    )


def cost_management_client(account: Account, meter: QuotaMeter, token_credential: ClientSecretCredential,
                           deadline: Deadline) -> CostManagementClient:
    from azure.mgmt.costmanagement import CostManagementClient

    endpoint, _ = endpoints(account)
    max_wait = float(account.settings.get("max_throttle_wait_seconds", DEFAULT_MAX_THROTTLE_WAIT))
    meter.account = account

    def spend_quota(request: Any) -> None:
        # A query of one month costs about 1 QPU of the tenant's quota, each page (nextLink) again.
        if request.http_request.method == "POST":
            throttle.spend(account, 1, deadline.remaining())

    return CostManagementClient(
        token_credential,
        base_url=endpoint,
        credential_scopes=[f"{endpoint}/.default"],
        retry_policy=bounded(retry_policy_class())(meter, max_wait, deadline=deadline),
        raw_request_hook=spend_quota,
        transport=requests_transport(endpoint, connection_verify(account), deadline),  # the environment read once
        connection_verify=connection_verify(account),
        **deadline.timeouts(),
        user_agent="finops-pipeline",
    )
