"""The gRPC boundary: errors ↔ status + ``google.rpc.ErrorInfo``, protobuf ↔ domain.

This is the single translator (STYLE principle 5). Domain errors of every
package carry a stable ``reason``; :func:`to_rpc_status` maps them to a
gRPC status code through :data:`federation.reasons.STATUS_BY_REASON` (the
one table of reason → status), and
:func:`from_rpc_error` turns a peer's failure back into a
:class:`FederationError` with the same reason and metadata.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from federation.domain import Outcome, ReceivedOutcome, ReceivedReceipt, Request, payload_bytes
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


def request_from_pb(b: pb.RequestBody, signed: pb.SignedPayload) -> Request:
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
