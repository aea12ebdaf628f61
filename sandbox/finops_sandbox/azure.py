"""Azure stand-in: Entra ID (token endpoint) and the Cost Management Query API over HTTPS on 127.0.0.1.

It speaks the wire formats the real client libraries expect, so azure-identity (through MSAL) and
azure-mgmt-costmanagement run unchanged against it: OpenID discovery and the v2.0 token endpoint
with client credentials, then `POST /subscriptions/<id>/providers/Microsoft.CostManagement/query`
answering ActualCost / AmortizedCost queries with columns + rows, paged by `nextLink`, with the
Cost Management rate-limit headers, 429s and the permission errors real subscriptions produce.

TLS uses a throwaway CA made at start (sandbox/tls.py); accounts trust it through their `ca_bundle`
setting, so the product verifies TLS exactly as in production. Never used for a real account.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from finops_sandbox.server import LoopbackServer
from finops_sandbox.synthetic import Charge, daily_charges
from finops_sandbox.tls import LocalCA

QPU_HEADER = "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed"
QPU_REMAINING_HEADER = "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"
QPU_RETRY_AFTER_HEADER = "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"
# Dimensions the stand-in can group by -> UsageRecord attribute.
DIMENSIONS = {
    "ServiceName": "service",
    "MeterCategory": "service",
    "ChargeType": "charge_type",
    "ResourceGroupName": "resource_group",
    "ResourceLocation": "location",
}


@dataclass(frozen=True)
class UsageRecord:
    """One day of one meter in a subscription, as Cost Management holds it.

    `cost` is what ActualCost reports (None: absent from ActualCost, e.g. unused reservation);
    `amortized_cost` what AmortizedCost reports (None: absent, e.g. the reservation purchase itself).
    """

    day: date
    service: str
    charge_type: str
    resource_group: str | None
    location: str | None
    cost: Decimal | None
    amortized_cost: Decimal | None
    currency: str = "USD"


@dataclass
class Fault:
    """A scripted answer to the next query request(s), e.g. a 429 with retry headers."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1  # None: every request
    body: bytes | None = None  # sent as-is instead of an error document ("{url}" becomes the stand-in's URL)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class SignInFault:
    """A scripted answer of Entra ID: at the token endpoint ("token") or the OpenID discovery ("openid").

    "{client_secret}" in the body becomes the secret the client sent: an endpoint that echoes it back.
    """

    where: str
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    times: int | None = 1


@dataclass(frozen=True)
class RawBody:
    data: bytes
    content_type: str


@dataclass
class Subscription:
    tenant_id: str
    records: list[UsageRecord] = field(default_factory=list)
    # client id -> "subscription" or "resourceGroup:<name>" (where Cost Management Reader is assigned)
    readers: dict[str, str] = field(default_factory=dict)
    denied_status: int = 401  # RBACAccessDenied comes as 401 or 403


def _number(value: Decimal) -> str:
    """A JSON number with the exact digits of a Decimal (the real service sends doubles)."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def _dumps(document: Any) -> bytes:
    """json.dumps with Decimals written as exact JSON numbers."""
    marker = {}

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            key = f"__decimal_{len(marker)}__"
            marker[key] = _number(value)
            return key
        raise TypeError(type(value))

    text = json.dumps(document, default=default)
    for key, number in marker.items():
        text = text.replace(f'"{key}"', number)
    return text.encode()


class AzureSandbox(LoopbackServer):
    """Entra ID + Cost Management on https://127.0.0.1:<port> (0 picks a free port)."""

    scheme = "https"

    def __init__(self, port: int = 0, page_size: int = 1000):
        self.ca = LocalCA("finops-pipeline Azure sandbox")
        self.page_size = page_size
        self.tenants: dict[str, dict[str, str]] = {}  # tenant id -> {client id: secret}
        self.subscriptions: dict[str, Subscription] = {}
        self.faults: list[Fault] = []
        self.sign_in_faults: list[SignInFault] = []
        self.query_log: list[dict[str, Any]] = []  # every query request: scope, body, page token, status
        self.token_requests = 0
        self._tokens: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-ms-request-id", str(uuid.uuid4()))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _send_any(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                if isinstance(body, RawBody):
                    self._send(status, body.data, body.content_type, headers)
                else:
                    self._send(status, b"" if status == 204 else _dumps(body), headers=headers)

            def do_GET(self) -> None:
                fault = sandbox._take_sign_in_fault("openid")
                if fault is not None:
                    self._send_any(fault.status, RawBody(fault.body, fault.content_type))
                    return
                status, body = sandbox._openid(urlsplit(self.path).path)
                self._send(status, _dumps(body))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                if parts.path.endswith("/oauth2/v2.0/token"):
                    fault = sandbox._take_sign_in_fault("token")
                    if fault is not None:
                        sent = (parse_qs(raw.decode()).get("client_secret") or [""])[0]
                        self._send_any(fault.status, RawBody(fault.body.replace(b"{client_secret}", sent.encode()), fault.content_type))
                        return
                    status, body = sandbox._token(parts.path, raw)
                    self._send(status, _dumps(body))
                elif parts.path.lower().endswith("/providers/microsoft.costmanagement/query"):
                    status, body, headers = sandbox._query(parts.path, parse_qs(parts.query), self.headers.get("Authorization", ""), raw)
                    self._send_any(status, body, headers)
                else:
                    self._send(404, _dumps({"error": {"code": "NotFound", "message": f"No route for {parts.path}"}}))

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                # The TLS handshake happens here, in the request's own thread, not in the accept loop.
                try:
                    tls = sandbox._tls.wrap_socket(request, server_side=True)
                except OSError:
                    return
                try:
                    self.RequestHandlerClass(tls, client_address, self)
                finally:
                    try:
                        tls.close()
                    except OSError:
                        pass

        self._tls = self.ca.server_context()
        self._serve(Server(("127.0.0.1", port), Handler), "azure-sandbox")

    # --- lifecycle --------------------------------------------------------------------------------

    def _release(self) -> None:
        self.ca.remove()

    @property
    def ca_file(self) -> str:
        """The CA to name in the accounts' `ca_bundle`."""
        return str(self.ca.ca_file)

    # --- what exists in this fake cloud ----------------------------------------------------------

    def add_app(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        with self._lock:
            self.tenants.setdefault(tenant_id, {})[client_id] = client_secret

    def add_subscription(self, subscription_id: str, tenant_id: str, denied_status: int = 401) -> Subscription:
        with self._lock:
            self.tenants.setdefault(tenant_id, {})
            subscription = self.subscriptions.setdefault(subscription_id, Subscription(tenant_id))
            subscription.denied_status = denied_status
            return subscription

    def assign_reader(self, subscription_id: str, client_id: str, scope: str = "subscription") -> None:
        """Cost Management Reader for the app, at the subscription or at 'resourceGroup:<name>'."""
        with self._lock:
            self.subscriptions[subscription_id].readers[client_id] = scope

    def add_usage(self, subscription_id: str, records: Iterable[UsageRecord]) -> None:
        with self._lock:
            self.subscriptions[subscription_id].records.extend(records)

    def fail_next(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, times: int | None = 1) -> None:
        with self._lock:
            self.faults.append(Fault(status, code, message, dict(headers or {}), times))

    def answer_next(self, body: bytes, status: int = 200, content_type: str = "application/json; charset=utf-8",
                    times: int | None = 1) -> None:
        """The next query request(s) get this body as-is ("{url}" becomes the stand-in's URL): `{}`, garbage, HTML..."""
        with self._lock:
            self.faults.append(Fault(status, "", "", {}, times, body.replace(b"{url}", self.url.encode()), content_type))

    def fail_sign_in(self, where: str, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
                     times: int | None = 1) -> None:
        """Entra ID answers the next request to `where` ("token" or "openid") with this (see SignInFault)."""
        with self._lock:
            self.sign_in_faults.append(SignInFault(where, status, body, content_type, times))

    def _take_sign_in_fault(self, where: str) -> SignInFault | None:
        with self._lock:
            fault = next((f for f in self.sign_in_faults if f.where == where), None)
            if fault is not None and fault.times is not None:
                if where == "token":
                    self.token_requests += 1
                fault.times -= 1
                if fault.times <= 0:
                    self.sign_in_faults.remove(fault)
            elif fault is not None and where == "token":
                self.token_requests += 1
            return fault

    def reset(self) -> None:
        with self._lock:
            self.tenants.clear()
            self.subscriptions.clear()
            self.faults.clear()
            self.sign_in_faults.clear()
            self.query_log.clear()
            self._tokens.clear()
            self.token_requests = 0

    # --- Entra ID ----------------------------------------------------------------------------------

    def _openid(self, path: str) -> tuple[int, dict[str, Any]]:
        segments = [s for s in path.split("/") if s]
        if len(segments) >= 3 and segments[-2:] == [".well-known", "openid-configuration"]:
            tenant = segments[0]
            if tenant not in self.tenants:
                return 400, {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                    "and are signing into the correct cloud.",
                    "error_codes": [90002],
                }
            base = f"{self.url}/{tenant}"
            return 200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "WW",
            }
        return 404, {"error": "not_found", "error_description": f"No route for {path}"}

    def _token(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        tenant = [s for s in path.split("/") if s][0]
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self._lock:
            self.token_requests += 1
            apps = self.tenants.get(tenant)
            client_id = form.get("client_id", "")
            if apps is None:
                return 400, {"error": "invalid_request", "error_description": f"AADSTS90002: Tenant '{tenant}' not found.", "error_codes": [90002]}
            if form.get("grant_type") != "client_credentials":
                return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: The app requested an unsupported grant type."}
            if client_id not in apps:
                return 400, {
                    "error": "unauthorized_client",
                    "error_description": f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory "
                    f"'{tenant}'. This can happen if the application has not been installed by the administrator of the tenant.",
                    "error_codes": [700016],
                }
            if not secrets.compare_digest(form.get("client_secret", ""), apps[client_id]):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the "
                    f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                    "error_codes": [7000215],
                }
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (tenant, client_id)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    # --- Cost Management ---------------------------------------------------------------------------

    def _query(self, path: str, params: dict[str, list[str]], authorization: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        segments = [s for s in path.split("/") if s]
        subscription_id = segments[1] if len(segments) >= 2 and segments[0].lower() == "subscriptions" else ""
        skiptoken = (params.get("$skiptoken") or [None])[0]
        entry: dict[str, Any] = {"subscription_id": subscription_id, "skiptoken": skiptoken, "api_version": (params.get("api-version") or [None])[0]}
        status, body, headers = self._answer_query(subscription_id, params, authorization, raw, skiptoken, entry)
        entry["status"] = status
        with self._lock:
            self.query_log.append(entry)
        return status, body, headers

    def _answer_query(
        self, subscription_id: str, params: dict[str, list[str]], authorization: str, raw: bytes, skiptoken: str | None, entry: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
            return status, {"error": {"code": code, "message": message}}, headers or {}

        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        with self._lock:
            identity = self._tokens.get(token)
            subscription = self.subscriptions.get(subscription_id)
        if identity is None:
            return error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        tenant, client_id = identity
        if not params.get("api-version"):
            return error(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
        if subscription is None:
            return error(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
        if subscription.tenant_id != tenant:
            return error(401, "InvalidAuthenticationTokenTenant",
                         f"The access token is from the wrong issuer '{self.url}/{tenant}/'. It must match the tenant "
                         f"'{self.url}/{subscription.tenant_id}/' associated with this subscription. Please use the authority "
                         f"(URL) '{self.url}/{subscription.tenant_id}' to get the token.")
        if subscription.readers.get(client_id) != "subscription":
            return error(subscription.denied_status, "RBACAccessDenied",
                         f"The client '{client_id}' does not have authorization to perform action "
                         f"'Microsoft.CostManagement/query/read' over scope '/subscriptions/{subscription_id}' or the scope is invalid. "
                         "If access was recently granted, please refresh your credentials.")
        with self._lock:
            fault = self.faults[0] if self.faults else None
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.pop(0)
        if fault is not None and fault.body is not None:
            return fault.status, RawBody(fault.body, fault.content_type), fault.headers
        if fault is not None:
            return error(fault.status, fault.code, fault.message, fault.headers)

        try:
            body = json.loads(raw)
            kind = body["type"]
            dataset = body["dataset"]
            grouping = [g["name"] for g in dataset.get("grouping") or []]
            start = datetime.fromisoformat(body["timePeriod"]["from"].replace("Z", "+00:00")).date()
            end = datetime.fromisoformat(body["timePeriod"]["to"].replace("Z", "+00:00")).date()
        except (ValueError, KeyError, TypeError) as exc:
            return error(400, "BadRequest", f"Invalid query definition: {exc}")
        entry.update({"type": kind, "from": start.isoformat(), "to": end.isoformat(), "grouping": grouping})
        if kind not in ("ActualCost", "AmortizedCost", "Usage"):
            return error(400, "BadRequest", f"Invalid query type {kind!r}.")
        if body.get("timeframe") != "Custom" or dataset.get("granularity") != "Daily":
            return error(400, "BadRequest", "The stand-in answers Custom timeframe, Daily granularity queries only.")
        if len(grouping) > 2 or any(name not in DIMENSIONS for name in grouping):
            return error(400, "BadRequest", f"Invalid grouping {grouping}: at most 2 dimensions of {sorted(DIMENSIONS)}.")
        if end < start or (end - start).days > 366:
            return error(400, "BadRequest", "Invalid time period: 'to' must follow 'from', within one year.")

        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        offset = 0
        if skiptoken:
            try:
                token_fingerprint, offset_text = base64.urlsafe_b64decode(skiptoken.encode()).decode().split(":")
                offset = int(offset_text)
            except ValueError:
                return error(400, "BadRequest", "Invalid $skiptoken.")
            if token_fingerprint != fingerprint:
                return error(400, "BadRequest", "The request body of a nextLink call must be the body of the original query.")

        sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        for record in subscription.records:
            amount = record.cost if kind != "AmortizedCost" else record.amortized_cost
            if amount is None or not (start <= record.day <= end):
                continue
            key = (int(record.day.strftime("%Y%m%d")), *(getattr(record, DIMENSIONS[name]) for name in grouping), record.currency)
            sums[key] += amount
        all_rows = [[amount, *key] for key, amount in sorted(sums.items(), key=lambda item: tuple("" if v is None else str(v) for v in item[0]))]
        page = all_rows[offset : offset + self.page_size]
        next_link = None
        if offset + self.page_size < len(all_rows):
            token = base64.urlsafe_b64encode(f"{fingerprint}:{offset + self.page_size}".encode()).decode()
            api_version = params["api-version"][0]
            next_link = (f"{self.url}/subscriptions/{subscription_id}/providers/Microsoft.CostManagement/query"
                         f"?api-version={quote(api_version)}&$skiptoken={quote(token)}")
        columns = [{"name": "Cost", "type": "Number"}, {"name": "UsageDate", "type": "Number"}]
        columns += [{"name": name, "type": "String"} for name in grouping]
        columns.append({"name": "Currency", "type": "String"})
        query_id = str(uuid.uuid4())
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        headers = {QPU_HEADER: str(months), QPU_REMAINING_HEADER: "QueriesPerTenantPer10Seconds:11,QueriesPerTenantPer1Min:59,QueriesPerTenantPer1Hour:599"}
        entry["rows"] = len(page)
        return 200, {
            "id": f"subscriptions/{subscription_id}/providers/Microsoft.CostManagement/query/{query_id}",
            "name": query_id,
            "type": "Microsoft.CostManagement/query",
            "location": None,
            "sku": None,
            "eTag": None,
            "properties": {"nextLink": next_link, "columns": columns, "rows": page},
        }, headers


# --- seeding ---------------------------------------------------------------------------------------

RESOURCE_GROUPS = (("rg-web", "web"), ("rg-data", "data"))
SERVICES: tuple[tuple[str, str | None, Decimal], ...] = (
    ("Virtual Machines", "westeurope", Decimal("182.40")),
    ("Storage", "westeurope", Decimal("41.17")),
    ("Azure Cosmos DB", "northeurope", Decimal("63.05")),
    ("Bandwidth", None, Decimal("7.93")),
    ("Azure Monitor", "westeurope", Decimal("3.21")),
)


def usage_records(charges: Sequence[Charge], reservation: Decimal | None = Decimal("1460.00")) -> list[UsageRecord]:
    """Synthetic charges -> Cost Management records (the charge's account id is the resource group).

    With `reservation`, each month also has a reservation purchase on its 1st (ActualCost only:
    AmortizedCost spreads it over the usage) and a small unused-reservation line each day
    (AmortizedCost only), so ActualCost and AmortizedCost have different row sets, as in Azure.
    """
    records = [
        UsageRecord(c.day, c.service, "Usage", c.account_id, c.region, c.amount, c.amortized, c.currency)
        for c in charges
    ]
    if reservation is not None and charges:
        currency = charges[0].currency
        days = sorted({c.day for c in charges})
        for day in days:
            if day.day == 1:
                records.append(UsageRecord(day, "Virtual Machines", "Purchase", None, None, reservation, None, currency))
            unused = (reservation / Decimal(365) * Decimal("0.0375")).quantize(Decimal("0.0000000001"))
            records.append(UsageRecord(day, "Virtual Machines", "UnusedReservation", None, "westeurope", None, unused, currency))
    return records


def seed_subscription(
    sandbox: AzureSandbox,
    subscription_id: str,
    start: date,
    days: int,
    currency: str = "USD",
    seed: str | None = None,
) -> list[UsageRecord]:
    charges = daily_charges(seed or subscription_id, start, days, RESOURCE_GROUPS, SERVICES, currency=currency)
    records = usage_records(charges)
    sandbox.add_usage(subscription_id, records)
    return records


# --- the demo's Azure --------------------------------------------------------------------------------

DEMO_TENANT = "7a1c0d2e-3f4b-4c5d-8e6f-0a1b2c3d4e5f"
DEMO_CLIENT = "0f9e8d7c-6b5a-4d3c-9b2a-1f0e9d8c7b6a"
DEMO_SECRET_ENV = "FINOPS_DEMO_AZURE_CLIENT_SECRET"
DEMO_SUBSCRIPTION = "3b8d6f1a-2c4e-4a6b-9d8f-1e3a5c7b9d0f"
DEMO_SUBSCRIPTION_RG_ONLY = "5e7f9a1b-3c5d-4e6f-8a9b-2c4d6e8f0a1b"


class AzureDemo:
    """Drives the stand-in for finops_sandbox.demo: one subscription with 60+ days of costs, and one
    whose app has Cost Management Reader only on a resource group (shows the diagnosis)."""

    def __init__(self, include_misconfigured: bool = True):
        self.include_misconfigured = include_misconfigured
        self.sandbox: AzureSandbox | None = None
        self._secret = "demo-" + secrets.token_urlsafe(18)

    def start(self, port: int) -> None:
        self.sandbox = AzureSandbox(port=port).start()
        self.sandbox.add_app(DEMO_TENANT, DEMO_CLIENT, self._secret)
        self.sandbox.add_subscription(DEMO_SUBSCRIPTION, DEMO_TENANT)
        self.sandbox.assign_reader(DEMO_SUBSCRIPTION, DEMO_CLIENT, "subscription")
        if self.include_misconfigured:
            self.sandbox.add_subscription(DEMO_SUBSCRIPTION_RG_ONLY, DEMO_TENANT)
            self.sandbox.assign_reader(DEMO_SUBSCRIPTION_RG_ONLY, DEMO_CLIENT, "resourceGroup:rg-web")

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def _running(self) -> AzureSandbox:
        if self.sandbox is None:
            raise RuntimeError("AzureDemo.start(port) first")
        return self.sandbox

    def accounts(self, now: datetime) -> list[dict[str, Any]]:
        url = self._running().url
        common = {"provider": "azure", "source": "cost_management", "tenant_id": DEMO_TENANT, "client_id": DEMO_CLIENT,
                  "client_secret_env": DEMO_SECRET_ENV, "endpoint": url, "authority_host": url,
                  "ca_bundle": self._running().ca_file}
        accounts = [{"key": "azure-prod", "name": "Contoso production (Azure)", "subscription_id": DEMO_SUBSCRIPTION,
                     "connected_at": (now - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"), **common}]
        if self.include_misconfigured:
            accounts.append({"key": "azure-analytics", "name": "Contoso analytics (role on a resource group only)",
                             "subscription_id": DEMO_SUBSCRIPTION_RG_ONLY,
                             "connected_at": (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"), **common})
        return accounts

    def environment(self) -> dict[str, str]:
        return {DEMO_SECRET_ENV: self._secret}

    def seed(self, config: Any, periods: list[str], today: date) -> None:
        sandbox = self._running()
        first = min([date.fromisoformat(f"{p}-01") for p in periods] + [today - timedelta(days=60)])
        days = (today - first).days  # ends yesterday
        for account in config.for_source("azure", "cost_management"):
            subscription_id = account.settings["subscription_id"]
            if subscription_id in sandbox.subscriptions and account.settings.get("endpoint") == sandbox.url:
                sandbox.subscriptions[subscription_id].records.clear()
                seed_subscription(sandbox, subscription_id, first, days)
