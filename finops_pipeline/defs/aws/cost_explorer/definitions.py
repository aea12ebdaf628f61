"""AWS Cost Explorer in Dagster: one asset per configured account, its checks, job and schedule."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.aws.cost_explorer.source import SOURCE


def _pull(data_dir, now):
    import functools

    from finops_pipeline.defs.aws.cost_explorer.pull import pull_cost_explorer

    return functools.partial(pull_cost_explorer, data_dir=data_dir, now=now)


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"aws", "parquet"}),
    description=(
        "daily AWS cost per linked account and service from Cost Explorer (GetCostAndUsage, DAILY, grouped by "
        "LINKED_ACCOUNT and SERVICE - Cost Explorer allows two GroupBy dimensions). One partition per billing "
        "period; a refresh pulls only the days that can still change (Estimated, recent) and merges them into the month. "
        "Each API page costs USD 0.01."
    ),
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC)
