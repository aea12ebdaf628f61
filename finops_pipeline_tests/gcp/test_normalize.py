"""Source -> unified mapping and the SQL building blocks, without BigQuery or Dagster."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.gcp.bigquery_export.export_query import ExportTable, charges_sql, choose_export_table, day_state_sql
from finops_pipeline.defs.gcp.bigquery_export.normalize import unified_row, unified_rows
from finops_pipeline.defs.gcp.bigquery_export.pull import PARTITION_MARGIN_DAYS, partition_days
from finops_pipeline.diagnosis import ProviderError
from finops_pipeline.schema import rows_to_table

ACCOUNT = parse_config({"accounts": [{
    "key": "g", "provider": "gcp", "name": "Acme GCP", "connected_at": "2026-11-01T00:00:00Z",
    "billing_account_id": "012345-6789AB-CDEF01", "project_id": "billing-admin", "dataset": "billing",
}]}, Path("finops.yaml")).accounts[0]
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


def line(**overrides):
    base = {
        "line": "charge", "partition_day": date(2026, 11, 2), "usage_day": date(2026, 11, 1), "project_id": "shop-prod",
        "project_name": "Shop", "service_id": "6F25-5844-1A7E", "service_name": "Compute Engine", "sku_id": "CP-1",
        "sku_description": "N2 core", "region": "us-central1", "currency": "USD", "cost_type": "regular",
        "labels_json": '[{"key":"team","value":"web"},{"key":"env","value":"prod"}]', "usage_unit": "seconds",
        "pricing_unit": "hour", "credit_type": None, "credit_name": None, "amount": Decimal("1.100000000"),
        "usage_amount": Decimal("7200"), "pricing_amount": Decimal("2"), "currency_conversion_rate": 1.0,
        "last_export_time": datetime(2026, 11, 2, 6, tzinfo=timezone.utc),
    }
    return {**base, **overrides}


def test_usage_line_maps_to_focus_columns():
    row = unified_row(line(), ACCOUNT, "2026-11", NOW, estimated=False)
    assert (row["BilledCost"], row["EffectiveCost"], row["ListCost"]) == (Decimal("1.1"),) * 3
    assert row["ChargeCategory"] == "Usage" and row["ChargeClass"] is None
    assert row["ChargePeriodStart"] == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert row["BillingPeriodStart"] == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert row["Tags"] == '{"env":"prod","team":"web"}'
    assert row["BillingAccountId"] == "012345-6789AB-CDEF01" and row["BillingAccountName"] == "Acme GCP"
    assert row["x_CurrencyConversionRate"] == Decimal("1") and row["ResourceId"] is None
    rows_to_table([row])  # fits the cost_daily schema


def test_credit_line_is_a_credit_charge_without_quantities():
    row = unified_row(line(line="credit", credit_type="PROMOTION", credit_name="Free trial", amount=Decimal("-0.3"),
                           usage_amount=None, pricing_amount=None), ACCOUNT, "2026-11", NOW, estimated=True)
    assert row["ChargeCategory"] == "Credit" and row["BilledCost"] == row["EffectiveCost"] == Decimal("-0.3")
    assert row["ListCost"] == row["ContractedCost"] == 0
    assert row["PricingQuantity"] is None and row["PricingUnit"] is None and row["ChargeDescription"] == "Free trial"
    assert row["x_SourceChargeType"] == "PROMOTION" and row["x_Estimated"] is True


@pytest.mark.parametrize("cost_type, category, charge_class", [
    ("tax", "Tax", None), ("adjustment", "Adjustment", "Correction"), ("rounding_error", "Adjustment", None), ("regular", "Usage", None),
])
def test_cost_types_map_to_charge_categories(cost_type, category, charge_class):
    row = unified_row(line(cost_type=cost_type, service_name="Invoice" if cost_type == "tax" else "Compute Engine"), ACCOUNT, "2026-11", NOW, False)
    assert (row["ChargeCategory"], row["ChargeClass"]) == (category, charge_class)


def test_unknown_values_are_null_not_empty():
    row = unified_row(line(labels_json="[]", region=None, project_name=None, usage_unit=None), ACCOUNT, "2026-11", NOW, False)
    table = rows_to_table([row]).to_pylist()[0]
    assert table["Tags"] is None and table["RegionId"] is None and table["ConsumedUnit"] is None
    assert table["SubAccountName"] == "shop-prod"  # no project name: the id (FOCUS)


def test_rows_are_grouped_by_partition_day_and_flag_recent_days_as_estimated():
    lines = [line(partition_day=date(2026, 11, 2)), line(partition_day=date(2026, 11, 15)), line(line="credit", partition_day=date(2026, 11, 15),
             credit_type="PROMOTION", credit_name="x", amount=Decimal("-1"))]
    by_day = unified_rows(lines, ACCOUNT, "2026-11", NOW, estimated_from=date(2026, 11, 11))
    assert {d: len(r) for d, r in by_day.items()} == {date(2026, 11, 2): 1, date(2026, 11, 15): 2}
    assert [r["x_Estimated"] for r in by_day[date(2026, 11, 15)]] == [True, True]
    assert by_day[date(2026, 11, 2)][0]["x_Estimated"] is False


def test_detailed_table_is_preferred_over_standard():
    names = ["gcp_billing_export_v1_012345_6789AB_CDEF01", "gcp_billing_export_resource_v1_012345_6789AB_CDEF01", "other"]
    assert choose_export_table(names, "012345-6789AB-CDEF01") == names[1]
    assert choose_export_table(names[:1], "012345-6789AB-CDEF01") == names[0]
    assert choose_export_table(names, "0A0A0A-0A0A0A-0A0A0A") is None


def test_identifiers_are_validated_where_they_enter_sql():
    good = ExportTable("billing-admin", "billing", "gcp_billing_export_v1_012345_6789AB_CDEF01")
    assert "`billing-admin.billing.gcp_billing_export_v1_012345_6789AB_CDEF01`" in day_state_sql(good)
    assert "resource.global_name" not in charges_sql(good)
    assert "resource.global_name" in charges_sql(ExportTable("billing-admin", "billing", "gcp_billing_export_resource_v1_012345_6789AB_CDEF01"))
    for bad in (ExportTable("billing-admin", "billing`; DROP", good.table), ExportTable("Bad_Project!", "billing", good.table),
                ExportTable("billing-admin", "billing", "gcp_billing_export_v1_x`; SELECT 1")):
        with pytest.raises(ProviderError, match="not a valid BigQuery identifier"):
            day_state_sql(bad)


def test_queries_prune_partitions_and_take_values_as_parameters():
    sql = charges_sql(ExportTable("billing-admin", "billing", "gcp_billing_export_v1_012345_6789AB_CDEF01"))
    assert "_PARTITIONTIME >= TIMESTAMP(@first_day)" in sql and "invoice.month = @invoice_month" in sql
    assert "export_time <= @as_of" in sql and "2026" not in sql


def test_partition_window_covers_the_month_and_its_margins_up_to_today():
    days = partition_days("2026-11", date(2026, 11, 20))
    margin = timedelta(days=PARTITION_MARGIN_DAYS)
    assert days[0] == date(2026, 11, 1) - margin and days[-1] == date(2026, 11, 20)
    closed = partition_days("2026-10", date(2026, 11, 20))
    assert (closed[0], closed[-1]) == (date(2026, 10, 1) - margin, date(2026, 10, 31) + margin)
    assert len(set(closed)) == len(closed) == 31 + 2 * PARTITION_MARGIN_DAYS
    assert partition_days("2027-01", date(2026, 11, 20)) == []


def test_resource_type_from_the_global_name():
    from finops_pipeline.defs.gcp.bigquery_export.normalize import resource_type

    assert resource_type("//compute.googleapis.com/projects/p/zones/us-central1-a/instances/vm-1") == "compute.googleapis.com/Instance"
    assert resource_type("//compute.googleapis.com/projects/p/regions/europe-west1/addresses/ip-1") == "compute.googleapis.com/Address"
    assert resource_type("//storage.googleapis.com/projects/_/buckets/assets") == "storage.googleapis.com/Bucket"
    assert resource_type("//bigquery.googleapis.com/projects/p/datasets/d/tables/t") == "bigquery.googleapis.com/Table"
    assert resource_type("//container.googleapis.com/projects/p/locations/us-central1/clusters/main") == "container.googleapis.com/Cluster"
    assert resource_type("//bigquery.googleapis.com/projects/analytics-eu") == "bigquery.googleapis.com"
    assert resource_type("projects/p/instances/x") == "Resource"
    assert resource_type(None) is None and resource_type("") is None


def test_committed_use_discount_credits_carry_the_commitment():
    spend = unified_row(line(line="credit", credit_type="COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE", credit_id="cud-42",
                             credit_name="Committed use discount - dollar based", amount=Decimal("-2")), ACCOUNT, "2026-11", NOW, False)
    assert (spend["CommitmentDiscountId"], spend["CommitmentDiscountCategory"], spend["CommitmentDiscountType"]) == (
        "cud-42", "Spend", "Committed Use Discount")
    assert spend["CommitmentDiscountName"] == "Committed use discount - dollar based" and spend.get("CommitmentDiscountStatus") is None
    other = unified_row(line(line="credit", credit_type="SUSTAINED_USAGE_DISCOUNT", credit_id="sud", credit_name="SUD",
                             amount=Decimal("-1")), ACCOUNT, "2026-11", NOW, False)
    assert other["CommitmentDiscountId"] is None and other["CommitmentDiscountCategory"] is None
    usage = unified_row(line(zone="us-central1-b", resource_global_name="//compute.googleapis.com/projects/p/zones/z/disks/d"),
                        ACCOUNT, "2026-11", NOW, False)
    assert usage["AvailabilityZone"] == "us-central1-b" and usage["ResourceType"] == "compute.googleapis.com/Disk"
    rows_to_table([spend, other, usage])


def test_pricing_category_committed_where_a_committed_use_discount_applies_to_the_group():
    from finops_pipeline.defs.gcp.bigquery_export.normalize import unified_rows

    cud = line(line="credit", credit_type="COMMITTED_USAGE_DISCOUNT", credit_id="cud-1", credit_name="CUD", amount=Decimal("-0.4"),
               usage_amount=None, pricing_amount=None)
    other_sku = line(sku_id="CP-2", sku_description="Spot Preemptible E2 core")
    tax = line(cost_type="tax", service_name="Invoice", sku_id=None, sku_description="Tax")
    rows = unified_rows([line(), cud, other_sku, tax], ACCOUNT, "2026-11", NOW, date(2026, 12, 1))[date(2026, 11, 2)]
    assert [r["PricingCategory"] for r in rows] == ["Committed", None, "Dynamic", None]
    assert unified_row(line(), ACCOUNT, "2026-11", NOW, False)["PricingCategory"] == "Standard"


def test_unit_prices_only_when_the_price_is_per_one_pricing_unit():
    priced = {"price_unit": "hour", "price_unit_quantity": "1", "list_price": "0.05", "contracted_price": "0.04"}
    row = unified_row(line(**priced), ACCOUNT, "2026-11", NOW, False)
    assert (row["ListUnitPrice"], row["ContractedUnitPrice"]) == (Decimal("0.05"), Decimal("0.04"))
    assert row["SkuPriceId"] is None  # no tier known
    assert unified_row(line(**priced, price_tier_start="0"), ACCOUNT, "2026-11", NOW, False)["SkuPriceId"] == "CP-1/0"
    assert row["PricingCurrencyListUnitPrice"] == Decimal("0.05")  # USD bill: rate 1
    for other in ({"price_unit": "gibibyte"}, {"price_unit_quantity": "1000"}):
        assert unified_row(line(**{**priced, **other}), ACCOUNT, "2026-11", NOW, False)["ListUnitPrice"] is None
    tax = unified_row(line(**priced, cost_type="tax"), ACCOUNT, "2026-11", NOW, False)
    assert tax["ListUnitPrice"] is None and tax["ContractedUnitPrice"] is None  # FOCUS: NULL on Tax
    eur = unified_row(line(**priced, currency="EUR", currency_conversion_rate=0.5), ACCOUNT, "2026-11", NOW, False)
    assert eur["PricingCurrencyContractedUnitPrice"] == Decimal("0.08")  # the EUR price in USD
