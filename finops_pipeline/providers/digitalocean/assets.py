"""Dagster asset and checks for DigitalOcean billing (billing insights through pydo)."""


from decimal import Decimal
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from finops_pipeline.providers.digitalocean.billing import pull_billing
from finops_pipeline.providers.digitalocean.invoice_check import compare_invoices
from finops_pipeline.resources import FinopsResource
from finops_pipeline.source_asset import BILLING_PERIODS, materialize_source, source_checks, source_definition_metadata

NOTES = (
    "Daily rows come from billing insights (per day, region, SKU and invoice item group). DigitalOcean "
    "says their sum may differ from the month's invoice: the `invoice_matches_daily` check shows the "
    "difference for every invoiced month. Rows stay `x_Estimated` until the month's invoice is issued."
)


@asset(
    group_name="digitalocean",
    kinds={"digitalocean", "parquet"},
    partitions_def=BILLING_PERIODS,
    description=(
        "Daily DigitalOcean cost per team, region, SKU and item group from billing insights "
        "(GET /v2/billing/{team urn}/insights, 31-day ranges, 200 points a page), with the month's invoice "
        "(closed months) or balance and invoice preview (open month) beside it. One partition per billing period; "
        "each refresh replaces that month for every configured team. Token scope: billing:read (+ account:read)."
    ),
    metadata=source_definition_metadata("digitalocean", "billing", NOTES),
)
def digitalocean_billing_costs(context: AssetExecutionContext, finops: FinopsResource) -> MaterializeResult:
    return materialize_source(context, finops, "digitalocean", "billing", pull_billing)


@asset_check(
    asset=digitalocean_billing_costs,
    name="invoice_matches_daily",
    description=(
        "For every invoiced month, the sum of the daily rows equals the invoice to the cent. DigitalOcean warns "
        "the daily figures may miss month-end invoicing factors, so a difference fails with WARN severity (the "
        "rows are kept as DigitalOcean reported them) and the metadata shows invoice, daily sum and difference."
    ),
)
def digitalocean_invoice_matches_daily(finops: FinopsResource) -> AssetCheckResult:
    results = compare_invoices(finops.data_path())
    invoiced = [r for r in results if "invoice_amount" in r]
    differing = [r for r in invoiced if not r["matches"]]
    metadata: dict[str, Any] = {
        "months_invoiced": len(invoiced),
        "months_differing": len(differing),
        "by_month": MetadataValue.json({f"{r['account']}/{r['billing_period']}": r for r in results}),
    }
    if invoiced:
        lines = ["| account | month | invoice | daily sum | difference | % |", "|---|---|---:|---:|---:|---:|"]
        lines += [
            f"| {r['account']} | {r['billing_period']} | {r['invoice_amount']} | {r['daily_total']} | {r['difference']} | "
            f"{r['difference_percent']} |"
            for r in invoiced
        ]
        metadata["invoices"] = MetadataValue.md("\n".join(lines))
    return AssetCheckResult(
        passed=not differing,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            f"{len(invoiced)} invoiced month(s) match their daily rows to the cent." if not differing
            else "Daily rows differ from the invoice for " + ", ".join(f"{r['account']} {r['billing_period']} ({_cents(r['difference'])} USD)" for r in differing)
        ),
    )


def _cents(amount: str) -> str:
    return str(Decimal(amount).quantize(Decimal("0.01")))


digitalocean_billing_checks: list[AssetChecksDefinition] = [
    *source_checks(digitalocean_billing_costs.key, "digitalocean", "billing"),
    digitalocean_invoice_matches_daily,
]
