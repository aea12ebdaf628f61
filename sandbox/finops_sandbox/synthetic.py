"""Deterministic synthetic billing: realistic daily costs per account and service.

The same seed gives the same cents on every machine, so tests can reconcile exactly and the demo
tells the same story every time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

SCALE = Decimal("0.0000000001")


@dataclass(frozen=True)
class Charge:
    day: date
    account_id: str
    account_name: str
    service: str
    region: str | None
    amount: Decimal  # billed cost
    amortized: Decimal  # effective cost
    currency: str = "USD"


def daily_charges(
    seed: str,
    start: date,
    days: int,
    accounts: Sequence[tuple[str, str]],
    services: Sequence[tuple[str, str | None, Decimal]],
    currency: str = "USD",
) -> list[Charge]:
    """`services` are (name, region, typical daily cost). Weekdays cost more, spend grows slowly."""
    rng = random.Random(seed)
    charges = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        weekly = Decimal("1.0") if day.weekday() < 5 else Decimal("0.72")
        growth = Decimal(1) + Decimal(offset) / Decimal(400)
        for account_index, (account_id, account_name) in enumerate(accounts):
            share = Decimal(1) / Decimal(account_index + 1)
            for service, region, typical in services:
                noise = Decimal(rng.randint(850, 1150)) / Decimal(1000)
                amount = (typical * share * weekly * growth * noise).quantize(SCALE)
                discount = Decimal(rng.randint(0, 80)) / Decimal(1000)
                amortized = (amount * (Decimal(1) - discount)).quantize(SCALE)
                charges.append(Charge(day, account_id, account_name, service, region, amount, amortized, currency))
    return charges


def totals(charges: Sequence[Charge]) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for charge in charges:
        result[charge.currency] = result.get(charge.currency, Decimal(0)) + charge.amount
    return result
