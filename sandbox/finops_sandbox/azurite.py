"""Azurite, Microsoft's Azure Storage emulator, on 127.0.0.1: started, waited for, stopped and cleaned up.

The demo and the tests talk to it with the real azure-storage-blob client over the real wire protocol.
It is the npm package `azurite`, pinned in sandbox/azurite/package.json and installed by `make setup`
(`npm ci --prefix sandbox/azurite`); FINOPS_AZURITE names another `azurite-blob` executable, and one on
PATH is used last. Only the blob service runs. Its data lives in memory (or in `location`, or with
`in_memory=False` in a private temporary directory removed on stop).

    with running_azurite() as azurite:
        BlobServiceClient.from_connection_string(azurite.connection_string)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Azurite's well-known development account (documented by Microsoft; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "azurite"
START_TIMEOUT_SECONDS = 30.0


class AzuriteMissing(RuntimeError):
    """No azurite-blob executable: `make setup` (which runs npm ci) installs it."""


def executable() -> str:
    """The azurite-blob to run: FINOPS_AZURITE, the project-local install, or one on PATH."""
    named = os.environ.get("FINOPS_AZURITE")
    if named:
        return named
    local = PACKAGE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    raise AzuriteMissing(f"Azurite is not installed: run `make setup` (it runs `npm ci --prefix {PACKAGE_DIR}`; needs Node.js and npm), "
                         "or set FINOPS_AZURITE to an azurite-blob executable.")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Azurite:
    """One Azurite blob service on 127.0.0.1 (port 0: a free one)."""

    def __init__(self, port: int = 0, location: Path | None = None, in_memory: bool = True):
        self.port = port
        self._location = location
        self._owned_location: Path | None = None
        self.in_memory = in_memory and location is None
        self._process: subprocess.Popen | None = None

    @property
    def account_name(self) -> str:
        return ACCOUNT_NAME

    @property
    def account_key(self) -> str:
        return ACCOUNT_KEY

    @property
    def account_url(self) -> str:
        """The blob endpoint, path-style as Azurite serves it: http://127.0.0.1:<port>/devstoreaccount1."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.account_url};")

    def start(self) -> Azurite:
        command = executable()
        if self._location is None and not self.in_memory:
            self._owned_location = Path(tempfile.mkdtemp(prefix="finops-azurite-"))
        location = self._location or self._owned_location
        last_error = ""
        for _ in range(3):  # a free port can be taken between the probe and Azurite's bind: try another
            port = self.port or _free_port()
            args = [command, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--silent", "--skipApiVersionCheck", "--loose",
                    "--disableTelemetry"]
            # In memory (the default: nothing to clean up), or in `location` / a private temporary directory.
            args += ["--location", str(location)] if location is not None else ["--inMemoryPersistence"]
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            if self._wait_ready(process, port):
                self._process, self.port = process, port
                return self
            last_error = self._end(process)
            if self.port:
                break
        self._cleanup()
        raise RuntimeError(f"Azurite did not start on 127.0.0.1: {last_error or 'no answer within the start timeout'}")

    @staticmethod
    def _wait_ready(process: subprocess.Popen, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        url = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}?comp=list"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return True
            except urllib.error.HTTPError:  # 403 without credentials: it is up and answering
                return True
            except OSError:
                time.sleep(0.1)
        return False

    @staticmethod
    def _end(process: subprocess.Popen) -> str:
        """Stop the process group we started (by its id), and return what it said on stderr."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        return error.strip()[-500:]

    def _cleanup(self) -> None:
        if self._owned_location is not None:
            shutil.rmtree(self._owned_location, ignore_errors=True)
            self._owned_location = None

    def stop(self) -> None:
        if self._process is not None:
            self._end(self._process)
            self._process = None
        self._cleanup()

    def __enter__(self) -> Azurite:
        return self.start() if self._process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def running_azurite(port: int = 0, location: Path | None = None, in_memory: bool = True) -> Iterator[Azurite]:
    """An Azurite blob service for the duration of the block (its endpoint, connection string, account and key)."""
    azurite = Azurite(port, location, in_memory).start()
    try:
        yield azurite
    finally:
        azurite.stop()
