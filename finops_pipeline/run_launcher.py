"""Dagster's default run launcher, plus the health check run monitoring needs to find dead runs.

Dagster's `DefaultRunLauncher` cannot tell whether a run's process is alive, so with it run
monitoring never fails a run whose process was killed (kill -9, the OOM killer, a closed laptop
lid): the run stays STARTED for ever, and the `duckdb_catalog` pool slot its step claimed (or the
slot handed to its queued step) is never given back, so every later cost_daily, mart and dashboard
step waits "blocked by limit for pool duckdb_catalog". The same happens to a `finops-pipeline
refresh` killed mid-run: it executes its runs in its own process.

`ProcessCheckingRunLauncher` launches exactly as the default one does, and answers the monitoring
daemon's health check from the process that started the run: the pid on the run's RUN_START event
(the run worker, or the CLI process for in-process runs). When that process is gone (or its pid now
belongs to a process started after the run), the worker is FAILED: the daemon marks the run
FAILURE (`max_resume_run_attempts: 0`), and `free_slots_after_run_end_seconds` then frees its pool
slots and pending steps. The check only means something where the runs execute on this machine,
which is what a local (SQLite) instance is; on any other storage it answers RUNNING unless
`check_pids_on_any_storage: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from dagster import DefaultRunLauncher
from dagster._core.events import DagsterEventType
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClassData

from finops_pipeline.lake import _process_start_time, pid_alive


class ProcessCheckingRunLauncher(DefaultRunLauncher):
    def __init__(self, inst_data: ConfigurableClassData | None = None, check_pids_on_any_storage: bool = False):
        self._check_pids_on_any_storage = check_pids_on_any_storage
        super().__init__(inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        from dagster import Field

        return {"check_pids_on_any_storage": Field(bool, is_required=False, default_value=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data, check_pids_on_any_storage=config_value.get("check_pids_on_any_storage", False))

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _local(self) -> bool:
        if self._check_pids_on_any_storage:
            return True
        from dagster._core.storage.runs.sqlite import SqliteRunStorage

        storage = self._instance.run_storage
        inner = getattr(storage, "_storage", None)  # LegacyRunStorage wraps the real one
        return isinstance(storage, SqliteRunStorage) or isinstance(getattr(inner, "run_storage", None), SqliteRunStorage)

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if not self._local():
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not a local instance: no process check")
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
        if not records:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run has not started yet")
        event = records[0].event_log_entry
        pid = event.dagster_event.pid if event.dagster_event else None
        if not pid:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no pid on RUN_START")
        if not pid_alive(pid):
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the process that ran it (pid {pid}) is gone", run_worker_id=str(pid))
        started = _process_start_time(pid)
        if started is not None and started > event.timestamp + 2:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the process that ran it (pid {pid}) is gone; the pid was reused",
                                        run_worker_id=str(pid))
        return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
