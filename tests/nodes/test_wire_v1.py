"""Wire v1 over real gRPC: signed payloads verified as sent, versions and suites negotiated.

Each bad-input class of docs/spec/accord-v1.md §4.4 and §5 against real node
processes over mutual TLS: the provider (FederationService.Exchange, as the
interop tester organization), the requester (AgentService, as a registered
agent) and the requester's negotiation before a first session.
"""

from __future__ import annotations

import json

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.client import AgentClient
from federation.errors import FederationError
from federation.pb import federation_pb2 as pb
from interop_tests.cases import MNI, PURPOSE, RESOURCE, _reason
from interop_tests.peer import (
    EXCHANGE_ENVELOPE,
    REQUEST_BODY,
    SESSION_POSSESSION,
    InteropIdentity,
    MinimalPeer,
    sign_as,
)
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("federation")


def _ctx(fed):
    bundle = json.loads(fed.layout.bundle_path("hospital").read_text())
    ident = InteropIdentity.load(fed.layout.orgs["interop"])
    peer = MinimalPeer(
        target=fed.endpoint("hospital"),
        target_ca_pem=bundle["ca_certificate_pem"].encode(),
        cert_pem=ident.cert_pem,
        key_pem=ident.key_pem,
    )
    return peer, bundle, ident


def _body(bundle, ident, **over) -> pb.RequestBody:
    kw = dict(
        provider_org=bundle["org_did"],
        contract_id=f"interop-{bundle['org_name']}",
        purpose=PURPOSE,
        resource=RESOURCE,
        subject="rec-1",
        fields=MNI,
    )
    kw.update(over)
    return MinimalPeer.request_body(ident, **kw)


def _org_envelope(ident, sid, request: pb.SignedPayload, **over) -> pb.SignedPayload:
    env = MinimalPeer.envelope(ident, sid, request)
    for k, v in over.items():
        setattr(env, k, v)
    return sign_as(ident.org_key, EXCHANGE_ENVELOPE, env.SerializeToString())


async def _refused(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await call
    return ei.value.code(), _reason(ei.value)


def _provider(fed, build):
    """Open a session as the interop tester, send ``build(peer, bundle, ident, sid)``; the refusal."""

    async def go():
        peer, bundle, ident = _ctx(fed)
        try:
            sid = (await peer.open_session(ident)).session_id
            return await _refused(build(peer, bundle, ident, sid))
        finally:
            await peer.close()

    return run(go())


# ------------------------------------------------------------------------- provider side


def test_bytes_as_sent_are_verified_not_a_re_serialization(fed):
    """A valid non-canonical encoding (fields in reverse order) is answered: signed bytes as sent.

    A receiver that re-serialized the parsed body (the old deterministic
    scheme) computes other bytes and refuses this request.
    """

    async def go():
        peer, bundle, ident = _ctx(fed)
        try:
            sid = (await peer.open_session(ident)).session_id
            body = _body(bundle, ident)
            parts = []
            for fd, value in body.ListFields():  # each field on its own, in reverse field order
                one = pb.RequestBody()
                if fd.is_repeated:
                    getattr(one, fd.name).extend(value)
                else:
                    setattr(one, fd.name, value)
                parts.append(one.SerializeToString())
            payload = b"".join(reversed(parts))
            assert payload != body.SerializeToString() and pb.RequestBody.FromString(payload) == body
            r = await peer.exchange(ident, sid, sign_as(ident.agent_key, REQUEST_BODY, payload))
            return r.outcome
        finally:
            await peer.close()

    outcome = run(go())
    assert outcome.decision == "allow"
    assert set(outcome.released_fields) == set(MNI)


def test_unparseable_signed_request_bytes_are_malformed_payload(fed):
    code, reason = _provider(
        fed,
        lambda peer, b, ident, sid: peer.exchange(
            ident, sid, sign_as(ident.agent_key, REQUEST_BODY, b"\x0a\xff\xff\xff")
        ),
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_PAYLOAD")


def test_unparseable_signed_envelope_bytes_are_malformed_payload(fed):
    code, reason = _provider(
        fed,
        lambda peer, b, ident, sid: peer.exchange(
            ident, sid, pb.SignedPayload(), envelope=sign_as(ident.org_key, EXCHANGE_ENVELOPE, b"\x12\x05ab")
        ),
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_PAYLOAD")


def test_request_of_another_version_is_refused(fed):
    v2 = REQUEST_BODY.replace(".v1.", ".v2.")
    code, reason = _provider(
        fed,
        lambda peer, b, ident, sid: peer.exchange(
            ident, sid, sign_as(ident.agent_key, v2, _body(b, ident).SerializeToString())
        ),
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "UNSUPPORTED_VERSION")


def test_envelope_of_another_version_is_refused(fed):
    def build(peer, b, ident, sid):
        signed = MinimalPeer.sign_body(ident, _body(b, ident))
        env = MinimalPeer.envelope(ident, sid, signed).SerializeToString()
        v9 = sign_as(ident.org_key, "accord.federation.v9.ExchangeEnvelope", env)
        return peer.exchange(ident, sid, signed, envelope=v9)

    assert _provider(fed, build) == (grpc.StatusCode.FAILED_PRECONDITION, "UNSUPPORTED_VERSION")


def test_session_possession_signature_replayed_as_a_request_fails(fed):
    """The agent's signature over a SessionPossession never verifies as a RequestBody signature.

    The possession payload bytes are also made to parse as a RequestBody of
    the right shape: only the payload type separates the two, and the PAE
    binds it.
    """

    def build(peer, b, ident, sid):
        body_bytes = _body(b, ident).SerializeToString()
        as_possession = sign_as(ident.agent_key, SESSION_POSSESSION, body_bytes)  # signed for another type
        relabeled = pb.SignedPayload(
            payload_type=REQUEST_BODY, payload=as_possession.payload, signature=as_possession.signature
        )
        return peer.exchange(ident, sid, relabeled)

    assert _provider(fed, build) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_AGENT_SIGNATURE")


def test_request_signature_presented_as_an_envelope_fails(fed):
    """The agent's RequestBody as ExchangeRequest.envelope: wrong type; relabeled: bad org signature."""

    def as_is(peer, b, ident, sid):
        signed = MinimalPeer.sign_body(ident, _body(b, ident))
        return peer.exchange(ident, sid, signed, envelope=signed)

    assert _provider(fed, as_is) == (grpc.StatusCode.INVALID_ARGUMENT, "WRONG_PAYLOAD_TYPE")

    def relabeled(peer, b, ident, sid):
        # an envelope's bytes, but signed as a RequestBody by the org key, then relabeled
        signed = MinimalPeer.sign_body(ident, _body(b, ident))
        env = MinimalPeer.envelope(ident, sid, signed).SerializeToString()
        s = sign_as(ident.org_key, REQUEST_BODY, env)
        return peer.exchange(
            ident,
            sid,
            signed,
            envelope=pb.SignedPayload(payload_type=EXCHANGE_ENVELOPE, payload=env, signature=s.signature),
        )

    assert _provider(fed, relabeled) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_ORG_SIGNATURE")


def test_unknown_field_in_a_signed_request_is_refused(fed):
    code, reason = _provider(
        fed,
        lambda peer, b, ident, sid: peer.exchange(
            ident,
            sid,
            sign_as(ident.agent_key, REQUEST_BODY, _body(b, ident).SerializeToString() + b"\xf8\x06\x01"),
        ),
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_FIELD")


def test_oversized_signed_request_is_refused_before_verification(fed):
    code, reason = _provider(
        fed,
        lambda peer, b, ident, sid: peer.exchange(
            ident,
            sid,
            pb.SignedPayload(
                payload_type=REQUEST_BODY, payload=b"\x00" * (64 * 1024 + 1), signature=bytes(64)
            ),
        ),
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE")


def test_envelope_naming_another_requester_is_refused(fed):
    def build(peer, b, ident, sid):
        signed = MinimalPeer.sign_body(ident, _body(b, ident))
        env = _org_envelope(ident, sid, signed, requester_org="did:web:relief.accord.test")
        return peer.exchange(ident, sid, signed, envelope=env)

    assert _provider(fed, build) == (grpc.StatusCode.UNAUTHENTICATED, "REQUESTER_MISMATCH")


def test_session_id_is_covered_by_the_org_signature(fed):
    """The session id travels inside the signed envelope: changing it breaks the org signature."""

    def build(peer, b, ident, sid):
        signed = MinimalPeer.sign_body(ident, _body(b, ident))
        good = _org_envelope(ident, sid, signed)
        other = MinimalPeer.envelope(ident, "ses_someone_elses", signed).SerializeToString()
        return peer.exchange(
            ident,
            sid,
            signed,
            envelope=pb.SignedPayload(
                payload_type=EXCHANGE_ENVELOPE, payload=other, signature=good.signature
            ),
        )

    assert _provider(fed, build) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_ORG_SIGNATURE")


def test_node_info_advertises_what_it_speaks(fed):
    async def go():
        peer, _, _ = _ctx(fed)
        try:
            return await peer.node_info()
        finally:
            await peer.close()

    info = run(go())
    assert list(info.protocol_versions) == ["accord.federation.v1"]
    assert set(info.cryptosuites) == {"eddsa-rdfc-2022", "eddsa-jcs-2022"}
    assert list(info.signature_algorithms) == ["ed25519"]
    assert set(info.ledger_formats) == {"c2sp-tlog-checkpoint", "c2sp-tlog-proof", "rfc9162-sha256"}
    assert list(info.features) == ["accord.key-rotation.v1"]


# ------------------------------------------------------------------------ requester side


def test_requester_refuses_a_possession_signature_made_for_a_request(fed):
    """A RequestBody signature relabeled as a SessionPossession does not open a session."""

    async def go():
        async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
            w = c.wallet
            begin = await c._stub.BeginSession(pb.BeginSessionRequest(agent_did=w.did, peer="hospital"))
            poss = pb.SessionPossession(
                agent_did=w.did, challenge=begin.local_challenge, peer_org=begin.peer_org
            )
            as_request = sign_as(w.key, REQUEST_BODY, poss.SerializeToString())
            outcomes = []
            for signed in (
                as_request,  # wrong type for the field
                pb.SignedPayload(
                    payload_type=SESSION_POSSESSION,
                    payload=as_request.payload,
                    signature=as_request.signature,
                ),
            ):
                outcomes.append(
                    await _refused(
                        c._stub.OpenSession(
                            pb.AgentOpenSessionRequest(
                                agent_did=w.did,
                                peer_org=begin.peer_org,
                                possession=signed,
                                presentation_json=b"{}",
                            )
                        )
                    )
                )
            return outcomes

    assert run(go()) == [
        (grpc.StatusCode.INVALID_ARGUMENT, "WRONG_PAYLOAD_TYPE"),
        (grpc.StatusCode.UNAUTHENTICATED, "BAD_AGENT_SIGNATURE"),
    ]


def test_requester_refuses_a_request_signed_as_a_possession(fed):
    """SendRequest with a SessionPossession-typed signature relabeled as RequestBody: BAD_AGENT_SIGNATURE."""

    async def go():
        async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
            s = await c.open_session("hospital")
            good = c.sign_request(
                s,
                contract_id="relief-hospital-triage",
                purpose="triage-coordination",
                resource="patients",
                subject="patient-001",
                fields=["patient_id"],
            )
            cross = sign_as(c.wallet.key, SESSION_POSSESSION, good.payload)
            relabeled = pb.SignedPayload(
                payload_type=REQUEST_BODY, payload=cross.payload, signature=cross.signature
            )
            garbage = sign_as(c.wallet.key, REQUEST_BODY, b"\xff")
            v2 = sign_as(c.wallet.key, REQUEST_BODY.replace(".v1.", ".v2."), good.payload)
            return [
                await _refused(c._stub.SendRequest(pb.SendRequestRequest(session_id=s.session_id, request=r)))
                for r in (relabeled, garbage, v2)
            ]

    assert run(go()) == [
        (grpc.StatusCode.UNAUTHENTICATED, "BAD_AGENT_SIGNATURE"),
        (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_PAYLOAD"),
        (grpc.StatusCode.FAILED_PRECONDITION, "UNSUPPORTED_VERSION"),
    ]


# ------------------------------------------------------------------------- negotiation


@pytest.fixture(scope="module")
def provider_only(tmp_path_factory):
    """Hospital as a process; relief (the requester) runs in the test, in-process."""
    f = start(tmp_path_factory.mktemp("nego"), orgs=("hospital",), with_interop=False)
    yield f
    f.stop()


def _advertising(real_cls, rewrite):
    """A PeerClient seeing the peer's NodeInfo rewritten by ``rewrite`` (a peer advertising otherwise)."""

    class Advertising(real_cls):
        async def node_info(self, bundle):
            info = await super().node_info(bundle)
            rewrite(info)
            return info

    return Advertising


def _open_with(layout, rewrite):
    from federation.identity import NodeIdentity
    from federation.node import Node
    from federation.peer_client import PeerClient
    from federation.server import start_server
    from federation.wire import WirePayloads

    async def go():
        ident = NodeIdentity.load(layout.orgs["relief"])
        # the node is built with a peer client that rewrites what peers advertise (constructor injection)
        link = _advertising(PeerClient, rewrite)(
            cert_pem=ident.tls_pem("node.pem"), key_pem=ident.tls_pem("node.key")
        )
        node = Node(ident, peer_client=link, payloads=WirePayloads())
        server, _ = await start_server(node)
        try:
            async with AgentClient.from_wallet(layout.wallets["relief/triage-coordinator"]) as c:
                await c.open_session("hospital")
                return None
        except FederationError as exc:
            return exc
        finally:
            await server.stop(0)
            await link.close()
            await node.close()

    return run(go())


def _only(field, values):
    def rewrite(info):
        del getattr(info, field)[:]
        getattr(info, field).extend(values)

    return rewrite


@pytest.mark.parametrize(
    ("field", "values", "reason"),
    [
        ("protocol_versions", ["accord.federation.v2"], "UNSUPPORTED_VERSION"),
        ("cryptosuites", ["ecdsa-rdfc-2019"], "UNSUPPORTED_CRYPTOSUITE"),
        ("signature_algorithms", ["ml-dsa-65"], "UNSUPPORTED_ALGORITHM"),
        ("ledger_formats", ["c2sp-tlog-checkpoint"], "UNSUPPORTED_LEDGER_FORMAT"),
    ],
)
def test_requester_refuses_a_peer_it_cannot_speak_with(provider_only, field, values, reason):
    err = _open_with(provider_only.layout, _only(field, values))
    assert err is not None, "a session was opened with a peer advertising nothing in common"
    assert err.status == "FAILED_PRECONDITION"
    assert err.reason == reason


def test_requester_opens_a_session_with_a_peer_sharing_one_of_each(provider_only):
    def rewrite(info):
        info.protocol_versions.append("accord.federation.v7")
        del info.cryptosuites[:]
        info.cryptosuites.extend(["ecdsa-rdfc-2019", "eddsa-jcs-2022"])

    assert _open_with(provider_only.layout, rewrite) is None


# ------------------------------------------------------------------------------ totality


def test_missing_signed_payloads_are_malformed_requests(fed):
    async def go():
        peer, _, _ = _ctx(fed)
        try:
            provider = await _refused(peer.stub.Exchange(pb.ExchangeRequest(), timeout=10))
        finally:
            await peer.close()
        async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
            send = await _refused(c._stub.SendRequest(pb.SendRequestRequest(session_id="x")))
            open_ = await _refused(
                c._stub.OpenSession(pb.AgentOpenSessionRequest(agent_did=c.wallet.did, peer_org="hospital"))
            )
        return [provider, send, open_]

    assert run(go()) == [(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")] * 3


PAYLOAD_TYPES = st.sampled_from(
    [REQUEST_BODY, EXCHANGE_ENVELOPE, SESSION_POSSESSION, "accord.federation.v2.ExchangeEnvelope", ""]
) | st.text(max_size=60)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload_type=PAYLOAD_TYPES,
    payload=st.binary(max_size=400),
    sign=st.booleans(),
    inner=st.booleans(),
)
def test_any_signed_envelope_gets_a_precise_refusal(fed, payload_type, payload, sign, inner):
    """Arbitrary (type, bytes), signed by the right org key or not, as the envelope or inside a valid one."""

    async def go():
        peer, _, ident = _ctx(fed)
        try:
            # a session only where the check can get that far (sessions per agent are bounded)
            sid = (await peer.open_session(ident)).session_id if inner else "ses_none"
            signed = (
                sign_as(ident.org_key if not inner else ident.agent_key, payload_type, payload)
                if sign
                else pb.SignedPayload(payload_type=payload_type, payload=payload, signature=bytes(64))
            )
            if inner:  # arbitrary request inside a well-signed envelope
                return await _refused(peer.exchange(ident, sid, signed))
            return await _refused(peer.exchange(ident, sid, pb.SignedPayload(), envelope=signed))
        finally:
            await peer.close()

    code, reason = run(go())
    assert code in {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
    }, (code, reason)
    assert reason, "every refusal carries an ErrorInfo reason"
