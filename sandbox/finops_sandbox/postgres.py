"""A throwaway PostgreSQL server on 127.0.0.1 for the Dagster-instance tests: Debian's own binaries
(initdb, postgres), a cluster in a temporary directory, password authentication, stopped and removed
by `stop()`.

PostgreSQL refuses to run as root, so when we are root the cluster directory is given to the
unprivileged `nobody` user and initdb and the server run as that user (subprocess's `user=`).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "`make postgres` installs Debian's postgresql (as root with apt-get; `make test` runs it)"


def postgres_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL server's bin directory, else the one holding `initdb` on PATH, else None."""
    candidates = [Path(d) for d in glob.glob(POSTGRES_BIN_GLOB) if (Path(d) / "initdb").exists() and (Path(d) / "postgres").exists()]
    if candidates:
        return max(candidates, key=lambda d: _version(d.parent.name))
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).parent / "postgres").exists():
        return Path(initdb).parent
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """`start()` a private cluster; `create_database(name)`; `stop()` ends the server and removes its files."""

    def __init__(self, username: str = "finops", bin_dir: Path | None = None, start_timeout: float = 60.0):
        self.bin_dir = bin_dir or postgres_bin_dir()
        if self.bin_dir is None:
            raise FileNotFoundError(f"no PostgreSQL server binaries (initdb, postgres) under {POSTGRES_BIN_GLOB} or on PATH: {INSTALL_HINT}")
        self.username = username
        self.password = secrets.token_urlsafe(16)
        self.host = "127.0.0.1"
        self.port = 0
        self.start_timeout = start_timeout
        self._root: Path | None = None
        self._process: subprocess.Popen | None = None

    def _as_owner(self) -> dict:
        """Run as `nobody` when root (PostgreSQL will not run as root), else as ourselves."""
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam("nobody")
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def start(self) -> PostgresServer:
        # Not under pytest's tmp_path: its parents are root-only (0700), and `nobody` must reach the cluster.
        self._root = Path(tempfile.mkdtemp(prefix="finops-postgres-"))
        owner = self._as_owner()
        if owner:
            os.chown(self._root, owner["user"], owner["group"])
        data = self._root / "data"
        password_file = self._root / "password"
        password_file.write_text(self.password)
        if owner:
            os.chown(password_file, owner["user"], owner["group"])
        subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(data), "-U", self.username, f"--pwfile={password_file}", "--auth=scram-sha-256",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, timeout=120, cwd=self._root, **owner,
        )
        password_file.unlink()
        log = self._root / "server.log"
        for _ in range(5):  # the port is free when picked; another process may take it before the server binds it
            self.port = _free_port()
            with log.open("ab") as output:  # a file, not a pipe nobody reads: a full pipe would stall the server
                self._process = subprocess.Popen(
                    [str(self.bin_dir / "postgres"), "-D", str(data), "-h", self.host, "-p", str(self.port), "-k", str(self._root),
                     # A test cluster: durability is not needed, speed is.
                     "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=100"],
                    stdout=output, stderr=subprocess.STDOUT, cwd=self._root, **owner,
                )
            if self._wait_ready():
                return self
        error = log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start on {self.host}: {error}")

    def _wait_ready(self) -> bool:
        import psycopg2

        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False  # exited (port taken): try another port
            try:
                psycopg2.connect(**self.connection_parameters("postgres"), connect_timeout=2).close()
                return True
            except psycopg2.OperationalError:
                time.sleep(0.1)
        return False

    def connection_parameters(self, database: str) -> dict:
        return {"host": self.host, "port": self.port, "user": self.username, "password": self.password, "dbname": database}

    def connect(self, database: str):
        import psycopg2

        return psycopg2.connect(**self.connection_parameters(database), connect_timeout=10)

    def create_database(self, name: str) -> str:
        connection = self.connect("postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name

    def environment(self, database: str, prefix: str = "DAGSTER_PG_") -> dict[str, str]:
        """The variables the example dagster.postgres.yaml reads its connection from."""
        return {f"{prefix}USERNAME": self.username, f"{prefix}PASSWORD": self.password, f"{prefix}HOST": self.host,
                f"{prefix}PORT": str(self.port), f"{prefix}DB": database}

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown: ends sessions, then exits
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
