"""What DigitalOcean will bill for a month: the invoice (closed months), or the balance and the
invoice preview (the open month). Compared with the daily rows, never merged into them.

A closed month's invoice is final, so its daily rows stop being estimates; the difference between
the invoice and the daily sum is reported (DigitalOcean says the two may differ: the nightly items
behind the daily figures miss some month-end invoicing factors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError, malformed_answer
from finops_pipeline.money import money_sum, sum_by_currency
from finops_pipeline.schema import to_decimal

TITLE = "DigitalOcean billing"


def malformed(what: str, sample: Any = "") -> ProviderError:
    return malformed_answer("digitalocean", TITLE, what, str(sample)[:300])


def answer(call: Any, what: str, *args: Any, list_field: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """One pydo call whose answer must be a JSON object (with `list_field` a list, when named).

    pydo returns None for an empty body and raises a JSON error for garbage: both are malformed answers.
    """
    from azure.core.exceptions import DecodeError

    try:
        body = call(*args, **kwargs)
    except (DecodeError, ValueError) as exc:
        raise malformed(f"{what}: a body that is not JSON (an HTML page or garbage)", f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(body, dict):
        raise malformed(f"{what}: {'an empty body' if body is None else 'not a JSON object'}", repr(body)[:200])
    if list_field and not (body.get("id") == "not_found") and not isinstance(body.get(list_field), list):
        raise malformed(f"{what}: no '{list_field}' list", repr(body)[:200])
    return body

PER_PAGE = 200
MAX_PAGES = 1000
CENT = Decimal("0.01")

CLOSED = "invoiced"  # the month has its final invoice
OPEN = "open"  # the month is running: balance and preview only
AWAITING = "awaiting_invoice"  # the month ended but its invoice is not issued yet


@dataclass
class InvoiceFigures:
    billing_period: str
    status: str
    invoice_uuid: str | None = None
    # FOCUS InvoiceId of the month's rows: the issued invoice's id, when the month has exactly one.
    invoice_id: str | None = None
    invoice_amount: Decimal | None = None
    items_total: Decimal | None = None
    items_by_product: dict[str, Decimal] = field(default_factory=dict)
    preview_amount: Decimal | None = None
    month_to_date_usage: Decimal | None = None
    balance_generated_at: str | None = None

    @property
    def final(self) -> bool:
        return self.status == CLOSED

    def compare(self, daily_total: Decimal) -> dict[str, Any]:
        """The month's daily sum against what DigitalOcean bills (JSON-ready, amounts as strings)."""
        result: dict[str, Any] = {"billing_period": self.billing_period, "status": self.status, "currency": "USD",
                                  "daily_total": str(daily_total)}
        if self.invoice_uuid:
            result["invoice_uuid"] = self.invoice_uuid
        reference = self.invoice_amount
        if reference is not None:
            result["invoice_amount"] = str(reference)
        if self.items_total is not None:
            result["invoice_items_total"] = str(self.items_total)
            result["invoice_items_by_product"] = {k: str(v) for k, v in sorted(self.items_by_product.items())}
        if self.preview_amount is not None:
            result["invoice_preview_amount"] = str(self.preview_amount)
        if self.month_to_date_usage is not None:
            result["month_to_date_usage"] = str(self.month_to_date_usage)
            result["balance_generated_at"] = self.balance_generated_at
        if reference is not None:
            difference = daily_total - reference
            result["difference"] = str(difference)
            result["difference_percent"] = (
                str((difference / reference * 100).quantize(CENT, rounding=ROUND_HALF_EVEN)) if reference else None
            )
            # Invoices are in cents; the daily figures carry more places. Equal to the cent = matches.
            result["matches_to_the_cent"] = daily_total.quantize(CENT, rounding=ROUND_HALF_EVEN) == reference
        return result


def _raise_not_found(body: dict[str, Any], what: str) -> None:
    raise ProviderError(Diagnosis(
        "digitalocean.invoice_not_found", ERROR,
        f"DigitalOcean did not find {what}.",
        "Check that the token belongs to the team that owns the billing; retry later if the invoice was just issued.",
        f"{body.get('id')}: {body.get('message')}",
    ))


def list_invoices(client: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """All invoices (following links.pages.next) and the preview of the open month."""
    invoices: list[dict[str, Any]] = []
    preview = None
    page = 1
    while page <= MAX_PAGES:
        body = answer(client.invoices.list, "the invoice list", list_field="invoices", per_page=PER_PAGE, page=page)
        invoices.extend(body.get("invoices") or [])
        preview = preview or body.get("invoice_preview")
        if not ((body.get("links") or {}).get("pages") or {}).get("next"):
            break
        page += 1
    return invoices, preview


def invoice_items(client: Any, invoice_uuid: str) -> list[dict[str, Any]]:
    """Every item of one invoice ("preview" for the open month), page by page."""
    items: list[dict[str, Any]] = []
    page = 1
    while page <= MAX_PAGES:
        body = answer(client.invoices.get_by_uuid, f"invoice {invoice_uuid}", invoice_uuid, list_field="invoice_items",
                      per_page=PER_PAGE, page=page)
        if isinstance(body, dict) and body.get("id") == "not_found":
            if invoice_uuid == "preview":  # a team with no usage yet this month has nothing to preview
                return []
            _raise_not_found(body, f"invoice {invoice_uuid}")
        items.extend(body.get("invoice_items") or [])
        if not ((body.get("links") or {}).get("pages") or {}).get("next"):
            break
        page += 1
    return items


def _items_by_product(items: list[dict[str, Any]]) -> tuple[Decimal, dict[str, Decimal]]:
    amounts = [(item.get("product") or "(no product)", to_decimal(item.get("amount") or "0", field="invoice item amount"))
               for item in items]
    return money_sum(amount for _, amount in amounts), sum_by_currency(amounts)  # one currency: by product


def invoice_figures(client: Any, billing_period: str, today: date) -> InvoiceFigures:
    """The invoice of a closed month, or the balance and preview of the open one."""
    invoices, preview = list_invoices(client)
    if billing_period == today.strftime("%Y-%m"):
        balance = answer(client.balance.get, "the balance")
        if isinstance(balance, dict) and balance.get("id") == "not_found":
            _raise_not_found(balance, "the customer balance")
        items_total, by_product = _items_by_product(invoice_items(client, "preview"))
        usage = balance.get("month_to_date_usage")
        return InvoiceFigures(
            billing_period, OPEN,
            invoice_uuid=(preview or {}).get("invoice_uuid"),
            preview_amount=to_decimal(preview["amount"], field="invoice preview amount") if (preview or {}).get("amount") else None,
            items_total=items_total,
            items_by_product=by_product,
            month_to_date_usage=to_decimal(usage, field="month_to_date_usage") if usage else None,
            balance_generated_at=balance.get("generated_at"),
        )
    matching = [i for i in invoices if i.get("invoice_period") == billing_period]
    if not matching:
        return InvoiceFigures(billing_period, AWAITING)
    # One invoice per team and month is the rule; should there be more, the month owes their sum.
    amount = money_sum(to_decimal(i.get("amount") or "0", field="invoice amount") for i in matching)
    items: list[dict[str, Any]] = []
    for invoice in matching:
        items.extend(invoice_items(client, invoice["invoice_uuid"]))
    items_total, by_product = _items_by_product(items)
    return InvoiceFigures(
        billing_period, CLOSED,
        invoice_uuid=",".join(i["invoice_uuid"] for i in matching),
        invoice_id=(str(matching[0].get("invoice_id") or matching[0]["invoice_uuid"]) if len(matching) == 1 else None),
        invoice_amount=amount,
        items_total=items_total,
        items_by_product=by_product,
    )
