"""The real `dagster dev` (webserver, daemon, code server) on 127.0.0.1 over the demo's stand-ins.

One instance serves the whole package: starting it costs ~20 s. The stand-ins run inside the test
process (finops_sandbox.demo.running_sandbox); `dagster dev` gets a temporary DAGSTER_HOME with the
repo's dagster.yaml, and FINOPS_CONFIG / FINOPS_DATA_DIR pointing at the sandbox registry. The
48-hour check schedule gets an every-minute cron (FINOPS_CHECKS_CRON) so the daemon ticks it within
a minute; everything else is the real definitions. The whole process group is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.config import FinopsConfig
from finops_sandbox.demo import running_sandbox

REPO = Path(__file__).resolve().parents[2]
LOCATION = "finops_pipeline"
REPOSITORY = "__repository__"
STARTUP_TIMEOUT = 150
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DagsterDev:
    url: str
    data_dir: Path
    home: Path
    config: FinopsConfig
    now: datetime
    log: Path
    process: subprocess.Popen
    started_at: float = field(default_factory=time.time)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            document = json.loads(response.read())
        assert not document.get("errors"), document["errors"]
        return document["data"]

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"dagster dev exited ({self.process.returncode}) while waiting for {what}:\n{self.log_tail()}")
            value = probe()
            if value:
                return value
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    # --- what a user does in the UI, through its GraphQL API -------------------------------------

    def launch(self, job: str, partition: str | None = None, in_process: bool = True, assets: list[list[str]] | None = None) -> str:
        """Launch from the webserver, as the Launchpad does (with `assets`, as "Materialize selected"
        does). Choosing in-process execution for a job on the default executor (one process per run
        instead of one per step, a Launchpad choice) keeps the test affordable on a small shared
        machine; the CUR sensor's runs use the default."""
        tags = [{"key": "dagster/partition", "value": partition}] if partition else []
        selector: dict[str, Any] = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job}
        if assets:
            selector["assetSelection"] = [{"path": path} for path in assets]
        data = self.graphql(
            """mutation Launch($params: ExecutionParams!) {
                 launchRun(executionParams: $params) {
                   __typename
                   ... on LaunchRunSuccess { run { runId } }
                   ... on PythonError { message }
                   ... on RunConfigValidationInvalid { errors { message } }
                 } }""",
            {"params": {"selector": selector,
                        "runConfigData": {"execution": {"config": {"in_process": {}}}} if in_process else {}, "executionMetadata": {"tags": tags}}},
        )["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return data["run"]["runId"]

    def run_status(self, run_id: str) -> str:
        return self.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})["runOrError"]["status"]

    def wait_for_run(self, run_id: str, timeout: float = 120, expect: str = "SUCCESS") -> str:
        status = self.wait_for(f"run {run_id}", lambda: (s := self.run_status(run_id)) in TERMINAL and s, timeout)
        if status != expect:
            logs = self.graphql(
                """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
                     __typename ... on MessageEvent { message } } } } }""",
                {"id": run_id},
            )
            messages = [e.get("message") for e in logs["logsForRun"]["events"] if e.get("message")]
            pytest.fail(f"run {run_id} ended {status}, expected {expect}:\n" + "\n".join(messages[-15:]))
        return status

    def selector(self, kind: str, name: str) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, f"{kind}Name": name}


@pytest.fixture(scope="package")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("dagster_dev")
    data_dir, home, log = root / "data", root / "dagster_home", root / "dagster-dev.log"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "finops_pipeline" / "instance" / "dagster.yaml").read_text())
    now = datetime.now(timezone.utc)
    _reset_moto()
    with running_sandbox(data_dir, now, base_port=0) as config:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "AZURE_", "DIGITALOCEAN_", "FINOPS_"))}
        env.update({name: os.environ[name] for account in config.accounts for name in account.env_names()})
        env.update(
            FINOPS_CONFIG=str(config.path), FINOPS_DATA_DIR=str(data_dir), DAGSTER_HOME=str(home),
            FINOPS_CHECKS_CRON="* * * * *", AWS_EC2_METADATA_DISABLED="true",
            PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        port = free_port()
        dagster = Path(sys.executable).parent / "dagster"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "finops_pipeline" / "instance" / "workspace.yaml")],
                cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )
        server = DagsterDev(f"http://127.0.0.1:{port}", data_dir, home, config, now, log, process)
        try:
            server.wait_for("the webserver and the code location", lambda: _location_loaded(server), STARTUP_TIMEOUT)
            yield server
        finally:
            _stop(process)


def _reset_moto() -> None:
    """moto's backends are global to the process: the stand-ins started here share them with the
    session's moto server, so queued Cost Explorer answers left by earlier tests must go first."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _location_loaded(server: DagsterDev) -> bool:
    try:
        data = server.graphql(
            """{ workspaceOrError { ... on Workspace { locationEntries {
                   name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }""",
            timeout=5,
        )
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    entries = data["workspaceOrError"]["locationEntries"]
    for entry in entries:
        if entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]["__typename"] == "PythonError":
            pytest.fail(f"the code location failed to load: {entry['locationOrLoadError']['message']}")
    return any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole group (dagster dev, webserver, daemon, code server, run workers), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(1)
        try:
            os.killpg(process.pid, 0)  # children still alive in the group?
        except ProcessLookupError:
            return


@pytest.fixture(scope="package")
def instigators_on(dagster_dev: DagsterDev) -> Iterator[dict[str, Any]]:
    """Turn on the check schedule and the CUR sensor (if the definitions have one), as a user does in
    Automation, before the runs below so the daemon's ticks overlap them.

    The sensor's first tick asks for one `refresh_cur` run per account and month; it goes off again at
    once, the first of its runs is kept and the rest are cancelled (they repeat the same job for other
    accounts and months, and together would take minutes on a small machine)."""
    started: dict[str, Any] = {"schedule": "check_billing_connections_schedule"}
    data = dagster_dev.graphql(
        """query($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
             ... on Repository { sensors { name } } } }""",
        {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}},
    )["repositoryOrError"]
    result = dagster_dev.graphql(
        """mutation($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
             __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }""",
        {"selector": dagster_dev.selector("schedule", started["schedule"])},
    )["startSchedule"]
    assert result["__typename"] == "ScheduleStateResult" and result["scheduleState"]["status"] == "RUNNING", result
    sensors = [s["name"] for s in data["sensors"] if "cur" in s["name"]]
    if sensors:
        name = started["sensor"] = sensors[0]
        selector = dagster_dev.selector("sensor", name)
        result = dagster_dev.graphql(
            """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
                 __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }""",
            {"selector": selector},
        )["startSensor"]
        assert result["__typename"] == "Sensor" and result["sensorState"]["status"] == "RUNNING", result
        runs = dagster_dev.wait_for(f"a tick of {name} with runs", lambda: _ticks(dagster_dev, "sensor", name), timeout=90, interval=1)
        dagster_dev.graphql("mutation($s: SensorSelector!) { resetSensor(sensorSelector: $s) { __typename } }", {"s": selector})
        if runs[1:]:
            dagster_dev.graphql("mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }", {"ids": runs[1:]})
        started["sensor_runs"] = runs
    yield started
    # Off again, then let in-flight runs finish so nothing is killed mid-write.
    dagster_dev.graphql(
        """mutation($selector: ScheduleSelector!) { resetSchedule(scheduleSelector: $selector) { __typename } }""",
        {"selector": dagster_dev.selector("schedule", started["schedule"])},
    )
    dagster_dev.wait_for("in-flight runs to finish", lambda: not _active_runs(dagster_dev), timeout=120, interval=2)


def _active_runs(dev: DagsterDev) -> list[str]:
    data = dev.graphql(
        """{ runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
             ... on Runs { results { runId } } } }"""
    )
    return [r["runId"] for r in data["runsOrError"]["results"]]


@pytest.fixture(scope="package")
def materialized(dagster_dev: DagsterDev, instigators_on: dict[str, Any]) -> dict[tuple[str, str], str]:
    """Each source's refresh job for the billing periods the last 30 days touch, its accounts selected,
    launched from the webserver; then the tables once. A run is red exactly when one of its accounts'
    pulls failed (the demo has accounts set up to fail): that is checked here, run by run."""
    from datetime import timedelta

    from finops_pipeline import pulls
    from finops_pipeline.status import not_there_yet

    periods = sorted({(dagster_dev.now - timedelta(days=n)).strftime("%Y-%m") for n in range(0, 31)})
    by_source: dict[str, list[Any]] = {}
    for account in dagster_dev.config.accounts:
        by_source.setdefault(f"{account.provider}_{account.source}", []).append(account)
    runs = {
        (source_id, period): dagster_dev.launch(f"refresh_{source_id}", period, assets=[[source_id, a.key] for a in accounts])
        for source_id, accounts in by_source.items() for period in periods
    }
    for (source_id, period), run_id in runs.items():
        status = dagster_dev.wait_for(f"run {run_id}", lambda run_id=run_id: (s := dagster_dev.run_status(run_id)) in TERMINAL and s, 180)
        records = [(a, pulls.read_record(dagster_dev.data_dir, a.key, period) or {}) for a in by_source[source_id]]
        assert all(r.get("run_id") == run_id for _, r in records), (source_id, period, records)
        # Red for a failed pull; a "not there yet" answer inside 48 hours of connection is expected, not a failure.
        failed = [r for a, r in records if r.get("last_outcome") == "failure"
                  and not not_there_yet(a, (r.get("last_error") or {}).get("status", ""), datetime.now(timezone.utc))]
        assert status == ("FAILURE" if failed else "SUCCESS"), (source_id, period, status, failed)
    dagster_dev.wait_for_run(dagster_dev.launch("build_cost_tables"), timeout=180)
    return runs


@pytest.fixture(scope="package")
def checked(dagster_dev: DagsterDev, materialized: dict[str, str]) -> str:
    """The 48-hour and reconciliation checks (and the dashboard page after them), launched from the webserver."""
    run_id = dagster_dev.launch("check_billing_connections", in_process=False)  # in one process by definition
    dagster_dev.wait_for_run(run_id)
    return run_id


def _ticks(dev: DagsterDev, kind: str, name: str) -> list[str]:
    """Run ids launched by the instigator's successful ticks; a failed tick fails the test."""
    root, state = ("scheduleOrError", "scheduleState") if kind == "schedule" else ("sensorOrError", "sensorState")
    selector_type = "ScheduleSelector" if kind == "schedule" else "SensorSelector"
    data = dev.graphql(
        f"""query($selector: {selector_type}!) {{ {root}({kind}Selector: $selector) {{ ... on {kind.title()} {{
              {state} {{ status ticks(limit: 10) {{ status runIds error {{ message }} }} }} }} }} }}""",
        {"selector": dev.selector(kind, name)},
    )
    ticks = data[root][state]["ticks"]
    failed = [t for t in ticks if t["status"] == "FAILURE"]
    assert not failed, failed
    return [run for t in ticks if t["status"] == "SUCCESS" for run in t["runIds"]]


@pytest.fixture(scope="package")
def check_schedule_ticked(dagster_dev: DagsterDev, instigators_on: dict[str, Any]) -> list[str]:
    """The runs of the check schedule's first daemon tick; then the schedule goes off again (a run a
    minute would only load the machine and change what the other tests look at)."""
    name = instigators_on["schedule"]
    runs = dagster_dev.wait_for("a tick of the check schedule", lambda: _ticks(dagster_dev, "schedule", name), timeout=100, interval=3)
    dagster_dev.graphql("mutation($s: ScheduleSelector!) { resetSchedule(scheduleSelector: $s) { __typename } }",
                        {"s": dagster_dev.selector("schedule", name)})
    return runs


@pytest.fixture(scope="package")
def sensor_ticked(dagster_dev: DagsterDev, instigators_on: dict[str, Any]) -> dict[str, Any] | None:
    """The CUR sensor's tick: its runs, how the first one ended, their jobs and tags. None without a CUR sensor."""
    runs = instigators_on.get("sensor_runs")
    if not runs:
        return None
    first = dagster_dev.wait_for_run(runs[0], timeout=180)
    details = dagster_dev.graphql(
        """query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { ... on Runs { results { runId jobName tags { key value } } } } }""",
        {"ids": runs},
    )["runsOrError"]["results"]
    return {"runs": runs, "first_status": first, "details": details}


@pytest.fixture(scope="package")
def settled(dagster_dev: DagsterDev, checked: str, check_schedule_ticked: list[str], sensor_ticked: dict[str, Any] | None) -> None:
    """Everything launched so far has finished: what the browser sees no longer changes under it."""
    dagster_dev.wait_for("in-flight runs to finish", lambda: not _active_runs(dagster_dev), timeout=180, interval=2)
