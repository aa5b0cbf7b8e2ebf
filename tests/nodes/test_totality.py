"""Totality at the wire: any request gets a precise status with an ErrorInfo reason, never INTERNAL."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.pb import federation_pb2 as pb
from interop_tests.cases import _reason
from interop_tests.peer import REQUEST_BODY, InteropIdentity, MinimalPeer, pae

pytestmark = pytest.mark.xdist_group("federation")

PRECISE = {
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
}

text = st.text(max_size=40)
bodies = st.builds(
    pb.RequestBody,
    contract_id=st.sampled_from(["interop-hospital", "relief-hospital-triage", ""]) | text,
    purpose=st.sampled_from(["conformance", "conformance-stats", ""]) | text,
    resource=st.sampled_from(["interop-records", "interop-stats"]) | text,
    subject=st.sampled_from(["rec-1", "*"]) | text,
    fields=st.lists(st.sampled_from(["record_id", "public_code", "secret_note", " x", ""]) | text, max_size=5),
    provider_org=st.sampled_from(["did:web:hospital.accord.test"]) | text,
    agent_did=text,
    nonce=text,
    timestamp_ms=st.integers(min_value=-(2**62), max_value=2**62),
    aggregate_json=st.sampled_from(["", "{}", '{"kind":"sum","column":"value","predicate":{"col":"value"}}'])
    | text,
)


def _ctx(fed):
    layout = fed.layout
    return (fed.endpoint("hospital"), json.loads(layout.bundle_path("hospital").read_text()),
            InteropIdentity.load(layout.orgs["interop"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, sig=st.binary(max_size=80), use_session=st.booleans(), sign_org=st.booleans(),
       sign_agent=st.booleans())
def test_any_exchange_request_gets_a_precise_refusal_or_an_answer(fed, body, sig, use_session, sign_org,
                                                                   sign_agent):
    import secrets
    import time

    target, bundle, ident = _ctx(fed)
    if sign_agent:  # a well-signed request by the real agent: exercises policy, gate and auditor paths
        body.agent_did = ident.agent_did
        body.provider_org = bundle["org_did"]
        body.nonce = secrets.token_urlsafe(18)
        body.timestamp_ms = int(time.time() * 1000)
        sig = ident.agent_key.sign(pae(REQUEST_BODY, body.SerializeToString()))

    async def go():
        peer = MinimalPeer(target=target, target_ca_pem=bundle["ca_certificate_pem"].encode(),
                           cert_pem=ident.cert_pem, key_pem=ident.key_pem)
        try:
            sid = (await peer.open_session(ident)).session_id if use_session else "no-such-session"
            signed = pb.SignedPayload(
                payload_type=REQUEST_BODY, payload=body.SerializeToString(), signature=sig
            )
            org_sig = None if sign_org else bytes(64)
            try:
                await peer.exchange(ident, sid, signed, org_signature=org_sig)
                return None
            except grpc.aio.AioRpcError as exc:
                return exc
        finally:
            await peer.close()

    exc = asyncio.run(go())
    if exc is not None:
        assert exc.code() in PRECISE, (exc.code(), exc.details())
        assert _reason(exc), "every refusal carries an ErrorInfo reason"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
       | st.recursive(st.none() | st.booleans() | st.integers() | text,
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
                      max_leaves=12).map(lambda v: json.dumps(v).encode()))
def test_any_presentation_bytes_get_a_precise_refusal(fed, raw):
    target, bundle, ident = _ctx(fed)

    async def go():
        peer = MinimalPeer(target=target, target_ca_pem=bundle["ca_certificate_pem"].encode(),
                           cert_pem=ident.cert_pem, key_pem=ident.key_pem)
        try:
            await peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=raw), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc
        finally:
            await peer.close()
        return None

    exc = asyncio.run(go())
    assert exc is not None, "garbage opened a session"
    assert exc.code() in PRECISE, (exc.code(), exc.details())
    assert _reason(exc)
