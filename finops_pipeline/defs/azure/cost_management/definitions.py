"""Azure Cost Management in Dagster: one asset per subscription, its checks, job and schedule."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.azure.cost_management.source import SOURCE


def _pull(data_dir, now):
    from finops_pipeline.defs.azure.cost_management.pull import pull_cost_management

    return pull_cost_management


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"azure", "parquet"}),
    description=(
        "daily Azure cost per subscription, service and charge type from the Cost Management Query API "
        "(subscription scope, Daily; ActualCost -> BilledCost, AmortizedCost -> EffectiveCost; grouped by ServiceName "
        "and ChargeType, the API allows two dimensions). One partition per billing period; each refresh replaces that "
        "month with two queries (about 2 QPU of the tenant's 12 per 10 s / 600 per hour). "
        "429s are retried after the wait Cost Management asks for."
    ),
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC)
