"""Exact money sums, per currency, in the 38 digits DECIMAL(38, 10) holds.

Python's default decimal context keeps 28 significant digits: a sum of amounts the column holds
(up to 38 digits) would be rounded there, silently. Every total of the pipeline is added here, in
`MONEY_CONTEXT` (what schema.quantize_money fits amounts into), and never across currencies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import TypeVar

MONEY_PRECISION = 38
MONEY_SCALE = 10
MONEY_CONTEXT = Context(prec=MONEY_PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])  # exactly what DECIMAL(38, 10) holds
ZERO = Decimal(0)

K = TypeVar("K")  # a currency code, or a key that ends in one (day and currency, account and currency...)


def money_sum(amounts: Iterable[Decimal | None]) -> Decimal:
    """The exact sum of `amounts` (all of one currency); a missing amount counts as nothing."""
    add = MONEY_CONTEXT.add
    total = ZERO
    for amount in amounts:
        if amount is not None:
            total = add(total, amount)
    return total


def sum_by_currency(pairs: Iterable[tuple[K, Decimal | None]], into: dict[K, Decimal] | None = None) -> dict[K, Decimal]:
    """(currency, amount) pairs -> exact total per currency, added to `into` when given (a missing amount
    still names its currency, with 0)."""
    totals: dict[K, Decimal] = {} if into is None else into
    add = MONEY_CONTEXT.add
    for key, amount in pairs:
        totals[key] = add(totals.get(key, ZERO), amount if amount is not None else ZERO)
    return totals


def merge_totals(parts: Iterable[Mapping[K, Decimal]], into: dict[K, Decimal] | None = None) -> dict[K, Decimal]:
    """Per-currency totals (of days, files, exports...) -> one exact total per currency."""
    totals: dict[K, Decimal] = {} if into is None else into
    for part in parts:
        sum_by_currency(part.items(), totals)
    return totals
