"""FOCUS 1.2 conformance of every source's cost_daily rows, built from the same stand-ins and fixtures as
each source's own tests: requirement levels, allowed values, nullability relationships, cost relationships.

These are the rules the table implements; the FinOps Foundation's focus_validator (v2) is run by hand.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from finops_pipeline.schema import (
    ALLOWED_VALUES,
    COLUMNS,
    COMMITMENT_COLUMNS,
    COST_DAILY_SCHEMA,
    FOCUS_12_COLUMNS,
    MANDATORY,
    SERVICE_SUBCATEGORY_PARENTS,
    UNIT_COLUMNS,
    rows_to_table,
    totals_by_currency,
)


def test_the_schema_has_every_focus_12_column_and_the_13_provider_columns() -> None:
    assert len(FOCUS_12_COLUMNS) == 57
    names = {c.name for c in COLUMNS}
    assert {"ServiceProviderName", "HostProviderName", "ProviderName", "PublisherName"} <= names
    for column in COLUMNS:
        if column.name.startswith("x_"):
            assert column.requirement is None
        else:
            assert column.requirement in ("Mandatory", "Conditional", "Recommended", "Optional"), column.name
            assert column.focus_type in ("String", "Decimal", "Date/Time", "JSON"), column.name


# FOCUS 1.2 UnitFormat: a data size or time unit, a count unit, <unit>-<plural time unit>, <unit>/<singular time unit>,
# <quantity> <unit>, <unit>/<interval> <plural time unit>. The spec's SHOULD, checked on every unit we write.
_SIZES = "|".join(["b", "B"] + [p + s for p in "KMGTPE" for s in ("b", "B")] + [p + "i" + s for p in "KMGTPE" for s in ("b", "B")])
_SINGULAR = "Year|Month|Day|Hour|Minute|Second"
_PLURAL = "Years|Months|Days|Hours|Minutes|Seconds"
_WORD = r"[A-Za-z][A-Za-z0-9]*(?: [A-Za-z][A-Za-z0-9]*)*"
UNIT_FORMAT = re.compile(rf"(?:{_SIZES}|{_PLURAL}|{_SINGULAR}|{_WORD})(?:-(?:{_PLURAL})|/(?:{_SINGULAR})|/[0-9]+ (?:{_PLURAL}))?"
                         rf"|[0-9]+ (?:{_SIZES}|{_WORD})")


def check_focus(table: pa.Table) -> None:
    """The FOCUS rules cost_daily implements, on one source's table."""
    assert {f.name: f.type for f in table.schema} == {f.name: f.type for f in COST_DAILY_SCHEMA}
    assert table.num_rows > 0
    rows = table.to_pylist()
    for column in COLUMNS:
        values = table.column(column.name).to_pylist()
        if not column.nullable:
            assert None not in values, column.name
        if column.requirement == MANDATORY and column.name in ("ServiceProviderName",):
            assert None not in values
        if column.type == pa.string():
            assert "" not in values, f"{column.name}: '' instead of NULL"
        if column.name in ALLOWED_VALUES:
            assert set(values) - {None} <= set(ALLOWED_VALUES[column.name]), column.name
        if column.name in UNIT_COLUMNS:
            assert [u for u in set(values) - {None} if not UNIT_FORMAT.fullmatch(u)] == [], column.name
    for row in rows:
        assert (row["PricingUnit"] is None) == (row["PricingQuantity"] is None) or row["PricingUnit"] is None, row
        if row["PricingQuantity"] is None:
            assert row["PricingUnit"] is None
        assert (row["RegionName"] is None) == (row["RegionId"] is None), (row["RegionId"], row["RegionName"])
        if row["ChargeCategory"] == "Tax":
            assert row["SkuId"] is None and row["SkuPriceId"] is None
        if row["SubAccountId"] is not None:
            assert row["SubAccountName"] is not None
        present = [row[c] is not None for c in COMMITMENT_COLUMNS]
        assert all(present) or not any(present), [row[c] for c in COMMITMENT_COLUMNS]
        if row["CommitmentDiscountStatus"] is not None:
            assert row["CommitmentDiscountId"] is not None and row["ChargeCategory"] == "Usage"
        # CapacityReservationStatus: NULL without an id, set on Usage rows with one.
        if row["CapacityReservationId"] is None:
            assert row["CapacityReservationStatus"] is None, row["CapacityReservationStatus"]
        elif row["ChargeCategory"] == "Usage":
            assert row["CapacityReservationStatus"] is not None, row["CapacityReservationId"]
        if row["Tags"] is not None:
            assert isinstance(json.loads(row["Tags"]), dict)
        # ServiceSubcategory-C-004-M: one of FOCUS's values, under the row's ServiceCategory.
        assert SERVICE_SUBCATEGORY_PARENTS.get(row["ServiceSubcategory"]) == row["ServiceCategory"], (row["ServiceName"], row["ServiceSubcategory"])
        if row["SkuPriceDetails"] is not None:
            assert isinstance(json.loads(row["SkuPriceDetails"]), dict)
        # Purchases that cover future (commitment) charges: EffectiveCost 0, amortized onto the usage.
        if row["ChargeCategory"] == "Purchase" and row["CommitmentDiscountId"] is not None:
            assert row["EffectiveCost"] == 0
        if row["ChargeClass"] is not None:
            assert row["ChargeClass"] == "Correction"
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]
        assert row["BillingPeriodStart"] < row["BillingPeriodEnd"]
        check_nullability_12(row)


TAX_NULL = ("SkuId", "SkuPriceId", "PricingQuantity", "PricingUnit", "PricingCategory", "ListUnitPrice", "ContractedUnitPrice",
            "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice")


def check_nullability_12(row: dict) -> None:
    """FOCUS 1.2's "MUST be null when ..." column rules, as the spec words them, on one row."""
    if row["ChargeCategory"] == "Tax":
        assert [c for c in TAX_NULL if row[c] is not None] == [], row
    if row["SkuId"] is None:
        assert row["SkuMeter"] is None, row["SkuMeter"]
    if row["SkuPriceId"] is None:
        assert row["SkuPriceDetails"] is None
    if row["PricingQuantity"] is None:
        assert row["PricingUnit"] is None
    if row["ChargeCategory"] != "Usage" or row["CommitmentDiscountStatus"] == "Unused":
        assert row["ConsumedQuantity"] is None, (row["ChargeCategory"], row["ConsumedQuantity"])
    if row["ConsumedQuantity"] is None:
        assert row["ConsumedUnit"] is None
    if row["CommitmentDiscountId"] is None:
        assert [row[c] for c in ("CommitmentDiscountCategory", "CommitmentDiscountType", "CommitmentDiscountName",
                                 "CommitmentDiscountStatus", "CommitmentDiscountQuantity")] == [None] * 5, row
    if row["ChargeCategory"] not in ("Usage", "Purchase"):
        assert row["CommitmentDiscountQuantity"] is None
    if row["CommitmentDiscountQuantity"] is None:
        assert row["CommitmentDiscountUnit"] is None
    if row["ResourceId"] is None:
        assert row["ResourceType"] is None
    if row["SubAccountId"] is None:
        assert row["SubAccountType"] is None and row["SubAccountName"] is None


def check_native_export(table: pa.Table) -> None:
    """What the shared reader's conformance step adds for a native FOCUS export's rows (finops_pipeline.focus):
    a type for every resource, a subcategory on every row, one ServiceCategory per ServiceName."""
    check_focus(table)
    categories: dict[str, set] = defaultdict(set)
    for row in table.to_pylist():
        if row["ResourceId"] is not None:
            assert row["ResourceType"] is not None, row["ResourceId"]
        if row["SubAccountId"] is not None:
            assert row["SubAccountType"] is not None, row["SubAccountId"]
        assert row["ServiceSubcategory"] is not None, row["ServiceName"]
        categories[row["ServiceName"]].add(row["ServiceCategory"])
    assert {name: found for name, found in categories.items() if len(found) > 1} == {}


# --- every source ---------------------------------------------------------------------------------------

def test_aws_cur_conforms_and_reconciles() -> None:
    from finops_pipeline_tests.aws_cur.conftest import effective_oracle, lines_for
    from finops_pipeline_tests.aws_cur.test_normalize import _pull_local
    from finops_sandbox import cur as sandbox_cur

    for fmt in ("legacy-csv-gz", "cur2-parquet"):
        lines = lines_for("2026-10")
        with tempfile.TemporaryDirectory() as tmp:
            pull, table, _ = _pull_local(Path(tmp), fmt, lines)
        check_focus(table)
        # Reconciliation: BilledCost per currency is the raw total, exactly; EffectiveCost still sums to the
        # amortized total (the unused commitment rows carry what the fee rows no longer do).
        assert totals_by_currency(table) == pull.source_totals == sandbox_cur.expected_totals(lines)
        assert totals_by_currency(table, "EffectiveCost")["USD"] == sum(effective_oracle(line) for line in lines)
        # Totals per day, account and currency unchanged to the cent.
        by_day: dict[tuple, Decimal] = defaultdict(Decimal)
        for line in lines:
            by_day[(line["line_item_usage_start_date"].date(), line["line_item_usage_account_id"])] += sandbox_cur.billed(line)
        got: dict[tuple, Decimal] = defaultdict(Decimal)
        for row in table.to_pylist():
            got[(row["ChargePeriodStart"].date(), row["SubAccountId"])] += row["BilledCost"]
        assert dict(got) == dict(by_day)
        rows = table.to_pylist()
        assert {r["CommitmentDiscountStatus"] for r in rows} >= {"Used", "Unused"}
        assert {r["CommitmentDiscountType"] for r in rows} >= {"Reservation", "Savings Plan"}
        assert {r["PricingCategory"] for r in rows} >= {"Standard", "Committed"}
        assert all(r["SkuMeter"] for r in rows if r["ChargeCategory"] == "Usage" and r["CommitmentDiscountStatus"] != "Unused")
        assert any(r["AvailabilityZone"] for r in rows) and any(r["ListUnitPrice"] is not None for r in rows)
        # ContractedUnitPrice from the unblended rate: ContractedCost = ContractedUnitPrice x PricingQuantity (rate to 10 decimals).
        priced = [r for r in rows if r["ContractedUnitPrice"] is not None and r["PricingQuantity"] is not None]
        assert priced and all(abs(r["ContractedCost"] - r["ContractedUnitPrice"] * r["PricingQuantity"]) <= Decimal("1e-9") for r in priced)
        assert all(r["PricingCurrencyContractedUnitPrice"] == r["ContractedUnitPrice"] for r in rows)
        # Capacity reservations: CUR 2.0 only.
        statuses = {r["CapacityReservationStatus"] for r in rows if r["CapacityReservationId"]}
        assert statuses == ({"Used", "Unused"} if fmt.startswith("cur2") else set()), statuses
        # One tag key convention across legacy CUR and CUR 2.0.
        keys = {k for r in rows if r["Tags"] for k in json.loads(r["Tags"])}
        assert keys <= {"user_name", "user_team"}, keys


def test_aws_cost_explorer_conforms() -> None:
    from finops_pipeline.config import parse_config
    from finops_pipeline.defs.aws.cost_explorer.pull import normalize
    from finops_pipeline_tests.aws.test_cost_explorer import account_entry, cost_explorer_pages, october_charges

    pages = cost_explorer_pages(october_charges(), "2026-10", estimated_from=date(2026, 10, 30), days_per_page=31)
    config = parse_config({"accounts": [account_entry("aws-main", "111111111111", "http://127.0.0.1:1")]}, Path("x.yaml"))
    table = rows_to_table(normalize(pages, config.accounts[0], "2026-10", datetime(2026, 11, 1, tzinfo=timezone.utc)))
    check_focus(table)
    assert "Amazon Elastic Compute Cloud - Compute" not in set(table.column("ServiceName").to_pylist())


def test_gcp_conforms() -> None:
    from finops_pipeline.defs.gcp.bigquery_export.normalize import unified_row
    from finops_pipeline_tests.gcp.test_normalize import ACCOUNT, NOW, line

    rows = [unified_row(line(), ACCOUNT, "2026-11", NOW, estimated=False),
            unified_row(line(line="credit", credit_type="PROMOTION", credit_name="Free trial", amount=Decimal("-0.3")),
                        ACCOUNT, "2026-11", NOW, False),
            unified_row(line(cost_type="tax", service_name="Invoice"), ACCOUNT, "2026-11", NOW, False),
            unified_row(line(labels_json="[]", region=None, project_name=None, usage_unit=None), ACCOUNT, "2026-11", NOW, False)]
    table = rows_to_table(rows)
    check_focus(table)
    assert table.column("RegionName").to_pylist()[0] is not None


def test_azure_conforms() -> None:
    from finops_pipeline.defs.azure.cost_management.pull import normalize
    from finops_pipeline_tests.azure.test_normalize import ACTUAL, AMORTIZED, INGESTED, account, pages

    table = rows_to_table(normalize(pages("ActualCost", ACTUAL), pages("AmortizedCost", AMORTIZED), account(), "2026-11", INGESTED))
    check_focus(table)
    assert None not in table.column("ChargeDescription").to_pylist()


def test_digitalocean_conforms() -> None:
    from finops_pipeline.defs.digitalocean.billing.pull import normalize
    from finops_pipeline_tests.digitalocean.test_normalize import NOW, OTHER_TEAM, URN, account, point

    pages = [{"data_points": [point("2026-11-01", "0.1"), point("2026-11-01", "0.2", region="", description="Kubernetes", sku=""),
                              point("2026-11-02", "12.345678901", usage_team_urn=OTHER_TEAM, region="FRA1")]}]
    table = rows_to_table(normalize(pages, account(), "2026-11", URN, "Acme", estimated=True, ingested_at=NOW))
    check_focus(table)


def test_the_core_applies_the_nullability_rules() -> None:
    from finops_pipeline_tests.test_schema import row

    table = rows_to_table([row(SubAccountId="123", SubAccountName=None, PricingUnit="Hrs", PricingQuantity=None),
                           row(ChargeCategory="Tax", SkuId="SKU-1", ServiceName="Tax")])
    first, tax = table.to_pylist()
    assert first["SubAccountName"] == "123" and first["PricingUnit"] is None
    assert first["ServiceProviderName"] == first["ProviderName"] == first["HostProviderName"]
    assert tax["SkuId"] is None


def test_the_service_mappings_put_every_subcategory_under_its_focus_category() -> None:
    """schema's two service mappings agree with FOCUS 1.2's parent of each subcategory (ServiceSubcategory-C-004-M), so a
    service has one category and one subcategory whichever source names it (Amazon Redshift and BigQuery are Data
    Warehouses, a Databases subcategory)."""
    from finops_pipeline.schema import _SERVICE_SUBCATEGORY_RULES, service_category, service_subcategory

    for fragment, subcategory in _SERVICE_SUBCATEGORY_RULES:
        if subcategory:
            assert SERVICE_SUBCATEGORY_PARENTS[subcategory] == service_category(fragment), fragment
    for name in ("Amazon Redshift", "BigQuery", "Amazon Elastic File System", "Amazon ElastiCache", "AWS Lambda", "Amazon CloudFront"):
        assert SERVICE_SUBCATEGORY_PARENTS[service_subcategory(name)] == service_category(name), name
    assert service_category("Amazon Redshift") == "Databases"


def test_units_are_written_in_focus_unit_format() -> None:
    """The sources' units whose meaning is known become FOCUS UnitFormat; only the notation changes (the quantity
    is in the same unit), and a unit not known is kept as the source wrote it."""
    import duckdb

    from finops_pipeline.schema import focus_unit, focus_unit_sql
    from finops_pipeline_tests.test_schema import row

    cases = {"Hrs": "Hours", "GB-Mo": "GB-Months", "Lambda-GB-Second": "GB-Seconds", "ReadCapacityUnit-Hrs": "ReadCapacityUnit-Hours",
             "IOPS-Mo": "IOPS-Months", "hour": "Hours", "seconds": "Seconds", "gibibyte month": "GiB-Months", "tebibyte": "TiB",
             "1 Hour": "Hours", "1 GB/Month": "GB-Months", "Requests": "Requests", "vCPU-Hours": "vCPU-Hours", "10K": "10K", None: None}
    connection = duckdb.connect()
    for source, focus_form in cases.items():
        assert focus_unit(source) == focus_form, source
        literal = "NULL" if source is None else "'" + source + "'"
        assert connection.execute(f"SELECT {focus_unit_sql(literal)}").fetchone()[0] == focus_form, source
        if focus_form not in (None, "10K"):
            assert UNIT_FORMAT.fullmatch(focus_form), focus_form
    table = rows_to_table([row(PricingUnit="Hrs", PricingQuantity="2", ConsumedUnit="Hrs", ConsumedQuantity="2")])
    assert table.column("PricingUnit").to_pylist() == table.column("ConsumedUnit").to_pylist() == ["Hours"]
    assert table.column("PricingQuantity").to_pylist() == [Decimal(2)]
