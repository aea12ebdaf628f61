"""Failures -> a status, a cause and a fix, in the words of the product's knowledge base.

Every failure a user can hit ends here, so the Dagster UI, the connection status table and the
48-hour check all say the same thing, and no bare client traceback reaches the user. What a
provider's errors mean is each source's own knowledge (its `diagnosis.py`); this module holds the
shared types and the cases every source has in common. Every message is redacted against the
secrets the registry names before it is stored or shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from finops_pipeline.config import ConfigError, MissingEnvironmentVariable


class Status(StrEnum):
    """An account's billing connection, as the status table and the checks report it."""

    OK = "OK"
    PENDING = "PENDING"  # connected less than 48 h ago and no data yet
    NO_DATA = "NO_DATA"  # 48 h passed and still no data
    ERROR = "ERROR"  # the latest pull of a month that matters failed


ERROR = Status.ERROR
PENDING = Status.PENDING


@dataclass(frozen=True)
class Advice:
    cause: str
    fix: str


@dataclass(frozen=True)
class Diagnosis:
    code: str  # stable machine-readable name, e.g. aws.cost_explorer_not_enabled
    status: str  # ERROR, or PENDING for "data not there yet" while inside the 48-hour window
    cause: str
    fix: str
    detail: str  # the provider's own message, redacted
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    def summary(self) -> str:
        return f"{self.cause} Fix: {self.fix}"


class ProviderError(Exception):
    """Raised by provider code for a condition it recognised itself (a missing manifest, no export table)."""

    def __init__(self, diagnosis: Diagnosis):
        self.diagnosis = diagnosis
        super().__init__(f"{diagnosis.cause} Fix: {diagnosis.fix} ({diagnosis.detail})")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***: raw, URL-encoded, JSON- or HTML-escaped, or inside a
    base64 value (finops_pipeline.redaction), and every secret this process was told of as well."""
    from finops_pipeline import redaction

    return redaction.redact(text, [*secrets, *redaction.known_secrets()])


def diagnose(provider: str, source: str, exc: BaseException, secrets: Iterable[str] = ()) -> Diagnosis:
    """Classify any exception raised while pulling one account. Unknown errors still get a status and a hint."""
    from finops_pipeline.sources import get_source

    secrets = list(secrets)
    if isinstance(exc, ProviderError):
        d = exc.diagnosis
        return Diagnosis(d.code, d.status, d.cause, d.fix, redact(d.detail, secrets), d.retryable)
    detail = redact(f"{type(exc).__name__}: {exc}", secrets)[:2000]
    if isinstance(exc, MissingEnvironmentVariable):
        fix = str(exc).split("Fix: ", 1)[-1]
        return Diagnosis("config.missing_environment_variable", ERROR, f"Environment variable {exc.variable} is not set.", fix, detail)
    if isinstance(exc, ConfigError):
        return Diagnosis("config.invalid", ERROR, "The account's settings in finops.yaml are not usable.",
                         "Correct the field named in the detail and run again.", detail)
    spec = get_source(provider, source)
    found = spec.classify(exc, detail) or classify_transport(exc, detail, provider, spec.title)
    if found is not None:
        return found
    # Nothing recognised it: say so, and give no fix the evidence does not support.
    return Diagnosis(
        code=f"{provider}.unexpected_error",
        status=ERROR,
        cause=f"Unexpected error while reading {spec.title} ({type(exc).__name__}); the pipeline does not recognise it.",
        fix="Nothing in the error points at a setting. Retry the refresh; if it persists, report the detail (it is redacted).",
        detail=detail,
    )


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (raise from, context, SDK wrappers' inner errors), outermost first."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
        for name in ("inner_exception", "original_error", "reason", "error"):
            inner = getattr(current, name, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
    return seen


def classify_transport(exc: BaseException, detail: str, provider: str, title: str) -> Diagnosis | None:
    """What went wrong on the way to the provider, whatever client raised it: DNS, TLS, timeout, refused.

    Client libraries wrap the socket's error in their own (botocore, azure-core, requests, urllib3), so
    the whole chain is read; the innermost evidence decides.
    """
    import socket
    import ssl

    chain = exception_chain(exc)
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        return Diagnosis(f"{provider}.tls_untrusted", ERROR, f"The {title} endpoint's TLS certificate is not trusted by this machine.",
                         "Check the endpoint in the account settings; behind a TLS-inspecting proxy, name a PEM file with its CA in the "
                         "account's 'ca_bundle' (where the source has one) or the system's trust store. Never turn verification off.", detail)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return Diagnosis(f"{provider}.tls_failed", ERROR, f"The TLS handshake with the {title} endpoint failed.",
                         "Check the endpoint in the account settings (an http:// server on an https:// URL, or a proxy in the way).", detail,
                         retryable=True)
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        phrase in text for phrase in ("Name or service not known", "Temporary failure in name resolution", "nodename nor servname", "getaddrinfo failed")
    ):
        return Diagnosis(f"{provider}.dns_failure", ERROR, f"The {title} endpoint's host name could not be resolved (DNS).",
                         "Check the machine's DNS and network, and any endpoint override in the account settings; the next refresh "
                         "retries.", detail, retryable=True)
    if any(isinstance(e, (TimeoutError, socket.timeout)) for e in chain) or names & {
        "ReadTimeout", "ConnectTimeout", "ReadTimeoutError", "ConnectTimeoutError", "ServiceResponseTimeoutError", "ServiceRequestTimeoutError",
    } or "timed out" in text:
        return Diagnosis(f"{provider}.timeout", ERROR, f"The {title} endpoint did not answer in time, and the retries ran out.",
                         "Nothing to change if it is temporary: the next refresh retries. If it persists, check the network path to "
                         "the endpoint (firewall, proxy) and the provider's status page.", detail, retryable=True)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return Diagnosis(f"{provider}.unreachable", ERROR, f"The {title} endpoint refused the connection.",
                         "Check the network and any endpoint override in the account settings; the next refresh retries.", detail, retryable=True)
    if any(isinstance(e, (ConnectionError, OSError)) and not isinstance(e, FileNotFoundError) for e in chain):
        return Diagnosis(f"{provider}.unreachable", ERROR, f"The connection to the {title} endpoint failed.",
                         "Check the network and any endpoint override in the account settings; the next refresh retries.", detail, retryable=True)
    return None


def malformed_answer(provider: str, title: str, what: str, sample: str = "") -> ProviderError:
    """A provider answer that does not prove it is one (empty body, `{}`, an HTML page, a missing field).

    Nothing is replaced: the month keeps its last good data.
    """
    return ProviderError(Diagnosis(
        f"{provider}.malformed_answer", ERROR,
        f"{title} answered, but not with billing data: {what}. The month keeps its last good data.",
        "Nothing to change in the settings if it is temporary: the next refresh retries. If it persists, a proxy or a wrong "
        "endpoint override may be answering instead of the provider: check the endpoint in the account settings.",
        sample[:300], retryable=True,
    ))
