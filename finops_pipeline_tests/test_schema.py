"""The unified table: exact money, NULL for unknown, FOCUS values only."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from finops_pipeline.schema import (
    COST_DAILY_SCHEMA,
    SchemaError,
    conform,
    day_bounds,
    month_bounds,
    quantize_money,
    rows_to_table,
    service_category,
    tags_json,
    to_decimal,
    totals_by_currency,
)


def row(**overrides):
    start, end = day_bounds(date(2026, 11, 3))
    period_start, period_end = month_bounds("2026-11")
    base = {
        "BilledCost": "0.1", "EffectiveCost": "0.1", "ListCost": "0.1", "ContractedCost": "0.1",
        "BillingCurrency": "USD", "BillingPeriodStart": period_start, "BillingPeriodEnd": period_end,
        "ChargePeriodStart": start, "ChargePeriodEnd": end, "ChargeCategory": "Usage",
        "BillingAccountId": "1", "InvoiceIssuerName": "AWS", "ProviderName": "AWS", "PublisherName": "AWS",
        "ServiceName": "Amazon S3", "ServiceCategory": "Storage", "x_Provider": "aws", "x_Source": "cost_explorer",
        "x_AccountKey": "a", "x_Estimated": False, "x_IngestedAt": start,
    }
    return {**base, **overrides}


def test_money_is_exact_decimal() -> None:
    table = rows_to_table([row(BilledCost="0.1"), row(BilledCost="0.2"), row(BilledCost=Decimal("0.0000000001"))])
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 10)
    assert totals_by_currency(table) == {"USD": Decimal("0.3000000001")}  # 0.1 + 0.2 is not 0.30000000000000004


def test_any_amount_that_fits_decimal_38_10_quantizes_exactly() -> None:
    # 28 integer digits + 10 decimals = 38 significant digits: past the default context's 28, inside the column's 38.
    big = Decimal("1234567890123456789012345678.0123456789")
    assert quantize_money(big) == big and str(quantize_money(big)) == "1234567890123456789012345678.0123456789"
    assert quantize_money(-big) == -big
    assert quantize_money(Decimal("9" * 28)) == Decimal("9" * 28)
    # Half to even at the 10th decimal, with all 38 digits kept.
    assert str(quantize_money(Decimal("1234567890123456789012345678.01234567885"))) == "1234567890123456789012345678.0123456788"
    assert str(quantize_money(Decimal("1234567890123456789012345678.01234567895"))) == "1234567890123456789012345678.0123456790"
    table = rows_to_table([row(BilledCost=str(big))])
    assert table.column("BilledCost").to_pylist() == [big]
    for too_big in ("1" + "0" * 28, "99999999999999999999999999999.5"):  # 29 integer digits: not DECIMAL(38,10)
        with pytest.raises(SchemaError, match=r"does not fit DECIMAL\(38,10\)"):
            quantize_money(Decimal(too_big))


def test_float_input_goes_through_its_shortest_repr() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    with pytest.raises(SchemaError):
        to_decimal(float("nan"))
    with pytest.raises(SchemaError, match="BilledCost: 'twelve' is not a number"):
        rows_to_table([row(BilledCost="twelve")])


def test_unknown_is_null_never_empty_string() -> None:
    table = rows_to_table([row(RegionId="", Tags=None)])
    assert table.column("RegionId").to_pylist() == [None]
    assert table.column("Tags").to_pylist() == [None]


def test_required_columns_and_focus_values_are_enforced() -> None:
    with pytest.raises(SchemaError, match="ChargeCategory 'Discount'"):
        rows_to_table([row(ChargeCategory="Discount")])
    with pytest.raises(SchemaError, match="ServiceCategory 'Servers'"):
        rows_to_table([row(ServiceCategory="Servers")])
    incomplete = row()
    del incomplete["BillingCurrency"]
    with pytest.raises(SchemaError, match="BillingCurrency is required"):
        rows_to_table([incomplete])


def test_conform_fills_absent_optional_columns_and_rejects_drift() -> None:
    table = rows_to_table([row()])
    slim = table.drop_columns(["RegionId", "Tags"])
    assert conform(slim).schema == COST_DAILY_SCHEMA
    with pytest.raises(SchemaError, match="unexpected column"):
        conform(table.append_column("surprise", pa.array([1])))
    with pytest.raises(SchemaError, match="required column BilledCost is missing"):
        conform(table.drop_columns(["BilledCost"]))


def test_charge_periods_are_utc_days_and_months() -> None:
    start, end = day_bounds(date(2026, 12, 31))
    assert (start.isoformat(), end.isoformat()) == ("2026-12-31T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    start, end = month_bounds("2026-12")
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("service", "category"),
    [
        ("Amazon Elastic Compute Cloud - Compute", "Compute"),
        ("Amazon Simple Storage Service", "Storage"),
        ("Amazon Relational Database Service", "Databases"),
        ("BigQuery", "Databases"),
        ("Tax", "Other"),
        ("Something new", "Other"),
        (None, "Other"),
    ],
)
def test_service_category(service: str | None, category: str) -> None:
    assert service_category(service) == category


def test_tags_are_a_json_object_or_null() -> None:
    assert tags_json({"team": "data", "env": None}) == '{"env":"","team":"data"}'
    assert tags_json({}) is None


def test_the_readme_data_dictionary_lists_every_column() -> None:
    from pathlib import Path

    from finops_pipeline.schema import COLUMN_NAMES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [name for name in COLUMN_NAMES if f"| {name} |" not in readme]
    assert not missing, f"README.md data dictionary lacks {missing}"
