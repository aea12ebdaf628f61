"""What happened the last time each account was pulled, for the connection status table.

One small JSON file per account and billing period, so runs for different months never race on
the same file. Messages in it are already redacted by diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from finops_pipeline import storage
from finops_pipeline.diagnosis import Diagnosis
from finops_pipeline.lake import read_json, write_json
from finops_pipeline.storage import Location


def _path(data_dir: Location, account_key: str, billing_period: str) -> Location:
    return storage.join(data_dir, "state", "pulls", account_key, f"{billing_period}.json")


def record_success(
    data_dir: Path, account_key: str, billing_period: str, at: datetime, rows: int, api_calls: int,
    totals: Mapping[str, Decimal] | None = None, run_id: str | None = None,
) -> None:
    path = _path(data_dir, account_key, billing_period)
    previous = read_json(path) or {}
    write_json(path, {
        **previous, "billing_period": billing_period, "last_outcome": "success", "last_success_at": at.isoformat(),
        "rows": rows, "api_calls": api_calls, "totals": {c: str(v) for c, v in sorted((totals or {}).items())}, "run_id": run_id,
    })


def record_failure(data_dir: Path, account_key: str, billing_period: str, at: datetime, diagnosis: Diagnosis, run_id: str | None = None) -> None:
    path = _path(data_dir, account_key, billing_period)
    previous = read_json(path) or {}
    write_json(path, {
        **previous, "billing_period": billing_period, "last_outcome": "failure", "last_failure_at": at.isoformat(),
        "last_error": diagnosis.as_dict(), "run_id": run_id,
    })


def read_record(data_dir: Path, account_key: str, billing_period: str) -> dict[str, Any] | None:
    """The last outcome of one account and month (what `finops-pipeline refresh` reports)."""
    return read_json(_path(data_dir, account_key, billing_period))


def records(data_dir: Path, account_key: str) -> dict[str, dict[str, Any]]:
    """Billing period -> the last outcome of pulling it, for one account."""
    found = {}
    for path in storage.glob(storage.join(data_dir, "state", "pulls", account_key), "*.json"):
        record = read_json(path)
        if record and record.get("billing_period"):
            found[record["billing_period"]] = record
    return found
