"""The lake's backends for the storage tests: a local directory, S3 (moto's server), Azure Blob
Storage (Azurite) and Google Cloud Storage (the gcp-storage-emulator package's server), all on
127.0.0.1; each test gets an empty bucket or container.

Azurite comes from finops_sandbox.azurite when that module is there (the Azure exports branch adds
it, with `npm ci --prefix sandbox/azurite` in `make setup`). Until then `_MinimalAzurite` below starts
the same `azurite-blob` executable (FINOPS_AZURITE, sandbox/azurite/node_modules/.bin, or PATH);
it is temporary and goes when finops_sandbox.azurite is merged.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from finops_pipeline import storage

REPO = Path(__file__).resolve().parents[2]
AZURITE_EXECUTABLE = os.environ.get("FINOPS_AZURITE")  # read at import: the root conftest clears FINOPS_* for each test
BACKENDS = ["local", "s3", "azure", "gcs"]


class _MinimalAzurite:
    """Azurite's blob service on a free 127.0.0.1 port, in memory; stopped by process group id."""

    ACCOUNT = "devstoreaccount1"
    KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # Azurite's documented dev key

    def __init__(self, executable: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [executable, "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence", "--silent", "--loose",
             "--skipApiVersionCheck", "--disableTelemetry"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(f"{self.account_url}?comp=list", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # answering (403 without credentials)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Azurite did not start on 127.0.0.1 within 30 s")

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={self.ACCOUNT};AccountKey={self.KEY};BlobEndpoint={self.account_url};"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[Any]:
    try:
        from finops_sandbox.azurite import AzuriteMissing, running_azurite  # type: ignore[import-not-found]
    except ImportError:
        running_azurite = None
    if running_azurite is not None:
        try:
            with running_azurite() as server:
                yield server
        except AzuriteMissing as exc:
            pytest.skip(str(exc))
        return
    executable = (AZURITE_EXECUTABLE or next((str(p) for p in [REPO / "sandbox/azurite/node_modules/.bin/azurite-blob"] if p.exists()), None)
                  or shutil.which("azurite-blob"))
    if not executable:
        pytest.skip("Azurite is not installed (npm package azurite: `npm ci --prefix sandbox/azurite`, or FINOPS_AZURITE=<azurite-blob>)")
    server = _MinimalAzurite(executable)
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
def azure_lake(azurite_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
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


@pytest.fixture(params=BACKENDS)
def data_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> storage.Location:
    """The data directory on each backend: a Path, or an s3:// / az:// URL. Uploads stage in tmp_path."""
    monkeypatch.setenv("FINOPS_LAKE_STAGING_DIR", str(tmp_path / "staging"))
    if request.param == "local":
        return tmp_path / "data"
    return request.getfixturevalue(f"{request.param}_lake")
