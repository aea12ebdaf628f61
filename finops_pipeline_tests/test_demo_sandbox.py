"""The demo's stand-ins in a process that already ran a demo: moto's state is per process (every moto server in
it shares it), so without a reset a second demo saw the first one's buckets and was answered from its queued Cost
Explorer results (the pipeline refused those answers: "a result is for 2026-09-17..2026-09-18, not one day of
2026-12-...")."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import boto3

from finops_sandbox.demo import running_sandbox


def test_a_second_sandbox_in_one_process_starts_its_moto_stand_ins_empty(tmp_path: Path) -> None:
    environment = dict(os.environ)  # the stand-ins export their accounts' secrets
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    seen = []
    try:
        os.environ["FINOPS_SANDBOX_PORT"] = "0"
        for run in range(2):
            with running_sandbox(tmp_path / f"run-{run}" / "data", now) as config:
                cur = next(a for a in config.accounts if a.source == "cur")
                s3 = boto3.client("s3", endpoint_url=cur.settings.get("endpoint_url"), region_name="us-east-1")
                seen.append(sorted(bucket["Name"] for bucket in s3.list_buckets()["Buckets"]))
                s3.create_bucket(Bucket=f"left-by-run-{run}")
    finally:
        os.environ.clear()
        os.environ.update(environment)
    assert seen == [["finops-demo-cur", "finops-demo-focus"]] * 2
