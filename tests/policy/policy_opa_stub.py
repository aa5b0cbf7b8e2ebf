"""A small OPA REST server for tests, evaluating with regopy.

OPA itself cannot be installed here, so this implements the routes of the
OPA REST API (https://www.openpolicyagent.org/docs/rest-api) that
``opa-python-client`` uses: ``PUT/DELETE /v1/policies/{id}``,
``PUT /v1/data/{path}``, ``POST /v1/data/{path}`` with ``{"input": ...}``
(answer ``{"result": ...}``, or ``{}`` when undefined), ``GET /health``.
Error bodies follow OPA's shape (``code``, ``message``, ``errors``).

``mode`` makes it misbehave for failure tests: ``"garbage"`` (non-JSON
body), ``"slow"`` (sleeps ``delay`` seconds), ``"500"``, ``"undefined"``,
``"wrong-shape"``, ``"allow-everything"`` (claims allow and releases an
unrequested field).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import regopy


class OpaStub:
    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.modules: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.mode = "ok"
        self.delay = 2.0
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._compiled: dict[str, tuple[regopy.Interpreter, regopy.Bundle]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                stub._conns.add(self.connection)
                # one segment per answer: no Nagle/delayed-ACK 40 ms stalls
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, obj: Any = None, raw: bytes | None = None) -> None:
                body = (
                    raw if raw is not None else (b"" if obj is None else json.dumps(obj).encode())
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                stub.requests.append(("GET", self.path))
                if self.path.startswith("/health"):
                    self._send(200, {})
                elif self.path.rstrip("/") == "/v1/policies":
                    self._send(
                        200, {"result": [{"id": k, "raw": v} for k, v in stub.modules.items()]}
                    )
                else:
                    self._send(404, {"code": "resource_not_found", "message": "not found"})

            def do_PUT(self) -> None:
                stub.requests.append(("PUT", self.path))
                body = self._body()
                if self.path.startswith("/v1/policies/"):
                    pid = self.path[len("/v1/policies/") :]
                    err = stub.put_policy(pid, body.decode())
                    if err:
                        self._send(
                            400,
                            {
                                "code": "invalid_parameter",
                                "message": "error(s) occurred while compiling module(s)",
                                "errors": [{"code": "rego_parse_error", "message": err}],
                            },
                        )
                    else:
                        self._send(200, {})
                elif self.path.startswith("/v1/data/"):
                    try:
                        value = json.loads(body)
                    except ValueError:
                        self._send(400, {"code": "invalid_parameter", "message": "bad json"})
                        return
                    stub.put_data(self.path[len("/v1/data/") :], value)
                    self._send(204)
                else:
                    self._send(404, {"code": "resource_not_found", "message": "not found"})

            def do_DELETE(self) -> None:
                stub.requests.append(("DELETE", self.path))
                pid = self.path[len("/v1/policies/") :]
                with stub._lock:
                    found = stub.modules.pop(pid, None) is not None
                    stub._compiled.clear()
                if found:
                    self._send(200, {})
                else:
                    self._send(
                        404,
                        {
                            "code": "resource_not_found",
                            "message": f"storage_not_found_error: policy id {pid!r}",
                        },
                    )

            def do_POST(self) -> None:
                stub.requests.append(("POST", self.path))
                body = self._body()
                mode = stub.mode
                if mode == "slow":
                    time.sleep(stub.delay)
                if mode == "garbage":
                    self._send(200, raw=b"<html>proxy error</html>")
                    return
                if mode == "500":
                    self._send(500, {"code": "internal_error", "message": "boom"})
                    return
                if mode == "undefined":
                    self._send(200, {})
                    return
                if mode == "wrong-shape":
                    self._send(200, {"result": {"allow": "yes"}})
                    return
                path = self.path[len("/v1/data/") :].split("?")[0]
                try:
                    inp = json.loads(body)["input"]
                except (ValueError, KeyError):
                    self._send(400, {"code": "invalid_parameter", "message": "bad input"})
                    return
                ok, value = stub.evaluate(path, inp)
                if not ok:
                    self._send(500, {"code": "internal_error", "message": value})
                    return
                if mode == "allow-everything" and isinstance(value, dict):
                    value = dict(value, allow=True, released_fields=["secret.ssn"], reasons=[])
                self._send(200, {} if value is _UNDEFINED else {"result": value})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def start(self) -> OpaStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a crashed OPA: stop accepting and cut open connections."""
        self._server.shutdown()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()

    def put_policy(self, pid: str, source: str) -> str | None:
        with self._lock:
            trial = dict(self.modules, **{pid: source})
            try:
                rego = regopy.Interpreter()
                for k, v in trial.items():
                    rego.add_module(k, v)
                rego.add_data(self.data)
                # compile everything (OPA compiles on upload)
                rego.build("x := 1")
            except regopy.RegoError as exc:
                return str(exc).splitlines()[0] if str(exc) else "compile error"
            self.modules = trial
            self._compiled.clear()
            return None

    def put_data(self, path: str, value: Any) -> None:
        with self._lock:
            keys = [k for k in path.strip("/").split("/") if k]
            if not keys:
                self.data = value
            else:
                node = self.data
                for k in keys[:-1]:
                    node = node.setdefault(k, {})
                node[keys[-1]] = value
            self._compiled.clear()

    def evaluate(self, path: str, inp: Any) -> tuple[bool, Any]:
        query = "data." + ".".join(k for k in path.strip("/").split("/") if k)
        with self._lock:
            try:
                compiled = self._compiled.get(query)
                if compiled is None:
                    rego = regopy.Interpreter()
                    for k, v in self.modules.items():
                        rego.add_module(k, v)
                    rego.add_data(self.data)
                    compiled = (rego, rego.build(query))
                    self._compiled[query] = compiled
                rego, bundle = compiled
                rego.set_input(regopy.Input(inp))
                out = rego.query_bundle(bundle)
            except regopy.RegoError as exc:
                return False, str(exc)[:200]
            if not out.ok():
                return False, str(out)[:200]
            if not out.results or not out.results[0].expressions:
                return True, _UNDEFINED
            return True, out.results[0].expressions[0]


_UNDEFINED = object()
