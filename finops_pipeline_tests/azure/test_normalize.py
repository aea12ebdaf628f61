"""Cost Management rows -> cost_daily, without HTTP or Dagster."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.azure.cost_management.client import endpoints, throttle_wait
from finops_pipeline.defs.azure.cost_management.pull import (
    QueryPages,
    _check_next_link,
    amounts_by_key,
    charge_category,
    normalize,
    query_definition,
    raw_totals,
)
from finops_pipeline.diagnosis import ProviderError
from finops_pipeline.schema import COST_DAILY_SCHEMA, rows_to_table, totals_by_currency

SUBSCRIPTION = "3b8d6f1a-2c4e-4a6b-9d8f-1e3a5c7b9d0f"
COLUMNS = ["Cost", "UsageDate", "ServiceName", "ChargeType", "Currency"]


def account(**overrides):
    entry = {
        "key": "az", "provider": "azure", "name": "Contoso", "connected_at": "2026-01-01T00:00:00Z",
        "subscription_id": SUBSCRIPTION, "tenant_id": "7a1c0d2e-3f4b-4c5d-8e6f-0a1b2c3d4e5f",
        "client_id": "0f9e8d7c-6b5a-4d3c-9b2a-1f0e9d8c7b6a", "client_secret_env": "AZ_SECRET", **overrides,
    }
    return parse_config({"accounts": [entry]}, Path("finops.yaml")).accounts[0]


def pages(cost_type: str, body: str, columns=COLUMNS) -> QueryPages:
    """Rows parsed from JSON text the way the pipeline parses the wire (numbers as Decimal)."""
    rows = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    return QueryPages(cost_type, list(columns), rows, 1)


ACTUAL = """[
  [12.3456789012345678, 20261101, "Virtual Machines", "Usage", "EUR"],
  [0.1, 20261101, "Storage", "Usage", "EUR"],
  [0.2, 20261101, "Storage", "Usage", "EUR"],
  [1460, 20261101, "Virtual Machines", "Purchase", "EUR"],
  [-25.5, 20261102, "Virtual Machines", "Refund", "EUR"],
  [3.3, 20261102, "Storage", "Usage", "USD"]
]"""
AMORTIZED = """[
  [11.0000000001, 20261101, "Virtual Machines", "Usage", "EUR"],
  [0.3, 20261101, "Storage", "Usage", "EUR"],
  [4.0000000003, 20261101, "Virtual Machines", "UnusedReservation", "EUR"],
  [3.3, 20261102, "Storage", "Usage", "USD"]
]"""
INGESTED = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)


def test_actual_and_amortized_join_keeps_one_sided_rows_and_exact_amounts():
    rows = normalize(pages("ActualCost", ACTUAL), pages("AmortizedCost", AMORTIZED), account(), "2026-11", INGESTED)
    table = rows_to_table(rows)
    assert table.schema == COST_DAILY_SCHEMA
    by_key = {(r["ChargePeriodStart"].date(), r["ServiceName"], r["x_SourceChargeType"], r["BillingCurrency"]): r for r in table.to_pylist()}
    vm = by_key[(date(2026, 11, 1), "Virtual Machines", "Usage", "EUR")]
    # 18 significant digits on the wire: kept to the table's 10 decimal places, never through float.
    assert vm["BilledCost"] == Decimal("12.3456789012")
    assert vm["EffectiveCost"] == Decimal("11.0000000001")
    storage = by_key[(date(2026, 11, 1), "Storage", "Usage", "EUR")]
    assert storage["BilledCost"] == Decimal("0.3") and storage["EffectiveCost"] == Decimal("0.3")  # 0.1 + 0.2, exactly
    purchase = by_key[(date(2026, 11, 1), "Virtual Machines", "Purchase", "EUR")]
    assert (purchase["BilledCost"], purchase["EffectiveCost"], purchase["ChargeCategory"]) == (Decimal(1460), Decimal(0), "Purchase")
    unused = by_key[(date(2026, 11, 1), "Virtual Machines", "UnusedReservation", "EUR")]
    assert (unused["BilledCost"], unused["EffectiveCost"], unused["ChargeCategory"]) == (Decimal(0), Decimal("4.0000000003"), "Usage")
    refund = by_key[(date(2026, 11, 2), "Virtual Machines", "Refund", "EUR")]
    assert (refund["ChargeCategory"], refund["ChargeClass"]) == ("Purchase", "Correction")
    assert len(table) == 6


def test_currencies_are_never_added_together_and_totals_match_the_raw_rows():
    actual = pages("ActualCost", ACTUAL)
    table = rows_to_table(normalize(actual, pages("AmortizedCost", AMORTIZED), account(), "2026-11", INGESTED))
    assert raw_totals(actual, "2026-11") == {"EUR": Decimal("1447.1456789012345678"), "USD": Decimal("3.3")}
    assert totals_by_currency(table) == {"EUR": Decimal("1447.1456789012"), "USD": Decimal("3.3000000000")}
    assert totals_by_currency(table, "EffectiveCost") == {"EUR": Decimal("15.3000000004"), "USD": Decimal("3.3")}


def test_focus_columns_nulls_and_identity():
    row = rows_to_table(normalize(pages("ActualCost", ACTUAL), pages("AmortizedCost", "[]"), account(), "2026-11", INGESTED)).to_pylist()[0]
    assert row["BillingPeriodStart"] == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert row["BillingPeriodEnd"] == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert row["ChargePeriodEnd"] - row["ChargePeriodStart"] == datetime(2026, 1, 2) - datetime(2026, 1, 1)
    assert (row["BillingAccountId"], row["SubAccountId"], row["SubAccountName"]) == (SUBSCRIPTION, SUBSCRIPTION, "Contoso")
    assert row["BillingAccountType"] == row["SubAccountType"] == "Subscription"  # FOCUS: set whenever the id is
    assert (row["ProviderName"], row["x_Provider"], row["x_Source"], row["x_AccountKey"]) == ("Microsoft", "azure", "cost_management", "az")
    for unknown in ("RegionId", "ResourceId", "SkuId", "PricingQuantity", "Tags", "ChargeClass"):
        assert row[unknown] is None, unknown
    assert row["ChargeDescription"] == f"{row['ServiceName']} ({row['x_SourceChargeType'] or 'Usage'})"  # every Azure row has one
    assert row["ListCost"] == row["BilledCost"] == row["ContractedCost"]


def test_open_month_is_estimated_until_the_invoice_closes():
    def estimated(at):
        rows = normalize(pages("ActualCost", ACTUAL), pages("AmortizedCost", "[]"), account(), "2026-11", at)
        return {r["x_Estimated"] for r in rows}

    assert estimated(INGESTED) == {True}
    assert estimated(datetime(2026, 12, 3, tzinfo=timezone.utc)) == {True}
    assert estimated(datetime(2026, 12, 7, tzinfo=timezone.utc)) == {False}


def test_service_categories_for_azure_services():
    rows = normalize(pages("ActualCost", """[
        [1, 20261101, "Virtual Machines", "Usage", "USD"], [1, 20261101, "Azure Cosmos DB", "Usage", "USD"],
        [1, 20261101, "Bandwidth", "Usage", "USD"], [1, 20261101, "Azure Monitor", "Usage", "USD"],
        [1, 20261101, "Storage", "Usage", "USD"], [1, 20261101, "Tax", "Tax", "USD"]]"""),
        pages("AmortizedCost", "[]"), account(), "2026-11", INGESTED)
    got = {r["ServiceName"]: (r["ServiceCategory"], r["ChargeCategory"]) for r in rows}
    assert got == {
        "Virtual Machines": ("Compute", "Usage"), "Azure Cosmos DB": ("Databases", "Usage"), "Bandwidth": ("Networking", "Usage"),
        "Azure Monitor": ("Management and Governance", "Usage"), "Storage": ("Storage", "Usage"), "Tax": ("Other", "Tax"),
    }


def test_columns_are_found_by_name_not_position():
    shuffled = ["UsageDate", "ChargeType", "Currency", "ServiceName", "PreTaxCost"]
    got = amounts_by_key(pages("ActualCost", '[[20261103, "Usage", "USD", "Storage", 2.5]]', shuffled), "2026-11")
    assert got == {(date(2026, 11, 3), "Storage", "Usage", "USD"): Decimal("2.5")}


def test_missing_columns_is_a_diagnosed_error():
    with pytest.raises(ProviderError) as raised:
        amounts_by_key(pages("ActualCost", '[[1, 20261101, "USD"]]', ["Cost", "UsageDate", "Currency"]), "2026-11")
    assert raised.value.diagnosis.code == "azure.malformed_answer"
    assert "ServiceName" in raised.value.diagnosis.detail


def test_charge_types_map_to_focus_categories():
    assert charge_category("Usage") == ("Usage", None)
    assert charge_category("Purchase") == ("Purchase", None)
    assert charge_category("Refund") == ("Purchase", "Correction")
    assert charge_category("UnusedSavingsPlan") == ("Usage", None)
    assert charge_category("Rounding Adjustment") == ("Adjustment", None)


def test_query_definition_covers_exactly_the_calendar_month():
    body = query_definition("AmortizedCost", "2026-02").as_dict()
    assert body["type"] == "AmortizedCost" and body["timeframe"] == "Custom"
    assert body["timePeriod"] == {"from": "2026-02-01T00:00:00Z", "to": "2026-02-28T23:59:59Z"}
    assert body["dataset"]["granularity"] == "Daily"
    assert body["dataset"]["aggregation"] == {"totalCost": {"name": "Cost", "function": "Sum"}}
    assert [g["name"] for g in body["dataset"]["grouping"]] == ["ServiceName", "ChargeType"]


def test_throttle_wait_takes_the_longest_cost_management_header():
    assert throttle_wait({"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "12", "Retry-After": "5"}) == 12
    assert throttle_wait({"x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "3"}) == 3
    assert throttle_wait({"Content-Type": "application/json"}) is None


def test_sovereign_clouds_and_overrides():
    assert endpoints(account()) == ("https://management.azure.com", "login.microsoftonline.com")
    assert endpoints(account(cloud="china")) == ("https://management.chinacloudapi.cn", "login.chinacloudapi.cn")
    assert endpoints(account(cloud="usgovernment")) == ("https://management.usgovcloudapi.net", "login.microsoftonline.us")
    assert endpoints(account(endpoint="https://127.0.0.1:8443/", authority_host="https://127.0.0.1:8443"))[0] == "https://127.0.0.1:8443"


def test_next_link_must_stay_on_the_management_endpoint():
    _check_next_link("https://management.azure.com/subscriptions/x/providers/Microsoft.CostManagement/query?$skiptoken=a", "https://management.azure.com")
    with pytest.raises(ProviderError) as raised:
        _check_next_link("https://evil.example/collect?$skiptoken=a", "https://management.azure.com")
    assert raised.value.diagnosis.code == "azure.unexpected_next_link"


def test_pricing_currency_only_where_the_billing_currency_proves_it():
    """A USD bill is priced in USD under every agreement; a EUR bill may be priced in USD (MCA) or EUR (EA)."""
    actual = pages("ActualCost", ACTUAL)
    rows = rows_to_table(normalize(actual, pages("AmortizedCost", AMORTIZED), account(), "2026-11", INGESTED)).to_pylist()
    usd = [r for r in rows if r["BillingCurrency"] == "USD"]
    assert usd and all(r["PricingCurrency"] == "USD" and r["PricingCurrencyEffectiveCost"] == r["EffectiveCost"] for r in usd)
    eur = [r for r in rows if r["BillingCurrency"] == "EUR"]
    assert eur and all(r["PricingCurrency"] is None and r["PricingCurrencyEffectiveCost"] is None for r in eur)
