"""DigitalOcean billing in Dagster: one asset per team, its checks (invoice included), job and schedule."""

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import dagster as dg
from dagster import AssetCheckExecutionContext

from finops_pipeline.config import Account
from finops_pipeline.dagster_sources import SourceDagsterSpec, account_asset_key, source_definitions
from finops_pipeline.defs.digitalocean.billing.source import SOURCE
from finops_pipeline.resources import FinopsResource

NOTES = (
    "Daily rows come from billing insights (per day, region, SKU and invoice item group). DigitalOcean "
    "says their sum may differ from the month's invoice: the `invoice_matches_daily` check shows the "
    "difference for every invoiced month. Rows stay `x_Estimated` until the month's invoice is issued."
)


def _pull(data_dir, now):
    from finops_pipeline.defs.digitalocean.billing.pull import pull_billing

    return pull_billing


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"digitalocean", "parquet"}),
    description=(
        "daily DigitalOcean cost per team, region, SKU and item group from billing insights "
        "(GET /v2/billing/{team urn}/insights, 31-day ranges, 200 points a page), with the month's invoice "
        "(closed months) or balance and invoice preview (open month) beside it. One partition per billing period; "
        "each refresh replaces that month. Token scope: billing:read (+ account:read)."
    ),
    notes=NOTES,
)

INVOICE_CHECK_DESCRIPTION = (
    "For every invoiced month, the sum of the daily rows equals the invoice to the cent. DigitalOcean warns "
    "the daily figures may miss month-end invoicing factors, so a difference fails with WARN severity (the "
    "rows are kept as DigitalOcean reported them) and the metadata shows invoice, daily sum and difference."
)


def invoice_checks(accounts: Sequence[Account]) -> list[dg.AssetChecksDefinition]:
    keys = {a.key: account_asset_key(a) for a in accounts}

    @dg.multi_asset_check(
        name="digitalocean_billing_invoice_matches_daily",
        specs=[dg.AssetCheckSpec("invoice_matches_daily", asset=key, description=INVOICE_CHECK_DESCRIPTION) for key in keys.values()],
        can_subset=True,
    )
    def invoice_matches_daily(context: AssetCheckExecutionContext, finops: FinopsResource) -> Iterator[dg.AssetCheckResult]:
        from finops_pipeline.defs.digitalocean.billing.invoice_check import compare_invoices

        wanted = {k.asset_key for k in context.selected_asset_check_keys}
        results = compare_invoices(finops.data_path())
        for account_key, asset_key in keys.items():
            if asset_key in wanted:
                yield _invoice_result(asset_key, [r for r in results if r["account"] == account_key])

    return [invoice_matches_daily]


def _invoice_result(asset_key: dg.AssetKey, results: list[dict[str, Any]]) -> dg.AssetCheckResult:
    invoiced = [r for r in results if "invoice_amount" in r]
    differing = [r for r in invoiced if not r["matches"]]
    metadata: dict[str, Any] = {
        "months_invoiced": len(invoiced),
        "months_differing": len(differing),
        "by_month": dg.MetadataValue.json({r["billing_period"]: r for r in results}),
    }
    if invoiced:
        lines = ["| month | invoice | daily sum | difference | % |", "|---|---:|---:|---:|---:|"]
        lines += [
            f"| {r['billing_period']} | {r['invoice_amount']} | {r['daily_total']} | {r['difference']} | {r['difference_percent']} |"
            for r in invoiced
        ]
        metadata["invoices"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="invoice_matches_daily",
        passed=not differing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            f"{len(invoiced)} invoiced month(s) match their daily rows to the cent." if not differing
            else "Daily rows differ from the invoice for " + ", ".join(f"{r['billing_period']} ({_cents(r['difference'])} USD)" for r in differing)
        ),
    )


def _cents(amount: str) -> str:
    return str(Decimal(amount).quantize(Decimal("0.01")))


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC, extra_checks=invoice_checks)
