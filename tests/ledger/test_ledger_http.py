"""The HTTP face of the node's log (issue #10 class 6): public data only, reads off the writer's thread."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from aiohttp.test_utils import TestClient, TestServer
from ledger_support import ORIGIN, make_entry

from federation.http_tiles import make_app
from federation.ledger_writer import LedgerWriter
from ledger import TransparencyLog, Witness
from ledger.tiles import split_tile


def _node(tmp_path, signer):
    """The parts of a node the HTTP endpoint uses, all real: log, writer, witness."""
    url = f"sqlite:///{tmp_path / 'node.db'}"
    log = TransparencyLog.open(url, origin=ORIGIN, signer=signer)
    log.append([make_entry(i) for i in range(5)])
    log.integrate()
    witness = Witness.open(url, name="w.example", seed=b"\x46" * 32)
    # did: the organization DID whose did:web document the endpoint serves (federation.http_tiles)
    return SimpleNamespace(
        ledger=log, witness=witness, writer=LedgerWriter(log), did="did:web:hospital.accord.test"
    )


async def _with_client(node, fn):
    node.writer.start()
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        return await fn(client)
    finally:
        await client.close()
        await node.writer.stop()
        node.ledger.close()
        node.witness.close()


def test_entry_bundles_are_not_served_to_anonymous_clients(tmp_path, signer):
    """An anonymous GET of an entry bundle gets no contents; hashes and checkpoint stay public."""

    async def go(client):
        r = await client.get("/tile/entries/000.p/5")
        body = await r.read()
        assert r.status == 403
        assert b"QueryEntries" in body and b"did:web:requester.example" not in body
        r = await client.get("/tile/0/000.p/5")
        assert r.status == 200
        assert len(split_tile(await r.read())) == 5
        r = await client.get("/checkpoint")
        assert r.status == 200 and (await r.text()).startswith(ORIGIN + "\n5\n")
        assert (await client.get("/tile/0/001")).status == 404  # not there yet
        assert (await client.get("/tile/0/0x1")).status == 400

    asyncio.run(_with_client(_node(tmp_path, signer), go))


def test_reads_do_not_wait_for_the_ledger_writer(tmp_path, signer):
    """While the ledger writer's thread is busy, the public endpoints still answer."""
    node = _node(tmp_path, signer)
    release = threading.Event()

    async def go(client):
        blocked = asyncio.ensure_future(node.writer.run_sync(release.wait, 30))
        await asyncio.sleep(0.05)
        try:
            r = await asyncio.wait_for(client.get("/checkpoint"), timeout=5)
            assert r.status == 200
            r = await asyncio.wait_for(client.get("/tile/0/000.p/5"), timeout=5)
            assert r.status == 200
            assert not blocked.done()  # the writer was busy all along
        finally:
            release.set()
            await blocked

    asyncio.run(_with_client(node, go))
