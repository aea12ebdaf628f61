"""A pydo client for one configured DigitalOcean account, with the API's rate limits built in.

pydo is generated on azure-core, so retries are azure-core's RetryPolicy: it honours the
Retry-After header DigitalOcean sends with a 429. We bound it (a few attempts, never a wait longer
than a minute; a longer Retry-After means the hourly quota is spent and the next scheduled refresh
is the better retry). Requests are paced on our side under 250 a minute and 5,000 an hour per token
(the source's quota, metered by finops_pipeline.throttle and shared by every pull using the token),
and a 429's Retry-After holds back every pull using the same token.
Bearer tokens only travel over https (azure-core refuses otherwise); a private certificate
authority, if any, comes from `ca_bundle`. Time is bounded (finops_pipeline.http_budget): every
request of one pull shares a Deadline, the account's `give_up_after_seconds`, with connect and read
timeouts cut to the time left and no retry whose wait would pass it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finops_pipeline import throttle
from finops_pipeline.config import Account
from finops_pipeline.http_budget import Deadline, bounded, requests_transport
from finops_pipeline.tls import connection_verify

if TYPE_CHECKING:  # pydo is imported where a client is made: loading the definitions stays cheap
    import pydo

DEFAULT_ENDPOINT = "https://api.digitalocean.com"
REQUESTS_PER_MINUTE = 250  # DigitalOcean's limits per token
REQUESTS_PER_HOUR = 5000
MAX_RETRIES = 4
MAX_RETRY_AFTER_SECONDS = 60.0


@functools.cache
def retry_policy_class() -> type:
    """The retry policy class, made on first use: it subclasses azure-core's, which is imported only then."""
    from azure.core.pipeline.policies import RetryPolicy

    class BoundedRetryPolicy(RetryPolicy):
        """azure-core's retry, but a Retry-After beyond a minute ends the attempt instead of blocking a run."""

        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            if response.http_response.status_code == 429:
                retry_after = self.get_retry_after(response)
                if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
                    return False
            return super().is_retry(settings, response)

        def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
            # A plain-http endpoint or an untrusted certificate is a setting to fix, not a blip to retry.
            if error is not None and any(marker in str(error) for marker in _NOT_RETRYABLE):
                return False
            return super().increment(settings, response=response, error=error)

    return BoundedRetryPolicy


_NOT_RETRYABLE = ("non-TLS", "CERTIFICATE_VERIFY_FAILED")


@dataclass
class CallStats:
    """Every HTTP attempt the client made (retries included), for metadata and tests."""

    account: Account | None = None  # whose token: a 429's Retry-After holds back every pull using it
    attempts: int = 0
    throttled: int = 0
    ratelimit_remaining: int | None = None
    paths: list[str] = field(default_factory=list)

    def on_response(self, pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        self.attempts += 1
        self.paths.append(response.request.url.split("?", 1)[0])
        if response.status_code == 429:
            self.throttled += 1
            retry_after = response.headers.get("retry-after")
            if self.account is not None and retry_after and retry_after.isdigit():
                throttle.back_off(self.account, float(retry_after))
        remaining = response.headers.get("ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            value = int(remaining)
            self.ratelimit_remaining = value if self.ratelimit_remaining is None else min(self.ratelimit_remaining, value)


def make_client(account: Account, stats: CallStats, deadline: Deadline | None = None) -> pydo.Client:
    """A pydo client for the account's token (read from its environment variable now), bounded by the pull's deadline."""
    import pydo

    token = account.env("token_env")
    deadline = deadline or Deadline.for_account(account)
    stats.account = account
    endpoint = account.settings.get("endpoint") or DEFAULT_ENDPOINT
    verify = connection_verify(account)
    return pydo.Client(
        token=token,
        endpoint=endpoint,
        retry_policy=bounded(retry_policy_class())(retry_total=MAX_RETRIES, retry_backoff_factor=0.5, retry_backoff_max=30,
                                                   deadline=deadline),
        raw_request_hook=lambda _request: throttle.spend(account, 1, deadline.remaining()),
        raw_response_hook=stats.on_response,
        transport=requests_transport(endpoint, verify, deadline),
        connection_verify=verify,
        user_agent="finops-pipeline",
        **deadline.timeouts(),
    )
