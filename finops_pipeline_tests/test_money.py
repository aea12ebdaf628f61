"""Per-currency money sums stay exact to the 38 digits DECIMAL(38, 10) holds (Python's default context keeps 28)."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from finops_pipeline.money import merge_totals, money_sum, sum_by_currency
from finops_pipeline.schema import MONEY, quantize_money, totals_by_currency

BIG = Decimal("12345678901234567890.1234567890")  # 30 digits: DECIMAL(38, 10) holds it
CENT = Decimal("0.0000000001")
EXACT = Decimal("12345678901234567890.1234567891")


def test_a_thirty_digit_sum_is_exact() -> None:
    assert BIG + CENT != EXACT  # the default context rounds it to 28 digits: what every total used to be
    assert money_sum([BIG, CENT]) == EXACT == quantize_money(EXACT)
    assert money_sum([BIG, None, CENT]) == EXACT and money_sum([]) == 0


def test_sums_per_currency_never_meet_and_stay_exact() -> None:
    totals = sum_by_currency([("USD", BIG), ("EUR", Decimal("1.50")), ("USD", CENT), ("JPY", None)])
    assert totals == {"USD": EXACT, "EUR": Decimal("1.50"), "JPY": Decimal(0)}  # a missing amount still names its currency
    assert sum_by_currency([("USD", CENT)], totals) is totals and totals["USD"] == Decimal("12345678901234567890.1234567892")
    keyed = sum_by_currency([(("2026-10-01", "USD"), BIG), (("2026-10-01", "USD"), CENT), (("2026-10-02", "USD"), CENT)])
    assert keyed == {("2026-10-01", "USD"): EXACT, ("2026-10-02", "USD"): CENT}


def test_merged_totals_and_a_tables_totals_are_exact() -> None:
    assert merge_totals([{"USD": BIG}, {"USD": CENT, "EUR": Decimal("2")}]) == {"USD": EXACT, "EUR": Decimal("2")}
    table = pa.table({"BillingCurrency": ["USD", "USD", "EUR"], "BilledCost": pa.array([BIG, CENT, Decimal("2")], MONEY)})
    assert totals_by_currency(table) == {"USD": EXACT, "EUR": Decimal("2")}
