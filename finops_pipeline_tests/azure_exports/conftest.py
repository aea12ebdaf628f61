"""Azure cost export test helpers: one Azurite per session, a fresh container per test, account entries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.config import Account, parse_config
from finops_sandbox.azurite import Azurite, AzuriteMissing

CONNECTION_ENV = "TEST_AZURE_EXPORT_CONNECTION"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    try:
        server = Azurite().start()
    except AzuriteMissing as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def container(azurite: Azurite, monkeypatch: pytest.MonkeyPatch):
    """A new container in the session's Azurite (the real azure-storage-blob client), its connection string exported."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv(CONNECTION_ENV, azurite.connection_string)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.create_container(f"costs-{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def entry(container_name: str, azurite: Azurite, key: str = "azure-exports-main", *, dataset: str = "focus",
          export: str = "focus-daily", amortized: str | None = None, root: str = "exports", give_up_after_seconds: int = 30,
          **auth: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "provider": "azure", "source": "exports", "name": f"Azure export {key}",
                            "connected_at": "2026-09-01T00:00:00Z", "account_url": azurite.account_url, "container": container_name,
                            "root_path": root, "dataset": dataset, "export_name": export, "give_up_after_seconds": give_up_after_seconds}
    if amortized:
        item["amortized_export_name"] = amortized
    item.update(auth or {"connection_string_env": CONNECTION_ENV})
    return item


def account_of(item: dict[str, Any]) -> Account:
    config = parse_config({"accounts": [item]}, Path("finops.yaml"))
    assert not config.problems, config.problems
    return config.accounts[0]


# The Entra ID stand-in of the Query API tests, for the app registration's sign-in.
from finops_pipeline_tests.azure.conftest import SECRET_ENV, azure, azure_server, tenant  # noqa: E402, F401
