"""Trust under faults: answers that do not prove they are answers, endpoints that never answer, sign-in
failures told apart from a missing role, and a secret echoed back by a server kept out of every log."""

from __future__ import annotations

import logging
import time
from datetime import date

import pytest

from finops_pipeline.defs.azure.cost_management.pull import pull_cost_management
from finops_pipeline.diagnosis import diagnose
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline_tests.conftest import by_account, run_events, run_refresh, write_config
from finops_sandbox.azure import seed_subscription
from finops_sandbox.server import SilentEndpoint

from .conftest import SECRET

PERIOD = "2026-10"
CONNECTED = "2026-11-01T00:00:00Z"
ROLE_FIX = "Cost Management Reader"
COLUMNS = b'[{"name":"Cost"},{"name":"UsageDate"},{"name":"ServiceName"},{"name":"ChargeType"},{"name":"Currency"}]'

MALFORMED = {
    "empty object": (b"{}", "application/json"),
    "empty body": (b"", "application/json"),
    "garbage": (b"\x00\x01 not json at all", "application/json"),
    "html page": (b"<html><body><h1>Sign in to the proxy</h1></body></html>", "text/html"),
    "properties without columns or rows": (b'{"properties": {"nextLink": null}}', "application/json"),
    "rows without columns": (b'{"properties": {"rows": [[1, 20261001, "Storage", "Usage", "USD"]]}}', "application/json"),
    "row shape does not match the columns": (b'{"properties": {"columns": ' + COLUMNS + b', "rows": [[1.5, 20261001, "Storage"]]}}',
                                             "application/json"),
    "no UsageDate column": (b'{"properties": {"columns": [{"name":"Cost"},{"name":"ServiceName"},{"name":"ChargeType"},{"name":"Currency"}],'
                            b' "rows": [[1.5, "Storage", "Usage", "USD"]]}}', "application/json"),
    "no Cost column": (b'{"properties": {"columns": [{"name":"UsageDate"},{"name":"ServiceName"},{"name":"ChargeType"},{"name":"Currency"}],'
                       b' "rows": [[20261001, "Storage", "Usage", "USD"]]}}', "application/json"),
    "a day outside the month": (b'{"properties": {"columns": ' + COLUMNS + b', "rows": [[1.5, 20250101, "Storage", "Usage", "USD"]]}}',
                                "application/json"),
    "nextLink loop": (b'{"properties": {"columns": ' + COLUMNS + b', "rows": [], "nextLink": '
                      b'"{url}/subscriptions/x/providers/Microsoft.CostManagement/query?api-version=2023-03-01&$skiptoken=again"}}',
                      "application/json"),
}


def malformed(case, subscription):
    body, content_type = MALFORMED[case]
    return body.replace(b"/subscriptions/x/", f"/subscriptions/{subscription}/".encode()), content_type


def diagnosis_of(account):
    with pytest.raises(Exception) as raised:
        pull_cost_management(account, PERIOD)
    return diagnose("azure", "cost_management", raised.value, [SECRET])


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_an_answer_that_is_not_one_is_malformed_answer(azure, tenant, case):
    subscription = tenant.subscription()
    seed_subscription(azure, subscription, date(2026, 10, 1), 31)
    body, content_type = malformed(case, subscription)
    azure.answer_next(body, content_type=content_type, times=None)
    diagnosis = diagnosis_of(tenant.account("prod", subscription))
    assert diagnosis.code == "azure.malformed_answer", diagnosis
    assert diagnosis.retryable and "keeps its last good data" in diagnosis.cause
    assert ROLE_FIX not in diagnosis.cause + diagnosis.fix


def test_malformed_answers_keep_the_last_good_month_byte_for_byte_and_an_honest_empty_month_is_written(azure, tenant, tmp_path):
    prod = tenant.subscription()
    seed_subscription(azure, prod, date(2026, 10, 1), 31)
    config = write_config(tmp_path, [tenant.entry("prod", prod, CONNECTED)])
    data_dir = tmp_path / "data"
    assert run_refresh(config, data_dir, PERIOD, now="2026-11-02T00:00:00Z").ok
    path = PartitionKey("azure", "cost_management", "prod", PERIOD).path(data_dir)
    good = path.read_bytes()
    assert read_partition(data_dir, PartitionKey("azure", "cost_management", "prod", PERIOD)).num_rows > 0

    for case in ("empty object", "empty body", "html page", "row shape does not match the columns", "nextLink loop"):
        body, content_type = malformed(case, prod)
        azure.faults.clear()
        azure.answer_next(body, content_type=content_type, times=None)
        result = by_account(run_refresh(config, data_dir, PERIOD, now="2026-11-02T01:00:00Z"))["prod"]
        assert not result.ok and result.code == "azure.malformed_answer", (case, result)
        assert path.read_bytes() == good, case

    # An honest empty month (the columns, no rows) still replaces the month.
    azure.faults.clear()
    azure.answer_next(b'{"properties": {"nextLink": null, "columns": ' + COLUMNS + b', "rows": []}}', times=None)
    assert by_account(run_refresh(config, data_dir, PERIOD, now="2026-11-02T02:00:00Z"))["prod"].ok
    assert read_partition(data_dir, PartitionKey("azure", "cost_management", "prod", PERIOD)).num_rows == 0


@pytest.mark.parametrize("where", ["authority_host", "endpoint"])
def test_a_silent_endpoint_gives_up_within_give_up_after_seconds(azure, tenant, where):
    subscription = tenant.subscription()
    with SilentEndpoint(scheme="https") as silent:
        started = time.monotonic()
        diagnosis = diagnosis_of(tenant.account("prod", subscription, give_up_after_seconds=4, **{where: silent.url}))
        elapsed = time.monotonic() - started
        assert silent.accepted >= 1
    assert 3.5 <= elapsed < 6, elapsed
    assert diagnosis.code == "azure.timeout" and diagnosis.retryable, diagnosis
    assert ROLE_FIX not in diagnosis.cause + diagnosis.fix


def test_a_silent_subscription_gives_up_in_time_keeps_its_month_and_the_others_go_on(azure, tenant, tmp_path):
    prod, hung = tenant.subscription(), tenant.subscription()
    seed_subscription(azure, prod, date(2026, 10, 1), 31)
    seed_subscription(azure, hung, date(2026, 10, 1), 31, seed="hung")
    data_dir = tmp_path / "data"
    config = write_config(tmp_path, [tenant.entry("prod", prod, CONNECTED), tenant.entry("hung", hung, CONNECTED)])
    assert run_refresh(config, data_dir, PERIOD, now="2026-11-02T00:00:00Z").ok
    hung_path = PartitionKey("azure", "cost_management", "hung", PERIOD).path(data_dir)
    before = hung_path.read_bytes()
    with SilentEndpoint(scheme="https") as silent:
        config = write_config(tmp_path, [tenant.entry("prod", prod, CONNECTED),
                                         tenant.entry("hung", hung, CONNECTED, endpoint=silent.url, give_up_after_seconds=4)])
        started = time.monotonic()
        results = by_account(run_refresh(config, data_dir, PERIOD, now="2026-11-02T01:00:00Z"))
        elapsed = time.monotonic() - started
    assert results["hung"].code == "azure.timeout" and results["prod"].ok
    assert elapsed < 30, elapsed  # main: about 5 minutes
    assert hung_path.read_bytes() == before


SIGN_IN_FAULTS = {
    "token endpoint 500": (("token", 500, b'{"error": "server_error", "error_description": "AADSTS50000: error issuing a token"}'),
                           "azure.sign_in_unavailable"),
    "openid discovery 503": (("openid", 503, b"Service Unavailable"), "azure.sign_in_unavailable"),
    "token endpoint answers garbage": (("token", 200, b"<html>captive portal</html>"), "azure.malformed_answer"),
    "token endpoint answers {}": (("token", 200, b"{}"), "azure.malformed_answer"),
    "openid discovery answers garbage": (("openid", 200, b"<html>captive portal</html>"), "azure.malformed_answer"),
}


@pytest.mark.parametrize("case", sorted(SIGN_IN_FAULTS))
def test_a_failing_sign_in_endpoint_is_not_a_missing_role(azure, tenant, case):
    (where, status, body), code = SIGN_IN_FAULTS[case]
    subscription = tenant.subscription()
    azure.fail_sign_in(where, status, body, content_type="text/html" if body.startswith(b"<") else "application/json", times=None)
    diagnosis = diagnosis_of(tenant.account("prod", subscription, give_up_after_seconds=5))
    assert diagnosis.code == code, diagnosis
    assert ROLE_FIX not in diagnosis.cause + diagnosis.fix
    assert "Entra ID" in diagnosis.cause and diagnosis.retryable
    assert azure.query_log == []  # no query was sent without a token


@pytest.mark.parametrize(("authority", "code", "fix_word"), [
    ("https://no-such-host.invalid", "azure.dns_failure", "DNS"),
    ("https://127.0.0.1:9", "azure.unreachable", "network"),
])
def test_an_unreachable_sign_in_endpoint_is_not_a_missing_role(azure, tenant, authority, code, fix_word):
    subscription = tenant.subscription()
    diagnosis = diagnosis_of(tenant.account("prod", subscription, authority_host=authority, give_up_after_seconds=5))
    assert diagnosis.code == code, diagnosis
    assert fix_word in diagnosis.fix and ROLE_FIX not in diagnosis.cause + diagnosis.fix


@pytest.mark.parametrize("status", [500, 503])
def test_a_query_api_server_error_is_a_provider_error_within_the_budget(azure, tenant, status):
    subscription = tenant.subscription()
    azure.fail_next(status, "InternalServerError", "Something went wrong.", times=None)
    started = time.monotonic()
    diagnosis = diagnosis_of(tenant.account("prod", subscription, give_up_after_seconds=3))
    assert time.monotonic() - started < 4
    assert diagnosis.code == "azure.provider_error" and diagnosis.retryable
    assert f"HTTP {status}" in diagnosis.cause and "next refresh retries" in diagnosis.fix
    assert ROLE_FIX not in diagnosis.cause + diagnosis.fix
    assert len(azure.query_log) >= 2  # retried, within the budget


def test_a_401_without_an_rbac_code_is_not_a_missing_role(azure, tenant):
    subscription = tenant.subscription()
    azure.fail_next(401, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.", times=None)
    diagnosis = diagnosis_of(tenant.account("prod", subscription))
    assert diagnosis.code == "azure.access_denied" and "ExpiredAuthenticationToken" in diagnosis.cause
    assert ROLE_FIX not in diagnosis.cause + diagnosis.fix


def test_a_secret_echoed_back_by_entra_id_reaches_no_log_diagnosis_or_file(azure, tenant, tmp_path, caplog):
    subscription = tenant.subscription()
    config = write_config(tmp_path, [tenant.entry("prod", subscription, CONNECTED)])
    data_dir = tmp_path / "data"
    azure.fail_sign_in("token", 401, b'{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret '
                       b'provided: {client_secret}", "error_codes": [7000215]}', times=None)
    caplog.set_level(logging.DEBUG)
    refreshed = run_refresh(config, data_dir, PERIOD, now="2026-11-02T00:00:00Z")
    result = by_account(refreshed)["prod"]
    assert result.code == "azure.bad_client_secret"
    assert azure.token_requests >= 1
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert SECRET not in text + (record.exc_text or ""), record.name
    assert "AADSTS7000215" in caplog.text  # the warning is still there, without the secret
    assert SECRET not in str(result) and SECRET not in run_events(refreshed)
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
