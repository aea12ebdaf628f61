"""The FinOps dashboard as one self-contained HTML file (`<data>/dashboard.html`).

It shows what the knowledge base promises a user: a cost card per provider (or "No data" with the
cause and fix), the daily trend for the last 7 and 30 days, the By Account breakdown and the
connection status. Every figure is read from the catalog's dashboard tables (marts.py), so the page,
`finops-pipeline query` and SQL clients always agree; nothing is recomputed here. The page loads
nothing from the network (inline CSS and SVG, and a Content-Security-Policy that forbids fetching).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from finops_pipeline.catalog import CATALOG_FILE, catalog_path, query
from finops_pipeline.charts import Series, legend_html, money, png_bar_chart, series_by_currency, svg_bar_chart
from finops_pipeline.lake import atomic_file, mart_path
from finops_pipeline.sources import providers

DASHBOARD_FILE = "dashboard.html"
# The tables this page reads (the catalog's insight tables are not on the page yet).
PAGE_TABLES = ("provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status")
ATTENTION = ("ERROR", "NO_DATA")
_STATUS_ORDER = "CASE status WHEN 'ERROR' THEN 0 WHEN 'NO_DATA' THEN 1 WHEN 'PENDING' THEN 2 ELSE 3 END"


class DashboardNotReady(FileNotFoundError):
    """The catalog or a dashboard table does not exist yet."""


@dataclass(frozen=True)
class DashboardData:
    as_of: date | None
    summary: list[dict[str, Any]]  # provider_cost_summary
    trend: list[Series]  # daily_cost_trend, per currency
    by_account: list[dict[str, Any]]  # cost_by_account
    connections: list[dict[str, Any]]  # billing_connection_status, ERROR and NO_DATA first
    missing: list[str]  # dashboard tables not built yet

    def providers(self) -> list[str]:
        return sorted({row["provider"] for row in self.summary})


def dashboard_path(data_dir: Path) -> Path:
    return Path(data_dir) / DASHBOARD_FILE


def _rows(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    columns, rows = query(data_dir, sql)
    return [dict(zip(columns, row)) for row in rows]


def read_dashboard_data(data_dir: Path) -> DashboardData:
    """The four dashboard tables, as the catalog serves them. A table not built yet reads as empty
    (the hourly check job can run before the first refresh) and is named on the page."""
    missing = [name for name in PAGE_TABLES if not mart_path(data_dir, name).exists()]
    if not catalog_path(data_dir).exists() or len(missing) == len(PAGE_TABLES):
        raise DashboardNotReady(
            f"The dashboard tables are not in {Path(data_dir) / CATALOG_FILE} yet: run the pipeline first (make demo, "
            "or materialize the 'dashboard' asset group in the Dagster UI), or point FINOPS_DATA_DIR / --data-dir at "
            "the data directory that holds them."
        )

    def rows(name: str, sql: str) -> list[dict[str, Any]]:
        return [] if name in missing else _rows(data_dir, sql)

    summary = rows("provider_cost_summary", "SELECT * FROM provider_cost_summary ORDER BY provider, currency NULLS LAST")
    trend = rows("daily_cost_trend", "SELECT provider, currency, day, billed_cost FROM daily_cost_trend ORDER BY currency, provider, day")
    by_account = rows("cost_by_account", "SELECT * FROM cost_by_account ORDER BY provider, currency, last_30_days DESC, cloud_account_id")
    connections = rows("billing_connection_status", f"SELECT * FROM billing_connection_status ORDER BY {_STATUS_ORDER}, provider, account_key")
    as_of = next((row["as_of"] for row in summary if row.get("as_of")), None)
    series = series_by_currency([(r["provider"], r["currency"], r["day"], r["billed_cost"]) for r in trend])
    return DashboardData(as_of, summary, series, by_account, connections, missing)


def write_dashboard(data_dir: Path, now: datetime | None = None, data: DashboardData | None = None) -> Path:
    """Render the dashboard from the catalog (or from `data` already read) and replace the HTML file atomically."""
    data = data or read_dashboard_data(data_dir)
    html = render_dashboard(data, now or datetime.now(timezone.utc), catalog_path(data_dir))
    target = dashboard_path(data_dir)
    with atomic_file(target) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return target


# --- the page ------------------------------------------------------------------------------------

def _provider_name(provider: str) -> str:
    known = providers().get(provider)
    return known.label if known else provider


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return escape(value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    if isinstance(value, date):
        return escape(value.isoformat())
    if isinstance(value, Decimal):
        return escape(money(value))
    return escape(str(value))


def _change(pct: float | None, previous: Decimal | None, currency: str) -> str:
    if pct is None:
        return '<span class="flat">n/a (no cost in the 30 days before)</span>'
    arrow, css = ("&#9650;", "up") if pct > 0 else ("&#9660;", "down") if pct < 0 else ("&#9654;", "flat")
    return (
        f'<span class="{css}" data-field="change_pct">{arrow} {pct:+.1f}%</span> '
        f'<span class="muted">vs {escape(money(previous, currency))} in the 30 days before</span>'
    )


def _attention_list(connections: list[dict[str, Any]]) -> str:
    items = []
    for c in connections:
        if c["status"] == "PENDING" and not c.get("cause"):
            text = f"connected {c['connected_for']} ago; billing data takes 24 to 48 hours to appear."
            if c.get("becomes_no_data_at"):
                text += f" It shows NO_DATA from {c['becomes_no_data_at']:%Y-%m-%d %H:%M} UTC if none arrives."
            items.append(f'<li><b>{_e(c["account_key"])}</b> <span class="status PENDING">PENDING</span> {escape(text)}</li>')
        elif c.get("cause"):
            items.append(
                f'<li data-account="{_e(c["account_key"])}"><b>{_e(c["account_key"])}</b> '
                f'<span class="status {_e(c["status"])}">{_e(c["status"])}</span> {_e(c["cause"])}'
                f'<div class="fix"><b>Fix:</b> {_e(c["fix"])}</div></li>'
            )
    return f'<ul class="attention">{"".join(items)}</ul>' if items else ""


def _first_days(by_account: list[dict[str, Any]]) -> dict[tuple[str, str], date]:
    """The first day with data per provider and currency, from the By Account table."""
    first: dict[tuple[str, str], date] = {}
    for r in by_account:
        key = (r["provider"], r["currency"])
        if r["first_day"] and (key not in first or r["first_day"] < first[key]):
            first[key] = r["first_day"]
    return first


def _partial_note(first_day: date | None, as_of: date | None) -> str:
    """A change against a window the lake holds only part of is not a trend: say so."""
    if not first_day or not as_of or first_day <= as_of - timedelta(days=60):
        return ""
    return (
        f'<div class="muted partial">The 30 days before are only partly loaded (data from {_e(first_day)}): '
        "materialize the earlier billing periods (a backfill) for a like-for-like change.</div>"
    )


def _card(provider: str, rows: list[dict[str, Any]], connections: list[dict[str, Any]],
          first_days: dict[tuple[str, str], date] | None = None, as_of: date | None = None) -> str:
    first_days = first_days or {}
    mine = [c for c in connections if c["provider"] == provider]
    with_data = [r for r in rows if r["has_data"]]
    body = []
    if not with_data:
        body.append('<div class="nodata">No data</div>')
        body.append(_attention_list(mine))
    for r in with_data:
        currency = r["currency"]
        body.append(
            f'<div class="currency" data-currency="{_e(currency)}">'
            f'<div class="label">Month to date</div>'
            f'<div class="big" data-field="month_to_date">{escape(money(r["month_to_date"], currency))}</div>'
            f'<div class="row"><span>Last 30 days</span><b data-field="last_30_days">{escape(money(r["last_30_days"], currency))}</b></div>'
            f'<div class="row"><span>Last 7 days</span><b data-field="last_7_days">{escape(money(r["last_7_days"], currency))}</b></div>'
            f'<div class="change">{_change(r["change_pct_vs_previous_30_days"], r["previous_30_days"], currency)}</div>'
            + _partial_note(first_days.get((provider, currency)), as_of)
            + f'<div class="muted">{r["accounts_with_data"]} account(s) with data; last day {_e(r["last_day_with_data"])}</div>'
            "</div>"
        )
    if with_data:
        needing = [c for c in mine if c["status"] in ATTENTION]
        if needing:
            body.append(f'<div class="warn">{len(needing)} account(s) need attention:</div>' + _attention_list(needing))
    return f'<section class="card" data-provider="{_e(provider)}"><h3>{escape(_provider_name(provider))}</h3>{"".join(body)}</section>'


def _trend_section(data: DashboardData) -> str:
    if not data.trend:
        return '<p class="muted">No cost in the last 30 days.</p>'
    totals = {(r["provider"], r["currency"]): r for r in data.summary if r["has_data"]}
    blocks = []
    for series in data.trend:
        window_totals = "".join(
            f'<li>{escape(_provider_name(p))}: last 30 days <b>{escape(money(totals[(p, series.currency)]["last_30_days"], series.currency))}</b>, '
            f'last 7 days <b>{escape(money(totals[(p, series.currency)]["last_7_days"], series.currency))}</b></li>'
            for p in series.providers
            if (p, series.currency) in totals
        )
        header = "".join(f"<th>{escape(p)}</th>" for p in series.providers)
        table_rows = "".join(
            f"<tr><td>{day.isoformat()}</td>"
            + "".join(f'<td class="num">{escape(money(series.amounts[p].get(day, Decimal(0))))}</td>' for p in series.providers)
            + "</tr>"
            for day in series.days
        )
        first, last = (series.days[0], series.days[-1]) if series.days else (None, None)
        blocks.append(
            f'<div class="trend" data-currency="{escape(series.currency)}">'
            f"<h3>{escape(series.currency)}</h3>{legend_html(series.providers)}<ul class=\"totals\">{window_totals}</ul>"
            f'<h4>Last 30 days ({_e(first)} to {_e(last)})</h4>'
            + svg_bar_chart(series, f"Daily billed cost in {series.currency}, last 30 days")
            + "<h4>Last 7 days</h4>"
            + svg_bar_chart(series.last(7), f"Daily billed cost in {series.currency}, last 7 days", width=560, label_bars=True)
            + f"<details><summary>Daily figures ({escape(series.currency)})</summary>"
            f'<table class="grid"><tr><th>day</th>{header}</tr>{table_rows}</table></details></div>'
        )
    return "".join(blocks)


def _by_account(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No account has cost data yet.</p>'
    out = [
        '<table class="grid" id="by-account"><tr><th>Provider</th><th>Account (registry)</th><th>Cloud account</th>'
        '<th>Currency</th><th class="num">Month to date</th><th class="num">Last 30 days</th>'
        '<th class="num">30 days before</th><th>Data from</th><th>Data to</th></tr>'
    ]
    for r in rows:
        cloud = _e(r["cloud_account_id"]) + (f' <span class="muted">{_e(r["cloud_account_name"])}</span>' if r["cloud_account_name"] else "")
        out.append(
            f'<tr data-account="{_e(r["account_key"])}" data-cloud-account="{_e(r["cloud_account_id"])}">'
            f'<td>{escape(_provider_name(r["provider"]))}</td><td>{_e(r["account_name"])} <span class="muted">{_e(r["account_key"])}</span></td>'
            f'<td>{cloud}</td><td>{_e(r["currency"])}</td><td class="num">{_e(r["month_to_date"])}</td>'
            f'<td class="num">{_e(r["last_30_days"])}</td><td class="num">{_e(r["previous_30_days"])}</td>'
            f'<td>{_e(r["first_day"])}</td><td>{_e(r["last_day"])}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def _connections(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No accounts are configured in finops.yaml.</p>'
    out = [
        '<table class="grid" id="connections"><tr><th>Status</th><th>Account</th><th>Provider / source</th>'
        '<th class="num">Connected for</th><th>Data</th><th>Last successful pull</th><th>Cause and fix</th></tr>'
    ]
    for r in rows:
        advice = ""
        if r["cause"]:
            advice = f'{_e(r["cause"])}<div class="fix"><b>Fix:</b> {_e(r["fix"])}</div>'
        if r["last_error"]:
            advice += f'<div class="muted">{_e(r["error_code"])}: {_e(r["last_error"])}</div>'
        span = f'{_e(r["first_day_with_data"])} to {_e(r["last_day_with_data"])}' if r["first_day_with_data"] else "none"
        out.append(
            f'<tr data-account="{_e(r["account_key"])}" data-status="{_e(r["status"])}">'
            f'<td><span class="status {_e(r["status"])}">{_e(r["status"])}</span></td>'
            f'<td><b>{_e(r["account_key"])}</b><br><span class="muted">{_e(r["account_name"])}</span></td>'
            f'<td>{_e(r["provider"])} / {_e(r["source"])}</td><td class="num">{_e(r["connected_for"])}</td>'
            f'<td>{span}</td><td>{_e(r["last_successful_pull"])}</td><td>{advice}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d232b}
header{background:#1d232b;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c3cad4}
main{padding:20px 28px;max-width:1280px}h2{margin:28px 0 12px;font-size:18px}h3{margin:0 0 8px;font-size:16px}h4{margin:14px 0 4px;font-size:13px;color:#555}
.cards{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border-radius:8px;padding:16px 18px;min-width:260px;max-width:400px;flex:1;box-shadow:0 1px 3px #0002}
.currency+.currency{border-top:1px solid #eee;margin-top:10px;padding-top:10px}
.big{font-size:26px;font-weight:600;margin:2px 0 6px}.label{color:#666;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.row{display:flex;justify-content:space-between;gap:12px}.muted{color:#6b7480;font-size:12px}.change{margin:6px 0 4px}
.up{color:#c0392b;font-weight:600}.down{color:#1e8449;font-weight:600}.flat{color:#6b7480}
.nodata{font-size:24px;font-weight:600;color:#c0392b;margin:4px 0 8px}.warn{color:#b9770e;margin-top:10px;font-weight:600}
ul.attention{padding-left:18px;margin:6px 0}ul.attention li{margin-bottom:8px}.fix{margin-top:3px}
.status{display:inline-block;border-radius:4px;padding:1px 6px;font-size:12px;font-weight:600;color:#fff}
.status.OK{background:#1e8449}.status.PENDING{background:#7f8c8d}.status.NO_DATA{background:#c0392b}.status.ERROR{background:#8e1b10}
.trend{background:#fff;border-radius:8px;padding:16px 18px;margin-bottom:16px;box-shadow:0 1px 3px #0002}
.chart{max-width:100%;height:auto}.chart .grid{stroke:#e3e6ea}.chart .axis{font-size:11px;fill:#6b7480}.chart .value{font-size:10px;fill:#333}
.legends{margin:0 0 6px}.legend{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
ul.totals{margin:4px 0;padding-left:18px}
table.grid{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 3px #0002}
table.grid th,table.grid td{padding:6px 10px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
table.grid th{background:#fafbfc;font-size:12px;color:#555}.num{text-align:right!important;font-variant-numeric:tabular-nums}
details{margin-top:8px}
"""


def _missing_banner(missing: list[str]) -> str:
    if not missing:
        return ""
    return (
        f'<p class="warn" id="missing">Not built yet: {escape(", ".join(missing))}. Run the refresh_costs job '
        "(or materialize the 'dashboard' group) to fill them.</p>"
    )


def render_dashboard(data: DashboardData, generated_at: datetime, catalog: Path | None = None) -> str:
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for row in data.summary:
        by_provider.setdefault(row["provider"], []).append(row)
    first_days = _first_days(data.by_account)
    cards = "".join(_card(p, by_provider[p], data.connections, first_days, data.as_of) for p in data.providers())
    if not cards:
        cards = '<p class="muted">No providers are configured in finops.yaml.</p>'
    attention = sum(1 for c in data.connections if c["status"] in ATTENTION)
    source = f" from {escape(str(catalog))}" if catalog else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FinOps dashboard{f" - {_e(data.as_of)}" if data.as_of else ""}</title><style>{_STYLE}</style></head>
<body><header><h1>FinOps dashboard</h1>
<p>As of {_e(data.as_of) or "n/a"}: BilledCost in each billing currency (currencies are never added together).
Windows are whole UTC days before that date; month to date includes today's partial figures.
{attention} account(s) need attention. Generated {_e(generated_at)}{source}.</p></header>
<main>{_missing_banner(data.missing)}
<h2>Cost by provider</h2><div class="cards" id="cards">{cards}</div>
<h2>Daily cost trend</h2><div id="trend">{_trend_section(data)}</div>
<h2>By account</h2>{_by_account(data.by_account)}
<h2>Billing connections</h2>{_connections(data.connections)}
</main></body></html>
"""


# --- the Dagster UI preview ----------------------------------------------------------------------

def preview_markdown(data: DashboardData) -> str:
    """Cards as a table and the 30-day trend per currency as PNG images, for the asset's metadata."""
    lines = ["| provider | currency | month to date | last 7 days | last 30 days | change vs 30 days before |", "|---|---|---:|---:|---:|---:|"]
    for r in data.summary:
        if r["has_data"]:
            pct = r["change_pct_vs_previous_30_days"]
            lines.append(
                f"| {r['provider']} | {r['currency']} | {money(r['month_to_date'])} | {money(r['last_7_days'])} | "
                f"{money(r['last_30_days'])} | {'n/a' if pct is None else f'{pct:+.1f}%'} |"
            )
        else:
            lines.append(f"| {r['provider']} | | **No data** | | | |")
    for series in data.trend:
        image = base64.b64encode(png_bar_chart(series)).decode()
        first, last = series.days[0], series.days[-1]
        lines += [
            "",
            f"**Daily billed cost, {series.currency}, {first} to {last}** (stacked: {', '.join(series.providers)}; "
            f"peak day {money(series.peak(), series.currency)})",
            "",
            f"![daily cost trend {series.currency}](data:image/png;base64,{image})",
        ]
    attention = [c for c in data.connections if c["status"] in ATTENTION]
    if attention:
        lines += ["", "**Accounts that need attention**", ""]
        lines += [f"- **{c['account_key']}** {c['status']}: {c['cause']} Fix: {c['fix']}" for c in attention]
    return "\n".join(lines)
