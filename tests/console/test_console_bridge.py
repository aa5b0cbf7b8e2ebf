"""The ASGI bridge of the node's listener (``federation.console.embedded.bridge``) on a real aiohttp server.

The console itself through it is tested on real node processes in
``test_console_on_node.py``; here a small ASGI application stands in so the
bridge's own duties can be checked: the connection facts in the scope, every
response header kept (two cookies), the in-flight bound and the response cap.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import ClientSession, ClientTimeout, web
from aiohttp.test_utils import TestServer

from federation.console import embedded


async def _serve(asgi_app, **kw):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", embedded.bridge(asgi_app, **kw))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def test_scope_comes_from_the_connection_and_headers_are_kept():
    async def echo(scope, receive, send):
        body = (await receive())["body"]
        info = {
            "client": scope["client"][0],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "tls": "extensions" in scope,
            "body": body.decode(),
        }
        headers = [(b"content-type", b"application/json"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        headers.append((b"content-length", b"999"))  # wrong on purpose: aiohttp sets its own
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(info).encode()})

    async def main():
        server = await _serve(echo)
        try:
            async with ClientSession() as s:
                url = server.make_url("/ledger%2Fx?agent=a%26b%2Bc&x=1")
                async with s.post(url, data=b"csrf=t", headers={"x-forwarded-for": "203.0.113.9"}) as r:
                    assert r.status == 201
                    assert r.headers.getall("set-cookie") == ["a=1", "b=2"]
                    return await r.json()
        finally:
            await server.close()

    info = asyncio.run(main())
    # the peer address is the socket's, never a forwarding header; the raw query is passed on encoded
    assert info["client"] == "127.0.0.1"
    assert info["query"] == "agent=a%26b%2Bc&x=1"
    assert info["raw_path"] == "/ledger%2Fx" and info["body"] == "csrf=t"
    assert info["tls"] is False


def test_requests_beyond_the_bound_are_refused_at_once():
    async def main():
        gate = asyncio.Event()
        entered = asyncio.Semaphore(0)

        async def slow(scope, receive, send):
            entered.release()
            await gate.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        server = await _serve(slow, max_inflight=2)
        try:
            async with ClientSession() as s:

                async def fetch() -> int:
                    async with s.get(server.make_url("/")) as r:
                        await r.read()
                        return r.status

                held = [asyncio.create_task(fetch()) for _ in range(2)]
                for _ in range(2):
                    await asyncio.wait_for(entered.acquire(), 10)
                # answered at once, while the two slots are taken (without the bound it would wait)
                async with s.get(server.make_url("/"), timeout=ClientTimeout(total=10)) as r:
                    assert r.status == 503 and r.headers["Retry-After"] == "1"
                gate.set()
                statuses = [await t for t in held]
                async with s.get(server.make_url("/")) as r:  # a slot is free again
                    statuses.append(r.status)
                return statuses
        finally:
            await server.close()

    assert asyncio.run(main()) == [200, 200, 200]


def test_an_oversized_response_is_not_relayed(monkeypatch):
    monkeypatch.setattr(embedded, "MAX_RESPONSE_BYTES", 1000)

    async def big(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"x" * 600, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def main():
        server = await _serve(big)
        try:
            async with ClientSession() as s, s.get(server.make_url("/")) as r:
                return r.status, await r.read()
        finally:
            await server.close()

    status, body = asyncio.run(main())
    assert status == 500 and b"x" * 600 not in body
