"""The gRPC boundary: errors ↔ status + ``google.rpc.ErrorInfo``, protobuf ↔ domain.

This is the single translator (STYLE principle 5). Domain errors of every
package carry a stable ``reason``; :func:`to_rpc_status` maps them to a
gRPC status code through ``STATUS_BY_REASON`` (or the error's own
``status`` for :class:`federation.errors.FederationError`), and
:func:`from_rpc_error` turns a peer's failure back into a
:class:`FederationError` with the same reason and metadata.
"""

from __future__ import annotations

import json

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from federation.domain import Outcome, Request
from federation.errors import (
    AuthenticationError,
    DeniedError,
    FederationError,
    InvalidRequestError,
    NotFoundError,
    PeerUnavailableError,
)
from federation.pb import federation_pb2 as pb

DOMAIN = "accord.federation.v1"

#: Status code for reasons raised by credentials / policy / ledger errors.
STATUS_BY_REASON: dict[str, grpc.StatusCode] = {
    "MALFORMED_CREDENTIAL": grpc.StatusCode.INVALID_ARGUMENT,
    "DOCUMENT_TOO_LARGE": grpc.StatusCode.INVALID_ARGUMENT,
    "DOCUMENT_TOO_COMPLEX": grpc.StatusCode.INVALID_ARGUMENT,
    "CONTEXT_NOT_ALLOWED": grpc.StatusCode.INVALID_ARGUMENT,
    "TERM_NOT_ALLOWED": grpc.StatusCode.INVALID_ARGUMENT,
    "VERIFICATION_TIMEOUT": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UNKNOWN_CONTEXT": grpc.StatusCode.INVALID_ARGUMENT,
    "UNDEFINED_TERM": grpc.StatusCode.INVALID_ARGUMENT,
    "RELATIVE_IRI": grpc.StatusCode.INVALID_ARGUMENT,
    "MALFORMED_KEY": grpc.StatusCode.INVALID_ARGUMENT,
    "UNSUPPORTED_CRYPTOSUITE": grpc.StatusCode.INVALID_ARGUMENT,
    "CONTRACT_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "MALFORMED_IDENTIFIER": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_PREDICATE": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_CONTRACT": grpc.StatusCode.NOT_FOUND,
    "CONTRACT_NOT_IN_FORCE": grpc.StatusCode.FAILED_PRECONDITION,
    "CONTRACT_UNSIGNED": grpc.StatusCode.FAILED_PRECONDITION,
    "CONTRACT_SIGNATURE_INVALID": grpc.StatusCode.FAILED_PRECONDITION,
    "RATE_LIMITED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "PRIVACY_BUDGET_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "BUDGET_KEYS_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RECONSTRUCTION_RISK": grpc.StatusCode.PERMISSION_DENIED,
    "EMPTY_SELECTION": grpc.StatusCode.PERMISSION_DENIED,
    "AUDIT_CAPACITY": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "INVALID_QUERY_KIND": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_DATASET": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_RECORD": grpc.StatusCode.INVALID_ARGUMENT,
    "ENGINE_ERROR": grpc.StatusCode.PERMISSION_DENIED,
}

_CODES = {c.name: c for c in grpc.StatusCode}


def status_code_for(err: BaseException) -> grpc.StatusCode:
    """The gRPC status code for a domain error (see the module docstring)."""
    reason = getattr(err, "reason", "")
    if isinstance(err, FederationError):
        return _CODES.get(err.status, grpc.StatusCode.INTERNAL)
    if reason in STATUS_BY_REASON:
        return STATUS_BY_REASON[reason]
    mod = type(err).__module__.split(".")[0]
    if mod == "credentials":
        return grpc.StatusCode.UNAUTHENTICATED
    if getattr(err, "caller_fault", False):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


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


def request_from_pb(signed: pb.SignedRequest) -> Request:
    """Domain :class:`federation.domain.Request` from a ``SignedRequest``."""
    b = signed.body
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
        signed_bytes=b.SerializeToString(deterministic=True),
        agent_signature=signed.agent_signature,
        aggregate_json=b.aggregate_json,
    )


def outcome_to_pb(outcome: Outcome) -> pb.Outcome:
    """Protobuf ``Outcome`` from a domain :class:`federation.domain.Outcome`."""
    return pb.Outcome(
        disclosure_id=outcome.disclosure_id,
        decision=outcome.decision,
        released_fields=list(outcome.released_fields),
        stripped_fields=list(outcome.stripped_fields),
        payload_json=json.dumps(outcome.payload, sort_keys=True, separators=(",", ":")).encode(),
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


def peer_cert(context: grpc.aio.ServicerContext) -> bytes | None:
    """The caller's client certificate (PEM) from the TLS auth context, or None."""
    auth = context.auth_context()
    certs = auth.get("x509_pem_cert")
    return certs[0] if certs else None
