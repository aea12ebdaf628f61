"""The dashboard page: the figures of the dashboard tables, per provider and currency, nothing fetched."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import zlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from finops_pipeline.catalog import build_catalog, query
from finops_pipeline.charts import png_bar_chart, series_by_currency
from finops_pipeline.cli import main
from finops_pipeline.config import parse_config
from finops_pipeline.dashboard import dashboard_path, preview_markdown, read_dashboard_data, write_dashboard
from finops_pipeline.diagnosis import Diagnosis
from finops_pipeline.lake import PartitionKey, write_partition
from finops_pipeline.marts import build_mart, write_mart
from finops_pipeline.pulls import record_failure
from finops_pipeline.schema import day_bounds, month_bounds, rows_to_table
from finops_pipeline_tests.aws.test_cost_explorer_pipeline import external_id, seeded  # noqa: F401 (fixtures)
from finops_pipeline_tests.conftest import run_refresh
from finops_pipeline_tests.test_schema import row

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
TODAY = NOW.date()
CONFIG = parse_config(
    {
        "accounts": [
            {"key": "aws-a", "name": "Acme <payer>", "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01", "account_id": "111111111111"},
            {"key": "aws-broken", "provider": "aws", "source": "cost_explorer", "connected_at": "2026-01-01", "account_id": "222222222222"},
            {"key": "gcp-main", "provider": "gcp", "connected_at": "2026-01-01", "billing_account_id": "012345-6789AB-CDEF01",
             "project_id": "acme-billing", "dataset": "billing_export"},
            {"key": "do-team", "provider": "digitalocean", "connected_at": "2026-11-23T00:00:00Z", "token_env": "DO_TOKEN"},
        ]
    },
    Path("finops.yaml"),
)


def charge(provider: str, key: str, day: date, amount: Decimal, currency: str, sub: str) -> dict:
    start, end = day_bounds(day)
    period_start, period_end = month_bounds(day.strftime("%Y-%m"))
    return row(
        BilledCost=amount, EffectiveCost=amount, BillingCurrency=currency, ChargePeriodStart=start, ChargePeriodEnd=end,
        BillingPeriodStart=period_start, BillingPeriodEnd=period_end, x_Provider=provider, x_AccountKey=key, SubAccountId=sub,
        x_Source="cost_explorer" if provider == "aws" else "bigquery_export",
    )


def lake_rows() -> list[dict]:
    """70 days: AWS in USD (two linked accounts) and a little EUR, GCP in USD; day 4 before today costs nothing."""
    rows = []
    for n in range(1, 71):
        day = TODAY - timedelta(days=n)
        if n == 4:
            continue
        rows.append(charge("aws", "aws-a", day, Decimal(100 + n) + Decimal(n) / 7, "USD", "111111111111"))
        rows.append(charge("aws", "aws-a", day, Decimal("12.345") + Decimal(n) / 100, "USD", "333333333333"))
        rows.append(charge("gcp", "gcp-main", day, Decimal("40.0000000001") * (1 + n % 3), "USD", "acme-prod"))
        if n % 10 == 0:
            rows.append(charge("aws", "aws-a", day, Decimal("9.99"), "EUR", "111111111111"))
    rows.append(charge("aws", "aws-a", TODAY, Decimal("5.55"), "USD", "111111111111"))  # today's partial figures
    return [quantized(r) for r in rows]


def quantized(r: dict) -> dict:
    r["BilledCost"] = r["EffectiveCost"] = r["BilledCost"].quantize(Decimal("0.0000000001"))
    return r


def build(data_dir: Path, rows: list[dict]) -> None:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        source = r["x_Source"]
        groups.setdefault((r["x_Provider"], source, r["x_AccountKey"], r["BillingPeriodStart"].strftime("%Y-%m")), []).append(r)
    for (provider, source, key, period), items in groups.items():
        write_partition(data_dir, PartitionKey(provider, source, key, period), rows_to_table(items), {})
    for name in ("provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status"):
        write_mart(name, build_mart(name, data_dir, CONFIG, NOW), data_dir)
    build_catalog(data_dir)  # once after the tables, as a run does


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    """Built once for the module: the tests only read it (the CLI test rewrites the same file)."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    rows = lake_rows()
    record_failure(tmp_path, "aws-broken", "2026-11", NOW - timedelta(hours=1), Diagnosis(
        "aws.cost_explorer_access_denied", "ERROR", "The role is missing the Cost Explorer read permission.",
        "Attach AWSCostExplorerReadOnlyAccess to the role.", "AccessDeniedException: not authorized"))
    build(tmp_path, rows)
    path = write_dashboard(tmp_path, NOW)
    return path, Page(path.read_text(encoding="utf-8")), rows


class Page(HTMLParser):
    """Text of the elements carrying data-field, keyed by the data-provider / data-currency around them."""

    def __init__(self, html: str):
        super().__init__()
        self.html = html
        self.fields: dict[tuple[str | None, str | None, str], str] = {}
        self.cards: dict[str, str] = {}
        self.rows: dict[str, list[str]] = {}  # table row data-account/-status -> texts, in page order
        self._stack: list[dict[str, str | None]] = []
        self._capture: list[list] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.handle_data(" ")  # a tag boundary separates words, as a browser's layout does
        if tag in ("br", "meta", "line", "i"):
            return
        self._stack.append({"tag": tag, **a})
        if "data-field" in a or ("data-provider" in a and tag == "section") or (tag == "tr" and "data-status" in a):
            self._capture.append([dict(self._context(), field=a.get("data-field"), tag=tag, tr=a if tag == "tr" else None), len(self._stack), ""])

    def _context(self) -> dict[str, str | None]:
        context: dict[str, str | None] = {"provider": None, "currency": None}
        for entry in self._stack:
            for name in ("provider", "currency"):
                if f"data-{name}" in entry:
                    context[name] = entry[f"data-{name}"]
        return context

    def handle_data(self, data):
        for capture in self._capture:
            capture[2] += data

    def handle_endtag(self, tag):
        self.handle_data(" ")
        if tag in ("br", "meta", "line", "i"):
            return
        depth = len(self._stack)
        for capture in [c for c in self._capture if c[1] == depth]:
            info, _, text = capture
            if info["field"]:
                self.fields[(info["provider"], info["currency"], info["field"])] = " ".join(text.split())
            elif info["tr"]:
                self.rows.setdefault("connections", []).append((info["tr"]["data-account"], info["tr"]["data-status"], " ".join(text.split())))
            else:
                self.cards[info["provider"]] = " ".join(text.split())
            self._capture.remove(capture)
        self._stack.pop()


def window_sum(rows: list[dict], provider: str, currency: str, first: date, last: date) -> Decimal:
    return sum(
        (r["BilledCost"] for r in rows if r["x_Provider"] == provider and r["BillingCurrency"] == currency
         and first <= r["ChargePeriodStart"].date() <= last),
        Decimal(0),
    )


def amount(value: Decimal, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def test_a_card_per_provider_and_currency_with_the_exact_window_totals(page) -> None:
    _, html, rows = page
    yesterday = TODAY - timedelta(days=1)
    for provider, currency in (("aws", "USD"), ("aws", "EUR"), ("gcp", "USD")):
        assert html.fields[(provider, currency, "month_to_date")] == amount(window_sum(rows, provider, currency, TODAY.replace(day=1), TODAY), currency)
        last_30 = window_sum(rows, provider, currency, TODAY - timedelta(days=30), yesterday)
        assert html.fields[(provider, currency, "last_30_days")] == amount(last_30, currency)
        assert html.fields[(provider, currency, "last_7_days")] == amount(window_sum(rows, provider, currency, TODAY - timedelta(days=7), yesterday), currency)
    last = window_sum(rows, "gcp", "USD", TODAY - timedelta(days=30), yesterday)
    previous = window_sum(rows, "gcp", "USD", TODAY - timedelta(days=60), TODAY - timedelta(days=31))
    assert html.fields[("gcp", "USD", "change_pct")].endswith(f"{float((last - previous) / previous * 100):+.1f}%")
    # No figure anywhere adds dollars and euros.
    usd_and_eur = window_sum(rows, "aws", "USD", TODAY - timedelta(days=30), yesterday) + window_sum(rows, "aws", "EUR", TODAY - timedelta(days=30), yesterday)
    assert f"{usd_and_eur:,.2f}" not in html.html


def test_a_provider_without_data_says_no_data_with_the_status_and_fix(page) -> None:
    _, html, _ = page
    assert set(html.cards) == {"aws", "gcp", "digitalocean"}  # whatever providers the tables hold
    card = html.cards["digitalocean"]
    assert card.startswith("DigitalOcean No data")
    # Never pulled: it says so, names the usual cause, and how to pull it now.
    assert "do-team NO_DATA No pull of this account has run yet." in card and "The API token lacks billing read access." in card
    assert "Fix: Run `finops-pipeline refresh --account do-team`" in card and "Regenerate a token with billing read access" in card
    # A provider with data still flags its failing account; the cause and fix are told once, in the connections table.
    assert "1 account(s) need attention (see Billing connections). aws-broken ERROR" in html.cards["aws"]
    assert html.html.count("The role is missing the Cost Explorer read permission.") == 1
    assert html.html.count("AccessDeniedException: not authorized") == 1


def test_connection_status_lists_error_and_no_data_first_with_cause_and_fix(page) -> None:
    _, html, _ = page
    statuses = [(key, status) for key, status, _ in html.rows["connections"]]
    assert statuses == [("aws-broken", "ERROR"), ("do-team", "NO_DATA"), ("aws-a", "OK"), ("gcp-main", "OK")]
    broken = html.rows["connections"][0][2]
    assert "Fix: Attach AWSCostExplorerReadOnlyAccess" in broken and "aws.cost_explorer_access_denied" in broken


def page_data(html: str) -> dict:
    start = html.index('<script type="application/json" id="page-data">') + len('<script type="application/json" id="page-data">')
    return json.loads(html[start:html.index("</script>", start)])


def decoded_rows(data: dict) -> dict[tuple, tuple[Decimal, Decimal]]:
    """The embedded series back as exact (day, provider, account, service, currency) -> (billed, effective)."""
    names, base, unit = data["names"], date.fromisoformat(data["base"]), Decimal(10) ** -data["scale"]
    cents = 10 ** (data["scale"] - 2)

    def value(v) -> Decimal:
        return (Decimal(v[0] * cents + v[1]) if isinstance(v, list) else Decimal(v)) * unit

    out: dict[tuple, tuple[Decimal, Decimal]] = {}
    for p, a, s, _r, c, _t, first, billed, diff in data["series"]:
        for i, b in enumerate(billed):
            key = (base + timedelta(days=first + i), names["provider"][p], names["account"][a], names["service"][s], names["currency"][c])
            e = value(b) + (value(diff[i]) if diff else 0)
            old = out.get(key, (Decimal(0), Decimal(0)))
            out[key] = (old[0] + value(b), old[1] + e)
    return out


def test_the_page_embeds_the_exact_daily_rows_and_what_is_loaded(page) -> None:
    path, html, rows = page
    data = page_data(html.html)
    decoded = decoded_rows(data)
    _, expected = query(path.parent, """SELECT ChargePeriodStart::DATE, x_Provider, x_AccountKey, coalesce(ServiceName, ''), BillingCurrency,
                                               sum(BilledCost), sum(EffectiveCost) FROM cost_daily GROUP BY ALL""")
    assert {k: v for k, v in decoded.items() if v != (0, 0)} == {tuple(r[:5]): (r[5], r[6]) for r in expected}
    assert data["as_of"] == TODAY.isoformat() and data["scale"] == 10  # the lake's amounts need all 10 decimals here
    # Loaded: per account, the billing periods in the lake, up to as_of (September to today for aws-a).
    names = data["names"]
    spans = {names["account"][a]: s for _, a, s in data["loaded"]}
    base = date.fromisoformat(data["base"])
    assert base + timedelta(days=spans["aws-a"][0][0]) == (TODAY - timedelta(days=70)).replace(day=1)
    assert base + timedelta(days=spans["aws-a"][-1][1]) == TODAY
    assert "do-team" not in spans  # never pulled: nothing loaded, not zeros


def test_the_page_is_self_contained_and_escapes_what_users_typed(page) -> None:
    path, html, _ = page
    text = html.html
    assert " src=" not in text and "href=" not in text and "@import" not in text and "https:" not in text
    assert text.count("http://") == 1 and "http://www.w3.org/2000/svg" in text  # the SVG namespace, never fetched
    # The browser may not fetch anything; only this page's own script and style run (their SHA-256 in the policy).
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)

    def sha(part: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(part.encode()).digest()).decode() + "'"

    assert csp == f"default-src 'none'; script-src {sha(script)}; style-src {sha(style)}; img-src data:"
    assert text.lower().count("<script") == 2 and ' style="' not in text  # the data block and the script; no inline style attribute
    assert "Acme &lt;payer&gt;" in text and "Acme <payer>" not in text  # in the page and in its JSON (as \\u003c)
    assert str(path.parent) not in text  # no local path in the page
    assert path == dashboard_path(path.parent)


def _decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, width, height = 8, b"", 0, 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        assert struct.unpack(">I", data[position + 8 + length : position + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3 + 1
    return width, height, [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)]


def test_png_preview_draws_bars_in_proportion_and_none_for_a_day_without_cost() -> None:
    days = [date(2026, 11, d) for d in (1, 2, 3, 4)]
    series = series_by_currency([("aws", "USD", d, a) for d, a in zip(days, (Decimal(10), Decimal(5), Decimal(0), Decimal("2.5")))])[0]
    width, height, pixels = _decode_png(png_bar_chart(series, width=104, height=108))
    assert (width, height) == (104, 108)
    orange = bytes((0xFF, 0x99, 0x00))

    def bar_height(day_index: int) -> int:
        x = 4 + int((day_index + 0.5) * (width - 8) / 4)
        return sum(1 for line in pixels if line[x * 3 : x * 3 + 3] == orange)

    assert [bar_height(i) for i in range(4)] == [100, 50, 0, 25]


def test_preview_markdown_has_the_cards_and_a_trend_image_per_currency(page) -> None:
    markdown = preview_markdown(read_dashboard_data(page[0].parent))
    assert markdown.count("](data:image/png;base64,") == 2  # USD and EUR
    assert "| digitalocean | | **No data** |" in markdown
    assert "**aws-broken** ERROR" in markdown


def test_cli_writes_the_dashboard_and_prints_its_path(page, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path, _, _ = page
    path.unlink()
    assert main(["dashboard", "--data-dir", str(path.parent)]) == 0
    assert capsys.readouterr().out.strip() == str(path.absolute())
    assert path.exists()
    assert main(["dashboard", "--data-dir", str(tmp_path / "empty")]) == 2
    assert "run the pipeline first" in capsys.readouterr().err


def test_a_table_not_built_yet_is_named_on_the_page(tmp_path: Path) -> None:
    rows = lake_rows()[:10]
    build(tmp_path, rows)
    (tmp_path / "lake" / "marts" / "cost_by_account.parquet").unlink()
    html = write_dashboard(tmp_path, NOW).read_text(encoding="utf-8")
    assert "Not built yet: cost_by_account" in html


def test_the_dashboard_asset_materializes_with_the_pipeline(seeded) -> None:  # noqa: F811 (the fixture)
    """Through Dagster on moto: the refresh job writes the page; its metadata has the path and a preview image."""
    config_path, data_dir, charges = seeded
    result = run_refresh(config_path, data_dir, "2026-11", now="2026-11-26T08:00:00Z")
    [materialization] = [e.materialization for run in result.runs for e in run.get_asset_materialization_events()
                         if e.asset_key.to_user_string() == "finops_dashboard"]
    metadata = materialization.metadata
    path = Path(metadata["path"].value)
    assert path == dashboard_path(data_dir) and path.exists()
    assert "](data:image/png;base64," in metadata["preview"].value
    assert metadata["accounts_needing_attention"].value == 1  # aws-empty: NO_DATA, connected 5.8 days before
    html = Page(path.read_text(encoding="utf-8"))
    november = sum(c.amount for items in charges.values() for c in items if c.day.month == 11)
    assert html.fields[("aws", "USD", "month_to_date")] == amount(november, "USD")
    assert [(key, status) for key, status, _ in html.rows["connections"]][0] == ("aws-empty", "NO_DATA")


def test_a_change_against_a_partly_loaded_window_says_so(page, tmp_path: Path) -> None:
    rows = [r for r in lake_rows() if r["ChargePeriodStart"].date() >= TODAY - timedelta(days=40)]
    build(tmp_path, rows)
    html = Page(write_dashboard(tmp_path, NOW).read_text(encoding="utf-8"))
    # Partitions are whole billing periods: October and November are loaded, September is not.
    assert "The 30 days before are only partly loaded (26 of 30 days, loaded from 2026-10-01)" in html.cards["aws"]
    full = page[1]  # 70 days loaded: both windows complete
    assert "partly loaded" not in full.cards["aws"] and "partly loaded" not in full.cards["gcp"]
