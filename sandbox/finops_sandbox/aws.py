"""AWS stand-in: moto's server (S3, STS, Cost Explorer) on 127.0.0.1, and Cost Explorer seeding.

Moto answers GetCostAndUsage from a queue of results that we push through its moto-api endpoint;
it binds each queued result to the first request body that takes it and answers that body the same
way afterwards. So seeding pushes one month's pages and immediately replays the pipeline's own
request for that month (`cost_explorer.fetch_pages`, same parameters, same credentials): from then on
the pipeline gets exactly those pages, in any order, as often as it asks.
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from finops_pipeline.config import Account, FinopsConfig
from finops_pipeline.defs.aws.cost_explorer.pull import DEFAULT_RECENT_DAYS, GROUP_BY, fetch_pages
from finops_pipeline.defs.aws.session import aws_client
from finops_pipeline.schema import month_bounds
from finops_sandbox.synthetic import Charge, daily_charges

MOTO_DEFAULT_ACCOUNT = "123456789012"


class MotoSandbox:
    """moto's real server, threaded, on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self, port: int = 0):
        import logging

        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)

    def start(self) -> MotoSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10).read()

    def _post(self, path: str, document: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status not in (200, 201):
                raise RuntimeError(f"moto refused {path}: {response.status}")

    def seed_cost_explorer(self, account: Account, pages_by_period: dict[str, list[dict[str, Any]]], first_day: date | None = None) -> None:
        """Make Cost Explorer answer `account`'s monthly queries with these pages.

        `first_day`: bind the query of a thrifty refresh (from that day to the month's end) instead,
        answered with the pages' days from then on.
        """
        role_arn = account.settings.get("role_arn")
        moto_account = role_arn.split(":")[4] if role_arn else MOTO_DEFAULT_ACCOUNT
        for period, pages in pages_by_period.items():
            if first_day is not None:
                pages = pages_from(pages, first_day)
            if not pages:
                continue
            self._post("/moto-api/static/ce/cost-and-usage-results", {"account_id": moto_account, "results": pages})
            # Replay the pipeline's own requests so each page is bound to its exact request body.
            client = aws_client(account, "ce", region="us-east-1")
            replayed = sum(1 for _ in fetch_pages(client, period, first_day=first_day))
            if replayed != len(pages):
                raise RuntimeError(f"seeding {account.key} {period}: bound {replayed} of {len(pages)} pages")


def pages_from(pages: list[dict[str, Any]], first_day: date) -> list[dict[str, Any]]:
    """The days of `pages` from `first_day` on, as Cost Explorer answers a query starting that day: the
    pages that still hold days, chained by NextPageToken again."""
    kept = []
    for page in pages:
        results = [r for r in page["ResultsByTime"] if date.fromisoformat(r["TimePeriod"]["Start"]) >= first_day]
        if results:
            kept.append({**{k: v for k, v in page.items() if k != "NextPageToken"}, "ResultsByTime": results})
    for index, page in enumerate(kept[:-1]):
        page["NextPageToken"] = f"from-{first_day}-page-{index + 2}"
    return kept


def cost_explorer_pages(
    charges: Sequence[Charge],
    billing_period: str,
    estimated_from: date | None = None,
    days_per_page: int = 10,
) -> list[dict[str, Any]]:
    """Cost Explorer GetCostAndUsage responses (DAILY, LINKED_ACCOUNT x SERVICE) for one month.

    Days on or after `estimated_from` carry Estimated: true, as Cost Explorer marks recent days.
    The month is split into pages of `days_per_page` days joined by NextPageToken.
    """
    assert [k for _, k in GROUP_BY] == ["LINKED_ACCOUNT", "SERVICE"]
    start, end = month_bounds(billing_period)
    by_day: dict[date, list[Charge]] = defaultdict(list)
    names = {}
    for charge in charges:
        if start.date() <= charge.day < end.date():
            by_day[charge.day].append(charge)
            names[charge.account_id] = charge.account_name
    days = sorted(by_day)
    if not days:
        return []
    pages = []
    for index in range(0, len(days), days_per_page):
        results = []
        for day in days[index : index + days_per_page]:
            groups = []
            for c in by_day[day]:
                amount = _amount(c.amount)
                groups.append(
                    {
                        "Keys": [c.account_id, c.service],
                        "Metrics": {
                            "UnblendedCost": {"Amount": amount, "Unit": c.currency},
                            "NetUnblendedCost": {"Amount": amount, "Unit": c.currency},
                            "AmortizedCost": {"Amount": _amount(c.amortized), "Unit": c.currency},
                        },
                    }
                )
            results.append(
                {
                    "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                    "Total": {},
                    "Groups": groups,
                    "Estimated": bool(estimated_from and day >= estimated_from),
                }
            )
        page: dict[str, Any] = {
            "GroupDefinitions": [{"Type": t, "Key": k} for t, k in GROUP_BY],
            "ResultsByTime": results,
            "DimensionValueAttributes": [{"Value": v, "Attributes": {"description": n}} for v, n in sorted(names.items())],
        }
        if index + days_per_page < len(days):
            page["NextPageToken"] = f"{billing_period}-page-{index // days_per_page + 2}"
        pages.append(page)
    return pages


def _amount(value: Decimal) -> str:
    """Cost Explorer sends amounts as decimal strings with up to 10 places."""
    return format(value.normalize(), "f") if value else "0"


# Linked accounts and services of the demo's AWS organization: (name, region, typical daily USD).
DEMO_SERVICES = (
    ("Amazon Elastic Compute Cloud - Compute", "us-east-1", Decimal("182.40")),
    ("Amazon Relational Database Service", "us-east-1", Decimal("64.15")),
    ("Amazon Simple Storage Service", "us-east-1", Decimal("21.37")),
    ("AWS Lambda", "eu-west-1", Decimal("4.82")),
    ("Amazon CloudFront", None, Decimal("9.64")),
    ("Tax", None, Decimal("11.90")),
)


class AwsDemo:
    """The demo's AWS side: two payer accounts with Cost Explorer data, one that never gets any
    (NO_DATA after 48 h), and one connected a few hours ago (PENDING)."""

    def __init__(self) -> None:
        self.moto: MotoSandbox | None = None

    def start(self, port: int) -> None:
        self.moto = MotoSandbox(port).start()

    def stop(self) -> None:
        if self.moto:
            self.moto.stop()

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        assert self.moto is not None
        common = {
            "provider": "aws",
            "source": "cost_explorer",
            "access_key_id_env": "FINOPS_DEMO_AWS_ACCESS_KEY_ID",
            "secret_access_key_env": "FINOPS_DEMO_AWS_SECRET_ACCESS_KEY",
            "external_id_env": "FINOPS_DEMO_AWS_EXTERNAL_ID",
            "endpoint_url": self.moto.url,
        }

        def account(key: str, name: str, account_id: str, connected: timedelta) -> dict[str, Any]:
            return {
                "key": key,
                "name": name,
                "connected_at": (now - connected).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "account_id": account_id,
                "role_arn": f"arn:aws:iam::{account_id}:role/finops-billing-read",
                **common,
            }

        return [
            account("aws-acme-org", "Acme organization (payer)", "111111111111", timedelta(days=120)),
            account("aws-data-platform", "Data platform (payer)", "444444444444", timedelta(days=120)),
            account("aws-new-sandbox", "New sandbox org", "555555555555", timedelta(hours=72)),
            account("aws-just-connected", "Just connected", "666666666666", timedelta(hours=5)),
        ]

    def environment(self) -> dict[str, str]:
        return {
            "FINOPS_DEMO_AWS_ACCESS_KEY_ID": "sandbox-access-key",
            "FINOPS_DEMO_AWS_SECRET_ACCESS_KEY": "sandbox-secret-key",
            "FINOPS_DEMO_AWS_EXTERNAL_ID": "sandbox-external-id",
        }

    def seed(self, config: FinopsConfig, periods: list[str], today: date) -> None:
        assert self.moto is not None
        linked = {
            "aws-acme-org": [("111111111111", "acme-payer"), ("222222222222", "acme-production"), ("333333333333", "acme-staging")],
            "aws-data-platform": [("444444444444", "data-platform"), ("777777777777", "analytics")],
        }
        start = today - timedelta(days=75)
        for key, accounts in linked.items():
            charges = daily_charges(f"demo-{key}", start, 75, accounts, DEMO_SERVICES)
            pages = {p: cost_explorer_pages(charges, p, estimated_from=today - timedelta(days=2)) for p in periods}
            self.moto.seed_cost_explorer(config.account(key), pages)
            # A later refresh today asks only for the days that can still change (Estimated, the last 3).
            recent = today - timedelta(days=DEFAULT_RECENT_DAYS)
            self.moto.seed_cost_explorer(config.account(key), {p: v for p, v in pages.items() if p == recent.strftime("%Y-%m")}, recent)
