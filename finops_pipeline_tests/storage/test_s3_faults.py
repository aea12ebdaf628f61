"""The S3 lake when S3 misbehaves (the root conftest's FaultProxy in front of moto): a failing or hanging
upload leaves the last good object; a download cut mid-body is an error, never a partial object.

Uploads are written to moto directly: PUT bodies forwarded by the FaultProxy reach moto empty (botocore
sends `Expect: 100-continue`), which the upload's size check reports as "the upload was not whole"."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from finops_pipeline import storage
from finops_pipeline.lake import PartitionKey, read_partition, write_partition
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.test_schema import row

BUCKET = "lake-faults"
DATA = f"s3://{BUCKET}/data"
KEY = PartitionKey("aws", "cost_explorer", "aws-main", "2026-11")


def table(*amounts: str):
    return rows_to_table([row(BilledCost=a) for a in amounts])


@pytest.fixture
def lake(moto: Any, proxy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A partition written through the proxy (no fault yet); time limits short so faults end quickly."""
    boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("FINOPS_LAKE_S3_ENDPOINT", moto.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("FINOPS_LAKE_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("FINOPS_LAKE_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("FINOPS_LAKE_MAX_ATTEMPTS", "3")
    storage.reset_clients()
    write_partition(DATA, KEY, table("1", "2"), {"USD": Decimal("3")})
    monkeypatch.setenv("FINOPS_LAKE_S3_ENDPOINT", proxy.url)
    storage.reset_clients()
    yield proxy
    storage.reset_clients()


def amounts() -> list[Decimal]:
    return read_partition(DATA, KEY).column("BilledCost").to_pylist()


def test_an_upload_failing_every_try_leaves_the_previous_object(lake: Any, tmp_path: Path) -> None:
    lake.fail(f"PUT /{BUCKET}/", "InternalError", "We encountered an internal error. Please try again.", status=500)
    with pytest.raises(ClientError, match="InternalError"):
        write_partition(DATA, KEY, table("100"), {"USD": Decimal("100")})
    assert sum(n for request, n in lake.requests.items() if request.startswith(f"PUT /{BUCKET}/")) == 3  # FINOPS_LAKE_MAX_ATTEMPTS
    lake.clear()
    assert amounts() == [Decimal("1"), Decimal("2")]
    assert list((tmp_path / "staging").iterdir()) == []


def test_a_hanging_upload_times_out_and_leaves_the_previous_object(lake: Any) -> None:
    lake.hang(f"PUT /{BUCKET}/")
    with pytest.raises(ReadTimeoutError):
        write_partition(DATA, KEY, table("100"), {"USD": Decimal("100")})
    assert sum(n for request, n in lake.requests.items() if request.startswith(f"PUT /{BUCKET}/")) == 3
    lake.clear()
    assert amounts() == [Decimal("1"), Decimal("2")]


def test_a_download_cut_mid_body_is_an_error_not_a_partial_object(lake: Any) -> None:
    lake.hang(f"GET /{BUCKET}/data/lake", stall_after=100)
    with pytest.raises(storage.StorageError, match="cut or stalled mid-body 3 times"):
        storage.read_bytes(KEY.path(DATA))
    assert sum(n for request, n in lake.requests.items() if request.startswith(f"GET /{BUCKET}/")) == 3
    lake.clear()
    lake.hang(f"GET /{BUCKET}/data/lake", stall_after=100, times=1)  # once: the second try reads it whole
    assert read_partition(DATA, KEY).column("BilledCost").to_pylist() == [Decimal("1"), Decimal("2")]
    lake.clear()
    assert amounts() == [Decimal("1"), Decimal("2")]
