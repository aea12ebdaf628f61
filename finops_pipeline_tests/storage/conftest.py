"""The lake's backends for the storage tests: a local directory, S3 (moto's server), Azure Blob
Storage (Azurite) and Google Cloud Storage (the gcp-storage-emulator package's server), all on
127.0.0.1; each test gets an empty bucket or container.

Azurite is finops_sandbox.azurite's (installed by `make setup`; the Azure tests skip without it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from finops_pipeline import storage
from finops_sandbox.azurite import Azurite, AzuriteMissing

AZURITE_EXECUTABLE = os.environ.get("FINOPS_AZURITE")  # read at import: the root conftest clears FINOPS_* for each test
BACKENDS = ["local", "s3", "azure", "gcs"]


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


@pytest.fixture(params=BACKENDS)
def data_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> storage.Location:
    """The data directory on each backend: a Path, or an s3:// / az:// URL. Uploads stage in tmp_path."""
    monkeypatch.setenv("FINOPS_LAKE_STAGING_DIR", str(tmp_path / "staging"))
    if request.param == "local":
        return tmp_path / "data"
    return request.getfixturevalue(f"{request.param}_lake")
