"""An AWS external id echoed back by the service (raw and URL-encoded) reaches no file, log or event."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from finops_pipeline_tests.aws.test_cost_explorer import account_entry
from finops_pipeline_tests.conftest import by_account, run_events, run_refresh, write_config
from finops_sandbox.faults import FaultProxy

SECRET = "ext+id/4f1c=9b&Q"  # characters that URL-encode differently with quote and quote_plus
FORMS = {SECRET, quote(SECRET), quote(SECRET, safe=""), quote_plus(SECRET)}


@pytest.mark.parametrize("operation", ["AssumeRole", "GetCostAndUsage"])
def test_echoed_external_id_is_nowhere(operation: str, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", SECRET)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    error = "AccessDenied" if operation == "AssumeRole" else "AccessDeniedException"
    proxy.fail(operation, error, f"not authorized: ExternalId={quote_plus(SECRET)} (given {SECRET}, {quote(SECRET, safe='')})", status=403)
    config = write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)])
    data_dir = tmp_path / "data"
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)

    refreshed = run_refresh(config, data_dir, "2026-11", now="2026-11-25T00:00:00Z")

    result = by_account(refreshed)["aws-main"]
    assert not result.ok and result.cause
    assert proxy.requests.get(operation), "the fault was never hit"
    captured = capfd.readouterr()
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "***" in logged or "***" in run_events(refreshed)
    for form in FORMS:
        assert form not in logged, f"log record carries {form!r}"
        assert form not in captured.out + captured.err, f"stdout/stderr carries {form!r}"
        assert form not in run_events(refreshed), f"a run event carries {form!r}"
        assert form not in (result.cause or "") + (result.fix or "")
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        for form in FORMS:
            assert form.encode() not in content, f"{path} carries {form!r}"
