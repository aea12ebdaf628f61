"""Blob Storage answering 503/500 (through the fault proxy in front of Azurite), and the app registration's sign-in."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from finops_pipeline.defs.azure.exports.pull import pull_exports
from finops_pipeline.lake import PartitionKey
from finops_pipeline.refresh import refresh_accounts
from finops_sandbox import azure_exports as ax
from finops_sandbox.faults import FaultProxy

from .conftest import CONNECTION_ENV, SECRET_ENV, account_of, entry

PERIOD = "2026-10"


def _now():
    return datetime(2026, 11, 5, tzinfo=timezone.utc)


@pytest.fixture
def storage_proxy(azurite, monkeypatch):
    proxy = FaultProxy(f"http://127.0.0.1:{azurite.port}").start()
    monkeypatch.setenv(CONNECTION_ENV, azurite.connection_string.replace(azurite.account_url, f"{proxy.url}/{azurite.account_name}"))
    yield proxy
    proxy.stop()


def test_a_busy_storage_account_is_retried_within_the_budget(azurite, container, storage_proxy, tmp_path):
    lines = ax.focus_rows(PERIOD, days=2)
    ax.deliver(container, "exports", "focus-daily", PERIOD, lines, "csv")
    storage_proxy.fail("comp=list", "ServerBusy", "The server is busy.", status=503, times=1)
    account = account_of(entry(container.container_name, azurite))
    pull = pull_exports(account, PERIOD, data_dir=tmp_path)
    pull.produce(tmp_path / "out.parquet")
    assert pull.source_totals == ax.expected_totals(lines)
    assert sum(n for op, n in storage_proxy.requests.items() if "comp=list" in op) == 2  # a 503, then the answer


def test_a_storage_account_failing_every_time_is_unavailable_and_retryable(azurite, container, storage_proxy, tmp_path):
    ax.deliver(container, "exports", "focus-daily", PERIOD, ax.focus_rows(PERIOD, days=1), "csv")
    account = account_of(entry(container.container_name, azurite, give_up_after_seconds=6))
    # A good refresh first: the month has data to keep, and the clients' imports and Azurite's first answers are
    # behind us, so the 500s meet the deadline within a few hundredths of a second of its start.
    good, = refresh_accounts(tmp_path / "data", [account], PERIOD, pull_exports, _now, [])
    assert good.ok, good.diagnosis
    key = PartitionKey("azure", "exports", account.key, PERIOD)
    before = key.path(tmp_path / "data").read_bytes()
    storage_proxy.clear()
    storage_proxy.fail("manifest.json", "InternalError", "Server encountered an internal error.", status=500)

    outcome, = refresh_accounts(tmp_path / "data", [account], PERIOD, pull_exports, _now, [])

    assert outcome.diagnosis.code == "azure.storage_unavailable" and outcome.diagnosis.retryable
    assert "HTTP 500" in outcome.diagnosis.cause
    # Bounded by give_up_after_seconds, never the SDK's default minutes. ExponentialRetry(initial_backoff=0.5,
    # increment_base=2, jitter 0.5) waits 0.5 + 2**n s +-0.5 before retry n: 2..3 s, then 4..5 s. The first retry fits
    # in 6 s (when the first 500 comes within 3 s); the second cannot (at least 2 + 4 s from the start), whatever the
    # jitter draws: exactly two attempts.
    assert sum(n for op, n in storage_proxy.requests.items() if "manifest.json" in op) == 2
    assert key.path(tmp_path / "data").read_bytes() == before  # the month keeps its last good data


def test_the_app_registration_signs_in_with_entra_and_a_wrong_secret_is_named(azurite, container, tenant, tmp_path, monkeypatch):
    sandbox = tenant.sandbox
    app = {"tenant_id": tenant.tenant_id, "client_id": tenant.client_id, "client_secret_env": SECRET_ENV}
    item = entry(container.container_name, azurite, **app)
    item.update(account_url=sandbox.url, authority_host=sandbox.url, ca_bundle=sandbox.ca_file)  # https, trusted by its CA
    monkeypatch.setenv(SECRET_ENV, "wrong-secret-value-0123456789")
    outcome, = refresh_accounts(tmp_path / "data", [account_of(item)], PERIOD, pull_exports, _now, ["wrong-secret-value-0123456789"])
    assert outcome.diagnosis.code == "azure.bad_client_secret", outcome.diagnosis
    assert "wrong-secret-value" not in str(outcome.diagnosis.as_dict())


def test_the_app_registration_needs_an_https_account_url(azurite):
    from pathlib import Path

    from finops_pipeline.config import parse_config

    item = entry("costs", azurite, tenant_id="7a1c0d2e-3f4b-4c5d-8e6f-0a1b2c3d4e5f", client_id="0f9e8d7c-6b5a-4d3c-9b2a-1f0e9d8c7b6a",
                 client_secret_env="A_SECRET")
    problems = parse_config({"accounts": [item]}, Path("finops.yaml")).problems
    assert problems and "HTTPS" in str(problems[0])


def test_a_retry_the_deadline_allows_sleeps_the_wait_it_was_allowed_for():
    """ExponentialRetry draws a new jitter at each get_backoff_time call: the wait is drawn once per retry, so the deadline
    check and the sleep agree (drawn twice, a retry allowed for a 2.2 s wait could sleep 2.9 s past the deadline)."""
    from azure.core.exceptions import ServiceResponseError
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest

    from finops_pipeline.defs.azure.exports.store import storage_retry_class
    from finops_pipeline.http_budget import Deadline

    class Transport:
        def __init__(self):
            self.waits: list[float] = []

        def sleep(self, seconds: float) -> None:
            self.waits.append(seconds)

    allowed = refused = 0
    for _ in range(60):  # the first retry waits 2..3 s; a frozen clock leaves 2.5 s: about half allowed, half refused
        policy = storage_retry_class()(Deadline(2.5, clock=lambda: 0.0))
        request = PipelineRequest(HttpRequest("GET", "http://127.0.0.1:1/costs/manifest.json"), PipelineContext(None))
        settings = policy.configure_retries(request)
        if policy.increment(settings, request.http_request, error=ServiceResponseError("connection reset")):
            transport = Transport()
            policy.sleep(settings, transport)
            assert len(transport.waits) == 1 and 2.0 <= transport.waits[0] < 2.5, transport.waits
            allowed += 1
        else:
            refused += 1
    assert allowed and refused
