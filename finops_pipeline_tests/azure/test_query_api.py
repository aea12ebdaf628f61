"""The real azure-identity + azure-mgmt-costmanagement clients over HTTPS against the local stand-in."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from finops_pipeline.config import MissingEnvironmentVariable
from finops_pipeline.defs.azure.cost_management.client import THROTTLE_RETRIES
from finops_pipeline.defs.azure.cost_management.pull import pull_cost_management
from finops_pipeline.diagnosis import diagnose
from finops_pipeline.schema import totals_by_currency
from finops_sandbox.azure import QPU_RETRY_AFTER_HEADER, UsageRecord, seed_subscription

from .conftest import SECRET, SECRET_ENV

PERIOD = "2026-10"


def seeded(records, cost_type, period=PERIOD):
    """Totals per currency of what the stand-in holds for the month: the expected figures."""
    totals = {}
    for r in records:
        amount = r.cost if cost_type == "ActualCost" else r.amortized_cost
        if amount is not None and r.day.strftime("%Y-%m") == period:
            totals[r.currency] = totals.get(r.currency, Decimal(0)) + amount
    return totals


def test_pull_follows_next_link_with_the_same_body_and_reconciles(azure, tenant):
    subscription = tenant.subscription()
    records = seed_subscription(azure, subscription, date(2026, 9, 20), 45)  # spans three months
    azure.page_size = 40
    pull = pull_cost_management(tenant.account("prod", subscription), PERIOD)

    table = pull.batches
    assert pull.source_totals == seeded(records, "ActualCost")
    assert totals_by_currency(table) == seeded(records, "ActualCost")
    assert totals_by_currency(table, "EffectiveCost") == seeded(records, "AmortizedCost")
    days = {d.date() for d in table.column("ChargePeriodStart").to_pylist()}
    assert min(days) == date(2026, 10, 1) and max(days) == date(2026, 10, 31)  # only the month asked for

    answered = [q for q in azure.query_log if q["status"] == 200]
    follow_ups = [q for q in answered if q["skiptoken"]]
    assert follow_ups, "the stand-in paged the month, so nextLink must have been followed"
    assert {q["type"] for q in answered} == {"ActualCost", "AmortizedCost"}
    assert {(q["from"], q["to"]) for q in answered} == {("2026-10-01", "2026-10-31")}
    assert all(q["grouping"] == ["ServiceName", "ChargeType"] for q in answered)
    assert pull.api_calls == len(azure.query_log) == pull.metadata["query_requests"]
    assert pull.metadata["pages"] == {
        t: sum(1 for q in answered if q["type"] == t) for t in ("ActualCost", "AmortizedCost")
    }
    assert pull.metadata["qpu_consumed"] == len(answered)  # the stand-in charges 1 QPU per one-month page
    assert pull.metadata["queries"] == 2


def test_throttled_query_waits_what_cost_management_asks_then_succeeds(azure, tenant):
    subscription = tenant.subscription()
    records = seed_subscription(azure, subscription, date(2026, 10, 1), 31)
    azure.fail_next(429, "429", "Too many requests. Please retry.", {QPU_RETRY_AFTER_HEADER: "1", "Retry-After": "1"}, times=1)
    started = time.monotonic()
    pull = pull_cost_management(tenant.account("prod", subscription), PERIOD)
    elapsed = time.monotonic() - started

    assert elapsed >= 1.0
    assert pull.metadata["throttled_responses"] == 1
    assert pull.metadata["throttle_wait_seconds"] == 1
    assert pull.source_totals == seeded(records, "ActualCost")
    assert [q["status"] for q in azure.query_log][:2] == [429, 200]


def test_a_wait_longer_than_allowed_fails_at_once_with_the_throttle_diagnosis(azure, tenant):
    subscription = tenant.subscription()
    seed_subscription(azure, subscription, date(2026, 10, 1), 31)
    azure.fail_next(429, "429", "Too many requests. Please retry.", {QPU_RETRY_AFTER_HEADER: "45"}, times=None)
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        pull_cost_management(tenant.account("prod", subscription, max_throttle_wait_seconds=3), PERIOD)
    assert time.monotonic() - started < 10
    diagnosis = diagnose("azure", "cost_management", raised.value)
    assert diagnosis.code == "azure.throttled" and diagnosis.retryable
    assert "45 s" in diagnosis.cause
    assert len(azure.query_log) == 1  # no retry spent on a wait that was not taken


def test_throttling_retries_are_bounded(azure, tenant):
    subscription = tenant.subscription()
    azure.fail_next(429, "429", "Too many requests. Please retry.", {QPU_RETRY_AFTER_HEADER: "0"}, times=None)
    with pytest.raises(Exception) as raised:
        pull_cost_management(tenant.account("prod", subscription), PERIOD)
    assert diagnose("azure", "cost_management", raised.value).code == "azure.throttled"
    assert len(azure.query_log) == 1 + THROTTLE_RETRIES


def test_empty_subscription_gives_an_empty_month(azure, tenant):
    subscription = tenant.subscription()
    pull = pull_cost_management(tenant.account("empty", subscription), PERIOD)
    assert pull.batches.num_rows == 0
    assert pull.source_totals == {}
    assert pull.metadata["queries"] == 2


def test_a_month_that_has_not_started_spends_no_query(azure, tenant):
    subscription = tenant.subscription()
    future = (datetime.now(timezone.utc).replace(day=1) + timedelta(days=62)).strftime("%Y-%m")
    pull = pull_cost_management(tenant.account("prod", subscription), future)
    assert pull.api_calls == 0 and azure.query_log == [] and azure.token_requests == 0


def test_two_currencies_stay_apart(azure, tenant):
    subscription = tenant.subscription()
    azure.add_usage(subscription, [
        UsageRecord(date(2026, 10, 5), "Storage", "Usage", "rg", "westeurope", Decimal("1.25"), Decimal("1.25"), "EUR"),
        UsageRecord(date(2026, 10, 5), "Storage", "Usage", "rg", "eastus", Decimal("2.50"), Decimal("2.00"), "USD"),
    ])
    pull = pull_cost_management(tenant.account("prod", subscription), PERIOD)
    assert pull.source_totals == {"EUR": Decimal("1.25"), "USD": Decimal("2.50")}
    assert totals_by_currency(pull.batches) == {"EUR": Decimal("1.25"), "USD": Decimal("2.50")}


def diagnosis_of(account, period=PERIOD):
    with pytest.raises(Exception) as raised:
        pull_cost_management(account, period)
    diagnosis = diagnose("azure", "cost_management", raised.value, [SECRET])
    for text in (diagnosis.cause, diagnosis.fix, diagnosis.detail, str(raised.value)):
        assert SECRET not in text
    return diagnosis


@pytest.mark.parametrize("status", [401, 403])
def test_rbac_access_denied_as_401_or_403(azure, tenant, status):
    subscription = tenant.subscription(role=None, denied_status=status)
    diagnosis = diagnosis_of(tenant.account("prod", subscription))
    assert diagnosis.code == "azure.rbac_access_denied"
    assert "Cost Management Reader" in diagnosis.fix and "subscription" in diagnosis.fix and "resource group" in diagnosis.fix
    assert azure.query_log[-1]["status"] == status


def test_role_on_a_resource_group_only(azure, tenant):
    subscription = tenant.subscription(role="resourceGroup:rg-web")
    diagnosis = diagnosis_of(tenant.account("prod", subscription))
    assert diagnosis.code == "azure.rbac_access_denied"
    assert "not a resource group" in diagnosis.fix


def test_wrong_subscription(azure, tenant):
    diagnosis = diagnosis_of(tenant.account("prod", "9a9a9a9a-0000-4000-8000-000000000000"))
    assert diagnosis.code == "azure.subscription_not_found"
    assert "subscription_id" in diagnosis.fix


def test_subscription_of_another_tenant(azure, tenant):
    from .conftest import Tenant

    other = Tenant(azure).subscription()
    diagnosis = diagnosis_of(tenant.account("prod", other))
    assert diagnosis.code == "azure.subscription_in_other_tenant"
    assert "tenant_id" in diagnosis.fix


def test_bad_client_secret(azure, tenant, monkeypatch):
    subscription = tenant.subscription()
    monkeypatch.setenv(SECRET_ENV, "not-the-right-secret-value")
    with pytest.raises(Exception) as raised:
        pull_cost_management(tenant.account("prod", subscription), PERIOD)
    diagnosis = diagnose("azure", "cost_management", raised.value, ["not-the-right-secret-value"])
    assert diagnosis.code == "azure.bad_client_secret"
    assert "client_secret_env" in diagnosis.fix
    assert "not-the-right-secret-value" not in diagnosis.detail + diagnosis.cause + diagnosis.fix + str(raised.value)


def test_unknown_client_id_and_tenant(azure, tenant):
    subscription = tenant.subscription()
    assert diagnosis_of(tenant.account("prod", subscription, client_id="00000000-0000-4000-8000-00000000abcd")).code == "azure.unknown_client_id"
    assert diagnosis_of(tenant.account("prod", subscription, tenant_id="00000000-0000-4000-8000-00000000dcba")).code == "azure.unknown_tenant"


def test_missing_secret_variable(azure, tenant, monkeypatch):
    subscription = tenant.subscription()
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(MissingEnvironmentVariable):
        pull_cost_management(tenant.account("prod", subscription), PERIOD)


def test_tls_is_verified(azure, tenant):
    """Without the sandbox CA, the real clients refuse the stand-in: verification is on in the product."""
    subscription = tenant.subscription()
    entry_without_ca = tenant.account("prod", subscription, ca_bundle=None)
    assert "ca_bundle" not in entry_without_ca.settings
    diagnosis = diagnosis_of(entry_without_ca)
    assert diagnosis.code == "azure.tls_untrusted", diagnosis
    assert azure.query_log == [] and azure.token_requests == 0


def test_missing_ca_bundle_file(azure, tenant, tmp_path):
    subscription = tenant.subscription()
    diagnosis = diagnosis_of(tenant.account("prod", subscription, ca_bundle=str(tmp_path / "nope.pem")))
    assert diagnosis.code == "azure.ca_bundle_missing" and "ca_bundle" in diagnosis.fix
