"""Bounded pre-session work and per-agent state (issue #10 class 2, issue #18 classes 1 and 10).

Unit tests drive the tables with an injected clock; the wire tests run a real
node process over mTLS.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from federation.admission import PresessionGuard
from federation.errors import AuthenticationError, ResourceLimitError
from federation.pb import federation_pb2 as pb
from federation.sessions import ChallengeTable, NonceCache, SessionTable
from interop_tests.cases import _reason
from interop_tests.peer import InteropIdentity, MinimalPeer


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _open(table: SessionTable, agent: str, peer: str = "did:web:a.accord.test"):
    return table.create(
        peer_org=peer, agent_did=agent, agent_public_key=b"k" * 32, claims={}, credential_id=""
    )


# ------------------------------------------------------------------ sessions


def test_sessions_are_capped_per_agent_and_refused_with_resource_exhausted():
    table = SessionTable(ttl_seconds=60, max_per_agent=3, max_per_peer=100, clock=Clock())
    for _ in range(3):
        _open(table, "did:key:zA")
    with pytest.raises(ResourceLimitError) as exc:
        _open(table, "did:key:zA")
    assert exc.value.reason == "SESSION_LIMIT_AGENT" and exc.value.status == "RESOURCE_EXHAUSTED"
    _open(table, "did:key:zB")  # another agent is not affected


def test_sessions_are_capped_per_peer():
    table = SessionTable(ttl_seconds=60, max_per_agent=10, max_per_peer=4, clock=Clock())
    for i in range(4):
        _open(table, f"did:key:z{i}")
    with pytest.raises(ResourceLimitError) as exc:
        _open(table, "did:key:zOther")
    assert exc.value.reason == "SESSION_LIMIT_PEER"
    _open(table, "did:key:zOther", peer="did:web:b.accord.test")  # another peer is not affected


def test_expired_and_terminated_sessions_free_their_slot_and_are_forgotten():
    clock = Clock()
    table = SessionTable(ttl_seconds=60, max_per_agent=2, max_per_peer=100, clock=clock)
    first = _open(table, "did:key:zA")
    _open(table, "did:key:zA")
    table.terminate_agent("did:key:zA")
    _open(table, "did:key:zA")  # terminated sessions no longer count
    clock.t += 61
    for _ in range(2):
        _open(table, "did:key:zA")
    assert first.id not in table._sessions, "sessions past their TTL are swept"
    with pytest.raises(AuthenticationError):
        table.get(first.id, peer_org="did:web:a.accord.test")


# ---------------------------------------------------------------- challenges


def test_challenges_are_capped_per_peer_and_expire():
    clock = Clock()
    table = ChallengeTable(ttl_seconds=120, max_per_owner=5, max_open=100, clock=clock)
    issued = [table.issue("s", owner="did:web:a")[0] for _ in range(5)]
    with pytest.raises(ResourceLimitError) as exc:
        table.issue("s", owner="did:web:a")
    assert exc.value.reason == "CHALLENGE_LIMIT"
    table.issue("s", owner="did:web:b")  # other peers keep their share
    table.consume(issued[0], "s")  # a used challenge frees its slot
    table.issue("s", owner="did:web:a")
    clock.t += 121
    table.issue("s", owner="did:web:a")
    assert len(table) == 1, "expired challenges are swept, not kept until a size threshold"
    with pytest.raises(AuthenticationError):
        table.consume(issued[1], "s")


def test_unused_challenges_never_exceed_the_table_bound():
    clock = Clock()
    table = ChallengeTable(ttl_seconds=120, max_per_owner=10_000, max_open=50, clock=clock)
    refused = 0
    for i in range(200):
        try:
            table.issue("s", owner=f"did:web:o{i % 7}")
        except ResourceLimitError:
            refused += 1
    assert len(table) == 50 and refused == 150


def test_nonce_cache_forgets_nonces_past_twice_the_skew():
    clock = Clock()
    cache = NonceCache(skew_seconds=10, clock=clock)
    for i in range(100):
        cache.check(f"nonce-{i:012d}", int(clock.t * 1000))
    clock.t += 25
    cache.check("nonce-fresh-000000", int(clock.t * 1000))
    assert len(cache._seen) == 1
    with pytest.raises(AuthenticationError) as exc:
        cache.check("nonce-fresh-000000", int(clock.t * 1000))
    assert exc.value.reason == "REPLAYED_REQUEST"


# ---------------------------------------------------------------- admission


def test_presession_guard_limits_each_peer_separately():
    guard = PresessionGuard(rate_limit="5 per 60 seconds", concurrency=1)
    for _ in range(5):
        guard.admit("did:web:a")
    with pytest.raises(ResourceLimitError) as exc:
        guard.admit("did:web:a")
    assert exc.value.reason == "PRESESSION_RATE_LIMITED"
    guard.admit("did:web:b")


def test_presession_guard_serializes_one_peers_verifications():
    guard = PresessionGuard(rate_limit="100 per second", concurrency=2)
    running = {"now": 0, "max": 0}

    async def verify(peer):
        async with guard.verification_slot(peer):
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
            await asyncio.sleep(0.01)
            running["now"] -= 1

    async def main():
        await asyncio.gather(*(verify("did:web:a") for _ in range(8)))

    asyncio.run(main())
    assert running["max"] == 2


# ---------------------------------------------------------------- over the wire



def _peer(fed):
    layout = fed.layout
    bundle = json.loads(layout.bundle_path("hospital").read_text())
    ident = InteropIdentity.load(layout.orgs["interop"])
    peer = MinimalPeer(
        target=fed.endpoint("hospital"),
        target_ca_pem=bundle["ca_certificate_pem"].encode(),
        cert_pem=ident.cert_pem,
        key_pem=ident.key_pem,
    )
    return peer, bundle, ident


@pytest.mark.xdist_group("federation")
@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("purpose", "conformance-stats\x00"),
        ("contract_id", "interop-hospital\x00"),
        ("resource", "interop-stats\x07"),
        ("subject", "*\n"),
    ],
)
def test_control_characters_in_an_aggregate_request_are_invalid_argument(fed, member, value):
    """A NUL in the purpose of an aggregate request once raised a KeyError inside the node (INTERNAL)."""

    async def go():
        peer, bundle, ident = _peer(fed)
        try:
            sess = await peer.open_session(ident)
            fields = dict(
                provider_org=bundle["org_did"],
                contract_id="interop-hospital",
                purpose="conformance-stats",
                resource="interop-stats",
                subject="*",
                fields=[],
                aggregate={"kind": "sum", "column": "value", "predicate": {}},
            )
            fields[member] = value
            signed = MinimalPeer.signed_request(ident, **fields)
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await peer.exchange(ident, sess.session_id, signed)
            return exc.value
        finally:
            await peer.close()

    err = asyncio.run(go())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert _reason(err) == "MALFORMED_IDENTIFIER"


@pytest.mark.xdist_group("federation")
def test_an_overlong_agent_did_gets_no_challenge(fed):
    async def go():
        peer, _, _ = _peer(fed)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did="did:key:z" + "A" * 100_000))
            return exc.value
        finally:
            await peer.close()

    err = asyncio.run(go())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _reason(err) == "MALFORMED_IDENTIFIER"


def test_a_challenge_flood_is_refused_and_other_peers_keep_their_challenges(tmp_path):
    """A peer asking for challenges it never uses is cut off; the table stays bounded."""
    from federation.config import load_config, save_config
    from tests.nodes.conftest import start

    fed = start(tmp_path, orgs=())  # provision only: start the node with tight limits below
    hdir = fed.layout.orgs["hospital"]
    save_config(
        hdir,
        load_config(hdir).model_copy(
            update={"presession_rate_limit": "1000 per second", "max_challenges_per_peer": 20}
        ),
    )
    from federation.supervisor import NodeProcess

    proc = NodeProcess(hdir).start()
    try:

        async def go():
            bundle = json.loads(fed.layout.bundle_path("hospital").read_text())
            ident = InteropIdentity.load(fed.layout.orgs["interop"])
            peer = MinimalPeer(
                target=proc.endpoint,
                target_ca_pem=bundle["ca_certificate_pem"].encode(),
                cert_pem=ident.cert_pem,
                key_pem=ident.key_pem,
            )
            codes = []
            try:
                for _ in range(30):
                    try:
                        await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ident.agent_did))
                        codes.append("OK")
                    except grpc.aio.AioRpcError as exc:
                        codes.append(_reason(exc))
            finally:
                await peer.close()
            return codes

        codes = asyncio.run(go())
    finally:
        proc.stop()
    assert codes[:20] == ["OK"] * 20
    assert set(codes[20:]) == {"CHALLENGE_LIMIT"}
