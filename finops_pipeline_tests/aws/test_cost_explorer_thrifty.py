"""Thrifty Cost Explorer: a refresh asks only for the days that can still change and merges them.

Moto answers each distinct GetCostAndUsage body with the result queued for it (seeded through its
moto-api endpoint); the fault proxy in front counts every request that reaches Cost Explorer, so
the pages paid for are counted where they are spent, not where the pipeline says they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.config import load_config
from finops_pipeline.dagster_sources import reconcile_partitions
from finops_pipeline.defs.aws.cost_explorer.definitions import SPEC
from finops_pipeline.lake import PartitionKey, read_partition, read_partition_totals
from finops_pipeline.refresh import full_refresh, refresh_accounts
from finops_pipeline_tests.aws.test_cost_explorer import LINKED, SERVICES, account_entry
from finops_pipeline_tests.conftest import write_config
from finops_sandbox.aws import MotoSandbox, cost_explorer_pages, pages_from
from finops_sandbox.faults import FaultProxy
from finops_sandbox.synthetic import daily_charges, totals

PERIOD = "2026-11"


@pytest.fixture(autouse=True)
def external_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", "ext-id-4f1c9b")


def restated(charges, first: date):
    """The same charges, those from `first` on costing a little more (Cost Explorer revised its estimate)."""
    return [replace(c, amount=c.amount + Decimal("0.37")) if c.day >= first else c for c in charges]


def refresh(data_dir: Path, account, now: str, proxy: FaultProxy):
    proxy.clear()
    moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
    [outcome] = refresh_accounts(data_dir, [account], PERIOD, SPEC.make_pull(data_dir, lambda: moment), lambda: moment, [])
    assert outcome.ok, outcome.diagnosis
    return outcome, proxy.requests.get("GetCostAndUsage", 0)


def lake(data_dir: Path) -> tuple[Decimal, Counter]:
    """The partition's billed total, and its rows per (day, linked account, service): each must be 1."""
    table = read_partition(data_dir, PartitionKey("aws", "cost_explorer", "aws-main", PERIOD))
    keys = Counter(zip(table["ChargePeriodStart"].to_pylist(), table["SubAccountId"].to_pylist(), table["ChargeDescription"].to_pylist()))
    return sum(table["BilledCost"].to_pylist(), Decimal(0)), keys


def test_refreshes_pull_only_the_days_that_can_change_and_merge_them_exactly(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path) -> None:
    account = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)])).account("aws-main")
    data = tmp_path / "data"
    first = daily_charges("thrifty", date(2026, 11, 1), 19, LINKED, SERVICES)  # up to yesterday, Nov 19
    full_pages = cost_explorer_pages(first, PERIOD, estimated_from=date(2026, 11, 18), days_per_page=5)
    assert len(full_pages) == 4
    moto.seed_cost_explorer(account, {PERIOD: full_pages})

    # First pull: the whole month, every page paid for.
    outcome, calls = refresh(data, account, "2026-11-20T06:00:00Z", proxy)
    assert calls == outcome.api_calls == 4
    assert outcome.metadata["pulled"] == "whole month" and outcome.metadata["cost_usd_for_api_calls"] == "0.04"
    assert outcome.metadata["estimated_days"] == ["2026-11-18", "2026-11-19"]
    total, keys = lake(data)
    assert total == totals(first)["USD"] and set(keys.values()) == {1} and len(keys) == len(first)

    # Same day, later: from the earliest of the previous pull's day (20th), the Estimated days (18th) and
    # the last 3 days (17th). Cost Explorer now has the 20th too, and revised the 17th on.
    second = restated(daily_charges("thrifty", date(2026, 11, 1), 20, LINKED, SERVICES), date(2026, 11, 17))
    moto.seed_cost_explorer(account, {PERIOD: cost_explorer_pages(second, PERIOD, estimated_from=date(2026, 11, 19), days_per_page=31)},
                            first_day=date(2026, 11, 17))
    outcome, calls = refresh(data, account, "2026-11-20T18:00:00Z", proxy)
    assert calls == outcome.api_calls == 1
    assert outcome.metadata["pulled"] == "2026-11-17..2026-11-30" and outcome.metadata["days_kept"] == 16
    assert outcome.metadata["estimated_days"] == ["2026-11-19", "2026-11-20"]
    total, keys = lake(data)
    assert total == totals(second)["USD"] == outcome.source_totals["USD"]  # kept days + new days, nothing twice
    assert set(keys.values()) == {1} and len(keys) == len(second)  # no day lost, none counted twice
    path = PartitionKey("aws", "cost_explorer", "aws-main", PERIOD).path(data)
    assert read_partition_totals(path) == totals(second)
    assert reconcile_partitions(data, "aws", "cost_explorer") == ({}, 1)


def test_a_closed_month_is_pulled_whole_once_then_only_its_estimated_days_then_never(
    moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path,
) -> None:
    account = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)])).account("aws-main")
    data = tmp_path / "data"
    charges = daily_charges("closing", date(2026, 11, 1), 30, LINKED, SERVICES)
    moto.seed_cost_explorer(account, {PERIOD: cost_explorer_pages(charges, PERIOD, estimated_from=date(2026, 11, 29), days_per_page=10)})
    outcome, calls = refresh(data, account, "2026-11-30T12:00:00Z", proxy)  # open month, first pull
    assert calls == 3

    # The first refresh after the month ends pulls it whole (moto answers that query as before).
    outcome, calls = refresh(data, account, "2026-12-01T00:10:00Z", proxy)
    assert calls == 3 and outcome.metadata["why"] == "the month has closed: its final figures"
    assert outcome.metadata["estimated_days"] == ["2026-11-29", "2026-11-30"]

    # Then only the days still marked Estimated; Cost Explorer has finalized them, with a correction.
    final = restated(charges, date(2026, 11, 29))
    moto.seed_cost_explorer(account, {PERIOD: cost_explorer_pages(final, PERIOD, days_per_page=31)}, first_day=date(2026, 11, 29))
    outcome, calls = refresh(data, account, "2026-12-01T06:10:00Z", proxy)
    assert calls == 1 and outcome.metadata["pulled"] == "2026-11-29..2026-11-30" and outcome.metadata["estimated_days"] == []
    assert lake(data)[0] == totals(final)["USD"] and set(lake(data)[1].values()) == {1}

    # Nothing can change any more: no call, the month stays as it is.
    outcome, calls = refresh(data, account, "2026-12-01T12:10:00Z", proxy)
    assert calls == outcome.api_calls == 0 and outcome.metadata["pulled"] == "nothing"
    assert outcome.source_totals == totals(final) and lake(data)[0] == totals(final)["USD"]
    assert reconcile_partitions(data, "aws", "cost_explorer") == ({}, 1)

    # On request (the run tag finops/full_refresh=true sets this), the whole month again.
    with full_refresh():
        outcome, calls = refresh(data, account, "2026-12-01T18:10:00Z", proxy)
    assert calls == 3 and outcome.metadata["pulled"] == "whole month"
    assert lake(data)[0] == totals(charges)["USD"]  # what Cost Explorer answers for the whole month, replaced whole


def test_the_full_refresh_setting_pulls_every_month_whole(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path) -> None:
    entry = {**account_entry("aws-main", "111111111111", proxy.url), "full_refresh": True}
    account = load_config(write_config(tmp_path, [entry])).account("aws-main")
    data = tmp_path / "data"
    charges = daily_charges("always", date(2026, 11, 1), 19, LINKED, SERVICES)
    moto.seed_cost_explorer(account, {PERIOD: cost_explorer_pages(charges, PERIOD, estimated_from=date(2026, 11, 18), days_per_page=10)})
    for now in ("2026-11-20T06:00:00Z", "2026-11-20T12:00:00Z"):
        outcome, calls = refresh(data, account, now, proxy)
        assert calls == 2 and outcome.metadata["pulled"] == "whole month"
    assert lake(data)[0] == totals(charges)["USD"]


def test_a_partition_whose_rows_do_not_add_up_is_pulled_whole(moto: MotoSandbox, proxy: FaultProxy, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    account = load_config(write_config(tmp_path, [account_entry("aws-main", "111111111111", proxy.url)])).account("aws-main")
    data = tmp_path / "data"
    charges = daily_charges("tampered", date(2026, 11, 1), 19, LINKED, SERVICES)
    moto.seed_cost_explorer(account, {PERIOD: cost_explorer_pages(charges, PERIOD, days_per_page=10)})
    refresh(data, account, "2026-11-20T06:00:00Z", proxy)
    path = PartitionKey("aws", "cost_explorer", "aws-main", PERIOD).path(data)
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)  # a row lost behind the pipeline's back (metadata kept)
    moto.seed_cost_explorer(account, {PERIOD: pages_from(cost_explorer_pages(charges, PERIOD, days_per_page=31), date(2026, 11, 17))},
                            first_day=date(2026, 11, 17))
    outcome, calls = refresh(data, account, "2026-11-20T12:00:00Z", proxy)
    assert outcome.metadata["why"] == "the stored month did not add up: pulled whole" and calls == 2
    assert lake(data)[0] == totals(charges)["USD"] and len(lake(data)[1]) == len(charges)
    assert datetime(2026, 11, 1, tzinfo=timezone.utc) in {k[0] for k in lake(data)[1]}
