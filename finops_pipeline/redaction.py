"""Secrets never leave the process: every form a client may give them is replaced before text is kept.

A client library may put a secret in a message raw, URL-encoded (a query string, a form body that
a service echoes back in an error), JSON-escaped, HTML/XML-escaped, or base64-encoded inside a
longer value (HTTP basic auth: base64("client_id:secret")). `redact` replaces all of them.

`install(secrets)` makes the logging of the whole process redact them: a log record factory rewrites
every record's message, arguments and traceback when it is made (whatever logger made it and
whatever handler, Dagster's included, will write it), and a `RedactingFilter` sits on the root
logger, its handlers and the client libraries' loggers as a second guard. Idempotent; secrets
accumulate for the life of the process (a secret once seen must never be logged later either).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_ENCODED_LENGTH = 4  # shorter encoded fragments would match ordinary text
CLIENT_LOGGERS = (
    "botocore", "boto3", "s3transfer", "urllib3", "requests", "azure", "azure.identity", "azure.core",
    "msal", "google", "google.auth", "google.cloud", "google.api_core", "pydo", "httpx", "httpcore", "dagster",
)


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters fixed by `raw` alone, wherever it sits in the encoded value (3 alignments)."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        first_group = 0 if offset == 0 else 1
        last_group = (offset + len(raw)) // 3  # groups before this one are made of `raw` bytes only
        core = encoded[4 * first_group: 4 * last_group]
        if len(core) >= MIN_ENCODED_LENGTH:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # the URL-safe alphabet
    if len(raw) >= 3:
        whole = base64.b64encode(raw).decode()
        cores.update({whole, whole.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")})
    return cores


def encodings(secret: str) -> set[str]:
    """Every form of `secret` to look for."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), quote(quote(secret, safe=""), safe=""),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret),
             html.escape(secret, quote=False)}
    forms |= {f.lower() for f in (quote(secret, safe=""), quote_plus(secret)) if "%" in f}  # %2f as well as %2F
    forms |= _base64_cores(secret.encode("utf-8"))
    return {f for f in forms if f}


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret, in every encoding, replaced by ***."""
    if not text:
        return text
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= encodings(secret)
    for form in sorted(forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, MASK)
    return text


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: frozenset[str] = frozenset()
        self.forms: tuple[str, ...] = ()
        self.installed = False
        self.previous_factory = None

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s} - self.secrets
        if new:
            with self.lock:
                self.secrets = self.secrets | new
                forms: set[str] = set()
                for secret in self.secrets:
                    forms |= encodings(secret)
                self.forms = tuple(sorted(forms, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


_registry = _Registry()


def known_secrets() -> frozenset[str]:
    return _registry.secrets


def redact_known(text: str) -> str:
    """`text` redacted against every secret `install` was given."""
    return _registry.redact(text) if text and _registry.forms else text


def _clean_record(record: logging.LogRecord) -> logging.LogRecord:
    if not _registry.forms or getattr(record, "_finops_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep what there is, redacted
        message = f"{record.msg} {record.args}"
    cleaned = _registry.redact(str(message))
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        redacted = _registry.redact(record.exc_text)
        if redacted != record.exc_text:
            # The exception object itself carries the secret: keep only its redacted text, so no
            # handler or capture that formats exc_info again can print it.
            record.exc_text, record.exc_info = redacted, None
    if record.stack_info:
        record.stack_info = _registry.redact(record.stack_info)
    for name, value in list(vars(record).items()):  # Dagster and structlog put the message in extras too
        if isinstance(value, str) and name not in ("msg", "exc_text", "stack_info") and value:
            redacted = _registry.redact(value)
            if redacted != value:
                setattr(record, name, redacted)
    record._finops_redacted = True
    return record


class RedactingFilter(logging.Filter):
    """Rewrites a record so it carries no known secret; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        _clean_record(record)
        return True


_FILTER = RedactingFilter()


def _attach(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)


def install(secrets: Iterable[str] = ()) -> None:
    """Redact `secrets` (and those given before) from every log record of this process. Idempotent."""
    _registry.add(secrets)
    with _registry.lock:
        if not _registry.installed:
            previous = logging.getLogRecordFactory()
            _registry.previous_factory = previous

            def factory(*args, **kwargs) -> logging.LogRecord:
                return _clean_record(previous(*args, **kwargs))

            factory._finops_redacting = True  # type: ignore[attr-defined]
            logging.setLogRecordFactory(factory)
            _registry.installed = True
    root = logging.getLogger()
    _attach(root)
    for handler in root.handlers:
        _attach(handler)
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        _attach(logger)
        for handler in logger.handlers:
            _attach(handler)
