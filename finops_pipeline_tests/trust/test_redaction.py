"""Secrets in every encoding a client may use, and the process-wide logging guard."""

from __future__ import annotations

import base64
import html
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from finops_pipeline import redaction
from finops_pipeline.diagnosis import redact

SECRET = "s3cr/et+Va lue=&\"x"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET),
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote_plus(SECRET),
        quote(quote(SECRET, safe=""), safe=""),
        json.dumps(SECRET)[1:-1],
        html.escape(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
    ],
)
def test_every_encoding_is_redacted(form: str) -> None:
    text = f"An error occurred (AccessDenied): ExternalId={form}&Version=2011-06-15"
    cleaned = redact(text, [SECRET])
    assert form not in cleaned and "***" in cleaned
    assert cleaned.startswith("An error occurred (AccessDenied): ExternalId=")


@pytest.mark.parametrize("client_id", ["a", "ab", "abc", "app-0f3e", "00000000-1111-2222-3333-444444444444"])
def test_basic_auth_hides_the_secret_at_any_alignment(client_id: str) -> None:
    secret = "Zq8~kS.f7_tP-client-secret"
    header = "Authorization: Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    cleaned = redact(header, [secret])
    # What is left cannot be decoded back to anything holding the secret.
    encoded = cleaned.split("Basic ", 1)[1]
    assert "***" in encoded
    for part in encoded.split("***"):
        assert secret[4:-4] not in base64.b64decode(part + "=" * (-len(part) % 4), validate=False).decode("latin-1")


def test_ordinary_text_is_untouched() -> None:
    text = "GetCostAndUsage returned 3 pages for 2026-11 (USD 12.34)"
    assert redact(text, ["ext-id-4f1c9b", ""]) == text


def test_installed_guard_redacts_every_logger_and_is_idempotent(caplog: pytest.LogCaptureFixture) -> None:
    secret = "guard-secret-7d2e91"
    redaction.install([secret])
    redaction.install([secret])
    assert sum(isinstance(f, redaction.RedactingFilter) for f in logging.getLogger().filters) == 1
    caplog.set_level(logging.DEBUG)
    logging.getLogger("azure.identity._internal.get_token_mixin").warning("ClientSecretCredential.get_token failed: %s", f"secret={secret}")
    logging.getLogger("botocore.endpoint").debug("Making request: %r", {"body": {"ExternalId": quote(secret, safe="")}})
    try:
        raise RuntimeError(f"denied for {quote_plus(secret)}")
    except RuntimeError:
        logging.getLogger("some.library").exception("it failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert secret not in text and quote(secret, safe="") not in text and "***" in text
    assert "denied for ***" in caplog.text
