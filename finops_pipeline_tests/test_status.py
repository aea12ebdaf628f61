"""The health model as plain functions: which pull outcomes make an account OK, PENDING, NO_DATA or ERROR."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from finops_pipeline import pulls
from finops_pipeline.config import parse_config
from finops_pipeline.diagnosis import Diagnosis, Status
from finops_pipeline.status import Coverage, account_status, describe_age, open_periods

NOW = datetime(2026, 11, 26, 8, tzinfo=timezone.utc)
ACCOUNT = parse_config(
    {"accounts": [{"key": "cur-a", "provider": "aws", "source": "cur", "name": "A", "connected_at": "2026-06-01T00:00:00Z",
                   "account_id": "123456789012", "bucket": "bucket-a", "prefix": "p", "report_name": "r"}]},
    Path("finops.yaml"),
).accounts[0]
MISSING = Diagnosis("aws.cur_manifest_missing", Status.PENDING, "No manifest for the month.", "Create the export.", "detail")
DENIED = Diagnosis("aws.s3_access_denied", Status.ERROR, "May not read the bucket.", "Grant s3:GetObject.", "detail")
SEPTEMBER_ON = Coverage(date(2026, 9, 1), date(2026, 11, 25), 500)


def status(tmp_path: Path, covered: Coverage | None, now: datetime = NOW, account=ACCOUNT):
    return account_status(account, pulls.records(tmp_path, account.key), covered, now)


def test_the_newest_pull_decides_even_when_the_clock_does_not_move(tmp_path: Path) -> None:
    pulls.record_success(tmp_path, "cur-a", "2026-11", NOW, rows=3, api_calls=1)
    pulls.record_failure(tmp_path, "cur-a", "2026-11", NOW, DENIED)
    assert status(tmp_path, SEPTEMBER_ON).status == Status.ERROR
    pulls.record_success(tmp_path, "cur-a", "2026-11", NOW, rows=3, api_calls=1)
    healthy = status(tmp_path, SEPTEMBER_ON)
    assert healthy.status == Status.OK and healthy.last_successful_pull == NOW and healthy.failing_periods == ()


def test_a_backfill_before_the_first_data_leaves_the_account_ok(tmp_path: Path) -> None:
    pulls.record_success(tmp_path, "cur-a", "2026-11", NOW, rows=300, api_calls=2)
    pulls.record_failure(tmp_path, "cur-a", "2026-03", NOW + timedelta(minutes=5), MISSING)  # before the export existed
    result = status(tmp_path, SEPTEMBER_ON)
    assert result.status == Status.OK and result.cause is None
    assert result.failing_periods == ("2026-03",)  # still reported, on that month only


def test_a_failure_in_a_month_with_data_or_the_open_month_is_an_error(tmp_path: Path) -> None:
    pulls.record_success(tmp_path, "cur-a", "2026-11", NOW, rows=300, api_calls=2)
    pulls.record_failure(tmp_path, "cur-a", "2026-10", NOW, DENIED)  # a month with data
    result = status(tmp_path, SEPTEMBER_ON)
    assert (result.status, result.error_code, result.fix) == (Status.ERROR, "aws.s3_access_denied", "Grant s3:GetObject.")


def test_pending_says_when_it_becomes_no_data_and_an_empty_pull_gets_its_own_advice(tmp_path: Path) -> None:
    connected = ACCOUNT.connected_at
    pulls.record_success(tmp_path, "cur-a", "2026-06", connected + timedelta(hours=1), rows=0, api_calls=1)
    pending = status(tmp_path, None, now=connected + timedelta(hours=47))
    assert pending.status == Status.PENDING and pending.becomes_no_data_at == connected + timedelta(hours=48)
    no_data = status(tmp_path, None, now=connected + timedelta(hours=49))
    assert no_data.status == Status.NO_DATA
    assert no_data.cause.startswith("The report is delivered, but its latest manifest lists no costs")
    assert "cannot read" not in no_data.cause


def test_an_account_never_pulled_says_so(tmp_path: Path) -> None:
    result = status(tmp_path, None, now=ACCOUNT.connected_at + timedelta(days=3))
    assert result.status == Status.NO_DATA
    assert result.cause.startswith("No pull of this account has run yet")
    assert "finops-pipeline refresh --account cur-a" in result.fix


def test_not_there_yet_is_pending_inside_48_hours_and_an_error_after(tmp_path: Path) -> None:
    connected = ACCOUNT.connected_at
    pulls.record_failure(tmp_path, "cur-a", "2026-06", connected + timedelta(hours=2), MISSING)
    assert status(tmp_path, None, now=connected + timedelta(hours=20)).status == Status.PENDING
    late = status(tmp_path, None, now=connected + timedelta(hours=50))
    assert (late.status, late.error_code) == (Status.ERROR, "aws.cur_manifest_missing")


def test_open_periods_and_ages_read_as_people_say_them() -> None:
    assert open_periods(datetime(2026, 12, 3, tzinfo=timezone.utc)) == ["2026-12", "2026-11"]
    assert open_periods(datetime(2026, 11, 26, tzinfo=timezone.utc)) == ["2026-11"]
    assert describe_age(NOW - timedelta(hours=31), NOW) == "31 hours"
    assert describe_age(NOW - timedelta(days=120, hours=3), NOW) == "120 days"


def test_a_broken_account_is_an_error_with_its_fix_at_once(tmp_path: Path) -> None:
    config = parse_config(
        {"accounts": [
            {"key": "good", "provider": "aws", "source": "cur", "connected_at": "2026-06-01T00:00:00Z",
             "account_id": "123456789012", "bucket": "bucket-a", "report_name": "r"},
            {"key": "typo", "provider": "aws", "source": "cur", "connected_at": "2026-06-01T00:00:00Z",
             "account_id": "12345", "bucket": "bucket-b", "report_name": "r"},
        ]},
        Path("finops.yaml"),
    )
    good, typo = config.accounts
    assert not good.broken and typo.broken
    result = account_status(typo, {}, None, NOW)
    assert (result.status, result.error_code) == (Status.ERROR, "config.invalid")
    assert "account_id" in result.cause and result.fix
    assert account_status(good, {}, None, NOW).status == Status.NO_DATA


def test_not_there_yet_is_a_failure_only_after_48_hours() -> None:
    from finops_pipeline.status import not_there_yet

    connected = ACCOUNT.connected_at
    assert not_there_yet(ACCOUNT, Status.PENDING, connected + timedelta(hours=47))
    assert not not_there_yet(ACCOUNT, Status.PENDING, connected + timedelta(hours=49))
    assert not not_there_yet(ACCOUNT, Status.ERROR, connected + timedelta(hours=1))
