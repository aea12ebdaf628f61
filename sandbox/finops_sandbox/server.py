"""The lifecycle every stand-in shares: an HTTP(S) server on 127.0.0.1, served from a daemon thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import TypeVar

Self = TypeVar("Self", bound="LoopbackServer")


class LoopbackServer:
    scheme = "http"
    _server: ThreadingHTTPServer
    _thread: threading.Thread

    def _serve(self, server: ThreadingHTTPServer, name: str) -> None:
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)

    def start(self: Self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._release()

    def _release(self) -> None:
        """Free what the stand-in holds besides its socket (a database, a certificate authority)."""

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"


class SilentEndpoint:
    """A TCP socket on 127.0.0.1 that accepts connections and never answers: a provider that hangs.

    `url` is what an endpoint override points at; every request sent there waits until the client's
    own timeout gives up. `stop()` closes the held connections.
    """

    def __init__(self, scheme: str = "http") -> None:
        import socket

        self.scheme = scheme  # "https" for clients that refuse plain http (azure-identity, pydo): they hang all the same
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._socket.settimeout(0.05)  # so the accept loop sees stop()
        self._held: list = []  # accepted connections, kept open and never read or written
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-endpoint", daemon=True)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)

    def start(self) -> SilentEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._socket.close()
        for connection in self._held:
            connection.close()

    @property
    def accepted(self) -> int:
        return len(self._held)

    def __enter__(self) -> SilentEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{self.scheme}://{host}:{port}"
