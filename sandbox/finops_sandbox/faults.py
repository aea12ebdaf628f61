"""A pass-through HTTP proxy on 127.0.0.1 that can answer some requests with a scripted error.

Moto cannot be told to throttle or deny Cost Explorer, so tests put this proxy between the client and
moto: everything is forwarded unchanged, except requests whose operation matches a scripted fault.
Those get the error the real service sends, in the request's protocol: a JSON body for JSON-protocol
services (X-Amz-Target, e.g. Cost Explorer), an ErrorResponse XML for query-protocol ones (Action=,
e.g. STS), an S3 <Error> XML for everything else (S3's REST protocol, matched on "METHOD /path").

Beyond errors, a fault can answer 200 with any body (an empty one, `{}`, an HTML page), or hang: send
nothing, or forward the real answer's headers and its first bytes and then stall. A socket that
accepts connections and never answers at all is `server.SilentEndpoint`.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from finops_sandbox.server import LoopbackServer

# Not forwarded (RFC 9110 7.6.1), Content-Length recomputed. This HTTP/1.0 server closes every connection after its
# answer: an upstream's Keep-Alive header passed on would make the client reuse a closed connection (a reset, and
# a retry the proxy never sees).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}


@dataclass
class Fault:
    target: str  # the operation: part of X-Amz-Target ("GetCostAndUsage") or the query Action ("AssumeRole")
    error_type: str  # e.g. "LimitExceededException"
    message: str
    status: int = 400
    times: int | None = None  # None: every matching request
    body: bytes | None = None  # answer `status` with exactly this body instead of an error document
    content_type: str = "application/x-amz-json-1.1"
    hang: bool = False  # answer nothing until the proxy stops
    stall_after: int | None = None  # forward the real answer's headers and this many body bytes, then hang


class FaultProxy(LoopbackServer):
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = []
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0] if not target else ""
                fault = proxy._take_fault(target or action or f"{self.command} {self.path}")
                if fault is not None and fault.hang:
                    proxy._stopping.wait(600)
                    return
                if fault is not None and fault.stall_after is None:
                    if fault.body is not None:
                        payload, content_type = fault.body, fault.content_type
                    elif target:
                        payload = json.dumps({"__type": fault.error_type, "message": fault.message}).encode()
                        content_type = "application/x-amz-json-1.1"
                    elif action:
                        payload = (
                            "<ErrorResponse><Error><Type>Sender</Type>"
                            f"<Code>{escape(fault.error_type)}</Code><Message>{escape(fault.message)}</Message>"
                            "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
                        ).encode()
                        content_type = "text/xml"
                    else:
                        payload = (
                            f"<Error><Code>{escape(fault.error_type)}</Code><Message>{escape(fault.message)}</Message>"
                            "<RequestId>fault-proxy</RequestId></Error>"
                        ).encode()
                        content_type = "application/xml"
                    self.send_response(fault.status)
                    self.send_header("Content-Type", content_type)
                    if fault.body is None:
                        self.send_header("x-amzn-ErrorType", fault.error_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if fault is not None and fault.stall_after is not None:
                        self.wfile.write(data[: fault.stall_after])
                        self.wfile.flush()
                        proxy._stopping.wait(600)
                        return
                    self.wfile.write(data)
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "aws-fault-proxy")

    def _take_fault(self, target: str) -> Fault | None:
        with self._lock:
            operation = target if " " in target else target.rsplit(".", 1)[-1]
            if operation:
                self.requests[operation] = self.requests.get(operation, 0) + 1
            for fault in self.faults:
                if fault.target and fault.target in target:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def fail(self, target: str, error_type: str, message: str, status: int = 400, times: int | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(target, error_type, message, status, times))

    def answer(self, target: str, body: bytes, status: int = 200, content_type: str = "application/x-amz-json-1.1",
               times: int | None = None) -> None:
        """Answer matching requests with exactly `body` (e.g. b"", b"{}", an HTML page)."""
        with self._lock:
            self.faults.append(Fault(target, "", "", status, times, body=body, content_type=content_type))

    def hang(self, target: str, stall_after: int | None = None, times: int | None = None) -> None:
        """Never answer matching requests; with `stall_after`, send the real headers and that many body bytes first."""
        with self._lock:
            self.faults.append(Fault(target, "", "", 200, times, hang=stall_after is None, stall_after=stall_after))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def stop(self) -> None:
        self._stopping.set()  # release the hanging handlers
        super().stop()
