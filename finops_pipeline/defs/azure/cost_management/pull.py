"""Azure Cost Management Query API -> cost_daily.

Per subscription and billing period, two queries at subscription scope, Daily, Custom time period
covering the calendar month: ActualCost (what the invoice charges: BilledCost) and AmortizedCost
(reservation and savings plan purchases spread over the usage they cover: EffectiveCost). Both are
grouped by ServiceName and ChargeType, the two dimensions the API allows that fill FOCUS's
mandatory columns (ServiceName/ServiceCategory, and ChargeCategory, so a reservation purchase is a
Purchase, not Usage); see docs/azure.md. The SDK does not follow `nextLink`: we POST the same body
to it. Amounts are read from the raw JSON as Decimals, never through float.

An answer must prove it is one before it may replace a month: a JSON object with
`properties.columns` and `properties.rows`, every row as long as the columns, the columns the
normalization needs, days inside the month asked for, amounts that are numbers, and a nextLink
chain that never repeats a link. Anything else (`{}`, an empty body, an HTML page from a proxy) is
`azure.malformed_answer` and the month keeps its last good rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from finops_pipeline.config import Account
from finops_pipeline.defs.azure import PROVIDER
from finops_pipeline.defs.azure.cost_management.client import QuotaMeter, cost_management_client, credential, endpoints
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError, malformed_answer
from finops_pipeline.http_budget import Deadline, secrets_kept_out_of_logs
from finops_pipeline.money import sum_by_currency
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import SchemaError, day_bounds, month_bounds, rows_to_table, service_category, service_subcategory, to_decimal

if TYPE_CHECKING:  # the Azure SDK is imported where a query runs: loading the definitions stays cheap
    from azure.mgmt.costmanagement import CostManagementClient
    from azure.mgmt.costmanagement.models import QueryDefinition

SOURCE = "cost_management"
TITLE = "Azure Cost Management"
GROUP_BY = ("ServiceName", "ChargeType")
COST_TYPES = ("ActualCost", "AmortizedCost")
COST_COLUMNS = ("Cost", "PreTaxCost", "totalCost", "CostUSD", "PreTaxCostUSD")
MAX_PAGES = 1000  # a runaway nextLink chain is a bug, not a bill
# Days after a month ends until its invoice is final; rows of a month still inside it are estimated.
INVOICE_CLOSE_DAYS = 5

# Cost Management ChargeType -> (FOCUS ChargeCategory, ChargeClass)
CHARGE_TYPES: dict[str, tuple[str, str | None]] = {
    "usage": ("Usage", None),
    "unusedreservation": ("Usage", None),
    "unusedsavingsplan": ("Usage", None),
    "purchase": ("Purchase", None),
    "refund": ("Purchase", "Correction"),
    "tax": ("Tax", None),
    "roundingadjustment": ("Adjustment", None),
    "adjustment": ("Adjustment", None),
    "credit": ("Credit", None),
}


@dataclass
class QueryPages:
    """The raw answer to one query: column names and the rows of every page, amounts as Decimal."""

    cost_type: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    pages: int = 0


def query_definition(cost_type: str, billing_period: str) -> QueryDefinition:
    from azure.mgmt.costmanagement.models import QueryAggregation, QueryDataset, QueryDefinition, QueryGrouping, QueryTimePeriod

    start, end = month_bounds(billing_period)
    return QueryDefinition(
        type=cost_type,
        timeframe="Custom",
        # 'to' is inclusive in Cost Management: the last second of the month.
        time_period=QueryTimePeriod(from_property=start, to=end - timedelta(seconds=1)),
        dataset=QueryDataset(
            granularity="Daily",
            aggregation={"totalCost": QueryAggregation(name="Cost", function="Sum")},
            grouping=[QueryGrouping(type="Dimension", name=name) for name in GROUP_BY],
        ),
    )


def _sample(response: Any) -> str:
    try:
        return f"HTTP {response.status_code}, {response.headers.get('content-type', 'no content type')}: {response.text()[:200]!r}"
    except Exception:  # noqa: BLE001 - a sample for the detail, never a reason to fail differently
        return f"HTTP {getattr(response, 'status_code', '?')}"


def _malformed(what: str, sample: str = "") -> ProviderError:
    return malformed_answer("azure", TITLE, what, sample)


def _parse(response: Any) -> dict[str, Any]:
    """The JSON body with every number as Decimal: Cost Management sends doubles, we keep their digits.

    Only a 200 with a JSON object whose `properties` hold `columns` and `rows` is a query answer.
    """
    if response.status_code != 200:
        raise _malformed(f"HTTP {response.status_code} instead of 200 with the query's rows", _sample(response))
    text = response.text()
    if not text or not text.strip():
        raise _malformed("an empty body instead of the query's columns and rows", _sample(response))
    try:
        document = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        raise _malformed("a body that is not JSON (an HTML page or garbage)", _sample(response)) from None
    properties = document.get("properties") if isinstance(document, dict) else None
    if not isinstance(properties, dict):
        raise _malformed("JSON without the query result's 'properties'", _sample(response))
    columns, rows = properties.get("columns"), properties.get("rows")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in columns):
        raise _malformed("a query result without its 'columns'", _sample(response))
    if not isinstance(rows, list):
        raise _malformed("a query result without its 'rows'", _sample(response))
    bad = next((r for r in rows if not isinstance(r, list) or len(r) != len(columns)), None)
    if bad is not None:
        raise _malformed(f"a row whose shape does not match the {len(columns)} columns", f"row {str(bad)[:150]}")
    next_link = properties.get("nextLink")
    if next_link is not None and not (isinstance(next_link, str)):
        raise _malformed("a nextLink that is not a URL", _sample(response))
    return document


def _check_next_link(next_link: str, endpoint: str) -> None:
    """Follow nextLink only on the management endpoint: the bearer token goes with it."""
    link, expected = urlsplit(next_link), urlsplit(endpoint)
    if (link.scheme, link.netloc.lower()) != (expected.scheme, expected.netloc.lower()):
        raise ProviderError(Diagnosis(
            "azure.unexpected_next_link", ERROR,
            "Cost Management returned a nextLink outside the management endpoint; the pipeline refused to send its token there.",
            "Check 'endpoint' and 'cloud' in the account settings; report the detail if they are right.",
            f"nextLink host {link.netloc!r}, endpoint host {expected.netloc!r}",
        ))


def fetch_query(client: CostManagementClient, scope: str, definition: QueryDefinition, endpoint: str) -> QueryPages:
    """Run one query and follow its nextLink chain by POSTing the same body."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        DecodeError,
        DeserializationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceNotModifiedError,
        map_error,
    )
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError, 304: ResourceNotModifiedError}
    result = QueryPages(str(getattr(definition.type, "value", definition.type)))
    answers: list[Any] = []  # what came back, for the detail when the SDK cannot read it
    try:
        response = client.query.usage(scope, definition, raw_response_hook=lambda r: answers.append(r.http_response),
                                      cls=lambda pipeline_response, _deserialized, _headers: pipeline_response.http_response)
    except (DecodeError, DeserializationError, ValueError) as exc:  # the SDK could not read the first page at all
        raise _malformed("a body that is not a query result (empty, not JSON, an HTML page)",
                         _sample(answers[-1]) if answers else "") from exc
    except HttpResponseError as exc:
        if exc.status_code == 200:  # a 200 the SDK could not deserialize
            raise _malformed("a body that is not a query result", _sample(exc.response)) from exc
        raise
    if response is None:
        raise _malformed("no answer body for the query")
    seen_links: set[str] = set()
    while True:
        result.pages += 1
        properties = _parse(response)["properties"]
        columns = [c["name"] for c in properties["columns"]]
        if result.columns and columns != result.columns:
            raise ProviderError(Diagnosis("azure.inconsistent_pages", ERROR, "Cost Management changed the columns between pages of one query.",
                                          "Run the refresh again; report the detail if it persists.", f"{result.columns} then {columns}"))
        result.columns = columns
        result.rows.extend(properties["rows"])
        next_link = properties.get("nextLink")
        if not next_link:
            return result
        if next_link in seen_links:
            raise _malformed("a nextLink chain that comes back to a page already read", f"after {result.pages} pages: {next_link[:200]}")
        seen_links.add(next_link)
        if result.pages >= MAX_PAGES:
            raise ProviderError(Diagnosis("azure.too_many_pages", ERROR, f"Cost Management returned more than {MAX_PAGES} pages for one month.",
                                          "Report the detail; the query is grouped by two dimensions and should be far smaller.", scope))
        _check_next_link(next_link, endpoint)
        response = client.send_request(HttpRequest("POST", next_link, json=definition.as_dict()))
        if response.status_code != 200:
            map_error(status_code=response.status_code, response=response, error_map=error_map)
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)


def _index(pages: QueryPages, billing_period: str) -> dict[str, int]:
    names = {name.lower(): i for i, name in enumerate(pages.columns)}
    cost = next((names[c.lower()] for c in COST_COLUMNS if c.lower() in names), None)
    missing = [n for n in ("UsageDate", "Currency", *GROUP_BY) if n.lower() not in names]
    if cost is None or missing:
        raise _malformed(f"the {pages.cost_type} rows for {billing_period} lack the columns the pipeline needs",
                         f"columns {pages.columns}, missing {missing or ['a cost column']}")
    return {"cost": cost, "day": names["usagedate"], "currency": names["currency"], **{n: names[n.lower()] for n in GROUP_BY}}


def _usage_day(value: Any, billing_period: str) -> date:
    """UsageDate is a number like 20261101 (or, in some API versions, an ISO string), inside the month asked for."""
    text = str(value)
    try:
        day = datetime.strptime(text, "%Y%m%d").date() if text.isdigit() else date.fromisoformat(text[:10])
    except ValueError:
        raise _malformed("a row whose UsageDate is not a date", f"UsageDate {text[:40]!r}") from None
    if day.strftime("%Y-%m") != billing_period:
        raise _malformed(f"a row for {day}, outside {billing_period} that was asked for", f"UsageDate {text[:40]!r}")
    return day


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise _malformed("a row whose cost is not a number", f"Cost {str(value)[:40]!r}")
    try:
        return to_decimal(value, field="Cost")
    except SchemaError:
        raise _malformed("a row whose cost is not a finite number", f"Cost {str(value)[:40]!r}") from None


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _malformed("a row without a currency", f"Currency {str(value)[:40]!r}")
    return value


Key = tuple[date, str, str, str]  # day, service, charge type, currency


def amounts_by_key(pages: QueryPages, billing_period: str) -> dict[Key, Decimal]:
    """Rows of one query -> {(day, service, charge type, currency): amount}, summed exactly."""
    if not pages.rows:
        return {}
    i = _index(pages, billing_period)
    return sum_by_currency(((_usage_day(row[i["day"]], billing_period), row[i["ServiceName"]] or "", row[i["ChargeType"]] or "",
                             _currency(row[i["currency"]])), _amount(row[i["cost"]])) for row in pages.rows)


def raw_totals(pages: QueryPages, billing_period: str) -> dict[str, Decimal]:
    """ActualCost summed per currency straight from the rows (the reconciliation figure)."""
    if not pages.rows:
        return {}
    i = _index(pages, billing_period)
    return sum_by_currency((_currency(row[i["currency"]]), _amount(row[i["cost"]])) for row in pages.rows)


def charge_category(charge_type: str) -> tuple[str, str | None]:
    return CHARGE_TYPES.get(charge_type.replace(" ", "").lower(), ("Usage", None))


def normalize(actual: QueryPages, amortized: QueryPages, account: Account, billing_period: str, ingested_at: datetime) -> list[dict[str, Any]]:
    """Join ActualCost and AmortizedCost on (day, service, charge type, currency) into cost_daily rows.

    A key in only one of them is real (a reservation purchase has no amortized row, unused
    reservation no actual one): the missing side is 0, never dropped.
    """
    period_start, period_end = month_bounds(billing_period)
    billed = amounts_by_key(actual, billing_period)
    effective = amounts_by_key(amortized, billing_period)
    estimated = ingested_at < period_end + timedelta(days=INVOICE_CLOSE_DAYS)
    subscription = account.settings["subscription_id"]
    rows = []
    for key in sorted(set(billed) | set(effective)):
        day, service, charge_type, currency = key
        charge_start, charge_end = day_bounds(day)
        category, charge_class = charge_category(charge_type)
        cost = billed.get(key, Decimal(0))
        rows.append({
            "BilledCost": cost,
            "EffectiveCost": effective.get(key, Decimal(0)),
            # The Query API has no list or contracted price: both are the billed cost (see docs/azure.md).
            "ListCost": cost,
            "ContractedCost": cost,
            "BillingCurrency": currency,
            # The Query API names the billing currency only. Every agreement prices either in USD (MCA, MPA)
            # or in its billing currency (EA, pay-as-you-go), so a USD bill is priced in USD; any other
            # bill may be priced in USD or not, and the pricing currency stays unknown (docs/azure.md).
            "PricingCurrency": currency if currency == "USD" else None,
            "PricingCurrencyEffectiveCost": effective.get(key, Decimal(0)) if currency == "USD" else None,
            "BillingPeriodStart": period_start,
            "BillingPeriodEnd": period_end,
            "ChargePeriodStart": charge_start,
            "ChargePeriodEnd": charge_end,
            "ChargeCategory": category,
            "ChargeClass": charge_class,
            # The Query API has no description at this grain: the service and charge type say what it is.
            "ChargeDescription": f"{service or 'Unassigned'} ({charge_type or 'Usage'})",
            "ChargeFrequency": "One-Time" if category == "Purchase" else "Usage-Based",
            "ServiceSubcategory": service_subcategory(service),
            "BillingAccountId": subscription,
            "BillingAccountName": account.name,
            # What the ids are at this scope: the subscription (its EA or MCA billing account is not visible).
            "BillingAccountType": "Subscription",
            "SubAccountId": subscription,
            "SubAccountName": account.name,
            "SubAccountType": "Subscription",
            "InvoiceIssuerName": "Microsoft",
            "ProviderName": PROVIDER.focus_name,
            "PublisherName": PROVIDER.focus_name,
            "ServiceName": service or "Unassigned",
            "ServiceCategory": service_category(service),
            "x_Provider": "azure",
            "x_Source": SOURCE,
            "x_AccountKey": account.key,
            "x_Estimated": estimated,
            "x_SourceChargeType": charge_type or None,
            "x_IngestedAt": ingested_at,
        })
    return rows


def _in_future(billing_period: str, now: datetime) -> bool:
    return month_bounds(billing_period)[0] > now


def pull_cost_management(account: Account, billing_period: str) -> Pull:
    now = datetime.now(timezone.utc)
    meter = QuotaMeter()
    if _in_future(billing_period, now):  # nothing to ask for: spend no quota
        return Pull(source_totals={}, batches=rows_to_table([]), api_calls=0,
                    metadata={"queries": 0, **meter.as_metadata(), "note": "billing period has not started"})
    endpoint, _ = endpoints(account)
    scope = f"/subscriptions/{account.settings['subscription_id']}"
    results = {}
    deadline = Deadline.for_account(account)
    secret = account.env("client_secret_env")
    # azure-identity logs a failed sign-in with what the server said, which may repeat the secret.
    with secrets_kept_out_of_logs([secret] if secret else []), credential(account, deadline) as token_credential, \
            cost_management_client(account, meter, token_credential, deadline) as client:
        for cost_type in COST_TYPES:
            results[cost_type] = fetch_query(client, scope, query_definition(cost_type, billing_period), endpoint)
    actual, amortized = results["ActualCost"], results["AmortizedCost"]
    rows = normalize(actual, amortized, account, billing_period, now)
    return Pull(
        source_totals=raw_totals(actual, billing_period),
        batches=rows_to_table(rows),
        api_calls=meter.requests,
        metadata={
            "queries": len(COST_TYPES),
            "pages": {cost_type: pages.pages for cost_type, pages in results.items()},
            **meter.as_metadata(),
            "grouping": list(GROUP_BY),
            "scope": scope,
            "effective_cost_totals": {c: str(v) for c, v in sorted(_totals(amounts_by_key(amortized, billing_period)).items())},
        },
    )


def _totals(amounts: dict[Key, Decimal]) -> dict[str, Decimal]:
    return sum_by_currency((currency, amount) for (_, _, _, currency), amount in amounts.items())
