"""Azure cost exports in Dagster: one asset per configured export account, its checks, job and schedule."""

import dagster as dg

from finops_pipeline.dagster_sources import SourceDagsterSpec, source_definitions
from finops_pipeline.defs.azure.exports.sensor import exports_run_sensor
from finops_pipeline.defs.azure.exports.source import SOURCE


def _pull(data_dir, now):
    from functools import partial

    from finops_pipeline.defs.azure.exports.pull import pull_exports

    return partial(pull_exports, data_dir=data_dir)  # downloads go to <data_dir>/tmp, swept of dead processes' leftovers


SPEC = SourceDagsterSpec(
    source=SOURCE,
    make_pull=_pull,
    kinds=frozenset({"azure", "duckdb", "parquet"}),
    description=(
        "daily Azure cost from Cost Management exports in Blob Storage: the FocusCost dataset (FOCUS 1.0, 1.0r2, 1.2-preview), "
        "or ActualCost + AmortizedCost cost details (BilledCost from actual, EffectiveCost from amortized). Each refresh reads "
        "exactly the blobs of the month's newest run (its manifest.json) and replaces the month whole, so a re-run never counts "
        "twice; the shared FOCUS reader rolls rows up to days with DuckDB. No Query API quota is spent."
    ),
    notes="Per subscription, service, region, resource and tags; see docs/azure_exports.md.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return source_definitions(SPEC, sensors=lambda job: [exports_run_sensor(job)])
