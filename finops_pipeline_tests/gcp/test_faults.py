"""Trust under faults: the real google-cloud-bigquery client against the stand-in answering 5xx,
garbage, HTML, bad schemas, and against a socket that never answers. Every pull gives up within the
account's give_up_after_seconds, says what happened (not "verify the dataset name"), and the month
keeps its last good partition byte for byte."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.gcp import day_cache
from finops_pipeline.defs.gcp.bigquery_export.pull import pull_bigquery_export
from finops_pipeline.diagnosis import diagnose
from finops_pipeline.lake import PartitionKey
from finops_pipeline_tests.conftest import by_account, run_refresh, write_config
from finops_pipeline_tests.gcp.scenario import EUR_BILLING, NOW, PROJECT, USD_BILLING, account
from finops_sandbox.gcp import export_table_name
from finops_sandbox.server import SilentEndpoint

GIVE_UP = 4  # seconds: give_up_after_seconds of the accounts under test
SLACK = 1.0  # what a pull may take beyond it (thread scheduling, the last attempt's bookkeeping)
WRONG_FIX = "Verify the dataset name"  # the knowledge base's fix for NotFound, wrong for anything else
MALFORMED_FIX = "check the endpoint in the account settings"


@pytest.fixture
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint().start()
    yield endpoint
    endpoint.stop()


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _pull_failure(entry: dict, data_dir: Path):
    """(diagnosis, seconds the pull took) of a pull that must fail."""
    parsed = parse_config({"accounts": [entry]}, Path("finops.yaml")).accounts[0]
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        pull_bigquery_export(parsed, "2026-11", data_dir=data_dir, now=NOW)
    return diagnose("gcp", "bigquery_export", raised.value), time.monotonic() - started


# --- 1. bounded time ---------------------------------------------------------------------------------

def test_endpoint_that_never_answers_gives_up_within_the_budget(silent, tmp_path):
    entry = account("hung", USD_BILLING, "billing_usd", silent.url, give_up_after_seconds=GIVE_UP)
    d, elapsed = _pull_failure(entry, tmp_path)
    assert GIVE_UP - SLACK <= elapsed <= GIVE_UP + SLACK
    assert silent.accepted >= 1  # it connected: the wait was for an answer
    assert d.code == "gcp.timeout" and d.retryable and "did not answer in time" in d.cause
    assert WRONG_FIX not in d.fix and "Data Viewer" not in d.fix


@pytest.mark.parametrize("answer", ["http_500", "http_503", "html_502"])
@pytest.mark.parametrize("call", ["datasets.get", "tables.list", "jobs.query"])
def test_server_errors_forever_are_retried_within_the_budget_then_a_provider_error(scenario, bigquery, tmp_path, answer, call):
    bigquery.inject(answer, call)
    entry = account("busy", USD_BILLING, "billing_usd", bigquery.url, give_up_after_seconds=GIVE_UP)
    d, elapsed = _pull_failure(entry, tmp_path)
    assert elapsed <= GIVE_UP + SLACK
    assert bigquery.calls[call] >= 3  # retried, not given up at the first 5xx
    status = answer.split("_")[-1]
    assert d.code == "gcp.provider_error" and d.retryable and f"HTTP {status}" in d.cause
    assert "retry later" in d.fix and WRONG_FIX not in d.fix and "Data Viewer" not in d.fix


def test_a_few_server_errors_are_retried_and_the_pull_succeeds(scenario, bigquery, tmp_path):
    bigquery.inject("http_500", "jobs.query", times=2)
    parsed = parse_config({"accounts": [account("flaky", USD_BILLING, "billing_usd", bigquery.url,
                                                 give_up_after_seconds=GIVE_UP)]}, Path("finops.yaml")).accounts[0]
    pull = pull_bigquery_export(parsed, "2026-11", data_dir=tmp_path, now=NOW)
    assert pull.batches.num_rows > 0 and bigquery.calls["jobs.query"] == 4  # 2 failures, then the state and charges queries


def test_refused_and_unresolvable_endpoints_get_the_transport_diagnoses(tmp_path):
    with socket.socket() as closed:  # bound, then closed: nothing listens on its port
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    d, elapsed = _pull_failure(account("refused", USD_BILLING, "billing_usd", url, give_up_after_seconds=2), tmp_path)
    assert d.code == "gcp.unreachable" and "refused" in d.cause and elapsed <= 2 + SLACK
    d, elapsed = _pull_failure(account("dns", USD_BILLING, "billing_usd", "http://bigquery.example.invalid",
                                       give_up_after_seconds=2), tmp_path)
    assert d.code == "gcp.dns_failure" and elapsed <= 2 + SLACK
    assert WRONG_FIX not in d.fix


def test_hung_account_gives_up_its_last_good_month_stays_and_the_others_refresh(scenario, bigquery, silent, tmp_path):
    data_dir = tmp_path / "data"
    good = [account("gcp-usd", USD_BILLING, "billing_usd", bigquery.url, _iso(NOW - timedelta(days=40)), give_up_after_seconds=GIVE_UP),
            account("gcp-eur", EUR_BILLING, "billing_eur", bigquery.url, _iso(NOW - timedelta(days=40)), give_up_after_seconds=GIVE_UP)]
    assert run_refresh(write_config(tmp_path, good), data_dir, "2026-11", now=_iso(NOW)).ok
    partition = PartitionKey("gcp", "bigquery_export", "gcp-usd", "2026-11").path(data_dir)
    before = partition.read_bytes()

    hung = [{**good[0], "api_endpoint": silent.url}, good[1]]  # the same account, now behind a silent endpoint
    started = time.monotonic()
    result = by_account(run_refresh(write_config(tmp_path, hung), data_dir, "2026-11", now=_iso(NOW + timedelta(hours=6))))
    elapsed = time.monotonic() - started
    assert result["gcp-usd"].code == "gcp.timeout" and result["gcp-eur"].ok
    assert WRONG_FIX not in result["gcp-usd"].fix
    assert partition.read_bytes() == before
    assert elapsed < 60  # on main this never returned; GIVE_UP of it is the hung account's


# --- 2. an answer must prove it is one ---------------------------------------------------------------

MALFORMED = [
    ("garbage", "datasets.get", "a body that is not JSON"),
    ("empty_body", "datasets.get", "an empty body"),
    ("html", "datasets.get", "an HTML page"),
    ("html_404", "datasets.get", "an error without BigQuery's error JSON"),
    ("empty_object", "tables.list", "JSON that is not a BigQuery resource"),  # never "no export table"
    ("empty_body", "tables.list", "an empty body"),
    ("garbage", "jobs.query", "a body that is not JSON"),
    ("html", "jobs.query", "an HTML page"),
    ("empty_object", "jobs.query", "JSON that is not a BigQuery resource"),
    ("drop_column", "jobs.query", "lacks or mistypes column(s) cost NUMERIC (missing)"),
    ("retype_column", "jobs.query", "lacks or mistypes column(s) cost NUMERIC (got STRING)"),
    ("rows_missing", "jobs.query", "row(s) and sent 0"),
]


@pytest.mark.parametrize(("answer", "call", "what"), MALFORMED)
def test_malformed_answers_are_refused_and_the_last_good_month_is_kept(scenario, bigquery, tmp_path, answer, call, what):
    data_dir = tmp_path / "data"
    entry = account("gcp-usd", USD_BILLING, "billing_usd", bigquery.url, _iso(NOW - timedelta(days=40)), give_up_after_seconds=GIVE_UP)
    config = write_config(tmp_path, [entry])
    assert run_refresh(config, data_dir, "2026-11", now=_iso(NOW)).ok
    partition = PartitionKey("gcp", "bigquery_export", "gcp-usd", "2026-11").path(data_dir)
    cache = day_cache.cache_path(data_dir, "gcp-usd", "2026-11")
    before, cache_before = partition.read_bytes(), cache.read_bytes()

    bigquery.calls.clear()
    bigquery.inject(answer, call, column="cost" if answer in ("drop_column", "retype_column") else None)
    started = time.monotonic()
    result = by_account(run_refresh(config, data_dir, "2026-11", now=_iso(NOW + timedelta(hours=6))))["gcp-usd"]
    assert time.monotonic() - started < 30
    assert result.code == "gcp.malformed_answer" and what in result.cause, result.cause
    assert "keeps its last good data" in result.cause and MALFORMED_FIX in result.fix
    assert WRONG_FIX not in result.fix and "Data Viewer" not in result.fix
    assert bigquery.calls[call] == 1  # refused at once, not retried for minutes
    assert partition.read_bytes() == before and cache.read_bytes() == cache_before


def test_charges_query_done_without_the_rows_the_state_query_counted_is_refused(scenario, bigquery, tmp_path):
    # The state query is answered truly; the charges query says done, 0 rows, and sends none.
    bigquery.inject("no_rows", "jobs.query", after=1)
    d, _ = _pull_failure(account("gcp-usd", USD_BILLING, "billing_usd", bigquery.url, give_up_after_seconds=GIVE_UP), tmp_path)
    assert d.code == "gcp.malformed_answer" and "returned no rows for partition day" in d.cause and "export row(s)" in d.cause
    assert not day_cache.cache_path(tmp_path, "gcp-usd", "2026-11").exists()  # nothing of it was kept


def test_an_honest_empty_month_still_writes_an_empty_partition(bigquery, tmp_path):
    data_dir = tmp_path / "data"
    bigquery.create_dataset(PROJECT, "billing_quiet")
    bigquery.create_export_table(PROJECT, "billing_quiet", export_table_name(USD_BILLING))
    config = write_config(tmp_path, [account("gcp-quiet", USD_BILLING, "billing_quiet", bigquery.url,
                                             _iso(NOW - timedelta(days=40)), give_up_after_seconds=GIVE_UP)])
    result = by_account(run_refresh(config, data_dir, "2026-11", now=_iso(NOW)))["gcp-quiet"]
    assert result.ok and result.rows == 0 and result.code is None
    partition = PartitionKey("gcp", "bigquery_export", "gcp-quiet", "2026-11").path(data_dir)
    assert partition.exists()


# --- 3. diagnoses that tell the truth ----------------------------------------------------------------

def test_not_found_and_forbidden_keep_their_own_fixes(scenario, bigquery, tmp_path):
    d, _ = _pull_failure(account("typo", USD_BILLING, "billing_usdd", bigquery.url, give_up_after_seconds=GIVE_UP), tmp_path)
    assert d.code == "gcp.dataset_not_found" and WRONG_FIX in d.fix and "retry later" not in d.fix
    bigquery.create_dataset(PROJECT, "billing_usd", denied=True)
    d, _ = _pull_failure(account("denied", USD_BILLING, "billing_usd", bigquery.url, give_up_after_seconds=GIVE_UP), tmp_path)
    assert d.code == "gcp.permission_denied" and "BigQuery Data Viewer on the billing dataset" in d.fix and WRONG_FIX not in d.fix
    assert bigquery.calls["datasets.get"] == 2  # a 404 or 403 is an answer: not retried
