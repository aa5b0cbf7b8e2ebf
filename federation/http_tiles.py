"""The node's log over plain HTTP, in the C2SP formats other transparency tools speak.

* ``GET /checkpoint`` — the latest signed checkpoint (c2sp.org/tlog-checkpoint).
* ``GET /tile/<L>/<N>[.p/<W>]`` and ``GET /tile/entries/<N>[.p/<W>]`` —
  c2sp.org/tlog-tiles hash tiles and entry bundles (immutable once full:
  ``Cache-Control: immutable``; partial tiles and the checkpoint: ``no-cache``).
* ``POST /add-checkpoint`` — c2sp.org/tlog-witness: the node's witness
  cosigns a peer's checkpoint (status codes as in the spec).

Served with aiohttp on the node's event loop when ``http_listen`` is set in
``node.toml``. No TLS: every byte served is public and self-authenticating
(signed notes and hashes); the witness endpoint authenticates by signature.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

MAX_BODY = 64 * 1024


def make_app(node: Any) -> web.Application:
    """The aiohttp application serving ``node``'s log and witness."""
    from ledger import LedgerError

    async def read(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        try:
            body, ctype = await node.writer.run_sync(node.ledger.read_path, path)
        except LedgerError as exc:
            status = (
                404
                if exc.reason in ("NOT_CHECKPOINTED", "TREE_SIZE") or "TreeSize" in type(exc).__name__
                else 400
            )
            return web.Response(status=status, text=f"{exc.reason}: {exc}\n")
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
        resp = await node.writer.run_sync(
            lambda: node.witness.add_checkpoint(body, now=dt.datetime.now(dt.UTC))
        )
        return web.Response(status=resp.status, body=resp.body, content_type=resp.content_type.split(";")[0])

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/add-checkpoint", add_checkpoint)
    app.router.add_get("/{path:(checkpoint|tile/.+)}", read)
    return app


async def start_http(node: Any, listen: str) -> tuple[web.AppRunner, int]:
    """Start serving on ``listen`` (``HOST:PORT``); returns (runner, bound port)."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(make_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port))
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    return runner, sock.getsockname()[1]
