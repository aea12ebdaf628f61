"""What happened the last time each account was pulled, for the connection status table.

One small JSON file per account and billing period, so runs for different months never race on
the same file. Messages in it are already redacted by diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from finops_pipeline.diagnostics import Diagnosis
from finops_pipeline.lake import read_json, write_json


def _path(data_dir: Path, account_key: str, billing_period: str) -> Path:
    return Path(data_dir) / "state" / "pulls" / account_key / f"{billing_period}.json"


def record_success(data_dir: Path, account_key: str, billing_period: str, at: datetime, rows: int, api_calls: int) -> None:
    path = _path(data_dir, account_key, billing_period)
    previous = read_json(path) or {}
    write_json(path, {**previous, "billing_period": billing_period, "last_outcome": "success", "last_success_at": at.isoformat(), "rows": rows, "api_calls": api_calls})


def record_failure(data_dir: Path, account_key: str, billing_period: str, at: datetime, diagnosis: Diagnosis) -> None:
    path = _path(data_dir, account_key, billing_period)
    previous = read_json(path) or {}
    write_json(path, {**previous, "billing_period": billing_period, "last_outcome": "failure", "last_failure_at": at.isoformat(), "last_error": diagnosis.as_dict()})


@dataclass(frozen=True)
class PullSummary:
    last_success_at: datetime | None
    failing_periods: tuple[str, ...]
    last_error: dict[str, Any] | None  # the newest error among the failing periods

    @property
    def failing(self) -> bool:
        return bool(self.failing_periods)


def summarize(data_dir: Path, account_key: str) -> PullSummary:
    """Per account: the latest success, and the months whose newest attempt failed."""
    successes: list[datetime] = []
    failing: list[tuple[datetime, str, dict[str, Any]]] = []
    for path in sorted((Path(data_dir) / "state" / "pulls" / account_key).glob("*.json")):
        record = read_json(path) or {}
        success = datetime.fromisoformat(record["last_success_at"]) if record.get("last_success_at") else None
        failure = datetime.fromisoformat(record["last_failure_at"]) if record.get("last_failure_at") else None
        if success:
            successes.append(success)
        if failure and record.get("last_outcome") == "failure":  # the newest attempt, even on a pinned clock
            failing.append((failure, record["billing_period"], record.get("last_error") or {}))
    failing.sort()
    return PullSummary(
        last_success_at=max(successes) if successes else None,
        failing_periods=tuple(period for _, period, _ in failing),
        last_error=failing[-1][2] if failing else None,
    )
