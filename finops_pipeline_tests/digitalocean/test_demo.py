"""The demo's DigitalOcean teams: what finops_sandbox.demo drives, end to end without Dagster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.digitalocean.billing.pull import pull_billing
from finops_pipeline.diagnosis import diagnose
from finops_sandbox.digitalocean import DigitalOceanDemo


def test_demo_teams_have_data_pending_and_a_diagnosable_token(monkeypatch):
    demo = DigitalOceanDemo()
    demo.start(0)
    try:
        now = datetime.now(timezone.utc)
        entries = demo.accounts(now)
        config = parse_config({"accounts": entries}, Path("finops.yaml"))
        for name, value in demo.environment().items():
            monkeypatch.setenv(name, value)
        assert set(demo.environment()) == {a.settings["token_env"] for a in config.accounts}
        today = now.date()
        periods = [(today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"), today.strftime("%Y-%m")]
        demo.seed(config, periods, today)

        production = config.account("do-production")
        assert now - production.connected_at > timedelta(hours=48)
        closed = pull_billing(production, periods[0])
        assert closed.batches.num_rows > 0 and closed.source_totals["USD"] > 0
        assert closed.metadata["invoice"]["matches_to_the_cent"] is False  # the demo shows an invoice difference
        days = {d.date() for d in closed.batches.column("ChargePeriodStart").to_pylist()}
        assert min(days) == datetime.strptime(periods[0], "%Y-%m").date()

        assert pull_billing(config.account("do-data-science"), periods[0]).batches.num_rows == 0
        with pytest.raises(Exception) as caught:
            pull_billing(config.account("do-readonly-token"), periods[0])
        assert diagnose("digitalocean", "billing", caught.value).code == "digitalocean.missing_billing_scope"
    finally:
        demo.stop()
