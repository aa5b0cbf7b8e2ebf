"""Conformance cases: each connects to the node under test as a peer would.

A case is an async function ``(ctx) -> str`` that returns a short detail on
success and raises :class:`interop_tests.checkers.CheckFailed` (or any
error) on failure. ``CASES`` lists them in run order.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from interop_tests.checkers import CheckFailed, verify_tlog_proof
from interop_tests.peer import InteropIdentity, MinimalPeer

MNI = ["record_id", "public_code"]
BEYOND = ["secret_note", "internal_score"]
RESOURCE = "interop-records"
PURPOSE = "conformance"


@dataclass
class Context:
    """What every case gets.

    Attributes:
        target: ``HOST:PORT``.
        bundle: the target's peer bundle (JSON object).
        ident: the tester identity.
        contract_id: the interop contract at the target.
        http: ``HOST:PORT`` of the target's C2SP tlog-tiles HTTP endpoint ("" = unknown).

    """

    target: str
    bundle: dict[str, Any]
    ident: InteropIdentity
    contract_id: str
    http: str = ""

    @property
    def target_did(self) -> str:  # noqa: D102
        return self.bundle["org_did"]

    def peer(self, *, cert_pem: bytes | None = None, key_pem: bytes | None = None) -> MinimalPeer:
        """A peer connection (optionally with another client certificate)."""
        return MinimalPeer(
            target=self.target,
            target_ca_pem=self.bundle["ca_certificate_pem"].encode(),
            cert_pem=cert_pem or self.ident.cert_pem,
            key_pem=key_pem or self.ident.key_pem,
        )

    def request(
        self,
        *,
        fields: list[str],
        purpose: str = PURPOSE,
        contract_id: str | None = None,
        subject: str = "rec-1",
    ):
        """A signed request to the target."""
        return MinimalPeer.signed_request(
            self.ident,
            provider_org=self.target_did,
            contract_id=contract_id or self.contract_id,
            purpose=purpose,
            resource=RESOURCE,
            subject=subject,
            fields=fields,
        )


def _reason(exc: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(exc)
    if status is None:
        return ""
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info.reason
    return ""


async def _expect_error(
    coro: Awaitable[Any], codes: set[grpc.StatusCode], what: str
) -> tuple[grpc.StatusCode, str]:
    try:
        await coro
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in codes:
            raise CheckFailed(
                f"{what}: expected {sorted(c.name for c in codes)}, got {exc.code().name} ({exc.details()})"
            ) from None
        return exc.code(), _reason(exc)
    raise CheckFailed(f"{what}: expected a refusal, the node accepted")


async def case_handshake(ctx: Context) -> str:
    """GetNodeInfo matches the bundle and advertises what v1 needs (R-NEG-1); a bound VP opens a session."""
    peer = ctx.peer()
    try:
        info = await peer.node_info()
        if info.org_did != ctx.target_did or info.ledger_vkey != ctx.bundle["ledger_vkey"]:
            raise CheckFailed(f"node info {info.org_did}/{info.ledger_vkey} differs from the bundle")
        missing = [
            what
            for what, ok in (
                ("protocol version accord.federation.v1", "accord.federation.v1" in info.protocol_versions),
                ("signature algorithm ed25519", "ed25519" in info.signature_algorithms),
                (
                    "an EdDSA cryptosuite",
                    bool({"eddsa-rdfc-2022", "eddsa-jcs-2022"} & set(info.cryptosuites)),
                ),
                (
                    "every ledger format",
                    {"c2sp-tlog-checkpoint", "c2sp-tlog-proof", "rfc9162-sha256"} <= set(info.ledger_formats),
                ),
            )
            if not ok
        ]
        if missing:
            raise CheckFailed(f"node info does not advertise {', '.join(missing)} (spec §5)")
        sess = await peer.open_session(ctx.ident)
        if not sess.session_id:
            raise CheckFailed("empty session id")
        return f"session {sess.session_id[:8]}…, τ={sess.effective_trust:.2f}"
    finally:
        await peer.close()


async def case_unknown_peer_refused(ctx: Context) -> str:
    """A certificate of an organization not in the registry is refused (UNAUTHENTICATED).

    The stranger's certificate is issued by the tester's own CA (which the
    target trusts at the TLS layer) with the SAN URI of an unregistered DID,
    so the refusal must come from the node's peer registry check.
    """
    from federation.tls import issue_client_certificate

    cert, key = issue_client_certificate(
        ca_pem=ctx.ident.ca_pem,
        ca_key_pem=ctx.ident.ca_key_pem,
        san="did:web:stranger.accord.test",
        common_name="stranger",
    )
    peer = ctx.peer(cert_pem=cert, key_pem=key)
    try:
        code, reason = await _expect_error(
            peer.node_info(), {grpc.StatusCode.UNAUTHENTICATED}, "unregistered peer"
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_foreign_ca_refused(ctx: Context) -> str:
    """A certificate claiming the tester's DID but issued by another CA is refused."""
    from federation.tls import mint_tls_material

    other = mint_tls_material(org_name="impostor", org_did=ctx.ident.org_did)
    peer = ctx.peer(cert_pem=other.cert_pem, key_pem=other.key_pem)
    try:
        code, reason = await _expect_error(
            peer.node_info(),
            {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE},
            "certificate from a foreign CA",
        )
        return f"{code.name} {reason or '(TLS handshake refused)'}"
    finally:
        await peer.close()


async def case_tampered_credential_refused(ctx: Context) -> str:
    """A VP holding a credential whose claims were altered is refused (UNAUTHENTICATED)."""
    cred = copy.deepcopy(ctx.ident.agent["credential"])
    cred["credentialSubject"]["scopes"] = list(cred["credentialSubject"].get("scopes", [])) + [
        "interop:admin"
    ]
    peer = ctx.peer()
    try:
        code, reason = await _expect_error(
            peer.open_session(ctx.ident, credential=cred),
            {grpc.StatusCode.UNAUTHENTICATED},
            "tampered credential",
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_wrong_domain_refused(ctx: Context) -> str:
    """A VP bound to another verifier's DID is refused."""
    peer = ctx.peer()
    try:
        code, reason = await _expect_error(
            peer.open_session(ctx.ident, domain="did:web:someone-else.accord.test"),
            {grpc.StatusCode.UNAUTHENTICATED},
            "VP with the wrong domain",
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def _session(ctx: Context) -> tuple[MinimalPeer, str]:
    peer = ctx.peer()
    sess = await peer.open_session(ctx.ident)
    return peer, sess.session_id


async def case_contract_allow(ctx: Context) -> str:
    """An MNI request under the interop contract is allowed and carries exactly those fields."""
    peer, sid = await _session(ctx)
    try:
        r = await peer.exchange(ctx.ident, sid, ctx.request(fields=MNI))
        o = r.outcome
        records = json.loads(o.payload_json)
        if o.decision != "allow" or sorted(o.released_fields) != sorted(MNI):
            raise CheckFailed(f"expected allow of {MNI}, got {o.decision} {list(o.released_fields)}")
        if not records or any(set(rec) != set(MNI) for rec in records):
            raise CheckFailed(f"payload fields differ from {MNI}: {records}")
        return f"{len(records)} record(s), fields {sorted(MNI)}"
    finally:
        await peer.close()


async def case_contract_deny(ctx: Context) -> str:
    """A purpose requiring a scope the agent lacks is denied (PERMISSION_DENIED, MISSING_SCOPE)."""
    peer, sid = await _session(ctx)
    try:
        code, reason = await _expect_error(
            peer.exchange(ctx.ident, sid, ctx.request(fields=["record_id"], purpose="restricted")),
            {grpc.StatusCode.PERMISSION_DENIED},
            "request without the required scope",
        )
        if reason != "MISSING_SCOPE":
            raise CheckFailed(f"expected reason MISSING_SCOPE, got {reason!r}")
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_unknown_contract(ctx: Context) -> str:
    """A request naming no contract in force is refused (NOT_FOUND, UNKNOWN_CONTRACT)."""
    peer, sid = await _session(ctx)
    try:
        code, reason = await _expect_error(
            peer.exchange(ctx.ident, sid, ctx.request(fields=MNI, contract_id="no-such-contract")),
            {grpc.StatusCode.NOT_FOUND},
            "unknown contract",
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_mni_redaction(ctx: Context) -> str:
    """Fields beyond the MNI are stripped by the gate even though the source has them."""
    peer, sid = await _session(ctx)
    try:
        r = await peer.exchange(ctx.ident, sid, ctx.request(fields=MNI + BEYOND))
        o = r.outcome
        records = json.loads(o.payload_json)
        leaked = {k for rec in records for k in rec} - set(MNI)
        if leaked:
            raise CheckFailed(f"fields beyond MNI were released: {sorted(leaked)}")
        if set(o.released_fields) - set(MNI):
            raise CheckFailed(f"released_fields go beyond MNI: {list(o.released_fields)}")
        if not set(BEYOND) <= set(o.stripped_fields):
            raise CheckFailed(f"stripped_fields {list(o.stripped_fields)} do not name {BEYOND}")
        return f"released {sorted(o.released_fields)}, stripped {sorted(o.stripped_fields)}"
    finally:
        await peer.close()


async def case_receipt_present(ctx: Context) -> str:
    """The receipt is a C2SP tlog-proof that verifies offline (RFC 9162 inclusion, signed checkpoint)."""
    peer, sid = await _session(ctx)
    try:
        r = await peer.exchange(ctx.ident, sid, ctx.request(fields=MNI, subject="rec-2"))
        rc = r.outcome.receipt
        if not rc.tlog_proof:
            raise CheckFailed("no receipt")
        cp = verify_tlog_proof(
            rc.tlog_proof, entry=rc.entry, vkey=ctx.bundle["ledger_vkey"], origin=ctx.bundle["ledger_origin"]
        )
        entry = json.loads(rc.entry)
        if entry.get("disclosure_id") != r.outcome.disclosure_id:
            raise CheckFailed("the logged entry is not this disclosure")
        values = json.dumps(json.loads(r.outcome.payload_json))
        if "P002" in json.dumps(entry) and "P002" in values:
            raise CheckFailed("a released value appears in the ledger entry")
        return f"leaf {rc.leaf_index} in tree of size {cp.size}"
    finally:
        await peer.close()


async def case_replay_refused(ctx: Context) -> str:
    """The same signed envelope sent twice is refused the second time."""
    peer, sid = await _session(ctx)
    try:
        signed = ctx.request(fields=MNI)
        await peer.exchange(ctx.ident, sid, signed)
        code, reason = await _expect_error(
            peer.exchange(ctx.ident, sid, signed), {grpc.StatusCode.UNAUTHENTICATED}, "replayed request"
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_bad_agent_signature(ctx: Context) -> str:
    """A request whose agent signature does not verify is refused."""
    peer, sid = await _session(ctx)
    try:
        signed = ctx.request(fields=MNI)
        signed.signature = bytes(64)
        code, reason = await _expect_error(
            peer.exchange(ctx.ident, sid, signed), {grpc.StatusCode.UNAUTHENTICATED}, "bad agent signature"
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_malformed_request(ctx: Context) -> str:
    """A request with no fields is INVALID_ARGUMENT."""
    peer, sid = await _session(ctx)
    try:
        code, reason = await _expect_error(
            peer.exchange(ctx.ident, sid, ctx.request(fields=[])),
            {grpc.StatusCode.INVALID_ARGUMENT},
            "request without fields",
        )
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def _refused_presentation(
    ctx: Context, ident: InteropIdentity, credential: dict[str, Any] | None, want: str
) -> str:
    peer = ctx.peer()
    try:
        code, reason = await _expect_error(
            peer.open_session(ident, credential=credential),
            {grpc.StatusCode.UNAUTHENTICATED},
            f"{want.lower()} credential",
        )
        if reason != want:
            raise CheckFailed(f"expected reason {want}, got {reason!r}")
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_revoked_refused(ctx: Context) -> str:
    """A credential whose revocation bit is set in the issuer's status list is refused (REVOKED)."""
    return await _refused_presentation(ctx, ctx.ident.other("tester-revoked"), None, "REVOKED")


async def case_suspended_refused(ctx: Context) -> str:
    """A credential whose suspension bit is set is refused (SUSPENDED)."""
    return await _refused_presentation(ctx, ctx.ident.other("tester-suspended"), None, "SUSPENDED")


async def case_expired_refused(ctx: Context) -> str:
    """A credential past its validUntil is refused (EXPIRED)."""
    from credentials import issue_credential

    cred = copy.deepcopy(ctx.ident.agent["credential"])
    cred.pop("proof", None)
    cred["validFrom"] = "2020-01-01T00:00:00Z"
    cred["validUntil"] = "2020-01-02T00:00:00Z"
    signed = issue_credential(cred, key=ctx.ident.org_key, verification_method=f"{ctx.ident.org_did}#key-1")
    return await _refused_presentation(ctx, ctx.ident, signed, "EXPIRED")


async def case_unsigned_contract_refused(ctx: Context) -> str:
    """A contract the requester never signed is not in force (FAILED_PRECONDITION, CONTRACT_UNSIGNED)."""
    peer, sid = await _session(ctx)
    try:
        code, reason = await _expect_error(
            peer.exchange(
                ctx.ident,
                sid,
                ctx.request(fields=MNI, contract_id=f"interop-unsigned-{ctx.bundle['org_name']}"),
            ),
            {grpc.StatusCode.FAILED_PRECONDITION},
            "request under a contract signed by one party only",
        )
        if reason != "CONTRACT_UNSIGNED":
            raise CheckFailed(f"expected CONTRACT_UNSIGNED, got {reason!r}")
        return f"{code.name} {reason}"
    finally:
        await peer.close()


async def case_budget_falls_back_to_mni(ctx: Context) -> str:
    """When the trust budget is spent, optional fields stop and only the MNI is released."""
    peer, sid = await _session(ctx)
    try:
        released_optional = 0
        for _ in range(6):
            r = await peer.exchange(
                ctx.ident, sid, ctx.request(fields=["record_id", "region"], purpose="conformance-budget")
            )
            o = r.outcome
            if "record_id" not in o.released_fields:
                raise CheckFailed(f"MNI field record_id not released: {list(o.released_fields)}")
            if "region" in o.released_fields:
                released_optional += 1
                continue
            if "TRUST_BUDGET_EXHAUSTED" not in o.reasons:
                raise CheckFailed(
                    f"optional field withheld without TRUST_BUDGET_EXHAUSTED: {list(o.reasons)}"
                )
            if any(set(rec) - {"record_id"} for rec in json.loads(o.payload_json)):
                raise CheckFailed("payload carries more than the MNI after exhaustion")
            return f"optional field released {released_optional}×, then MNI only (TRUST_BUDGET_EXHAUSTED)"
        raise CheckFailed("the optional field was still released after 6 requests on a 2-unit budget")
    finally:
        await peer.close()


async def case_peer_checkpoint_consistency(ctx: Context) -> str:
    """Two checkpoints of the target's log, before and after a disclosure, are consistent (RFC 9162)."""
    from federation.pb import federation_pb2 as pb
    from interop_tests.checkers import parse_checkpoint, rfc9162_verify_consistency, verify_signed_note

    peer, sid = await _session(ctx)
    try:

        async def checkpoint():
            r = await peer.stub.GetCheckpoint(pb.GetCheckpointRequest(), timeout=10)
            return parse_checkpoint(verify_signed_note(r.signed_checkpoint, ctx.bundle["ledger_vkey"]))

        c1 = await checkpoint()
        await peer.exchange(ctx.ident, sid, ctx.request(fields=MNI, subject="rec-3"))
        c2 = await checkpoint()
        if c2.size <= c1.size:
            raise CheckFailed(f"checkpoint did not grow after a disclosure ({c1.size} -> {c2.size})")
        r = await peer.stub.GetConsistencyProof(
            pb.GetConsistencyProofRequest(size1=c1.size, size2=c2.size), timeout=10
        )
        rfc9162_verify_consistency(
            size1=c1.size, size2=c2.size, root1=c1.root, root2=c2.root, proof=list(r.hashes)
        )
        return f"{c1.size} -> {c2.size}, {len(r.hashes)} hashes"
    finally:
        await peer.close()


class _TesterLog:
    """The tester's own deterministic little log, for witnessing cases."""

    def __init__(self, ctx: Context) -> None:
        import tomllib

        from federation.identity import ledger_origin
        from ledger import NoteSigner

        seed = bytes.fromhex((ctx.ident.directory / "keys" / "ledger.seed").read_text().strip())
        org = tomllib.loads((ctx.ident.directory / "node.toml").read_text())["org_name"]
        self.origin = ledger_origin(org)  # the tester's own log, as its pinned bundle names it
        self.signer = NoteSigner(self.origin, seed)

    @staticmethod
    def leaves(n: int, variant: str = "") -> list[bytes]:
        from interop_tests.checkers import rfc9162_leaf_hash

        return [
            rfc9162_leaf_hash(f"interop-entry-{i}{variant if i == n - 1 else ''}".encode()) for i in range(n)
        ]

    def note(self, n: int, variant: str = "") -> str:
        import base64 as b64

        from interop_tests.checkers import mth

        root = mth(self.leaves(n, variant))
        return self.signer.sign(f"{self.origin}\n{n}\n{b64.b64encode(root).decode()}\n")

    def body(self, old: int, n: int, variant: str = "") -> bytes:
        import base64 as b64

        from interop_tests.checkers import consistency_proof

        proof = consistency_proof(old, self.leaves(n, variant)) if old else []
        lines = [f"old {old}"] + [b64.b64encode(h).decode() for h in proof]
        return ("\n".join(lines) + "\n\n" + self.note(n, variant)).encode()


async def _add_checkpoint(ctx: Context, body: bytes) -> tuple[int, bytes]:
    from federation.pb import federation_pb2 as pb

    peer = ctx.peer()
    try:
        r = await peer.stub.AddCheckpoint(pb.AddCheckpointRequest(body=body), timeout=10)
        return r.status, r.body
    finally:
        await peer.close()


async def _witnessed_size(ctx: Context, log: _TesterLog) -> int:
    status, body = await _add_checkpoint(ctx, log.body(0, 1))
    if status == 200:
        return 1
    if status != 409:
        raise CheckFailed(f"add-checkpoint with old 0 answered {status}: {body[:200]!r}")
    return int(body.decode().strip())


async def case_witness_cosigns_and_refuses_rollback(ctx: Context) -> str:
    """The target witnesses the tester's log: it cosigns growth and refuses a rollback (C2SP tlog-witness)."""
    log = _TesterLog(ctx)
    size = await _witnessed_size(ctx, log)
    status, body = await _add_checkpoint(ctx, log.body(size, size + 2))
    if status != 200 or not body.decode().startswith("\u2014 "):
        raise CheckFailed(f"growth {size} -> {size + 2} answered {status}: {body[:200]!r}")
    status, body = await _add_checkpoint(ctx, log.body(size + 2, size + 1))
    if status not in (400, 409):
        raise CheckFailed(f"rollback to {size + 1} answered {status}, expected a refusal")
    return f"cosigned {size} -> {size + 2}; rollback to {size + 1} refused with {status}"


async def case_equivocation_detected(ctx: Context) -> str:
    """A second, different checkpoint at the size the witness holds is refused as a split view."""
    log = _TesterLog(ctx)
    size = await _witnessed_size(ctx, log)
    if size < 2:
        status, _ = await _add_checkpoint(ctx, log.body(size, 2))
        size = 2
    status, body = await _add_checkpoint(ctx, log.body(size, size, variant="-forked"))
    if status not in (409, 422):
        raise CheckFailed(f"forked checkpoint at size {size} answered {status}, expected 409/422")
    return f"fork at size {size} refused with {status}"


STATS = "interop-stats"


async def _aggregate(ctx: Context, ident: InteropIdentity, kind: str, predicate: dict[str, Any]) -> Any:
    peer = ctx.peer()
    try:
        sess = await peer.open_session(ident)
        signed = MinimalPeer.signed_request(
            ident,
            provider_org=ctx.target_did,
            contract_id=ctx.contract_id,
            purpose="conformance-stats",
            resource=STATS,
            subject="*",
            fields=[],
            aggregate={"kind": kind, "column": "value", "predicate": predicate},
        )
        r = await peer.exchange(ident, sess.session_id, signed)
        return json.loads(r.outcome.payload_json)[0]
    finally:
        await peer.close()


NORTH = {"col": "district", "op": "==", "val": "north"}
SOUTH = {"col": "district", "op": "==", "val": "south"}


async def case_benign_aggregate(ctx: Context) -> str:
    """An ordinary statistic (SUM over all records) is answered with the right value."""
    ans = await _aggregate(ctx, ctx.ident, "sum", {})
    want = sum((i * 37) % 101 for i in range(1, 21))
    if ans.get("value") != want or ans.get("records") != 20:
        raise CheckFailed(f"expected sum {want} over 20 records, got {ans}")
    return f"sum = {ans['value']} over {ans['records']} records"


async def case_differencing_denied(ctx: Context) -> str:
    """SUM(north) then SUM(north minus the one record with unit x) is refused (RECONSTRUCTION_RISK)."""
    await _aggregate(ctx, ctx.ident, "sum", NORTH)
    attack = {"and": [NORTH, {"col": "unit", "op": "!=", "val": "x"}]}
    code, reason = await _expect_error(
        _aggregate(ctx, ctx.ident, "sum", attack), {grpc.StatusCode.PERMISSION_DENIED}, "differencing attack"
    )
    if reason != "RECONSTRUCTION_RISK":
        raise CheckFailed(f"expected RECONSTRUCTION_RISK, got {reason!r}")
    return f"{code.name} {reason}"


async def case_split_attack_denied(ctx: Context) -> str:
    """The same attack split across two agents of one organization is refused under the org scope."""
    await _aggregate(ctx, ctx.ident, "sum", SOUTH)
    attack = {"and": [SOUTH, {"col": "unit", "op": "!=", "val": "y"}]}
    code, reason = await _expect_error(
        _aggregate(ctx, ctx.ident.other("tester-2"), "sum", attack),
        {grpc.StatusCode.PERMISSION_DENIED},
        "attack split across agents",
    )
    if reason != "RECONSTRUCTION_RISK":
        raise CheckFailed(f"expected RECONSTRUCTION_RISK, got {reason!r}")
    return f"{code.name} {reason}"


Case = Callable[[Context], Awaitable[str]]
CASES: list[tuple[str, Case]] = [
    ("handshake", case_handshake),
    ("refused unknown peer", case_unknown_peer_refused),
    ("refused foreign CA", case_foreign_ca_refused),
    ("refused tampered credential", case_tampered_credential_refused),
    ("refused wrong domain", case_wrong_domain_refused),
    ("refused revoked credential", case_revoked_refused),
    ("refused suspended credential", case_suspended_refused),
    ("refused expired credential", case_expired_refused),
    ("contract allow", case_contract_allow),
    ("contract deny", case_contract_deny),
    ("unknown contract", case_unknown_contract),
    ("MNI redaction", case_mni_redaction),
    ("unsigned contract refused", case_unsigned_contract_refused),
    ("budget exhaustion falls back to MNI", case_budget_falls_back_to_mni),
    ("receipt present", case_receipt_present),
    ("peer checkpoints consistent", case_peer_checkpoint_consistency),
    ("witness refuses a rollback", case_witness_cosigns_and_refuses_rollback),
    ("equivocation detected", case_equivocation_detected),
    ("replay refused", case_replay_refused),
    ("bad agent signature", case_bad_agent_signature),
    ("malformed request", case_malformed_request),
    ("benign aggregate answered", case_benign_aggregate),
    ("differencing attack denied", case_differencing_denied),
    ("split attack denied (org scope)", case_split_attack_denied),
]
