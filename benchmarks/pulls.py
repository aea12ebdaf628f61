"""Pulling many accounts: sequential against concurrent, and Cost Explorer's pages (a script, not a test).

1. DigitalOcean, 1,000 teams (each its own token, so its own account), from the stand-in answering
   every request after `--latency` seconds (200 ms), through the path the Dagster asset runs
   (`refresh.refresh_accounts` with `pull_billing`: pull, atomic partition write, pull record).
   Sequential is timed on a sample of `--sequential-sample` teams (default 50) and scaled to the
   1,000 (`--sequential-sample 1000` for the real thing: about 15 minutes); concurrent on all of them
   at the configured concurrency (the source's default, or `--concurrency`). Printed: API calls
   counted at the stand-in, the lower bound `calls x latency / concurrency`, the ratio to it, the
   most requests the stand-in saw at once, and the busiest minute (DigitalOcean allows 250 a minute
   and 5,000 an hour per token; every team here has its own token).
2. Cost Explorer, a 100-account organization (one payer, 100 linked accounts, 15 services each):
   pages per refresh, counted at a proxy in front of moto, when every refresh pulls the whole month
   against the thrifty refresh (the days marked Estimated, since the last pull, the last 3 days), at
   one page per day of data (`--ce-days-per-page`; AWS does not publish its page size, and 1,500
   groups a day is a page's worth), and the daily API spend at 4 refreshes a day and USD 0.01 a page.

    PYTHONPATH=.:sandbox python benchmarks/pulls.py [--accounts 1000] [--latency 0.2] [--sequential-sample 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "sandbox")]

from finops_pipeline.config import parse_config  # noqa: E402
from finops_pipeline.refresh import refresh_accounts  # noqa: E402
from finops_pipeline.sources import get_source  # noqa: E402


def _token(index: int) -> str:
    return f"dop_v1_bench_{index:05d}_7c1e9a"


def _stand_in(conn, accounts: int, today: date) -> None:
    """The DigitalOcean stand-in in its own process (the provider is not on the puller's cores), driven through `conn`."""
    from finops_sandbox.digitalocean import DigitalOceanSandbox, seed_team, team_charges

    server = DigitalOceanSandbox().start()
    charges = team_charges("bench", today.replace(day=1) - timedelta(days=31), today - timedelta(days=1))
    for index in range(accounts):
        team = server.add_team(f"bench {index}")
        server.add_token(_token(index), team)
        seed_team(team, charges, today)
    conn.send((server.url, server.ca_file))
    while True:
        command, argument = conn.recv()
        if command == "latency":
            server.latency = argument
        elif command == "reset":
            server.reset_counters()
        elif command == "stats":
            conn.send((len(server.requests), server.max_in_flight, server.max_requests_within(60.0)))
            continue
        elif command == "stop":
            server.stop()
            conn.send(None)
            return
        conn.send(None)


def digitalocean(accounts: int, latency: float, sample: int, concurrency: int | None) -> None:
    import multiprocessing

    from finops_pipeline.defs.digitalocean.billing.pull import pull_billing

    today = datetime.now(timezone.utc).date()
    period = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")  # the closed month: its invoice is read too
    conn, child_conn = multiprocessing.Pipe()
    stand_in = multiprocessing.get_context("spawn").Process(target=_stand_in, args=(child_conn, accounts, today), daemon=True)
    stand_in.start()

    def ask(command: str, argument=None):
        conn.send((command, argument))
        return conn.recv()

    try:
        url, ca_file = conn.recv()
        entries = []
        for index in range(accounts):
            variable = f"FINOPS_BENCH_DO_TOKEN_{index:05d}"
            os.environ[variable] = _token(index)
            entries.append({"key": f"do-{index:05d}", "provider": "digitalocean", "source": "billing", "name": f"Team {index}",
                            "connected_at": "2026-01-01T00:00:00Z", "token_env": variable, "endpoint": url, "ca_bundle": ca_file})
        config = parse_config({"accounts": entries}, Path("finops.yaml"))
        source = get_source("digitalocean", "billing")
        workers = concurrency or config.concurrency_for(source)
        now = lambda: datetime.now(timezone.utc)  # noqa: E731

        def run(selected, how_many: int) -> tuple[float, int, int, int, int]:
            ask("reset")
            with tempfile.TemporaryDirectory() as data:
                started = time.perf_counter()
                outcomes = refresh_accounts(Path(data), selected, period, pull_billing, now, [], concurrency=how_many)
                elapsed = time.perf_counter() - started
            failed = sum(1 for o in outcomes if not o.ok)
            calls, peak, minute = ask("stats")
            return elapsed, calls, peak, minute, failed

        ask("latency", latency)
        sequential = list(config.accounts[:sample])
        seq_time, seq_calls, seq_peak, _, seq_failed = run(sequential, 1)
        con_time, con_calls, con_peak, con_minute, con_failed = run(list(config.accounts), workers)
        scale = accounts / len(sequential)
        bound = con_calls * latency / workers
        print(f"DigitalOcean: {accounts} teams (one token each), {latency * 1000:.0f} ms per call, billing period {period}, "
              f"stand-in in its own process")
        print(f"  sequential : {seq_time:8.1f} s for {len(sequential)} teams ({seq_calls} calls, peak {seq_peak} at once, {seq_failed} failed)"
              + (f" -> {seq_time * scale:8.1f} s for {accounts} (scaled)" if scale != 1 else ""))
        print(f"  concurrent : {con_time:8.1f} s for {accounts} teams at concurrency {workers} ({con_calls} calls, {con_failed} failed)")
        print(f"  lower bound: {bound:8.1f} s = {con_calls} calls x {latency:g} s / {workers}; ratio {con_time / bound:.2f}x")
        print(f"  speed-up   : {seq_time * scale / con_time:8.1f}x; peak at the stand-in {con_peak} requests at once (limit {workers}); "
              f"busiest minute {con_minute} requests over {accounts} tokens, {con_calls / accounts:.1f} per token "
              f"(DigitalOcean: 250 a minute, 5,000 an hour per token)")
    finally:
        if stand_in.is_alive():
            ask("stop")
        stand_in.join(timeout=10)


def cost_explorer(days_per_page: int) -> None:
    from finops_pipeline.config import load_config
    from finops_pipeline.defs.aws.cost_explorer.definitions import SPEC
    from finops_sandbox.aws import MotoSandbox, cost_explorer_pages
    from finops_sandbox.faults import FaultProxy
    from finops_sandbox.synthetic import daily_charges

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"})
    services = [(f"Service {n:02d}", "us-east-1", Decimal(10 + n)) for n in range(15)]
    linked = [(f"{100000000000 + n:012d}", f"member-{n:03d}") for n in range(100)]
    moto = MotoSandbox().start()
    proxy = FaultProxy(moto.url).start()
    period, today = "2026-11", date(2026, 11, 30)  # a month near its end: a full pull costs the most then
    try:
        charges = daily_charges("org", date(2026, 11, 1), 29, linked, services)  # up to yesterday
        pages = cost_explorer_pages(charges, period, estimated_from=today - timedelta(days=2), days_per_page=days_per_page)
        results = {}
        for mode in ("full", "thrifty"):
            with tempfile.TemporaryDirectory() as data:
                entry = {"key": "aws-org", "provider": "aws", "source": "cost_explorer", "name": "Org", "connected_at": "2026-01-01T00:00:00Z",
                         "account_id": linked[0][0], "endpoint_url": proxy.url, "full_refresh": mode == "full"}
                path = Path(data) / "finops.yaml"
                import yaml

                path.write_text(yaml.safe_dump({"accounts": [entry]}))
                account = load_config(path).account("aws-org")
                moto.reset()
                moto.seed_cost_explorer(account, {period: pages})
                moto.seed_cost_explorer(account, {period: pages}, first_day=today - timedelta(days=3))
                counts = []
                for hour in (0, 6, 12, 18):  # a day of the 6-hourly schedule; the first pull of the month was earlier
                    moment = datetime(2026, 11, 30, hour, 5, tzinfo=timezone.utc)
                    if hour == 0 and mode == "thrifty":  # the month's first pull (the day before), not counted
                        before = datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc)
                        refresh_accounts(Path(data), [account], period, SPEC.make_pull(Path(data), lambda m=before: m), lambda m=before: m, [])
                    proxy.clear()
                    [outcome] = refresh_accounts(Path(data), [account], period, SPEC.make_pull(Path(data), lambda m=moment: m),
                                                 lambda m=moment: m, [])
                    assert outcome.ok, outcome.diagnosis
                    counts.append(proxy.requests.get("GetCostAndUsage", 0))
                results[mode] = counts
        print(f"Cost Explorer: one payer, {len(linked)} linked accounts x {len(services)} services, {days_per_page} day(s) of groups per page, "
              f"{period} refreshed on {today} (4 refreshes a day)")
        for mode, counts in results.items():
            spend = Decimal("0.01") * sum(counts)
            print(f"  {mode:8}: pages per refresh {counts} -> {sum(counts)} pages on this day = USD {spend:.2f} a day "
                  f"(the open month, on its last day, where a whole month costs the most)")
    finally:
        proxy.stop()
        moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--sequential-sample", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the source's (pull_concurrency in finops.yaml)")
    parser.add_argument("--ce-days-per-page", type=int, default=1)
    parser.add_argument("--skip", choices=("digitalocean", "cost_explorer"), action="append", default=[])
    args = parser.parse_args()
    if "cost_explorer" not in args.skip:
        cost_explorer(args.ce_days_per_page)
    if "digitalocean" not in args.skip:
        digitalocean(args.accounts, args.latency, min(args.sequential_sample, args.accounts), args.concurrency)


if __name__ == "__main__":
    main()
