"""The code location: every definition under finops_pipeline/defs/, collected, plus the one resource.

`dagster dev -m finops_pipeline.definitions` / `dagster asset materialize -m finops_pipeline.definitions`.
Each source folder's `definitions.py` builds one asset per account of the registry (FINOPS_CONFIG),
so after editing finops.yaml, reload the code location.
"""

from pathlib import Path

import dagster as dg

from finops_pipeline.resources import FinopsResource


def load_definitions(finops: FinopsResource | None = None) -> dg.Definitions:
    """Everything in the defs folder, for the registry FINOPS_CONFIG names now.

    `finops` replaces the default resource (paths from the environment, the real clock): the CLI and
    the tests pass their own.
    """
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources={"finops": finops or FinopsResource()}),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
