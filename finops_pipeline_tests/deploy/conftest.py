"""A real PostgreSQL server for the deploy tests (Debian's binaries, a throwaway cluster on 127.0.0.1),
a fresh database and Dagster home per test, and a Cost Explorer registry on moto to refresh."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from finops_pipeline.cli import INSTANCE_TEMPLATES
from finops_pipeline.config import load_config
from finops_pipeline_tests.aws.test_cost_explorer import LINKED, SERVICES, account_entry
from finops_pipeline_tests.conftest import write_config
from finops_sandbox.aws import MotoSandbox, cost_explorer_pages
from finops_sandbox.postgres import INSTALL_HINT, PostgresServer, postgres_bin_dir
from finops_sandbox.synthetic import Charge, daily_charges

POSTGRES_YAML = INSTANCE_TEMPLATES / "dagster.postgres.yaml"
TODAY = datetime.now(timezone.utc).date()
CLOSED = (TODAY.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")  # last month: inside every source's partitions


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if postgres_bin_dir() is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, postgres) are not installed: {INSTALL_HINT}")
    server = PostgresServer().start()
    yield server
    server.stop()


@dataclass
class DagsterHome:
    path: Path
    database: str


@pytest.fixture
def postgres_home(postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterHome:
    """DAGSTER_HOME holding the example dagster.postgres.yaml as is; its connection variables point at a new database."""
    database = postgres_server.create_database(f"dagster_{uuid.uuid4().hex[:12]}")
    for name, value in postgres_server.environment(database).items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(POSTGRES_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterHome(home, database)


@dataclass
class Registry:
    path: Path
    data_dir: Path
    period: str
    charges: dict[str, list[Charge]]


@pytest.fixture
def cost_explorer_registry(moto: MotoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Two Cost Explorer accounts on moto with last month's costs."""
    monkeypatch.setenv("FINOPS_TEST_EXTERNAL_ID", "ext-id-deploy")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    path = write_config(tmp_path, [account_entry("aws-main", "111111111111", moto.url), account_entry("aws-second", "444444444444", moto.url)])
    config = load_config(path)
    start = date.fromisoformat(f"{CLOSED}-01")
    days = (TODAY.replace(day=1) - start).days
    charges = {
        "aws-main": daily_charges("main", start, days, LINKED, SERVICES),
        "aws-second": daily_charges("second", start, days, [("444444444444", "data")], SERVICES),
    }
    for key, items in charges.items():
        moto.seed_cost_explorer(config.account(key), {CLOSED: cost_explorer_pages(items, CLOSED, days_per_page=12)})
    return Registry(path, tmp_path / "data", CLOSED, charges)
