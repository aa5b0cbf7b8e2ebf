"""Requester-role cases: the suite plays the provider, the node under test asks.

``accord interop run --role requester`` (docs/operator-guide.md, "Conformance
kit"). The tester organizations (personas) serve ``FederationService``
(:mod:`interop_tests.provider`) on the endpoints the node has pinned; a
tester agent registered at the node (``accord interop enroll``) makes the
node ask, through a :class:`Driver`:

* :class:`AgentDriver` speaks the node's ``AgentService`` (any implementation
  that serves it): ``BeginSession``, ``OpenSession`` with a proof of
  possession and a presentation, ``SendRequest``; it reads what the node
  recorded through ``FederationService.QueryEntries``, as the persona the
  entry is about (a peer sees the entries about its own crossings).
* Other drivers (the TypeScript requester's command line,
  ``tests/nodes/test_ts_requester.py``) implement :meth:`Driver.ask` and
  :meth:`Driver.received` only; the cases that need an agent's raw calls are
  skipped for them.

Each case is named by the requirement it checks (docs/spec/accord-v1.md §9)
and returns a short detail or raises :class:`interop_tests.checkers.CheckFailed`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from interop_tests.checkers import CheckFailed, rfc9162_leaf_hash
from interop_tests.peer import REQUEST_BODY, SESSION_POSSESSION, MinimalPeer, sign_as
from interop_tests.provider import SPEAKS, TesterProvider
from interop_tests.security import Skipped

TESTER = "interop"
FORK = "interop-fork"
ALIEN = "interop-alien"
FIELDS = ["record_id", "public_code"]


@dataclass
class Asked:
    """What the node answered its agent for one request.

    Attributes:
        ok: the node passed an outcome on.
        outcome: that outcome (``ok``), else None.
        received_leaf_index: the node's "received" entry (or ``metadata.received_leaf_index``), or None.
        receipt_verified: as the node says (answer or metadata), or None.
        code: gRPC status name of a refusal ("" when ``ok``).
        reason / metadata: the refusal's ErrorInfo.
        sent: the agent's ``SignedPayload`` as it sent it (None when no request was sent).
        session_id: the session the node opened for the agent.

    """

    ok: bool
    outcome: Any = None
    received_leaf_index: int | None = None
    receipt_verified: bool | None = None
    code: str = ""
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    sent: pb.SignedPayload | None = None
    session_id: str = ""

    def describe(self) -> str:
        """One line: the answer or the refusal."""
        if self.ok:
            return f"passed on (receipt_verified={self.receipt_verified})"
        return f"{self.code} {self.reason} {dict(sorted(self.metadata.items()))}"[:300]


class Driver(Protocol):
    """How a case makes the node under test ask a persona, and reads what it recorded."""

    async def ask(self, peer: str, *, fields: list[str], purpose: str = "conformance") -> Asked:
        """The node's agent asks ``peer`` (a persona name) for ``fields``; the node's answer."""
        ...

    async def received(self, index: int, *, peer: str) -> dict[str, Any] | None:
        """The node's own ledger entry at ``index`` (its "received" entry about ``peer``), or None."""
        ...


def error_info(exc: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    """(reason, metadata) of a refusal's ``google.rpc.ErrorInfo`` (``("", {})`` without one)."""
    status = rpc_status.from_call(exc)
    for d in status.details if status is not None else ():
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info.reason, dict(info.metadata)
    return "", {}


def _refused(exc: grpc.aio.AioRpcError, sent: pb.SignedPayload | None = None, sid: str = "") -> Asked:
    reason, meta = error_info(exc)
    index = meta.get("received_leaf_index", "")
    verified = meta.get("receipt_verified")
    return Asked(
        ok=False,
        code=exc.code().name,
        reason=reason,
        metadata=meta,
        received_leaf_index=int(index) if index.isdigit() else None,
        receipt_verified=None if verified is None else verified == "true",
        sent=sent,
        session_id=sid,
    )


class AgentDriver:
    """The tester agent at the node under test, over ``AgentService`` (mTLS with its wallet's certificate).

    Args:
        target: ``HOST:PORT`` of the node.
        wallet: the agent wallet ``accord interop enroll`` copied (JSON object: ``did``,
            ``secretKeyMultibase``, ``credential``, ``tls_cert_pem``, ``tls_key_pem``, ``ca_pem``).
        node_bundle: the node's peer bundle.
        personas: persona name -> its node directory (TLS material to read the node's entries).

    """

    def __init__(
        self, *, target: str, wallet: dict[str, Any], node_bundle: dict[str, Any], personas: dict[str, Path]
    ) -> None:
        from credentials import Ed25519KeyPair

        self.target = target
        self.wallet = wallet
        self.did: str = wallet["did"]
        self.key = Ed25519KeyPair.from_multibase(wallet["secretKeyMultibase"])
        self.node_bundle = node_bundle
        self.personas = personas
        creds = grpc.ssl_channel_credentials(
            root_certificates=node_bundle["ca_certificate_pem"].encode(),
            private_key=wallet["tls_key_pem"].encode(),
            certificate_chain=wallet["tls_cert_pem"].encode(),
        )
        self.channel = grpc.aio.secure_channel(target, creds)
        self.stub = pbg.AgentServiceStub(self.channel)
        #: this run's purpose: ``QueryEntries`` (index order, at most 1,000) filters the node's
        #: received entries by it, so earlier runs' entries never crowd this run's out
        self.purpose = f"conformance-run-{secrets.token_hex(4)}"

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()

    # ---------------------------------------------------------------- raw agent calls

    async def begin(self, peer: str) -> pb.BeginSessionResponse:
        """``BeginSession`` with ``peer``."""
        return await self.stub.BeginSession(pb.BeginSessionRequest(agent_did=self.did, peer=peer), timeout=30)

    def possession(self, begun: pb.BeginSessionResponse, **override: str) -> pb.SignedPayload:
        """The agent's signed ``SessionPossession`` for ``begun`` (members overridable)."""
        msg = pb.SessionPossession(
            agent_did=override.get("agent_did", self.did),
            challenge=override.get("challenge", begun.local_challenge),
            peer_org=override.get("peer_org", begun.peer_org),
        )
        return sign_as(self.key, SESSION_POSSESSION, msg.SerializeToString())

    def presentation(self, begun: pb.BeginSessionResponse) -> bytes:
        """The agent's VP bound to the provider's challenge and domain (spec §7.1)."""
        from credentials import create_presentation, verification_method_id

        vp = create_presentation(
            [self.wallet["credential"]],
            holder=self.did,
            key=self.key,
            verification_method=verification_method_id(self.did),
            challenge=begun.peer_challenge,
            domain=begun.peer_domain,
        )
        return json.dumps(vp).encode()

    async def open(
        self, begun: pb.BeginSessionResponse, *, possession: pb.SignedPayload | None = None
    ) -> pb.AgentOpenSessionResponse:
        """``OpenSession`` (agent side) with a proof of possession and the VP."""
        return await self.stub.OpenSession(
            pb.AgentOpenSessionRequest(
                agent_did=self.did,
                peer_org=begun.peer_org,
                possession=possession or self.possession(begun),
                presentation_json=self.presentation(begun),
            ),
            timeout=30,
        )

    def body(self, peer_org: str, *, fields: list[str], purpose: str = "") -> pb.RequestBody:
        """A fresh ``RequestBody`` of this agent to ``peer_org`` (``purpose`` default: this run's)."""
        return pb.RequestBody(
            contract_id=f"interop-{self.node_bundle['org_name']}",
            purpose=purpose or self.purpose,
            resource="interop-records",
            subject="rec-1",
            fields=fields,
            provider_org=peer_org,
            agent_did=self.did,
            nonce=base64.urlsafe_b64encode(secrets.token_bytes(18)).decode(),
            timestamp_ms=int(time.time() * 1000),
        )

    def sign(self, payload: bytes, payload_type: str = REQUEST_BODY) -> pb.SignedPayload:
        """``payload`` signed by the agent under ``payload_type``."""
        return sign_as(self.key, payload_type, payload)

    async def send(self, session_id: str, signed: pb.SignedPayload, *, wrapper_extra: bytes = b"") -> Any:
        """``SendRequest``; ``wrapper_extra`` is appended to the ``SignedPayload`` encoding."""
        req = pb.SendRequestRequest(session_id=session_id)
        req.request.MergeFromString(signed.SerializeToString() + wrapper_extra)
        return await self.stub.SendRequest(req, timeout=30)

    async def session(self, peer: str) -> tuple[str, str]:
        """(session id, peer DID): ``BeginSession`` then ``OpenSession``."""
        begun = await self.begin(peer)
        opened = await self.open(begun)
        return opened.session_id, begun.peer_org

    # ---------------------------------------------------------------- the Driver protocol

    async def ask(
        self,
        peer: str,
        *,
        fields: list[str],
        purpose: str = "",
        signed: Callable[[str], pb.SignedPayload] | None = None,
        wrapper_extra: bytes = b"",
    ) -> Asked:
        """Open a session with ``peer`` and send one request (``signed(peer_did)`` builds it when given)."""
        sid = ""
        sent = None
        try:
            sid, peer_did = await self.session(peer)
            sent = (
                signed(peer_did)
                if signed
                else self.sign(self.body(peer_did, fields=fields, purpose=purpose).SerializeToString())
            )
            r = await self.send(sid, sent, wrapper_extra=wrapper_extra)
        except grpc.aio.AioRpcError as exc:
            return _refused(exc, sent, sid)
        return Asked(
            ok=True,
            outcome=r.outcome,
            received_leaf_index=r.received_leaf_index,
            receipt_verified=r.receipt_verified,
            sent=sent,
            session_id=sid,
        )

    async def received(self, index: int, *, peer: str, timeout: float = 20.0) -> dict[str, Any] | None:
        """The node's entry at ``index``, read with ``QueryEntries`` as ``peer`` (polled)."""
        pdir = self.personas[peer]
        reader = MinimalPeer(
            target=self.target,
            target_ca_pem=self.node_bundle["ca_certificate_pem"].encode(),
            cert_pem=(pdir / "tls" / "node.pem").read_bytes(),
            key_pem=(pdir / "tls" / "node.key").read_bytes(),
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                r = await reader.stub.QueryEntries(
                    pb.QueryEntriesRequest(kind="received", purpose=self.purpose, limit=1000), timeout=10
                )
                for e in r.entries:
                    if e.leaf_index == index:
                        return json.loads(e.entry)
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(0.5)
        finally:
            await reader.close()


@dataclass
class RequesterContext:
    """What every requester-role case gets.

    Attributes:
        driver: how the node is made to ask (:class:`AgentDriver`, or another :class:`Driver`).
        providers: persona name -> its running :class:`TesterProvider`.
        restart: ``await restart(name, cert_pem, key_pem)`` serves persona ``name`` again with
            another server certificate (``None``, ``None``: its own); R-TRN-4.
        node_bundle: the node's peer bundle.

    """

    driver: Any
    providers: dict[str, TesterProvider]
    restart: Callable[[str, bytes | None, bytes | None], Awaitable[None]]
    node_bundle: dict[str, Any]

    def agent(self) -> AgentDriver:
        """The :class:`AgentDriver`; cases that need an agent's raw calls are skipped for other drivers."""
        if not isinstance(self.driver, AgentDriver):
            raise Skipped("needs the node's AgentService (raw agent calls)")
        return self.driver

    def use(self, name: str, mode: str = "honest") -> TesterProvider:
        """Persona ``name``, reset to ``mode`` for this case."""
        p = self.providers[name]
        p.reset(mode)
        return p


def _expect_refusal(got: Asked, *, code: str, reason: str, what: str) -> None:
    if got.ok:
        raise CheckFailed(f"{what}: the node passed the outcome on; expected {code} / {reason}")
    if (got.code, got.reason) != (code, reason):
        raise CheckFailed(f"{what}: expected {code} / {reason}, got {got.describe()}")


async def _recorded(ctx: RequesterContext, got: Asked, *, peer: str, reason: str) -> dict[str, Any]:
    """The node's "received" entry for ``got`` exists, names the persona and carries ``reason``."""
    if got.received_leaf_index is None:
        raise CheckFailed(f"the node's answer names no received_leaf_index: {got.describe()}")
    entry = await ctx.driver.received(got.received_leaf_index, peer=peer)
    if entry is None:
        raise CheckFailed(f"no received entry at index {got.received_leaf_index} in the node's log (R-RCP-5)")
    if entry.get("kind") != "received" or entry.get("reason") != reason:
        raise CheckFailed(
            f"entry {got.received_leaf_index}: kind {entry.get('kind')!r} reason {entry.get('reason')!r}, "
            f"expected received / {reason!r}"
        )
    return entry


# ------------------------------------------------------------------------------ transport, negotiation


async def case_trn_4_server_from_another_ca(ctx: RequesterContext) -> str:
    """R-TRN-4: a provider whose server certificate does not chain to the pinned CA gets no request.

    The certificate names the persona's own DID and hosts: only its issuing CA differs.
    """
    from federation.tls import mint_tls_material

    p = ctx.use(ALIEN)
    other = mint_tls_material(org_name=ALIEN, org_did=p.did)
    await ctx.restart(ALIEN, other.cert_pem, other.key_pem)
    try:
        p = ctx.use(ALIEN)
        got = await ctx.driver.ask(ALIEN, fields=FIELDS)
    finally:
        await ctx.restart(ALIEN, None, None)
    if got.ok:
        raise CheckFailed("the node completed an exchange with a server its pinned CA did not issue")
    if p.calls:
        raise CheckFailed(f"the node sent {p.calls} to a server its pinned CA did not issue")
    return f"abandoned before any request: the agent got {got.code} {got.reason}".strip()


NEGOTIATION = [
    (
        "no common version",
        {"protocol_versions": ["accord.federation.v2"], "cryptosuites": []},
        "UNSUPPORTED_VERSION",
    ),
    ("no common cryptosuite", {"cryptosuites": ["ecdsa-rdfc-2019"]}, "UNSUPPORTED_CRYPTOSUITE"),
    ("no common algorithm", {"signature_algorithms": ["ml-dsa-65"]}, "UNSUPPORTED_ALGORITHM"),
    ("a ledger format missing", {"ledger_formats": ["c2sp-tlog-checkpoint"]}, "UNSUPPORTED_LEDGER_FORMAT"),
]


async def case_neg_3_refused_before_any_credential(ctx: RequesterContext) -> str:
    """R-NEG-2/R-NEG-3: the node reads NodeInfo first and refuses a peer it cannot speak with, in order."""
    out = []
    for what, lists, reason in NEGOTIATION:
        p = ctx.use(ALIEN)
        p.node_info = {**SPEAKS, **lists}
        got = await ctx.driver.ask(ALIEN, fields=FIELDS)
        _expect_refusal(got, code="FAILED_PRECONDITION", reason=reason, what=what)
        if "GetNodeInfo" not in p.calls:
            raise CheckFailed(f"{what}: the node never read the peer's NodeInfo (R-NEG-2)")
        if set(p.calls) - {"GetNodeInfo"}:
            raise CheckFailed(f"{what}: the node went on to {sorted(set(p.calls) - {'GetNodeInfo'})}")
        out.append(reason)
    return "refused before any challenge: " + ", ".join(out)


# ------------------------------------------------------------------------------ what the node sends


async def case_honest_exchange(ctx: RequesterContext) -> str:
    """R-SIG-1, R-EXC-1/2, R-SIG-11: the envelope verifies as a provider checks it; receipt verified."""
    p = ctx.use(TESTER)
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    if not p.exchanges:
        raise CheckFailed(f"the persona received no Exchange: {got.describe()}")
    seen = p.exchanges[-1]
    if seen.problems:
        raise CheckFailed(f"a conformant provider refuses this envelope: {seen.problems}")
    if seen.envelope.payload_type != "accord.federation.v1.ExchangeEnvelope":
        raise CheckFailed(f"envelope payload type {seen.envelope.payload_type!r}")
    if seen.caller != ctx.node_bundle["org_did"]:
        raise CheckFailed(f"client certificate names {seen.caller!r}, not the node's DID (R-TRN-4)")
    if got.session_id and seen.session_id != got.session_id:
        raise CheckFailed(
            f"signed envelope names session {seen.session_id!r}, the agent's is {got.session_id!r}"
        )
    if seen.envelope_unknown:
        raise CheckFailed(f"the envelope sets {seen.envelope_unknown} field(s) v1 does not define (R-SIG-11)")
    if not got.ok or got.receipt_verified is not True:
        raise CheckFailed(f"an honest outcome was not passed on verified: {got.describe()}")
    if json.loads(got.outcome.payload_json) != [{f: f"{f}-1" for f in FIELDS}]:
        raise CheckFailed("the payload the agent got differs from the one the provider sent")
    return f"envelope verified (PAE, pinned key, session {seen.session_id[:12]}…); receipt verified"


def _reordered(body: pb.RequestBody) -> bytes:
    """``body`` encoded with its fields in descending field-number order (valid protobuf, not canonical)."""
    parts = []
    for fd, value in body.ListFields():
        one = pb.RequestBody()
        if fd.is_repeated:
            getattr(one, fd.name).extend(value)
        else:
            setattr(one, fd.name, value)
        parts.append((fd.number, one.SerializeToString()))
    return b"".join(b for _, b in sorted(parts, reverse=True))


async def case_sig_9_forwarded_byte_for_byte(ctx: RequesterContext) -> str:
    """R-SIG-9, R-SIG-7, R-SIG-5: a non-canonical request is accepted and forwarded as sent, nothing else."""
    agent = ctx.agent()
    p = ctx.use(TESTER)

    def build(peer_did: str) -> pb.SignedPayload:
        return agent.sign(_reordered(agent.body(peer_did, fields=FIELDS)))

    # field 15 (varint 1) in the agent's SignedPayload wrapper: unknown, unsigned, must not travel on
    got = await agent.ask(TESTER, fields=FIELDS, signed=build, wrapper_extra=b"\x78\x01")
    if not got.ok:
        raise CheckFailed(f"a valid non-canonical encoding was refused (R-SIG-7): {got.describe()}")
    seen = p.exchanges[-1]
    sent = got.sent
    if seen.request is None or (seen.request.payload_type, seen.request.payload, seen.request.signature) != (
        sent.payload_type,
        sent.payload,
        sent.signature,
    ):
        raise CheckFailed("envelope.request is not the agent's SignedPayload byte for byte (R-SIG-9)")
    if seen.request_wrapper_unknown:
        raise CheckFailed("the unknown field of the agent's SignedPayload wrapper was forwarded (R-SIG-5)")
    return (
        f"{len(sent.payload)} bytes in descending field order forwarded unchanged; wrapper field 15 dropped"
    )


async def case_sig_recv_order_at_requester(ctx: RequesterContext) -> str:
    """R-SIG-2..R-SIG-8, R-SIG-10: the node checks its agent's signed request in order; nothing forwarded."""
    agent = ctx.agent()
    p = ctx.use(TESTER)
    sid, peer_did = await agent.session(TESTER)
    body = agent.body(peer_did, fields=FIELDS).SerializeToString()
    bad = bytes(64)
    variants = [
        ("v2 type", agent.sign(body, "accord.federation.v2.RequestBody"), "FAILED_PRECONDITION", "UNSUPPORTED_VERSION"),  # noqa: E501
        ("v2 type, bad signature", pb.SignedPayload(payload_type="accord.federation.v2.RequestBody", payload=body, signature=bad), "FAILED_PRECONDITION", "UNSUPPORTED_VERSION"),  # noqa: E501
        ("malformed type", agent.sign(body, "RequestBody"), "INVALID_ARGUMENT", "WRONG_PAYLOAD_TYPE"),
        ("another message's type", agent.sign(body, SESSION_POSSESSION), "INVALID_ARGUMENT", "WRONG_PAYLOAD_TYPE"),  # noqa: E501
        ("bad signature", pb.SignedPayload(payload_type=REQUEST_BODY, payload=body, signature=bad), "UNAUTHENTICATED", "BAD_AGENT_SIGNATURE"),  # noqa: E501
        ("unparseable, bad signature", pb.SignedPayload(payload_type=REQUEST_BODY, payload=b"\xff\xff", signature=bad), "UNAUTHENTICATED", "BAD_AGENT_SIGNATURE"),  # noqa: E501
        ("unparseable", agent.sign(b"\xff\xff"), "INVALID_ARGUMENT", "MALFORMED_PAYLOAD"),
        ("unknown field", agent.sign(body + b"\xa0\x06\x01"), "INVALID_ARGUMENT", "UNKNOWN_FIELD"),
        ("65,537 bytes", agent.sign(body + b"\x00" * (65_537 - len(body))), "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE"),  # noqa: E501
    ]  # fmt: skip
    out = []
    for what, signed, code, reason in variants:
        try:
            await agent.send(sid, signed)
            raise CheckFailed(f"{what}: the node accepted it")
        except grpc.aio.AioRpcError as exc:
            got = _refused(exc)
            _expect_refusal(got, code=code, reason=reason, what=what)
            if got.metadata.get("field") not in (None, "request"):
                raise CheckFailed(
                    f"{what}: metadata.field is {got.metadata.get('field')!r}, expected 'request'"
                ) from None
        out.append(reason)
    if p.exchanges:
        raise CheckFailed(f"the node forwarded {len(p.exchanges)} refused request(s) to the provider")
    return f"{len(variants)} refusals in §4.4 order, none forwarded"


async def case_ses_1_possession_checked(ctx: RequesterContext) -> str:
    """R-SES-1: the node checks its agent's proof of possession before forwarding the presentation."""
    agent = ctx.agent()
    p = ctx.use(TESTER)
    out = []
    begun = await agent.begin(TESTER)
    checks = [
        ("another peer", agent.possession(begun, peer_org="did:web:someone-else.accord.test"), "INVALID_ARGUMENT", "POSSESSION_MISMATCH"),  # noqa: E501
        ("another agent", agent.possession(begun, agent_did="did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"), "INVALID_ARGUMENT", "POSSESSION_MISMATCH"),  # noqa: E501
        ("a challenge never issued", agent.possession(begun, challenge="x" * 32), "UNAUTHENTICATED", "WRONG_CHALLENGE"),  # noqa: E501
        ("a request signature as a possession", pb.SignedPayload(payload_type=SESSION_POSSESSION, payload=agent.possession(begun).payload, signature=agent.sign(agent.possession(begun).payload).signature), "UNAUTHENTICATED", "BAD_AGENT_SIGNATURE"),  # noqa: E501
    ]  # fmt: skip
    for what, possession, code, reason in checks:
        try:
            await agent.open(begun, possession=possession)
            raise CheckFailed(f"{what}: the node opened a session")
        except grpc.aio.AioRpcError as exc:
            _expect_refusal(_refused(exc), code=code, reason=reason, what=what)
        out.append(reason)
    if "OpenSession" in p.calls:
        raise CheckFailed("the node forwarded a presentation whose possession proof it refused")
    return ", ".join(out) + "; no presentation forwarded"


async def case_presentation_forwarded_as_sent(ctx: RequesterContext) -> str:
    """R-SES-2, §4.7: the node forwards its agent's presentation_json unchanged."""
    agent = ctx.agent()
    p = ctx.use(TESTER)
    begun = await agent.begin(TESTER)
    vp = agent.presentation(begun)
    await agent.stub.OpenSession(
        pb.AgentOpenSessionRequest(
            agent_did=agent.did,
            peer_org=begun.peer_org,
            possession=agent.possession(begun),
            presentation_json=vp,
        ),
        timeout=30,
    )
    if p.presentations != [vp]:
        raise CheckFailed("the presentation the provider received differs from the agent's bytes")
    return f"{len(vp)} bytes forwarded unchanged"


# ------------------------------------------------------------------------------ receipts (§7.3)


async def case_rcp_5_honest_receipt_recorded(ctx: RequesterContext) -> str:
    """R-RCP-2, R-RCP-5: an honest receipt verifies; the received entry names the provider's leaf."""
    ctx.use(TESTER)
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    if not got.ok or got.receipt_verified is not True:
        raise CheckFailed(f"honest receipt: {got.describe()}")
    entry = await _recorded(ctx, got, peer=TESTER, reason="")
    want = base64.b64encode(rfc9162_leaf_hash(got.outcome.receipt.entry)).decode()
    if entry.get("provider_leaf_hash") != want:
        raise CheckFailed(f"provider_leaf_hash {entry.get('provider_leaf_hash')!r}, expected {want!r}")
    return f"received entry {got.received_leaf_index} names leaf {want[:12]}…"


async def _invalid_receipt(ctx: RequesterContext, mode: str) -> str:
    ctx.use(TESTER, mode)
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    if got.ok:
        if got.receipt_verified is not False:
            raise CheckFailed(f"{mode}: passed on with receipt_verified={got.receipt_verified}")
        how = "passed on with receipt_verified=false"
    elif got.reason == "RECEIPT_INVALID":
        how = "withheld (RECEIPT_INVALID)"
    else:
        raise CheckFailed(f"{mode}: expected RECEIPT_INVALID, got {got.describe()}")
    await _recorded(ctx, got, peer=TESTER, reason="RECEIPT_INVALID")
    return f"{how}; received entry {got.received_leaf_index} reason RECEIPT_INVALID"


async def case_rcp_2_bad_checkpoint_signature(ctx: RequesterContext) -> str:
    """R-RCP-2: a checkpoint not signed by the pinned log key: receipt invalid, recorded."""
    return await _invalid_receipt(ctx, "bad_checkpoint_signature")


async def case_rcp_2_not_included(ctx: RequesterContext) -> str:
    """R-RCP-2: an entry its signed checkpoint does not hold: receipt invalid, recorded."""
    return await _invalid_receipt(ctx, "not_included")


async def _mismatch(ctx: RequesterContext, mode: str, *, reason: str, member: str | None) -> str:
    ctx.use(TESTER, mode)
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    _expect_refusal(got, code="FAILED_PRECONDITION", reason=reason, what=mode)
    if member is not None and member not in got.metadata.get("mismatch", "").split(","):
        raise CheckFailed(
            f"{mode}: metadata.mismatch {got.metadata.get('mismatch')!r} does not name {member}"
        )
    await _recorded(ctx, got, peer=TESTER, reason=reason)
    what = member or got.metadata.get("field", "")
    return f"{reason} ({what}), not passed on, received entry {got.received_leaf_index}"


async def case_rcp_3_respelled_payload(ctx: RequesterContext) -> str:
    """R-RCP-3: response_digest is over payload_json as received: the same JSON re-spelled is refused."""
    return await _mismatch(ctx, "respelled_payload", reason="RECEIPT_MISMATCH", member="response_digest")


async def case_rcp_3_payload_not_logged(ctx: RequesterContext) -> str:
    """R-RCP-3: a payload other than the logged one is refused."""
    return await _mismatch(
        ctx, "response_digest_mismatch", reason="RECEIPT_MISMATCH", member="response_digest"
    )


async def case_rcp_3_entry_of_another_kind(ctx: RequesterContext) -> str:
    """R-RCP-3: a logged entry of kind ``denial`` for an answered request is refused."""
    return await _mismatch(ctx, "wrong_entry_kind", reason="RECEIPT_MISMATCH", member="kind")


async def case_rcp_1_oversize_outcome(ctx: RequesterContext) -> str:
    """R-RCP-1: a payload over the default 1 MiB bound is refused before anything in it is used."""
    return await _mismatch(ctx, "oversize_payload", reason="OUTCOME_TOO_LARGE", member=None)


async def case_rcp_4_equivocation(ctx: RequesterContext) -> str:
    """R-RCP-4: two roots at one size are PEER_LOG_INCONSISTENT, recorded, and the log stays refused."""
    ctx.use(FORK)
    first = await ctx.driver.ask(FORK, fields=FIELDS)
    if not first.ok and first.reason == "PEER_LOG_INCONSISTENT":
        await _recorded(ctx, first, peer=FORK, reason="PEER_LOG_INCONSISTENT")
        return "the node found this persona's log inconsistent in an earlier run and still refuses it"
    if not first.ok or first.receipt_verified is not True:
        raise CheckFailed(f"the fork persona's first (honest) exchange: {first.describe()}")
    ctx.use(FORK, "equivocate")
    got = await ctx.driver.ask(FORK, fields=FIELDS)
    _expect_refusal(
        got, code="FAILED_PRECONDITION", reason="PEER_LOG_INCONSISTENT", what="second root at one size"
    )
    await _recorded(ctx, got, peer=FORK, reason="PEER_LOG_INCONSISTENT")
    ctx.use(FORK)
    again = await ctx.driver.ask(FORK, fields=FIELDS)
    _expect_refusal(again, code="FAILED_PRECONDITION", reason="PEER_LOG_INCONSISTENT", what="after the fork")
    return "fork refused and recorded; the log's later honest-looking receipt refused too"


async def case_rcp_7_denial_receipt(ctx: RequesterContext) -> str:
    """R-RCP-6/R-RCP-7: a logged denial's receipt is checked and the provider's reason passed on."""
    ctx.use(TESTER, "denial")
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    _expect_refusal(got, code="PERMISSION_DENIED", reason="MISSING_SCOPE", what="logged denial")
    if got.receipt_verified is not True:
        raise CheckFailed(f"the denial's receipt_verified is {got.metadata.get('receipt_verified')!r}")
    await _recorded(ctx, got, peer=TESTER, reason="MISSING_SCOPE")
    return f"MISSING_SCOPE passed on, receipt verified, received entry {got.received_leaf_index}"


async def case_rcp_7_entry_b64_strict(ctx: RequesterContext) -> str:
    """R-RCP-7: a denial's entry_b64 that is not strict base64 is RECEIPT_MISMATCH (mismatch = entry)."""
    ctx.use(TESTER, "denial_entry_not_base64")
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    _expect_refusal(got, code="FAILED_PRECONDITION", reason="RECEIPT_MISMATCH", what="entry_b64 not base64")
    if got.metadata.get("mismatch") != "entry":
        raise CheckFailed(f"metadata.mismatch {got.metadata.get('mismatch')!r}, expected 'entry'")
    await _recorded(ctx, got, peer=TESTER, reason="RECEIPT_MISMATCH")
    return f"RECEIPT_MISMATCH (entry), received entry {got.received_leaf_index}"


async def case_ext_3_unknown_fields_ignored(ctx: RequesterContext) -> str:
    """R-EXT-3: unknown fields in NodeInfo, Outcome and Receipt (unsigned) are ignored."""
    p = ctx.use(TESTER)
    p.extra_fields = True
    got = await ctx.driver.ask(TESTER, fields=FIELDS)
    if not got.ok or got.receipt_verified is not True:
        raise CheckFailed(
            f"an outcome with an unknown field 111 was not passed on verified: {got.describe()}"
        )
    return "field 111 in ExchangeResponse, Outcome, Receipt (and every NodeInfo) ignored"


RequesterCase = Callable[[RequesterContext], Awaitable[str]]
REQUESTER_CASES: list[tuple[str, RequesterCase]] = [
    ("R-TRN-4 server certificate from another CA", case_trn_4_server_from_another_ca),
    ("R-NEG-3 peer it cannot speak with refused", case_neg_3_refused_before_any_credential),
    ("R-SES-1 proof of possession checked", case_ses_1_possession_checked),
    ("R-SES-2 presentation forwarded as sent", case_presentation_forwarded_as_sent),
    ("R-SIG-1 envelope signed as a provider checks it", case_honest_exchange),
    ("R-SIG-9 request forwarded byte for byte", case_sig_9_forwarded_byte_for_byte),
    ("R-SIG-10 agent request checked in order", case_sig_recv_order_at_requester),
    ("R-RCP-5 honest receipt recorded", case_rcp_5_honest_receipt_recorded),
    ("R-EXT-3 unknown fields of NodeInfo and Outcome ignored", case_ext_3_unknown_fields_ignored),
    ("R-RCP-2 checkpoint not signed by the log key", case_rcp_2_bad_checkpoint_signature),
    ("R-RCP-2 entry not in the signed tree", case_rcp_2_not_included),
    ("R-RCP-3 re-spelled payload refused", case_rcp_3_respelled_payload),
    ("R-RCP-3 payload other than the logged one", case_rcp_3_payload_not_logged),
    ("R-RCP-3 entry of another kind", case_rcp_3_entry_of_another_kind),
    ("R-RCP-1 oversize outcome refused", case_rcp_1_oversize_outcome),
    ("R-RCP-7 denial receipt checked", case_rcp_7_denial_receipt),
    ("R-RCP-7 entry_b64 decoded strictly", case_rcp_7_entry_b64_strict),
    ("R-RCP-4 equivocating provider", case_rcp_4_equivocation),
]
