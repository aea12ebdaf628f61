"""DigitalOcean stand-in: the billing part of the API v2 over https on 127.0.0.1, and its seeding.

Serves what the pipeline reads, in the API's wire format: /v2/account, /v2/customers/my/balance,
/v2/customers/my/invoices (links/meta pagination), /v2/customers/my/invoices/{uuid|preview} and
/v2/billing/{account_urn}/insights/{start}/{end} (current_page/total_pages pagination, ranges of at
most 31 days). Tokens carry scopes, so a token without billing:read gets the API's 403; an unknown
or revoked token gets its 401; `throttle()` scripts 429s with Retry-After and the ratelimit headers.
It speaks https with a throwaway CA (sandbox/tls.py): pydo sends bearer tokens over https only.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from finops_pipeline.config import FinopsConfig
from finops_sandbox.server import LoopbackServer
from finops_sandbox.synthetic import Charge, daily_charges
from finops_sandbox.tls import LocalCA

BILLING_READ = "billing:read"
ACCOUNT_READ = "account:read"
FULL_ACCESS = frozenset({"*"})
HOURLY_LIMIT = 5000
CENT = Decimal("0.01")

# Products as they appear on DigitalOcean invoices, with how their items are described.
PRODUCT_ITEMS = {
    "Droplets": ("1-DO-DROPLET-S-2VCPU-4GB", "web-{n} (s-2vcpu-4gb)", None),
    "Kubernetes Clusters": ("1-DO-DOKS-NODE-S-4VCPU-8GB", "Kubernetes node pool worker (s-4vcpu-8gb)", "prod-doks-cluster"),
    "Managed Databases": ("1-DO-DBAAS-PG-2VCPU-4GB", "PostgreSQL database cluster (db-s-2vcpu-4gb)", "prod-postgres"),
    "Spaces Subscription": ("1-DO-SPACES-250GB", "Spaces ($5/mo 250GB storage & 1TB bandwidth)", None),
    "Volumes": ("1-DO-VOLUME-100GB", "Volume data-{n} (100 GiB)", None),
    "Load Balancers": ("1-DO-LB-SMALL", "Load Balancer lb-{n} (small)", None),
    "App Platform": ("1-DO-APPS-PRO-1GB", "App Platform api (professional-xs)", "api"),
    "Backups": ("1-DO-BACKUP-WEEKLY", "Droplet backups web-{n}", None),
}
DEMO_SERVICES: tuple[tuple[str, str | None, Decimal], ...] = (
    ("Droplets", "nyc3", Decimal("14.20")),
    ("Kubernetes Clusters", "nyc3", Decimal("9.60")),
    ("Managed Databases", "nyc3", Decimal("4.90")),
    ("Spaces Subscription", "ams3", Decimal("0.17")),
    ("Volumes", "fra1", Decimal("1.33")),
    ("Load Balancers", "nyc3", Decimal("0.40")),
)


@dataclass
class Team:
    uuid: str
    name: str
    data_points: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)  # newest first, as the API lists them
    invoice_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    preview: dict[str, Any] | None = None
    month_to_date_usage: Decimal = Decimal(0)

    @property
    def urn(self) -> str:
        return f"do:team:{self.uuid}"


@dataclass
class Token:
    team_uuid: str
    scopes: frozenset[str] = FULL_ACCESS
    revoked: bool = False

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes


class DigitalOceanSandbox(LoopbackServer):
    """The stand-in server (https, threaded, 127.0.0.1; port 0 picks a free one)."""

    scheme = "https"

    def __init__(self, port: int = 0, ca: LocalCA | None = None):
        self.ca = ca or LocalCA("DigitalOcean sandbox")
        self._owns_ca = ca is None
        self.teams: dict[str, Team] = {}
        self.tokens: dict[str, Token] = {}
        self.requests: list[str] = []  # request paths with their query strings, in order
        self._throttle: list[int] = []  # Retry-After seconds of the next 429s
        self._scripted: list[list[Any]] = []  # [path fragment, status, body, times left]
        self._lock = threading.Lock()
        self.latency = 0.0  # seconds each answer takes, as a far-away API would (benchmarks, concurrency tests)
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most answered at once since reset()
        self.arrivals: list[float] = []  # time.monotonic() of each request, for the observed request rate
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: with Nagle on, the client's delayed ACK holds the body ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test and demo output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with sandbox._lock:
                    sandbox.in_flight += 1
                    sandbox.max_in_flight = max(sandbox.max_in_flight, sandbox.in_flight)
                    sandbox.arrivals.append(time.monotonic())
                try:
                    if sandbox.latency:
                        time.sleep(sandbox.latency)
                    self._reply()
                finally:
                    with sandbox._lock:
                        sandbox.in_flight -= 1

            def _reply(self) -> None:
                status, body, headers = sandbox._answer(self.path, self.headers.get("Authorization", ""))
                content_type = "application/json; charset=utf-8"
                if isinstance(body, tuple):  # respond_raw: (bytes, content type); "{token}" echoes the bearer token
                    payload, content_type = body
                    payload = payload.replace(b"{token}", self.headers.get("Authorization", "")[len("Bearer "):].encode())
                else:
                    payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.socket = self.ca.server_context().wrap_socket(server.socket, server_side=True)
        self._serve(server, "do-sandbox")

    # --- lifecycle ------------------------------------------------------------------------------

    def _release(self) -> None:
        if self._owns_ca:
            self.ca.remove()

    @property
    def ca_file(self) -> str:
        return str(self.ca.ca_file)

    # --- scripting ------------------------------------------------------------------------------

    def add_team(self, name: str, team_uuid: str | None = None) -> Team:
        team = Team(team_uuid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"do-sandbox-team:{name}")), name)
        with self._lock:
            self.teams[team.uuid] = team
        return team

    def add_token(self, token: str, team: Team, scopes: Sequence[str] | None = None) -> None:
        with self._lock:
            self.tokens[token] = Token(team.uuid, frozenset(scopes) if scopes is not None else FULL_ACCESS)

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens[token].revoked = True

    def throttle(self, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` requests get 429 Too Many Requests with this Retry-After (seconds)."""
        with self._lock:
            self._throttle.extend([retry_after] * times)

    def respond(self, path_fragment: str, status: int, body: dict[str, Any], times: int = 1) -> None:
        """The next `times` requests whose path contains `path_fragment` get this answer instead."""
        with self._lock:
            self._scripted.append([path_fragment, status, body, times])

    def respond_raw(self, path_fragment: str, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
                    times: int | None = 1) -> None:
        """Like respond, with the body sent as-is (`{}`, garbage, an HTML page); "{token}" becomes the caller's token.

        times=None: every matching request.
        """
        with self._lock:
            self._scripted.append([path_fragment, status, (body, content_type), 10**9 if times is None else times])

    def reset(self) -> None:
        """Forget every team, token, scripted 429 and recorded request."""
        with self._lock:
            self.teams.clear()
            self.tokens.clear()
            self.requests.clear()
            self._throttle.clear()
            self._scripted.clear()
            self.latency = 0.0
            self.max_in_flight = 0
            self.arrivals.clear()

    # --- the API --------------------------------------------------------------------------------

    def reset_counters(self) -> None:
        """Forget the recorded requests and peaks, keep the teams and tokens (benchmarks)."""
        with self._lock:
            self.requests.clear()
            self.arrivals.clear()
            self.max_in_flight = 0

    def max_requests_within(self, seconds: float) -> int:
        """The most requests that arrived within any `seconds` since reset(): the observed peak rate."""
        with self._lock:
            times = sorted(self.arrivals)
        peak, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= seconds:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    def _rate_headers(self, remaining: int) -> dict[str, str]:
        return {"ratelimit-limit": str(HOURLY_LIMIT), "ratelimit-remaining": str(max(0, remaining)),
                "ratelimit-reset": str(int(time.time()) + 3600)}

    def _answer(self, raw_path: str, authorization: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(raw_path)
            remaining = HOURLY_LIMIT - len(self.requests)
            retry_after = self._throttle.pop(0) if self._throttle else None
            token = self.tokens.get(authorization[len("Bearer "):]) if authorization.startswith("Bearer ") else None
            scripted = next((entry for entry in self._scripted if entry[0] in path), None)
            if scripted is not None:
                scripted[3] -= 1
                if scripted[3] <= 0:
                    self._scripted.remove(scripted)
        headers = self._rate_headers(remaining)
        if scripted is not None:
            return scripted[1], scripted[2], headers
        if retry_after is not None:
            return 429, {"id": "too_many_requests", "message": "API Rate limit exceeded."}, {**headers, "Retry-After": str(retry_after)}
        if token is None or token.revoked:
            return 401, {"id": "unauthorized", "message": "Unable to authenticate you"}, headers
        team = self.teams[token.team_uuid]
        forbidden = (403, {"id": "forbidden", "message": "You are not authorized to perform this operation"}, headers)
        segments = [s for s in path.split("/") if s]
        try:
            per_page = int(query.get("per_page", 20))
            page = int(query.get("page", 1))
        except ValueError:
            return 400, {"id": "bad_request", "message": "per_page and page must be integers"}, headers
        if not (1 <= per_page <= 200 and page >= 1):
            return 400, {"id": "bad_request", "message": "per_page must be between 1 and 200, page at least 1"}, headers

        if segments == ["v2", "account"]:
            if not token.allows(ACCOUNT_READ):
                return forbidden
            return 200, {"account": {"droplet_limit": 25, "floating_ip_limit": 3, "email": "billing@example.com",
                                     "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, team.uuid)), "email_verified": True,
                                     "status": "active", "status_message": "",
                                     "team": {"uuid": team.uuid, "name": team.name}}}, headers
        if not token.allows(BILLING_READ):
            return forbidden
        if segments == ["v2", "customers", "my", "balance"]:
            return 200, {"month_to_date_balance": _money(team.month_to_date_usage), "account_balance": "0.00",
                         "month_to_date_usage": _money(team.month_to_date_usage),
                         "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}, headers
        if segments == ["v2", "customers", "my", "invoices"]:
            chunk, links = _links_page(team.invoices, page, per_page, self.url + path)
            body = {"invoices": chunk, "links": links, "meta": {"total": len(team.invoices)}}
            if team.preview:
                body["invoice_preview"] = team.preview
            return 200, body, headers
        if len(segments) == 5 and segments[:4] == ["v2", "customers", "my", "invoices"]:
            items = team.invoice_items.get(segments[4], [] if segments[4] == "preview" else None)
            if items is None:
                return 404, {"id": "not_found", "message": "The resource you were accessing could not be found."}, headers
            chunk, links = _links_page(items, page, per_page, self.url + path)
            return 200, {"invoice_items": chunk, "links": links, "meta": {"total": len(items)}}, headers
        if len(segments) == 6 and segments[:2] == ["v2", "billing"] and segments[3] == "insights":
            if segments[2] != team.urn:
                return forbidden
            try:
                start, end = date.fromisoformat(segments[4]), date.fromisoformat(segments[5])
            except ValueError:
                return 400, {"id": "bad_request", "message": "start_date and end_date must be YYYY-MM-DD"}, headers
            if end < start or (end - start).days > 31:
                return 400, {"id": "bad_request", "message": "end_date must be within 31 days of start_date"}, headers
            points = [p for p in team.data_points if start <= date.fromisoformat(p["start_date"]) <= end]
            total_pages = math.ceil(len(points) / per_page) if points else 0
            chunk = points[(page - 1) * per_page : page * per_page]
            return 200, {"data_points": chunk, "total_items": len(points), "total_pages": total_pages,
                         "current_page": page}, headers
        return 404, {"id": "not_found", "message": "The resource you were accessing could not be found."}, headers


def _links_page(items: list[dict[str, Any]], page: int, per_page: int, base: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page and the API's `links.pages` (first/prev/next/last URLs, only those that exist)."""
    last = max(1, math.ceil(len(items) / per_page))
    pages: dict[str, str] = {}
    if page > 1:
        pages["first"] = f"{base}?page=1&per_page={per_page}"
        pages["prev"] = f"{base}?page={page - 1}&per_page={per_page}"
    if page < last:
        pages["next"] = f"{base}?page={page + 1}&per_page={per_page}"
        pages["last"] = f"{base}?page={last}&per_page={per_page}"
    return items[(page - 1) * per_page : page * per_page], {"pages": pages}


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


# --- seeding ------------------------------------------------------------------------------------


def data_points(charges: Sequence[Charge], team: Team) -> list[dict[str, Any]]:
    """Billing insight data points for synthetic charges: the service is the invoice product.

    Amounts are whole cents, as DigitalOcean's are, so an invoice equals its daily sum unless a
    difference is seeded on purpose.
    """
    points = []
    for index, charge in enumerate(sorted(charges, key=lambda c: (c.day, c.service, c.region or ""))):
        sku, description, group = PRODUCT_ITEMS.get(charge.service, (f"1-DO-{charge.service.upper()}", charge.service, None))
        points.append({
            "usage_team_urn": team.urn,
            "start_date": charge.day.isoformat(),
            "total_amount": _money(charge.amount),
            "region": charge.region or "",
            "sku": sku,
            "description": description.format(n=1 + index % 3),
            "group_description": group or "",
        })
    return points


def seed_team(
    team: Team,
    charges: Sequence[Charge],
    today: date,
    invoice_differences: dict[str, Decimal] | None = None,
) -> None:
    """Load a team's daily data, issue an invoice for every month before today's, and a preview for today's.

    `invoice_differences` adds, per month, an invoice item the daily figures do not show (what
    DigitalOcean warns can happen at month end), so the invoice differs from the daily sum.
    """
    differences = invoice_differences or {}
    team.data_points = data_points(charges, team)
    by_month: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for point in team.data_points:
        product = next((p for p, (sku, _, _) in PRODUCT_ITEMS.items() if sku == point["sku"]), point["description"])
        by_month[point["start_date"][:7]][product] += Decimal(point["total_amount"])
    open_month = today.strftime("%Y-%m")
    team.invoices, team.invoice_items, team.preview = [], {}, None
    for month in sorted(by_month, reverse=True):
        items = [_item(month, product, amount) for product, amount in sorted(by_month[month].items())]
        if month in differences:
            items.append(_item(month, "Adjustments", differences[month], "Month-end invoicing adjustment"))
        amount = sum((Decimal(i["amount"]) for i in items), Decimal(0))
        if month == open_month:
            team.preview = {"invoice_uuid": "preview", "amount": _money(amount), "invoice_period": month,
                            "updated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            team.invoice_items["preview"] = items
            team.month_to_date_usage = amount
        elif month < open_month:
            invoice_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{team.uuid}:{month}"))
            team.invoices.append({"invoice_uuid": invoice_uuid, "invoice_id": str(uuid.UUID(invoice_uuid).int % 10**9),
                                  "amount": _money(amount), "invoice_period": month,
                                  "updated_at": f"{_next_month(month)}-01T06:00:00Z"})
            team.invoice_items[invoice_uuid] = items


def _item(month: str, product: str, amount: Decimal, description: str | None = None) -> dict[str, Any]:
    return {"product": product, "description": description or product, "amount": _money(amount), "duration": "744",
            "duration_unit": "Hours", "start_time": f"{month}-01T00:00:00Z", "end_time": f"{_next_month(month)}-01T00:00:00Z",
            "project_name": "default"}


def _next_month(month: str) -> str:
    first = datetime.strptime(month, "%Y-%m").date()
    return (first + timedelta(days=32)).strftime("%Y-%m")


def team_charges(seed: str, first: date, last: date, services=DEMO_SERVICES) -> list[Charge]:
    """Synthetic daily charges first..last for one team (whole cents)."""
    charges = daily_charges(seed, first, (last - first).days + 1, [("team", "team")], services)
    return [Charge(c.day, c.account_id, c.account_name, c.service, c.region, c.amount.quantize(CENT), c.amortized, c.currency)
            for c in charges]


# --- the demo -----------------------------------------------------------------------------------


class DigitalOceanDemo:
    """Drives the stand-in for finops_sandbox.demo: one team with months of billing, one team
    connected a few hours ago (PENDING), and one whose token lacks billing:read (ERROR with the fix)."""

    TOKEN_ENV = "DEMO_DIGITALOCEAN_TOKEN"
    NEW_TOKEN_ENV = "DEMO_DIGITALOCEAN_NEW_TEAM_TOKEN"
    NO_SCOPE_TOKEN_ENV = "DEMO_DIGITALOCEAN_NO_BILLING_TOKEN"
    # Throwaway values, valid only against the local stand-in.
    TOKENS = {TOKEN_ENV: "dop_v1_sandbox_main_team", NEW_TOKEN_ENV: "dop_v1_sandbox_new_team",
              NO_SCOPE_TOKEN_ENV: "dop_v1_sandbox_no_billing_scope"}

    def __init__(self) -> None:
        self.sandbox: DigitalOceanSandbox | None = None

    def start(self, port: int) -> None:
        self.sandbox = DigitalOceanSandbox(port=port).start()
        main = self.sandbox.add_team("Acme Production")
        new = self.sandbox.add_team("Acme Data Science")
        self.sandbox.add_token(self.TOKENS[self.TOKEN_ENV], main)
        self.sandbox.add_token(self.TOKENS[self.NEW_TOKEN_ENV], new)
        self.sandbox.add_token(self.TOKENS[self.NO_SCOPE_TOKEN_ENV], main, scopes=[ACCOUNT_READ, "droplet:read"])
        self._main = main

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def _require_started(self) -> DigitalOceanSandbox:
        if self.sandbox is None:
            raise RuntimeError("DigitalOceanDemo: call start(port) first (the accounts point at its port and CA file)")
        return self.sandbox

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        sandbox = self._require_started()
        common = {"provider": "digitalocean", "source": "billing", "endpoint": sandbox.url, "ca_bundle": sandbox.ca_file}
        stamp = lambda delta: (now - delta).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        return [
            {"key": "do-production", "name": "Acme Production (DigitalOcean)", "connected_at": stamp(timedelta(days=120)),
             "token_env": self.TOKEN_ENV, **common},
            {"key": "do-data-science", "name": "Acme Data Science (DigitalOcean)", "connected_at": stamp(timedelta(hours=6)),
             "token_env": self.NEW_TOKEN_ENV, **common},
            {"key": "do-readonly-token", "name": "Acme Production, read-only token (DigitalOcean)",
             "connected_at": stamp(timedelta(days=3)), "token_env": self.NO_SCOPE_TOKEN_ENV, **common},
        ]

    def environment(self) -> dict[str, str]:
        return dict(self.TOKENS)

    def seed(self, config: FinopsConfig, periods: list[str], today: date) -> None:
        self._require_started()
        first = min([today - timedelta(days=75)] + [datetime.strptime(p, "%Y-%m").date() for p in periods])
        charges = team_charges("digitalocean-demo", first, today - timedelta(days=1))
        closed = sorted({c.day.strftime("%Y-%m") for c in charges} - {today.strftime("%Y-%m")})
        # The last closed month's invoice carries a month-end item the daily figures miss.
        differences = {closed[-1]: Decimal("3.17")} if closed else {}
        seed_team(self._main, charges, today, differences)
