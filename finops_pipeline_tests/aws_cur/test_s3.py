"""boto3 against moto's S3 server: the four delivery formats, redeliveries, and every bad input."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_pipeline.diagnosis import PENDING, diagnose
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline.schema import totals_by_currency
from finops_sandbox import cur as sandbox_cur

from .conftest import BUCKET, account_of, entry, lines_for

PERIOD = "2026-10"


def _pull(moto, report: str, version: str, tmp_path: Path, period: str = PERIOD):
    pull = pull_cur(account_of(entry(report=report, version=version, endpoint=moto.url)), period)
    target = tmp_path / f"{report}-{period}.parquet"
    pull.produce(target)
    return pull, pq.read_table(target)


@pytest.mark.parametrize("fmt", ["legacy-csv-gz", "legacy-csv-zip", "legacy-parquet", "cur2-parquet", "cur2-csv-gz"])
def test_each_format_from_s3(moto, bucket, tmp_path, fmt):
    lines = lines_for(PERIOD)
    delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines, fmt, files=3)
    pull, table = _pull(moto, "rep", "legacy" if fmt.startswith("legacy") else "cur2", tmp_path)
    assert totals_by_currency(table) == sandbox_cur.expected_totals(lines) == pull.source_totals
    assert pull.metadata["files"] == 3
    assert pull.metadata["assembly_id"] == delivery.assembly_id
    assert pull.metadata["manifest"] == f"s3://{BUCKET}/{delivery.manifest_key}"
    assert pull.metadata["bytes_fetched"] > 0
    assert pull.api_calls == 2 + 3  # list + get of the manifest, one download per file


@pytest.mark.parametrize("fmt", ["legacy-csv-gz", "cur2-parquet"])
def test_redelivery_replaces_the_month_without_counting_twice(moto, bucket, tmp_path, fmt):
    version = "legacy" if fmt.startswith("legacy") else "cur2"
    first = lines_for(PERIOD, seed="first")
    second = lines_for(PERIOD, seed="second")  # a restated month: different amounts, new assembly beside the old
    old = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, first, fmt)
    new = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, second, fmt)
    assert set(old.data_keys).isdisjoint(new.data_keys)  # both deliveries' files are in the bucket
    pull, table = _pull(moto, "rep", version, tmp_path)
    assert totals_by_currency(table) == sandbox_cur.expected_totals(second) != sandbox_cur.expected_totals(first)
    assert pull.metadata["files"] == len(new.data_keys)


def test_previous_month_redelivery_through_refresh(moto, bucket, tmp_path):
    """AWS re-delivers last month early in the next one: the refresh of that month replaces it whole."""
    account = account_of(entry(report="rep", endpoint=moto.url))
    data_dir = tmp_path / "data"
    for seed in ("original", "restated"):
        lines = lines_for("2026-09", seed=seed)
        sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", "2026-09", lines, "cur2-parquet")
        [outcome] = refresh_accounts(data_dir, [account], "2026-09", pull_cur, _now, [])
        assert outcome.ok, outcome.diagnosis
        table = read_partition(data_dir, PartitionKey("aws", "cur", account.key, "2026-09"))
        assert totals_by_currency(table) == sandbox_cur.expected_totals(lines)


def _now():
    from datetime import datetime, timezone

    return datetime(2026, 10, 5, tzinfo=timezone.utc)


def _diagnosis(moto, report: str, version: str = "cur2"):
    """Bad inputs are found while fetching and totalling, before anything is written."""
    account = account_of(entry(report=report, version=version, endpoint=moto.url))
    with pytest.raises(Exception) as raised:
        pull_cur(account, PERIOD)
    return diagnose("aws", "cur", raised.value)


def test_missing_manifest_is_pending_with_the_knowledge_base_fix(moto, bucket):
    diagnosis = _diagnosis(moto, "never-delivered")
    assert diagnosis.code == "aws.cur_manifest_missing"
    assert diagnosis.status == PENDING
    assert "never-delivered/metadata/BILLING_PERIOD=2026-10/never-delivered-Manifest.json" in diagnosis.cause
    assert "Data Exports" in diagnosis.fix and "s3:GetObject" in diagnosis.fix


def test_manifest_listing_a_missing_file(moto, bucket, s3):
    delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines_for(PERIOD), "legacy-csv-gz", files=2)
    s3.delete_object(Bucket=BUCKET, Key=delivery.data_keys[1])
    diagnosis = _diagnosis(moto, "rep", "legacy")
    assert diagnosis.code == "aws.cur_file_missing"
    assert delivery.data_keys[1] in diagnosis.cause


def test_invalid_manifest(moto, bucket):
    key = sandbox_cur.cur2_manifest_key("exports", "rep", PERIOD)
    bucket.put(key, b'{"executionId": "x", "dataFiles": ["s3://')
    diagnosis = _diagnosis(moto, "rep")
    assert diagnosis.code == "aws.cur_manifest_invalid" and key in diagnosis.cause


def test_manifest_of_the_other_cur_version(moto, bucket):
    sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines_for(PERIOD), "cur2-parquet")
    # A legacy path that holds a CUR 2.0 style manifest (dataFiles, not reportKeys).
    legacy_key = sandbox_cur.legacy_manifest_key("exports", "rep", PERIOD)
    bucket.put(legacy_key, b'{"executionId": "x", "dataFiles": []}')
    diagnosis = _diagnosis(moto, "rep", "legacy")
    assert diagnosis.code == "aws.cur_manifest_invalid" and "cur_version" in diagnosis.fix


def test_truncated_parquet_names_the_file(moto, bucket, s3):
    delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines_for(PERIOD), "cur2-parquet")
    body = s3.get_object(Bucket=BUCKET, Key=delivery.data_keys[0])["Body"].read()
    bucket.put(delivery.data_keys[0], body[: len(body) // 2])
    diagnosis = _diagnosis(moto, "rep")
    assert diagnosis.code == "aws.cur_file_unreadable"
    assert delivery.data_keys[0] in diagnosis.cause


def test_truncated_gzip_names_the_file(moto, bucket, s3):
    lines = lines_for(PERIOD) * 4
    delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines, "legacy-csv-gz", files=2)
    body = s3.get_object(Bucket=BUCKET, Key=delivery.data_keys[1])["Body"].read()
    bucket.put(delivery.data_keys[1], body[: int(len(body) * 0.7)])
    diagnosis = _diagnosis(moto, "rep", "legacy")
    assert diagnosis.code == "aws.cur_file_unreadable"
    assert delivery.data_keys[1] in diagnosis.cause


def test_corrupt_zip_names_the_file(moto, bucket):
    delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines_for(PERIOD), "legacy-csv-zip", files=1)
    bucket.put(delivery.data_keys[0], b"PK\x03\x04 this is not a zip archive")
    diagnosis = _diagnosis(moto, "rep", "legacy")
    assert diagnosis.code == "aws.cur_file_unreadable" and delivery.data_keys[0] in diagnosis.cause


def test_non_numeric_amount_names_the_file(moto, bucket):
    lines = lines_for(PERIOD)
    delivery = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines, "legacy-csv-gz", files=2)
    rows = list(csv.reader(io.StringIO(gzip.decompress(sandbox_cur.encode(lines[1::2], "legacy-csv-gz")[0]).decode())))
    rows[5][rows[0].index("lineItem/UnblendedCost")] = "n/a"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    bucket.put(delivery.data_keys[1], gzip.compress(text.getvalue().encode()))
    diagnosis = _diagnosis(moto, "rep", "legacy")
    assert diagnosis.code == "aws.cur_bad_value" and delivery.data_keys[1] in diagnosis.cause
    assert "line_item_unblended_cost" in diagnosis.cause and "'n/a'" in diagnosis.cause
    assert "s3:GetObject" not in diagnosis.fix


def test_missing_bucket(moto):
    diagnosis = _diagnosis(moto, "rep")
    assert diagnosis.code == "aws.no_such_bucket"
    assert "bucket" in diagnosis.fix


def test_failures_leave_the_last_good_month_in_place(moto, bucket, s3, tmp_path):
    account = account_of(entry(report="rep", endpoint=moto.url))
    data_dir = tmp_path / "data"
    good = lines_for(PERIOD)
    sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, good, "cur2-parquet")
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_cur, _now, [])
    assert outcome.ok
    key = PartitionKey("aws", "cur", account.key, PERIOD)
    before = read_partition(data_dir, key)

    broken = sandbox_cur.deliver(bucket, BUCKET, "exports", "rep", PERIOD, lines_for(PERIOD, seed="other"), "cur2-parquet",
                                 drop=("line_item_unblended_cost",))
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_cur, _now, [])
    assert outcome.diagnosis.code == "aws.cur_column_missing"
    assert broken.data_keys[0] in outcome.diagnosis.cause and "line_item_unblended_cost" in outcome.diagnosis.cause
    assert read_partition(data_dir, key).equals(before)
    assert totals_by_currency(before) == sandbox_cur.expected_totals(good)
    assert not [p for p in key.directory(data_dir).iterdir() if p.name != "data.parquet"]  # no temporaries left behind
