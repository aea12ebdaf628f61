"""The Azure stand-in (Entra ID + Cost Management over HTTPS with a throwaway CA) and account helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.config import Account, parse_config
from finops_sandbox.azure import AzureSandbox

SECRET_ENV = "AZ_TEST_CLIENT_SECRET"
SECRET = "Zx8Q~test-secret-value-0123456789"


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureSandbox]:
    server = AzureSandbox(page_size=1000).start()
    yield server
    server.stop()


@pytest.fixture
def azure(azure_server: AzureSandbox, monkeypatch: pytest.MonkeyPatch) -> AzureSandbox:
    """The session's stand-in, emptied; accounts trust its CA through their ca_bundle setting."""
    azure_server.reset()
    azure_server.page_size = 1000
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return azure_server


def new_id() -> str:
    return str(uuid.uuid4())


class Tenant:
    """One Entra ID tenant with one app registration, and helpers to add subscriptions to it."""

    def __init__(self, sandbox: AzureSandbox):
        self.sandbox = sandbox
        self.tenant_id = new_id()
        self.client_id = new_id()
        sandbox.add_app(self.tenant_id, self.client_id, SECRET)

    def subscription(self, role: str | None = "subscription", denied_status: int = 401) -> str:
        subscription_id = new_id()
        self.sandbox.add_subscription(subscription_id, self.tenant_id, denied_status=denied_status)
        if role:
            self.sandbox.assign_reader(subscription_id, self.client_id, role)
        return subscription_id

    def entry(self, key: str, subscription_id: str, connected_at: str = "2026-01-01T00:00:00Z", **overrides: Any) -> dict[str, Any]:
        entry = {
            "key": key,
            "provider": "azure",
            "source": "cost_management",
            "name": f"Azure {key}",
            "connected_at": connected_at,
            "subscription_id": subscription_id,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret_env": SECRET_ENV,
            "endpoint": self.sandbox.url,
            "authority_host": self.sandbox.url,
            "ca_bundle": self.sandbox.ca_file,
            "max_throttle_wait_seconds": 3,
        }
        entry.update(overrides)
        return entry

    def account(self, key: str, subscription_id: str, **overrides: Any) -> Account:
        return parse_config({"accounts": [self.entry(key, subscription_id, **overrides)]}, Path("finops.yaml")).accounts[0]


@pytest.fixture
def tenant(azure: AzureSandbox) -> Tenant:
    return Tenant(azure)
