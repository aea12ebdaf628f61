"""Shared fixtures: a moto server on 127.0.0.1, a throwaway registry and data directory, and a way
to run the real Dagster jobs in-process against them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from finops_pipeline.jobs import Refreshed
from finops_pipeline.resources import FinopsResource
from finops_sandbox.aws import MotoSandbox
from finops_sandbox.faults import FaultProxy


@pytest.fixture(autouse=True)
def _no_real_cloud_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's cloud credentials or config files."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "AZURE_", "DIGITALOCEAN_", "FINOPS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoSandbox]:
    server = MotoSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server: MotoSandbox) -> MotoSandbox:
    """The session's moto server, emptied for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def proxy(moto: MotoSandbox) -> Iterator[FaultProxy]:
    """A pass-through proxy to moto that tests script AWS faults on (finops_sandbox/faults.py)."""
    server = FaultProxy(moto.url).start()
    yield server
    server.stop()


def write_config(directory: Path, accounts: list[dict[str, Any]]) -> Path:
    path = directory / "finops.yaml"
    path.write_text(yaml.safe_dump({"accounts": accounts}, sort_keys=False), encoding="utf-8")
    return path


def finops_resource(config: Path, data_dir: Path, now: str | None = None) -> FinopsResource:
    return FinopsResource(config_file=str(config), data_dir=str(data_dir), now=now)


def run_refresh(config: Path, data_dir: Path, period: str, now: str | None = None, full_refresh: bool = False, **select: str) -> Refreshed:
    """Refresh one billing period of every configured account (or `provider=`, `source=`, `account=`)
    through the real source jobs, then rebuild the tables, as `finops-pipeline refresh` does."""
    from finops_pipeline.config import load_config
    from finops_pipeline.jobs import refresh, select_accounts

    accounts = select_accounts(load_config(config), **select)
    return refresh(finops_resource(config, data_dir, now), accounts, [period], full_refresh=full_refresh)


def run_checks(config: Path, data_dir: Path, now: str | None = None):
    from finops_pipeline.jobs import run_checks as checks_job

    result = checks_job(finops_resource(config, data_dir, now))
    assert result.success, result.get_run_failure_event()
    return result


def check_results(result) -> dict[tuple[str, str], Any]:
    """{(asset, check name): AssetCheckEvaluation} from a run; per-account assets read '<source id>/<account key>'."""
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def statuses(result, source_id: str) -> dict[str, str]:
    """{account key: status} from the 48-hour checks of one source."""
    return {
        asset.split("/", 1)[1]: e.metadata["status"].value
        for (asset, name), e in check_results(result).items()
        if name == "billing_data_within_48h" and asset.startswith(source_id + "/")
    }


def by_account(refreshed: Refreshed) -> dict[str, Any]:
    """{account key: AccountResult} of a one-period refresh."""
    return {r.account: r for r in refreshed.results}


def run_events(refreshed: Refreshed) -> str:
    """Every event of the refresh's runs, as text (for the secret checks)."""
    import json

    return json.dumps([str(e) for run in refreshed.runs for e in run.all_events])
