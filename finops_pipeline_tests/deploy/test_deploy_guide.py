"""docs/deploy.md cannot drift from what runs: every file it shows is a real file in the repository
(shown as it is), the Docker instance settings load as Dagster loads them and run a partition on a
real PostgreSQL server, and the Helm values pass Dagster's own config schemas (minus Kubernetes)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._config import validate_config
from dagster._core.run_coordinator import QueuedRunCoordinator

from finops_pipeline.cli import INSTANCE_TEMPLATES
from finops_pipeline.config import config_path, data_dir, load_config
from finops_pipeline.dagster_sources import CATALOG_POOL, SOURCE_TAG
from finops_pipeline.jobs import refresh
from finops_pipeline.lake import PartitionKey, read_partition_totals
from finops_pipeline_tests.conftest import finops_resource
from finops_pipeline_tests.deploy.conftest import POSTGRES_YAML, DagsterHome, Registry
from finops_sandbox.postgres import PostgresServer
from finops_sandbox.synthetic import totals

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deploy.md"
DOCKER_YAML = REPO / "deploy" / "docker" / "dagster.yaml"
COMPOSE = REPO / "deploy" / "docker" / "compose.yaml"
HELM_VALUES = REPO / "deploy" / "kubernetes" / "values.yaml"
SHARED_SECTIONS = ("storage", "run_coordinator", "concurrency")
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
HEADER = re.compile(r"^# (?P<path>[\w./-]+\.(?:yaml|yml|txt|toml)|[\w./-]*Dockerfile)(?P<excerpt> \(excerpt\))?$")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_file_the_guide_shows_is_in_the_repository_as_shown() -> None:
    shown = 0
    for block in FENCE.findall(GUIDE.read_text(encoding="utf-8")):
        first, _, body = block.partition("\n")
        header = HEADER.match(first)
        if not header:
            continue
        path = REPO / header["path"]
        assert path.is_file(), f"docs/deploy.md shows {header['path']}, which is not in the repository"
        text = path.read_text(encoding="utf-8")
        if header["excerpt"]:
            assert body in text, f"docs/deploy.md's excerpt of {header['path']} is not in the file any more"
        else:
            assert body == text, f"docs/deploy.md shows {header['path']} other than it is"
        shown += 1
    assert shown >= 4
    for mentioned in set(re.findall(r"`((?:deploy|finops_pipeline|docs)/[\w./-]+)`", GUIDE.read_text(encoding="utf-8"))):
        assert (REPO / mentioned).exists(), f"docs/deploy.md names {mentioned}, which does not exist"


def test_docker_settings_share_the_tested_storage_queue_and_pools() -> None:
    docker, postgres = load(DOCKER_YAML), load(POSTGRES_YAML)
    for section in SHARED_SECTIONS:
        assert docker[section] == postgres[section], section
    # Each source's refresh runs carry the tag the queue limits per source.
    assert postgres["concurrency"]["runs"]["tag_concurrency_limits"][0]["key"] == SOURCE_TAG

    # The compose file wires what dagster.yaml expects: the network, the volumes, the variables.
    compose = load(COMPOSE)
    launcher = docker["run_launcher"]["config"]
    assert compose["networks"]["finops"]["name"] == launcher["network"]
    for volume in launcher["container_kwargs"]["volumes"]:
        name = volume.split(":", 1)[0]
        assert compose["volumes"][name]["name"] == name
    instance_env = compose["x-instance-env"]
    storage_env = {field["env"] for field in postgres["storage"]["postgres"]["postgres_db"].values() if isinstance(field, dict)}
    assert storage_env <= set(instance_env) and storage_env <= set(launcher["env_vars"])
    code = compose["services"]["code"]
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"]
    workspace = load(REPO / "deploy" / "docker" / "workspace.yaml")["load_from"][0]["grpc_server"]
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert workspace["host"] in compose["services"] and f'"--port", "{workspace["port"]}"' in dockerfile
    assert f'"--location-name", "{workspace["location_name"]}"' in dockerfile


def test_a_partition_runs_on_the_docker_instance_settings(postgres_server: PostgresServer, postgres_home: DagsterHome,
                                                          cost_explorer_registry: Registry, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/docker/dagster.yaml as shipped (its DockerRunLauncher loaded, not used: runs execute here)."""
    shutil.copyfile(DOCKER_YAML, postgres_home.path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_DIR", str(tmp_path / "compute-logs"))
    registry = cost_explorer_registry
    with DagsterInstance.get() as instance:
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
        launcher = instance.run_launcher
        assert launcher.networks == ["finops"] and "DAGSTER_PG_PASSWORD" in launcher.env_vars
        assert "finops-data:/data" in launcher.container_kwargs["volumes"]
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 8
        assert [limit["key"] for limit in queue.tag_concurrency_limits] == [SOURCE_TAG, "dagster/backfill"]
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

        config = load_config(registry.path)
        refreshed = refresh(finops_resource(registry.path, registry.data_dir), config.accounts, [registry.period], instance=instance,
                            build_tables=False)  # the tables step is covered by test_postgres_instance
        assert refreshed.ok
        for key in ("aws-main", "aws-second"):
            path = PartitionKey("aws", "cost_explorer", key, registry.period).path(registry.data_dir)
            assert read_partition_totals(path) == totals(registry.charges[key])
        stored = {run.run_id: run.status for run in instance.get_runs()}
        assert stored == {run.run_id: DagsterRunStatus.SUCCESS for run in refreshed.runs}
        assert (tmp_path / "compute-logs").is_dir()  # the steps' logs went where DAGSTER_COMPUTE_LOG_DIR says


def test_the_pool_limit_command_of_the_kubernetes_step_works_on_postgresql(postgres_server: PostgresServer,
                                                                            postgres_home: DagsterHome) -> None:
    """The Helm chart writes no `concurrency: pools:`; the guide sets the catalog pool's limit with the dagster CLI."""
    command = re.search(r"^\s*(dagster instance concurrency set \S+ \d+)$", GUIDE.read_text(encoding="utf-8"), re.M)
    assert command, "docs/deploy.md no longer shows the `dagster instance concurrency set` command"
    assert command[1] == f"dagster instance concurrency set {CATALOG_POOL} 1"
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), *command[1].split()[1:]], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    with DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info(CATALOG_POOL).slot_count == 1


def test_helm_values_pass_dagsters_config_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    values = load(HELM_VALUES)
    postgres = load(POSTGRES_YAML)

    # The chart copies queuedRunCoordinator into the run coordinator's config, camelCase to snake_case.
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    snake = {re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value for key, value in queued.items()}
    checked = validate_config(QueuedRunCoordinator.config_type(), snake)
    assert checked.success, [str(e) for e in checked.errors]
    tested = postgres["concurrency"]["runs"]["tag_concurrency_limits"]
    assert snake["tag_concurrency_limits"][0] == tested[0]  # the same per-source limit as the tested instance
    assert snake["max_concurrent_runs"] >= postgres["concurrency"]["runs"]["max_concurrent_runs"]

    # The database settings: the driver the image installs, the password from the chart's secret.
    assert values["postgresql"]["postgresqlScheme"] == postgres["storage"]["postgres"]["postgres_db"]["scheme"]
    assert postgres["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # the chart's variable name
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False

    # The code location: the module the local workspace loads, with arguments `dagster api grpc` accepts.
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    from dagster._cli.api import api_cli

    grpc = api_cli.commands["grpc"].make_context("grpc", ["--port", str(deployment["port"]), *deployment["dagsterApiGrpcArgs"]])
    local = load(INSTANCE_TEMPLATES / "workspace.yaml")["load_from"][0]["python_module"]
    assert grpc.params["module_name"] == (local["module_name"],) or grpc.params["module_name"] == local["module_name"]
    assert grpc.params["location_name"] == local["location_name"]

    # The registry and data directory variables are the ones the pipeline reads.
    env = {item["name"]: item["value"] for item in deployment["env"]}
    monkeypatch.setenv("FINOPS_CONFIG", env["FINOPS_CONFIG"])
    monkeypatch.setenv("FINOPS_DATA_DIR", env["FINOPS_DATA_DIR"])
    assert config_path() == Path("/etc/finops/finops.yaml") and data_dir() == Path("/data")
    mounts = {m["mountPath"] for m in deployment["volumeMounts"]}
    assert {str(config_path().parent), str(data_dir())} <= mounts
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    secret = {s["name"] for s in deployment["envSecrets"]}
    assert secret == {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
