"""AWS FOCUS exports through boto3 against moto's S3, and from a local copy: manifests, redelivery, refresh."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_pipeline.defs.aws.focus.pull import pull_focus
from finops_pipeline.diagnosis import ERROR, PENDING, ProviderError, diagnose
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline.schema import totals_by_currency
from finops_pipeline.sources import get_source
from finops_sandbox import cur as sandbox_cur
from finops_sandbox import focus as sf

from .conftest import BUCKET, account_of, entry

PERIOD = "2026-10"


def _now():
    return datetime(2026, 11, 5, tzinfo=timezone.utc)


def _pull(account, tmp_path: Path, period: str = PERIOD):
    pull = pull_focus(account, period, data_dir=tmp_path / "data")
    target = tmp_path / "out.parquet"
    pull.produce(target)
    return pull, pq.read_table(target)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_reads_exactly_the_manifest_files_from_s3(moto, bucket, tmp_path, fmt):
    lines = sf.rows(PERIOD, days=10)
    delivery = sf.deliver(bucket, BUCKET, "exports", "focus-export", PERIOD, lines, fmt, files=3)
    pull, table = _pull(account_of(entry(endpoint=moto.url)), tmp_path)
    assert totals_by_currency(table) == sf.expected_totals(lines) == pull.source_totals
    assert pull.metadata["files"] == 3 and pull.metadata["execution_id"] == delivery.execution_id
    assert pull.metadata["manifest"] == f"s3://{BUCKET}/{delivery.manifest_key}"
    assert pull.metadata["focus_versions"] == ["1.2"]
    assert pull.api_calls == 2 + 3
    assert not list((tmp_path / "data" / "tmp").glob("cur-*"))  # the private download directory is gone


def test_redelivered_month_replaces_without_counting_twice(moto, bucket, tmp_path):
    """AWS re-delivers a closed month: both deliveries' files sit in the same folder; only the manifest's are read."""
    account = account_of(entry(endpoint=moto.url))
    data_dir = tmp_path / "data"
    first, restated = sf.rows(PERIOD, seed="first"), sf.rows(PERIOD, seed="restated")
    old = sf.deliver(bucket, BUCKET, "exports", "focus-export", PERIOD, first)
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_focus, _now, [])
    assert outcome.ok, outcome.diagnosis
    new = sf.deliver(bucket, BUCKET, "exports", "focus-export", PERIOD, restated)
    assert set(old.data_keys).isdisjoint(new.data_keys)
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_focus, _now, [])
    assert outcome.ok, outcome.diagnosis
    table = read_partition(data_dir, PartitionKey("aws", "focus", account.key, PERIOD))
    assert totals_by_currency(table) == sf.expected_totals(restated) != sf.expected_totals(first)


def test_local_dir_and_focus_10(tmp_path):
    root = tmp_path / "sync"
    lines = sf.as_version(sf.rows(PERIOD, days=4), "1.0")
    sf.deliver(sandbox_cur.LocalBucket(root), BUCKET, "exports", "focus-export", PERIOD, lines)
    pull, table = _pull(account_of(entry(local_dir=root)), tmp_path)
    assert totals_by_currency(table) == sf.expected_totals(lines)
    assert pull.metadata["focus_versions"] == ["1.0"] and pull.api_calls == 0


def test_no_manifest_yet_is_pending_with_the_fix(moto, bucket, tmp_path):
    with pytest.raises(ProviderError) as raised:
        pull_focus(account_of(entry(endpoint=moto.url)), PERIOD, data_dir=tmp_path)
    diagnosis = raised.value.diagnosis
    assert diagnosis.status == PENDING and diagnosis.code == "aws.focus_manifest_missing"
    assert "FOCUS 1.2 with AWS columns" in diagnosis.fix


def test_manifest_outside_the_export_is_refused(moto, bucket, s3, tmp_path):
    delivery = sf.deliver(bucket, BUCKET, "exports", "focus-export", PERIOD, sf.rows(PERIOD, days=1))
    import json

    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=delivery.manifest_key)["Body"].read())
    manifest["dataFiles"].append(manifest["dataFiles"][0])  # listed twice
    s3.put_object(Bucket=BUCKET, Key=delivery.manifest_key, Body=json.dumps(manifest).encode())
    with pytest.raises(ProviderError, match="listed twice"):
        pull_focus(account_of(entry(endpoint=moto.url)), PERIOD, data_dir=tmp_path)


def test_a_bad_file_fails_the_account_and_keeps_the_last_good_month(moto, bucket, tmp_path):
    account = account_of(entry(endpoint=moto.url))
    data_dir = tmp_path / "data"
    good = sf.rows(PERIOD, days=3)
    sf.deliver(bucket, BUCKET, "exports", "focus-export", PERIOD, good)
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_focus, _now, [])
    assert outcome.ok
    body, _ = sf.encode(good, "parquet")
    sf.deliver(bucket, BUCKET, "exports", "focus-export", PERIOD, good, bodies={2: body[: len(body) // 3]})
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, pull_focus, _now, [])
    assert not outcome.ok and outcome.diagnosis.status == ERROR
    assert outcome.diagnosis.code == "aws.focus_file_unreadable"
    assert f"s3://{BUCKET}/exports/focus-export/data/" in outcome.diagnosis.cause and "re-sync" in outcome.diagnosis.fix
    table = read_partition(data_dir, PartitionKey("aws", "focus", account.key, PERIOD))
    assert totals_by_currency(table) == sf.expected_totals(good)


def test_s3_access_denied_is_classified(moto, tmp_path):
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "ListObjectsV2")
    diagnosis = diagnose("aws", "focus", error)
    assert diagnosis.status == ERROR and diagnosis.code.startswith("aws.")
    assert get_source("aws", "focus").title == "AWS FOCUS export"


def test_settings_need_bucket_or_local_dir():
    from pathlib import Path as P

    from finops_pipeline.config import parse_config

    item = entry()
    item.pop("bucket")
    item.pop("endpoint_url")
    config = parse_config({"accounts": [item]}, P("finops.yaml"))
    assert config.problems and "local_dir" in str(config.problems[0])


def test_a_bad_file_fails_its_account_and_the_others_continue(moto, bucket, tmp_path):
    good_account = account_of(entry("focus-good", export="good-export", endpoint=moto.url))
    bad_account = account_of({**entry("focus-bad", export="bad-export", endpoint=moto.url), "account_id": "222233334444"})
    lines = sf.rows(PERIOD, days=2)
    sf.deliver(bucket, BUCKET, "exports", "good-export", PERIOD, lines)
    missing = [{k: v for k, v in line.items() if k != "BillingCurrency"} for line in lines]
    sf.deliver(bucket, BUCKET, "exports", "bad-export", PERIOD, missing)
    data_dir = tmp_path / "data"
    bad, good = refresh_accounts(data_dir, [bad_account, good_account], PERIOD, pull_focus, _now, [])
    assert not bad.ok and bad.diagnosis.code == "aws.focus_column_missing" and "BillingCurrency" in bad.diagnosis.cause
    assert f"s3://{BUCKET}/exports/bad-export/data/" in bad.diagnosis.cause and "Edit the export" in bad.diagnosis.fix
    assert good.ok and totals_by_currency(read_partition(data_dir, PartitionKey("aws", "focus", "focus-good", PERIOD))) == \
        sf.expected_totals(lines)


def test_the_demo_redelivers_a_month_and_the_newer_manifest_replaces_it(tmp_path):
    from datetime import date

    from finops_pipeline.config import parse_config

    demo = sf.AwsFocusDemo()
    demo.start(0)
    try:
        now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
        config = parse_config({"accounts": demo.accounts(now)}, Path("finops.yaml"))
        assert not config.problems
        import os

        os.environ.update(demo.environment())
        demo.seed(config, ["2026-09", "2026-10", "2026-11"], date(2026, 11, 20))
        [account] = config.for_source("aws", "focus")
        pull, table = _pull(account, tmp_path, "2026-10")
        restated = sf.rows("2026-10", seed=f"demo-{account.key}-restated", days=31)
        first = sf.rows("2026-10", seed=f"demo-{account.key}", days=31)
        assert totals_by_currency(table) == pull.source_totals == sf.expected_totals(restated) != sf.expected_totals(first)
        assert pull.metadata["files"] == 2  # the second execution's, though the first one's are still in the folder
        november = _pull(account, tmp_path, "2026-11")[1]
        assert {r.date() for r in november.column("ChargePeriodStart").to_pylist()} == {date(2026, 11, d) for d in range(1, 20)}
    finally:
        demo.stop()
