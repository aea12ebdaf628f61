"""The dashboard page in headless Chromium (Debian's package, nothing downloaded), from a hand-built lake:
no `dagster dev`. The figures the page shows are compared with DuckDB over cost_daily."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.catalog import MART_TABLES, build_catalog, query
from finops_pipeline.dashboard import write_dashboard
from finops_pipeline.lake import PartitionKey, write_partition
from finops_pipeline.marts import build_mart, write_mart
from finops_pipeline.schema import rows_to_table
from finops_pipeline_tests.test_dashboard import CONFIG, NOW, TODAY, charge, quantized
from finops_pipeline_tests.ui.chromium import MARKS, launched

pytestmark = MARKS
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
expect = playwright.expect

SERVICES = (("AmazonEC2", "us-east-1"), ("AmazonS3", "eu-west-1"), ("AmazonRDS", "us-east-1"))


def lake_rows() -> list[dict]:
    """September to today (November 26): three AWS services in two regions with tags, EffectiveCost below
    BilledCost on EC2 (a commitment), GCP in USD, a little EUR. The lake holds September to November."""
    rows = []
    day = date(2026, 9, 1)
    while day <= TODAY:
        n = (day - date(2026, 9, 1)).days
        for i, (service, region) in enumerate(SERVICES):
            billed = Decimal(50 + 10 * i) + Decimal(n % 7) / 3
            r = charge("aws", "aws-a", day, billed, "USD", "111111111111")
            r.update(ServiceName=service, RegionId=region, Tags=json.dumps({"team": "data" if i else "web"} if n % 5 else {}))
            r = quantized(r)
            if service == "AmazonEC2":
                r["EffectiveCost"] = (billed * Decimal("0.7")).quantize(Decimal("0.0000000001"))
            rows.append(r)
        g = quantized(charge("gcp", "gcp-main", day, Decimal("20.0000000001") * (1 + n % 3), "USD", "acme-prod"))
        g.update(ServiceName="Compute Engine", RegionId="europe-west1", Tags=json.dumps({"Team": "web"}))
        rows.append(g)
        if n % 10 == 0:
            rows.append(quantized(charge("aws", "aws-a", day, Decimal("9.99"), "EUR", "111111111111")))
        day += timedelta(days=1)
    return rows


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("page")
    groups: dict[tuple, list[dict]] = {}
    for r in lake_rows():
        groups.setdefault((r["x_Provider"], r["x_Source"], r["x_AccountKey"], r["BillingPeriodStart"].strftime("%Y-%m")), []).append(r)
    for (provider, source, key, period), items in groups.items():
        write_partition(data_dir, PartitionKey(provider, source, key, period), rows_to_table(items), {})
    for name in MART_TABLES:
        write_mart(name, build_mart(name, data_dir, CONFIG, NOW), data_dir)
    build_catalog(data_dir)  # once after the tables, as a run does
    write_dashboard(data_dir, NOW)
    return data_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright.Browser]:
    yield from launched()


@pytest.fixture
def page(browser, lake: Path) -> Iterator[playwright.Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # a CSP violation is a console error
    page.goto((lake / "dashboard.html").as_uri())
    expect(page.locator("body[data-ready='1']")).to_have_count(1)
    yield page
    assert errors == []
    context.close()


def total(lake: Path, first: date, last: date, column: str = "BilledCost", where: str = "true", currency: str = "USD") -> str:
    _, [(value,)] = query(lake, f"""SELECT coalesce(sum({column}), 0) FROM cost_daily
        WHERE ChargePeriodStart::DATE BETWEEN DATE '{first}' AND DATE '{last}' AND BillingCurrency = '{currency}' AND ({where})""")
    return f"{currency} {value:,.2f}"


def shown(page, currency: str = "USD") -> str:
    return page.locator(f'[data-total-currency="{currency}"] [data-field="total"]').inner_text()


def set_range(page, first: date, last: date) -> None:
    page.fill("#from", first.isoformat())
    page.fill("#to", last.isoformat())


def test_date_range_filters_and_amortized_follow_cost_daily(page, lake: Path, tmp_path: Path) -> None:
    # Default: the last 30 complete days, total across providers per currency.
    first, last = TODAY - timedelta(days=30), TODAY - timedelta(days=1)
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(total(lake, first, last))
    expect(page.locator('[data-total-currency="EUR"] [data-field="total"]')).to_have_text(total(lake, first, last, currency="EUR"))
    aws = page.locator('[data-total-currency="USD"] [data-provider="aws"] [data-field="provider_total"]')
    expect(aws).to_have_text(total(lake, first, last, where="x_Provider = 'aws'"))
    # Another range, then a service filter, a region filter and a tag filter.
    first, last = date(2026, 10, 5), date(2026, 11, 20)
    set_range(page, first, last)
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(total(lake, first, last))
    page.select_option("#f-service", label="AmazonEC2")
    where = "ServiceName = 'AmazonEC2'"
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(total(lake, first, last, where=where))
    page.select_option("#metric", "effective")  # amortized
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(total(lake, first, last, "EffectiveCost", where))
    assert shown(page) != total(lake, first, last, where=where)
    page.select_option("#f-service", "")
    page.select_option("#f-region", label="us-east-1")
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(
        total(lake, first, last, "EffectiveCost", "RegionId = 'us-east-1'"))
    page.select_option("#f-region", "")
    page.select_option("#f-tag", label="team = web")  # GCP's "Team" and AWS's "team" are one normalized key
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(
        total(lake, first, last, "EffectiveCost", "lower(json_extract_string(Tags, '$.team')) = 'web' OR json_extract_string(Tags, '$.Team') = 'web'"))
    page.screenshot(path=tmp_path / "filtered.png", full_page=True)
    # Breakdowns follow: per-service rows of the tag-filtered selection.
    expect(page.locator('#by-service tr[data-key="Compute Engine"] td.num').first).to_have_text(
        total(lake, first, last, "EffectiveCost", "ServiceName = 'Compute Engine'"))


def test_days_not_loaded_are_not_zero(page, lake: Path) -> None:
    # August is not in the lake: a window across it says so and draws those days as not loaded.
    set_range(page, date(2026, 8, 20), date(2026, 9, 9))
    coverage = page.locator("#coverage")
    expect(coverage).to_have_attribute("data-coverage", "partial")
    expect(coverage).to_contain_text("Not loaded: 2026-08-20 to 2026-08-31")
    expect(page.locator('.trend[data-currency="USD"] rect.nl')).to_have_count(12)
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text(total(lake, date(2026, 9, 1), date(2026, 9, 9)))
    set_range(page, date(2026, 8, 1), date(2026, 8, 31))  # nothing loaded: never "0.00"
    expect(coverage).to_have_attribute("data-coverage", "none")
    expect(page.locator('[data-total-currency="USD"] [data-field="total"]')).to_have_text("not loaded")


def test_csv_download_is_what_is_shown(page, lake: Path) -> None:
    first, last = date(2026, 11, 1), date(2026, 11, 26)
    set_range(page, first, last)
    page.select_option("#f-provider", label="AWS")
    page.select_option("#metric", "effective")
    with page.expect_download() as info:
        page.click("#csv")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    got = {(r["day"], r["account_key"], r["service"], r["region"], r["currency"]): (Decimal(r["billed_cost"]), Decimal(r["effective_cost"]))
           for r in rows}
    assert {r["provider"] for r in rows} == {"aws"} and {r["loaded"] for r in rows} == {"full"}
    _, expected = query(lake, f"""SELECT ChargePeriodStart::DATE::VARCHAR, x_AccountKey, ServiceName, coalesce(RegionId, ''), BillingCurrency,
                                         sum(BilledCost), sum(EffectiveCost) FROM cost_daily
                                  WHERE x_Provider = 'aws' AND ChargePeriodStart::DATE BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY ALL""")
    assert got == {tuple(r[:5]): (r[5], r[6]) for r in expected}
    assert info.value.suggested_filename == "finops-costs-2026-11-01-to-2026-11-26.csv"


def test_forecast_anomalies_budgets_and_layout(page, lake: Path, tmp_path: Path) -> None:
    _, [(forecasts, currencies)] = query(lake, "SELECT count(*), count(DISTINCT currency) FROM cost_forecast")
    expect(page.locator("#forecast tr")).to_have_count(1 + forecasts + currencies)  # header, rows, a total per currency
    expect(page.locator("#budgets")).to_contain_text("No budgets in finops.yaml.")
    # Wider than 1280 px when the window is, and dates on one line.
    page.set_viewport_size({"width": 1900, "height": 1000})
    assert page.locator("main").evaluate("m => m.getBoundingClientRect().width") > 1800
    lines = page.locator("#connections td.date").evaluate_all(
        "cells => cells.map(c => { const r = document.createRange(); r.selectNodeContents(c);"
        " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; })")
    assert lines and max(lines) == 1  # each date span on one line (or empty)
    assert page.locator("header").inner_text().count(str(lake)) == 0
    page.screenshot(path=tmp_path / "dashboard-wide.png", full_page=True)


def test_the_page_fetches_nothing(browser, lake: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((lake / "dashboard.html").as_uri())
    expect(page.locator("body[data-ready='1']")).to_have_count(1)
    assert requests == [(lake / "dashboard.html").as_uri()]
    context.close()
