"""The aggregate path's CPU work (selection, auditor decision) runs off the node's event loop (issue #12).

The provider (hospital) runs in this test's event loop with its real gRPC
server; the requester (relief) is a real node process. The dataset's
auditor is wrapped (test code) so that its decision holds until the test
has been answered a cheap RPC (``GetNodeInfo``) by the same node. Run on
the event loop, the decision would block that RPC: the test asserts the
order of completion (the RPC is answered while the decision is still
running), never a duration. The bounded wait only keeps a regression from
hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import threading
import types

import pytest

from federation.client import AgentClient
from federation.identity import NodeIdentity
from federation.peer_client import PeerClient
from federation.server import open_node, start_server
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("aggregates")

#: how long a held decision waits for the test before giving up (a regression fails, never hangs)
HOLD_LIMIT_SECONDS = 30.0


class HeldAuditor:
    """Wraps a :class:`policy.auditor.Auditor`: ``check`` records its thread and waits for ``release``."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()
        self.check_threads: list[int] = []
        self.released_while_held: bool | None = None

    def check(self, *args, **kwargs):
        self.check_threads.append(threading.get_ident())
        self.entered.set()
        self.released_while_held = self.release.wait(HOLD_LIMIT_SECONDS)
        return self._inner.check(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture(scope="module")
def requester_only(tmp_path_factory):
    """Relief as a process; hospital (the provider) runs in the test, in-process."""
    f = start(tmp_path_factory.mktemp("aggloop"), orgs=("relief",), with_interop=False)
    yield f
    f.stop()


def test_a_cheap_rpc_is_answered_while_an_aggregate_decision_runs(requester_only):
    layout = requester_only.layout
    bundle = types.SimpleNamespace(**json.loads(layout.bundle_path("hospital").read_text()))
    relief_tls = NodeIdentity.load(layout.orgs["relief"])  # its node certificate: GetNodeInfo as a peer
    order: list[str] = []

    async def go():
        node = open_node(layout.orgs["hospital"])
        server, _ = await start_server(node)
        held = HeldAuditor(node.datasets.auditors["admissions"])
        node.datasets.auditors["admissions"] = held
        peer = PeerClient(cert_pem=relief_tls.tls_pem("node.pem"), key_pem=relief_tls.tls_pem("node.key"))
        try:
            async with AgentClient.from_wallet(layout.wallets["relief/triage-coordinator"]) as c:
                s = await c.open_session("hospital")

                async def aggregate():
                    r = await c.request(
                        s,
                        contract_id="relief-hospital-triage",
                        purpose="surge-planning",
                        resource="admissions",
                        subject="*",
                        fields=[],
                        aggregate={"kind": "sum", "column": "length_of_stay", "predicate": {}},
                    )
                    order.append("aggregate")
                    return r

                task = asyncio.create_task(aggregate())
                assert await asyncio.to_thread(held.entered.wait, HOLD_LIMIT_SECONDS)
                info = await peer.node_info(bundle)
                order.append("node_info")
                held.release.set()
                r = await task
            return threading.get_ident(), info, r, held
        finally:
            held.release.set()
            await peer.close()
            await server.stop(0)
            await node.close()

    loop_thread, info, r, held = run(go())
    assert info.org_did == bundle.org_did
    assert r.records[0]["kind"] == "sum" and r.records[0]["records"] > 0
    assert order == ["node_info", "aggregate"]
    # the node answered GetNodeInfo while the decision was held, not after it gave up
    assert held.released_while_held is True
    assert held.check_threads and all(t != loop_thread for t in held.check_threads)
