"""WorkSession: one downloading pull's private directory and DuckDB connection, released on every path."""

from __future__ import annotations

import gc
from pathlib import Path

import duckdb
import pytest

from finops_pipeline.workdir import WorkSession


class BadFile(Exception):
    pass


def _closed(connection: duckdb.DuckDBPyConnection) -> bool:
    try:
        connection.execute("SELECT 1")
    except duckdb.ConnectionException:
        return True
    return False


def test_a_failure_closes_the_connection_and_removes_the_directory(tmp_path: Path) -> None:
    work = WorkSession(tmp_path, "azexp")
    assert work.dir.parent == tmp_path / "tmp" and work.dir.name.startswith("azexp-")
    with pytest.raises(OSError, match="disk full"), work.releasing_on_failure():
        (work.dir / "part-0.csv").write_text("BilledCost\n1\n")
        connection = work.connect("64MB")
        assert connection.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(work.dir / "spill")
        raise OSError("disk full")
    assert _closed(connection) and not work.dir.exists()


def test_a_bad_file_is_raised_as_the_sources_error_after_the_release(tmp_path: Path) -> None:
    work = WorkSession(tmp_path)
    with pytest.raises(ValueError, match="the source's diagnosis of part-0") as raised, work.releasing_on_failure(
            BadFile, lambda exc: ValueError(f"the source's diagnosis of {exc}")):
        work.connect("64MB")
        raise BadFile("part-0")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert work.connection is None and not work.dir.exists()


def test_success_keeps_both_until_produce_closes_them_once(tmp_path: Path) -> None:
    work = WorkSession(tmp_path)
    with work.releasing_on_failure(BadFile, lambda exc: ValueError(str(exc))):
        connection = work.connect("64MB")
    assert work.dir.is_dir() and connection.execute("SELECT 42").fetchone() == (42,)
    work.close()
    work.close()  # the produce's finally after an earlier release: nothing left to do
    assert _closed(connection) and not work.dir.exists()


def test_a_session_dropped_without_producing_removes_its_directory(tmp_path: Path) -> None:
    work = WorkSession(tmp_path)
    directory = work.dir
    (directory / "part-0.parquet").write_bytes(b"PAR1")
    del work
    gc.collect()
    assert not directory.exists()
