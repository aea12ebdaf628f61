"""The Dagster UI and the dashboard page in headless Chromium (Debian's package; nothing downloaded),
as a user looks at them. Screenshots go to each test's tmp_path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from finops_pipeline.catalog import query
from finops_pipeline.dashboard import dashboard_path
from finops_pipeline_tests.ui.chromium import MARKS, launched
from finops_pipeline_tests.ui.conftest import DagsterDev
from finops_pipeline_tests.ui.test_dagster_dev import charged

pytestmark = MARKS
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
expect = playwright.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright.Browser]:
    yield from launched()


@pytest.fixture
def page(browser) -> Iterator[playwright.Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def visit(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("button", name="Skip")  # the first-visit "join the community" dialog
    if skip.count():
        skip.click()


def test_the_asset_graph_shows_every_account_and_its_checks(page, dagster_dev: DagsterDev, settled: None, tmp_path: Path) -> None:
    from finops_pipeline.jobs import load_definitions_for
    from finops_pipeline.resources import FinopsResource

    defs = load_definitions_for(FinopsResource(config_file=str(dagster_dev.config.path)))
    checks_by_asset: dict[str, set[str]] = {}
    for key in defs.resolve_asset_graph().asset_check_keys:
        checks_by_asset.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    page.set_viewport_size({"width": 1440, "height": 4000})
    for provider in sorted({a.provider for a in dagster_dev.config.accounts}):
        visit(page, f"{dagster_dev.url}/locations/finops_pipeline/asset-groups/{provider}")
        page.screenshot(path=tmp_path / f"graph-{provider}.png")
        # Tall enough for every account's node: the lineage view draws only the nodes on screen.
        for account in dagster_dev.config.accounts:
            if account.provider == provider:
                expect(page.get_by_text(re.compile(re.escape(account.key))).first).to_be_visible()
    for account in dagster_dev.config.accounts:
        name = f"{account.provider}_{account.source}/{account.key}"
        visit(page, f"{dagster_dev.url}/assets/{name}?view=checks")
        expect(page.get_by_text(f"Checks ({len(checks_by_asset[name])})")).to_be_visible()
        for check in checks_by_asset[name]:
            expect(page.get_by_text(check, exact=True).first).to_be_visible()
    page.screenshot(path=tmp_path / "checks.png")
    assert {"billing_data_within_48h", "reconciles_with_source"} <= set.union(*checks_by_asset.values())


def test_a_failed_48_hour_check_shows_the_account_and_the_fix(page, dagster_dev: DagsterDev, settled: None, tmp_path: Path) -> None:
    assert "aws-new-sandbox" in [a.key for a in dagster_dev.config.for_source("aws", "cost_explorer")], \
        "the demo registry has an account that never gets data"
    visit(page, f"{dagster_dev.url}/assets/aws_cost_explorer/aws-new-sandbox?view=checks")
    page.get_by_text("billing_data_within_48h", exact=True).first.click()
    expect(page.get_by_text("Failed").first).to_be_visible()
    # The check's description and metadata name the status, the cause and the fix, on the page itself.
    expect(page.get_by_text("NO_DATA: The pulls succeed, but Cost Explorer returns no costs for this account.").first).to_be_visible()
    expect(page.get_by_text(re.compile("payer \\(management\\) account")).first).to_be_visible()
    page.screenshot(path=tmp_path / "failed-check.png", full_page=True)


def test_the_dashboard_asset_shows_its_trend_preview_in_the_ui(page, dagster_dev: DagsterDev, settled: None, tmp_path: Path) -> None:
    visit(page, f"{dagster_dev.url}/assets/finops_dashboard")
    expect(page.get_by_text(str(dashboard_path(dagster_dev.data_dir))).first).to_be_visible()
    page.locator("tr", has_text="preview").get_by_text("[Show Markdown]").first.click()
    image = page.get_by_role("dialog").locator("img").first
    expect(image).to_be_visible()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 600  # decoded, not a broken image
    page.wait_for_timeout(500)
    page.screenshot(path=tmp_path / "dashboard-asset-preview.png")


def test_the_dashboard_page_shows_the_right_totals_and_fetches_nothing(page, dagster_dev: DagsterDev, settled: None, tmp_path: Path) -> None:
    path = dashboard_path(dagster_dev.data_dir)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    card = page.locator('[data-provider="aws"] [data-currency="USD"]')
    # Month to date and the last 30 days straight from the unified rows, not from the dashboard tables.
    today = dagster_dev.now.date()
    month = charged(dagster_dev, "aws", "USD", today.replace(day=1), today)
    last_30 = charged(dagster_dev, "aws", "USD", today - timedelta(days=30), today - timedelta(days=1))
    expect(card.locator('[data-field="month_to_date"]')).to_have_text(f"USD {month:,.2f}")
    expect(card.locator('[data-field="last_30_days"]')).to_have_text(f"USD {last_30:,.2f}")
    assert last_30 > month >= 0 and (month > 0 or today.day == 1)  # on the 1st the new month has no costs yet
    expect(page.locator('#connections tr[data-account="aws-new-sandbox"]')).to_contain_text("NO_DATA")
    statuses = page.locator("#connections tr[data-status]").evaluate_all("rows => rows.map(r => r.dataset.status)")
    order = ["ERROR", "NO_DATA", "PENDING", "OK"]
    assert statuses == sorted(statuses, key=order.index) and "NO_DATA" in statuses  # attention first
    # The explorer's trend (drawn by the page's script): one chart per currency, never a sum across them.
    _, currencies = query(dagster_dev.data_dir, "SELECT DISTINCT currency FROM daily_cost_trend")
    expect(page.locator(".trend svg.chart")).to_have_count(len(currencies))
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    assert requests == [path.as_uri()]  # the page alone: no CDN, no fonts, no scripts
