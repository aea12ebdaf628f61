"""A refresh killed (kill -9) while its catalog step waits for the `duckdb_catalog` pool must not
block the next one: the shipped instance settings fail the dead run and free its pool slot.

Real `dagster dev` (webserver, daemon, code server) on 127.0.0.1 with a temporary DAGSTER_HOME
holding the shipped dagster.yaml. The run's process is killed as soon as its catalog step has
claimed the pool's only slot (or waits for it).
Two kinds of death: the run worker `dagster dev` launched, and a process running the job in-process
(what `finops-pipeline refresh` does), which nothing but run monitoring can notice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finops_pipeline_tests.aws.test_cost_explorer import account_entry
from finops_pipeline_tests.conftest import write_config
from finops_pipeline_tests.ui.conftest import TERMINAL, DagsterDev, _location_loaded, _stop, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
POOL = "duckdb_catalog"
RECOVERY_SECONDS = 90


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("crash")
    data_dir, home, log = root / "data", root / "home", root / "dagster-dev.log"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "finops_pipeline" / "instance" / "dagster.yaml").read_text())
    config = write_config(root, [account_entry("aws-main", "111111111111", "http://127.0.0.1:9")])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "AZURE_", "DIGITALOCEAN_", "FINOPS_", "DAGSTER_"))}
    env.update(FINOPS_CONFIG=str(config), FINOPS_DATA_DIR=str(data_dir), DAGSTER_HOME=str(home), FINOPS_TEST_EXTERNAL_ID="x",
               AWS_EC2_METADATA_DISABLED="true",
               PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(REPO / "finops_pipeline" / "instance" / "workspace.yaml")],
            cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", data_dir, home, None, None, log, process)  # type: ignore[arg-type]
    server.env = env  # type: ignore[attr-defined]
    try:
        server.wait_for("the webserver and the code location", lambda: _location_loaded(server), 150)
        yield server
    finally:
        _stop(process)


@pytest.fixture
def instance(dev: DagsterDev):
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dev.home)) as opened:
        yield opened


def _in_pool(instance, run_id: str) -> bool:
    """The run's catalog step waits for the pool or holds its slot."""
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return any(p.run_id == run_id for p in info.pending_steps) or any(c.run_id == run_id for c in info.claimed_slots)


def _run_pid(instance, run_id: str) -> int | None:
    from dagster._core.events import DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    return records[0].event_log_entry.dagster_event.pid if records else None


def _kill_in_catalog_step(dev: DagsterDev, instance, run_id: str, pid_of) -> int:
    dev.wait_for(f"run {run_id} in the pool", lambda: _in_pool(instance, run_id), 90, 0.05)
    pid = pid_of()
    assert pid and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    return pid


def _recovers(dev: DagsterDev, instance, dead_run: str, killed_at: float) -> float:
    next_run = dev.launch("build_cost_tables")
    dev.wait_for_run(next_run, timeout=RECOVERY_SECONDS)
    recovered = time.time() - killed_at
    assert dev.run_status(dead_run) in {"FAILURE", "CANCELED"}
    info = dev.wait_for("the dead run's slot freed", lambda: (i := instance.event_log_storage.get_concurrency_info(POOL))
                        and not i.claimed_slots and not i.pending_steps and i, 30)
    assert info.slot_count == 1
    return recovered


def test_killed_run_worker_frees_the_pool(dev: DagsterDev, instance) -> None:
    run_id = dev.launch("build_cost_tables")
    dev.wait_for("the run worker", lambda: _run_pid(instance, run_id), 90, 0.05)
    _kill_in_catalog_step(dev, instance, run_id, lambda: _run_pid(instance, run_id))
    recovered = _recovers(dev, instance, run_id, time.time())
    print(f"killed run worker: the next refresh completed {recovered:.1f} s after the kill")


def test_killed_in_process_refresh_frees_the_pool(dev: DagsterDev, instance, tmp_path: Path) -> None:
    """`finops-pipeline refresh` runs jobs in its own process: killed, its run stays STARTED unless
    run monitoring finds the process gone."""
    script = ("import dagster as dg\nfrom finops_pipeline.definitions import load_definitions\n"
              "load_definitions().resolve_job_def('build_cost_tables').execute_in_process(instance=dg.DagsterInstance.get())\n")
    before = {r.run_id for r in instance.get_runs()}
    process = subprocess.Popen([sys.executable, "-c", script], env=dev.env, cwd=tmp_path,  # type: ignore[attr-defined]
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_id = dev.wait_for("the in-process run", lambda: next((r.run_id for r in instance.get_runs() if r.run_id not in before), None), 90, 0.05)
        _kill_in_catalog_step(dev, instance, run_id, lambda: process.pid)
        killed_at = time.time()
        process.wait(10)
        assert dev.run_status(run_id) not in TERMINAL  # nothing else would ever end it
        recovered = _recovers(dev, instance, run_id, killed_at)
        print(f"killed in-process refresh: the next refresh completed {recovered:.1f} s after the kill")
    finally:
        if process.poll() is None:
            process.kill()
