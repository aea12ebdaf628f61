"""Issue 11, CUR: manifests confined to the report and deduplicated, values DECIMAL(38,10) holds and dates
inside the billing period, a private working directory swept after a kill -9, and S3 that does not answer
costs at most give_up_after_seconds. Every failure keeps the month's last good partition byte for byte.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import pytest

from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_pipeline.lake import PartitionKey
from finops_pipeline.refresh import refresh_accounts
from finops_sandbox import cur as sandbox_cur
from finops_sandbox.server import SilentEndpoint

from .conftest import BUCKET, account_of, entry, lines_for

PERIOD = "2026-10"
S3_IAM_FIX = "s3:GetObject"


def _now() -> datetime:
    return datetime(2026, 11, 3, tzinfo=timezone.utc)


class Month:
    """One CUR account refreshed once with a good delivery; `refresh()` again after breaking something."""

    def __init__(self, tmp_path: Path, bucket, fmt: str = "cur2-parquet", endpoint: str | None = None, local: bool = False,
                 give_up: int = 120):
        self.data_dir = tmp_path / "data"
        self.version = "legacy" if fmt.startswith("legacy") else "cur2"
        item = entry(report="rep", version=self.version, endpoint=endpoint, local_dir=tmp_path / "bucket" if local else None)
        self.account = account_of({**item, "give_up_after_seconds": give_up})
        self.bucket = bucket
        self.fmt = fmt
        self.delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines_for(PERIOD), fmt, files=2)
        self.key = PartitionKey("aws", "cur", self.account.key, PERIOD)

    def refresh(self):
        [outcome] = refresh_accounts(self.data_dir, [self.account], PERIOD, partial(pull_cur, data_dir=self.data_dir), _now, [])
        return outcome

    def good(self) -> bytes:
        outcome = self.refresh()
        assert outcome.ok, outcome.diagnosis
        return self.key.path(self.data_dir).read_bytes()

    def manifest(self) -> dict:
        return json.loads(self._read(self.delivery.manifest_key))

    def _read(self, key: str) -> bytes:
        if isinstance(self.bucket, sandbox_cur.LocalBucket):
            return (self.bucket.root / key).read_bytes()
        return self.bucket.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def list_files(self, files: list[str]) -> None:
        manifest = self.manifest()
        manifest["reportKeys" if self.version == "legacy" else "dataFiles"] = files
        self.bucket.put(self.delivery.manifest_key, json.dumps(manifest).encode())

    def edit_csv(self, index: int, header: str, value: str, row: int = 3) -> str:
        key = self.delivery.data_keys[index]
        rows = list(csv.reader(io.StringIO(gzip.decompress(self._read(key)).decode())))
        rows[row][rows[0].index(header)] = value
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self.bucket.put(key, gzip.compress(text.getvalue().encode()))
        return key

    def assert_kept(self, before: bytes) -> None:
        assert self.key.path(self.data_dir).read_bytes() == before
        assert not list((self.data_dir / "tmp").iterdir())  # the working directory went with the failure


def _uri(key: str, bucket: str = BUCKET) -> str:
    return f"s3://{bucket}/{key}"


CUR2_LISTINGS = {
    "dot-dot": lambda keys: [_uri(keys[0]), _uri("exports/rep/data/../../other/secret.parquet")],
    "absolute path in a CUR 2.0 URI": lambda keys: [_uri(keys[0]), f"s3://{BUCKET}//abs/path/data.parquet"],
    "another bucket": lambda keys: [_uri(keys[0]), _uri(keys[1], "someone-elses-bucket")],
    "another report": lambda keys: [_uri(keys[0]), _uri(keys[1].replace("exports/rep/", "exports/rep-old/"))],
    "the same file twice": lambda keys: [_uri(keys[0]), _uri(keys[1]), _uri(keys[0])],
}


@pytest.mark.parametrize("case", list(CUR2_LISTINGS))
def test_cur2_manifest_outside_its_report_is_refused(moto, bucket, tmp_path, case) -> None:
    month = Month(tmp_path, bucket, endpoint=moto.url)
    before = month.good()
    listing = CUR2_LISTINGS[case](month.delivery.data_keys)
    month.list_files(listing)

    outcome = month.refresh()

    d = outcome.diagnosis
    assert d.code == "aws.cur_manifest_invalid", d
    offending = listing[-1]
    assert month.delivery.manifest_key in d.cause and repr(offending) in d.cause
    assert ("listed twice" in d.cause) == (case == "the same file twice")
    assert "Check who can write to the export's prefix" in d.fix and S3_IAM_FIX not in d.fix
    month.assert_kept(before)


@pytest.mark.parametrize(("case", "listed"), [("absolute", "/etc/passwd"), ("dot-dot", "exports/rep/../../secret.csv.gz"),
                                              ("other folder", "exports/other/20261001-20261101/x/rep-00001.csv.gz")])
def test_legacy_manifest_outside_its_report_is_refused(moto, bucket, tmp_path, case, listed) -> None:
    month = Month(tmp_path, bucket, fmt="legacy-csv-gz", endpoint=moto.url)
    before = month.good()
    month.list_files([month.delivery.data_keys[0], listed])
    d = month.refresh().diagnosis
    assert d.code == "aws.cur_manifest_invalid" and repr(listed) in d.cause and month.delivery.manifest_key in d.cause
    month.assert_kept(before)


def test_local_copy_manifest_cannot_reach_outside_local_dir(tmp_path) -> None:
    outside = tmp_path / "outside.csv.gz"
    outside.write_bytes(gzip.compress(b"not yours"))
    month = Month(tmp_path, sandbox_cur.LocalBucket(tmp_path / "bucket"), fmt="legacy-csv-gz", local=True)
    before = month.good()
    month.list_files([month.delivery.data_keys[0], "exports/rep/../../../outside.csv.gz"])
    d = month.refresh().diagnosis
    assert d.code == "aws.cur_manifest_invalid" and "outside.csv.gz" in d.cause
    month.assert_kept(before)


def test_a_killed_pulls_working_directory_is_swept_by_the_next_pull(moto, bucket, tmp_path) -> None:
    month = Month(tmp_path, bucket, endpoint=moto.url)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs: its owner was killed (-9 leaves no chance to clean up)
    stale = month.data_dir / "tmp" / f"cur-{dead.pid}-0badc0de-x1"
    (stale / "spill").mkdir(parents=True)
    (stale / "00000-rep.parquet").write_bytes(b"half a download")
    live = month.data_dir / "tmp" / "cur-1-0000live-x2"  # pid 1 runs: another process's pull in progress
    live.mkdir()

    month.good()

    assert not stale.exists()
    assert live.exists()
    assert sorted(p.name for p in (month.data_dir / "tmp").iterdir()) == [live.name]
    assert oct(os.stat(month.data_dir / "tmp").st_mode & 0o777) == "0o700"


def _line(lines: list[dict], kind: str) -> dict:
    return next(line for line in lines if line["line_item_line_item_type"] == kind)


BAD_VALUES = {
    "None in a savings plan column": ("savingsPlan/SavingsPlanEffectiveCost", "None", "savings_plan_savings_plan_effective_cost"),
    "abc in a savings plan column": ("savingsPlan/SavingsPlanEffectiveCost", "abc", "savings_plan_savings_plan_effective_cost"),
    "30 integer digits": ("lineItem/UnblendedCost", "1" * 30, "line_item_unblended_cost"),
    "12 decimals (would be rounded)": ("pricing/publicOnDemandCost", "0.123456789012", "pricing_public_on_demand_cost"),
    "NaN": ("reservation/EffectiveCost", "NaN", "reservation_effective_cost"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_value_decimal_38_10_cannot_hold_names_file_column_and_sample(moto, bucket, tmp_path, case) -> None:
    header, value, column = BAD_VALUES[case]
    month = Month(tmp_path, bucket, fmt="legacy-csv-gz", endpoint=moto.url)
    before = month.good()
    key = month.edit_csv(1, header, value)

    d = month.refresh().diagnosis

    assert d.code == "aws.cur_bad_value", d
    assert key in d.cause and column in d.cause and repr(value) in d.cause
    assert f"column {column}, sample {value!r}" in d.detail
    assert "keeps its last good data" in d.cause and S3_IAM_FIX not in d.fix and "Retry the refresh" not in d.fix
    month.assert_kept(before)


@pytest.mark.parametrize(("kind", "day", "ok"), [("Usage", "2026-11-02", False), ("Usage", "2026-09-12", False),
                                                 ("Fee", "2026-08-01", False), ("Refund", "2026-07-15", True), ("Credit", "2026-09-30", True)])
def test_line_items_outside_the_billing_period(moto, bucket, tmp_path, kind, day, ok) -> None:
    month = Month(tmp_path, bucket, endpoint=moto.url)
    before = month.good()
    lines = lines_for(PERIOD)
    _line(lines, kind)["line_item_usage_start_date"] = datetime.fromisoformat(day).replace(hour=5, tzinfo=timezone.utc)
    month.delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines, "cur2-parquet", files=2)

    outcome = month.refresh()

    if ok:  # a correction of an earlier period: kept, as ChargeClass Correction
        assert outcome.ok, outcome.diagnosis
        return
    d = outcome.diagnosis
    assert d.code == "aws.cur_bad_value" and "line_item_usage_start_date" in d.cause and day in d.cause, d
    assert ("on or after the end" in d.cause) == (day > "2026-10")
    month.assert_kept(before)


@pytest.mark.parametrize("where", ["silent endpoint", "manifest GET hangs", "data file stalls mid-body"])
def test_s3_that_does_not_answer_gives_up_within_the_budget(moto, bucket, proxy, tmp_path, where) -> None:
    silent = SilentEndpoint()
    try:
        month = Month(tmp_path, bucket, endpoint=silent.url if where == "silent endpoint" else proxy.url, give_up=4)
        if where != "silent endpoint":
            before = month.good()
        if where == "manifest GET hangs":
            proxy.hang(f"GET /{BUCKET}/exports/rep/metadata/")
        if where == "data file stalls mid-body":
            proxy.hang(f"GET /{BUCKET}/exports/rep/data/", stall_after=100)
        started = time.monotonic()
        outcome = month.refresh()
        elapsed = time.monotonic() - started
    finally:
        silent.stop()
    d = outcome.diagnosis
    assert d.code == "aws.timeout", d
    assert "did not answer" in d.cause and "next refresh retries" in d.fix and S3_IAM_FIX not in d.fix
    assert 3.5 <= elapsed < 6.5, elapsed
    if where != "silent endpoint":
        month.assert_kept(before)


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_s3_server_error_is_aws_side(moto, bucket, proxy, tmp_path, monkeypatch, status, code) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    month = Month(tmp_path, bucket, endpoint=proxy.url)
    before = month.good()
    proxy.fail(f"GET /{BUCKET}/exports/rep/data/", code, "We encountered an internal error. Please try again.", status=status)
    d = month.refresh().diagnosis
    assert d.code == "aws.provider_error" and f"({code}, HTTP {status})" in d.cause, d
    assert "AWS Health Dashboard" in d.fix and S3_IAM_FIX not in d.fix
    month.assert_kept(before)
