"""Closed months: the daily rows in the lake against DigitalOcean's invoice, without Dagster.

Each partition file carries the invoice figures read when it was written (`finops.invoice`); the
daily side is summed from the partition's rows, so the comparison covers exactly what people query.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from finops_pipeline import storage
from finops_pipeline.defs.digitalocean.billing.invoices import CENT, CLOSED
from finops_pipeline.lake import list_partitions, read_partition_extra
from finops_pipeline.storage import Location

INVOICE_METADATA_KEY = b"finops.invoice"


def stored_invoice(path: Location) -> dict[str, Any] | None:
    raw = read_partition_extra(path, INVOICE_METADATA_KEY.decode().removeprefix("finops."))
    return raw if isinstance(raw, dict) else None


def compare_invoices(data_dir: Location) -> list[dict[str, Any]]:
    """One entry per partition: its status, and for invoiced months daily vs invoice and the difference."""
    results = []
    connection = storage.connect_duckdb(data_dir)
    try:
        for key, path in list_partitions(data_dir, "digitalocean", "billing"):
            invoice = stored_invoice(path) or {}
            (daily,) = connection.execute(
                "SELECT coalesce(sum(BilledCost), 0) FROM read_parquet(?) WHERE BillingCurrency = 'USD'", [str(path)]
            ).fetchone()
            daily = Decimal(str(daily))
            entry: dict[str, Any] = {"account": key.account, "billing_period": key.billing_period,
                                     "status": invoice.get("status", "unknown"), "daily_total": str(daily)}
            if invoice.get("status") == CLOSED and invoice.get("invoice_amount") is not None:
                amount = Decimal(invoice["invoice_amount"])
                difference = daily - amount
                entry.update(
                    invoice_uuid=invoice.get("invoice_uuid"),
                    invoice_amount=str(amount),
                    difference=str(difference),
                    difference_percent=str((difference / amount * 100).quantize(CENT, rounding=ROUND_HALF_EVEN)) if amount else None,
                    matches=daily.quantize(CENT, rounding=ROUND_HALF_EVEN) == amount,
                    invoice_items_by_product=invoice.get("invoice_items_by_product"),
                )
            elif invoice.get("month_to_date_usage") is not None:
                entry["month_to_date_usage"] = invoice["month_to_date_usage"]
                entry["invoice_preview_amount"] = invoice.get("invoice_preview_amount")
            results.append(entry)
    finally:
        connection.close()
    return results
