"""Provider-role cases named by the requirement they check (docs/spec/accord-v1.md §9).

Each MUST of the specification that a peer can test over the wire against
a node in its provider role has a case here (or in :mod:`interop_tests.cases`
/ :mod:`interop_tests.security`, whose cases carry their requirement ids in
:mod:`interop_tests.requirements`). They run in the conformance suite, after
:data:`interop_tests.cases.CASES`. Signed payloads are built with the PAE of
:mod:`interop_tests.peer` (written from §4.1), never with the node's code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federation.pb import federation_pb2 as pb
from interop_tests.cases import MNI, Case, Context, _session
from interop_tests.checkers import CheckFailed, verify_tlog_proof
from interop_tests.peer import EXCHANGE_ENVELOPE, REQUEST_BODY, MinimalPeer, sign_as

DOMAIN = "accord.federation.v1"


async def _refusal(call: Any, what: str) -> tuple[str, str, dict[str, str]]:
    """(status name, ErrorInfo reason, metadata) of a refusal; CheckFailed if the call succeeds."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        status = rpc_status.from_call(exc)
        infos = []
        for d in status.details if status is not None else ():
            if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                d.Unpack(info)
                infos.append(info)
        if len(infos) != 1:
            raise CheckFailed(
                f"{what}: {exc.code().name} with {len(infos)} ErrorInfo details (R-TRN-3)"
            ) from None
        if infos[0].domain != DOMAIN:
            raise CheckFailed(f"{what}: ErrorInfo domain {infos[0].domain!r}, expected {DOMAIN!r}") from None
        return exc.code().name, infos[0].reason, dict(infos[0].metadata)
    raise CheckFailed(f"{what}: expected a refusal, the node accepted")


async def _expect(call: Any, code: str, reason: str, what: str) -> dict[str, str]:
    got_code, got_reason, meta = await _refusal(call, what)
    if (got_code, got_reason) != (code, reason):
        raise CheckFailed(f"{what}: expected {code} / {reason}, got {got_code} / {got_reason} {meta}")
    return meta


def _body(ctx: Context, **override: Any) -> pb.RequestBody:
    body = MinimalPeer.request_body(
        ctx.ident,
        provider_org=ctx.target_did,
        contract_id=ctx.contract_id,
        purpose="conformance",
        resource="interop-records",
        subject="rec-1",
        fields=MNI,
    )
    for k, v in override.items():
        setattr(body, k, v)
    return body


def _agent_signed(ctx: Context, payload: bytes, payload_type: str = REQUEST_BODY) -> pb.SignedPayload:
    return sign_as(ctx.ident.agent_key, payload_type, payload)


def _envelope(ctx: Context, sid: str, request: pb.SignedPayload, **override: Any) -> bytes:
    env = MinimalPeer.envelope(ctx.ident, sid, request)
    for k, v in override.items():
        setattr(env, k, v)
    return env.SerializeToString()


def _org_signed(ctx: Context, payload: bytes, payload_type: str = EXCHANGE_ENVELOPE) -> pb.SignedPayload:
    return sign_as(ctx.ident.org_key, payload_type, payload)


def _bad(payload: bytes, payload_type: str = EXCHANGE_ENVELOPE) -> pb.SignedPayload:
    return pb.SignedPayload(payload_type=payload_type, payload=payload, signature=bytes(64))


async def _envelope_cases(ctx: Context, build) -> str:
    """Run ``build(sid) -> [(what, envelope SignedPayload, code, reason, field)]`` in one session."""
    peer, sid = await _session(ctx)
    out = []
    try:
        for what, envelope, code, reason, fld in build(sid):
            meta = await _expect(
                peer.exchange(ctx.ident, sid, envelope, envelope=envelope), code, reason, what
            )
            if fld is not None and meta.get("field") != fld:
                raise CheckFailed(f"{what}: metadata.field {meta.get('field')!r}, expected {fld!r}")
            out.append(f"{what}: {reason}")
        return "; ".join(out)
    finally:
        await peer.close()


# ---------------------------------------------------------------- transport (§2)


async def case_trn_1_no_client_certificate(ctx: Context) -> str:
    """R-TRN-1: a call without a client certificate gets no answer."""
    creds = grpc.ssl_channel_credentials(root_certificates=ctx.bundle["ca_certificate_pem"].encode())
    channel = grpc.aio.secure_channel(ctx.target, creds)
    try:
        await pb_stub(channel).GetNodeInfo(pb.GetNodeInfoRequest(), timeout=10)
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED):
            raise CheckFailed(f"expected the handshake to fail, got {exc.code().name}") from None
        return f"refused: {exc.code().name}"
    finally:
        await channel.close()
    raise CheckFailed("GetNodeInfo was answered without a client certificate")


def pb_stub(channel: Any) -> Any:
    """A ``FederationService`` stub on ``channel``."""
    from federation.pb import federation_pb2_grpc as pbg

    return pbg.FederationServiceStub(channel)


async def case_trn_3_one_error_info(ctx: Context) -> str:
    """R-TRN-3: refusals of several RPCs carry exactly one ErrorInfo of domain accord.federation.v1."""
    peer = ctx.peer()
    try:
        calls = [
            (
                "GetStatusList(purpose=other)",
                peer.stub.GetStatusList(pb.GetStatusListRequest(purpose="other")),
            ),
            (
                "GetInclusionProof(beyond the log)",
                peer.stub.GetInclusionProof(
                    pb.GetInclusionProofRequest(leaf_index=2**62, tree_size=2**62 + 1)
                ),
            ),
            ("GetConsistencyProof(0, 0)", peer.stub.GetConsistencyProof(pb.GetConsistencyProofRequest())),
            ("QueryEntries(limit=5000)", peer.stub.QueryEntries(pb.QueryEntriesRequest(limit=5000))),
            ("Exchange(no envelope)", peer.stub.Exchange(pb.ExchangeRequest())),
        ]
        out = []
        for what, call in calls:
            code, reason, _ = await _refusal(call, what)
            if not reason:
                raise CheckFailed(f"{what}: ErrorInfo without a reason")
            out.append(f"{code}/{reason}")
        return ", ".join(out)
    finally:
        await peer.close()


async def case_rol_1_status_lists_served(ctx: Context) -> str:
    """R-ROL-1: both status lists are served to a pinned peer as signed Bitstring Status List credentials."""
    peer = ctx.peer()
    try:
        for purpose in ("revocation", "suspension"):
            r = await peer.stub.GetStatusList(pb.GetStatusListRequest(purpose=purpose), timeout=10)
            doc = json.loads(r.credential_json)
            want_id = f"https://{ctx.bundle['org_name']}.accord.test/status/{purpose}"
            issuer = doc.get("issuer")
            issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
            subject = doc.get("credentialSubject", {})
            if "BitstringStatusListCredential" not in doc.get("type", []):
                raise CheckFailed(f"{purpose}: type {doc.get('type')}")
            if issuer != ctx.target_did or doc.get("id") != want_id:
                raise CheckFailed(f"{purpose}: issuer {issuer!r}, id {doc.get('id')!r}")
            if subject.get("statusPurpose") != purpose or "proof" not in doc:
                raise CheckFailed(f"{purpose}: statusPurpose {subject.get('statusPurpose')!r} or no proof")
            bits = len(_gunzip_multibase(subject.get("encodedList", ""))) * 8
            if bits != 131_072:
                raise CheckFailed(f"{purpose}: {bits} entries, expected 131,072")
        return "revocation and suspension lists: 131,072 entries, issuer = the node's DID"
    finally:
        await peer.close()


def _gunzip_multibase(value: str) -> bytes:
    import gzip

    if not value.startswith("u"):
        raise CheckFailed(f"encodedList is not multibase base64url: {value[:10]!r}")
    raw = base64.urlsafe_b64decode(value[1:] + "=" * (-len(value[1:]) % 4))
    return gzip.decompress(raw)


# ---------------------------------------------------------------- messages (§3)


async def case_msg_3_stale_timestamp(ctx: Context) -> str:
    """R-MSG-3: a timestamp an hour old is STALE_REQUEST."""
    peer, sid = await _session(ctx)
    try:
        signed = _agent_signed(
            ctx, _body(ctx, timestamp_ms=int((time.time() - 3600) * 1000)).SerializeToString()
        )
        await _expect(
            peer.exchange(ctx.ident, sid, signed), "UNAUTHENTICATED", "STALE_REQUEST", "an hour old"
        )
        return "UNAUTHENTICATED STALE_REQUEST"
    finally:
        await peer.close()


# ---------------------------------------------------------------- signed payloads (§4)


async def case_sig_2_other_version(ctx: Context) -> str:
    """R-SIG-2, R-NEG-4: a v2 envelope and a v2 request are UNSUPPORTED_VERSION (negotiated v1 or not)."""

    def build(sid: str):
        good = _agent_signed(ctx, _body(ctx).SerializeToString())
        v2_req = _agent_signed(ctx, _body(ctx).SerializeToString(), REQUEST_BODY.replace(".v1.", ".v2."))
        return [
            (
                "v2 envelope",
                _org_signed(ctx, _envelope(ctx, sid, good), EXCHANGE_ENVELOPE.replace(".v1.", ".v2.")),
                "FAILED_PRECONDITION",
                "UNSUPPORTED_VERSION",
                "envelope",
            ),
            (
                "v2 request in a v1 envelope",
                _org_signed(ctx, _envelope(ctx, sid, v2_req)),
                "FAILED_PRECONDITION",
                "UNSUPPORTED_VERSION",
                "envelope.request",
            ),
        ]

    return await _envelope_cases(ctx, build)


async def case_sig_3_payload_type(ctx: Context) -> str:
    """R-SIG-3: a type not of the form, one naming another message, one over 128 bytes: WRONG_PAYLOAD_TYPE."""

    def build(sid: str):
        good = _agent_signed(ctx, _body(ctx).SerializeToString())
        env = _envelope(ctx, sid, good)
        return [
            ("type not of the form", _org_signed(ctx, env, "ExchangeEnvelope"), "INVALID_ARGUMENT", "WRONG_PAYLOAD_TYPE", "envelope"),  # noqa: E501
            ("another message's type", _org_signed(ctx, env, REQUEST_BODY), "INVALID_ARGUMENT", "WRONG_PAYLOAD_TYPE", "envelope"),  # noqa: E501
            ("200-byte type", _org_signed(ctx, env, "accord.federation.v2." + "E" * 179), "INVALID_ARGUMENT", "WRONG_PAYLOAD_TYPE", "envelope"),  # noqa: E501
        ]  # fmt: skip

    return await _envelope_cases(ctx, build)


async def case_sig_4_signature_before_parse(ctx: Context) -> str:
    """R-SIG-4: unparseable signed bytes are MALFORMED_PAYLOAD; a bad signature fails first."""

    def build(sid: str):
        junk = b"\x0a\xff\xff\xff"
        return [
            (
                "unparseable, signed",
                _org_signed(ctx, junk),
                "INVALID_ARGUMENT",
                "MALFORMED_PAYLOAD",
                "envelope",
            ),
            ("unparseable, bad signature", _bad(junk), "UNAUTHENTICATED", "BAD_ORG_SIGNATURE", "envelope"),
        ]

    return await _envelope_cases(ctx, build)


async def case_sig_5_unknown_fields(ctx: Context) -> str:
    """R-SIG-5: an unknown field in a signed payload, at any depth, is UNKNOWN_FIELD; outside, ignored."""
    peer, sid = await _session(ctx)
    try:
        good = _agent_signed(ctx, _body(ctx).SerializeToString())
        top = _org_signed(ctx, _envelope(ctx, sid, good) + b"\xf8\x06\x01")  # field 111 of the envelope
        meta = await _expect(
            peer.exchange(ctx.ident, sid, top, envelope=top), "INVALID_ARGUMENT", "UNKNOWN_FIELD", "field 111"
        )
        if meta.get("field_number") != "111":
            raise CheckFailed(f"metadata.field_number {meta.get('field_number')!r}, expected '111'")
        nested = pb.ExchangeEnvelope(session_id=sid, requester_org=ctx.ident.org_did)
        nested.request.MergeFromString(good.SerializeToString() + b"\xf8\x06\x01")  # inside envelope.request
        deep = _org_signed(ctx, nested.SerializeToString())
        await _expect(
            peer.exchange(ctx.ident, sid, deep, envelope=deep), "INVALID_ARGUMENT", "UNKNOWN_FIELD", "nested"
        )
        # the same unknown field on the unsigned ExchangeRequest: ignored, answered
        fresh = _agent_signed(ctx, _body(ctx).SerializeToString())
        req = pb.ExchangeRequest(envelope=_org_signed(ctx, _envelope(ctx, sid, fresh)))
        req.MergeFromString(b"\xf8\x06\x01")
        r = await peer.stub.Exchange(req, timeout=10)
        if r.outcome.decision != "allow":
            raise CheckFailed(
                f"an unknown field outside the signed payload changed the answer: {r.outcome.decision}"
            )
        return "envelope field 111 and nested field 111 refused (UNKNOWN_FIELD); on ExchangeRequest ignored"
    finally:
        await peer.close()


async def case_sig_6_pinned_key_only(ctx: Context) -> str:
    """R-SIG-6: an envelope signed by another key, or a 63-byte signature, is BAD_ORG_SIGNATURE."""
    from credentials import Ed25519KeyPair

    def build(sid: str):
        env = _envelope(ctx, sid, _agent_signed(ctx, _body(ctx).SerializeToString()))
        other = sign_as(Ed25519KeyPair.generate(), EXCHANGE_ENVELOPE, env)
        good = _org_signed(ctx, env)
        short = pb.SignedPayload(payload_type=EXCHANGE_ENVELOPE, payload=env, signature=good.signature[:63])
        return [
            ("another key", other, "UNAUTHENTICATED", "BAD_ORG_SIGNATURE", "envelope"),
            ("63-byte signature", short, "UNAUTHENTICATED", "BAD_ORG_SIGNATURE", "envelope"),
        ]

    return await _envelope_cases(ctx, build)


async def case_sig_8_bounded_first(ctx: Context) -> str:
    """R-SIG-8: an envelope over 81,920 bytes and a request over 65,536 are PAYLOAD_TOO_LARGE, unverified."""

    def build(sid: str):
        big_req = _agent_signed(ctx, _body(ctx).SerializeToString() + b"\x00" * 65_537)
        return [
            ("81,921-byte envelope, bad signature", _bad(b"\x00" * 81_921), "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE", "envelope"),  # noqa: E501
            ("65,537+ byte request", _org_signed(ctx, _envelope(ctx, sid, big_req)), "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE", "envelope.request"),  # noqa: E501
        ]  # fmt: skip

    return await _envelope_cases(ctx, build)


async def case_sig_10_receiver_order(ctx: Context) -> str:
    """R-SIG-10: bound, type, signature, parse, unknown fields: the first failure is the one answered."""

    def build(sid: str):
        v2 = EXCHANGE_ENVELOPE.replace(".v1.", ".v2.")
        env = _envelope(ctx, sid, _agent_signed(ctx, _body(ctx).SerializeToString()))
        return [
            ("too large and v2", _bad(b"\x00" * 81_921, v2), "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE", "envelope"),  # noqa: E501
            ("v2 and bad signature", _bad(env, v2), "FAILED_PRECONDITION", "UNSUPPORTED_VERSION", "envelope"),
            ("another type and bad signature", _bad(env, REQUEST_BODY), "INVALID_ARGUMENT", "WRONG_PAYLOAD_TYPE", "envelope"),  # noqa: E501
            ("unknown field and bad signature", _bad(env + b"\xf8\x06\x01"), "UNAUTHENTICATED", "BAD_ORG_SIGNATURE", "envelope"),  # noqa: E501
        ]  # fmt: skip

    return await _envelope_cases(ctx, build)


# ---------------------------------------------------------------- exchange (§4.5)


async def case_exc_1_requester_mismatch(ctx: Context) -> str:
    """R-EXC-1: a signed envelope naming another requester organization is REQUESTER_MISMATCH."""

    def build(sid: str):
        req = _agent_signed(ctx, _body(ctx).SerializeToString())
        env = _org_signed(ctx, _envelope(ctx, sid, req, requester_org="did:web:someone-else.accord.test"))
        return [("another requester_org", env, "UNAUTHENTICATED", "REQUESTER_MISMATCH", None)]

    return await _envelope_cases(ctx, build)


async def case_exc_2_session_in_the_envelope(ctx: Context) -> str:
    """R-EXC-2: the session id is signed (moving it breaks the signature); an unknown session is refused."""

    def build(sid: str):
        req = _agent_signed(ctx, _body(ctx).SerializeToString())
        signed = _org_signed(ctx, _envelope(ctx, sid, req))
        moved = pb.ExchangeEnvelope.FromString(signed.payload)
        moved.session_id = "ses_" + os.urandom(12).hex()
        swapped = pb.SignedPayload(
            payload_type=signed.payload_type, payload=moved.SerializeToString(), signature=signed.signature
        )
        unknown = _org_signed(ctx, _envelope(ctx, "ses_" + os.urandom(12).hex(), req))
        return [
            ("session id changed after signing", swapped, "UNAUTHENTICATED", "BAD_ORG_SIGNATURE", "envelope"),
            ("a signed unknown session", unknown, "UNAUTHENTICATED", "UNKNOWN_SESSION", None),
        ]

    return await _envelope_cases(ctx, build)


async def case_exc_3_request_bound_to_session(ctx: Context) -> str:
    """R-EXC-3: a request naming another agent (AGENT_MISMATCH) or provider (WRONG_PROVIDER) is refused."""

    def build(sid: str):
        other_agent = _agent_signed(
            ctx, _body(ctx, agent_did=ctx.ident.other("tester-2").agent_did).SerializeToString()
        )
        other_provider = _agent_signed(
            ctx, _body(ctx, provider_org="did:web:someone-else.accord.test").SerializeToString()
        )
        return [
            ("another agent", _org_signed(ctx, _envelope(ctx, sid, other_agent)), "UNAUTHENTICATED", "AGENT_MISMATCH", None),  # noqa: E501
            ("another provider", _org_signed(ctx, _envelope(ctx, sid, other_provider)), "INVALID_ARGUMENT", "WRONG_PROVIDER", None),  # noqa: E501
        ]  # fmt: skip

    return await _envelope_cases(ctx, build)


async def case_ses_3_challenge_and_holder(ctx: Context) -> str:
    """R-SES-3: a challenge used twice is WRONG_CHALLENGE; a proof by another key HOLDER_MISMATCH."""
    from credentials import create_presentation, verification_method_id

    peer = ctx.peer()
    try:
        ch = await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ctx.ident.agent_did), timeout=10)

        def vp(ident) -> bytes:
            doc = create_presentation(
                [ctx.ident.agent["credential"]],
                holder=ctx.ident.agent_did,
                key=ident.agent_key,
                verification_method=verification_method_id(ident.agent_did),
                challenge=ch.challenge,
                domain=ch.domain,
            )
            return json.dumps(doc).encode()

        await peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=vp(ctx.ident)), timeout=10)
        await _expect(
            peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=vp(ctx.ident)), timeout=10),
            "UNAUTHENTICATED",
            "WRONG_CHALLENGE",
            "challenge used twice",
        )
        ch = await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ctx.ident.agent_did), timeout=10)
        # a valid proof by another agent's key (its own verification method), for this holder
        await _expect(
            peer.stub.OpenSession(
                pb.OpenSessionRequest(presentation_json=vp(ctx.ident.other("tester-2"))), timeout=10
            ),
            "UNAUTHENTICATED",
            "HOLDER_MISMATCH",
            "proof by a key the holder does not control",
        )
        return "WRONG_CHALLENGE on reuse; HOLDER_MISMATCH for a proof by another agent's key"
    finally:
        await peer.close()


# ---------------------------------------------------------------- receipts (§7.3)


async def case_rcp_6_denial_carries_receipt(ctx: Context) -> str:
    """R-RCP-6: a policy denial carries its receipt (disclosure_id, leaf_index, ..., entry_b64)."""
    peer, sid = await _session(ctx)
    try:
        signed = ctx.request(fields=["record_id"], purpose="restricted")
        meta = await _expect(
            peer.exchange(ctx.ident, sid, signed), "PERMISSION_DENIED", "MISSING_SCOPE", "restricted purpose"
        )
        missing = {
            "disclosure_id",
            "leaf_index",
            "decision_hash",
            "reasons",
            "tlog_proof",
            "entry_b64",
        } - set(meta)
        if missing:
            raise CheckFailed(f"denial metadata lacks {sorted(missing)}")
        try:
            entry = base64.b64decode(meta["entry_b64"], validate=True)
        except binascii.Error as exc:
            raise CheckFailed("entry_b64 is not standard base64") from exc
        cp = verify_tlog_proof(
            meta["tlog_proof"],
            entry=entry,
            vkey=ctx.bundle["ledger_vkey"],
            origin=ctx.bundle["ledger_origin"],
        )
        logged = json.loads(entry)
        index = meta["leaf_index"]
        if not index.isdigit() or str(int(index)) != index or f"\nindex {index}\n" not in meta["tlog_proof"]:
            raise CheckFailed(f"leaf_index {index!r} is not the proof's index in decimal")
        if (
            logged.get("kind") not in ("denial", "audit_denial")
            or logged.get("disclosure_id") != meta["disclosure_id"]
        ):
            raise CheckFailed(f"the logged entry is {logged.get('kind')!r} {logged.get('disclosure_id')!r}")
        if logged.get("request_digest") != hashlib.sha256(signed.payload).hexdigest():
            raise CheckFailed("request_digest is not SHA-256 of the RequestBody bytes as signed")
        return f"denial entry {index} included in a checkpoint of size {cp.size}"
    finally:
        await peer.close()


async def case_rcp_3_response_digest_sent(ctx: Context) -> str:
    """R-RCP-3 (provider side): response_digest and request_digest are over the bytes as sent."""
    peer, sid = await _session(ctx)
    try:
        signed = ctx.request(fields=MNI)
        r = await peer.exchange(ctx.ident, sid, signed)
        entry = json.loads(r.outcome.receipt.entry)
        want = hashlib.sha256(r.outcome.payload_json).hexdigest()
        if entry.get("response_digest") != want:
            raise CheckFailed(
                f"response_digest {entry.get('response_digest')!r}, SHA-256 of the bytes is {want}"
            )
        if entry.get("request_digest") != hashlib.sha256(signed.payload).hexdigest():
            raise CheckFailed("request_digest is not SHA-256 of the RequestBody bytes as signed")
        return f"response_digest = SHA-256 of {len(r.outcome.payload_json)} payload bytes"
    finally:
        await peer.close()


async def case_agg_1_answer_shape(ctx: Context) -> str:
    """R-AGG-1: an allowed aggregate is an array of exactly one object with exactly the five members."""
    ans_list = await _aggregate_raw(ctx, "count")
    if not isinstance(ans_list, list) or len(ans_list) != 1 or not isinstance(ans_list[0], dict):
        raise CheckFailed(f"payload is not an array of one object: {ans_list!r}"[:300])
    ans = ans_list[0]
    if set(ans) != {"kind", "column", "value", "records", "dp_epsilon"}:
        raise CheckFailed(f"members {sorted(ans)}")
    if ans["kind"] != "count" or ans["column"] != "value" or not isinstance(ans["value"], int | float):
        raise CheckFailed(f"answer {ans}")
    if not (ans["records"] is None or isinstance(ans["records"], int)) or not isinstance(
        ans["dp_epsilon"], float | int
    ):
        raise CheckFailed(f"records/dp_epsilon {ans}")
    return json.dumps(ans, sort_keys=True)


async def _aggregate_raw(ctx: Context, kind: str) -> Any:
    peer = ctx.peer()
    try:
        sess = await peer.open_session(ctx.ident)
        signed = MinimalPeer.signed_request(
            ctx.ident,
            provider_org=ctx.target_did,
            contract_id=ctx.contract_id,
            purpose="conformance-stats",
            resource="interop-stats",
            subject="*",
            fields=[],
            aggregate={"kind": kind, "column": "value", "predicate": {}},
        )
        r = await peer.exchange(ctx.ident, sess.session_id, signed)
        return json.loads(r.outcome.payload_json)
    finally:
        await peer.close()


# ---------------------------------------------------------------- extension rules (§6)


async def case_ext_3_unsigned_unknown_fields(ctx: Context) -> str:
    """R-EXT-3: unknown fields of unsigned request messages are ignored."""
    peer = ctx.peer()
    try:
        req = pb.GetNodeInfoRequest()
        req.MergeFromString(b"\xf8\x06\x01")
        info = await peer.stub.GetNodeInfo(req, timeout=10)
        ch_req = pb.GetChallengeRequest(agent_did=ctx.ident.agent_did)
        ch_req.MergeFromString(b"\xf8\x06\x01")
        ch = await peer.stub.GetChallenge(ch_req, timeout=10)
        if info.org_did != ctx.target_did or not ch.challenge:
            raise CheckFailed("answers differ when an unknown field is present")
        return "GetNodeInfo and GetChallenge with field 111 answered"
    finally:
        await peer.close()


SPEC_CASES: list[tuple[str, Case]] = [
    ("R-TRN-1 call without a client certificate", case_trn_1_no_client_certificate),
    ("R-TRN-3 one ErrorInfo per refusal", case_trn_3_one_error_info),
    ("R-ROL-1 status lists served", case_rol_1_status_lists_served),
    ("R-MSG-3 stale timestamp refused", case_msg_3_stale_timestamp),
    ("R-SIG-2 payload of another version refused", case_sig_2_other_version),
    ("R-SIG-3 payload type checked", case_sig_3_payload_type),
    ("R-SIG-4 signature before parse", case_sig_4_signature_before_parse),
    ("R-SIG-5 unknown fields in signed payloads", case_sig_5_unknown_fields),
    ("R-SIG-6 pinned organization key only", case_sig_6_pinned_key_only),
    ("R-SIG-8 payload bounded first", case_sig_8_bounded_first),
    ("R-SIG-10 receiver order", case_sig_10_receiver_order),
    ("R-EXC-1 requester mismatch refused", case_exc_1_requester_mismatch),
    ("R-EXC-2 session id signed in the envelope", case_exc_2_session_in_the_envelope),
    ("R-EXC-3 request bound to session and provider", case_exc_3_request_bound_to_session),
    ("R-SES-3 challenge single use, holder's key", case_ses_3_challenge_and_holder),
    ("R-RCP-6 denial carries its receipt", case_rcp_6_denial_carries_receipt),
    ("R-RCP-3 response digest over the bytes sent", case_rcp_3_response_digest_sent),
    ("R-AGG-1 aggregate answer shape", case_agg_1_answer_shape),
    ("R-EXT-3 unknown fields of unsigned messages ignored", case_ext_3_unsigned_unknown_fields),
]
