"""Azure cost details (the ActualCost and AmortizedCost exports) -> FOCUS-named files for the shared reader.

Cost details are not FOCUS. Following Microsoft's own conversion of cost details to FOCUS, BilledCost is
the ActualCost export's CostInBillingCurrency and EffectiveCost the AmortizedCost export's. The two
exports have no common line id, so each file is projected on its own: an ActualCost line carries its
cost as BilledCost and 0 as EffectiveCost, an AmortizedCost line the reverse (plus ListCost from
PayGCostInBillingCurrency, ContractedCost, and the quantities, which would otherwise count twice).
The shared reader's daily rollup then merges the two sides wherever they share day, subscription,
service, region, resource, charge type and tags, and keeps apart what only one side has (a
reservation bought in ActualCost, its amortized use in AmortizedCost): neither total moves.

EA and MCA spell the columns differently (CostInBillingCurrency / costInBillingCurrency, Date / date,
BillingCurrencyCode / billingCurrency ...): columns are found case-insensitively from a list of
names. Every value is written as text, so the shared reader applies its one set of casts and checks,
and its errors name the original blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from finops_pipeline import focus
from finops_pipeline.defs.azure.cost_management.pull import CHARGE_TYPES
from finops_pipeline.defs.azure.regions import region_name_sql, resource_type_sql
from finops_pipeline.money import sum_by_currency
from finops_pipeline.schema import lookup_sql, service_category_sql, service_subcategory_sql, sql_literal

MONEY = focus.MONEY_SQL
# FOCUS column -> the cost details columns that fill it, first found wins (compared case-insensitively).
NAMES = {
    "cost": ("costInBillingCurrency", "CostInBillingCurrency", "PreTaxCost", "Cost"),
    "payg": ("paygCostInBillingCurrency", "PayGCostInBillingCurrency"),
    "date": ("date", "UsageDate"),
    "currency": ("billingCurrency", "billingCurrencyCode", "BillingCurrencyCode", "Currency"),
    "pricingCurrency": ("pricingCurrency", "pricingCurrencyCode", "PricingCurrencyCode"),
    "BillingAccountId": ("billingAccountId", "billingProfileId", "subscriptionId", "SubscriptionGuid"),
    "BillingAccountName": ("billingAccountName", "billingProfileName"),
    "subscription": ("subscriptionId", "SubscriptionGuid"),
    "SubAccountName": ("subscriptionName",),
    "ServiceName": ("meterCategory", "consumedService", "serviceFamily"),
    "region": ("resourceLocation", "location"),
    "ResourceId": ("resourceId", "instanceName", "InstanceId"),
    "ResourceName": ("resourceName",),
    "SkuId": ("productId", "productOrderId"),
    "SkuMeter": ("meterName",),
    "ChargeDescription": ("productName", "product"),
    "quantity": ("quantity", "consumedQuantity"),
    "unit": ("unitOfMeasure",),
    "chargeType": ("chargeType",),
    "frequency": ("frequency",),
    "pricingModel": ("pricingModel",),
    "benefitId": ("benefitId", "reservationId"),
    "benefitName": ("benefitName", "reservationName"),
    "tags": ("tags",),
}
# chargeType -> CommitmentDiscountStatus of a line with a benefit (a purchase has none)
STATUSES = {"usage": "Used", "unusedreservation": "Unused", "unusedsavingsplan": "Unused"}
REQUIRED = ("cost", "date", "currency", "ServiceName")
FIX = ("Point the account at Cost Management exports of the ActualCost and AmortizedCost (cost details) datasets with all "
       "columns, or use dataset: focus with a FocusCost export; the month keeps its last good data.")
BAD_VALUE_FIX = ("Cost Management writes only amounts and dates here: the file was changed after the export wrote it. Restore the "
                 "original (or wait for the export's next run); the month keeps its last good data.")


@dataclass(frozen=True)
class Converted:
    file: focus.FocusFile  # the FOCUS-named Parquet, keyed by the original blob
    totals: dict[str, Decimal]  # the raw cost per currency, straight from the original file
    rows: int


def _find(types: dict[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {name.lower(): name for name in types}
    return next((lowered[n.lower()] for n in names if n.lower() in lowered), None)


def _text(raw: str | None) -> str:
    return "CAST(NULL AS VARCHAR)" if raw is None else f"NULLIF(trim(CAST({focus._q(raw)} AS VARCHAR)), '')"


def _date(raw: str, kind: str) -> str:
    if not kind.upper().startswith("VARCHAR"):
        return f"TRY_CAST({focus._q(raw)} AS TIMESTAMP)"
    text = _text(raw)
    return (f"coalesce(try_strptime({text}, '%m/%d/%Y'), try_strptime({text}, '%Y-%m-%d'), "
            f"TRY_CAST({text} AS TIMESTAMP))")


def _case(raw: str | None, mapping: dict[str, str], default: str | None) -> str:
    if raw is None:
        return "CAST(NULL AS VARCHAR)" if default is None else sql_literal(default)
    return lookup_sql(f"lower(replace({_text(raw)}, ' ', ''))", mapping, sql_literal(default) if default else "NULL")


def convert(connection: duckdb.DuckDBPyConnection, file: focus.FocusFile, amortized: bool, target: Path) -> Converted:
    """One cost details file -> a FOCUS-named Parquet at `target` (every value text), and its raw totals."""
    types = focus.read_types(connection, file)
    col = {name: _find(types, names) for name, names in NAMES.items()}
    missing = [NAMES[name][0] for name in REQUIRED if col[name] is None]
    if missing:
        raise focus.FocusFileError(file.key, f"is not a cost details file: it lacks the column(s) {', '.join(missing)}", FIX, column=missing[0])
    source = focus._source(file.kind, [str(file.path)])
    cost, date, currency = col["cost"], col["date"], col["currency"]
    amount = f"TRY_CAST({_text(cost)} AS {MONEY})"
    day = _date(date, types[date])
    # Values the shared reader would refuse under a FOCUS name: named here by their own column.
    checks = [(cost, f"{_text(cost)} IS NOT NULL AND {amount} IS NULL", "is not an amount DECIMAL(38,10) holds"),
              (date, f"{day} IS NULL", "is not a date")]
    selects = ", ".join(f"count(*) FILTER (WHERE {bad}), min(CAST({focus._q(column)} AS VARCHAR)) FILTER (WHERE {bad})"
                        for column, bad, _ in checks)
    try:
        found = connection.execute(f"SELECT {selects} FROM {source}").fetchone()
        sums = connection.execute(f"SELECT CAST({focus._q(currency)} AS VARCHAR), count(*), sum({amount}) FROM {source} GROUP BY 1").fetchall()
    except duckdb.Error as exc:
        message = str(exc).replace(str(file.path), file.key).splitlines()[0]
        raise focus.FocusFileError(file.key, f"is corrupt, truncated or not {file.kind.upper()} ({message})", focus._wrong_file(file.key, "").fix) from None
    for i, (column, _, problem) in enumerate(checks):
        if found[2 * i]:
            raise focus.FocusFileError(file.key, f"holds a value in {column} that {problem}: {found[2 * i]} row(s), e.g. {found[2 * i + 1]!r}",
                                       BAD_VALUE_FIX, column=column, sample=str(found[2 * i + 1]))
    zero = "'0'"
    text_amount = f"CAST({amount} AS VARCHAR)"
    quantity = _text(col["quantity"])
    charge_types = {k: v[0] for k, v in CHARGE_TYPES.items()}
    charge_classes = {k: v[1] for k, v in CHARGE_TYPES.items() if v[1]}
    tags = _text(col["tags"])
    tags_json = f"CASE WHEN {tags} IS NULL THEN NULL WHEN starts_with({tags}, '{{') THEN {tags} ELSE '{{' || {tags} || '}}' END"
    subscription = _text(col["subscription"])
    region = f"lower(replace({_text(col['region'])}, ' ', ''))"
    resource = f"lower({_text(col['ResourceId'])})"
    # BillingAccountId is the first of billingAccountId, billingProfileId, subscriptionId the file has: its type says which.
    account_column = (col["BillingAccountId"] or "").lower()
    account_type = {"billingaccountid": "Billing Account", "billingprofileid": "Billing Profile"}.get(account_column, "Subscription")
    billing_currency = _text(currency)
    benefit = _text(col["benefitId"])
    # MCA names its price list's currency (pricingCurrency); EA prices in the billing currency and has no such column.
    pricing_currency = f"coalesce({_text(col['pricingCurrency'])}, {billing_currency})"
    parts = {
        "BilledCost": zero if amortized else text_amount,
        "EffectiveCost": text_amount if amortized else zero,
        "ListCost": (f"coalesce(CAST(TRY_CAST({_text(col['payg'])} AS {MONEY}) AS VARCHAR), {text_amount})" if col["payg"] else text_amount)
        if amortized else zero,
        "ContractedCost": text_amount if amortized else zero,
        "PricingQuantity": quantity if amortized else "CAST(NULL AS VARCHAR)",
        "ConsumedQuantity": quantity if amortized else "CAST(NULL AS VARCHAR)",
        "PricingUnit": _text(col["unit"]),
        "ConsumedUnit": _text(col["unit"]),
        "BillingCurrency": billing_currency,
        "PricingCurrency": pricing_currency,
        # In the pricing currency only where it is the billing currency: converting back through
        # exchangeRatePricingToBilling would not be exact, so another pricing currency leaves it NULL.
        "PricingCurrencyEffectiveCost": f"CASE WHEN {pricing_currency} = {billing_currency} THEN {text_amount if amortized else zero} END",
        "ChargePeriodStart": f"strftime({day}, '%Y-%m-%dT00:00:00Z')",
        "ChargeCategory": _case(col["chargeType"], charge_types, "Usage"),
        "ChargeClass": _case(col["chargeType"], charge_classes, None),
        "ChargeFrequency": _case(col["frequency"], {"usagebased": "Usage-Based", "onetime": "One-Time", "recurring": "Recurring"}, None),
        "ChargeDescription": _text(col["ChargeDescription"]),
        "BillingAccountId": _text(col["BillingAccountId"]),
        "BillingAccountName": _text(col["BillingAccountName"]),
        "BillingAccountType": f"CASE WHEN {_text(col['BillingAccountId'])} IS NULL THEN NULL ELSE {sql_literal(account_type)} END",
        "SubAccountId": f"CASE WHEN {subscription} IS NULL THEN NULL ELSE '/subscriptions/' || lower({subscription}) END",
        "SubAccountName": _text(col["SubAccountName"]),
        "SubAccountType": f"CASE WHEN {subscription} IS NULL THEN NULL ELSE 'Subscription' END",
        "ServiceName": _text(col["ServiceName"]),
        # meterSubCategory is a meter family ("Dv5 Series"), not a FOCUS ServiceSubcategory: from the service, as for
        # the other sources, and "Other (<ServiceCategory>)" where the mapping has none (FOCUS: never NULL).
        "ServiceSubcategory": f"coalesce({service_subcategory_sql(_text(col['ServiceName']))}, "
                              f"'Other (' || {service_category_sql(_text(col['ServiceName']))} || ')')",
        "RegionId": region,
        "RegionName": region_name_sql(region),
        "ResourceId": resource,
        "ResourceType": resource_type_sql(resource),
        "ResourceName": _text(col["ResourceName"]),
        "SkuId": _text(col["SkuId"]),
        "SkuMeter": _text(col["SkuMeter"]),
        "PricingCategory": _case(col["pricingModel"], {"ondemand": "Standard", "reservation": "Committed", "savingsplan": "Committed",
                                                      "spot": "Dynamic"}, None),
        "CommitmentDiscountId": _text(col["benefitId"]),
        # FocusCost's values for a benefit: a reservation is Usage-based, a savings plan Spend-based (pricingModel says which)
        "CommitmentDiscountCategory": f"CASE WHEN {benefit} IS NOT NULL THEN "
                                      f"{_case(col['pricingModel'], {'reservation': 'Usage', 'savingsplan': 'Spend'}, None)} END",
        "CommitmentDiscountType": f"CASE WHEN {benefit} IS NOT NULL THEN "
                                  f"{_case(col['pricingModel'], {'reservation': 'Reservation', 'savingsplan': 'Savings Plan'}, None)} END",
        "CommitmentDiscountStatus": f"CASE WHEN {benefit} IS NOT NULL THEN {_case(col['chargeType'], STATUSES, None)} END",
        "CommitmentDiscountName": _text(col["benefitName"]),
        "Tags": f"CASE WHEN json_valid({tags_json}) THEN {tags_json} END",
        "x_SourceChargeType": _text(col["chargeType"]),
    }
    select = ", ".join(f"CAST({expression} AS VARCHAR) AS {focus._q(name)}" for name, expression in parts.items())
    connection.execute(f"COPY (SELECT {select} FROM {source}) TO {sql_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)")
    totals = sum_by_currency((code, total) for code, _, total in sums)
    rows = sum(count for _, count, _ in sums)
    return Converted(focus.FocusFile(file.key, target), totals, rows)
