"""AWS Cost Explorer -> cost_daily.

One GetCostAndUsage query per billing period: DAILY, grouped by LINKED_ACCOUNT and SERVICE (Cost
Explorer allows at most two GroupBy dimensions, so region, charge type and resource are not
available from this source; use CUR for them). Every page costs USD 0.01, so a refresh pulls only
the month it is asked for and counts its pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from finops_pipeline.config import Account
from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.services import service_name
from finops_pipeline.defs.aws.session import Deadline, aws_client
from finops_pipeline.diagnosis import malformed_answer
from finops_pipeline.refresh import Pull
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table, service_category, service_subcategory, to_decimal

SOURCE = "cost_explorer"
METRICS = ("UnblendedCost", "AmortizedCost", "NetUnblendedCost")
GROUP_BY = (("DIMENSION", "LINKED_ACCOUNT"), ("DIMENSION", "SERVICE"))
# FOCUS mapping: BilledCost is net unblended when present (after discounts), else unblended.
BILLED_METRICS = ("NetUnblendedCost", "UnblendedCost")
TAX_SERVICES = {"tax"}
# A month is at most 31 days of groups; a real month of a large organization takes tens of pages. A
# server that keeps sending tokens past this is broken, and every page costs USD 0.01.
MAX_PAGES = 500
TITLE = "AWS Cost Explorer"


def build_query(billing_period: str, next_page_token: str | None = None) -> dict[str, Any]:
    """The GetCostAndUsage parameters for one month; the sandbox replays exactly these."""
    start, end = month_bounds(billing_period)
    query: dict[str, Any] = {
        "TimePeriod": {"Start": start.date().isoformat(), "End": end.date().isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(METRICS),
        "GroupBy": [{"Type": t, "Key": k} for t, k in GROUP_BY],
    }
    if next_page_token:
        query["NextPageToken"] = next_page_token
    return query


def fetch_pages(client: Any, billing_period: str, max_pages: int = MAX_PAGES) -> Iterator[dict[str, Any]]:
    """Follow NextPageToken by hand: boto3 has no paginator for GetCostAndUsage.

    Bounded: a token seen before, or more than `max_pages` pages, is an answer that does not end.
    """
    token = None
    seen: set[str] = set()
    for _ in range(max_pages):
        page = client.get_cost_and_usage(**build_query(billing_period, token))
        yield page
        token = page.get("NextPageToken") if isinstance(page, dict) else None
        if not token:
            return
        if not isinstance(token, str) or token in seen:
            raise malformed_answer("aws", TITLE, "the NextPageToken repeats a page already read (the pages never end)", repr(token))
        seen.add(token)
    raise malformed_answer("aws", TITLE, f"more than {max_pages} pages for one month (the pages never end)", repr(token))


def _sample(value: Any) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "ResponseMetadata"}
    try:
        return json.dumps(value, default=str)[:300]
    except (TypeError, ValueError):
        return repr(value)[:300]


def _number(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def validate_page(page: Any, billing_period: str) -> None:
    """An answer must prove it is one before it replaces anything.

    botocore turns a 200 with an empty body into `{}` and a body that is not JSON (an HTML page, garbage)
    into `{"message": <the text>}`; neither has ResultsByTime. Every day must lie in the month asked
    for and every group must carry its keys and a numeric billed amount with a currency.
    """
    def bad(what: str, sample: Any) -> Exception:
        return malformed_answer("aws", TITLE, what, _sample(sample))

    if not isinstance(page, dict) or not isinstance(page.get("ResultsByTime"), list):
        raise bad("the answer has no ResultsByTime list (an empty or non-JSON body, or another service answered)", page)
    start, end = (b.date() for b in month_bounds(billing_period))
    for day in page["ResultsByTime"]:
        period = day.get("TimePeriod") if isinstance(day, dict) else None
        if not isinstance(period, dict):
            raise bad("a result has no TimePeriod", day)
        try:
            first, last = date.fromisoformat(period["Start"]), date.fromisoformat(period["End"])
        except (KeyError, TypeError, ValueError):
            raise bad("a result's TimePeriod is not a Start/End pair of dates", day) from None
        if not (start <= first < end and last == first + timedelta(days=1)):
            raise bad(f"a result is for {period.get('Start')}..{period.get('End')}, not one day of {billing_period}", period)
        groups = day.get("Groups")
        if not isinstance(groups, list):
            raise bad(f"the result for {first} has no Groups list", day)
        for group in groups:
            keys = group.get("Keys") if isinstance(group, dict) else None
            metrics = group.get("Metrics") if isinstance(group, dict) else None
            if not (isinstance(keys, list) and len(keys) == len(GROUP_BY) and all(isinstance(k, str) and k for k in keys)):
                raise bad(f"a group of {first} lacks its {len(GROUP_BY)} keys (linked account, service)", group)
            if not isinstance(metrics, dict) or not any(name in metrics for name in BILLED_METRICS):
                raise bad(f"a group of {first} has none of the metrics {', '.join(BILLED_METRICS)}", group)
            for name, metric in metrics.items():
                if not (isinstance(metric, dict) and _number(metric.get("Amount")) and isinstance(metric.get("Unit"), str)
                        and metric["Unit"]):
                    raise bad(f"the {name} of a group of {first} is not an amount with a currency", group)


def _billed_amount(metrics: Mapping[str, Any]) -> tuple[Decimal, str]:
    for name in BILLED_METRICS:
        if name in metrics:
            return to_decimal(metrics[name]["Amount"], field=name), metrics[name]["Unit"]
    raise ValueError(f"Cost Explorer result has none of {BILLED_METRICS}: {sorted(metrics)}")


def raw_totals(pages: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Sum of the billed metric straight from the responses, per currency (the reconciliation figure)."""
    totals: dict[str, Decimal] = {}
    for page in pages:
        for day in page.get("ResultsByTime", []):
            for group in day.get("Groups", []):
                amount, currency = _billed_amount(group["Metrics"])
                totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def _account_names(pages: list[dict[str, Any]]) -> dict[str, str]:
    names = {}
    for page in pages:
        for item in page.get("DimensionValueAttributes", []) or []:
            description = (item.get("Attributes") or {}).get("description")
            if description:
                names[item["Value"]] = description
    return names


def normalize(pages: list[dict[str, Any]], account: Account, billing_period: str, ingested_at: datetime) -> list[dict[str, Any]]:
    """Cost Explorer pages -> cost_daily rows (plain dicts; schema.rows_to_table types them)."""
    period_start, period_end = month_bounds(billing_period)
    names = _account_names(pages)
    rows = []
    for page in pages:
        for day in page.get("ResultsByTime", []):
            charge_day = date.fromisoformat(day["TimePeriod"]["Start"])
            charge_start, charge_end = day_bounds(charge_day)
            for group in day.get("Groups", []):
                linked_account, ce_service = group["Keys"]
                service = service_name(ce_service)  # CUR's product name, one name per service (defs/aws/services.py)
                metrics = group["Metrics"]
                billed, currency = _billed_amount(metrics)
                unblended = to_decimal(metrics.get("UnblendedCost", {}).get("Amount", billed))
                effective = to_decimal(metrics.get("AmortizedCost", {}).get("Amount", billed))
                rows.append(
                    {
                        "BilledCost": billed,
                        "EffectiveCost": effective,
                        # Cost Explorer has no public on-demand figure: ListCost and ContractedCost are the unblended cost.
                        "ListCost": unblended,
                        "ContractedCost": unblended,
                        "BillingCurrency": currency,
                        "PricingCurrency": currency,  # Cost Explorer reports in the currency AWS prices in (USD)
                        "BillingPeriodStart": period_start,
                        "BillingPeriodEnd": period_end,
                        "ChargePeriodStart": charge_start,
                        "ChargePeriodEnd": charge_end,
                        "ChargeCategory": "Tax" if service.lower() in TAX_SERVICES else "Usage",
                        "ChargeDescription": ce_service,
                        "ChargeFrequency": "Usage-Based",
                        "ServiceSubcategory": service_subcategory(service),
                        "BillingAccountType": "Payer Account",
                        "SubAccountType": "Linked Account",
                        "BillingAccountId": account.settings["account_id"],
                        "BillingAccountName": account.name,
                        "SubAccountId": linked_account,
                        "SubAccountName": names.get(linked_account),
                        "InvoiceIssuerName": "Amazon Web Services",
                        "ProviderName": PROVIDER.focus_name,
                        "PublisherName": PROVIDER.focus_name,
                        "ServiceName": service,
                        "ServiceCategory": service_category(service),
                        "x_Provider": "aws",
                        "x_Source": SOURCE,
                        "x_AccountKey": account.key,
                        "x_Estimated": bool(day.get("Estimated", False)),
                        "x_IngestedAt": ingested_at,
                    }
                )
    return rows


def pull_cost_explorer(account: Account, billing_period: str) -> Pull:
    # One deadline for the role, every attempt and every page: give_up_after_seconds.
    client = aws_client(account, "ce", region="us-east-1", deadline=Deadline.of(account))  # Cost Explorer's one endpoint
    pages = []
    for page in fetch_pages(client, billing_period):
        validate_page(page, billing_period)
        pages.append(page)
    rows = normalize(pages, account, billing_period, datetime.now(timezone.utc))
    estimated_days = sorted({day["TimePeriod"]["Start"] for p in pages for day in p.get("ResultsByTime", []) if day.get("Estimated")})
    retries = sum(p.get("ResponseMetadata", {}).get("RetryAttempts", 0) for p in pages)
    return Pull(
        source_totals=raw_totals(pages),
        batches=rows_to_table(rows),
        api_calls=len(pages),
        metadata={
            "pages": len(pages),
            "cost_usd_for_api_calls": str(Decimal("0.01") * len(pages)),
            "estimated_days": estimated_days,
            "throttled_retries": retries,
        },
    )
