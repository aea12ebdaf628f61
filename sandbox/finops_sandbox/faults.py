"""A pass-through HTTP proxy on 127.0.0.1 that can answer some requests with a scripted error.

Moto cannot be told to throttle or deny Cost Explorer, so tests put this proxy between the client and
moto: everything is forwarded unchanged, except requests whose operation matches a scripted fault.
Those get the error the real service sends, in the request's protocol: a JSON body for JSON-protocol
services (X-Amz-Target, e.g. Cost Explorer), an ErrorResponse XML for query-protocol ones (Action=,
e.g. STS).
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


@dataclass
class Fault:
    target: str  # the operation: part of X-Amz-Target ("GetCostAndUsage") or the query Action ("AssumeRole")
    error_type: str  # e.g. "LimitExceededException"
    message: str
    status: int = 400
    times: int | None = None  # None: every matching request


class FaultProxy(LoopbackServer):
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = []
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0] if not target else ""
                fault = proxy._take_fault(target or action)
                if fault is not None:
                    if target:
                        payload = json.dumps({"__type": fault.error_type, "message": fault.message}).encode()
                        content_type = "application/x-amz-json-1.1"
                    else:
                        payload = (
                            "<ErrorResponse><Error><Type>Sender</Type>"
                            f"<Code>{escape(fault.error_type)}</Code><Message>{escape(fault.message)}</Message>"
                            "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
                        ).encode()
                        content_type = "text/xml"
                    self.send_response(fault.status)
                    self.send_header("Content-Type", content_type)
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
                        if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "aws-fault-proxy")

    def _take_fault(self, target: str) -> Fault | None:
        with self._lock:
            operation = target.rsplit(".", 1)[-1]
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

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()


