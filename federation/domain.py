"""Domain types of one exchange: what crosses between the transport and the node.

Protobuf stops at the transport: :mod:`federation.wire` turns a
``SignedPayload`` into :class:`Signed`, opens it (through the
:class:`PayloadCodec` the server injects into the node) into
:class:`Envelope`, :class:`Request` or :class:`Possession`, and turns
:class:`Outcome` into the ``Outcome`` message; the peer client takes a
:class:`Signed` envelope and returns :class:`ReceivedOutcome`; the node and
the agent SDK see only these frozen values. Nothing here imports gRPC, protobuf or the node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from federation.errors import InvalidRequestError
from policy import check_identifier

__all__ = [
    "payload_bytes",
    "MAX_AGGREGATE_CHARS",
    "MAX_FIELDS",
    "LocalSession",
    "PeerLink",
    "Outcome",
    "ReceivedOutcome",
    "ReceivedReceipt",
    "Request",
    "Envelope",
    "PayloadCodec",
    "Possession",
    "Signed",
]

MAX_FIELDS = 64
#: largest aggregate query (JSON text) a request may carry, characters
MAX_AGGREGATE_CHARS = 16 * 1024


def payload_bytes(payload: Any) -> bytes:
    """The bytes of ``Outcome.payload_json`` for a released payload: UTF-8 JSON, sorted keys, no spaces.

    The one encoding of a payload: the provider logs ``response_digest`` as the
    SHA-256 of exactly these bytes and sends exactly these bytes, and the
    requester hashes what it receives (spec ``docs/spec/accord-v1.md`` §7.3).
    """
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Request:
    """One data request, as signed by the agent (domain form of ``RequestBody``).

    Attributes:
        contract_id: contract id.
        purpose: purpose in the contract.
        resource: resource name at the provider.
        subject: record key or ``"*"``.
        fields: requested field paths.
        provider_org: provider org DID.
        agent_did: requesting agent DID.
        nonce: unique request nonce.
        timestamp_ms: creation time, unix milliseconds.
        signed_bytes: the agent's ``SignedPayload.payload``, exactly as received.
        agent_signature: 64-byte Ed25519 signature over
            ``PAE("accord.federation.v1.RequestBody", signed_bytes)``.
        aggregate_json: optional aggregate query (JSON text).

    """

    contract_id: str
    purpose: str
    resource: str
    subject: str
    fields: tuple[str, ...]
    provider_org: str
    agent_did: str
    nonce: str
    timestamp_ms: int
    signed_bytes: bytes
    agent_signature: bytes
    aggregate_json: str = ""

    def validate(self) -> None:
        """Schema, size and identifier checks, before any lookup (issue #18, class 1).

        Every identifier is checked against :mod:`policy.identifiers` (one
        grammar: ASCII, no control characters, bounded length), so the exact
        string that passed here is the one the node's bookkeeping, the Rego
        engine, the auditor and the ledger see.

        Raises:
            InvalidRequestError: ``MALFORMED_REQUEST`` naming the bad member
                (sizes, counts, signature length, nonce).
            policy.InvalidIdentifierError: ``MALFORMED_IDENTIFIER`` (mapped to
                INVALID_ARGUMENT) naming the bad member.

        """
        check_identifier(self.contract_id, "contract", field="contract_id")
        check_identifier(self.purpose, "purpose", field="purpose")
        check_identifier(self.resource, "resource", field="resource")
        check_identifier(self.subject, "subject", field="subject")
        check_identifier(self.provider_org, "did", field="provider_org")
        check_identifier(self.agent_did, "did", field="agent_did")
        if not self.agent_did.startswith("did:key:"):
            raise InvalidRequestError("request.agent_did must be a did:key", metadata={"field": "agent_did"})
        if not self.fields and not self.aggregate_json:
            raise InvalidRequestError("request.fields is empty", metadata={"field": "fields"})
        if self.fields and self.aggregate_json:
            raise InvalidRequestError(
                "a request names fields or an aggregate query, not both", metadata={"field": "fields"}
            )
        if len(self.fields) > MAX_FIELDS:
            raise InvalidRequestError(
                f"request.fields has more than {MAX_FIELDS} entries", metadata={"field": "fields"}
            )
        for f in self.fields:
            check_identifier(f, "field", field="fields")
        if len(set(self.fields)) != len(self.fields):
            raise InvalidRequestError("request.fields repeats a path", metadata={"field": "fields"})
        if len(self.aggregate_json) > MAX_AGGREGATE_CHARS:
            raise InvalidRequestError(
                f"request.aggregate_json is over {MAX_AGGREGATE_CHARS} characters",
                metadata={"field": "aggregate_json"},
            )
        if not 16 <= len(self.nonce) <= 128 or not self.nonce.isascii() or not self.nonce.isprintable():
            raise InvalidRequestError(
                "request.nonce must be 16..128 printable ASCII", metadata={"field": "nonce"}
            )
        if len(self.agent_signature) != 64:
            raise InvalidRequestError(
                "agent_signature must be 64 bytes", metadata={"field": "agent_signature"}
            )


@dataclass
class Outcome:
    """The provider's answer to one request (domain form of ``Outcome``).

    Attributes mirror the protobuf message; ``receipt`` is a
    :class:`ledger.Receipt` and ``entry`` the logged entry's bytes.
    """

    disclosure_id: str
    decision: str
    released_fields: tuple[str, ...]
    stripped_fields: tuple[str, ...]
    payload: Any
    record_count: int
    reasons: tuple[str, ...]
    obligations: tuple[str, ...]
    effective_trust: float
    decision_hash: str
    receipt: Any
    entry: bytes
    leaf_index: int
    leaf_hash: bytes


@dataclass
class LocalSession:
    """Requester-side record of a session an agent opened through this node."""

    session_id: str
    peer_org: str
    agent_did: str
    agent_public_key: bytes
    expires_at: float
    #: requests of this session that carried data received under another contract (AD; issue #15)
    drift_events: int = 0


@dataclass(frozen=True)
class ReceivedReceipt:
    """A provider's receipt as it arrived at the requester (not yet verified).

    Attributes:
        tlog_proof: C2SP ``tlog-proof`` text (index, inclusion path, signed checkpoint).
        entry: the provider's logged entry, canonical bytes.
        leaf_index: the entry's index in the provider's log.
        leaf_hash: 32-byte RFC 9162 §2.1.1 leaf hash the provider claims.

    """

    tlog_proof: str
    entry: bytes
    leaf_index: int
    leaf_hash: bytes


@dataclass(frozen=True)
class ReceivedOutcome:
    """A provider's answer as the requester received it (domain form of the peer's ``Outcome``).

    Untrusted until :func:`federation.receipts.check_outcome_size` bounded it and
    :func:`federation.receipts.check_receipt` bound it to the request.

    Attributes:
        disclosure_id: the provider's id for the crossing.
        decision: ``"allow"`` (refusals arrive as errors).
        released_fields / stripped_fields / reasons / obligations: names only.
        payload_json: the released records, JSON bytes as the provider sent them.
        record_count: records released.
        effective_trust: τ the provider used, in [0, 1].
        decision_hash: hex digest of the provider's decision.
        receipt: the receipt for the logged disclosure.
        content_labels: flagged free text (this node's screening), for the agent.

    """

    disclosure_id: str
    decision: str
    released_fields: tuple[str, ...]
    stripped_fields: tuple[str, ...]
    payload_json: bytes
    record_count: int
    reasons: tuple[str, ...]
    obligations: tuple[str, ...]
    effective_trust: float
    decision_hash: str
    receipt: ReceivedReceipt
    #: ``(record, field, verdict, findings, quarantined)`` per flagged free-text value,
    #: set by this node's screening (:func:`federation.content.requester_controls`)
    content_labels: tuple[tuple[int, str, str, tuple[str, ...], bool], ...] = ()


@dataclass(frozen=True)
class Signed:
    """A signed payload as it crossed the wire (domain form of ``SignedPayload``, spec §4).

    Attributes:
        payload_type: e.g. ``"accord.federation.v1.RequestBody"``.
        payload: the signed bytes, exactly as received (never re-serialized).
        signature: Ed25519 signature over ``PAE(payload_type, payload)``.

    """

    payload_type: str
    payload: bytes
    signature: bytes


@dataclass(frozen=True)
class Envelope:
    """An opened organization-signed ``ExchangeEnvelope`` (spec §4).

    Attributes:
        session_id: the provider's session id.
        requester_org: DID of the organization that signed the envelope.
        request: the agent's signed ``RequestBody``, untouched.

    """

    session_id: str
    requester_org: str
    request: Signed


@dataclass(frozen=True)
class Possession:
    """An opened agent-signed ``SessionPossession`` (proof of possession for a session)."""

    agent_did: str
    peer_org: str
    challenge: str


class PayloadCodec(Protocol):
    """How the node opens and makes signed payloads (:class:`federation.wire.WirePayloads`).

    ``kind`` names the payload message: ``"ExchangeEnvelope"`` (opened as an
    :class:`Envelope`), ``"RequestBody"`` (a :class:`Request`) or
    ``"SessionPossession"`` (a :class:`Possession`). Errors are those of
    :func:`federation.signing.open_payload` (reason codes of spec §4.4).
    """

    def open(self, signed: Signed, kind: str, public_key: bytes, *, signer: str, field: str) -> Any:
        """Verify ``signed`` (bound, type/version, signature) and decode it as ``kind``."""
        ...

    def sign_envelope(self, key: Any, *, session_id: str, request: Signed, requester_org: str) -> Signed:
        """The organization-signed ``ExchangeEnvelope`` carrying the agent's ``request`` untouched."""
        ...


class PeerLink(Protocol):
    """What the node needs from its client to peer nodes (:class:`federation.peer_client.PeerClient`).

    ``bundle`` is the peer's pinned :class:`federation.peers.PeerBundle`; failures
    raise :class:`federation.errors.FederationError` with the peer's reason.
    """

    async def get_challenge(self, bundle: Any, agent_did: str) -> tuple[str, str, int]:
        """(challenge, domain, expires_at) for a presentation of ``agent_did``."""
        ...

    async def open_session(self, bundle: Any, presentation_json: bytes) -> dict[str, Any]:
        """Forward a presentation: ``{"session_id", "expires_at", "effective_trust"}``."""
        ...

    async def exchange(self, bundle: Any, envelope: Signed) -> ReceivedOutcome:
        """Send an organization-signed envelope; the provider's answer, unchecked."""
        ...

    async def get_status_list(self, bundle: Any, purpose: str) -> dict[str, Any]:
        """The peer's signed status list credential."""
        ...
