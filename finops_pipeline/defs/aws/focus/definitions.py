"""AWS FOCUS exports in Dagster: one asset per configured export, its checks, job, schedule and manifest sensor."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.aws.focus.source import SOURCE
from finops_pipeline.defs.aws.manifest_sensor import focus_manifest_sensor


def _pull(data_dir, now):
    from functools import partial

    from finops_pipeline.defs.aws.focus.pull import pull_focus

    return partial(pull_focus, data_dir=data_dir)


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"aws", "s3", "duckdb", "parquet"}),
    description=(
        "daily AWS cost from a Data Export of the FOCUS table ('FOCUS 1.0/1.2 with AWS columns') on S3. Each refresh reads "
        "exactly the files the month's latest manifest lists and replaces the month whole; the shared FOCUS reader "
        "(finops_pipeline.focus) rolls hourly or daily rows up to days with DuckDB. No API charges (S3 GETs only)."
    ),
    notes="FOCUS columns are taken by name; see docs/aws_focus.md.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC, sensors=lambda job: [focus_manifest_sensor(job)])
