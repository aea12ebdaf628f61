"""The export's container in Blob Storage, through the real azure-storage-blob client, within one deadline.

Three ways to sign in, each named by environment variable in the account settings: the app registration
(azure-identity's ClientSecretCredential, made by the Query API source's own `credential`, with the same
timeouts and bounded retries), a SAS token, or a connection string. Every request has connect and read
timeouts cut to the pull's deadline (`give_up_after_seconds`) and a bounded number of retries
(finops_pipeline.http_budget). Errors name blobs by the configured account URL, never by a URL carrying
a SAS token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from finops_pipeline.config import Account
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError
from finops_pipeline.http_budget import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, Deadline
from finops_pipeline.tls import connection_verify

RETRIES = 3  # a blip (a 500, 503, a reset connection) is retried three times, within the pull's deadline
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
DOWNLOAD_CONCURRENCY = 2  # ranged GETs in flight per blob; written to disk as they arrive


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    last_modified: datetime | None


class BlobStore:
    """One container: list, read a manifest, stream a blob to disk. `calls` counts the requests issued."""

    def __init__(self, container: Any, account_url: str, container_name: str, closers: tuple = ()):
        self.container = container
        self.where = f"{account_url.rstrip('/')}/{container_name}"
        self.calls = 0
        self._closers = closers

    def describe(self, name: str) -> str:
        return f"{self.where}/{name}"

    def list(self, prefix: str, limit: int | None = None) -> list[BlobInfo]:
        """Blobs whose name starts with `prefix` (the first `limit` only, in one request, when given)."""
        found: list[BlobInfo] = []
        pages = self.container.list_blobs(name_starts_with=prefix, results_per_page=limit or 5000).by_page()
        for page in pages:
            self.calls += 1
            found += [BlobInfo(b.name, int(b.size or 0), b.last_modified) for b in page]
            if limit is not None:
                break
        return found[:limit] if limit is not None else found

    def read_bytes(self, name: str, size: int) -> bytes:
        if size > MAX_MANIFEST_BYTES:
            raise ProviderError(Diagnosis(
                "azure.export_manifest_invalid", ERROR, f"The export manifest {self.describe(name)} is {size} bytes, larger than any "
                "manifest Cost Management writes. Nothing was read; the month keeps its last good data.",
                "Something other than Cost Management wrote this file: check who can write to the export's directory.", self.describe(name)))
        self.calls += 1
        return self.container.download_blob(name).readall()

    def fetch(self, name: str, target: Path) -> int:
        """Stream one blob to `target` (chunks, never the whole blob in memory); returns the bytes written."""
        from azure.core.exceptions import ResourceNotFoundError

        self.calls += 1
        try:
            downloader = self.container.download_blob(name, max_concurrency=DOWNLOAD_CONCURRENCY)
            with open(target, "wb") as sink:
                return downloader.readinto(sink)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "BlobNotFound" or "BlobNotFound" in str(exc):
                raise missing_blob(self.describe(name)) from exc
            raise

    def close(self) -> None:
        for close in self._closers:
            close()


def missing_blob(where: str) -> ProviderError:
    return ProviderError(Diagnosis(
        "azure.export_blob_missing", ERROR, f"The export run's manifest lists {where}, but that blob is not there: the run is partial "
        "(or a lifecycle rule or a person deleted its files). Nothing was read; the month keeps its last good data.",
        "Cost Management -> Exports -> the export -> Run now (or wait for the next daily run), and check the storage account's "
        "lifecycle management rules do not delete the export's files.", where))


@functools.cache
def storage_retry_class() -> type:
    """azure-storage-blob's own retry policy (it also carries Storage's host routing), bounded by a Deadline.

    azure-core's RetryPolicy (what http_budget.bounded wraps) does not fit Storage's pipeline, so the same
    rules are applied to Storage's ExponentialRetry: each attempt's timeouts are cut to the time left, a
    retry whose backoff would end past the deadline is not taken, and no attempt starts after it."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceResponseTimeoutError
    from azure.storage.blob import ExponentialRetry

    class BoundedStorageRetry(ExponentialRetry):
        def __init__(self, deadline: Deadline, **kwargs: Any):
            super().__init__(initial_backoff=0.5, increment_base=2, random_jitter_range=0.5, retry_total=RETRIES, **kwargs)
            self.deadline = deadline

        def _cut(self, request: Any) -> None:
            left = self.deadline.remaining()
            if left <= 0:
                raise ServiceResponseTimeoutError(f"Timed out: no answer within give_up_after_seconds={self.deadline.seconds:g}; gave up.")
            options = request.context.options
            for name, default in (("connection_timeout", CONNECT_TIMEOUT_SECONDS), ("read_timeout", READ_TIMEOUT_SECONDS)):
                current = options.get(name) or default
                options[name] = min(float(current), left) if isinstance(current, (int, float)) else left

        def configure_retries(self, request: Any) -> dict[str, Any]:
            settings = super().configure_retries(request)
            settings["pipeline_request"] = request
            self._cut(request)
            return settings

        def increment(self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None) -> bool:
            if isinstance(error, ClientAuthenticationError):  # Entra ID refused the app registration: asking again changes nothing
                return False
            if not super().increment(settings, request, response, error):
                return False
            # ExponentialRetry draws a new jitter at every get_backoff_time call: the wait is drawn once here, and the
            # deadline check and the sleep both use it (else a retry allowed for one wait could sleep another, longer one).
            settings["backoff"] = self.get_backoff_time(settings)
            return self.deadline.allows(settings["backoff"])

        def sleep(self, settings: dict[str, Any], transport: Any) -> None:
            backoff = settings.pop("backoff", 0)
            if backoff > 0:
                transport.sleep(backoff)
            self._cut(settings["pipeline_request"])

    return BoundedStorageRetry


def open_store(account: Account, deadline: Deadline) -> BlobStore:
    """The export's container, signed in as the settings say."""
    from azure.storage.blob import ContainerClient

    settings = account.settings
    common: dict[str, Any] = dict(
        retry_policy=storage_retry_class()(deadline),
        connection_verify=connection_verify(account), user_agent="finops-pipeline", **deadline.timeouts())
    container_name = settings["container"]
    account_url = settings["account_url"]
    if settings.get("connection_string_env"):
        client = ContainerClient.from_connection_string(account.env("connection_string_env"), container_name, **common)
        return BlobStore(client, account_url, container_name, (client.close,))
    if settings.get("sas_token_env"):
        token = account.env("sas_token_env").strip().lstrip("?")
        client = ContainerClient(account_url, container_name, credential=token, **common)
        return BlobStore(client, account_url, container_name, (client.close,))
    from finops_pipeline.defs.azure.cost_management.client import credential

    token_credential = credential(account, deadline)
    client = ContainerClient(account_url, container_name, credential=token_credential, **common)
    return BlobStore(client, account_url, container_name, (client.close, token_credential.close))
