"""Shared fixtures: a moto server on 127.0.0.1, a throwaway registry and data directory, and a way
to run the real Dagster jobs in-process against them; lakes on object storage (`s3_lake` on moto,
`azure_lake` on Azurite, `gcs_lake` on gcp-storage-emulator, `lake` over local / s3 / azure), each an
empty bucket or container per test.

Azurite is finops_sandbox.azurite's (installed by `make setup`; the Azure lakes skip without it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from finops_pipeline import storage
from finops_pipeline.jobs import Refreshed
from finops_pipeline.resources import FinopsResource
from finops_sandbox.aws import MotoSandbox
from finops_sandbox.azurite import Azurite, AzuriteMissing
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


AZURITE_EXECUTABLE = os.environ.get("FINOPS_AZURITE")  # read at import: the root conftest clears FINOPS_* for each test


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[Azurite]:
    """One Azurite for the session (finops_sandbox.azurite; FINOPS_AZURITE as set when the tests started)."""
    saved = os.environ.get("FINOPS_AZURITE")
    if AZURITE_EXECUTABLE:
        os.environ["FINOPS_AZURITE"] = AZURITE_EXECUTABLE
    try:
        server = Azurite().start()
    except AzuriteMissing as exc:
        pytest.skip(str(exc))
    finally:
        if saved is None:
            os.environ.pop("FINOPS_AZURITE", None)
        else:
            os.environ["FINOPS_AZURITE"] = saved
    yield server
    server.stop()


@pytest.fixture
def s3_lake(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("FINOPS_LAKE_S3_ENDPOINT", moto.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1").create_bucket(Bucket=bucket)
    storage.reset_clients()
    yield f"s3://{bucket}/finops/data"
    storage.reset_clients()


@pytest.fixture
def azure_lake(azurite_server: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from azure.storage.blob import BlobServiceClient

    container = f"lake-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server.connection_string)
    with BlobServiceClient.from_connection_string(azurite_server.connection_string) as client:
        client.create_container(container)
    storage.reset_clients()
    yield f"az://{container}/finops/data"
    storage.reset_clients()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """gcp-storage-emulator's JSON API server, in memory, on a free 127.0.0.1 port; yields its URL."""
    import logging

    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
    finally:
        server.stop()


@pytest.fixture
def gcs_lake(gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("FINOPS_LAKE_GCS_ENDPOINT", gcs_server)
    storage.reset_clients()
    fs, _ = storage.filesystem(f"gs://{bucket}")
    fs.mkdir(bucket)
    yield f"gs://{bucket}/finops/data"
    storage.reset_clients()


LAKE_BACKENDS = ["local", "s3", "azure"]


@pytest.fixture(params=LAKE_BACKENDS)
def lake(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> storage.Location:
    """The data directory on each backend the pipeline tests run on: `tmp_path/data`, or an s3:// (moto)
    or az:// (Azurite) URL with a local work directory (FINOPS_WORK_DIR) in tmp_path."""
    monkeypatch.setenv("FINOPS_LAKE_STAGING_DIR", str(tmp_path / "staging"))
    if request.param == "local":
        return tmp_path / "data"
    monkeypatch.setenv("FINOPS_WORK_DIR", str(tmp_path / "work"))
    return request.getfixturevalue(f"{request.param}_lake")


def lake_files(location: storage.Location) -> dict[str, bytes]:
    """Every file under a data directory (local or remote) and its content."""
    if not storage.is_remote(location):
        return {str(p): p.read_bytes() for p in Path(location).rglob("*") if p.is_file()}
    fs, root = storage.filesystem(location)
    return {path: storage.read_bytes(f"{str(location).split('://')[0]}://{path}") for path in fs.find(root)}


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
