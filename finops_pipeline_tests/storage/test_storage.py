"""storage.py without a backend server: locations, settings, and what a client does when the endpoint
hangs, refuses, or the credentials are missing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from pydantic import ValidationError

from finops_pipeline import storage
from finops_pipeline.lake import PartitionKey, cost_daily_glob, lake_root, mart_path, read_json, write_json
from finops_sandbox.server import SilentEndpoint


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    storage.reset_clients()
    yield
    storage.reset_clients()


def test_locations_are_paths_or_urls(tmp_path: Path) -> None:
    assert storage.as_location(str(tmp_path)) == tmp_path and not storage.is_remote(str(tmp_path))
    assert storage.as_location("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert storage.join("s3://bucket/prefix", "lake", "x.parquet") == "s3://bucket/prefix/lake/x.parquet"
    assert storage.join(tmp_path, "lake") == tmp_path / "lake"
    assert storage.name("az://container/a/b.json") == "b.json" and storage.parent("az://container/a/b.json") == "az://container/a"
    assert storage.relative_parts("gs://b/p/lake/x/y.parquet", "gs://b/p/lake") == ("x", "y.parquet")
    key = PartitionKey("aws", "focus", "main", "2026-11")
    assert key.path("s3://bucket/data") == "s3://bucket/data/lake/cost_daily/provider=aws/source=focus/account=main/billing_period=2026-11/data.parquet"
    assert key.path(tmp_path) == tmp_path / "lake/cost_daily/provider=aws/source=focus/account=main/billing_period=2026-11/data.parquet"
    assert lake_root("abfs://c/d") == "abfs://c/d/lake"
    assert mart_path("gs://b", "monthly") == "gs://b/lake/marts/monthly.parquet"
    assert cost_daily_glob("s3://b/d") == "s3://b/d/lake/cost_daily/*/*/*/*/data.parquet"
    with pytest.raises(storage.StorageError, match="unsupported storage URL scheme 'ftp://'"):
        storage.is_remote("ftp://host/data")
    with pytest.raises(storage.StorageError, match="object-storage URL made into a local path"):
        lake_root(Path("s3://bucket/data"))  # Path() keeps one slash: never a local directory named 's3:'


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert storage.StorageSettings.from_env() == storage.StorageSettings()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FINOPS_LAKE_REQUEST_TIMEOUT", "7.5")
    monkeypatch.setenv("FINOPS_LAKE_MAX_ATTEMPTS", "2")
    settings = storage.StorageSettings.from_env()
    assert (settings.s3_endpoint, settings.request_timeout, settings.max_attempts) == ("http://127.0.0.1:9", 7.5, 2)
    monkeypatch.setenv("FINOPS_LAKE_S3_ENDPOINT", "http://127.0.0.1:10")  # ours wins over the SDK's variable
    assert storage.StorageSettings.from_env().s3_endpoint == "http://127.0.0.1:10"
    monkeypatch.setenv("FINOPS_LAKE_MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError, match="max_attempts"):
        storage.StorageSettings.from_env()


def test_an_azure_lake_without_credentials_says_which_variables_to_set() -> None:
    with pytest.raises(storage.StorageError, match="AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME"):
        storage.read_bytes("az://container/data/lake/x.json")


def test_a_hanging_s3_endpoint_times_out_after_bounded_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    silent = SilentEndpoint().start()
    try:
        monkeypatch.setenv("FINOPS_LAKE_S3_ENDPOINT", silent.url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("FINOPS_LAKE_REQUEST_TIMEOUT", "0.5")
        monkeypatch.setenv("FINOPS_LAKE_CONNECT_TIMEOUT", "0.5")
        monkeypatch.setenv("FINOPS_LAKE_MAX_ATTEMPTS", "2")
        with pytest.raises((ReadTimeoutError, ConnectTimeoutError)):
            storage.read_bytes("s3://bucket/data/lake/state.json")
        assert silent.accepted == 2  # one connection per try: FINOPS_LAKE_MAX_ATTEMPTS, then it gives up
        fs, path = storage.filesystem("s3://bucket/data")
        with pytest.raises(OSError):  # pyarrow's client (DuckDB's reads, listings): the same limits
            fs.fs.get_file_info(path + "/x")
        assert silent.accepted == 4
    finally:
        silent.stop()


def test_a_refused_s3_endpoint_fails_with_a_connection_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FINOPS_LAKE_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("FINOPS_LAKE_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("FINOPS_LAKE_STAGING_DIR", str(tmp_path))
    with pytest.raises(EndpointConnectionError):
        with storage.atomic_replace("s3://bucket/data/lake/state.json") as temporary:
            temporary.write_text("{}")
    assert list(tmp_path.iterdir()) == []  # the staging file went with the failed upload


def test_a_hanging_azure_endpoint_times_out_after_bounded_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import AzureError

    silent = SilentEndpoint().start()
    try:
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0LWtleS1ub3QtdXNlZA==")
        monkeypatch.setenv("FINOPS_LAKE_AZURE_ENDPOINT", f"{silent.url}/devstoreaccount1")
        monkeypatch.setenv("FINOPS_LAKE_REQUEST_TIMEOUT", "0.5")
        monkeypatch.setenv("FINOPS_LAKE_CONNECT_TIMEOUT", "0.5")
        monkeypatch.setenv("FINOPS_LAKE_MAX_ATTEMPTS", "2")
        with pytest.raises(AzureError) as raised:
            storage.read_bytes("az://container/data/lake/state.json")
        assert "c2VjcmV0" not in str(raised.value)
        assert silent.accepted == 2
    finally:
        silent.stop()


@pytest.mark.parametrize("credential", ["account_key", "sas_token"])
def test_an_azure_lake_by_account_name_with_a_key_or_a_sas_token(credential: str, azurite_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other Azure credential variables (not the connection string), against Azurite's endpoint."""
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import AccountSasPermissions, BlobServiceClient, ResourceTypes, generate_account_sas

    container = f"lake-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient.from_connection_string(azurite_server.connection_string) as client:
        client.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", azurite_server.account_name)
    monkeypatch.setenv("FINOPS_LAKE_AZURE_ENDPOINT", azurite_server.account_url)
    if credential == "account_key":
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", azurite_server.account_key)
    else:
        sas = generate_account_sas(azurite_server.account_name, azurite_server.account_key, ResourceTypes(container=True, object=True),
                                   AccountSasPermissions(read=True, write=True, list=True, delete=True),
                                   expiry=datetime.now(timezone.utc) + timedelta(hours=1))
        monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    document = storage.join(f"az://{container}/data", "state", "pulls", "main.json")
    write_json(document, {"total": "1.10"})
    assert read_json(document) == {"total": "1.10"}
    assert storage.glob(f"az://{container}/data", "state/pulls/*.json") == [document]


def test_a_url_data_dir_stays_a_url_and_local_files_go_to_the_work_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FINOPS_DATA_DIR=s3://... is kept as a URL (never Path()-mangled); what cannot live in a bucket goes to
    FINOPS_WORK_DIR (default ./data); a local lake is its own work directory, as before."""
    from finops_pipeline import config, serving
    from finops_pipeline.catalog import catalog_path
    from finops_pipeline.dashboard import dashboard_path
    from finops_pipeline.resources import FinopsResource
    from finops_pipeline.throttle import state_directory
    from finops_pipeline.workdir import work_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FINOPS_DATA_DIR", "s3://bucket/finops/")
    assert config.data_dir() == "s3://bucket/finops"
    assert FinopsResource().data_path() == "s3://bucket/finops"
    assert FinopsResource(data_dir="az://container/lake").data_path() == "az://container/lake"
    lake = config.data_dir()
    assert storage.work_dir(lake) == tmp_path / "data"
    monkeypatch.setenv("FINOPS_WORK_DIR", str(tmp_path / "work"))
    for local in (catalog_path(lake), dashboard_path(lake), serving.lock_path(lake), state_directory(lake), work_root(lake)):
        assert local.is_relative_to(tmp_path / "work"), local
    assert serving.state_path(lake) == "s3://bucket/finops/lake/serving/state.json"

    monkeypatch.setenv("FINOPS_DATA_DIR", "relative-data")
    local_lake = config.data_dir()
    assert local_lake == tmp_path / "relative-data"
    assert catalog_path(local_lake) == local_lake / "finops.duckdb"  # FINOPS_WORK_DIR is for remote lakes only
    assert serving.lock_path(local_lake) == local_lake / "lake" / "serving" / ".lock"
    assert work_root(local_lake) == local_lake / "tmp"
