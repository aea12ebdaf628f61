"""Cheap start-up: loading the definitions imports no provider SDK.

load_from_defs_folder imports every module under finops_pipeline/defs/, and every code server, sensor
tick and run worker loads the definitions; the SDKs (seconds of imports together) are imported by the
functions that call the providers, when they run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SDK_MODULES = ("boto3", "botocore", "s3transfer", "google.cloud.bigquery", "google.auth", "google.api_core",
               "azure.core", "azure.mgmt", "azure.identity", "pydo")

PROBE = """
import json, sys
from finops_pipeline.definitions import load_definitions
defs = load_definitions()
keys = [k.to_user_string() for k in defs.resolve_all_asset_keys()]
print(json.dumps({"assets": keys, "modules": sorted(sys.modules)}))
"""


def test_loading_the_definitions_imports_no_provider_sdk(tmp_path: Path) -> None:
    # finops.example.yaml has one account of every source, so every source folder builds its assets.
    env = {**os.environ, "FINOPS_CONFIG": str(REPO / "finops.example.yaml"), "FINOPS_DATA_DIR": str(tmp_path / "data")}
    completed = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.splitlines()[-1])
    assert len(result["assets"]) > 5
    loaded = set(result["modules"])
    imported = [name for name in SDK_MODULES if name in loaded]
    # dagster-aws and dagster-gcp (no longer dependencies) register component entry points that
    # load_from_defs_folder imports, and they import boto3 and google.*: a venv made before they were
    # dropped still has them.
    stale = [name for name in ("dagster_aws", "dagster_gcp") if name in loaded]
    hint = f" by the installed {stale} (not dependencies any more: recreate the venv)" if stale else "; import them inside the functions that use them"
    assert imported == [], f"loading the definitions imported {imported}{hint}"


def test_azure_authority_hosts_spelled_out_are_the_sdks() -> None:
    """client.CLOUDS names the hosts as strings (no SDK import at load); they must stay azure.identity's."""
    from azure.identity import AzureAuthorityHosts

    from finops_pipeline.defs.azure.cost_management.client import CLOUDS

    assert {name: host for name, (_, host) in CLOUDS.items()} == {
        "public": AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        "china": AzureAuthorityHosts.AZURE_CHINA,
        "usgovernment": AzureAuthorityHosts.AZURE_GOVERNMENT,
    }
