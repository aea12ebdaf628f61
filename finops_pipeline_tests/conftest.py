"""Shared fixtures: a moto server on 127.0.0.1, a throwaway registry and data directory, and a way
to run the real Dagster jobs in-process against them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from finops_pipeline.resources import FinopsResource
from finops_sandbox.aws import MotoSandbox


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


def write_config(directory: Path, accounts: list[dict[str, Any]]) -> Path:
    path = directory / "finops.yaml"
    path.write_text(yaml.safe_dump({"accounts": accounts}, sort_keys=False), encoding="utf-8")
    return path


def finops_resource(config: Path, data_dir: Path, now: str | None = None) -> FinopsResource:
    return FinopsResource(config_file=str(config), data_dir=str(data_dir), now=now)


def run_refresh(config: Path, data_dir: Path, period: str, now: str | None = None):
    """Run the real `refresh_costs` job in-process for one billing period."""
    from finops_pipeline.definitions import defs

    return defs.resolve_job_def("refresh_costs").execute_in_process(
        partition_key=period, resources={"finops": finops_resource(config, data_dir, now)}, raise_on_error=True
    )


def run_checks(config: Path, data_dir: Path, now: str | None = None):
    from finops_pipeline.definitions import defs

    return defs.resolve_job_def("check_billing_connections").execute_in_process(
        resources={"finops": finops_resource(config, data_dir, now)}, raise_on_error=True
    )


def check_results(result) -> dict[tuple[str, str], Any]:
    """{(asset, check name): AssetCheckEvaluation} from a run."""
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
