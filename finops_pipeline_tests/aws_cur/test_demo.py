"""The demo's CUR payers: what finops_sandbox.demo drives, end to end without Dagster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from finops_pipeline.config import parse_config
from finops_pipeline.defs.aws.cur.pull import pull_cur
from finops_sandbox.cur import AwsCurDemo


def test_demo_payers_deliver_60_days_ending_yesterday(monkeypatch, tmp_path):
    demo = AwsCurDemo()
    demo.start(0)
    try:
        now = datetime.now(timezone.utc)
        config = parse_config({"accounts": demo.accounts(now)}, Path("finops.yaml"))
        for name, value in demo.environment().items():
            monkeypatch.setenv(name, value)
        assert all(now - a.connected_at > timedelta(hours=48) for a in config.accounts)
        today = now.date()
        periods = sorted({(today - timedelta(days=d)).strftime("%Y-%m") for d in range(0, 76)})
        demo.seed(config, periods, today)

        for account in config.accounts:
            days = set()
            for period in periods:
                pull = pull_cur(account, period)
                target = tmp_path / f"{account.key}-{period}.parquet"
                pull.produce(target)
                import pyarrow.parquet as pq

                table = pq.read_table(target)
                days |= {d.date() for d in table.column("ChargePeriodStart").to_pylist()}
            in_history = {d for d in days if d >= today - timedelta(days=75)}
            assert max(in_history) == today - timedelta(days=1)
            assert len(in_history) >= 60
    finally:
        demo.stop()
