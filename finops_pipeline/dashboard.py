"""The FinOps dashboard as one self-contained HTML file (`<data>/dashboard.html`).

Static part (rendered here, readable without JavaScript): a cost card per provider (or "No data" with
the cause and fix) from the catalog's dashboard tables, and the connection status. Explorer (a small
inline script over an embedded JSON of the exact daily rows): date range, billed or amortized cost,
filters by provider, account, service, region and tag, the total across providers per currency, the
trend with anomalies and not-loaded days, breakdowns, forecast, budgets and a CSV download.

Nothing is fetched: inline CSS and script allowed by their SHA-256 in a Content-Security-Policy with
`default-src 'none'`. Amounts are never floats: the page adds integers of 10^-scale of the currency.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from finops_pipeline import storage
from finops_pipeline.catalog import catalog_path, connect, query, register_views
from finops_pipeline.charts import Series, money, png_bar_chart, provider_color, series_by_currency
from finops_pipeline.insight import normalized_tags
from finops_pipeline.lake import atomic_file, list_partitions, mart_path
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
    page: dict[str, Any] | None = None  # the explorer's data (read_page_data)
    loaded: dict[tuple[str, str], set[str]] | None = None  # (provider, account) -> billing periods in the lake
    reporting: dict[str, Any] | None = None  # this month in the reporting currency (cost_in_reporting_currency), when set

    def providers(self) -> list[str]:
        return sorted({row["provider"] for row in self.summary})


def dashboard_path(data_dir: Path | str) -> Path:
    """Beside the catalog: in the data directory, or for a remote lake in the local work directory."""
    return storage.work_dir(data_dir) / DASHBOARD_FILE


def _rows(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    columns, rows = query(data_dir, sql)
    return [dict(zip(columns, row)) for row in rows]


def read_dashboard_data(data_dir: Path) -> DashboardData:
    """The four dashboard tables, as the catalog serves them. A table not built yet reads as empty
    (the hourly check job can run before the first refresh) and is named on the page."""
    missing = [name for name in PAGE_TABLES if not storage.exists(mart_path(data_dir, name))]
    if not catalog_path(data_dir).exists() or len(missing) == len(PAGE_TABLES):
        raise DashboardNotReady(
            f"The dashboard tables are not in {catalog_path(data_dir)} yet: run the pipeline first (make demo, "
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
    page = read_page_data(data_dir, as_of or date.today())
    page["insight"] = _insight(data_dir, date.fromisoformat(page["base"]))
    return DashboardData(as_of, summary, series, by_account, connections, missing, page, loaded_months(data_dir),
                         _reporting(data_dir, as_of))


def _reporting(data_dir: Path, as_of: date | None) -> dict[str, Any] | None:
    """This month across every provider and currency, in the reporting currency: the one total that adds currencies."""
    if as_of is None or not storage.exists(mart_path(data_dir, "cost_in_reporting_currency")):
        return None
    rows = _rows(data_dir, f"""
        SELECT reporting_currency, sum(billed_cost_reporting) AS billed, sum(effective_cost_reporting) AS effective,
               max(rate_date) AS rate_date, count(*) FILTER (WHERE rate_source = 'missing') AS without_rate,
               string_agg(DISTINCT converted, ', ' ORDER BY converted) AS converted
        FROM (SELECT *, CASE WHEN rate_source NOT IN ('identity', 'missing') THEN billing_currency || ' (' || rate_source || ')' END AS converted
              FROM cost_in_reporting_currency)
        WHERE day >= DATE '{as_of.replace(day=1).isoformat()}' AND day <= DATE '{as_of.isoformat()}'
        GROUP BY reporting_currency""")
    return rows[0] if rows else None


def _reporting_block(reporting: dict[str, Any] | None) -> str:
    if not reporting:
        return ""
    currency = reporting["reporting_currency"]
    parts = [f'<b>All providers, month to date, in {_e(currency)}</b>: billed <span data-field="reporting_billed">'
             f'{_e(money(reporting["billed"], currency))}</span>, amortized <span data-field="reporting_effective">'
             f'{_e(money(reporting["effective"], currency))}</span>.']
    if reporting["converted"]:
        parts.append(f'Converted: {_e(reporting["converted"])}; latest rate of {_e(reporting["rate_date"])}.')
    if reporting["without_rate"]:
        parts.append(f'{reporting["without_rate"]} day(s) of an account had no rate and are left out of this total '
                     "(drop the ECB's eurofxref-hist.csv in the data directory's rates/ folder).")
    return f'<p class="reporting" id="reporting">{" ".join(parts)}</p>'


def _insight(data_dir: Path, base: date) -> dict[str, list[list[Any]]]:
    """Forecast, anomalies and budgets from the catalog's insight tables (empty when not built), amounts as exact strings."""

    def rows(name: str, sql: str) -> list[tuple]:
        return _rows(data_dir, sql) if storage.exists(mart_path(data_dir, name)) else []

    text = lambda v: None if v is None else str(v)  # noqa: E731
    forecast = [[r["provider"], r["account_key"], r["currency"], text(r["forecast"]), text(r["forecast_low"]), text(r["forecast_high"]),
                 text(r["month_to_date"]), r["days_remaining"], r["billing_period"]]
                for r in rows("cost_forecast", "SELECT * FROM cost_forecast ORDER BY currency, provider, account_key")]
    anomalies = [[(r["day"] - base).days, r["provider"], r["account_key"], r["service_name"] or "", r["currency"], text(r["expected"]),
                  text(r["actual"]), text(r["impact"]), r["reason"], bool(r["provisional"]), r["charge_category"]]
                 for r in rows("cost_anomalies", "SELECT * FROM cost_anomalies ORDER BY day DESC, abs(impact) DESC")]
    budgets = [[r["budget"], r["scope"], r["currency"], r["billing_period"], text(r["amount"]), text(r["actual"]), text(r["forecast"]),
                text(r["forecast_low"]), text(r["forecast_high"]), r["status"]]
               for r in rows("budget_status", "SELECT * FROM budget_status ORDER BY budget")]
    return {"forecast": forecast, "anomalies": anomalies, "budgets": budgets}


def write_dashboard(data_dir: Path, now: datetime | None = None, data: DashboardData | None = None) -> Path:
    """Render the dashboard from the catalog (or from `data` already read) and replace the HTML file atomically."""
    data = data or read_dashboard_data(data_dir)
    html = render_dashboard(data, now or datetime.now(timezone.utc))
    target = dashboard_path(data_dir)
    with atomic_file(target) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return target


# --- the page's data: exact daily rows for the explorer -------------------------------------------

LAKE_SCALE = 10  # cost_daily amounts are DECIMAL(38,10)
SAFE = 2**53 - 1  # integers a browser adds exactly


def _month_days(period: str, as_of: date) -> tuple[date, date]:
    first = date.fromisoformat(period + "-01")
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, min(last, as_of)


def loaded_months(data_dir: Path) -> dict[tuple[str, str], set[str]]:
    """(provider, account key) -> the billing periods the lake holds a partition of (an empty month counts: it was pulled)."""
    loaded: dict[tuple[str, str], set[str]] = {}
    for key, _ in list_partitions(data_dir):
        loaded.setdefault((key.provider, key.account), set()).add(key.billing_period)
    return loaded


def window_coverage(loaded: dict[tuple[str, str], set[str]], provider: str, first: date, last: date) -> tuple[int, int, date | None]:
    """(days every account of `provider` in the lake is loaded, days in the window, first day loaded for all)."""
    accounts = [months for (p, _), months in loaded.items() if p == provider]
    days = (last - first).days + 1
    full = [first + timedelta(days=n) for n in range(days)
            if accounts and all((first + timedelta(days=n)).strftime("%Y-%m") in months for months in accounts)]
    return len(full), days, (full[0] if full else None)


def _tag_sets(connection: duckdb.DuckDBPyConnection) -> None:
    """Register raw Tags -> the normalized tag set (sorted JSON), as insight.cost_by_tag normalizes keys."""
    distinct = [t for (t,) in connection.execute("SELECT DISTINCT Tags FROM cost_daily WHERE Tags IS NOT NULL").fetchall()]
    normalized = [json.dumps(dict(sorted(normalized_tags(t).items())), separators=(",", ":")) for t in distinct]
    connection.register("tag_sets", pa.table({"Tags": pa.array(distinct, pa.string()), "tag_set": pa.array(normalized, pa.string())}))


def read_page_data(data_dir: Path, as_of: date) -> dict[str, Any]:
    """Everything the explorer needs, as compact JSON-able lists.

    Amounts are exact: integers at 10^-scale of the currency (scale = the fewest decimals that hold every
    amount, at least 2), a [cents, remainder] pair when one is too large for a browser's exact integers.
    Rows are dense per series (provider, account, service, region, currency, tag set) from its first to
    its last day; a day without a row in a loaded month is 0, a day of a month not loaded is told apart
    by `loaded` (per account: the billing periods in the lake), never by a 0.
    """
    connection = connect(data_dir)
    try:
        register_views(connection, data_dir, temporary=True)
        _tag_sets(connection)
        connection.execute(
            """CREATE TEMP TABLE page_rows AS
               SELECT ChargePeriodStart::DATE AS day, x_Provider AS provider, x_AccountKey AS account,
                      coalesce(ServiceName, '') AS service, coalesce(RegionId, '') AS region, BillingCurrency AS currency,
                      coalesce(t.tag_set, '{}') AS tag_set,
                      (sum(BilledCost) * 10000000000)::HUGEINT AS billed, (sum(EffectiveCost) * 10000000000)::HUGEINT AS effective
               FROM cost_daily c LEFT JOIN tag_sets t USING (Tags)
               WHERE ChargePeriodStart::DATE <= $as_of GROUP BY ALL""",
            {"as_of": as_of},
        )
        scale = LAKE_SCALE
        for decimals in range(2, LAKE_SCALE):
            divisor = 10 ** (LAKE_SCALE - decimals)
            [(exact,)] = connection.execute(
                f"SELECT coalesce(bool_and(billed % {divisor} = 0 AND effective % {divisor} = 0), true) FROM page_rows").fetchall()
            if exact:
                scale = decimals
                break
        divisor = 10 ** (LAKE_SCALE - scale)
        rows = connection.execute(
            f"""SELECT provider, account, service, region, currency, tag_set, day, billed // {divisor}, (effective - billed) // {divisor}
                FROM page_rows ORDER BY provider, account, service, region, currency, tag_set, day"""
        ).fetchall()
    finally:
        connection.close()
    loaded = loaded_months(data_dir)
    names: dict[str, list[str]] = {k: [] for k in ("provider", "account", "service", "region", "currency", "tags")}
    index: dict[str, dict[str, int]] = {k: {} for k in names}

    def idx(kind: str, value: str) -> int:
        found = index[kind].get(value)
        if found is None:
            found = index[kind][value] = len(names[kind])
            names[kind].append(value)
        return found

    base = min([r[6] for r in rows[:1]] + [date.fromisoformat(min(m) + "-01") for m in loaded.values() if m] + [as_of])
    if rows:
        base = min(base, min(r[6] for r in rows))
    cents = 10 ** (scale - 2)

    def amount(value: int) -> int | list[int]:
        return value if -SAFE <= value <= SAFE else list(divmod(value, cents))

    series: list[list[Any]] = []
    current: tuple | None = None
    for provider, account, service, region, currency, tag_set, day, billed, effective_diff in rows:
        key = (provider, account, service, region, currency, tag_set)
        offset = (day - base).days
        if key != current:
            current = key
            series.append([idx("provider", provider), idx("account", account), idx("service", service), idx("region", region),
                           idx("currency", currency), idx("tags", tag_set), offset, [], []])
        entry = series[-1]
        gap = offset - entry[6] - len(entry[7])
        entry[7].extend([0] * gap)
        entry[8].extend([0] * gap)
        entry[7].append(amount(billed))
        entry[8].append(amount(effective_diff))
    for entry in series:
        if not any(entry[8]):
            entry[8] = 0  # effective = billed every day: the common case, kept short
    accounts = []
    for (provider, account), months in sorted(loaded.items()):
        spans = [[(first - base).days, (last - base).days] for first, last in (_month_days(m, as_of) for m in sorted(months)) if first <= as_of]
        accounts.append([idx("provider", provider), idx("account", account), spans])
    return {
        "base": base.isoformat(), "as_of": as_of.isoformat(), "scale": scale, "names": names,
        "series": series, "loaded": accounts,
    }


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


def _change(pct: float | None, previous: Decimal | None, currency: str, before: tuple[int, int, date | None]) -> str:
    loaded, days, _ = before
    if loaded == 0:
        return '<span class="flat" data-field="change_pct">n/a: the 30 days before are not loaded</span>'
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


def _coverage_note(what: str, coverage: tuple[int, int, date | None]) -> str:
    """A window the lake holds only part of is not a real figure: say so."""
    loaded, days, first = coverage
    if loaded == days:
        return ""
    if loaded == 0:
        return f'<div class="notloaded">{escape(what)}: not loaded. Materialize those billing periods (a backfill).</div>'
    return (
        f'<div class="muted partial">{escape(what)} are only partly loaded ({loaded} of {days} days, loaded from {_e(first)}): '
        "materialize the earlier billing periods (a backfill) for a like-for-like figure.</div>"
    )


def _card(provider: str, rows: list[dict[str, Any]], connections: list[dict[str, Any]],
          loaded: dict[tuple[str, str], set[str]] | None = None, as_of: date | None = None) -> str:
    loaded = loaded or {}
    mine = [c for c in connections if c["provider"] == provider]
    with_data = [r for r in rows if r["has_data"]]
    body = []
    if not with_data:
        body.append('<div class="nodata">No data</div>')
        body.append(_attention_list(mine))
    for r in with_data:
        currency = r["currency"]
        last_30 = before = (30, 30, None)
        if as_of:
            last_30 = window_coverage(loaded, provider, as_of - timedelta(days=30), as_of - timedelta(days=1))
            before = window_coverage(loaded, provider, as_of - timedelta(days=60), as_of - timedelta(days=31))
        last_30_text = money(r["last_30_days"], currency) if last_30[0] else "not loaded"
        body.append(
            f'<div class="currency" data-currency="{_e(currency)}">'
            f'<div class="label">Month to date</div>'
            f'<div class="big" data-field="month_to_date">{escape(money(r["month_to_date"], currency))}</div>'
            f'<div class="row"><span>Last 30 days</span><b data-field="last_30_days">{escape(last_30_text)}</b></div>'
            f'<div class="row"><span>Last 7 days</span><b data-field="last_7_days">{escape(money(r["last_7_days"], currency))}</b></div>'
            + _coverage_note("The last 30 days", last_30)
            + f'<div class="change">{_change(r["change_pct_vs_previous_30_days"], r["previous_30_days"], currency, before)}</div>'
            + (_coverage_note("The 30 days before", before) if before[0] else "")
            + f'<div class="muted">{r["accounts_with_data"]} account(s) with data; last day {_e(r["last_day_with_data"])}</div>'
            "</div>"
        )
    if with_data:
        needing = [c for c in mine if c["status"] in ATTENTION]
        if needing:
            body.append(f'<div class="warn">{len(needing)} account(s) need attention (see Billing connections).</div>'
                        + "".join(f'<span class="status {_e(c["status"])}">{_e(c["account_key"])} {_e(c["status"])}</span> ' for c in needing))
    return f'<section class="card" data-provider="{_e(provider)}"><h3>{escape(_provider_name(provider))}</h3>{"".join(body)}</section>'


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
        error = (r["last_error"] or "").strip()
        said = f'{r["cause"] or ""} {r["fix"] or ""}'
        if error and error not in said:  # the provider's message once: not again when the cause already quotes it
            advice += f'<div class="muted">{_e(r["error_code"])}: {_e(error)}</div>'
        elif r["error_code"]:
            advice += f'<div class="muted">{_e(r["error_code"])}</div>'
        span = f'{_e(r["first_day_with_data"])} to {_e(r["last_day_with_data"])}' if r["first_day_with_data"] else "none"
        out.append(
            f'<tr data-account="{_e(r["account_key"])}" data-status="{_e(r["status"])}">'
            f'<td><span class="status {_e(r["status"])}">{_e(r["status"])}</span></td>'
            f'<td><b>{_e(r["account_key"])}</b><br><span class="muted">{_e(r["account_name"])}</span></td>'
            f'<td>{_e(r["provider"])} / {_e(r["source"])}</td><td class="num">{_e(r["connected_for"])}</td>'
            f'<td class="date">{span}</td><td class="date">{_e(r["last_successful_pull"])}</td><td>{advice}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


_STYLE = r'''body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d232b}
header{background:#1d232b;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c3cad4}
main{padding:20px 28px}h2{margin:28px 0 12px;font-size:18px}h3{margin:0 0 8px;font-size:16px}h4{margin:14px 0 4px;font-size:13px;color:#555}
.cards{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border-radius:8px;padding:16px 18px;min-width:260px;max-width:460px;flex:1;box-shadow:0 1px 3px #0002}
.currency+.currency{border-top:1px solid #eee;margin-top:10px;padding-top:10px}
.big{font-size:26px;font-weight:600;margin:2px 0 6px;white-space:nowrap}.label{color:#666;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.row{display:flex;justify-content:space-between;gap:12px}.row b{white-space:nowrap}.muted{color:#6b7480;font-size:12px}.change{margin:6px 0 4px}
.up{color:#c0392b;font-weight:600}.down{color:#1e8449;font-weight:600}.flat{color:#6b7480}
.nodata{font-size:24px;font-weight:600;color:#c0392b;margin:4px 0 8px}.warn{color:#b9770e;margin-top:10px;font-weight:600}
.notloaded{color:#8e1b10;font-weight:600;font-size:12px}.partial{color:#b9770e}
ul.attention{padding-left:18px;margin:6px 0}ul.attention li{margin-bottom:8px}.fix{margin-top:3px}
.status{display:inline-block;border-radius:4px;padding:1px 6px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.status.OK{background:#1e8449}.status.PENDING{background:#7f8c8d}.status.NO_DATA{background:#c0392b}.status.ERROR{background:#8e1b10}
.status.OVER{background:#8e1b10}.status.FORECAST_OVER{background:#b9770e}
.controls{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 3px #0002;
  position:sticky;top:0;z-index:2}
.controls select{max-width:260px}.quick button{margin-right:2px}
#coverage{margin:10px 0}#coverage.full{color:#1e8449}#coverage.partial,#coverage.none{color:#8e1b10;font-weight:600}
.trend{background:#fff;border-radius:8px;padding:16px 18px;margin:16px 0;box-shadow:0 1px 3px #0002}
.chart{width:100%;height:auto;display:block}.chart .grid{stroke:#e3e6ea}.chart .axis{font-size:11px;fill:#6b7480}
.chart .nl{fill:#d5d8dc}.chart .pl{fill:#e67e22}.chart .an{fill:#fff;stroke:#c0392b;stroke-width:2}
.legends{margin:0 0 6px}.legend{margin-right:14px;white-space:nowrap}.legend i{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
.legend i.nl{background:#d5d8dc}.legend i.pl{background:#e67e22}.legend i.an{border:2px solid #c0392b;border-radius:50%;width:7px;height:7px}
.breakdowns{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px}
.breakdowns section{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 3px #0002;overflow-x:auto}
table.grid{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 3px #0002}
table.grid th,table.grid td{padding:6px 10px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
table.grid th{background:#fafbfc;font-size:12px;color:#555}.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
.date,td.date,th.date{white-space:nowrap}tr.total td{font-weight:600;border-top:2px solid #ccd}
'''

# The explorer. Plain ES2020, no library; it only reads #page-data and draws into the page.
_SCRIPT = r'''(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("page-data").textContent);
  var N = D.names, DAY = 86400000, BASE = Date.parse(D.base + "T00:00:00Z");
  var SCALE = D.scale, CENTS = Math.pow(10, SCALE - 2), CENTS_N = BigInt(CENTS);
  var NP = N.provider.length, NC = N.currency.length;
  var TAGS = N.tags.map(function (t) { return JSON.parse(t); });
  var INS = D.insight || {forecast: [], anomalies: [], budgets: []};
  function off(iso) { return Math.round((Date.parse(iso + "T00:00:00Z") - BASE) / DAY); }
  function iso(o) { return new Date(BASE + o * DAY).toISOString().slice(0, 10); }
  var AS_OF = off(D.as_of);
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var SVG = "http://www.w3.org/2000/svg";
  function sv(tag, attrs, title) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (title) { var t = document.createElementNS(SVG, "title"); t.textContent = title; e.appendChild(t); }
    return e;
  }

  // --- exact money: sums are integers (hi in cents, lo in 10^-SCALE), shown rounded half to even --------
  function Acc(n) { this.h = new Float64Array(n); this.l = new Float64Array(n); }
  Acc.prototype.add = function (i, v) {
    if (typeof v === "number") { var h = Math.trunc(v / CENTS); this.h[i] += h; this.l[i] += v - h * CENTS; }
    else { this.h[i] += v[0]; this.l[i] += v[1]; }
  };
  Acc.prototype.addFrom = function (i, other, j) { this.h[i] += other.h[j]; this.l[i] += other.l[j]; };
  Acc.prototype.big = function (i) { return BigInt(this.h[i]) * CENTS_N + BigInt(this.l[i]); };
  function toBig(v) { return typeof v === "number" ? BigInt(v) : BigInt(v[0]) * CENTS_N + BigInt(v[1]); }
  function parseDec(s, scale) { // "12.3400000000" -> BigInt at 10^-scale
    if (s === null || s === undefined) return null;
    var neg = s.charAt(0) === "-"; if (neg) s = s.slice(1);
    var parts = s.split("."), frac = (parts[1] || "").padEnd(scale, "0").slice(0, scale);
    var b = BigInt(parts[0] + frac); return neg ? -b : b;
  }
  function fmt(big, currency, scale) {
    if (big === null) return "n/a";
    scale = scale === undefined ? SCALE : scale;
    var unit = 10n ** BigInt(scale - 2), neg = big < 0n, a = neg ? -big : big, q = a / unit, r = a % unit;
    if (2n * r > unit || (2n * r === unit && q % 2n === 1n)) q += 1n;
    var s = q.toString().padStart(3, "0"), whole = s.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (currency ? currency + " " : "") + (neg && q > 0n ? "-" : "") + whole + "." + s.slice(-2);
  }
  function exact(big) {
    var neg = big < 0n, s = (neg ? -big : big).toString().padStart(SCALE + 1, "0");
    return (neg ? "-" : "") + s.slice(0, -SCALE) + "." + s.slice(-SCALE);
  }
  function ratio(part, whole) { return whole === 0n ? "" : (Number(part * 10000n / whole) / 100).toFixed(1) + "%"; }

  // --- controls ------------------------------------------------------------------------------------------
  var last = 0;
  D.series.forEach(function (s) { last = Math.max(last, s[6] + s[7].length - 1); });
  var state = {from: AS_OF - 30, to: AS_OF - 1, metric: "billed"};
  if (state.to < state.from) state.to = state.from;
  function options(select, items, all) {
    select.appendChild(el("option", {value: ""}, all));
    items.forEach(function (it) { select.appendChild(el("option", {value: it[0]}, it[1])); });
  }
  function label(kind, i) { var v = N[kind][i]; return v === "" ? "(none)" : v; }
  function sortedIdx(kind) { return N[kind].map(function (_, i) { return i; }).sort(function (a, b) { return label(kind, a).localeCompare(label(kind, b)); }); }
  options($("f-provider"), sortedIdx("provider").map(function (i) { return [String(i), D.labels[N.provider[i]] || N.provider[i]]; }), "All providers");
  options($("f-account"), sortedIdx("account").map(function (i) {
    var n = D.account_names[N.account[i]]; return [String(i), N.account[i] + (n ? " (" + n + ")" : "")]; }), "All accounts");
  options($("f-service"), sortedIdx("service").map(function (i) { return [String(i), label("service", i)]; }), "All services");
  options($("f-region"), sortedIdx("region").map(function (i) { return [String(i), label("region", i)]; }), "All regions");
  var tagValues = {};
  TAGS.forEach(function (t) { for (var k in t) (tagValues[k] = tagValues[k] || {})[t[k]] = 1; });
  var tagKeys = Object.keys(tagValues).sort(), tagOpts = [];
  tagKeys.forEach(function (k) {
    Object.keys(tagValues[k]).sort().forEach(function (v) { tagOpts.push([JSON.stringify([k, v]), k + " = " + v]); });
    tagOpts.push([JSON.stringify([k, null]), k + ": untagged"]);
  });
  options($("f-tag"), tagOpts, "All tags");
  tagKeys.forEach(function (k) { $("tag-key").appendChild(el("option", {value: k}, k)); });
  var fromInput = $("from"), toInput = $("to");
  fromInput.min = toInput.min = iso(AS_OF - 1100); fromInput.max = toInput.max = iso(AS_OF);

  function selection() {
    var f = {p: $("f-provider").value, a: $("f-account").value, s: $("f-service").value, r: $("f-region").value, t: $("f-tag").value};
    var tag = f.t ? JSON.parse(f.t) : null;
    var tagOk = TAGS.map(function (t) { return !tag || (tag[1] === null ? !(tag[0] in t) : t[tag[0]] === tag[1]); });
    return {
      f: f,
      series: D.series.filter(function (s) {
        return (!f.p || s[0] === +f.p) && (!f.a || s[1] === +f.a) && (!f.s || s[2] === +f.s) && (!f.r || s[3] === +f.r) && tagOk[s[5]];
      }),
      accounts: D.loaded.filter(function (l) { return (!f.p || l[0] === +f.p) && (!f.a || l[1] === +f.a); }),
    };
  }

  // --- compute what is shown --------------------------------------------------------------------------------
  function compute() {
    var sel = selection(), from = state.from, to = state.to, nd = to - from + 1, eff = state.metric === "effective";
    var daily = new Acc(NC * NP * nd), perSeries = new Acc(sel.series.length), currencies = {};
    sel.series.forEach(function (s, k) {
      var c = s[4], p = s[0], b = s[7], e = s[8], start = Math.max(from, s[6]), end = Math.min(to, s[6] + b.length - 1);
      currencies[c] = true;
      for (var d = start; d <= end; d++) {
        var i = d - s[6], slot = (c * NP + p) * nd + d - from;
        daily.add(slot, b[i]); perSeries.add(k, b[i]);
        if (eff && e !== 0) { daily.add(slot, e[i]); perSeries.add(k, e[i]); }
      }
    });
    var cover = new Int32Array(nd);
    sel.accounts.forEach(function (l) {
      l[2].forEach(function (span) { for (var d = Math.max(span[0], from); d <= Math.min(span[1], to); d++) cover[d - from]++; });
    });
    return {sel: sel, from: from, to: to, nd: nd, daily: daily, perSeries: perSeries, cover: cover, nacc: sel.accounts.length,
            currencies: Object.keys(currencies).map(Number).sort(function (a, b) { return N.currency[a].localeCompare(N.currency[b]); })};
  }
  function dayStatus(r, i) { return r.nacc === 0 || r.cover[i] === 0 ? "none" : r.cover[i] < r.nacc ? "partial" : "full"; }
  function ranges(r, status) {
    var out = [], start = null;
    for (var i = 0; i <= r.nd; i++) {
      var hit = i < r.nd && dayStatus(r, i) === status;
      if (hit && start === null) start = i;
      if (!hit && start !== null) { out.push(iso(r.from + start) + (i - 1 > start ? " to " + iso(r.from + i - 1) : "")); start = null; }
    }
    return out;
  }

  function render() {
    var r = compute(), metricName = state.metric === "effective" ? "Amortized cost (EffectiveCost)" : "Billed cost (BilledCost)";
    fromInput.value = iso(state.from); toInput.value = iso(state.to);
    // coverage
    var counts = {full: 0, partial: 0, none: 0};
    for (var i = 0; i < r.nd; i++) counts[dayStatus(r, i)]++;
    var cov = $("coverage"), status = counts.full === r.nd ? "full" : counts.none === r.nd ? "none" : "partial";
    cov.className = status; cov.setAttribute("data-coverage", status); cov.textContent = "";
    var span = iso(r.from) + " to " + iso(r.to) + " (" + r.nd + " days), " + r.nacc + " account(s) in the lake for this selection: ";
    if (status === "full") cov.textContent = span + "every day loaded.";
    else if (status === "none") cov.textContent = span + "not loaded. The totals below are not zero costs: " +
      "nothing was pulled for these days (materialize those billing periods).";
    else {
      cov.textContent = span + "only partly loaded: " + counts.full + " of " + r.nd + " days loaded for every account. The totals cover the loaded days only.";
      [["none", "Not loaded"], ["partial", "Loaded for some accounts only"]].forEach(function (pair) {
        var list = ranges(r, pair[0]);
        if (list.length) cov.appendChild(el("div", {"class": "muted"}, pair[1] + ": " + list.slice(0, 6).join(", ") + (list.length > 6 ? ", ..." : "")));
      });
    }
    // totals per currency, across providers
    var totals = $("totals"); totals.textContent = "";
    var sums = {};
    r.currencies.forEach(function (c) {
      var acc = new Acc(NP + 1), cur = N.currency[c];
      for (var p = 0; p < NP; p++) for (var d = 0; d < r.nd; d++) { acc.addFrom(p, r.daily, (c * NP + p) * r.nd + d); acc.addFrom(NP, r.daily,
        (c * NP + p) * r.nd + d); }
      sums[c] = acc;
      var card = el("section", {"class": "card", "data-total-currency": cur});
      card.appendChild(el("div", {"class": "label"}, metricName + ", " + iso(r.from) + " to " + iso(r.to)));
      var big = el("div", {"class": "big", "data-field": "total"}, status === "none" ? "not loaded" : fmt(acc.big(NP), cur));
      card.appendChild(big);
      if (status === "partial") card.appendChild(el("div", {"class": "notloaded"}, "Partly loaded: " + counts.full + " of " + r.nd + " days complete"));
      card.appendChild(el("div", {"class": "muted"}, "Total across providers, " + cur + " only"));
      for (var q = 0; q < NP; q++) {
        if (!r.sel.series.some(function (s) { return s[0] === q && s[4] === c; })) continue;
        var row = el("div", {"class": "row", "data-provider": N.provider[q]});
        row.appendChild(el("span", {}, D.labels[N.provider[q]] || N.provider[q]));
        row.appendChild(el("b", {"data-field": "provider_total"}, fmt(acc.big(q), cur)));
        card.appendChild(row);
      }
      totals.appendChild(card);
    });
    if (!r.currencies.length) totals.appendChild(el("p", {"class": "muted"}, "No cost rows match this selection."));
    renderTrend(r, metricName);
    renderBreakdowns(r);
    renderInsight(r);
  }

  function renderTrend(r, metricName) {
    var box = $("trend"); box.textContent = "";
    var anomalies = anomaliesShown(r);
    r.currencies.forEach(function (c) {
      var cur = N.currency[c], W = 1000, H = 260, L = 90, R = 10, T = 24, B = 40, pw = W - L - R, ph = H - T - B;
      var provs = []; for (var p = 0; p < NP; p++) if (r.sel.series.some(function (s) { return s[0] === p && s[4] === c; })) provs.push(p);
      var dayTotals = [], peak = 0;
      for (var d = 0; d < r.nd; d++) {
        var t = 0;
        provs.forEach(function (p) { t += Math.max(0, Number(r.daily.big((c * NP + p) * r.nd + d))); });
        dayTotals.push(t); peak = Math.max(peak, t);
      }
      var top = niceCeiling(peak / Math.pow(10, SCALE));
      var div = el("div", {"class": "trend", "data-currency": cur});
      div.appendChild(el("h3", {}, metricName + " per day, " + cur));
      var legend = el("div", {"class": "legends"});
      provs.forEach(function (p) {
        var s = el("span", {"class": "legend"}); s.appendChild(el("i", {"class": D.color_class[N.provider[p]]}));
        s.appendChild(document.createTextNode(D.labels[N.provider[p]] || N.provider[p])); legend.appendChild(s);
      });
      [["nl", "not loaded"], ["pl", "loaded for some accounts only"], ["an", "anomaly"]].forEach(function (x) {
        var s = el("span", {"class": "legend"}); s.appendChild(el("i", {"class": x[0]})); s.appendChild(document.createTextNode(x[1])); legend.appendChild(s);
      });
      div.appendChild(legend);
      var svg = sv("svg", {"class": "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metricName + " per day in " + cur});
      [0, 0.5, 1].forEach(function (f) {
        var y = T + ph - f * ph;
        svg.appendChild(sv("line", {x1: L, x2: W - R, y1: y, y2: y, "class": "grid"}));
        var t = sv("text", {x: L - 6, y: y + 4, "text-anchor": "end", "class": "axis"}); t.textContent = (top * f).toLocaleString("en-US",
          {minimumFractionDigits: 2, maximumFractionDigits: 2}); svg.appendChild(t);
      });
      var slot = pw / r.nd, bw = Math.max(slot * 0.75, 0.6), every = Math.max(1, Math.round(r.nd / 10));
      for (var d2 = 0; d2 < r.nd; d2++) {
        var x = L + d2 * slot + (slot - bw) / 2, st = dayStatus(r, d2), day = iso(r.from + d2), base = T + ph;
        if (st === "none") { svg.appendChild(sv("rect", {x: x, y: T, width: bw, height: ph, "class": "nl", "data-day": day}, day + ": not loaded")); }
        else {
          provs.forEach(function (p) {
            var v = r.daily.big((c * NP + p) * r.nd + d2), n = Number(v) / Math.pow(10, SCALE);
            if (n <= 0) return;
            var h = n / top * ph; base -= h;
            svg.appendChild(sv("rect", {x: x, y: base, width: bw, height: h, "class": D.color_class[N.provider[p]]},
              day + " " + N.provider[p] + ": " + fmt(v, cur)));
          });
          if (st === "partial") svg.appendChild(sv("rect", {x: x, y: T + ph + 2, width: bw, height: 5, "class": "pl", "data-day": day},
            day + ": loaded for " + r.cover[d2] + " of " + r.nacc + " accounts"));
        }
        var an = anomalies.filter(function (a) { return a[0] === r.from + d2 && a[4] === cur; });
        if (an.length) svg.appendChild(sv("circle", {cx: x + bw / 2, cy: Math.max(T + 4, base - 7), r: 4, "class": "an", "data-anomaly": day},
          an.map(function (a) { return day + " " + a[1] + " " + a[2] + " " + a[3] + ": " + a[8]; }).join("\n")));
        if ((r.nd - 1 - d2) % every === 0) {
          var lt = sv("text", {x: x + bw / 2, y: H - B + 18, "text-anchor": "middle", "class": "axis"}); lt.textContent = day.slice(5); svg.appendChild(lt);
        }
      }
      var yl = sv("text", {x: L, y: 14, "class": "axis"}); yl.textContent = cur; svg.appendChild(yl);
      div.appendChild(svg);
      box.appendChild(div);
    });
  }
  function niceCeiling(v) {
    if (v <= 0) return 1;
    var m = Math.pow(10, Math.floor(Math.log10(v))), steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (v <= steps[i] * m * (1 + 1e-12)) return steps[i] * m;
    return 10 * m;
  }

  function table(id, head, rows, more) {
    var box = $(id); box.textContent = "";
    var t = el("table", {"class": "grid"}), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th",
      {"class": /amount|share|forecast|actual|expected|impact|budget|month|low|high|days/i.test(h) ? "num" : ""}, h)); });
    t.appendChild(tr);
    rows.forEach(function (row) {
      var r = el("tr", row.attrs || {});
      row.cells.forEach(function (c, i) { r.appendChild(el("td", {"class": (row.num || [])[i] ? "num" : (row.date || [])[i] ? "date" : ""}, c)); });
      t.appendChild(r);
    });
    box.appendChild(rows.length ? t : el("p", {"class": "muted"}, "Nothing for this selection."));
    if (more) box.appendChild(el("p", {"class": "muted"}, more));
  }
  var LIMIT = 25;
  function breakdown(r, id, keyOf, nameOf, head) {
    var groups = {}, curTotals = {};
    r.sel.series.forEach(function (s, k) {
      var key = keyOf(s); if (key === undefined) return;
      var g = groups[key + "|" + s[4]] = groups[key + "|" + s[4]] || {key: key, c: s[4], acc: new Acc(1)};
      g.acc.addFrom(0, r.perSeries, k);
    });
    var list = Object.keys(groups).map(function (k) { var g = groups[k]; g.v = g.acc.big(0); return g; });
    list.forEach(function (g) { curTotals[g.c] = (curTotals[g.c] || 0n) + g.v; });
    list.sort(function (a, b) { return a.c !== b.c ? N.currency[a.c].localeCompare(N.currency[b.c]) : (b.v > a.v ? 1 : b.v < a.v ? -1 : 0); });
    var byCur = {}, rows = [];
    list.forEach(function (g) { (byCur[g.c] = byCur[g.c] || []).push(g); });
    var hidden = 0;
    Object.keys(byCur).forEach(function (c) {
      byCur[c].forEach(function (g, i) {
        if (i >= LIMIT) { hidden++; return; }
        rows.push({cells: [nameOf(g.key), N.currency[g.c], fmt(g.v, N.currency[g.c]), ratio(g.v, curTotals[g.c])], num: [0, 0, 1, 1],
          attrs: {"data-key": nameOf(g.key), "data-currency": N.currency[g.c]}});
      });
    });
    table(id, [head, "Currency", "Amount", "Share"], rows, hidden ? hidden + " more rows (all of them are in the CSV)." : "");
  }
  function renderBreakdowns(r) {
    breakdown(r, "by-service", function (s) { return s[2]; }, function (k) { return label("service", k); }, "Service");
    breakdown(r, "by-account", function (s) { return s[1]; }, function (k) { return N.account[k]; }, "Account");
    breakdown(r, "by-region", function (s) { return s[3]; }, function (k) { return label("region", k); }, "Region");
    var key = $("tag-key").value;
    if (key) breakdown(r, "by-tag", function (s) { var v = TAGS[s[5]][key]; return v === undefined ? "\u0000" : v; },
      function (k) { return k === "\u0000" ? "(untagged)" : k; }, key);
    else $("by-tag").textContent = "No tags in the lake.";
  }

  function anomaliesShown(r) {
    var f = r.sel.f;
    return INS.anomalies.filter(function (a) {
      return a[0] >= r.from && a[0] <= r.to && (!f.p || a[1] === N.provider[+f.p]) && (!f.a || a[2] === N.account[+f.a]) &&
        (!f.s || a[3] === N.service[+f.s]);
    });
  }
  function renderInsight(r) {
    var f = r.sel.f, S = 10;
    var fc = INS.forecast.filter(function (x) { return (!f.p || x[0] === N.provider[+f.p]) && (!f.a || x[1] === N.account[+f.a]); });
    var rows = [], tot = {};
    fc.forEach(function (x) {
      rows.push({cells: [x[8], x[0], x[1], x[2], fmt(parseDec(x[6], S), x[2], S), fmt(parseDec(x[3], S), x[2], S),
                         fmt(parseDec(x[4], S), x[2], S) + " to " + fmt(parseDec(x[5], S), x[2], S), String(x[7])], num: [0, 0, 0, 0, 1, 1, 1, 1]});
      var t = tot[x[2]] = tot[x[2]] || [0n, 0n, 0n, 0n];
      [6, 3, 4, 5].forEach(function (j, i) { t[i] += parseDec(x[j], S); });
    });
    Object.keys(tot).sort().forEach(function (c) {
      var t = tot[c];
      rows.push({cells: ["", "Total", "", c, fmt(t[0], c, S), fmt(t[1], c, S), fmt(t[2], c, S) + " to " + fmt(t[3],
        c, S) + " (sum of the intervals: wider than the total's)", ""],
                 num: [0, 0, 0, 0, 1, 1, 1, 1], attrs: {"class": "total", "data-currency": c}});
    });
    table("forecast", ["Month", "Provider", "Account", "Currency", "Month to date", "Forecast", "Interval (10th to 90th percentile)", "Days ahead"], rows,
      (f.s || f.r || f.t ? "The forecast is per provider, account and currency: the service, region and tag filters do not apply. " : "") +
      "Amortized cost (EffectiveCost), whatever the cost selected above.");
    var an = anomaliesShown(r);
    table("anomalies", ["Day", "Provider", "Account", "Service", "Currency", "Expected", "Actual", "Impact", "Why", "Provisional"],
      an.slice(0, 100).map(function (a) {
        return {cells: [iso(a[0]), a[1], a[2], a[3], a[4], fmt(parseDec(a[5], S), a[4], S), fmt(parseDec(a[6], S), a[4], S), fmt(parseDec(a[7], S), a[4], S),
                        a[8], a[9] ? "yes (may still change)" : ""], num: [0, 0, 0, 0, 0, 1, 1, 1, 0, 0], date: [1], attrs: {"data-day": iso(a[0])}};
      }), (an.length > 100 ? (an.length - 100) + " more. " : "") + (f.r || f.t ? "Anomalies are per service: the region and tag filters do not apply." : ""));
    var brows = INS.budgets.map(function (b) {
      return {cells: [b[0], b[1], b[3], fmt(parseDec(b[4], S), b[2], S), fmt(parseDec(b[5], S), b[2], S), fmt(parseDec(b[6], S), b[2], S),
                      fmt(parseDec(b[7], S), b[2], S) + " to " + fmt(parseDec(b[8], S), b[2], S), b[9]], num: [0, 0, 0, 1, 1, 1, 1, 0],
                        attrs: {"data-budget": b[0]}};
    });
    table("budgets", ["Budget", "Scope", "Month", "Budget amount", "Actual", "Forecast", "Forecast interval", "Status"], brows,
      INS.budgets.length ? "Budgets have their own scope: the filters above do not apply." : "No budgets in finops.yaml.");
  }

  // --- CSV of what is shown ----------------------------------------------------------------------------------
  function csv() {
    var r = compute(), rows = {}, order = [];
    r.sel.series.forEach(function (s) {
      var start = Math.max(r.from, s[6]), end = Math.min(r.to, s[6] + s[7].length - 1);
      for (var d = start; d <= end; d++) {
        var i = d - s[6], key = d + "|" + s[0] + "|" + s[1] + "|" + s[2] + "|" + s[3] + "|" + s[4], row = rows[key];
        if (s[7][i] === 0 && (s[8] === 0 || s[8][i] === 0)) continue; // a day without a row in the lake: no CSV row
        if (!row) { row = rows[key] = [d, s, 0n, 0n]; order.push(key); }
        var b = toBig(s[7][i]); row[2] += b; row[3] += b + (s[8] === 0 ? 0n : toBig(s[8][i]));
      }
    });
    var q = function (v) { v = String(v); return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; };
    var lines = ["day,provider,account_key,service,region,currency,billed_cost,effective_cost,loaded"];
    order.sort();
    order.sort(function (a, b) { return rows[a][0] - rows[b][0]; }).forEach(function (k) {
      var x = rows[k], s = x[1];
      lines.push([iso(x[0]), N.provider[s[0]], N.account[s[1]], N.service[s[2]], N.region[s[3]], N.currency[s[4]], exact(x[2]), exact(x[3]),
                  dayStatus(r, x[0] - r.from)].map(q).join(","));
    });
    var a = el("a", {download: "finops-costs-" + iso(r.from) + "-to-" + iso(r.to) + ".csv"});
    a.href = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], {type: "text/csv"}));
    document.body.appendChild(a); a.click(); a.remove();
  }

  // --- events ------------------------------------------------------------------------------------------------
  function clampRange() {
    // Before the lake's first day is allowed: those days show as not loaded (never as 0). Up to 3 years back.
    state.from = Math.max(AS_OF - 1100, Math.min(state.from, AS_OF)); state.to = Math.max(state.from, Math.min(state.to, AS_OF));
  }
  fromInput.addEventListener("change", function () { if (fromInput.value) { state.from = off(fromInput.value); clampRange(); render(); } });
  toInput.addEventListener("change", function () { if (toInput.value) { state.to = off(toInput.value); clampRange(); render(); } });
  Array.prototype.forEach.call(document.querySelectorAll("[data-range]"), function (b) {
    b.addEventListener("click", function () {
      var v = b.getAttribute("data-range");
      if (v === "mtd") { state.from = off(D.as_of.slice(0, 8) + "01"); state.to = AS_OF; }
      else { state.from = AS_OF - Number(v); state.to = AS_OF - 1; }
      clampRange(); render();
    });
  });
  $("metric").addEventListener("change", function () { state.metric = $("metric").value; render(); });
  ["f-provider", "f-account", "f-service", "f-region", "f-tag", "tag-key"].forEach(function (id) { $(id).addEventListener("change", render); });
  $("csv").addEventListener("click", csv);
  render();
  document.body.setAttribute("data-ready", "1");
})();
'''


def _missing_banner(missing: list[str]) -> str:
    if not missing:
        return ""
    return (
        f'<p class="warn" id="missing">Not built yet: {escape(", ".join(missing))}. Run the refresh_costs job '
        "(or materialize the 'dashboard' group) to fill them.</p>"
    )


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _json_for_html(document: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<' (so no '</script>'), no '&', compact."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_EXPLORER = """
<h2>Explore</h2>
<noscript><p class="warn">The explorer needs JavaScript (inline, nothing fetched); the cards above and the connections below do not.</p></noscript>
<form id="controls" class="controls">
<label>From <input type="date" id="from"></label> <label>to <input type="date" id="to"></label>
<span class="quick"><button type="button" data-range="7">7 days</button><button type="button" data-range="30">30 days</button>
  <button type="button" data-range="90">90 days</button><button type="button" data-range="mtd">Month to date</button>
    <button type="button" data-range="365">Year</button></span>
<label>Cost <select id="metric"><option value="billed">Billed (BilledCost)</option><option value="effective">Amortized (EffectiveCost)</option></select></label>
<label>Provider <select id="f-provider"></select></label> <label>Account <select id="f-account"></select></label>
<label>Service <select id="f-service"></select></label> <label>Region <select id="f-region"></select></label>
<label>Tag <select id="f-tag"></select></label>
<button type="button" id="csv">Download CSV</button>
</form>
<div id="coverage"></div>
<div id="totals" class="cards"></div>
<div id="trend"></div>
<div class="breakdowns">
<section><h3>By service</h3><div id="by-service"></div></section>
<section><h3>By account</h3><div id="by-account"></div></section>
<section><h3>By region</h3><div id="by-region"></div></section>
<section><h3>By tag <select id="tag-key"></select></h3><div id="by-tag"></div></section>
</div>
<h2>Forecast to month end</h2><div id="forecast"></div>
<h2>Anomalies</h2><div id="anomalies"></div>
<h2>Budgets</h2><div id="budgets"></div>
"""


def render_dashboard(data: DashboardData, generated_at: datetime, catalog: Path | None = None) -> str:
    """The page. `catalog` is accepted for compatibility and not printed: the page does not reveal the machine's paths."""
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for row in data.summary:
        by_provider.setdefault(row["provider"], []).append(row)
    cards = "".join(_card(p, by_provider[p], data.connections, data.loaded, data.as_of) for p in data.providers())
    if not cards:
        cards = '<p class="muted">No providers are configured in finops.yaml.</p>'
    attention = sum(1 for c in data.connections if c["status"] in ATTENTION)
    page = dict(data.page or {})
    known = sorted({p for p in page.get("names", {}).get("provider", [])} | set(data.providers()))
    page["labels"] = {p: _provider_name(p) for p in known}
    page["colors"] = {p: provider_color(p, known) for p in known}
    page["account_names"] = {c["account_key"]: c["account_name"] for c in data.connections if c.get("account_name")}
    page["generated"] = _e(generated_at)
    style = _STYLE + "".join(f".p-{i}{{fill:{c};background:{c}}}" for i, c in enumerate(page["colors"].values()))
    page["color_class"] = {p: f"p-{i}" for i, p in enumerate(page["colors"])}
    script = _SCRIPT
    csp = f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; img-src data:"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FinOps dashboard{f" - {_e(data.as_of)}" if data.as_of else ""}</title><style>{style}</style></head>
<body><header><h1>FinOps dashboard</h1>
<p>As of {_e(data.as_of) or "n/a"}: costs in each billing currency (currencies are never added together).
Windows are whole UTC days before that date; month to date includes today's partial figures.
{attention} account(s) need attention. Generated {_e(generated_at)}.</p></header>
<main>{_missing_banner(data.missing)}
<h2>Cost by provider</h2><div class="cards" id="cards">{cards}</div>{_reporting_block(data.reporting)}
{_EXPLORER}
<h2>Billing connections</h2>{_connections(data.connections)}
</main><script type="application/json" id="page-data">{_json_for_html(page)}</script>
<script>{script}</script></body></html>
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
