"""The real pydo client over https against the stand-in: pagination, 429s, permission errors, invoices."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from finops_pipeline.defs.digitalocean.billing import invoices
from finops_pipeline.defs.digitalocean.billing import pull as billing
from finops_pipeline.defs.digitalocean.billing.pull import pull_billing
from finops_pipeline.diagnosis import diagnose
from finops_pipeline.schema import totals_by_currency
from finops_pipeline_tests.digitalocean.conftest import do_account
from finops_sandbox.digitalocean import ACCOUNT_READ, seed_team, team_charges

TOKEN = "dop_v1_test_token_0123456789abcdef"
TODAY = date.today()
OPEN = TODAY.strftime("%Y-%m")
CLOSED = (TODAY.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def seeded_team(sandbox, name="Acme", token=TOKEN, differences=None, days=70, scopes=None):
    team = sandbox.add_team(name)
    sandbox.add_token(token, team, scopes)
    charges = team_charges(name, TODAY - timedelta(days=days), TODAY - timedelta(days=1))
    seed_team(team, charges, TODAY, differences)
    return team, charges


def month_sum(charges, period):
    return sum((c.amount for c in charges if c.day.strftime("%Y-%m") == period), Decimal(0))


def queries(sandbox, fragment):
    return [parse_qs(urlsplit(r).query) for r in sandbox.requests if fragment in urlsplit(r).path]


def diagnosis_of(account, period=CLOSED):
    with pytest.raises(Exception) as caught:
        pull_billing(account, period)
    return diagnose("digitalocean", "billing", caught.value, [TOKEN])


def test_closed_month_reads_all_pages_and_reconciles_exactly(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    team, charges = seeded_team(do)
    # Small pages so both pagination styles run several pages (insights: total_pages; invoices: links.next).
    monkeypatch.setattr(billing, "PER_PAGE", 50)
    monkeypatch.setattr(invoices, "PER_PAGE", 1)
    pull = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), CLOSED)

    expected = month_sum(charges, CLOSED)
    points = sum(1 for c in charges if c.day.strftime("%Y-%m") == CLOSED)
    assert pull.source_totals == {"USD": expected}
    assert totals_by_currency(pull.batches) == {"USD": expected}
    assert pull.batches.num_rows == points
    insight_pages = [int(q["page"][0]) for q in queries(do, "/insights/")]
    assert insight_pages == list(range(1, -(-points // 50) + 1)) and len(insight_pages) > 1
    assert all(q["per_page"] == ["50"] for q in queries(do, "/insights/"))
    list_pages = [int(parse_qs(urlsplit(r).query)["page"][0]) for r in do.requests if urlsplit(r).path == "/v2/customers/my/invoices"]
    assert list_pages == list(range(1, len(team.invoices) + 1)) and len(list_pages) > 1
    invoice_uuid = next(i["invoice_uuid"] for i in team.invoices if i["invoice_period"] == CLOSED)
    item_pages = [int(q["page"][0]) for q in queries(do, f"/invoices/{invoice_uuid}")]
    assert item_pages == list(range(1, len(team.invoice_items[invoice_uuid]) + 1)) and len(item_pages) > 1
    assert pull.api_calls == len(do.requests)
    assert set(pull.batches.column("BillingAccountId").to_pylist()) == {team.urn}
    assert set(pull.batches.column("x_Estimated").to_pylist()) == {False}  # the month is invoiced
    invoice = pull.metadata["invoice"]
    assert invoice["status"] == "invoiced" and Decimal(invoice["invoice_amount"]) == expected
    assert invoice["matches_to_the_cent"] is True and Decimal(invoice["difference"]) == 0


def test_insight_ranges_never_exceed_31_days(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    monkeypatch.setattr(billing, "MAX_RANGE_DAYS", 10)  # a month then needs several ranges
    pull = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), CLOSED)
    ranges = [urlsplit(r).path.rsplit("/", 2)[-2:] for r in do.requests if "/insights/" in r]
    assert len(ranges) >= 3
    assert all((date.fromisoformat(e) - date.fromisoformat(s)).days < 10 for s, e in ranges)
    assert pull.source_totals["USD"] == Decimal(pull.metadata["invoice"]["invoice_amount"])


def test_open_month_has_balance_and_preview_and_stays_estimated(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    _, charges = seeded_team(do)
    pull = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), OPEN)
    expected = month_sum(charges, OPEN)
    assert pull.source_totals == ({"USD": expected} if expected else {})
    assert set(pull.batches.column("x_Estimated").to_pylist()) <= {True}
    invoice = pull.metadata["invoice"]
    assert invoice["status"] == "open"
    assert Decimal(invoice["month_to_date_usage"]) == expected if expected else True
    assert any(r.startswith("/v2/customers/my/invoices/preview") for r in do.requests)
    assert any(r.startswith("/v2/customers/my/balance") for r in do.requests)


def test_an_invoice_that_differs_from_the_daily_sum_is_reported(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    _, charges = seeded_team(do, differences={CLOSED: Decimal("3.17")})
    invoice = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), CLOSED).metadata["invoice"]
    expected = month_sum(charges, CLOSED)
    assert Decimal(invoice["invoice_amount"]) == expected + Decimal("3.17")
    assert Decimal(invoice["difference"]) == Decimal("-3.17") and invoice["matches_to_the_cent"] is False
    assert Decimal(invoice["invoice_items_by_product"]["Adjustments"]) == Decimal("3.17")


def test_a_429_is_retried_after_retry_after(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    _, charges = seeded_team(do)
    do.throttle(times=1, retry_after=1)
    started = time.monotonic()
    pull = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), CLOSED)
    assert time.monotonic() - started >= 1.0  # waited as told
    assert pull.metadata["throttled_responses"] == 1
    assert pull.source_totals == {"USD": month_sum(charges, CLOSED)}
    assert pull.api_calls == len(do.requests)  # retries are counted too


def test_a_long_retry_after_ends_the_pull_as_throttled(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.throttle(times=1, retry_after=3600)  # the hourly quota is spent: do not block the run for an hour
    started = time.monotonic()
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert time.monotonic() - started < 10
    assert diagnosis.code == "digitalocean.throttled" and diagnosis.retryable


def test_revoked_token(do, monkeypatch, caplog):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.revoke(TOKEN)
    caplog.set_level(logging.DEBUG)
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.token_rejected"
    assert "revoked" in diagnosis.cause and "billing read access" in diagnosis.fix
    assert "Unable to authenticate you" in diagnosis.detail
    assert TOKEN not in diagnosis.detail + diagnosis.cause + diagnosis.fix
    assert TOKEN not in caplog.text


def test_token_without_billing_scope(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do, scopes=[ACCOUNT_READ, "droplet:read"])
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.missing_billing_scope"
    assert diagnosis.cause == "The API token lacks billing read access."
    assert "billing:read" in diagnosis.fix and "Regenerate" in diagnosis.fix
    assert "403" in diagnosis.detail or "Forbidden" in diagnosis.detail


def test_token_that_cannot_read_the_account(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do, scopes=["billing:read"])
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.missing_account_scope"
    assert "account:read" in diagnosis.fix and "billing:read" in diagnosis.fix


def test_unset_token_variable(do):
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN_UNSET"))
    assert diagnosis.code == "config.missing_environment_variable"
    assert "DO_TEST_TOKEN_UNSET" in diagnosis.cause and "export DO_TEST_TOKEN_UNSET=" in diagnosis.fix
    assert do.requests == []  # nothing was sent without a token


def test_plain_http_endpoint_is_refused_before_sending_the_token(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    account = do_account(do, "do-acme", "DO_TEST_TOKEN", endpoint=do.url.replace("https://", "http://"))
    diagnosis = diagnosis_of(account)
    assert diagnosis.code == "digitalocean.endpoint_not_https" and "https://" in diagnosis.fix
    assert do.requests == []


def test_untrusted_certificate_and_missing_ca_file(do, monkeypatch, tmp_path):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    untrusted = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN", ca_bundle=None))
    assert untrusted.code == "digitalocean.tls_untrusted" and "ca_bundle" in untrusted.fix
    missing = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN", ca_bundle=str(tmp_path / "nope.pem")))
    assert missing.code == "digitalocean.ca_bundle_missing" and "nope.pem" in missing.cause
    assert do.requests == []


def test_a_month_that_has_not_started_asks_nothing(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    future = (TODAY.replace(day=1) + timedelta(days=40)).strftime("%Y-%m")
    pull = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), future)
    assert pull.source_totals == {} and pull.api_calls == 0 and do.requests == []


def test_a_server_error_is_retried(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    _, charges = seeded_team(do)
    do.respond("/insights/", 500, {"id": "server_error", "message": "Unexpected server-side error"})
    pull = pull_billing(do_account(do, "do-acme", "DO_TEST_TOKEN"), CLOSED)
    assert pull.source_totals == {"USD": month_sum(charges, CLOSED)}
    assert sum(1 for r in do.requests if "/insights/" in r) == 2


def test_a_refused_request_is_diagnosed_without_retrying(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.respond("/insights/", 400, {"id": "bad_request", "message": "end_date must be within 31 days of start_date"})
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.bad_request" and "/insights/" in diagnosis.cause
    assert "HTTP 400" in diagnosis.detail and "within 31 days" in diagnosis.detail
    assert sum(1 for r in do.requests if "/insights/" in r) == 1


def test_unknown_billing_account_and_missing_team(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    seeded_team(do)
    do.respond("/insights/", 404, {"id": "not_found", "message": "The resource you were accessing could not be found."})
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.billing_account_not_found" and "do:team:" in diagnosis.cause

    do.respond("/v2/account", 200, {"account": {"uuid": "u", "email": "a@example.com", "status": "active"}})
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.no_team" and "team" in diagnosis.fix


def test_a_closed_invoice_that_disappears_is_diagnosed(do, monkeypatch):
    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    team, _ = seeded_team(do)
    invoice_uuid = next(i["invoice_uuid"] for i in team.invoices if i["invoice_period"] == CLOSED)
    do.respond(f"/invoices/{invoice_uuid}", 404, {"id": "not_found", "message": "The resource you were accessing could not be found."})
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN"))
    assert diagnosis.code == "digitalocean.invoice_not_found" and invoice_uuid in diagnosis.cause


def test_an_unreachable_endpoint(do, monkeypatch):
    import socket

    monkeypatch.setenv("DO_TEST_TOKEN", TOKEN)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr("finops_pipeline.defs.digitalocean.billing.client.MAX_RETRIES", 0)  # no backoff wait in the test
    diagnosis = diagnosis_of(do_account(do, "do-acme", "DO_TEST_TOKEN", endpoint=f"https://127.0.0.1:{port}"))
    assert diagnosis.code == "digitalocean.unreachable" and diagnosis.retryable
