"""The demo's Azure export accounts: what finops_sandbox.demo drives, end to end without Dagster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq

from finops_pipeline.config import parse_config
from finops_pipeline.defs.azure.exports.pull import pull_exports
from finops_pipeline.schema import totals_by_currency
from finops_sandbox import azure_exports as ax


def test_demo_exports_serve_60_days_ending_yesterday_and_a_redelivered_month_once(azurite, monkeypatch, tmp_path):
    demo = ax.AzureExportsDemo()
    demo.start(0)
    try:
        now = datetime.now(timezone.utc)
        config = parse_config({"accounts": demo.accounts(now)}, Path("finops.yaml"))
        assert not config.problems and len(config.accounts) == 2
        for name, value in demo.environment().items():
            monkeypatch.setenv(name, value)
        today = now.date()
        periods = sorted({(today - timedelta(days=d)).strftime("%Y-%m") for d in range(0, 76)})
        demo.seed(config, periods, today)
        for account in config.accounts:
            days = set()
            for period in periods:
                pull = pull_exports(account, period, data_dir=tmp_path)
                target = tmp_path / f"{account.key}-{period}.parquet"
                pull.produce(target)
                table = pq.read_table(target)
                days |= {d.date() for d in table.column("ChargePeriodStart").to_pylist()}
                assert totals_by_currency(table) == pull.source_totals
                if account.settings["dataset"] == "focus" and period == periods[-2]:
                    until = min(today, (datetime.strptime(period, "%Y-%m").date() + timedelta(days=32)).replace(day=1))
                    assert pull.source_totals == ax.expected_totals(ax.focus_rows(period, until=until))  # the newer run only
            assert max(days) == today - timedelta(days=1) and len({d for d in days if d >= today - timedelta(days=75)}) >= 60
    finally:
        demo.stop()
