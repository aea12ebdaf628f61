"""AWS FOCUS export test helpers: account entries, a moto bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from finops_pipeline.config import Account, parse_config
from finops_sandbox import cur as sandbox_cur
from finops_sandbox import focus as sandbox_focus

BUCKET = "focus-test-bucket"


def entry(key: str = "focus-main", *, export: str = "focus-export", bucket: str | None = BUCKET, local_dir: Path | None = None,
          endpoint: str | None = None, prefix: str = "exports") -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "provider": "aws", "source": "focus", "name": f"FOCUS {key}",
                            "connected_at": "2026-09-01T00:00:00Z", "account_id": sandbox_focus.PAYER, "prefix": prefix,
                            "export_name": export}
    if local_dir is not None:
        item["local_dir"] = str(local_dir)
    else:
        item["bucket"] = bucket
        item["endpoint_url"] = endpoint
    return item


def account_of(item: dict[str, Any]) -> Account:
    config = parse_config({"accounts": [item]}, Path("finops.yaml"))
    assert not config.problems, config.problems
    return config.accounts[0]


@pytest.fixture
def s3(moto):
    return boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")


@pytest.fixture
def bucket(s3):
    return sandbox_cur.S3Bucket(s3, BUCKET)
