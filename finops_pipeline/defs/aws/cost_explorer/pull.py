"""AWS Cost Explorer -> cost_daily.

One GetCostAndUsage query per billing period: DAILY, grouped by LINKED_ACCOUNT and SERVICE (Cost
Explorer allows at most two GroupBy dimensions, so region, charge type and resource are not
available from this source; use CUR for them). Every page costs USD 0.01, so a refresh pulls only
the days that can still change and counts its pages:

- the whole month on the first pull, when asked (`full_refresh` setting or the run tag
  finops/full_refresh=true), and on the first refresh after the month ended (the month closes);
- otherwise, from the earliest of: the days Cost Explorer marked Estimated in the previous pull,
  the day of the previous pull (it was partial then, later days did not exist), and the last
  `recent_days` days, to the month's end; the earlier days are kept from the partition;
- nothing at all for a closed month whose closing pull had no Estimated day left (final).

The merge rewrites the whole partition (lake.write_partition, atomic): kept rows before the first
re-pulled day, new rows from it on. Each partition stores its raw source total per day, so the
month's source total is the kept days' raw totals plus the new pages' raw totals, independent of
the normalization; kept rows that do not add up to their stored day totals force a full pull.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from finops_pipeline import throttle
from finops_pipeline.config import Account
from finops_pipeline.defs.aws import PROVIDER
from finops_pipeline.defs.aws.services import service_name
from finops_pipeline.defs.aws.session import aws_client
from finops_pipeline.diagnosis import malformed_answer
from finops_pipeline.http_budget import Deadline
from finops_pipeline.lake import PartitionKey, read_partition, read_partition_extra
from finops_pipeline.money import merge_totals, sum_by_currency
from finops_pipeline.refresh import Pull, full_refresh_requested
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table, service_category, service_subcategory, to_decimal, totals_by_currency

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
PAGE_USD = Decimal("0.01")
DEFAULT_RECENT_DAYS = 3
STATE = "cost_explorer"  # the partition metadata (finops.cost_explorer) that the next refresh plans from


def build_query(billing_period: str, next_page_token: str | None = None, first_day: date | None = None) -> dict[str, Any]:
    """The GetCostAndUsage parameters for one month, from `first_day` (default its first) to its end;
    the sandbox replays exactly these."""
    start, end = month_bounds(billing_period)
    query: dict[str, Any] = {
        "TimePeriod": {"Start": (first_day or start.date()).isoformat(), "End": end.date().isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(METRICS),
        "GroupBy": [{"Type": t, "Key": k} for t, k in GROUP_BY],
    }
    if next_page_token:
        query["NextPageToken"] = next_page_token
    return query


def fetch_pages(client: Any, billing_period: str, max_pages: int = MAX_PAGES, first_day: date | None = None) -> Iterator[dict[str, Any]]:
    """Follow NextPageToken by hand: boto3 has no paginator for GetCostAndUsage.

    Bounded: a token seen before, or more than `max_pages` pages, is an answer that does not end.
    """
    token = None
    seen: set[str] = set()
    for _ in range(max_pages):
        page = client.get_cost_and_usage(**build_query(billing_period, token, first_day))
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


def validate_page(page: Any, billing_period: str, first_day: date | None = None) -> None:
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
    start = first_day or start
    for day in page["ResultsByTime"]:
        period = day.get("TimePeriod") if isinstance(day, dict) else None
        if not isinstance(period, dict):
            raise bad("a result has no TimePeriod", day)
        try:
            first, last = date.fromisoformat(period["Start"]), date.fromisoformat(period["End"])
        except (KeyError, TypeError, ValueError):
            raise bad("a result's TimePeriod is not a Start/End pair of dates", day) from None
        if not (start <= first < end and last == first + timedelta(days=1)):
            raise bad(f"a result is for {period.get('Start')}..{period.get('End')}, not one day of {start}..{end} that was asked for", period)
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
    return merge_totals(daily_raw_totals(pages).values())


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


def daily_raw_totals(pages: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Day -> currency -> billed amount, straight from the responses (what a later merge keeps per day)."""
    days: dict[str, dict[str, Decimal]] = {}
    for page in pages:
        for day in page.get("ResultsByTime", []):
            totals = days.setdefault(day["TimePeriod"]["Start"], {})
            billed = (_billed_amount(group["Metrics"]) for group in day.get("Groups", []))
            sum_by_currency(((currency, amount) for amount, currency in billed), totals)
    return days


@dataclass(frozen=True)
class Previous:
    """What the last pull of this partition left for the next one to plan from."""

    pulled_on: date  # the UTC day of that pull: that day was partial, later days did not exist yet
    estimated_days: tuple[date, ...]
    daily_totals: dict[str, dict[str, Decimal]]  # day -> currency -> raw billed amount

    @classmethod
    def read(cls, path: Path) -> Previous | None:
        state = read_partition_extra(path, STATE)  # None when there is no partition yet
        if not isinstance(state, dict):
            return None  # never pulled, or written before days were tracked: pull the whole month
        try:
            return cls(
                date.fromisoformat(state["pulled_on"]),
                tuple(date.fromisoformat(d) for d in state["estimated_days"]),
                {d: {c: Decimal(v) for c, v in t.items()} for d, t in state["daily_totals"].items()},
            )
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return None


@dataclass(frozen=True)
class Plan:
    """Which days of the month this refresh asks Cost Explorer for, and why."""

    first_day: date | None  # None: nothing can change, no call at all
    full: bool
    why: str


def plan(previous: Previous | None, billing_period: str, today: date, recent_days: int, full_requested: bool) -> Plan:
    """The days that can still change (see the module's docstring)."""
    start, end = (b.date() for b in month_bounds(billing_period))
    if full_requested:
        return Plan(start, True, "a full refresh was requested")
    if previous is None:
        return Plan(start, True, "first pull of this month")
    if today >= end:  # a closed month
        if previous.pulled_on < end:
            return Plan(start, True, "the month has closed: its final figures")
        if previous.estimated_days:
            return Plan(min(previous.estimated_days), False, "days still marked Estimated")
        return Plan(None, False, "the month is closed and no day is Estimated: nothing can change")
    first = min([previous.pulled_on, *previous.estimated_days, today - timedelta(days=recent_days)])
    if first <= start:
        return Plan(start, True, "every day of the month can still change")
    return Plan(first, False, f"days marked Estimated, since the last pull ({previous.pulled_on}) and the last {recent_days} days")


def _kept_rows(data_dir: Path, key: PartitionKey, first_day: date) -> pa.Table | None:
    existing = read_partition(data_dir, key)
    if existing is None:
        return None
    before = datetime.combine(first_day, datetime.min.time(), tzinfo=timezone.utc)
    return existing.filter(pc.less(existing["ChargePeriodStart"], pa.scalar(before, existing.schema.field("ChargePeriodStart").type)))


def _adds_up(kept: pa.Table, daily_totals: Mapping[str, Mapping[str, Decimal]]) -> bool:
    """The kept rows' BilledCost per currency equals the raw day totals stored for them."""
    rows = totals_by_currency(kept)
    stored = merge_totals(daily_totals.values())
    return {c: v for c, v in rows.items() if v} == {c: v for c, v in stored.items() if v}


def pull_cost_explorer(account: Account, billing_period: str, data_dir: Path | None = None,
                       now: Callable[[], datetime] | None = None) -> Pull:
    """One payer account, one month: the days that can still change, merged into the month's partition.

    Without `data_dir` (a pull on its own) there is no partition to merge into: the whole month.
    """
    now_at = (now or (lambda: datetime.now(timezone.utc)))()
    today = now_at.astimezone(timezone.utc).date()
    key = PartitionKey(account.provider, account.source, account.key, billing_period)
    previous = Previous.read(key.path(data_dir)) if data_dir is not None else None
    wanted_full = full_refresh_requested() or bool(account.settings.get("full_refresh", False))
    chosen = plan(previous, billing_period, today, int(account.settings.get("recent_days", DEFAULT_RECENT_DAYS)), wanted_full)
    kept = None
    if previous is not None and data_dir is not None and not chosen.full:
        kept = _kept_rows(data_dir, key, chosen.first_day or month_bounds(billing_period)[1].date())
        before = {d: t for d, t in previous.daily_totals.items() if chosen.first_day is None or date.fromisoformat(d) < chosen.first_day}
        if kept is None or not _adds_up(kept, before):
            chosen, kept = Plan(month_bounds(billing_period)[0].date(), True, "the stored month did not add up: pulled whole"), None

    pages: list[dict[str, Any]] = []
    if chosen.first_day is not None:
        # One deadline for the role, every attempt and every page: give_up_after_seconds.
        deadline = Deadline.for_account(account)
        client = aws_client(account, "ce", region="us-east-1", deadline=deadline)  # Cost Explorer's one endpoint
        # The payer's request quota, shared by every pull of it (finops_pipeline.throttle), each attempt.
        def spend_quota(**_: Any) -> None:  # returns None: a value here would be taken for the HTTP response
            throttle.spend(account, 1, deadline.remaining())

        client.meta.events.register("before-send.cost-explorer.GetCostAndUsage", spend_quota, unique_id="finops-quota")
        for page in fetch_pages(client, billing_period, first_day=chosen.first_day):
            validate_page(page, billing_period, chosen.first_day)
            pages.append(page)

    daily = {d: dict(t) for d, t in (previous.daily_totals.items() if kept is not None and previous else [])
             if chosen.first_day is None or date.fromisoformat(d) < chosen.first_day}
    daily.update(daily_raw_totals(pages))
    source_totals = merge_totals(daily.values())
    new_rows = rows_to_table(normalize(pages, account, billing_period, datetime.now(timezone.utc)))
    estimated = sorted({day["TimePeriod"]["Start"] for p in pages for day in p.get("ResultsByTime", []) if day.get("Estimated")})
    if chosen.first_day is None and previous is not None:
        estimated = [d.isoformat() for d in previous.estimated_days]
    retries = sum(p.get("ResponseMetadata", {}).get("RetryAttempts", 0) for p in pages)
    _, end = month_bounds(billing_period)
    state = {
        "pulled_on": today.isoformat(),
        "estimated_days": estimated,
        "daily_totals": {d: {c: str(v) for c, v in sorted(t.items())} for d, t in sorted(daily.items())},
    }
    return Pull(
        source_totals=source_totals,
        batches=[kept, new_rows] if kept is not None else new_rows,
        api_calls=len(pages),
        metadata={
            "pages": len(pages),
            "cost_usd_for_api_calls": str(PAGE_USD * len(pages)),
            "pulled": ("whole month" if chosen.full else
                       f"{chosen.first_day}..{end.date() - timedelta(days=1)}" if chosen.first_day else "nothing"),
            "why": chosen.why,
            "days_kept": 0 if kept is None else len({d for d in daily if chosen.first_day and date.fromisoformat(d) < chosen.first_day}),
            "estimated_days": estimated,
            "throttled_retries": retries,
            "partition": {STATE: state},
        },
    )
