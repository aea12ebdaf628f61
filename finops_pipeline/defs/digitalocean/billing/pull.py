"""DigitalOcean billing insights -> cost_daily.

Billing insights (`GET /v2/billing/{account_urn}/insights/{start}/{end}`) give one data point per
day, region, SKU and invoice item: the day's change in the nightly invoice items, in USD. Ranges are
at most 31 days, pages at most 200 points. DigitalOcean warns that these daily figures need not add
up to the month's invoice, so each pull also reads the invoice figures (invoices.py) and the
`invoice_matches_daily` check reports the difference instead of hiding it.

An answer must prove it is one before it may replace a month: every insights page is a JSON object
with a `data_points` list and integer `total_items` / `total_pages`, the points of a range add up
to its total_items, every point has a day inside the range and an amount. Anything else (`{}`,
garbage, paging that does not add up) is `digitalocean.malformed_answer` and the month keeps its
last good data. An honest empty range (no points, total_items 0) is an empty month.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from finops_pipeline.config import Account
from finops_pipeline.defs.digitalocean import PROVIDER
from finops_pipeline.defs.digitalocean.billing import invoices
from finops_pipeline.defs.digitalocean.billing.client import CallStats, make_client
from finops_pipeline.defs.digitalocean.billing.invoices import answer, malformed
from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError
from finops_pipeline.http_budget import Deadline, secrets_kept_out_of_logs
from finops_pipeline.money import money_sum
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table, service_category, service_subcategory, to_decimal

SOURCE = "billing"
CURRENCY = "USD"  # billing insights and invoices are always in US dollars
PER_PAGE = 200  # the API's maximum
MAX_RANGE_DAYS = 31  # start and end date inclusive, "within 31 days"
MAX_PAGES = 10_000  # a guard against a server that never stops paging

# Invoice item descriptions -> DigitalOcean product names (first match wins; specific before broad).
_PRODUCTS: tuple[tuple[str, str], ...] = (
    ("gpu droplet", "GPU Droplets"),
    ("kubernetes", "Kubernetes"),
    ("doks", "Kubernetes"),
    ("load balancer", "Load Balancers"),
    ("database", "Managed Databases"),
    ("postgres", "Managed Databases"),
    ("mysql", "Managed Databases"),
    ("valkey", "Managed Databases"),
    ("redis", "Managed Databases"),
    ("mongodb", "Managed Databases"),
    ("kafka", "Managed Databases"),
    ("opensearch", "Managed Databases"),
    ("spaces cdn", "Spaces CDN"),
    ("spaces", "Spaces Object Storage"),
    ("volume", "Volumes Block Storage"),
    ("snapshot", "Snapshots"),
    ("backup", "Backups"),
    ("app platform", "App Platform"),
    ("container registry", "Container Registry"),
    ("functions", "Functions"),
    ("reserved ip", "Reserved IPs"),
    ("floating ip", "Reserved IPs"),
    ("bandwidth", "Bandwidth"),
    ("transfer", "Bandwidth"),
    ("monitoring", "Monitoring"),
    ("uptime", "Uptime"),
    ("genai", "GenAI Platform"),
    ("gradient", "GenAI Platform"),
    ("droplet", "Droplets"),
    ("tax", "Tax"),
)
OTHER_PRODUCT = "Other DigitalOcean services"

REGION_NAMES = {
    "nyc1": "New York 1", "nyc2": "New York 2", "nyc3": "New York 3",
    "sfo1": "San Francisco 1", "sfo2": "San Francisco 2", "sfo3": "San Francisco 3",
    "ams2": "Amsterdam 2", "ams3": "Amsterdam 3", "sgp1": "Singapore 1", "lon1": "London 1",
    "fra1": "Frankfurt 1", "tor1": "Toronto 1", "blr1": "Bangalore 1", "syd1": "Sydney 1", "atl1": "Atlanta 1",
}


def product_name(point: dict[str, Any]) -> str:
    """The product a data point belongs to: insights carry no product field, only the item's texts."""
    for text in (point.get("description"), point.get("group_description"), point.get("sku")):
        lowered = (text or "").lower()
        for fragment, product in _PRODUCTS:
            if fragment in lowered:
                return product
    return OTHER_PRODUCT


def charge_category(product: str, description: str | None, amount: Decimal) -> str:
    text = (description or "").lower()
    if product == "Tax":
        return "Tax"
    if amount < 0 and ("credit" in text or "promo" in text):
        return "Credit"
    if amount < 0 and "refund" in text:
        return "Adjustment"
    return "Usage"


def date_ranges(first: date, last: date, max_days: int = MAX_RANGE_DAYS) -> list[tuple[date, date]]:
    """Inclusive [start, end] ranges of at most `max_days` days covering first..last."""
    ranges = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=max_days - 1))
        ranges.append((start, end))
        start = end + timedelta(days=1)
    return ranges


def period_days(billing_period: str, today: date) -> tuple[date, date] | None:
    """The days of the month to read: all of a closed month, up to today for the open one, none in the future."""
    start, end = month_bounds(billing_period)
    first, last = start.date(), min(end.date() - timedelta(days=1), today)
    return (first, last) if first <= last else None


def not_found(body: Any) -> bool:
    """pydo returns a 404 as a body ({"id": "not_found", ...}) instead of raising."""
    return isinstance(body, dict) and body.get("id") == "not_found" and "message" in body


def team_of(client: Any) -> tuple[str, str | None]:
    """The team URN (do:team:<uuid>) and name of the token's team, from /v2/account."""
    body = answer(client.account.get, "the account")
    if not isinstance(body.get("account"), dict):
        raise malformed("GET /v2/account without 'account'", repr(body)[:200])
    team = body["account"].get("team") or {}
    if not team.get("uuid"):
        raise ProviderError(Diagnosis(
            "digitalocean.no_team", ERROR,
            "DigitalOcean did not report a team for this token, so its billing account is unknown.",
            "Generate the token inside the team whose billing you want (Team switcher -> API -> Tokens) and update it.",
            "GET /v2/account returned no account.team.uuid",
        ))
    return f"do:team:{team['uuid']}", team.get("name") or None


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise malformed(f"billing insights without a whole '{name}'", {k: body.get(k) for k in ("total_items", "total_pages", "current_page")})
    return value


def _check_point(point: Any, start: date, end: date) -> None:
    if not isinstance(point, dict):
        raise malformed("a billing insights data point that is not an object", repr(point)[:200])
    try:
        day = date.fromisoformat(str(point.get("start_date")))
    except ValueError:
        raise malformed("a data point without a start_date", repr(point)[:200]) from None
    if not start <= day <= end:
        raise malformed(f"a data point for {day}, outside {start}..{end} that was asked for", repr(point)[:200])


def fetch_insights(client: Any, account_urn: str, first: date, last: date) -> Iterator[dict[str, Any]]:
    """Every page of billing insights for first..last (inclusive), range by range, checked to add up."""
    for start, end in date_ranges(first, last, MAX_RANGE_DAYS):
        page = 1
        received = 0
        while True:
            body = answer(client.billing_insights.list, f"billing insights {start}..{end}", account_urn, start, end,
                          per_page=PER_PAGE, page=page)
            if not_found(body):
                raise ProviderError(Diagnosis(
                    "digitalocean.billing_account_not_found", ERROR,
                    f"DigitalOcean has no billing insights for {account_urn}.",
                    "Check that the token belongs to the team that owns the billing (the team's owner or a "
                    "billing member generated it) and that the team has billing history.",
                    f"{body.get('id')}: {body.get('message')}",
                ))
            points = body.get("data_points")
            if not isinstance(points, list):
                raise malformed(f"billing insights {start}..{end} without a 'data_points' list", repr(body)[:200])
            total_items, total_pages = _count(body, "total_items"), _count(body, "total_pages")
            if body.get("current_page") not in (None, page):
                raise malformed(f"page {body.get('current_page')!r} when page {page} was asked for", f"{start}..{end}")
            for point in points:
                _check_point(point, start, end)
            received += len(points)
            if received > total_items or (not points and page <= total_pages):
                raise malformed(f"paging that does not add up: {received} points by page {page} of {total_pages}, total_items "
                                f"{total_items}", f"{start}..{end}")
            yield body
            if page >= total_pages or page >= MAX_PAGES:
                break
            page += 1
        if received != total_items:
            raise malformed(f"paging that does not add up: {received} points received, total_items {total_items}", f"{start}..{end}")


def raw_totals(pages: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Sum of total_amount straight from the responses (the reconciliation figure)."""
    amounts = [to_decimal(point.get("total_amount") or "0", field="total_amount") for page in pages for point in page.get("data_points") or []]
    return {CURRENCY: money_sum(amounts)} if amounts else {}


def normalize(
    pages: list[dict[str, Any]],
    account: Account,
    billing_period: str,
    account_urn: str,
    team_name: str | None,
    estimated: bool,
    ingested_at: datetime,
    invoice_id: str | None = None,
) -> list[dict[str, Any]]:
    """Billing insight pages -> cost_daily rows (plain dicts; schema.rows_to_table types them).

    `invoice_id` is the month's issued invoice (NULL while the month is open or awaits its invoice).
    """
    period_start, period_end = month_bounds(billing_period)
    rows = []
    for page in pages:
        for point in page.get("data_points") or []:
            if point.get("total_amount") in (None, ""):
                raise ProviderError(Diagnosis(
                    "digitalocean.malformed_response", ERROR,
                    "DigitalOcean returned a billing data point without an amount.",
                    "Retry later; report the detail if it persists.",
                    f"data point for {point.get('start_date')} sku={point.get('sku')!r} has no total_amount",
                ))
            amount = to_decimal(point["total_amount"], field="total_amount")
            charge_start, charge_end = day_bounds(date.fromisoformat(point["start_date"]))
            product = product_name(point)
            region = (point.get("region") or "").strip().lower() or None
            usage_team = point.get("usage_team_urn") or None
            rows.append({
                "BilledCost": amount,
                # Insights carry one amount: no list price, negotiated rate or amortization to tell apart.
                "EffectiveCost": amount,
                "ListCost": amount,
                "ContractedCost": amount,
                "BillingCurrency": CURRENCY,
                "PricingCurrency": CURRENCY,  # DigitalOcean prices and bills in USD
                "BillingPeriodStart": period_start,
                "BillingPeriodEnd": period_end,
                "ChargePeriodStart": charge_start,
                "ChargePeriodEnd": charge_end,
                "ChargeCategory": charge_category(product, point.get("description"), amount),
                "ChargeDescription": point.get("description") or None,
                "ChargeFrequency": "Usage-Based",
                "ServiceSubcategory": service_subcategory(product),
                "BillingAccountId": account_urn,
                "BillingAccountName": team_name or account.name,
                # In an organization (do:teamgroup) the team that used the resource is the sub account.
                "BillingAccountType": "Team",
                "SubAccountId": usage_team if usage_team and usage_team != account_urn else None,
                "SubAccountType": "Team" if usage_team and usage_team != account_urn else None,
                "InvoiceIssuerName": PROVIDER.invoice_issuer,
                "InvoiceId": invoice_id,
                "ProviderName": PROVIDER.focus_name,
                "PublisherName": PROVIDER.focus_name,
                "ServiceName": product,
                "ServiceCategory": service_category(product),
                "RegionId": region,
                "RegionName": REGION_NAMES.get(region or ""),
                "ResourceName": point.get("group_description") or None,
                "SkuId": point.get("sku") or None,
                "SkuMeter": (point.get("description") or None) if point.get("sku") else None,
                "x_Provider": "digitalocean",
                "x_Source": SOURCE,
                "x_AccountKey": account.key,
                "x_Estimated": estimated,
                "x_IngestedAt": ingested_at,
            })
    return rows


def pull_billing(account: Account, billing_period: str, today: date | None = None) -> Pull:
    """One DigitalOcean team, one month: daily rows from billing insights, invoice figures beside them."""
    today = today or datetime.now(timezone.utc).date()
    days = period_days(billing_period, today)
    stats = CallStats()
    if days is None:  # a month that has not started: nothing to ask for
        return Pull(source_totals={}, api_calls=0, metadata={"note": f"{billing_period} has not started"})
    client = make_client(account, stats, Deadline.for_account(account))
    token = account.env("token_env")
    with secrets_kept_out_of_logs([token] if token else []):
        account_urn, team_name = team_of(client)
        pages = list(fetch_insights(client, account_urn, *days))
        figures = invoices.invoice_figures(client, billing_period, today)
    source_totals = raw_totals(pages)
    rows = normalize(pages, account, billing_period, account_urn, team_name, not figures.final,
                     datetime.now(timezone.utc), invoice_id=figures.invoice_id)
    comparison = figures.compare(source_totals.get(CURRENCY, Decimal(0)))
    return Pull(
        source_totals=source_totals,
        batches=rows_to_table(rows),
        api_calls=stats.attempts,
        metadata={
            "account_urn": account_urn,
            "team": team_name,
            "days_read": f"{days[0]}..{days[1]}",
            "insight_pages": len(pages),
            "data_points": len(rows),
            "throttled_responses": stats.throttled,
            "ratelimit_remaining": stats.ratelimit_remaining,
            "invoice": comparison,
            "partition": {"invoice": comparison},
        },
    )
