"""A BigQuery stand-in holding two FOCUS export tables (USD and EUR billing accounts) seeded with realistic rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.config import Account, parse_config
from finops_sandbox.gcp import BigQuerySandbox, create_focus_table, focus_dataset_name, focus_rows, focus_table_name

USD_BILLING = "0C1D2E-3F4A5B-6C7D8E"
EUR_BILLING = "0D1E2F-3A4B5C-6D7E8F"
PROJECT = "finops-reader"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
FIRST = date(2026, 9, 25)  # late September .. 18 November: two whole invoice months and late usage across each end


@dataclass
class FocusScenario:
    sandbox: BigQuerySandbox
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, billing: str, rows: list[dict[str, Any]]) -> None:
        self.sandbox.insert_rows(PROJECT, focus_dataset_name(billing), focus_table_name(billing), rows)
        self.rows.setdefault(billing, []).extend(rows)


def seed(sandbox: BigQuerySandbox) -> FocusScenario:
    scenario = FocusScenario(sandbox)
    for billing, currency in ((USD_BILLING, "USD"), (EUR_BILLING, "EUR")):
        sandbox.create_dataset(PROJECT, focus_dataset_name(billing))
        create_focus_table(sandbox, PROJECT, focus_dataset_name(billing), focus_table_name(billing))
        scenario.add(billing, focus_rows(billing, FIRST, (date(2026, 11, 19) - FIRST).days, currency=currency, hours=(1, 13)))
    return scenario


def entry(key: str, billing: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "provider": "gcp", "source": "focus", "name": f"GCP FOCUS {key}", "connected_at": "2026-09-01T00:00:00Z",
            "billing_account_id": billing, "project_id": PROJECT, "dataset": focus_dataset_name(billing), "api_endpoint": url,
            **extra}


def account_of(item: dict[str, Any]) -> Account:
    config = parse_config({"accounts": [item]}, Path("finops.yaml"))
    assert not config.problems, config.problems
    return config.accounts[0]


@pytest.fixture
def bigquery() -> Iterator[BigQuerySandbox]:
    server = BigQuerySandbox().start()
    yield server
    server.stop()


@pytest.fixture
def scenario(bigquery: BigQuerySandbox) -> FocusScenario:
    return seed(bigquery)
