"""The gRPC boundary: errors ↔ status + ``google.rpc.ErrorInfo``, protobuf ↔ domain.

This is the single translator (STYLE principle 5). Domain errors of every
package carry a stable ``reason``; :func:`to_rpc_status` maps them to a
gRPC status code through :data:`federation.reasons.STATUS_BY_REASON` (the
one table of reason → status), and
:func:`from_rpc_error` turns a peer's failure back into a
:class:`FederationError` with the same reason and metadata.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from federation.domain import (
    Envelope,
    Outcome,
    Possession,
    ReceivedOutcome,
    ReceivedReceipt,
    Request,
    Signed,
    payload_bytes,
)
from federation.errors import (
    AuthenticationError,
    DeniedError,
    FederationError,
    InvalidRequestError,
    NotFoundError,
    PeerUnavailableError,
)
from federation.pb import federation_pb2 as pb
from federation.reasons import status_for
from federation.signing import open_payload, sign_payload

DOMAIN = "accord.federation.v1"

_CODES = {c.name: c for c in grpc.StatusCode}


def status_code_for(err: BaseException) -> grpc.StatusCode:
    """The gRPC status code for a domain error of any package.

    The reason's entry in :data:`federation.reasons.STATUS_BY_REASON` (the
    one table; a :class:`FederationError` looked it up when it was made, and
    keeps an explicit status only where ``federation.reasons`` allows one);
    for a reason that is data (a contract hook's own deny code) the
    :class:`FederationError` class's status; ``INTERNAL`` for anything else.
    """
    if isinstance(err, FederationError):  # its status was looked up in the table when it was made
        return _CODES.get(err.status, grpc.StatusCode.INTERNAL)
    reason = getattr(err, "reason", "")
    name = status_for(reason, "INTERNAL") if isinstance(reason, str) else "INTERNAL"
    return _CODES.get(name, grpc.StatusCode.INTERNAL)


def to_rpc_status(err: BaseException) -> grpc.Status:
    """A ``grpc.Status`` with one ``google.rpc.ErrorInfo`` detail for ``err``."""
    code = status_code_for(err)
    reason = getattr(err, "reason", None) or "INTERNAL"
    metadata = {k: str(v) for k, v in (getattr(err, "metadata", None) or {}).items()}
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    message = (
        str(err) if code != grpc.StatusCode.INTERNAL or getattr(err, "reason", None) else "internal error"
    )
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message[:1000], details=[detail])
    )


def error_info(exc: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ``ErrorInfo`` detail of a failed call, if any."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except Exception:  # malformed trailer: treat as absent
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


_ERR_BY_CODE: dict[grpc.StatusCode, type[FederationError]] = {
    grpc.StatusCode.PERMISSION_DENIED: DeniedError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
}


def from_rpc_error(exc: grpc.RpcError) -> FederationError:
    """Turn a peer's failed call into a :class:`FederationError` (same reason, metadata, status)."""
    code = exc.code()  # type: ignore[attr-defined]
    info = error_info(exc)
    cls = _ERR_BY_CODE.get(
        code, PeerUnavailableError if code == grpc.StatusCode.UNAVAILABLE else FederationError
    )
    reason = info.reason if info is not None else code.name
    meta = dict(info.metadata) if info is not None else {}
    return cls(
        exc.details() or code.name,
        reason=reason,
        status=code.name,  # type: ignore[attr-defined]
        metadata=meta,
    )


# ---------------------------------------------------------------- conversions


def signed_from_pb(signed: pb.SignedPayload) -> Signed:
    """Domain :class:`federation.domain.Signed` from a received ``SignedPayload`` (bytes unchanged)."""
    return Signed(payload_type=signed.payload_type, payload=signed.payload, signature=signed.signature)


def signed_to_pb(signed: Signed) -> pb.SignedPayload:
    """The ``SignedPayload`` message carrying ``signed``'s three members unchanged."""
    return pb.SignedPayload(
        payload_type=signed.payload_type, payload=signed.payload, signature=signed.signature
    )


#: payload kind (message name) -> its protobuf class
PAYLOAD_MESSAGES: dict[str, Any] = {
    "ExchangeEnvelope": pb.ExchangeEnvelope,
    "RequestBody": pb.RequestBody,
    "SessionPossession": pb.SessionPossession,
}


class WirePayloads:
    """The node's :class:`federation.domain.PayloadCodec` over Accord wire v1 (spec §4).

    Opening verifies with :func:`federation.signing.open_payload` (bound,
    type/version, signature, parse, unknown fields) and translates the
    message into its domain value; nothing is re-serialized.
    """

    def open(self, signed: Signed, kind: str, public_key: bytes, *, signer: str, field: str) -> Any:
        """Verify ``signed`` and return its domain value.

        Args:
            signed: the signed payload as received.
            kind: ``"ExchangeEnvelope"``, ``"RequestBody"`` or ``"SessionPossession"``.
            public_key: the 32-byte Ed25519 key trusted for this signer.
            signer: ``"org"`` or ``"agent"`` (selects the signature failure reason).
            field: the request member, for error metadata.

        Returns:
            An :class:`Envelope`, a :class:`Request` (its ``signed_bytes`` are
            ``signed.payload``) or a :class:`Possession`.

        Raises:
            InvalidRequestError / AuthenticationError: see
                :func:`federation.signing.open_payload`.

        """
        message = open_payload(
            signed,  # type: ignore[arg-type]  # the same three members a SignedPayload has
            PAYLOAD_MESSAGES[kind],
            public_key,
            signer=signer,  # type: ignore[arg-type]
            field=field,
        )
        return self._to_domain(message, signed)

    def decode(self, signed: Signed, kind: str) -> Any:
        """``signed.payload`` parsed as ``kind`` and translated, with no bound, type or signature check.

        Raises:
            google.protobuf.message.DecodeError: the bytes do not parse.

        """
        return self._to_domain(PAYLOAD_MESSAGES[kind].FromString(signed.payload), signed)

    @staticmethod
    def _to_domain(message: Any, signed: Signed) -> Any:
        if isinstance(message, pb.ExchangeEnvelope):
            return Envelope(
                session_id=message.session_id,
                requester_org=message.requester_org,
                request=signed_from_pb(message.request),
            )
        if isinstance(message, pb.RequestBody):
            return request_from_pb(message, signed)
        return Possession(agent_did=message.agent_did, peer_org=message.peer_org, challenge=message.challenge)

    def sign_envelope(self, key: Any, *, session_id: str, request: Signed, requester_org: str) -> Signed:
        """The ``ExchangeEnvelope`` signed with the organization ``key`` (agent's ``request`` untouched)."""
        return signed_from_pb(
            sign_payload(
                key,
                pb.ExchangeEnvelope(
                    session_id=session_id, request=signed_to_pb(request), requester_org=requester_org
                ),
            )
        )


def request_from_pb(b: pb.RequestBody, signed: pb.SignedPayload | Signed) -> Request:
    """Domain :class:`federation.domain.Request` from an opened ``RequestBody``.

    Args:
        b: the body :func:`federation.signing.open_payload` parsed from ``signed``.
        signed: the agent's ``SignedPayload`` as received; its ``payload`` bytes
            become ``Request.signed_bytes`` unchanged (never re-serialized).

    """
    return Request(
        contract_id=b.contract_id,
        purpose=b.purpose,
        resource=b.resource,
        subject=b.subject,
        fields=tuple(b.fields),
        provider_org=b.provider_org,
        agent_did=b.agent_did,
        nonce=b.nonce,
        timestamp_ms=b.timestamp_ms,
        signed_bytes=signed.payload,
        agent_signature=signed.signature,
        aggregate_json=b.aggregate_json,
    )


def outcome_to_pb(outcome: Outcome) -> pb.Outcome:
    """Protobuf ``Outcome`` from a domain :class:`federation.domain.Outcome`."""
    return pb.Outcome(
        disclosure_id=outcome.disclosure_id,
        decision=outcome.decision,
        released_fields=list(outcome.released_fields),
        stripped_fields=list(outcome.stripped_fields),
        payload_json=payload_bytes(outcome.payload),
        record_count=outcome.record_count,
        reasons=list(outcome.reasons),
        obligations=list(outcome.obligations),
        effective_trust=outcome.effective_trust,
        decision_hash=outcome.decision_hash,
        receipt=pb.Receipt(
            tlog_proof=outcome.receipt.to_text(),
            entry=outcome.entry,
            leaf_index=outcome.leaf_index,
            leaf_hash=outcome.leaf_hash,
        ),
    )


def received_outcome_from_pb(outcome: pb.Outcome) -> ReceivedOutcome:
    """Domain :class:`federation.domain.ReceivedOutcome` from a peer's ``Outcome`` (no checks: untrusted)."""
    r = outcome.receipt
    return ReceivedOutcome(
        disclosure_id=outcome.disclosure_id,
        decision=outcome.decision,
        released_fields=tuple(outcome.released_fields),
        stripped_fields=tuple(outcome.stripped_fields),
        payload_json=outcome.payload_json,
        record_count=outcome.record_count,
        reasons=tuple(outcome.reasons),
        obligations=tuple(outcome.obligations),
        effective_trust=outcome.effective_trust,
        decision_hash=outcome.decision_hash,
        receipt=ReceivedReceipt(
            tlog_proof=r.tlog_proof, entry=r.entry, leaf_index=r.leaf_index, leaf_hash=r.leaf_hash
        ),
    )


def received_outcome_to_pb(outcome: ReceivedOutcome) -> pb.Outcome:
    """The peer's ``Outcome`` again, member for member, for the agent (``SendRequestResponse``)."""
    r = outcome.receipt
    return pb.Outcome(
        disclosure_id=outcome.disclosure_id,
        decision=outcome.decision,
        released_fields=list(outcome.released_fields),
        stripped_fields=list(outcome.stripped_fields),
        payload_json=outcome.payload_json,
        record_count=outcome.record_count,
        reasons=list(outcome.reasons),
        obligations=list(outcome.obligations),
        effective_trust=outcome.effective_trust,
        decision_hash=outcome.decision_hash,
        receipt=pb.Receipt(
            tlog_proof=r.tlog_proof, entry=r.entry, leaf_index=r.leaf_index, leaf_hash=r.leaf_hash
        ),
    )


def peer_cert(context: grpc.aio.ServicerContext) -> bytes | None:
    """The caller's client certificate (PEM) from the TLS auth context, or None."""
    auth = context.auth_context()
    certs = auth.get("x509_pem_cert")
    return certs[0] if certs else None
