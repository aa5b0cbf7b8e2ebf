"""The console on the node's own HTTP listener (``console = true`` in ``node.toml``).

The node's HTTP listener (``http_listen``, :mod:`federation.http_tiles`) is an
aiohttp application; the console is a Starlette (ASGI) application. With
``console = true`` every path the listener does not serve itself (``/checkpoint``,
``/tile/…``, ``/add-checkpoint``, the DID document, ``/healthz``, ``/readyz``)
goes to the console, whose pages all live at the root (``/``, ``/ledger``, …).

Authentication is the console's own (:func:`federation.console.auth.principal_for`):

* ``http_listen`` on a loopback address: plain HTTP, loopback peers only, the
  ``read`` role (``write`` with ``console_write = true``).
* ``http_listen`` off loopback: the listener serves **TLS** (the node's
  ``tls/node.pem``; TLS 1.2 at least) and asks for a client certificate chained
  to the node's CA. The public endpoints stay readable without one (monitors,
  witnesses); the console answers ``401 TLS_REQUIRED`` to a request without an
  operator certificate and ``403 NOT_OPERATOR`` to a certificate of this CA that
  names no console role, as ``accord console --host`` does.

The bridge runs one ASGI request to completion and answers it as one aiohttp
response (console pages are bounded and never streamed). It passes the client
certificate as the ASGI TLS extension, which the console's authentication reads;
``aiohttp-asgi`` (0.7) sets no TLS extension and returns the response before its
body is written, hence this small adapter.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

__all__ = ["add_console", "bridge", "listener_ssl_context", "MAX_RESPONSE_BYTES", "MAX_INFLIGHT"]

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest console response relayed, bytes (a page, a proof, a static file; 500 beyond)."""
MAX_INFLIGHT = 32
"""Most console requests handled at once on the node's listener; more are answered ``503`` at once
(the stand-alone ``accord console`` bounds its uvicorn server likewise)."""
_HOP = {b"content-length", b"transfer-encoding", b"connection"}


def listener_ssl_context(tls_dir: Path) -> ssl.SSLContext:
    """TLS for an off-loopback HTTP listener serving the console.

    The node's server certificate; a client certificate is asked for and, when
    sent, must chain to the node's CA (``tls/ca.pem``) or the handshake fails;
    without one the handshake succeeds (public endpoints) and the console refuses.

    Raises:
        OSError, ssl.SSLError: the node's TLS files are missing or unreadable.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls_dir / "node.pem"), str(tls_dir / "node.key"))
    ctx.load_verify_locations(cafile=str(tls_dir / "ca.pem"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _scope(request: web.Request) -> dict[str, Any]:
    """The ASGI HTTP scope of an aiohttp request (connection facts from the transport, never headers)."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    sock = transport.get_extra_info("sockname") if transport is not None else None
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": "https" if sslobj is not None else "http",
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("utf-8", "surrogateescape"),
        "query_string": request.rel_url.raw_query_string.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": (str(peer[0]), int(peer[1])) if peer else None,
        "server": (str(sock[0]), int(sock[1])) if sock else None,
    }
    if sslobj is not None:
        der = sslobj.getpeercert(binary_form=True)
        scope["extensions"] = {"tls": {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else []}}
    return scope


def bridge(asgi_app: Any, *, max_inflight: int = MAX_INFLIGHT):
    """An aiohttp handler running ``asgi_app`` (HTTP only) for one request, buffered.

    At most ``max_inflight`` requests run at once; beyond that the answer is ``503``
    with ``Retry-After: 1`` before the request body is read.
    """
    slots = asyncio.Semaphore(max_inflight)

    async def handle(request: web.Request) -> web.StreamResponse:
        if slots.locked():
            return web.Response(status=503, text="too many console requests\n", headers={"Retry-After": "1"})
        async with slots:
            return await _run(request)

    async def _run(request: web.Request) -> web.StreamResponse:
        body = await request.read()  # bounded by the application's client_max_size
        done = asyncio.Event()
        delivered = False
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        size = 0

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunk = bytes(message.get("body", b""))
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise web.HTTPInternalServerError(text="console response too large\n")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    done.set()

        try:
            await asgi_app(_scope(request), receive, send)
        finally:
            done.set()
        if not start:
            return web.Response(status=500, text="the console sent no response\n")
        headers: CIMultiDict[str] = CIMultiDict()
        for k, v in start.get("headers", []):
            if k.lower() not in _HOP:
                headers.add(k.decode("latin-1"), v.decode("latin-1"))
        return web.Response(status=int(start["status"]), body=b"".join(chunks), headers=headers)

    return handle


def add_console(app: web.Application, node: Any) -> None:
    """Serve the console on ``app`` (the node's HTTP listener) for every path it does not route itself.

    Must be called after the listener's own routes are added (the console's route
    matches any path). The console reads the node directory through its own
    database connections (:class:`federation.console.views.ConsoleData`), closed
    with the application.

    Args:
        app: the listener's aiohttp application (:func:`federation.http_tiles.make_app`).
        node: the running :class:`federation.node.Node`.
    """
    from federation.console.app import make_app
    from federation.console.views import ConsoleData

    data = ConsoleData(node.identity)
    role = "write" if node.config.console_write else "read"
    console = make_app(data, loopback_role=role)
    app.router.add_route("*", "/{tail:.*}", bridge(console))

    async def close(_app: web.Application) -> None:
        data.close()

    app.on_cleanup.append(close)
