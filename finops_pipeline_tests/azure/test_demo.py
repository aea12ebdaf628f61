"""The demo's Azure side follows the protocol finops_sandbox.demo drives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from finops_pipeline.config import parse_config
from finops_pipeline.defs.azure.cost_management.pull import pull_cost_management
from finops_pipeline.diagnosis import diagnose
from finops_sandbox.azure import AzureDemo


def test_azure_demo_serves_60_days_to_the_real_client(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    demo = AzureDemo()
    demo.start(0)
    try:
        config = parse_config({"accounts": demo.accounts(now)}, Path("finops.yaml"))
        for name, value in demo.environment().items():
            monkeypatch.setenv(name, value)
        demo.seed(config, ["2026-09", "2026-10", "2026-11"], now.date())
        prod, analytics = config.for_source("azure", "cost_management")
        assert now - prod.connected_at > timedelta(hours=48)

        days = set()
        for period in ("2026-09", "2026-10", "2026-11"):
            table = pull_cost_management(prod, period).batches
            days |= {d.date() for d in table.column("ChargePeriodStart").to_pylist()}
        assert len(days) >= 60 and max(days) == now.date() - timedelta(days=1)

        with pytest.raises(Exception) as raised:
            pull_cost_management(analytics, "2026-11")
        assert diagnose("azure", "cost_management", raised.value).code == "azure.rbac_access_denied"
    finally:
        demo.stop()
