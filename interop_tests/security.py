"""The red-team suite: wire-reachable attacks of issues #10 and #18, run against any node.

Each case attacks the node under test over the same mTLS connection a
pinned peer has (the interop tester organization), and passes only when
the node refuses with the precise status and reason the protocol defines
(``docs/protocol.md``), quickly, without an ``INTERNAL`` error, and without
releasing anything. ``accord interop run --suite security`` runs them; the
node tests show each failing against a node built to misbehave
(``interop_tests.misbehaving``).

Cases, in run order (floods last: they leave the tester rate-limited for a
moment, and wait until it is served again):

* trust: repeated sessions do not raise the effective trust τ; a field whose
  ``min_trust`` is above τ is never released; what is released carries
  only the released fields and a receipt that verifies; a purpose needing a
  scope the agent lacks is refused (``MISSING_SCOPE``);
* presentations: an inline ``@context`` that renames ``validUntil`` and
  ``credentialStatus`` (``CONTEXT_NOT_ALLOWED`` / ``UNKNOWN_CONTEXT``); an
  oversized and a deeply nested presentation (``DOCUMENT_TOO_LARGE`` /
  ``DOCUMENT_TOO_COMPLEX``, refused fast). All ``INVALID_ARGUMENT``: the
  caller's document is malformed (``docs/protocol.md``, Errors);
* requests: NUL and control characters in contract, purpose, resource,
  field and subject (``INVALID_ARGUMENT`` / ``MALFORMED_IDENTIFIER``); a
  resource outside the contract (``PERMISSION_DENIED`` /
  ``RESOURCE_NOT_IN_CONTRACT``); an id set beyond the dataset's ``max_ids``
  in every spelling (``in``, ``not_in``, ``between``);
* signed payloads (docs/spec/accord-v1.md §4): a signature made for one
  message type never verifies as another (a SessionPossession signature as
  a RequestBody, ``BAD_AGENT_SIGNATURE``; a RequestBody as the envelope,
  ``WRONG_PAYLOAD_TYPE``; an organization's RequestBody signature relabeled
  as an envelope, ``BAD_ORG_SIGNATURE``); another protocol version
  (``FAILED_PRECONDITION`` / ``UNSUPPORTED_VERSION``), unparseable signed
  bytes (``MALFORMED_PAYLOAD``) and an unknown field (``UNKNOWN_FIELD``)
  are refused; a valid but non-canonical encoding is verified as sent and
  answered;
* ledger: anonymous HTTP reads of entry tiles are refused (the node's
  C2SP tlog-tiles endpoint, when ``--http`` is given);
* floods: challenge and session floods end in ``RESOURCE_EXHAUSTED``
  (``PRESESSION_RATE_LIMITED``, ``CHALLENGE_LIMIT``, ``SESSION_LIMIT_*``)
  and the node serves the tester again afterwards.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

import grpc

from federation.pb import federation_pb2 as pb
from interop_tests.cases import (
    MNI,
    PURPOSE,
    RESOURCE,
    STATS,
    Case,
    Context,
    _expect_error,
    _reason,
    _session,
)
from interop_tests.checkers import CheckFailed, verify_tlog_proof
from interop_tests.peer import (
    EXCHANGE_ENVELOPE,
    REQUEST_BODY,
    SESSION_POSSESSION,
    MinimalPeer,
    sign_as,
)


class Skipped(Exception):  # noqa: N818 - a case outcome, not an error
    """The case cannot run against this target (e.g. no HTTP endpoint given)."""


#: a refusal must come this fast (seconds): bounds are checked before expensive work
FAST_REFUSAL_SECONDS = 3.0


async def _expect(
    coro, codes: set[grpc.StatusCode], reasons: set[str], what: str, *, within: float | None = None
) -> str:
    """Await ``coro``; it must fail with one of ``codes`` and one of ``reasons`` (within ``within`` s)."""
    t0 = time.perf_counter()
    code, reason = await _expect_error(coro, codes, what)
    took = time.perf_counter() - t0
    if reason not in reasons:
        raise CheckFailed(f"{what}: expected reason {sorted(reasons)}, got {code.name} {reason!r}")
    if within is not None and took > within:
        raise CheckFailed(f"{what}: refused only after {took:.1f} s (bound: {within} s)")
    return f"{code.name} {reason} in {took * 1000:.0f} ms"


# ---------------------------------------------------------------------------------------- trust


async def case_sessions_do_not_raise_trust(ctx: Context) -> str:
    """Opening session after session (each a successful verification) does not raise τ."""
    peer = ctx.peer()
    try:
        taus = [(await peer.open_session(ctx.ident)).effective_trust for _ in range(8)]
    finally:
        await peer.close()
    if max(taus) > taus[0] + 0.01:
        raise CheckFailed(f"τ rose with repeated sessions: {[round(t, 3) for t in taus]}")
    return f"τ over 8 sessions: {taus[0]:.3f} -> {taus[-1]:.3f}"


async def case_high_trust_field_withheld(ctx: Context) -> str:
    """A field above the pair's τ (``region``, min_trust 0.99 over a 0.9 ceiling) is never released.

    Asked alone it is refused (or released as nothing); asked with an MNI
    field only the MNI crosses, and the receipt of that release verifies.
    """
    peer, sid = await _session(ctx)
    try:
        try:
            r = await peer.exchange(ctx.ident, sid, ctx.request(fields=["region"], subject="rec-1"))
            o = r.outcome
            crossed = {k for rec in json.loads(o.payload_json or "[]") for k in rec}
            if "region" in o.released_fields or "region" in crossed:
                raise CheckFailed(f"region released alone: released {list(o.released_fields)}")
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise CheckFailed(
                    f"region alone: expected PERMISSION_DENIED, got {exc.code().name}"
                ) from None
        r = await peer.exchange(ctx.ident, sid, ctx.request(fields=["record_id", "region"], subject="rec-2"))
        o = r.outcome
        crossed = {k for rec in json.loads(o.payload_json or "[]") for k in rec}
        if "region" in o.released_fields or crossed - set(MNI):
            raise CheckFailed(f"beyond τ: released {list(o.released_fields)}, payload keys {sorted(crossed)}")
        rc = o.receipt
        verify_tlog_proof(
            rc.tlog_proof, entry=rc.entry, vkey=ctx.bundle["ledger_vkey"], origin=ctx.bundle["ledger_origin"]
        )
        return (
            f"region withheld at τ={o.effective_trust:.2f}; released {sorted(o.released_fields)}, receipt ok"
        )
    finally:
        await peer.close()


async def case_purpose_beyond_scopes_refused(ctx: Context) -> str:
    """A purpose that needs a scope the agent's credential lacks is refused, and nothing crosses."""
    peer, sid = await _session(ctx)
    try:
        return await _expect(
            peer.exchange(ctx.ident, sid, ctx.request(fields=["record_id"], purpose="restricted")),
            {grpc.StatusCode.PERMISSION_DENIED},
            {"MISSING_SCOPE"},
            "purpose needing interop:admin",
        )
    finally:
        await peer.close()


# -------------------------------------------------------------------------------- presentations


def jcs_secure(
    document: dict[str, Any],
    *,
    key: Any,
    verification_method: str,
    proof_purpose: str,
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """Add an eddsa-jcs-2022 ``DataIntegrityProof``, written from the spec (VC DI EdDSA §3.3).

    The attacker signs with its own keys whatever it likes: this does not go
    through ``credentials`` (whose issuing side refuses documents outside
    Accord's profile), so the suite can send what a hostile peer would.
    proofValue = base58btc(Ed25519(SHA-256(JCS(proof options with the
    document's ``@context``)) || SHA-256(JCS(document)))).
    """
    import datetime as dt
    import hashlib

    import base58
    import rfc8785

    options: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        options["challenge"] = challenge
    if domain is not None:
        options["domain"] = domain
    if "@context" in document:
        options["@context"] = document["@context"]
    message = (
        hashlib.sha256(rfc8785.dumps(options)).digest() + hashlib.sha256(rfc8785.dumps(document)).digest()
    )
    signed = copy.deepcopy(document)
    signed["proof"] = {**options, "proofValue": "z" + base58.b58encode(key.sign(message)).decode()}
    return signed


def _signed_vp(ctx: Context, credential: dict[str, Any], challenge: str, domain: str) -> dict[str, Any]:
    """A presentation of ``credential`` signed by the tester agent (eddsa-jcs-2022)."""
    from credentials import VC_V2_CONTEXT_URL, verification_method_id

    vp = {
        "@context": [VC_V2_CONTEXT_URL],
        "type": ["VerifiablePresentation"],
        "holder": ctx.ident.agent_did,
        "verifiableCredential": [credential],
    }
    return jcs_secure(
        vp,
        key=ctx.ident.agent_key,
        verification_method=verification_method_id(ctx.ident.agent_did),
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
    )


async def _open_raw(peer: MinimalPeer, ctx: Context, build) -> Any:
    """GetChallenge, then OpenSession with ``build(challenge, domain) -> bytes``."""
    ch = await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ctx.ident.agent_did), timeout=10)
    body = build(ch.challenge, ch.domain)
    return await peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=body), timeout=15)


async def case_inline_context_refused(ctx: Context) -> str:
    """A credential whose inline ``@context`` renames ``validUntil`` and ``credentialStatus`` is refused.

    The issuer (the tester organization) signs it properly (eddsa-jcs-2022):
    the JSON still says ``validUntil``, but under that context the signed
    statement no longer has a validity period or status, so the JSON key the
    verifier reads is not what the signature means. A control first presents
    the same credential signed the same way without the inline context: it
    must open a session, so the refusal is about the context alone.
    """
    base = copy.deepcopy(ctx.ident.agent["credential"])
    base.pop("proof", None)
    attack = copy.deepcopy(base)
    contexts = base["@context"] if isinstance(base["@context"], list) else [base["@context"]]
    attack["@context"] = [
        *contexts,
        {
            "validUntil": "urn:accord:interop:not-a-validity",
            "credentialStatus": "urn:accord:interop:not-a-status",
        },
    ]

    def signed(cred: dict[str, Any]) -> dict[str, Any]:
        return jcs_secure(
            cred,
            key=ctx.ident.org_key,
            verification_method=f"{ctx.ident.org_did}#key-1",
            proof_purpose="assertionMethod",
        )

    control, hostile = signed(base), signed(attack)
    peer = ctx.peer()
    try:
        await _open_raw(peer, ctx, lambda c, d: json.dumps(_signed_vp(ctx, control, c, d)).encode())
        return await _expect(
            _open_raw(peer, ctx, lambda c, d: json.dumps(_signed_vp(ctx, hostile, c, d)).encode()),
            {grpc.StatusCode.INVALID_ARGUMENT},
            {"CONTEXT_NOT_ALLOWED", "UNKNOWN_CONTEXT"},
            "inline @context renaming validUntil/credentialStatus",
        )
    finally:
        await peer.close()


def _vp_bytes_with(ctx: Context, challenge: str, domain: str, subject_extra: Any) -> bytes:
    """An (unsigned) presentation carrying ``subject_extra`` in the credential subject."""
    cred = copy.deepcopy(ctx.ident.agent["credential"])
    cred["credentialSubject"]["extra"] = subject_extra
    vp = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": ctx.ident.agent_did,
        "verifiableCredential": [cred],
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "proofPurpose": "authentication",
            "verificationMethod": ctx.ident.agent_did + "#" + ctx.ident.agent_did.split(":")[-1],
            "challenge": challenge,
            "domain": domain,
            "proofValue": "z" + "1" * 86,
        },
    }
    return json.dumps(vp).encode()


async def case_oversized_presentation_refused(ctx: Context) -> str:
    """A 600 KB presentation (under the gRPC message cap) is refused on size, fast, before any proof work."""
    peer = ctx.peer()
    try:
        return await _expect(
            _open_raw(peer, ctx, lambda c, d: _vp_bytes_with(ctx, c, d, ["x" * 1000] * 600)),
            {grpc.StatusCode.INVALID_ARGUMENT},
            {"DOCUMENT_TOO_LARGE", "DOCUMENT_TOO_COMPLEX"},
            "600 KB presentation",
            within=FAST_REFUSAL_SECONDS,
        )
    finally:
        await peer.close()


async def case_deep_presentation_refused(ctx: Context) -> str:
    """A presentation nested 100,000 levels deep is refused as too deep (never ``INTERNAL``), fast."""
    depth = 100_000
    marker = "__DEEP__"

    def build(c: str, d: str) -> bytes:
        return _vp_bytes_with(ctx, c, d, marker).replace(
            json.dumps(marker).encode(), b"[" * depth + b"]" * depth
        )

    peer = ctx.peer()
    try:
        return await _expect(
            _open_raw(peer, ctx, build),
            {grpc.StatusCode.INVALID_ARGUMENT},
            {"DOCUMENT_TOO_LARGE", "DOCUMENT_TOO_COMPLEX"},
            f"presentation nested {depth} deep",
            within=FAST_REFUSAL_SECONDS,
        )
    finally:
        await peer.close()


# ------------------------------------------------------------------------------------- requests


async def case_control_characters_refused(ctx: Context) -> str:
    """NUL/control characters in contract, purpose, resource, field, subject: MALFORMED_IDENTIFIER each."""
    peer, sid = await _session(ctx)
    seen = []
    try:
        for member, bad in (
            ("contract_id", ctx.contract_id + "\x00"),
            ("purpose", PURPOSE + "\x00evil"),
            ("resource", RESOURCE + "\n"),
            ("fields", "record_id\x00"),
            ("subject", "rec-1\x1b[2J"),
        ):
            body = pb.RequestBody.FromString(ctx.request(fields=MNI).payload)
            if member == "fields":
                del body.fields[:]
                body.fields.extend(["public_code", bad])
            else:
                setattr(body, member, bad)
            signed = MinimalPeer.sign_body(ctx.ident, body)
            seen.append(
                f"{member}: "
                + await _expect(
                    peer.exchange(ctx.ident, sid, signed),
                    {grpc.StatusCode.INVALID_ARGUMENT},
                    {"MALFORMED_IDENTIFIER"},
                    f"control character in {member}",
                )
            )
        return "; ".join(s.split(" in ")[0] for s in seen)
    finally:
        await peer.close()


async def case_resource_outside_contract_refused(ctx: Context) -> str:
    """A request naming a resource the contract's purpose does not list is denied by policy."""
    peer, sid = await _session(ctx)
    try:
        signed = MinimalPeer.signed_request(
            ctx.ident,
            provider_org=ctx.target_did,
            contract_id=ctx.contract_id,
            purpose=PURPOSE,
            resource="interop-outside-the-contract",
            subject="rec-1",
            fields=MNI,
        )
        return await _expect(
            peer.exchange(ctx.ident, sid, signed),
            {grpc.StatusCode.PERMISSION_DENIED},
            {"RESOURCE_NOT_IN_CONTRACT"},
            "resource outside the contract",
        )
    finally:
        await peer.close()


async def case_id_sets_capped_in_every_spelling(ctx: Context) -> str:
    """An id set beyond ``max_ids`` is refused in every spelling: ``in``, ``not_in``, ``between``, ``ids``."""
    peer = ctx.peer()
    out = []
    try:
        sess = await peer.open_session(ctx.ident)
        for name, pred in (
            ("in", {"col": "id", "op": "in", "val": list(range(1, 21))}),
            ("not_in", {"col": "id", "op": "not_in", "val": [7]}),
            ("between", {"col": "id", "op": "between", "val": [1, 20]}),
            ("ids", {"ids": list(range(1, 21))}),
        ):
            signed = MinimalPeer.signed_request(
                ctx.ident,
                provider_org=ctx.target_did,
                contract_id=ctx.contract_id,
                purpose="conformance-stats",
                resource=STATS,
                subject="*",
                fields=[],
                aggregate={"kind": "sum", "column": "value", "predicate": pred},
            )
            got = await _expect(
                peer.exchange(ctx.ident, sess.session_id, signed),
                {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT},
                {"ID_SET_TOO_LARGE", "INVALID_PREDICATE"},
                f"id set spelled {name}",
            )
            out.append(f"{name}: {got.split(' in ')[0]}")
        return "; ".join(out)
    finally:
        await peer.close()


# --------------------------------------------------------------------------------------- ledger


async def case_anonymous_entry_tiles_refused(ctx: Context) -> str:
    """Over plain HTTP (no client certificate) the checkpoint is public but entry bundles are refused."""
    if not ctx.http:
        raise Skipped("no --http endpoint given")
    import aiohttp

    base = f"http://{ctx.http}"
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{base}/checkpoint") as r:
            if r.status != 200:
                raise CheckFailed(
                    f"GET /checkpoint answered {r.status}: is {ctx.http} the node's tile endpoint?"
                )
            size = int((await r.text()).splitlines()[1])
        if size == 0:
            raise CheckFailed("the log is empty: nothing to probe")
        path = "tile/entries/000" if size >= 256 else f"tile/entries/000.p/{size}"
        async with http.get(f"{base}/{path}") as r:
            body = await r.read()
            if r.status == 200 or b"disclosure_id" in body or b"requester_org" in body:
                raise CheckFailed(f"GET /{path} answered {r.status} with {len(body)} bytes of ledger entries")
            return f"/checkpoint public (size {size}); /{path} refused with {r.status}"


# ---------------------------------------------------------------------------------------- floods


async def _served_again(ctx: Context, *, timeout: float = 15.0) -> float:
    """Wait until the target serves the tester a challenge again; return the seconds waited."""
    t0 = time.perf_counter()
    peer = ctx.peer()
    try:
        while True:
            try:
                await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ctx.ident.agent_did), timeout=5)
                return time.perf_counter() - t0
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.perf_counter() - t0 > timeout:
                    raise CheckFailed(f"after the flood the node answers {exc.code().name}") from None
                await asyncio.sleep(0.5)
    finally:
        await peer.close()


async def _flood(ctx: Context, call, *, batch: int, limit: int, reasons: set[str]) -> tuple[int, str]:
    """Fire ``call(peer)`` in concurrent batches until RESOURCE_EXHAUSTED; (calls made, reason)."""
    peer = ctx.peer()
    made = 0
    try:
        while made < limit:
            results = await asyncio.gather(*(call(peer) for _ in range(batch)), return_exceptions=True)
            made += batch
            for res in results:
                if isinstance(res, grpc.aio.AioRpcError):
                    if res.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise CheckFailed(f"flood answered {res.code().name} ({res.details()[:100]})")
                    reason = _reason(res)
                    if reason not in reasons:
                        raise CheckFailed(
                            f"RESOURCE_EXHAUSTED with reason {reason!r}, expected {sorted(reasons)}"
                        )
                    return made, reason
                if isinstance(res, BaseException):
                    raise CheckFailed(f"flood call failed: {res!r}")
        raise CheckFailed(f"{made} calls in a burst were all served: pre-session work is unbounded")
    finally:
        await peer.close()


async def case_challenge_flood_bounded(ctx: Context) -> str:
    """A burst of GetChallenge calls ends in RESOURCE_EXHAUSTED, and the node serves again afterwards."""

    def call(peer: MinimalPeer):
        return peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ctx.ident.agent_did), timeout=10)

    made, reason = await _flood(
        ctx, call, batch=100, limit=3000, reasons={"PRESESSION_RATE_LIMITED", "CHALLENGE_LIMIT"}
    )
    waited = await _served_again(ctx)
    return f"RESOURCE_EXHAUSTED {reason} within {made} calls; served again after {waited:.1f} s"


async def case_session_flood_bounded(ctx: Context) -> str:
    """Opening sessions in a burst ends in RESOURCE_EXHAUSTED, and the node serves again afterwards."""

    def call(peer: MinimalPeer):
        return peer.open_session(ctx.ident)

    made, reason = await _flood(
        ctx,
        call,
        batch=25,
        limit=600,
        reasons={"PRESESSION_RATE_LIMITED", "CHALLENGE_LIMIT", "SESSION_LIMIT_AGENT", "SESSION_LIMIT_PEER"},
    )
    waited = await _served_again(ctx)
    return f"RESOURCE_EXHAUSTED {reason} within {made} sessions; served again after {waited:.1f} s"


# ------------------------------------------------------------------------------- signed payloads


def _relabel(signed: Any, payload_type: str) -> Any:
    return pb.SignedPayload(payload_type=payload_type, payload=signed.payload, signature=signed.signature)


async def case_cross_type_signatures_refused(ctx: Context) -> str:
    """A signature made for one message type never verifies as another (R-SIG-3, R-SIG-6)."""
    peer, sid = await _session(ctx)
    out = []
    try:
        body = pb.RequestBody.FromString(ctx.request(fields=MNI).payload)
        # the agent's signature over these bytes as a SessionPossession, presented as a RequestBody
        as_possession = sign_as(ctx.ident.agent_key, SESSION_POSSESSION, body.SerializeToString())
        got = await _expect(
            peer.exchange(ctx.ident, sid, _relabel(as_possession, REQUEST_BODY)),
            {grpc.StatusCode.UNAUTHENTICATED},
            {"BAD_AGENT_SIGNATURE"},
            "SessionPossession signature presented as a RequestBody",
        )
        out.append("possession as request: " + got.split(" in ")[0])
        signed = MinimalPeer.sign_body(ctx.ident, MinimalPeer.request_body(ctx.ident, **_fields_of(body)))
        got = await _expect(
            peer.exchange(ctx.ident, sid, signed, envelope=signed),
            {grpc.StatusCode.INVALID_ARGUMENT},
            {"WRONG_PAYLOAD_TYPE"},
            "agent's RequestBody presented as the envelope",
        )
        out.append("request as envelope: " + got.split(" in ")[0])
        env = MinimalPeer.envelope(ctx.ident, sid, signed).SerializeToString()
        org_as_request = sign_as(ctx.ident.org_key, REQUEST_BODY, env)
        got = await _expect(
            peer.exchange(ctx.ident, sid, signed, envelope=_relabel(org_as_request, EXCHANGE_ENVELOPE)),
            {grpc.StatusCode.UNAUTHENTICATED},
            {"BAD_ORG_SIGNATURE"},
            "organization's RequestBody signature relabeled as an envelope",
        )
        out.append("org request-signature as envelope: " + got.split(" in ")[0])
        return "; ".join(out)
    finally:
        await peer.close()


def _fields_of(body: Any) -> dict[str, Any]:
    return {
        "provider_org": body.provider_org,
        "contract_id": body.contract_id,
        "purpose": body.purpose,
        "resource": body.resource,
        "subject": body.subject,
        "fields": list(body.fields),
    }


async def case_signed_payload_hygiene(ctx: Context) -> str:
    """Other version, unparseable bytes, unknown field: each refused precisely (R-SIG-2, R-SIG-4, R-SIG-5)."""
    peer, sid = await _session(ctx)
    out = []
    try:
        body = pb.RequestBody.FromString(ctx.request(fields=MNI).payload).SerializeToString()
        for what, signed, code, reason in (
            (
                "v2 RequestBody",
                sign_as(ctx.ident.agent_key, REQUEST_BODY.replace(".v1.", ".v2."), body),
                grpc.StatusCode.FAILED_PRECONDITION,
                "UNSUPPORTED_VERSION",
            ),
            (
                "unparseable signed bytes",
                sign_as(ctx.ident.agent_key, REQUEST_BODY, b"\x0a\xff\xff\xff"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "MALFORMED_PAYLOAD",
            ),
            (
                "unknown field 111",
                sign_as(ctx.ident.agent_key, REQUEST_BODY, body + b"\xf8\x06\x01"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "UNKNOWN_FIELD",
            ),
        ):
            got = await _expect(peer.exchange(ctx.ident, sid, signed), {code}, {reason}, what)
            out.append(f"{what}: " + got.split(" in ")[0])
        return "; ".join(out)
    finally:
        await peer.close()


async def case_bytes_verified_as_sent(ctx: Context) -> str:
    """A valid non-canonical encoding (fields in reverse order) is verified as sent, answered (R-SIG-7)."""
    peer, sid = await _session(ctx)
    try:
        body = pb.RequestBody.FromString(ctx.request(fields=MNI).payload)
        parts = []
        for fd, value in body.ListFields():
            one = pb.RequestBody()
            if fd.is_repeated:
                getattr(one, fd.name).extend(value)
            else:
                setattr(one, fd.name, value)
            parts.append(one.SerializeToString())
        payload = b"".join(reversed(parts))
        r = await peer.exchange(ctx.ident, sid, sign_as(ctx.ident.agent_key, REQUEST_BODY, payload))
        if r.outcome.decision != "allow":
            raise CheckFailed(f"non-canonical encoding: decision {r.outcome.decision!r}, expected allow")
        return f"allow, {len(payload)} bytes in reverse field order"
    finally:
        await peer.close()


SECURITY_CASES: list[tuple[str, Case]] = [
    ("sessions do not raise trust", case_sessions_do_not_raise_trust),
    ("field above trust withheld", case_high_trust_field_withheld),
    ("purpose beyond the agent's scopes refused", case_purpose_beyond_scopes_refused),
    ("inline @context refused", case_inline_context_refused),
    ("oversized presentation refused fast", case_oversized_presentation_refused),
    ("deeply nested presentation refused fast", case_deep_presentation_refused),
    ("control characters in identifiers", case_control_characters_refused),
    ("resource outside the contract", case_resource_outside_contract_refused),
    ("id sets capped in every spelling", case_id_sets_capped_in_every_spelling),
    ("cross-type signatures refused", case_cross_type_signatures_refused),
    ("signed payload hygiene", case_signed_payload_hygiene),
    ("signed bytes verified as sent", case_bytes_verified_as_sent),
    ("anonymous entry tiles refused", case_anonymous_entry_tiles_refused),
    ("session flood bounded", case_session_flood_bounded),
    ("challenge flood bounded", case_challenge_flood_bounded),
]
