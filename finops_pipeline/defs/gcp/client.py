"""A google-cloud-bigquery Client for one configured account.

Credentials come from the variable `credentials_env` names (a service account key file path, or the
key's JSON itself), else application default credentials. Each account has its own credentials and
query project, which is why this builds a plain Client per account instead of using dagster-gcp's
BigQueryResource (one project and one credential per resource, and no api_endpoint).

Every request of a pull runs against one `Budget`, the account's `give_up_after_seconds`: the HTTP
adapter the client sends through cuts each request's connect and read timeout to what is left of it,
and each call's retry (google.api_core Retry, BigQuery's own predicate) stops at its end. The same
adapter refuses an answer that does not prove it is one (see `AnswerCheckingAdapter`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter

from finops_pipeline.config import Account
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError, malformed_answer

if TYPE_CHECKING:  # the Google SDK is imported where a client is made: loading the definitions stays cheap
    from google.api_core.retry import Retry
    from google.auth.credentials import Credentials
    from google.cloud import bigquery
    from requests import PreparedRequest, Response

SCOPES = ("https://www.googleapis.com/auth/bigquery.readonly",)


def _credentials_problem(account: Account, what: str) -> ProviderError:
    variable = account.settings.get("credentials_env")
    return ProviderError(Diagnosis(
        code="gcp.credentials", status=ERROR,
        cause=f"The service account key in environment variable {variable} {what}.",
        fix=f"Put the service account's JSON key, or the path of the key file, into {variable} "
        "(IAM -> Service accounts -> Keys -> Add key -> JSON), or remove credentials_env to use application default credentials.",
        detail=f"credentials_env={variable}: {what}",  # never the key itself
    ))


def account_credentials(account: Account) -> Credentials | None:
    """The account's credentials; None means application default credentials (found by the client)."""
    from google.auth.credentials import AnonymousCredentials

    if account.settings.get("api_endpoint"):
        return AnonymousCredentials()  # the local stand-in only; it never serves a real account
    secret = account.env("credentials_env")
    if secret is None:
        return None
    from google.oauth2 import service_account

    text = secret.strip()
    try:
        if text.startswith("{"):
            info = json.loads(text)
            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        if not os.path.isfile(text):
            raise _credentials_problem(account, "names a key file that does not exist")
        return service_account.Credentials.from_service_account_file(text, scopes=SCOPES)
    except ProviderError:
        raise
    except OSError:
        raise _credentials_problem(account, "names a key file that cannot be read") from None
    except (ValueError, KeyError, TypeError):  # the messages could quote the key: say what, not how
        raise _credentials_problem(account, "is not a valid service account JSON key") from None


TITLE = "The BigQuery API"
RETRY_FIRST_DELAY = 0.5  # seconds before the first retry; doubles up to RETRY_MAX_DELAY
RETRY_MAX_DELAY = 8.0  # and at most an eighth of the budget


class GaveUp(TimeoutError):
    """The pull's budget is spent. Not retried by any BigQuery retry (it is no ConnectionError), so it
    ends every retry loop at once. `last_error` is the server error the last attempt met, if any: then
    the diagnosis is about that error (BigQuery kept failing), else about the time (it did not answer)."""

    def __init__(self, message: str, last_error: BaseException | None):
        super().__init__(message)
        self.last_error = last_error


class Budget:
    """The most one pull (one account, one month) may spend waiting on BigQuery: connect, read and
    retries together. Created when the pull starts; every call takes its timeout and retry from it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.monotonic()
        self.end = self.started + seconds
        self.last_error: BaseException | None = None  # the last 5xx/429 answer, as the client's exception

    def gave_up(self) -> GaveUp:
        last = f"; last answer: {self.last_error}" if self.last_error is not None else ""
        return GaveUp(f"BigQuery did not answer: gave up after {self.seconds:g} s (give_up_after_seconds), "
                      f"{self.elapsed():.1f} s spent{last}", self.last_error)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.end - time.monotonic()

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError (diagnosed as the provider's timeout) when none are."""
        left = self.left()
        if left <= 0:
            raise self.gave_up()
        return left

    def _retry(self, base: Retry, should_retry: Callable[[BaseException], bool]) -> Retry:
        """`base` (one of BigQuery's retries) bounded by the budget: its timeout is what is left, and it
        only retries while what is left exceeds the longest pause, so no pause outlasts the budget
        (also when the job retry re-enters the request retry with a fresh timeout)."""
        pause = min(RETRY_MAX_DELAY, self.seconds / 8)
        left = self.remaining()

        def affordable(exc: BaseException) -> bool:
            return should_retry(exc) and self.left() > pause

        return base.with_predicate(affordable).with_timeout(left).with_delay(initial=min(RETRY_FIRST_DELAY, pause), maximum=pause)

    def retry(self) -> Retry:
        """For each request: BigQuery's own predicate (5xx, rate limits, connection errors and timeouts)."""
        from google.cloud.bigquery.retry import DEFAULT_RETRY, _should_retry

        return self._retry(DEFAULT_RETRY, _should_retry)

    def job_retry(self) -> Retry:
        """For restarting a failed query job (jobRateLimitExceeded, jobBackendError)."""
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, _job_should_retry

        return self._retry(DEFAULT_JOB_RETRY, _job_should_retry)


def _describe(response: Response) -> str:
    kind = response.headers.get("Content-Type", "no Content-Type")
    return f"HTTP {response.status_code} {response.request.method} {response.url.split('?')[0]} ({kind}, {len(response.content)} bytes)"


class AnswerCheckingAdapter(HTTPAdapter):
    """requests' HTTP adapter for the BigQuery client: bounded time, and answers that prove they are BigQuery's.

    - Each request's timeout is cut to what is left of the budget, so no single read can outlast it.
    - A 2xx answer must be a JSON object with BigQuery's `kind` ("bigquery#..."): an empty body, `{}`,
      garbage or an HTML page (a proxy's login page, a wrong endpoint) raise `malformed_answer` instead
      of being read as "no tables" or "no rows".
    - A 4xx answer (but 429) must carry BigQuery's error JSON; an HTML 404 from something else is not
      "dataset not found". 5xx and 429 go on to the client, which retries them within the budget.
    """

    def __init__(self, budget: Budget, **kwargs: Any):
        super().__init__(**kwargs)
        self.budget = budget

    def send(self, request: PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any) -> Response:
        from google.api_core.exceptions import from_http_response

        budget = self.budget
        left = budget.remaining()  # GaveUp when spent: no new attempt starts after the budget
        if timeout is None:
            timeout = left
        elif isinstance(timeout, tuple):
            timeout = tuple(left if t is None else min(t, left) for t in timeout)
        else:
            timeout = min(timeout, left)
        budget.last_error = None
        response = super().send(request, stream=stream, timeout=timeout, **kwargs)
        if response.status_code >= 500 or response.status_code == 429:
            budget.last_error = from_http_response(response)
        _check_answer(response)
        return response


def _check_answer(response: Response) -> None:
    status = response.status_code
    if status >= 500 or status == 429 or 300 <= status < 400:
        return
    body = response.content
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if 200 <= status < 300:
        if response.request.method == "DELETE" and not body:
            return
        if not isinstance(parsed, dict) or not str(parsed.get("kind", "")).startswith("bigquery#"):
            what = ("an empty body" if not body else "an HTML page" if body.lstrip()[:1] == b"<"
                    else "JSON that is not a BigQuery resource" if parsed is not None else "a body that is not JSON")
            raise malformed_answer("gcp", TITLE, f"{what} ({_describe(response)})", body[:200].decode("utf-8", "replace"))
    elif not (isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)):
        raise malformed_answer("gcp", TITLE, f"an error without BigQuery's error JSON ({_describe(response)})",
                               body[:200].decode("utf-8", "replace"))


def bigquery_client(account: Account, budget: Budget | None = None) -> bigquery.Client:
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    settings = account.settings
    options = ClientOptions(api_endpoint=settings["api_endpoint"]) if settings.get("api_endpoint") else None
    client = bigquery.Client(
        project=settings["project_id"],
        credentials=account_credentials(account),
        location=settings.get("location"),
        client_options=options,
    )
    budget = budget or Budget(settings.get("give_up_after_seconds", 120))
    # `_http` is the client's requests session (google-auth's AuthorizedSession), the documented way
    # to shape its transport; its adapters carry every BigQuery request of this client.
    adapter = AnswerCheckingAdapter(budget)
    client._http.mount("https://", adapter)
    client._http.mount("http://", adapter)
    return client
