"""ContractedUnitPrice and the capacity reservation columns from CUR, against a Python oracle over the line items."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest

from finops_sandbox import cur as sandbox_cur

from .conftest import lines_for
from .test_normalize import PERIOD, _pull_local

UNPRICED = ("Tax", "Credit", "Refund")


def _is_unused_commitment(row: dict) -> bool:
    return row["CommitmentDiscountStatus"] == "Unused"


@pytest.mark.parametrize("fmt", ["legacy-csv-gz", "legacy-parquet", "cur2-parquet", "cur2-csv-gz"])
def test_contracted_unit_price_is_the_unblended_rate(tmp_path, fmt):
    lines = lines_for(PERIOD)
    _, table, _ = _pull_local(tmp_path, fmt, lines)
    rows = [r for r in table.to_pylist() if not _is_unused_commitment(r)]

    # Per (day, account, type, usage type, resource): the rates its line items state (one each in the sandbox).
    rates: dict[tuple, set] = defaultdict(set)
    for line in lines:
        key = (line["line_item_usage_start_date"].date(), line["line_item_usage_account_id"], line["line_item_line_item_type"],
               line["line_item_usage_type"], line.get("line_item_resource_id"))
        rate = line.get("line_item_unblended_rate")
        rates[key].add(None if rate is None or line["line_item_line_item_type"] in UNPRICED else Decimal(rate))
    assert all(len(v) == 1 for v in rates.values())

    priced = 0
    for row in rows:
        key = (row["ChargePeriodStart"].date(), row["SubAccountId"], row["x_SourceChargeType"], row["SkuMeter"] or f"{row['x_SourceChargeType']}-line",
               row["ResourceId"])
        (want,) = rates[key]
        assert row["ContractedUnitPrice"] == want, key
        assert row["PricingCurrencyContractedUnitPrice"] == want, key  # priced in USD, billed in USD
        if want is not None and row["PricingQuantity"] is not None:
            priced += 1
            # ContractedCost = ContractedUnitPrice x PricingQuantity, to the rate's stated 10 decimals (3 lines a row).
            assert abs(row["ContractedCost"] - want * row["PricingQuantity"]) <= Decimal("1e-9"), key
    assert priced > 100
    assert {r["ContractedUnitPrice"] for r in rows if r["x_SourceChargeType"] in UNPRICED} == {None}
    # The unused commitment rows carry no price (no SKU is consumed on them).
    assert {r["ContractedUnitPrice"] for r in table.to_pylist() if _is_unused_commitment(r)} == {None}


@pytest.mark.parametrize("fmt", ["cur2-parquet", "cur2-csv-gz", "legacy-csv-gz"])
def test_capacity_reservation_columns(tmp_path, fmt):
    lines = lines_for(PERIOD)
    _, table, _ = _pull_local(tmp_path, fmt, lines)
    rows = table.to_pylist()
    got = {(r["ChargePeriodStart"].date(), r["ResourceId"], r["SkuMeter"], r["CapacityReservationId"], r["CapacityReservationStatus"])
           for r in rows if r["CapacityReservationId"] is not None}
    if fmt.startswith("legacy"):
        assert got == set() and {r["CapacityReservationStatus"] for r in rows} == {None}  # legacy CUR has no such columns
        return
    expected = {(l["line_item_usage_start_date"].date(), l["line_item_resource_id"], l["line_item_usage_type"],
                 l["capacity_reservation_capacity_reservation_arn"], l["capacity_reservation_capacity_reservation_status"])
                for l in lines if l.get("capacity_reservation_capacity_reservation_arn")}
    assert got == expected and {s for *_, s in got} == {"Used", "Unused"}
    for row in rows:
        if row["CapacityReservationId"] is None:
            assert row["CapacityReservationStatus"] is None
        elif row["ChargeCategory"] == "Usage":
            assert row["CapacityReservationStatus"] in ("Used", "Unused")
    unused = [r for r in rows if r["CapacityReservationStatus"] == "Unused"]
    assert unused and all("UnusedBox" in r["SkuMeter"] for r in unused)


def test_capacity_reservation_status_outside_focus_values(tmp_path):
    """CUR 2.0's Reserved/Cancelled and a missing status, mapped onto FOCUS's Used/Unused (docs/aws_cur.md)."""
    lines = lines_for(PERIOD)
    reserved = [l for l in lines if l.get("capacity_reservation_capacity_reservation_arn")]
    # Used where the capacity was consumed; everything else on a Usage charge is capacity not consumed.
    want = {("Reserved", False): "Unused", ("Cancelled", False): "Unused", (None, False): "Used",
            ("Reserved", True): "Unused", ("Cancelled", True): "Unused", (None, True): "Unused"}
    expected, cases = {}, set()
    for number, line in enumerate(reserved):
        unused = "UnusedBox" in line["line_item_usage_type"]
        status = ("Reserved", "Cancelled", None)[(number + number // 3) % 3]  # every status on every hour
        line["capacity_reservation_capacity_reservation_status"] = status
        line["line_item_resource_id"] = f"{line['line_item_resource_id']}#{number}"  # its own row
        expected[line["line_item_resource_id"]] = want[(status, unused)]
        cases.add((status, unused))
    assert cases == set(want)
    # A capacity reservation on a non-usage charge with a status FOCUS does not know: no status.
    tax = next(l for l in lines if l["line_item_line_item_type"] == "Tax")
    tax.update(capacity_reservation_capacity_reservation_arn="arn:aws:ec2:us-east-1:1:capacity-reservation/cr-9",
               capacity_reservation_capacity_reservation_status="Reserved")
    _, table, _ = _pull_local(tmp_path, "cur2-parquet", lines)
    rows = {r["ResourceId"]: r for r in table.to_pylist()}
    assert {resource: rows[resource]["CapacityReservationStatus"] for resource in expected} == expected
    taxed = [r for r in table.to_pylist() if r["CapacityReservationId"] == "arn:aws:ec2:us-east-1:1:capacity-reservation/cr-9"]
    assert taxed and {r["CapacityReservationStatus"] for r in taxed} == {None} and {r["ChargeCategory"] for r in taxed} == {"Tax"}


def test_sandbox_rates_price_the_usage():
    """The stand-in's rates are consistent with its costs (what the oracle above relies on)."""
    for line in lines_for(PERIOD):
        if line.get("line_item_unblended_rate") is not None:
            assert abs(Decimal(line["line_item_unblended_rate"]) * line["line_item_usage_amount"] - line["line_item_unblended_cost"]) \
                <= Decimal("3e-10")
    assert sandbox_cur.expected_totals(lines_for(PERIOD))  # unchanged totals are checked by the demo and conformance tests
