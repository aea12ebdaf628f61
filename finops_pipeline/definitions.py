"""The code location: every definition under finops_pipeline/defs/, collected, plus the one resource.

`dagster dev -m finops_pipeline.definitions` / `dagster asset materialize -m finops_pipeline.definitions`.
Each source folder's `definitions.py` builds one asset per account of the registry (FINOPS_CONFIG),
so after editing finops.yaml, reload the code location.
"""

from pathlib import Path

import dagster as dg

from finops_pipeline.resources import FinopsResource


def load_definitions() -> dg.Definitions:
    """Everything in the defs folder, for the registry FINOPS_CONFIG names now."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources={"finops": FinopsResource()}),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
