"""AWS CUR in Dagster: one asset per configured report, its checks, job, schedule and manifest sensor."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.aws.cur.source import SOURCE
from finops_pipeline.defs.aws.manifest_sensor import cur_manifest_sensor


def _pull(data_dir, now):
    from functools import partial

    from finops_pipeline.defs.aws.cur.pull import pull_cur

    return partial(pull_cur, data_dir=data_dir)  # downloads go to <data_dir>/tmp, swept of dead processes' leftovers


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"aws", "s3", "duckdb", "parquet"}),
    description=(
        "daily AWS cost from Cost and Usage Reports on S3 (legacy CUR or CUR 2.0 Data Exports), per payer and usage "
        "account, service, region, resource, line item type and tags. Each refresh reads exactly the files the month's "
        "latest manifest lists and replaces that month whole, so a redelivery never counts twice. Hourly line items are "
        "rolled up to days by DuckDB over the files, streaming, with bounded memory. No API charges (S3 GETs only)."
    ),
    notes="FOCUS rules: BilledCost = net unblended if present, else unblended; EffectiveCost amortizes Savings Plans "
    "and Reserved Instances; see docs/aws_cur.md.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC, sensors=lambda job: [cur_manifest_sensor(job)])
