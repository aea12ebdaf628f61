"""Trust under faults: insights answers that do not prove they are answers, an API that never answers,
server errors and DNS told apart, and a token echoed back by the server kept out of every log."""

from __future__ import annotations

import json
import logging
import time

import pytest

from finops_pipeline.defs.digitalocean.billing.pull import pull_billing
from finops_pipeline.diagnosis import diagnose
from finops_pipeline.lake import PartitionKey, read_partition
from finops_pipeline_tests.conftest import by_account, run_events, run_refresh, write_config
from finops_pipeline_tests.digitalocean.conftest import do_account, do_entry
from finops_sandbox.server import SilentEndpoint

from .test_http import CLOSED, TOKEN, seeded_team

SCOPE_FIX = "billing:read"


def point(day):
    return {"start_date": day, "total_amount": "1.00", "region": "nyc3", "sku": "1-DO-DROPLET", "description": "web-1",
            "group_description": "", "usage_team_urn": "do:team:x"}


FIRST = f"{CLOSED}-01"
MALFORMED = {
    "empty object": b"{}",
    "empty body": b"",
    "garbage": b"\x00 not json",
    "html page": b"<html><body>Sign in to the proxy</body></html>",
    "no data_points": json.dumps({"total_items": 3, "total_pages": 1, "current_page": 1}).encode(),
    "total_items says more than received": json.dumps({"data_points": [point(FIRST)], "total_items": 40, "total_pages": 1,
                                                       "current_page": 1}).encode(),
    "no paging figures": json.dumps({"data_points": [point(FIRST)]}).encode(),
    "a day outside the range": json.dumps({"data_points": [point("2001-01-01")], "total_items": 1, "total_pages": 1,
                                           "current_page": 1}).encode(),
}


def diagnosis_of(account, period=CLOSED):
    with pytest.raises(Exception) as caught:
        pull_billing(account, period)
    return diagnose("digitalocean", "billing", caught.value, [TOKEN])


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_an_insights_answer_that_is_not_one_is_malformed_answer(do, monkeypatch, case):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.respond_raw("/insights/", 200, MALFORMED[case], "text/html" if case == "html page" else "application/json", times=None)
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.malformed_answer", diagnosis
    assert diagnosis.retryable and "keeps its last good data" in diagnosis.cause
    assert SCOPE_FIX not in diagnosis.fix


def test_account_and_invoice_answers_must_be_answers_too(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.respond_raw("/v2/account", 200, b"{}", times=None)
    assert diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN")).code == "digitalocean.malformed_answer"
    do.reset()
    seeded_team(do)
    do.respond_raw("/customers/my/invoices", 200, b"<html>proxy</html>", "text/html", times=None)
    assert diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN")).code == "digitalocean.malformed_answer"


def test_malformed_answers_keep_the_last_good_month_byte_for_byte_and_an_honest_empty_month_is_written(do, monkeypatch, tmp_path):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    config = write_config(tmp_path, [do_entry(do, "do-acme", "DO_TEST_TOKEN")])
    data = tmp_path / "data"
    assert run_refresh(config, data, CLOSED).ok
    key = PartitionKey("digitalocean", "billing", "do-acme", CLOSED)
    good = key.path(data).read_bytes()
    for case in ("empty object", "garbage", "total_items says more than received"):
        do._scripted.clear()
        do.respond_raw("/insights/", 200, MALFORMED[case], times=None)
        result = by_account(run_refresh(config, data, CLOSED))["do-acme"]
        assert not result.ok and result.code == "digitalocean.malformed_answer", (case, result)
        assert key.path(data).read_bytes() == good, case
    do._scripted.clear()
    do.respond_raw("/insights/", 200, json.dumps({"data_points": [], "total_items": 0, "total_pages": 0, "current_page": 1}).encode(),
                   times=None)
    assert by_account(run_refresh(config, data, CLOSED))["do-acme"].ok
    assert read_partition(data, key).num_rows == 0


def test_a_silent_api_gives_up_within_give_up_after_seconds_and_the_others_go_on(do, monkeypatch, tmp_path):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("DO_TEST_TOKEN_HUNG", "dop_v1_hung_team_token")
    seeded_team(do)
    with SilentEndpoint(scheme="https") as silent:
        started = time.monotonic()
        diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN", endpoint=silent.url, give_up_after_seconds=4))
        elapsed = time.monotonic() - started
        assert 3.5 <= elapsed < 6, elapsed
        assert diagnosis.code == "digitalocean.timeout" and diagnosis.retryable, diagnosis
        assert SCOPE_FIX not in diagnosis.fix

        config = write_config(tmp_path, [do_entry(do, "do-acme", "DO_TEST_TOKEN"),
                                         do_entry(do, "do-hung", "DO_TEST_TOKEN_HUNG", endpoint=silent.url, give_up_after_seconds=4)])
        results = by_account(run_refresh(config, tmp_path / "data", CLOSED))
    assert results["do-acme"].ok and results["do-hung"].code == "digitalocean.timeout"


def test_server_errors_and_dns_have_their_own_diagnoses(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.respond("/insights/", 503, {"id": "service_unavailable", "message": "Service Unavailable"}, times=10**6)
    started = time.monotonic()
    unavailable = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN", give_up_after_seconds=3))
    assert time.monotonic() - started < 4
    assert unavailable.code == "digitalocean.unavailable" and unavailable.retryable and SCOPE_FIX not in unavailable.fix
    dns = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN", endpoint="https://no-such-host.invalid", give_up_after_seconds=3))
    assert dns.code == "digitalocean.dns_failure" and "DNS" in dns.fix and SCOPE_FIX not in dns.fix


def test_a_token_echoed_back_by_the_api_reaches_no_log_diagnosis_or_file(do, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.respond_raw("/insights/", 401, b'{"id": "unauthorized", "message": "Unable to authenticate you with token {token}"}', times=None)
    config = write_config(tmp_path, [do_entry(do, "do-acme", "DO_TEST_TOKEN")])
    data = tmp_path / "data"
    caplog.set_level(logging.DEBUG)
    refreshed = run_refresh(config, data, CLOSED)
    result = by_account(refreshed)["do-acme"]
    assert result.code == "digitalocean.token_rejected"
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert TOKEN not in text + (record.exc_text or ""), record.name
    assert TOKEN not in str(result) and TOKEN not in run_events(refreshed)
    for path in data.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
