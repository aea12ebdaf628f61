"""Bounded time for every provider's clients, and logs without secrets.

A provider that accepts the connection and never answers must not hold a pull for minutes. Every
call gets a connect and a read timeout, retries are counted, and one `Deadline` per pull (an
account's `give_up_after_seconds`) caps all of it together. The Deadline is every source's (boto3's
event hooks use it too, defs/aws/session.py); the rest of this module fits it to the azure-core based
clients (Azure's SDK and azure-identity, pydo): each attempt's timeouts are cut to the time left, a
retry whose wait (Retry-After or backoff) would end past the deadline is not taken, and an attempt
that would start after it fails with azure-core's ServiceResponseTimeoutError, which the core
diagnoses as `<provider>.timeout`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from finops_pipeline.config import Account
from finops_pipeline.redaction import install

DEFAULT_GIVE_UP_AFTER_SECONDS = 120
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 60.0


class DidNotAnswer(TimeoutError):
    """The pull's time budget (give_up_after_seconds) ran out while the provider had not answered."""


def give_up_after(account: Account) -> float:
    """The account's give_up_after_seconds (the default when the settings lack it)."""
    return float(account.settings.get("give_up_after_seconds") or DEFAULT_GIVE_UP_AFTER_SECONDS)


class Deadline:
    """The moment one pull of one account stops waiting on its provider, across all its requests."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = float(seconds)
        self._clock = clock
        self.ends = clock() + self.seconds

    @classmethod
    def for_account(cls, account: Account) -> Deadline:
        return cls(give_up_after(account))

    def remaining(self) -> float:
        return self.ends - self._clock()

    def check(self, what: str) -> float:
        """The seconds left, or DidNotAnswer naming `what` once none are."""
        left = self.remaining()
        if left <= 0:
            raise DidNotAnswer(f"{what} did not answer within {self.seconds:g} s (give_up_after_seconds); gave up")
        return left

    def allows(self, wait: float) -> bool:
        """Whether waiting `wait` seconds still leaves time for an attempt."""
        return wait < self.remaining()

    def timeouts(self) -> dict[str, float]:
        """Connect and read timeouts for a client made now (azure-core transport keyword arguments)."""
        left = max(0.001, self.remaining())
        return {"connection_timeout": min(CONNECT_TIMEOUT_SECONDS, left), "read_timeout": min(READ_TIMEOUT_SECONDS, left)}


@functools.cache
def bounded(policy_class: type) -> type:
    """`policy_class` (an azure-core RetryPolicy) bounded by a Deadline passed as `deadline=`."""
    from azure.core.exceptions import ServiceResponseTimeoutError

    class Bounded(policy_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any):
            kwargs.setdefault("timeout", deadline.seconds)
            super().__init__(*args, **kwargs)
            self.deadline = deadline

        def _configure_timeout(self, request: Any, absolute_timeout: float, is_response_error: bool) -> None:
            left = self.deadline.remaining()
            if left <= 0:
                raise ServiceResponseTimeoutError(
                    f"Timed out: no answer within give_up_after_seconds={self.deadline.seconds:g}; gave up.")
            super()._configure_timeout(request, min(absolute_timeout, left), is_response_error)
            options = request.context.options
            config = getattr(request.context.transport, "connection_config", None)
            for name, default in (("connection_timeout", getattr(config, "timeout", CONNECT_TIMEOUT_SECONDS)),
                                  ("read_timeout", getattr(config, "read_timeout", READ_TIMEOUT_SECONDS))):
                current = options.get(name) or default
                options[name] = min(float(current), left) if isinstance(current, (int, float)) else left

        def _next_wait(self, settings: dict[str, Any], response: Any = None) -> float:
            if response is not None and hasattr(response, "http_response"):
                asked = self.get_retry_after(response)
                if asked is not None:
                    return float(asked)
            backoff = self.backoff_factor * (2 ** len(settings["history"])) if settings["history"] else 0.0
            return min(float(self.backoff_max), backoff)

        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            if not super().is_retry(settings, response):
                return False
            return self.deadline.allows(self._next_wait(settings, response))

        def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
            if error is not None and not self.deadline.allows(self._next_wait(settings)):
                return False
            return super().increment(settings, response=response, error=error)

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{policy_class.__name__}"
    return Bounded


def requests_transport(endpoint: str, verify: str | bool, deadline: Deadline) -> Any:
    """An azure-core transport for a client of one endpoint that reads the proxy and CA bundle variables once.

    requests reads the whole environment twice per request to find proxies (urllib's getproxies); with
    one secret variable per account (a thousand teams, a thousand variables) that was half of a pull's
    CPU. The same settings are resolved here, once, for the client's one endpoint: HTTP(S)_PROXY and
    NO_PROXY, and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE when the system's CAs would be used.
    """
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False
    session.proxies = dict(requests.utils.get_environ_proxies(endpoint))
    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return RequestsTransport(session=session, session_owner=True, connection_verify=verify, **deadline.timeouts())


@contextmanager
def secrets_kept_out_of_logs(secrets: Iterable[str]) -> Iterator[None]:
    """While a pull runs, no log record carries `secrets` (azure-identity logs its sign-in error, which an
    endpoint may have written the secret into). The process-wide guard of redaction.py does it, in every
    encoding; installing it here covers pulls run outside refresh_accounts too."""
    install(secrets)
    yield
