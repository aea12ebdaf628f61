"""The DigitalOcean stand-in (https, throwaway CA) for the whole session, emptied for each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.config import Account, parse_config
from finops_sandbox.digitalocean import DigitalOceanSandbox


@pytest.fixture(scope="session")
def do_server() -> Iterator[DigitalOceanSandbox]:
    server = DigitalOceanSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def do(do_server: DigitalOceanSandbox) -> DigitalOceanSandbox:
    do_server.reset()
    return do_server


def do_entry(sandbox: DigitalOceanSandbox, key: str, token_env: str, connected_at: datetime | str = "2026-01-01T00:00:00Z",
             **extra: Any) -> dict[str, Any]:
    """A finops.yaml account entry pointing at the stand-in."""
    if isinstance(connected_at, datetime):
        connected_at = connected_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {"key": key, "provider": "digitalocean", "source": "billing", "name": f"{key} team", "connected_at": connected_at,
             "token_env": token_env, "endpoint": sandbox.url, "ca_bundle": sandbox.ca_file}
    entry.update(extra)
    return {k: v for k, v in entry.items() if v is not None}


def do_account(sandbox: DigitalOceanSandbox, key: str, token_env: str, **extra: Any) -> Account:
    return parse_config({"accounts": [do_entry(sandbox, key, token_env, **extra)]}, Path("finops.yaml")).accounts[0]
