from __future__ import annotations

from collections.abc import Iterator

import pytest

from finops_pipeline_tests.gcp.scenario import Scenario, seed
from finops_sandbox.gcp import BigQuerySandbox


@pytest.fixture
def bigquery() -> Iterator[BigQuerySandbox]:
    server = BigQuerySandbox().start()
    yield server
    server.stop()


@pytest.fixture
def scenario(bigquery: BigQuerySandbox) -> Scenario:
    return seed(bigquery)
