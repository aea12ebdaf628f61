"""Accounts of a source pulled at once, within the limit, through the real pull path.

What is asserted is what the stand-in saw: requests answered at the same time (it answers each
after a small latency, as a far-away API does), never more at once than the configured limit, and
a 429's Retry-After holding back every pull that spends the same token's quota.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import yaml

from finops_pipeline.config import load_config
from finops_pipeline.defs.digitalocean.billing.pull import pull_billing
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_pipeline.refresh import refresh_accounts
from finops_pipeline_tests.conftest import by_account, run_refresh
from finops_pipeline_tests.digitalocean.conftest import do_entry
from finops_sandbox.digitalocean import DigitalOceanSandbox, seed_team, team_charges

TODAY = date.today()
CLOSED = (TODAY.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
LONG_AGO = datetime.now(timezone.utc) - timedelta(days=120)


def teams(do: DigitalOceanSandbox, monkeypatch, count: int, prefix: str = "team") -> tuple[list[dict], dict[str, Decimal]]:
    """`count` teams, each with its own token, a month of charges; their registry entries and closed-month totals."""
    entries, expected = [], {}
    for index in range(count):
        key, variable, token = f"{prefix}-{index:02d}", f"DO_TOKEN_{index:02d}", f"dop_v1_{prefix}_{index:02d}_5e3c1a9b7d"
        monkeypatch.setenv(variable, token)
        team = do.add_team(f"{prefix} {index}")
        do.add_token(token, team)
        charges = team_charges(key, TODAY.replace(day=1) - timedelta(days=35), TODAY - timedelta(days=1))
        seed_team(team, charges, TODAY)
        expected[key] = sum((c.amount for c in charges if c.day.strftime("%Y-%m") == CLOSED), Decimal(0))
        entries.append(do_entry(do, key, variable, LONG_AGO))
    return entries, expected


def write_registry(tmp_path: Path, entries: list[dict], concurrency: int) -> Path:
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump({"pull_concurrency": {"digitalocean_billing": concurrency}, "accounts": entries}), encoding="utf-8")
    return path


def test_accounts_are_pulled_at_once_never_more_than_the_limit(do: DigitalOceanSandbox, monkeypatch, tmp_path: Path) -> None:
    entries, expected = teams(do, monkeypatch, 10)
    config = load_config(write_registry(tmp_path, entries, 4))
    data = tmp_path / "data"
    do.latency = 0.05
    outcomes = refresh_accounts(data, list(config.accounts), CLOSED, pull_billing, lambda: datetime.now(timezone.utc), [],
                                concurrency=config.concurrency_for(_source()))
    assert do.max_in_flight == 4  # overlapping requests at the stand-in, and never more than the limit
    assert [o.account.key for o in outcomes] == [e["key"] for e in entries]  # results in the registry's order
    assert all(o.ok for o in outcomes)
    for outcome in outcomes:
        assert outcome.source_totals == {"USD": expected[outcome.account.key]}
        path = PartitionKey("digitalocean", "billing", outcome.account.key, CLOSED).path(data)
        assert read_partition_totals(path) == {"USD": expected[outcome.account.key]}


def _source():
    from finops_pipeline.sources import get_source

    return get_source("digitalocean", "billing")


def test_a_failing_account_among_concurrent_ones_is_isolated_and_metadata_matches_a_sequential_run(
    do: DigitalOceanSandbox, monkeypatch, tmp_path: Path,
) -> None:
    entries, expected = teams(do, monkeypatch, 6)
    do.revoke("dop_v1_team_03_5e3c1a9b7d")  # team-03's token no longer works
    do.latency = 0.05

    def run(concurrency: int, where: Path):
        do.max_in_flight = 0
        result = run_refresh(write_registry(where, entries, concurrency), where / "data", CLOSED)
        [pulls] = [r for r in result.runs if r.job_def.name == "refresh_digitalocean_billing"]
        metadata = {}
        for event in pulls.get_asset_materialization_events():
            values = {k: v.value for k, v in event.materialization.metadata.items()}
            values["source_details"] = {k: v for k, v in values["source_details"].items() if k != "ratelimit_remaining"}
            metadata[event.asset_key.path[-1]] = values
        return result, pulls, metadata, do.max_in_flight

    (tmp_path / "one").mkdir()
    (tmp_path / "three").mkdir()
    sequential, _, sequential_metadata, sequential_peak = run(1, tmp_path / "one")
    concurrent, pulls, concurrent_metadata, concurrent_peak = run(3, tmp_path / "three")

    assert sequential_peak == 1 and concurrent_peak == 3
    assert not pulls.success  # the run is red ...
    failure = pulls.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "team-03" in failure.description and "1 of 6 account(s) failed" in failure.description
    results = by_account(concurrent)
    assert not results["team-03"].ok and results["team-03"].code == by_account(sequential)["team-03"].code
    assert {k for k, r in results.items() if r.ok} == set(expected) - {"team-03"}  # ... and the others are written
    assert set(concurrent_metadata) == set(expected) - {"team-03"}
    assert concurrent_metadata == sequential_metadata  # the same facts per account, however they were pulled


def test_a_retry_after_holds_back_every_pull_of_the_same_token(do: DigitalOceanSandbox, monkeypatch, tmp_path: Path) -> None:
    token = "dop_v1_shared_0f1e2d3c4b5a"
    team = do.add_team("Shared")
    do.add_token(token, team)
    seed_team(team, team_charges("shared", TODAY.replace(day=1) - timedelta(days=35), TODAY - timedelta(days=1)), TODAY)
    monkeypatch.setenv("DO_A", token)
    monkeypatch.setenv("DO_B", token)  # two registry entries, two variables, one token: one quota
    entries = [do_entry(do, "shared-a", "DO_A", LONG_AGO), do_entry(do, "shared-b", "DO_B", LONG_AGO)]
    config = load_config(write_registry(tmp_path, entries, 2))
    do.throttle(times=1, retry_after=2)
    do.latency = 0.2  # unthrottled, the other pull's requests would fill the 2 seconds
    outcomes = refresh_accounts(tmp_path / "data", list(config.accounts), CLOSED, pull_billing, lambda: datetime.now(timezone.utc), [],
                                concurrency=2)
    assert all(o.ok for o in outcomes)
    first = min(do.arrivals)
    # The first request got the 429 (answered 0.2 s later); from then on, neither pull sent anything for the 2 seconds.
    assert not [t for t in do.arrivals if first + 0.45 < t < first + 2.0]
    assert sum(o.metadata["throttled_responses"] for o in outcomes) == 1
