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
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


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
    found = spec.classify(exc, detail)
    if found is not None:
        return found
    return Diagnosis(
        code=f"{provider}.unexpected_error",
        status=ERROR,
        cause=f"Unexpected error while reading {provider} billing ({type(exc).__name__}).",
        fix=spec.no_data.fix + " If the settings are right, retry later; report the detail if it persists.",
        detail=detail,
    )
