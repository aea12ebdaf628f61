"""Aggregated billing export lines -> cost_daily rows (FOCUS).

Mapping decisions (docs/gcp.md has the data dictionary):
- A 'charge' line is the export's `cost` for its group: ChargeCategory from cost_type (regular ->
  Usage, tax -> Tax, adjustment -> Adjustment with ChargeClass 'Correction', rounding_error ->
  Adjustment). BilledCost = EffectiveCost = cost; ListCost = cost_at_list; ContractedCost =
  cost_at_effective_price_default (negotiated prices, before commitment pricing); ListUnitPrice and
  ContractedUnitPrice = the tier's price.list_price and price.effective_price_default where the price is
  per one pricing unit (price.unit = usage.pricing_unit, pricing_unit_quantity 1), else NULL.
- A 'credit' line is the sum of one credit type and name for the same group, as its own Credit charge:
  BilledCost = EffectiveCost = the (negative) credit amount, ListCost = ContractedCost = 0. So the
  sum of BilledCost is the export's net cost (cost + credits), and credits are never netted twice.
- The billing period is the invoice month, not the usage month: late usage lands where Google bills it.
- A committed use discount's credit (type COMMITTED_USAGE_DISCOUNT: resource-based, Usage;
  COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE: spend-based, Spend) carries the commitment columns, its credit id
  as CommitmentDiscountId. CommitmentDiscountStatus stays NULL: FOCUS sets it on Usage rows only.
- ResourceType is the resource collection of the detailed export's resource.global_name
  (//compute.googleapis.com/projects/p/zones/z/instances/vm -> compute.googleapis.com/Instance, the
  way Cloud Asset Inventory names resource types).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from finops_pipeline.config import Account
from finops_pipeline.defs.gcp import PROVIDER
from finops_pipeline.defs.gcp.regions import region_name
from finops_pipeline.schema import day_bounds, month_bounds, service_category, service_subcategory, tags_json, to_decimal

SOURCE = "bigquery_export"
ZERO = Decimal(0)
# The version of what unified_row puts in a row. The day cache keeps rows between refreshes and is
# dropped when its version differs, so a new mapping reaches months whose export no longer changes.
MAPPING_VERSION = "4"  # 4: units in FOCUS UnitFormat. 3: BigQuery Databases, no quantities on Tax. 2: ResourceType, zones, commitment credits, prices

# Committed use discount credit types -> FOCUS CommitmentDiscountCategory.
CUD_CATEGORIES = {"COMMITTED_USAGE_DISCOUNT": "Usage", "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE": "Spend"}
CUD_TYPE = "Committed Use Discount"
# Path segments of a global name that locate a resource rather than name its kind.
_LOCATORS = {"projects", "locations", "regions", "zones", "project_commitments"}

CHARGE_CATEGORIES = {
    "regular": ("Usage", None),
    "tax": ("Tax", None),
    "adjustment": ("Adjustment", "Correction"),
    "rounding_error": ("Adjustment", None),
}


def _labels(labels_json: str | None) -> dict[str, str] | None:
    """TO_JSON_STRING(labels): [{"key": "team", "value": "data"}, ...] -> {"team": "data"}."""
    if not labels_json:
        return None
    return {item["key"]: item.get("value") for item in json.loads(labels_json) if item.get("key")}


def _singular(collection: str) -> str:
    for plural, single in (("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"), ("ies", "y")):
        if collection.endswith(plural):
            return collection[: -len(plural)] + single
    return collection[:-1] if collection.endswith("s") and not collection.endswith("ss") else collection


def resource_type(global_name: str | None) -> str | None:
    """`//<service>.googleapis.com/<path>` -> '<service>.googleapis.com/<Kind>' (the last collection of the
    path, singular); the service host alone when the path names no collection; NULL without a name."""
    if not global_name:
        return None
    if not global_name.startswith("//"):
        return "Resource"  # a name that is not a resource URL still names a resource: FOCUS wants a type
    host, _, path = global_name[2:].partition("/")
    parts = [p for p in path.split("/") if p]
    kind, i = None, 0
    while i + 1 < len(parts):
        if parts[i] not in _LOCATORS:
            kind = parts[i]
        i += 2
    if kind is None:
        return host or "Resource"
    name = _singular(kind)
    return f"{host}/{name[:1].upper()}{name[1:]}"


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value)


# What a line's group is not: its measures and the credit's own fields.
_NOT_GRAIN = frozenset({"line", "credit_type", "credit_name", "credit_id", "amount", "list_amount", "contracted_amount",
                        "usage_amount", "pricing_amount", "currency_conversion_rate", "last_export_time"})


def unit_prices(line: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(ListUnitPrice, ContractedUnitPrice) of a usage line: its tier's prices when they are per one unit of
    the line's PricingUnit, so that price x PricingQuantity is the cost (FOCUS); else (None, None)."""
    same_unit = line.get("price_unit") and line.get("price_unit") == line.get("pricing_unit")
    per_one = line.get("price_unit_quantity") in (None, "") or to_decimal(line["price_unit_quantity"]) == 1
    if not (same_unit and per_one):
        return None, None
    return _decimal_or_none(line.get("list_price") or None), _decimal_or_none(line.get("contracted_price") or None)


def _group(line: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in line.items() if k not in _NOT_GRAIN))


def pricing_category(line: Mapping[str, Any], category: str, committed: bool) -> str | None:
    """FOCUS PricingCategory of a charge line: Committed where a committed use discount applies to its group
    (or it is a commitment's fee), Dynamic for Spot/preemptible SKUs, else Standard; NULL where nothing is
    priced (credits, tax, adjustments)."""
    if category != "Usage":
        return None
    description = (line["sku_description"] or "").lower()
    if committed or description.startswith("commitment"):
        return "Committed"
    if "spot" in description or "preemptible" in description:
        return "Dynamic"
    return "Standard"


def unified_row(
    line: Mapping[str, Any], account: Account, billing_period: str, ingested_at: datetime, estimated: bool,
    committed: bool = False,
) -> dict[str, Any]:
    """One aggregated line of `export_query.charges_sql` -> one cost_daily row. `committed`: a committed use
    discount credit applies to the line's group (the export shows the discount as a credit on the usage)."""
    period_start, period_end = month_bounds(billing_period)
    charge_start, charge_end = day_bounds(line["usage_day"])
    amount = to_decimal(line["amount"], field="amount")
    cost_type = line["cost_type"] or "regular"
    cud_category = CUD_CATEGORIES.get(line.get("credit_type") or "") if line["line"] == "credit" else None
    if line["line"] == "credit":
        category, charge_class = "Credit", None
        list_cost = contracted_cost = ZERO
        description = line["credit_name"] or line["credit_type"]
        source_type = line["credit_type"]
        pricing_quantity = consumed_quantity = None
        pricing_unit = consumed_unit = None
    else:
        category, charge_class = CHARGE_CATEGORIES.get(cost_type, ("Adjustment", None))
        contracted_cost = amount if line.get("contracted_amount") is None else to_decimal(line["contracted_amount"], field="contracted_amount")
        list_cost = amount if line.get("list_amount") is None else to_decimal(line["list_amount"], field="list_amount")
        description = line["sku_description"]
        source_type = cost_type
        pricing_quantity, consumed_quantity = _decimal_or_none(line["pricing_amount"]), _decimal_or_none(line["usage_amount"])
        pricing_unit, consumed_unit = line["pricing_unit"], line["usage_unit"]
        if category != "Usage":  # FOCUS 1.2: ConsumedQuantity is null off Usage rows, PricingQuantity on Tax rows
            consumed_quantity = consumed_unit = None
        if category == "Tax":
            pricing_quantity = pricing_unit = None
    service = line["service_name"] or "Unknown"
    rate = line["currency_conversion_rate"]
    list_price, contracted_price = unit_prices(line) if category == "Usage" else (None, None)
    usd = None if rate is None or to_decimal(rate) == 0 else to_decimal(rate, field="currency_conversion_rate")
    return {
        "BilledCost": amount,
        "EffectiveCost": amount,
        "ListCost": list_cost,
        "ContractedCost": contracted_cost,
        "BillingCurrency": line["currency"],
        "BillingPeriodStart": period_start,
        "BillingPeriodEnd": period_end,
        "ChargePeriodStart": charge_start,
        "ChargePeriodEnd": charge_end,
        "ChargeCategory": category,
        "ChargeClass": charge_class,
        "ChargeDescription": description,
        "BillingAccountId": account.settings["billing_account_id"],
        "BillingAccountName": account.name,
        "SubAccountId": line["project_id"],
        "SubAccountName": line["project_name"],
        "InvoiceIssuerName": "Google Cloud",
        "ProviderName": PROVIDER.focus_name,
        "PublisherName": PROVIDER.focus_name,
        "ServiceName": service,
        "ServiceCategory": "Other" if category == "Tax" else service_category(service),
        "RegionId": line["region"],
        "RegionName": region_name(line["region"]),
        "ChargeFrequency": "Recurring" if "commitment" in (description or "").lower() else "Usage-Based",
        "ServiceSubcategory": service_subcategory(service),
        "BillingAccountType": "Billing Account",
        "SubAccountType": "Project" if line["project_id"] else None,
        # Google prices in USD and bills in the account's currency at currency_conversion_rate.
        # Tax is charged in the billing currency, so that is its pricing currency too.
        "PricingCurrency": line["currency"] if category == "Tax" else ("USD" if rate is not None else None),
        "PricingCurrencyEffectiveCost": (None if rate is None or category == "Tax" or to_decimal(rate) == 0
                                         else amount / to_decimal(rate, field="currency_conversion_rate")),
        "ResourceId": line.get("resource_global_name"),
        "ResourceName": line.get("resource_name"),
        "ResourceType": resource_type(line.get("resource_global_name")),
        "AvailabilityZone": line.get("zone") or None,
        "CommitmentDiscountId": (line.get("credit_id") or line["credit_name"] or line["credit_type"]) if cud_category else None,
        "CommitmentDiscountName": line["credit_name"] if cud_category else None,
        "CommitmentDiscountCategory": cud_category,
        "CommitmentDiscountType": CUD_TYPE if cud_category else None,
        "PricingCategory": pricing_category(line, category, committed),
        # Google has no price id; like its own FOCUS view, the SKU and the tier's start name the price.
        "SkuPriceId": (f"{line['sku_id']}/{format(to_decimal(line['price_tier_start']).normalize(), 'f')}"
                       if category == "Usage" and line["sku_id"] and line.get("price_tier_start") not in (None, "") else None),
        "ListUnitPrice": list_price,
        "ContractedUnitPrice": contracted_price,
        "PricingCurrencyListUnitPrice": None if list_price is None or usd is None else list_price / usd,
        "PricingCurrencyContractedUnitPrice": None if contracted_price is None or usd is None else contracted_price / usd,
        "SkuId": line["sku_id"],
        "SkuMeter": line["sku_description"] if line["sku_id"] else None,  # what the SKU meters, in the export's words
        "PricingQuantity": pricing_quantity,
        "PricingUnit": pricing_unit,
        "ConsumedQuantity": consumed_quantity,
        "ConsumedUnit": consumed_unit,
        "Tags": tags_json(_labels(line["labels_json"])),
        "x_Provider": "gcp",
        "x_Source": SOURCE,
        "x_AccountKey": account.key,
        "x_Estimated": estimated,
        "x_SourceChargeType": source_type,
        "x_CurrencyConversionRate": None if rate is None else to_decimal(rate, field="currency_conversion_rate"),
        "x_SourceUpdatedAt": line["last_export_time"],
        "x_IngestedAt": ingested_at,
    }


def unified_rows(
    lines: Iterable[Mapping[str, Any]], account: Account, billing_period: str, ingested_at: datetime, estimated_from: date
) -> dict[date, list[dict[str, Any]]]:
    """Lines -> cost_daily rows per partition day. Days on or after `estimated_from` may still change."""
    lines = list(lines)
    committed = {_group(line) for line in lines if line["line"] == "credit" and (line.get("credit_type") or "") in CUD_CATEGORIES}
    by_day: dict[date, list[dict[str, Any]]] = {}
    for line in lines:
        day = line["partition_day"]
        by_day.setdefault(day, []).append(unified_row(line, account, billing_period, ingested_at, day >= estimated_from,
                                                      committed=line["line"] == "charge" and _group(line) in committed))
    return by_day
