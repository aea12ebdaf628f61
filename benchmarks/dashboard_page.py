"""Dashboard page benchmark: a year of daily data for 1,000 accounts, the page's size and its load time
in headless Chromium (a script, not a test).

    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/dashboard_page.py                # 1,000 accounts, 10 decimals
    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/dashboard_page.py --decimals 2   # amounts in cents
    PYTHONPATH=.:sandbox .venv/bin/python benchmarks/dashboard_page.py --accounts 100 # quicker

Writes a lake (one partition per account and billing period, `--services` service/region series per
account and day, amounts with `--decimals` decimals, EffectiveCost below BilledCost on one service in
three), builds the dashboard tables (not the insight tables: the page reads them when present), writes
the page, then opens it in /usr/bin/chromium through Playwright and reports: the time to write the page,
its size (and gzipped), the time from navigation to the explorer drawn, the script's own time, the time
to apply a filter, to change the range to a year and to build the CSV.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from finops_pipeline.config import parse_config  # noqa: E402
from finops_pipeline.dashboard import write_dashboard  # noqa: E402
from finops_pipeline.lake import PartitionKey, partition_metadata  # noqa: E402
from finops_pipeline.marts import build_mart, write_mart  # noqa: E402
from finops_pipeline.schema import COST_DAILY_SCHEMA, conform  # noqa: E402

SERVICES = ("AmazonEC2", "AmazonS3", "AmazonRDS", "AWSLambda", "AmazonCloudWatch")
REGIONS = ("us-east-1", "eu-west-1")


def write_lake(data_dir: Path, accounts: int, services: int, decimals: int, today: date) -> int:
    first = (today.replace(day=1) - timedelta(days=335)).replace(day=1)  # 12 billing periods up to today's
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    rows = 0
    period = first
    while period <= today:
        end = min((period + timedelta(days=32)).replace(day=1) - timedelta(days=1), today)
        table = connection.sql(
            f"""
            WITH a AS (SELECT range AS n FROM range($accounts)), s AS (SELECT range AS k FROM range($services)),
                 d AS (SELECT unnest(generate_series($first::DATE, $end::DATE, INTERVAL 1 DAY))::DATE AS day)
            SELECT round((10 + (hash(n, k, day) % 100000) / 1000.0 * (1 + k)), {decimals})::DECIMAL(38,10) AS BilledCost,
                   CASE WHEN k % 3 = 0 THEN round(BilledCost * 0.7, {decimals}) ELSE BilledCost END::DECIMAL(38,10) AS EffectiveCost,
                   BilledCost AS ListCost, BilledCost AS ContractedCost, 'USD' AS BillingCurrency,
                   $period::TIMESTAMPTZ AS BillingPeriodStart, ($period::DATE + INTERVAL 1 MONTH)::TIMESTAMPTZ AS BillingPeriodEnd,
                   day::TIMESTAMPTZ AS ChargePeriodStart, (day + 1)::TIMESTAMPTZ AS ChargePeriodEnd, 'Usage' AS ChargeCategory,
                   lpad(n::VARCHAR, 12, '0') AS BillingAccountId, lpad(n::VARCHAR, 12, '0') AS SubAccountId,
                   'AWS' AS InvoiceIssuerName, 'AWS' AS ProviderName, 'AWS' AS PublisherName,
                   {list(SERVICES)}[k % {len(SERVICES)} + 1] AS ServiceName, 'Compute' AS ServiceCategory,
                   {list(REGIONS)}[(n + k) % 2 + 1] AS RegionId,
                   '{{"team":"team-' || (n % 20)::VARCHAR || '","env":"' || CASE WHEN n % 3 = 0 THEN 'prod' ELSE 'dev' END || '"}}' AS Tags,
                   'aws' AS x_Provider, 'cost_explorer' AS x_Source, 'acct-' || lpad(n::VARCHAR, 4, '0') AS x_AccountKey,
                   false AS x_Estimated, now() AS x_IngestedAt
            FROM a, s, d ORDER BY x_AccountKey, day
            """,
            params={"accounts": accounts, "services": services, "first": period, "end": end, "period": period},
        ).to_arrow_table()
        table = conform(table)
        keys = table.column("x_AccountKey").combine_chunks()
        starts = pc.run_end_encode(keys)
        offset = 0
        for key, run_end in zip(starts.values.to_pylist(), starts.run_ends.to_pylist()):
            part = table.slice(offset, run_end - offset)
            offset = run_end
            path = PartitionKey("aws", "cost_explorer", key, period.strftime("%Y-%m")).path(data_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part.replace_schema_metadata(partition_metadata({})), path, compression="zstd")
        rows += table.num_rows
        period = (period + timedelta(days=32)).replace(day=1)
    assert table.schema.remove_metadata() == COST_DAILY_SCHEMA.remove_metadata()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--services", type=int, default=3, help="service/region series per account and day")
    parser.add_argument("--decimals", type=int, default=10)
    parser.add_argument("--keep", help="write the lake here instead of a temporary directory")
    args = parser.parse_args()
    now = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    config = parse_config({"accounts": [
        {"key": f"acct-{n:04d}", "provider": "aws", "source": "cost_explorer", "connected_at": "2025-01-01", "account_id": f"{n:012d}"}
        for n in range(args.accounts)]}, Path("finops.yaml"))
    with tempfile.TemporaryDirectory() as temporary:
        data_dir = Path(args.keep or temporary)
        started = time.perf_counter()
        rows = write_lake(data_dir, args.accounts, args.services, args.decimals, now.date())
        print(f"lake: {rows:,} rows, {args.accounts} accounts x {args.services} series x a year, {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        for name in ("provider_cost_summary", "daily_cost_trend", "cost_by_account", "billing_connection_status"):
            write_mart(name, build_mart(name, data_dir, config, now), data_dir)
        print(f"dashboard tables: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        path = write_dashboard(data_dir, now)
        written = time.perf_counter() - started
        raw = path.read_bytes()
        print(f"page written in {written:.1f} s: {len(raw) / 1e6:.1f} MB ({len(gzip.compress(raw)) / 1e6:.1f} MB gzipped)")
        measure_in_chromium(path)


def measure_in_chromium(path: Path) -> None:
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        for attempt in range(3):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            started = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=120_000)
            ready = time.perf_counter() - started
            script = page.evaluate("performance.now()")
            timings = page.evaluate("""() => {
                const t = () => performance.now(), out = {};
                let s = t(); const f = document.getElementById('f-service'); f.selectedIndex = 1; f.dispatchEvent(new Event('change'));
                out.filter = t() - s;
                s = t(); const from = document.getElementById('from'); from.value = from.min; from.dispatchEvent(new Event('change'));
                out.year = t() - s;
                return out; }""")
            with page.expect_download() as download:
                started_csv = time.perf_counter()
                page.click("#csv")
            size = Path(download.value.path()).stat().st_size
            csv_seconds = time.perf_counter() - started_csv
            heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
            print(f"chromium run {attempt + 1}: drawn {ready:.2f} s after navigation (page clock {script / 1000:.2f} s); "
                  f"a filter {timings['filter']:.0f} ms; the whole range {timings['year']:.0f} ms; "
                  f"CSV of it {csv_seconds:.2f} s ({size / 1e6:.1f} MB); JS heap {heap / 1e6:.0f} MB")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
