"""CUR test helpers: synthetic line items, a moto bucket, account entries for finops.yaml."""

from __future__ import annotations

import zlib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from finops_pipeline.config import Account, parse_config
from finops_sandbox import cur as sandbox_cur
from finops_sandbox.synthetic import daily_charges

PAYER = "111122223333"
LINKED = [("210987654321", "Production"), ("345678901234", "Analytics")]
BUCKET = "cur-test-bucket"


def charges(seed: str = "cur-tests", start: date = date(2026, 9, 20), days: int = 50):
    return daily_charges(seed, start, days, LINKED, sandbox_cur.SERVICES[:3])


def lines_for(period: str, seed: str = "cur-tests", **kwargs: Any) -> list[dict[str, Any]]:
    return sandbox_cur.line_items(charges(seed), period, PAYER, **kwargs)


def entry(key: str = "cur-main", *, report: str = "main-report", version: str = "cur2", bucket: str | None = BUCKET,
          local_dir: Path | None = None, endpoint: str | None = None, connected_at: str = "2026-09-01T00:00:00Z",
          prefix: str = "exports", account_id: str | None = None) -> dict[str, Any]:
    """A finops.yaml account entry for a CUR source.

    Each report gets its own payer unless told otherwise: the registry refuses two accounts that read
    one payer's billing (they would count it twice)."""
    payer = account_id or (PAYER if key == "cur-main" else f"{zlib.crc32(key.encode()) % 10**12:012d}")
    item: dict[str, Any] = {"key": key, "provider": "aws", "source": "cur", "name": f"CUR {key}", "connected_at": connected_at,
                            "account_id": payer, "prefix": prefix, "report_name": report, "cur_version": version}
    if local_dir is not None:
        item["local_dir"] = str(local_dir)
    else:
        item["bucket"] = bucket
        item["endpoint_url"] = endpoint
    return item


def account_of(item: dict[str, Any]) -> Account:
    return parse_config({"accounts": [item]}, Path("finops.yaml")).accounts[0]


def effective_oracle(line: dict[str, Any]) -> Decimal:
    """design.md's EffectiveCost rules, per line item, in Python."""
    kind = line["line_item_line_item_type"]
    if kind == "SavingsPlanCoveredUsage":
        return line["savings_plan_savings_plan_effective_cost"]
    if kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return Decimal(0)
    if kind == "DiscountedUsage":
        return line["reservation_effective_cost"]
    if kind == "RIFee":
        return line["reservation_unused_amortized_upfront_fee_for_billing_period"] + line["reservation_unused_recurring_fee"]
    if kind == "Fee" and line.get("reservation_reservation_a_r_n"):
        return Decimal(0)
    return sandbox_cur.billed(line)


@pytest.fixture
def s3(moto):
    return boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")


@pytest.fixture
def bucket(s3):
    return sandbox_cur.S3Bucket(s3, BUCKET)
