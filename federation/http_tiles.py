"""The node's log over plain HTTP: only what is public, in the C2SP formats other tools speak.

* ``GET /checkpoint`` — the latest signed checkpoint (c2sp.org/tlog-checkpoint).
* ``GET /tile/<L>/<N>[.p/<W>]`` — c2sp.org/tlog-tiles hash tiles (immutable
  once full: ``Cache-Control: immutable``; partial tiles and the checkpoint:
  ``no-cache``).
* ``POST /add-checkpoint`` — c2sp.org/tlog-witness: the node's witness
  cosigns a peer's checkpoint (status codes as in the spec).
* ``GET /.well-known/did.json`` (``/<path>/did.json`` for a did:web with a
  path) — the organization's DID document for did:web resolution
  (:func:`federation.identity.did_document`; at most 16 KiB).
* ``GET /healthz``, ``GET /readyz`` — liveness and readiness
  (:mod:`federation.health`); ``/readyz`` answers only ``{"ready": bool}``
  here (the loopback metrics port adds each check's details).

Entry bundles (``GET /tile/entries/<N>[.p/<W>]``) are **not** served over
HTTP: they hold the entries' contents (counterparts, agents, purposes, field
names, denials), which only the parties of an entry may read. Those parties
get them, with inclusion proofs, from ``FederationService.QueryEntries`` over
mutual TLS. The HTTP answer is ``403`` naming that endpoint. Hashes and signed
checkpoints are public and self-authenticating, so serving them without TLS
leaks no contents: a monitor checks consistency and the signed root from them.

Served with aiohttp on the node's event loop when ``http_listen`` is set in
``node.toml`` (off by default; bind it to a loopback address unless the log is
meant to be public). With ``console = true`` the listener also serves the
operator console at every other path (:mod:`federation.console.embedded`;
off loopback the listener then speaks TLS). Reads run on their own small thread pool with their own
database connections, never on the ledger writer's thread, so a flood of reads
cannot delay a write; at most :data:`MAX_INFLIGHT` requests are handled at once
and the rest are answered ``503`` at once (nothing queues without bound).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
from typing import Any

from aiohttp import web

MAX_BODY = 64 * 1024
"""Largest accepted ``add-checkpoint`` body, bytes (C2SP tlog-witness requests are small)."""
MAX_INFLIGHT = 16
"""Most HTTP requests handled at once; more are answered ``503`` with ``Retry-After``."""
READ_THREADS = 2
"""Threads of the HTTP endpoint's own pool (separate from the ledger writer's thread)."""
ENTRIES_REFUSED = (
    "entry bundles are not served over HTTP: entry contents go only to the parties of an entry, "
    "over mutual TLS (FederationService.QueryEntries); hash tiles and checkpoints are public\n"
)


def make_app(node: Any) -> web.Application:
    """The aiohttp application serving ``node``'s public log data and witness.

    Args:
        node: A :class:`federation.node.Node` (uses ``node.ledger`` and ``node.witness``).

    Returns:
        The application; its thread pool is shut down on application cleanup.

    """
    from ledger import LedgerError, MalformedError, NotCheckpointedError, TreeSizeError, parse_tile_path

    pool = concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="ledger-http")
    slots = asyncio.Semaphore(MAX_INFLIGHT)

    def busy() -> web.Response:
        return web.Response(status=503, text="too many requests\n", headers={"Retry-After": "1"})

    async def off_thread(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def read(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if path != "checkpoint":
            try:
                ref = parse_tile_path(path)
            except MalformedError as exc:
                return web.Response(status=400, text=f"{exc.reason}: {exc}\n")
            if ref.is_entries:
                return web.Response(status=403, text=ENTRIES_REFUSED)
        if slots.locked():
            return busy()
        async with slots:
            try:
                body, ctype = await off_thread(node.ledger.read_path, path)
            except (NotCheckpointedError, TreeSizeError) as exc:
                return web.Response(status=404, text=f"{exc.reason}: {exc}\n")
            except LedgerError as exc:
                status = 400 if exc.caller_fault else 500
                return web.Response(status=status, text=f"{exc.reason}\n")
        immutable = path.startswith("tile/") and ".p/" not in path
        headers = {"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"}
        return web.Response(
            body=body,
            headers=headers,
            content_type=ctype.split(";")[0],
            charset="utf-8" if "charset" in ctype else None,
        )

    async def add_checkpoint(request: web.Request) -> web.Response:
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return web.Response(status=413, text="request too large\n")
        if slots.locked():
            return busy()
        async with slots:
            resp = await off_thread(lambda: node.witness.add_checkpoint(body, now=dt.datetime.now(dt.UTC)))
        return web.Response(status=resp.status, body=resp.body, content_type=resp.content_type.split(";")[0])

    async def cleanup(_app: web.Application) -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    app = web.Application(client_max_size=MAX_BODY)
    from federation.health import add_routes

    add_routes(app, node, details=False)  # /healthz and /readyz; the checks' details only on the metrics port
    from federation.config import did_web_document_path

    async def did_json(request: web.Request) -> web.Response:
        from federation.identity import did_document

        return web.json_response(
            did_document(node.identity),
            content_type="application/did+json",
            headers={"Cache-Control": "no-cache"},
        )

    # did:web resolution (W3C did:web §3.2): the organization's DID document, current and retired keys
    app.router.add_get(did_web_document_path(node.did), did_json)
    app.router.add_post("/add-checkpoint", add_checkpoint)
    app.router.add_get("/{path:(checkpoint|tile/.+)}", read)
    app.on_cleanup.append(cleanup)
    return app


async def start_http(node: Any, listen: str) -> tuple[web.AppRunner, int]:
    """Start serving on ``listen`` (``HOST:PORT``); returns (runner, bound port).

    With ``console = true`` the operator console is served too
    (:mod:`federation.console.embedded`), and off loopback the listener then
    speaks TLS (client certificates of the node's CA asked for, not required).
    """
    host, _, port = listen.rpartition(":")
    app = make_app(node)
    ssl_context = None
    if node.config.console:
        from federation.console.auth import is_loopback_host
        from federation.console.embedded import add_console, listener_ssl_context

        add_console(app, node)
        if not is_loopback_host(host):
            ssl_context = listener_ssl_context(node.identity.paths.tls)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port), ssl_context=ssl_context)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    return runner, sock.getsockname()[1]
