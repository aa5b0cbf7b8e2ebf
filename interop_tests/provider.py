"""The suite's own provider: what a node under test, acting as *requester*, talks to.

``accord interop run --role requester`` turns the conformance kit around: the
tester organizations (:mod:`interop_tests.enrollment`, *personas*) serve
``FederationService`` on the endpoints of their pinned bundles, and a tester
agent registered at the node drives the node's ``AgentService``. The node
then negotiates with a persona, opens a session, forwards the agent's signed
request in its organization's signed envelope and checks the persona's
receipt. Each persona answers as :attr:`TesterProvider.mode` says:

``honest``
    a conformant provider (docs/spec/accord-v1.md §4.5, §7.3): it checks the
    envelope and the agent's request as a provider must, logs a disclosure
    entry in its own append-only log (persisted in the persona's directory,
    so later runs see the same history) and answers with a C2SP tlog-proof.
``bad_checkpoint_signature``
    the receipt's checkpoint is signed by a key that is not the pinned log key (R-RCP-2).
``not_included``
    the receipt claims an index its signed checkpoint does not hold the entry at (R-RCP-2).
``response_digest_mismatch``
    the payload sent carries a field the logged ``response_digest`` does not cover (R-RCP-3).
``respelled_payload``
    the payload is the logged JSON value with other spacing: not the bytes logged (R-RCP-3, R-AGG-1).
``wrong_entry_kind``
    the logged entry is a ``denial`` for an answered request (R-RCP-3, ``kind``).
``oversize_payload``
    ``payload_json`` is one byte over 1 MiB, the default ``max_request_bytes`` (R-RCP-1).
``equivocate``
    the receipt's checkpoint is signed at a size already shown, over another root (R-RCP-4).
``denial`` / ``denial_entry_not_base64``
    a logged policy denial (``PERMISSION_DENIED`` / ``MISSING_SCOPE`` with the receipt in
    ``ErrorInfo.metadata``, R-RCP-6), the second with ``entry_b64`` not strict base64 (R-RCP-7).

What the persona saw (calls, the envelope as received, problems a
conformant provider refuses) is kept for the cases to check
(:class:`Exchanged`). Nothing here uses the node's own code paths for what
it checks: PAE and the Merkle maths come from :mod:`interop_tests.peer` and
:mod:`interop_tests.checkers`; the entry model is the ledger's (the entry
must be one the requester can parse).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.unknown_fields import UnknownFieldSet
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from interop_tests.checkers import consistency_proof as _consistency_proof
from interop_tests.checkers import inclusion_path, mth, rfc9162_leaf_hash
from interop_tests.peer import EXCHANGE_ENVELOPE, REQUEST_BODY, pae

#: what a v1 provider advertises (docs/spec/accord-v1.md §5)
SPEAKS: dict[str, list[str]] = {
    "protocol_versions": ["accord.federation.v1"],
    "cryptosuites": ["eddsa-rdfc-2022", "eddsa-jcs-2022"],
    "signature_algorithms": ["ed25519"],
    "ledger_formats": ["c2sp-tlog-checkpoint", "c2sp-tlog-proof", "rfc9162-sha256"],
}
MODES = (
    "honest",
    "bad_checkpoint_signature",
    "not_included",
    "response_digest_mismatch",
    "respelled_payload",
    "wrong_entry_kind",
    "oversize_payload",
    "equivocate",
    "denial",
    "denial_entry_not_base64",
)
#: spec §3.1: the largest ExchangeEnvelope / RequestBody payloads
MAX_ENVELOPE = 81_920
MAX_REQUEST = 65_536
#: default ``max_request_bytes`` of a requester (R-RCP-1)
DEFAULT_MAX_OUTCOME = 1 << 20
DOMAIN = "accord.federation.v1"
#: field 111, varint 1: a field no v1 message defines (R-EXT-3 in unsigned messages)
UNKNOWN_FIELD = b"\xf8\x06\x01"


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unknown(msg: Any) -> int:
    return len(UnknownFieldSet(msg))


class ProviderLog:
    """A persona's own append-only log (RFC 9162 SHA-256 tree, C2SP signed checkpoints).

    The leaf hashes are kept in ``path`` (JSON), rewritten after every append,
    so that the log a node under test has seen stays one history across runs.

    Args:
        path: the JSON file of leaf hashes.
        origin: the log origin (``<org>.accord.test/ledger``, as the persona's bundle names it).
        seed: 32-byte Ed25519 seed of the log key (the bundle's ``ledger_vkey``).
        key: instead of ``seed``, the log key as a signing key (e.g. in an HSM).

    """

    def __init__(self, path: Path, origin: str, seed: bytes | None = None, *, key: Any = None) -> None:
        from ledger import NoteSigner

        self.path = path
        self.origin = origin
        self.signer = NoteSigner(origin, seed, key=key)
        doc = json.loads(path.read_text()) if path.is_file() else {"origin": origin, "leaves": []}
        self.leaves: list[bytes] = [bytes.fromhex(h) for h in doc["leaves"]]

    def append(self, entry: bytes) -> int:
        """Append ``entry`` (the leaf data); returns its index (persisted before it returns)."""
        self.leaves.append(rfc9162_leaf_hash(entry))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"origin": self.origin, "leaves": [h.hex() for h in self.leaves]}))
        os.replace(tmp, self.path)
        return len(self.leaves) - 1

    def note(self, leaves: list[bytes] | None = None, *, signer: Any = None) -> str:
        """The signed checkpoint (C2SP tlog-checkpoint) over ``leaves`` (default: the whole log)."""
        leaves = self.leaves if leaves is None else leaves
        body = f"{self.origin}\n{len(leaves)}\n{base64.b64encode(mth(leaves)).decode()}\n"
        return (signer or self.signer).sign(body)

    def tlog_proof(self, index: int, leaves: list[bytes] | None = None, *, signer: Any = None) -> str:
        """A C2SP tlog-proof of leaf ``index`` in the tree of ``leaves`` (default: the whole log)."""
        leaves = self.leaves if leaves is None else leaves
        path = inclusion_path(index, leaves) if index < len(leaves) else []
        lines = ["c2sp.org/tlog-proof@v1", f"index {index}"]
        lines += [base64.b64encode(h).decode() for h in path]
        return "\n".join(lines) + "\n\n" + self.note(leaves, signer=signer)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of this log."""
        return _consistency_proof(size1, self.leaves[:size2])


@dataclass
class Exchanged:
    """What a persona saw of one ``Exchange`` call.

    Attributes:
        caller: SAN URI of the caller's client certificate.
        envelope: the ``SignedPayload`` of the ``ExchangeEnvelope`` as received.
        request: the agent's ``SignedPayload`` inside it, as received.
        request_wrapper_unknown: unknown fields in that inner ``SignedPayload`` (R-SIG-5: none forwarded).
        envelope_unknown: unknown fields in the ``ExchangeEnvelope`` (R-SIG-11: none).
        session_id / requester_org: as the signed envelope says.
        problems: what a conformant provider refuses here (empty for a conforming requester).

    """

    caller: str
    envelope: pb.SignedPayload
    request: pb.SignedPayload | None = None
    request_wrapper_unknown: int = 0
    envelope_unknown: int = 0
    session_id: str = ""
    requester_org: str = ""
    problems: list[str] = field(default_factory=list)


class Refusal(Exception):
    """A refusal this persona answers with (gRPC status, ErrorInfo reason, metadata)."""

    def __init__(self, code: int, reason: str, message: str, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.reason, self.metadata = code, reason, metadata or {}


def _status(code: int, reason: str, message: str, metadata: dict[str, str]) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))


def _caller_did(context: Any) -> str:
    from cryptography import x509

    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return ""
    cert = x509.load_pem_x509_certificate(pems[0])
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else ""


class TesterProvider(pbg.FederationServiceServicer):
    """One persona's ``FederationService`` (see the module docstring).

    Args:
        persona_dir: the persona's node directory (keys, TLS, ``node.toml``).
        node_bundle: the peer bundle of the node under test (its organization key
            verifies envelopes; its DID is the only caller served).

    Attributes:
        mode: how the next exchanges are answered (:data:`MODES`).
        extra_fields: add field 111 to the ``ExchangeResponse``, its ``Outcome`` and ``Receipt``
            (R-EXT-3; ``NodeInfo`` always carries it).
        node_info: the lists ``GetNodeInfo`` advertises (default :data:`SPEAKS`).
        calls: the RPC names called, in order.
        exchanges: what each ``Exchange`` call carried.
        presentations: ``OpenSession.presentation_json`` as received.

    """

    def __init__(self, persona_dir: Path, node_bundle: dict[str, Any]) -> None:
        from credentials import public_key_from_multibase
        from federation.identity import NodeIdentity

        self.ident = NodeIdentity.load(persona_dir)
        self.did = self.ident.org_did
        self.node_bundle = node_bundle
        self.node_key = public_key_from_multibase(node_bundle["public_key_multibase"])
        origin = f"{self.ident.config.org_name}.accord.test/ledger"
        self.log = ProviderLog(persona_dir / "interop-provider-log.json", origin, key=self.ident.ledger_key())
        self.mode = "honest"
        self.extra_fields = False
        self.node_info: dict[str, list[str]] = dict(SPEAKS)
        self.calls: list[str] = []
        self.exchanges: list[Exchanged] = []
        self.presentations: list[bytes] = []
        self._challenges: dict[str, str] = {}
        self._sessions: dict[str, str] = {}
        self._last_honest: tuple[int, str] | None = None  # (size, note) of the last receipt's checkpoint

    def reset(self, mode: str = "honest") -> None:
        """Start a case: set the mode, forget the calls seen (the log and sessions stay)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.extra_fields = False
        self.node_info = dict(SPEAKS)
        self.calls.clear()
        self.exchanges.clear()
        self.presentations.clear()

    # ------------------------------------------------------------------ helpers

    async def _served(self, name: str, context: Any) -> str:
        self.calls.append(name)
        caller = _caller_did(context)
        if caller != self.node_bundle["org_did"]:
            await context.abort_with_status(
                _status(code_pb2.UNAUTHENTICATED, "UNKNOWN_PEER", f"not the node under test: {caller}", {})
            )
        return caller

    async def _refuse(self, context: Any, r: Refusal) -> None:
        await context.abort_with_status(_status(r.code, r.reason, str(r), r.metadata))

    # ------------------------------------------------------------------ RPCs

    async def GetNodeInfo(self, request, context):  # noqa: N802, D102
        await self._served("GetNodeInfo", context)
        info = pb.NodeInfo(
            org_did=self.did,
            org_name=self.ident.config.org_name,
            endpoint=self.ident.config.advertise or self.ident.config.listen,
            ledger_vkey=self.log.signer.vkey,
            ledger_origin=self.log.origin,
            software="accord-interop-tester",
            **self.node_info,
        )
        info.MergeFromString(UNKNOWN_FIELD)  # R-EXT-3: an unsigned message; a v1 requester ignores it
        return info

    async def GetChallenge(self, request, context):  # noqa: N802, D102
        await self._served("GetChallenge", context)
        challenge = secrets.token_urlsafe(24)
        self._challenges[challenge] = request.agent_did
        return pb.GetChallengeResponse(
            challenge=challenge, domain=self.did, expires_at=int(time.time()) + 120
        )

    async def OpenSession(self, request, context):  # noqa: N802, D102
        await self._served("OpenSession", context)
        self.presentations.append(bytes(request.presentation_json))
        try:
            vp = json.loads(request.presentation_json)
            proof = vp["proof"]
            holder = vp["holder"]
        except (ValueError, KeyError, TypeError):
            await self._refuse(
                context, Refusal(code_pb2.INVALID_ARGUMENT, "MALFORMED_PRESENTATION", "not a presentation")
            )
            return None
        if self._challenges.pop(proof.get("challenge", ""), None) != holder:
            await self._refuse(context, Refusal(code_pb2.UNAUTHENTICATED, "WRONG_CHALLENGE", "challenge"))
        if proof.get("domain") != self.did:
            await self._refuse(context, Refusal(code_pb2.UNAUTHENTICATED, "WRONG_DOMAIN", "domain"))
        sid = "ses_" + secrets.token_hex(12)
        self._sessions[sid] = holder
        return pb.OpenSessionResponse(session_id=sid, expires_at=int(time.time()) + 3600, effective_trust=0.5)

    async def GetStatusList(self, request, context):  # noqa: N802, D102
        await self._served("GetStatusList", context)
        from federation.agents import open_store
        from federation.statuslists import StatusListPublisher

        if request.purpose not in ("revocation", "suspension"):
            await self._refuse(context, Refusal(code_pb2.INVALID_ARGUMENT, "MALFORMED_REQUEST", "purpose"))
        doc = StatusListPublisher(self.ident, open_store(self.ident)).credential(request.purpose)
        return pb.GetStatusListResponse(credential_json=json.dumps(doc).encode())

    async def QueryEntries(self, request, context):  # noqa: N802, D102
        await self._served("QueryEntries", context)
        return pb.QueryEntriesResponse(signed_checkpoint=self.log.note() if self.log.leaves else "")

    async def GetCheckpoint(self, request, context):  # noqa: N802, D102
        await self._served("GetCheckpoint", context)
        return pb.GetCheckpointResponse(signed_checkpoint=self.log.note())

    async def GetConsistencyProof(self, request, context):  # noqa: N802, D102
        await self._served("GetConsistencyProof", context)
        if not 0 < request.size1 <= request.size2 <= len(self.log.leaves):
            await self._refuse(
                context, Refusal(code_pb2.INVALID_ARGUMENT, "BAD_PROOF_REQUEST", "sizes out of range")
            )
        return pb.ProofResponse(
            hashes=self.log.consistency(request.size1, request.size2), signed_checkpoint=self.log.note()
        )

    async def Exchange(self, request, context):  # noqa: N802, D102
        caller = await self._served("Exchange", context)
        seen = Exchanged(caller=caller, envelope=pb.SignedPayload())
        seen.envelope.CopyFrom(request.envelope)
        self.exchanges.append(seen)
        try:
            env, body = self._open(request.envelope, seen)
            return self._answer(env, body)
        except Refusal as r:
            await self._refuse(context, r)
            return None

    # ------------------------------------------------------------------ a provider's checks (§4.4, §4.5)

    def _open(self, signed: pb.SignedPayload, seen: Exchanged) -> tuple[pb.ExchangeEnvelope, pb.RequestBody]:
        from credentials import CredentialError, public_key_from_did_key, verify_ed25519

        def fail(code: int, reason: str, what: str) -> Refusal:
            seen.problems.append(f"{reason}: {what}")
            return Refusal(code, reason, what)

        if len(signed.payload) > MAX_ENVELOPE:
            raise fail(code_pb2.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE", "envelope over 81,920 bytes")
        if signed.payload_type != EXCHANGE_ENVELOPE:
            raise fail(
                code_pb2.INVALID_ARGUMENT, "WRONG_PAYLOAD_TYPE", f"envelope type {signed.payload_type!r}"
            )
        try:
            verify_ed25519(self.node_key, signed.signature, pae(signed.payload_type, signed.payload))
        except CredentialError:
            raise fail(
                code_pb2.UNAUTHENTICATED, "BAD_ORG_SIGNATURE", "envelope signature (PAE, pinned org key)"
            ) from None
        try:
            env = pb.ExchangeEnvelope.FromString(signed.payload)
        except Exception:  # noqa: BLE001 - any parse failure is the same refusal
            raise fail(code_pb2.INVALID_ARGUMENT, "MALFORMED_PAYLOAD", "envelope does not parse") from None
        seen.envelope_unknown = _unknown(env)
        seen.request_wrapper_unknown = _unknown(env.request)
        seen.session_id, seen.requester_org = env.session_id, env.requester_org
        seen.request = pb.SignedPayload()
        seen.request.CopyFrom(env.request)
        if seen.envelope_unknown:
            raise fail(
                code_pb2.INVALID_ARGUMENT, "UNKNOWN_FIELD", "a field ExchangeEnvelope v1 does not define"
            )
        if env.requester_org != self.node_bundle["org_did"] or env.requester_org != seen.caller:
            raise fail(code_pb2.UNAUTHENTICATED, "REQUESTER_MISMATCH", f"requester_org {env.requester_org!r}")
        agent = self._sessions.get(env.session_id)
        if agent is None:
            raise fail(code_pb2.UNAUTHENTICATED, "UNKNOWN_SESSION", f"session {env.session_id!r}")
        inner = env.request
        if len(inner.payload) > MAX_REQUEST:
            raise fail(code_pb2.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE", "request over 65,536 bytes")
        if inner.payload_type != REQUEST_BODY:
            raise fail(
                code_pb2.INVALID_ARGUMENT, "WRONG_PAYLOAD_TYPE", f"request type {inner.payload_type!r}"
            )
        try:
            verify_ed25519(
                public_key_from_did_key(agent), inner.signature, pae(inner.payload_type, inner.payload)
            )
        except CredentialError:
            raise fail(code_pb2.UNAUTHENTICATED, "BAD_AGENT_SIGNATURE", "agent signature") from None
        try:
            body = pb.RequestBody.FromString(inner.payload)
        except Exception:  # noqa: BLE001
            raise fail(code_pb2.INVALID_ARGUMENT, "MALFORMED_PAYLOAD", "request does not parse") from None
        if _unknown(body):
            raise fail(code_pb2.INVALID_ARGUMENT, "UNKNOWN_FIELD", "a field RequestBody v1 does not define")
        if body.agent_did != agent:
            raise fail(code_pb2.UNAUTHENTICATED, "AGENT_MISMATCH", "request of another agent")
        return env, body

    # ------------------------------------------------------------------ the answer

    def _entry(self, env: pb.ExchangeEnvelope, body: pb.RequestBody, **members: Any) -> dict[str, Any]:
        request_digest = hashlib.sha256(env.request.payload).hexdigest()
        entry: dict[str, Any] = dict(
            kind="disclosure",
            disclosure_id="dsc_" + request_digest[:32],
            time=_now_text(),
            provider_org=self.did,
            requester_org=env.requester_org,
            requester_agent=body.agent_did,
            contract_id=body.contract_id,
            contract_hash="",
            purpose=body.purpose,
            fields_requested=list(body.fields),
            fields_released=list(body.fields),
            fields_stripped=[],
            record_count=1,
            decision="allow",
            reason="",
            decision_hash=hashlib.sha256(b"interop-decision " + request_digest.encode()).hexdigest(),
            request_digest=request_digest,
            response_digest="",
            effective_trust=0.5,
        )
        entry.update(members)
        return entry

    @staticmethod
    def _bytes(entry: dict[str, Any]) -> bytes:
        from ledger import DisclosureEntry

        return DisclosureEntry(**entry).canonical_bytes()

    def _answer(self, env: pb.ExchangeEnvelope, body: pb.RequestBody) -> pb.ExchangeResponse:
        from ledger import NoteSigner

        mode = self.mode
        if mode.startswith("denial"):
            entry = self._entry(
                env, body, kind="denial", decision="deny", reason="MISSING_SCOPE", fields_released=[],
                record_count=0,
            )  # fmt: skip
            data = self._bytes(entry)
            index = self.log.append(data)
            entry_b64 = base64.b64encode(data).decode()
            if mode == "denial_entry_not_base64":  # the true entry with one character outside the alphabet
                entry_b64 = entry_b64[:8] + "!" + entry_b64[8:]
            raise Refusal(
                code_pb2.PERMISSION_DENIED,
                "MISSING_SCOPE",
                "the agent lacks a scope the purpose requires",
                {
                    "disclosure_id": entry["disclosure_id"],
                    "leaf_index": str(index),
                    "decision_hash": entry["decision_hash"],
                    "reasons": "MISSING_SCOPE",
                    "tlog_proof": self.log.tlog_proof(index),
                    "entry_b64": entry_b64,
                    "scope": "interop:admin",
                },
            )
        rows = [{f: f"{f}-1" for f in body.fields}]
        payload = json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()
        if mode == "oversize_payload":
            pad = DEFAULT_MAX_OUTCOME + 1 - len(payload) - len(',{"pad":""}')
            rows.append({"pad": "x" * pad})
            payload = json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()
        entry = self._entry(env, body, response_digest=hashlib.sha256(payload).hexdigest())
        if mode == "wrong_entry_kind":
            entry.update(kind="denial")
        data = self._bytes(entry)
        sent = payload
        if mode == "response_digest_mismatch":
            sent = json.dumps(
                [{**rows[0], "beyond_the_contract": "x"}], sort_keys=True, separators=(",", ":")
            )
            sent = sent.encode()
        elif mode == "respelled_payload":
            sent = json.dumps(rows, sort_keys=True, indent=1).encode()
        if mode == "not_included":
            # a checkpoint over the log as it was, and an index past its end: the entry is in no tree signed
            index = len(self.log.leaves)
            proof = self.log.tlog_proof(index, self.log.leaves) if self.log.leaves else ""
            if not proof:  # an empty log: sign a tree of one other leaf
                other = [rfc9162_leaf_hash(b"interop-other")]
                proof = self.log.tlog_proof(1, other)
            self.log.append(data)  # logged afterwards: the receipt's checkpoint does not hold it
        elif mode == "equivocate" and self._last_honest is not None:
            size, _ = self._last_honest
            # the same size as the checkpoint already shown, its last leaf replaced by this entry
            forked = self.log.leaves[: size - 1] + [rfc9162_leaf_hash(data)]
            index = size - 1
            proof = self.log.tlog_proof(index, forked)
        else:
            index = self.log.append(data)
            signer = (
                NoteSigner(self.log.origin, os.urandom(32)) if mode == "bad_checkpoint_signature" else None
            )
            proof = self.log.tlog_proof(index, signer=signer)
            if mode in ("honest", "equivocate"):
                self._last_honest = (len(self.log.leaves), proof)
        response = pb.ExchangeResponse(
            outcome=pb.Outcome(
                disclosure_id=entry["disclosure_id"],
                decision="allow",
                released_fields=list(body.fields),
                stripped_fields=[],
                payload_json=sent,
                record_count=1,
                effective_trust=0.5,
                decision_hash=entry["decision_hash"],
                receipt=pb.Receipt(
                    tlog_proof=proof, entry=data, leaf_index=index, leaf_hash=rfc9162_leaf_hash(data)
                ),
            )
        )
        if self.extra_fields:  # R-EXT-3: unknown fields in Outcome, Receipt and the response itself
            response.outcome.receipt.MergeFromString(UNKNOWN_FIELD)
            response.outcome.MergeFromString(UNKNOWN_FIELD)
            response.MergeFromString(UNKNOWN_FIELD)
        return response


async def start_provider(
    persona_dir: Path,
    node_bundle: dict[str, Any],
    *,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
) -> tuple[grpc.aio.Server, TesterProvider]:
    """Serve a persona's ``FederationService`` on its bundle endpoint (mTLS, callers from the node's CA).

    ``cert_pem``/``key_pem`` replace the persona's server certificate (R-TRN-4: one from another CA).

    Raises:
        federation.errors.ConfigError: the endpoint cannot be bound (the port is taken).

    """
    servicer = TesterProvider(persona_dir, node_bundle)
    ident = servicer.ident
    server = grpc.aio.server(options=[("grpc.max_send_message_length", 8 << 20)])
    pbg.add_FederationServiceServicer_to_server(servicer, server)
    creds = grpc.ssl_server_credentials(
        [(key_pem or ident.tls_pem("node.key"), cert_pem or ident.tls_pem("node.pem"))],
        root_certificates=node_bundle["ca_certificate_pem"].encode(),
        require_client_auth=True,
    )
    endpoint = ident.config.advertise or ident.config.listen
    try:
        bound = server.add_secure_port(endpoint, creds)
    except RuntimeError:
        bound = 0
    if bound == 0:
        from federation.errors import ConfigError

        raise ConfigError(
            f"persona {ident.config.org_name}: cannot listen on {endpoint} (its bundle's endpoint): "
            "is another run of the suite using it?",
            metadata={"endpoint": endpoint},
        )
    await server.start()
    return server, servicer
