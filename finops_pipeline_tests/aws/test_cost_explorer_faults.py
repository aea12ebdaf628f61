"""Issue 11, Cost Explorer: an answer must prove it is one, a silent endpoint costs at most
give_up_after_seconds, and every failure is diagnosed truthfully while the month keeps its last good rows.

boto3 talks to moto's server through sandbox.faults.FaultProxy (which answers 200 with any body, 5xx, or
hangs) or to a SilentEndpoint (a socket that accepts and never answers), all on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from finops_pipeline.config import load_config
from finops_pipeline.defs.aws.cost_explorer.pull import pull_cost_explorer
from finops_pipeline.defs.aws.session import max_attempts
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline_tests.aws.test_cost_explorer import account_entry, october_charges
from finops_pipeline_tests.conftest import write_config
from finops_sandbox.aws import MotoSandbox, cost_explorer_pages
from finops_sandbox.server import SilentEndpoint

PERIOD = "2026-10"
CE_ACTIVATE = "Cost Explorer: activate it"
IAM_FIX = "AWSCostExplorerReadOnlyAccess"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", "ext-id-4f1c9b")


@pytest.fixture
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint().start()
    yield endpoint
    endpoint.stop()


def _now() -> datetime:
    return datetime(2026, 11, 5, tzinfo=timezone.utc)


class Lake:
    """aws-main through the proxy (or another endpoint), aws-second straight to moto; both refreshed once, good."""

    def __init__(self, moto: MotoSandbox, tmp_path: Path, main_endpoint: str, give_up: int = 4):
        self.data_dir = tmp_path / "data"
        entries = [account_entry("aws-main", "111111111111", main_endpoint, give_up_after_seconds=give_up),
                   account_entry("aws-second", "444444444444", moto.url, give_up_after_seconds=give_up)]
        self.config = load_config(write_config(tmp_path, entries))
        self.accounts = self.config.accounts
        seed_dir = tmp_path / "seed"  # the pages are bound through moto directly, whatever the fault in front of it
        seed_dir.mkdir()
        seeding = load_config(write_config(seed_dir, [account_entry("aws-main", "111111111111", moto.url), entries[1]]))
        pages = cost_explorer_pages(october_charges(), PERIOD, days_per_page=12)
        for key in ("aws-main", "aws-second"):
            moto.seed_cost_explorer(seeding.account(key), {PERIOD: pages})
        self.rows = len(october_charges())

    def key(self, account: str = "aws-main") -> PartitionKey:
        return PartitionKey("aws", "cost_explorer", account, PERIOD)

    def refresh(self):
        return {o.account.key: o for o in refresh_accounts(self.data_dir, self.accounts, PERIOD, pull_cost_explorer, _now, [])}

    def file_bytes(self, account: str = "aws-main") -> bytes:
        return self.key(account).path(self.data_dir).read_bytes()


def _good_then(lake: Lake):
    first = lake.refresh()
    assert first["aws-main"].ok and first["aws-second"].ok, first
    assert read_partition(lake.data_dir, lake.key()).num_rows == lake.rows
    return lake.file_bytes()


def _day(start: str = "2026-10-01", end: str = "2026-10-02", **extra) -> dict:
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Estimated": False, **extra}


def _group(amount="1.5", unit="USD", keys=("222222222222", "AWS Lambda"), metrics=None) -> dict:
    return {"Keys": list(keys), "Metrics": metrics if metrics is not None else {
        "UnblendedCost": {"Amount": amount, "Unit": unit}, "NetUnblendedCost": {"Amount": amount, "Unit": unit},
        "AmortizedCost": {"Amount": amount, "Unit": unit}}}


MALFORMED = {
    "empty body": (b"", "no ResultsByTime"),
    "empty object": (b"{}", "no ResultsByTime"),
    "garbage": (b"\x00\x17garbage, not JSON at all", "no ResultsByTime"),
    "html page": (b"<!DOCTYPE html><html><body><h1>Corporate proxy: please log in</h1></body></html>", "no ResultsByTime"),
    "other fields only": (json.dumps({"GroupDefinitions": [], "DimensionValueAttributes": []}).encode(), "no ResultsByTime"),
    "result without TimePeriod": (json.dumps({"ResultsByTime": [{"Groups": [_group()]}]}).encode(), "no TimePeriod"),
    "result without Groups": (json.dumps({"ResultsByTime": [_day()]}).encode(), "has no Groups list"),
    "day before the month": (json.dumps({"ResultsByTime": [_day("2026-09-30", "2026-10-01", Groups=[_group()])]}).encode(),
                             "not one day of 2026-10"),
    "day after the month": (json.dumps({"ResultsByTime": [_day("2026-11-01", "2026-11-02", Groups=[_group()])]}).encode(),
                            "not one day of 2026-10"),
    "group without metrics": (json.dumps({"ResultsByTime": [_day(Groups=[_group(metrics={})])]}).encode(), "has none of the metrics"),
    "amount not a number": (json.dumps({"ResultsByTime": [_day(Groups=[_group(amount="abc")])]}).encode(), "is not an amount"),
    "amount NaN": (json.dumps({"ResultsByTime": [_day(Groups=[_group(amount="NaN")])]}).encode(), "is not an amount"),
    "amount without unit": (json.dumps({"ResultsByTime": [_day(Groups=[_group(unit="")])]}).encode(), "is not an amount"),
    "group without keys": (json.dumps({"ResultsByTime": [_day(Groups=[_group(keys=())])]}).encode(), "lacks its 2 keys"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_an_answer_that_is_not_billing_data_replaces_nothing(moto, proxy, tmp_path, case) -> None:
    body, what = MALFORMED[case]
    lake = Lake(moto, tmp_path, proxy.url)
    before = _good_then(lake)
    proxy.answer("GetCostAndUsage", body, content_type="text/html" if b"html" in body else "application/x-amz-json-1.1")

    outcomes = lake.refresh()

    main = outcomes["aws-main"]
    assert not main.ok and main.diagnosis.code == "aws.malformed_answer", main.diagnosis
    assert what in main.diagnosis.cause and "keeps its last good data" in main.diagnosis.cause
    assert "endpoint" in main.diagnosis.fix and CE_ACTIVATE not in main.diagnosis.fix and IAM_FIX not in main.diagnosis.fix
    assert lake.file_bytes() == before  # byte-identical: nothing was replaced
    assert outcomes["aws-second"].ok and outcomes["aws-second"].rows == lake.rows


def test_a_next_page_token_that_never_ends_is_refused(moto, proxy, tmp_path) -> None:
    lake = Lake(moto, tmp_path, proxy.url)
    before = _good_then(lake)
    page = {"ResultsByTime": [_day(Groups=[_group()])], "NextPageToken": "again-and-again"}
    proxy.clear()
    proxy.answer("GetCostAndUsage", json.dumps(page).encode())

    outcomes = lake.refresh()

    assert outcomes["aws-main"].diagnosis.code == "aws.malformed_answer"
    assert "NextPageToken repeats" in outcomes["aws-main"].diagnosis.cause
    assert proxy.requests["GetCostAndUsage"] == 2  # the first page, then the repeat: no third USD 0.01
    assert lake.file_bytes() == before


def test_an_honest_empty_month_writes_an_empty_partition(moto, proxy, tmp_path) -> None:
    lake = Lake(moto, tmp_path, proxy.url)
    _good_then(lake)
    days = [_day(f"2026-10-{d:02d}", f"2026-10-{d + 1:02d}", Groups=[]) for d in range(1, 31)] + [_day("2026-10-31", "2026-11-01", Groups=[])]
    proxy.answer("GetCostAndUsage", json.dumps({"GroupDefinitions": [], "ResultsByTime": days, "DimensionValueAttributes": []}).encode())

    outcomes = lake.refresh()

    assert outcomes["aws-main"].ok and outcomes["aws-main"].rows == 0
    assert read_partition(lake.data_dir, lake.key()).num_rows == 0


@pytest.mark.parametrize("where", ["silent endpoint", "hanging proxy"])
def test_an_endpoint_that_never_answers_gives_up_within_the_budget(moto, proxy, silent, tmp_path, where) -> None:
    """Six attempts (the default) and botocore's 60 s read timeout would wait minutes; the deadline is 4 s."""
    lake = Lake(moto, tmp_path, silent.url if where == "silent endpoint" else proxy.url, give_up=4)
    if where == "hanging proxy":
        before = _good_then(lake)
        proxy.hang("GetCostAndUsage")
    asked_before = proxy.requests.get("GetCostAndUsage", 0)
    started = time.monotonic()

    outcomes = lake.refresh()

    elapsed = time.monotonic() - started
    main = outcomes["aws-main"]
    assert not main.ok and main.diagnosis.code == "aws.timeout", main.diagnosis
    assert "did not answer" in main.diagnosis.cause and "next refresh retries" in main.diagnosis.fix
    assert CE_ACTIVATE not in main.diagnosis.fix and IAM_FIX not in main.diagnosis.fix
    assert "4 s (give_up_after_seconds)" in main.diagnosis.detail
    # The deadline, not the attempts, ended it: fewer attempts than botocore's 6 (each cut to a 2 s read timeout).
    attempts = silent.accepted if where == "silent endpoint" else proxy.requests["GetCostAndUsage"] - asked_before
    assert 1 <= attempts < max_attempts(), attempts
    # Wall time only bounds it loosely (the machine may be loaded): at least the budget, and far below the one
    # 60 s read timeout botocore would otherwise wait (times six attempts).
    assert 3.5 <= elapsed < 30, elapsed
    assert outcomes["aws-second"].ok and outcomes["aws-second"].rows == lake.rows
    if where == "hanging proxy":
        assert lake.file_bytes() == before


@pytest.mark.parametrize(("status", "error_type"), [(500, "InternalFailure"), (503, "ServiceUnavailable"), (500, "InternalError")])
def test_a_server_error_is_aws_side_not_a_setting(moto, proxy, tmp_path, monkeypatch, status, error_type) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    lake = Lake(moto, tmp_path, proxy.url)
    before = _good_then(lake)
    proxy.clear()
    proxy.fail("GetCostAndUsage", error_type, "We encountered an internal error. Please try again.", status=status)

    outcomes = lake.refresh()

    main = outcomes["aws-main"]
    assert main.diagnosis.code == "aws.provider_error" and main.diagnosis.retryable
    assert f"({error_type}, HTTP {status})" in main.diagnosis.cause and "AWS's side" in main.diagnosis.cause
    assert "next refresh retries" in main.diagnosis.fix and "AWS Health Dashboard" in main.diagnosis.fix
    assert CE_ACTIVATE not in main.diagnosis.fix and IAM_FIX not in main.diagnosis.fix
    assert proxy.requests["GetCostAndUsage"] == 2  # retried, within the attempts
    assert lake.file_bytes() == before


def test_a_host_that_does_not_resolve_is_a_dns_failure(moto, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    lake = Lake(moto, tmp_path, "http://cost-explorer.finops-test.invalid:4566")
    outcomes = lake.refresh()
    main = outcomes["aws-main"]
    assert main.diagnosis.code == "aws.dns_failure", main.diagnosis
    assert "DNS" in main.diagnosis.fix and CE_ACTIVATE not in main.diagnosis.fix and IAM_FIX not in main.diagnosis.fix
    assert outcomes["aws-second"].ok


def test_only_not_enabled_for_cost_explorer_says_activate(moto, proxy, tmp_path) -> None:
    lake = Lake(moto, tmp_path, proxy.url)
    proxy.fail("GetCostAndUsage", "AccessDeniedException", "User not enabled for cost explorer access")
    main = lake.refresh()["aws-main"]
    assert main.diagnosis.code == "aws.cost_explorer_not_enabled" and CE_ACTIVATE in main.diagnosis.fix
