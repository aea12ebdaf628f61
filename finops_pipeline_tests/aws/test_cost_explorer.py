"""AWS Cost Explorer through boto3 against moto's server on 127.0.0.1.

Results are injected through moto's own API; throttling and the errors moto cannot produce come
from sandbox.faults.FaultProxy, which answers in Cost Explorer's JSON error format.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import load_config
from finops_pipeline.defs.aws.cost_explorer.pull import normalize, pull_cost_explorer, raw_totals
from finops_pipeline.diagnosis import diagnose
from finops_pipeline_tests.conftest import write_config
from finops_sandbox.aws import MotoSandbox, cost_explorer_pages
from finops_sandbox.faults import FaultProxy
from finops_sandbox.synthetic import daily_charges, totals

SERVICES = [
    ("Amazon Elastic Compute Cloud - Compute", "us-east-1", Decimal("120.50")),
    ("Amazon Simple Storage Service", None, Decimal("14.25")),
    ("Tax", None, Decimal("3.10")),
]
LINKED = [("111111111111", "payer"), ("222222222222", "production")]


def account_entry(key: str, account_id: str, endpoint: str, **extra) -> dict:
    return {
        "key": key,
        "provider": "aws",
        "source": "cost_explorer",
        "name": key.title(),
        "connected_at": "2026-08-01T00:00:00Z",
        "account_id": account_id,
        "role_arn": f"arn:aws:iam::{account_id}:role/finops-billing-read",
        "external_id_env": "FINOPS_TEST_EXTERNAL_ID",
        "endpoint_url": endpoint,
        **extra,
    }


@pytest.fixture(autouse=True)
def external_id(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", "ext-id-4f1c9b")
    return "ext-id-4f1c9b"


def october_charges():
    return daily_charges("ce-test", date(2026, 10, 1), 31, LINKED, SERVICES)


def test_normalize_maps_cost_explorer_to_focus() -> None:
    charges = october_charges()
    pages = cost_explorer_pages(charges, "2026-10", estimated_from=date(2026, 10, 30), days_per_page=31)
    from finops_pipeline.config import parse_config

    config = parse_config({"accounts": [account_entry("aws-main", "111111111111", "http://127.0.0.1:1")]}, Path("x.yaml"))
    rows = normalize(pages, config.accounts[0], "2026-10", datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert len(rows) == len(charges)
    tax = [r for r in rows if r["ServiceName"] == "Tax"]
    assert {r["ChargeCategory"] for r in tax} == {"Tax"}
    assert {r["ChargeCategory"] for r in rows if r["ServiceName"] != "Tax"} == {"Usage"}
    first = next(r for r in rows if r["SubAccountId"] == "222222222222")
    assert first["SubAccountName"] == "production" and first["BillingAccountId"] == "111111111111"
    assert first["ChargePeriodStart"].isoformat() == "2026-10-01T00:00:00+00:00"
    assert first["ServiceCategory"] in {"Compute", "Storage", "Other"}
    assert {r["ChargePeriodStart"].day for r in rows if r["x_Estimated"]} == {30, 31}
    assert sum(r["BilledCost"] for r in rows) == totals(charges)["USD"] == raw_totals(pages)["USD"]
    assert sum(r["EffectiveCost"] for r in rows) == sum(c.amortized for c in charges)


def test_pull_follows_next_page_token_and_counts_calls(moto: MotoSandbox, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", moto.url)]))
    account = config.account("aws-main")
    charges = october_charges()
    pages = cost_explorer_pages(charges, "2026-10", estimated_from=date(2026, 10, 31), days_per_page=7)
    assert len(pages) == 5
    moto.seed_cost_explorer(account, {"2026-10": pages})

    pulled = pull_cost_explorer(account, "2026-10")

    assert pulled.api_calls == 5
    assert pulled.metadata["cost_usd_for_api_calls"] == "0.05"
    assert pulled.metadata["estimated_days"] == ["2026-10-31"]
    assert pulled.batches.num_rows == len(charges)
    assert pulled.source_totals == totals(charges)
    assert sum(pulled.batches.column("BilledCost").to_pylist()) == totals(charges)["USD"]


def test_throttling_is_retried_with_backoff(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)]))
    account = config.account("aws-main")
    moto.seed_cost_explorer(account, {"2026-10": cost_explorer_pages(october_charges(), "2026-10", days_per_page=31)})
    proxy.clear()  # seeding replayed the query through the proxy; count only the pull's requests
    proxy.fail("GetCostAndUsage", "LimitExceededException", "Rate exceeded", times=2)

    pulled = pull_cost_explorer(account, "2026-10")

    assert proxy.requests["GetCostAndUsage"] == 3  # two throttled attempts, then the page
    assert pulled.metadata["throttled_retries"] == 2
    assert pulled.api_calls == 1
    assert pulled.source_totals == totals(october_charges())


@pytest.mark.parametrize(
    ("error_type", "message", "code", "status", "fix_mentions"),
    [
        ("AccessDeniedException", "User not enabled for cost explorer access", "aws.cost_explorer_not_enabled", "PENDING", "Cost Explorer: activate it"),
        ("DataUnavailableException", "Data is not available", "aws.data_unavailable", "PENDING", "24 to 48 hours"),
        ("AccessDeniedException", "User: arn:aws:sts::111111111111:assumed-role/finops is not authorized to perform: ce:GetCostAndUsage",
         "aws.cost_explorer_access_denied", "ERROR", "AWSCostExplorerReadOnlyAccess"),
        ("LimitExceededException", "Rate exceeded", "aws.throttled", "ERROR", "next scheduled refresh retries"),
    ],
)
def test_cost_explorer_errors_are_diagnosed(
    moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    error_type: str, message: str, code: str, status: str, fix_mentions: str,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # the throttling case gives up quickly
    config = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)]))
    proxy.fail("GetCostAndUsage", error_type, message)
    with pytest.raises(Exception) as raised:
        pull_cost_explorer(config.account("aws-main"), "2026-10")
    diagnosis = diagnose("aws", "cost_explorer", raised.value)
    assert (diagnosis.code, diagnosis.status) == (code, status)
    assert fix_mentions in diagnosis.fix
    assert message in diagnosis.detail


def test_assume_role_failure_is_diagnosed(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)]))
    proxy.fail("AssumeRole", "AccessDenied", "User is not authorized to perform: sts:AssumeRole", status=403)
    with pytest.raises(Exception) as raised:
        pull_cost_explorer(config.account("aws-main"), "2026-10")
    diagnosis = diagnose("aws", "cost_explorer", raised.value)
    assert diagnosis.code == "aws.assume_role_failed"
    assert "external id" in diagnosis.fix and "trust policy" in diagnosis.fix
    assert "ext-id-4f1c9b" not in diagnosis.detail
