"""The one table from Accord's refusals to A2A errors (JSON-RPC binding).

A2A (v1.0, "Error Handling") carries an error as a JSON-RPC error whose
``data`` holds a ``google.rpc.ErrorInfo`` (a2a-sdk builds it from the
error's ``data``, which becomes ``ErrorInfo.metadata``). The gateway keeps
A2A's own error codes and puts Accord's reason in that metadata:

=====================================  ===========================================  ========
Accord status of the reason            A2A error                                    code
=====================================  ===========================================  ========
``FREE_TEXT_NOT_ALLOWED``,             ``ContentTypeNotSupportedError``             -32005
``A2A_PART_UNSUPPORTED``
INVALID_ARGUMENT, NOT_FOUND            ``InvalidParamsError``                       -32602
UNAUTHENTICATED, PERMISSION_DENIED,    ``UnsupportedOperationError`` (the operation  -32004
FAILED_PRECONDITION,                   is refused to this caller: A2A has no
RESOURCE_EXHAUSTED                     authorization error of its own)
UNAVAILABLE, INTERNAL, other           ``InternalError``                            -32603
=====================================  ===========================================  ========

``ErrorInfo.metadata`` (strings only): ``accordReason`` (the reason code of
:data:`federation.reasons.STATUS_BY_REASON`), ``accordStatus`` (its gRPC
status name), ``detail`` (one line), and, for a refusal a provider logged,
its evidence — ``disclosure_id``, ``leaf_index``, ``decision_hash``,
``reasons``, ``tlog_proof`` (the receipt) and ``received_leaf_index`` (the
own node's "received" entry for the refusal).
"""

from __future__ import annotations

from a2a.utils.errors import (
    A2AError,
    ContentTypeNotSupportedError,
    InternalError,
    InvalidParamsError,
    UnsupportedOperationError,
)

from federation.errors import FederationError

CONTENT_REASONS = frozenset({"FREE_TEXT_NOT_ALLOWED", "A2A_PART_UNSUPPORTED"})
"""Reasons that are about a part's content type (A2A ``ContentTypeNotSupportedError``)."""

_BY_STATUS: dict[str, type[A2AError]] = {
    "INVALID_ARGUMENT": InvalidParamsError,
    "NOT_FOUND": InvalidParamsError,
    "UNAUTHENTICATED": UnsupportedOperationError,
    "PERMISSION_DENIED": UnsupportedOperationError,
    "FAILED_PRECONDITION": UnsupportedOperationError,
    "RESOURCE_EXHAUSTED": UnsupportedOperationError,
}

EVIDENCE_KEYS = (
    "disclosure_id",
    "leaf_index",
    "decision_hash",
    "reasons",
    "tlog_proof",
    "received_leaf_index",
    "peer",
)
"""Metadata of a refusal passed on to the A2A caller (a provider's logged refusal)."""
MAX_VALUE_CHARS = 8192
"""Longest metadata value passed on, characters (a receipt is about 1 KiB)."""


def to_a2a_error(exc: FederationError) -> A2AError:
    """The A2A error for an Accord refusal (table in the module docstring).

    Args:
        exc: any :class:`federation.errors.FederationError` (its ``reason``,
            ``status`` and ``metadata``).

    Returns:
        The a2a-sdk error to raise from the request handler; its ``data``
        becomes the JSON-RPC error's ``ErrorInfo.metadata``.

    """
    status = exc.status  # the reason table's status (federation.reasons), or as a peer sent it
    cls = (
        ContentTypeNotSupportedError
        if exc.reason in CONTENT_REASONS
        else _BY_STATUS.get(status, InternalError)
    )
    data = {"accordReason": exc.reason, "accordStatus": status, "detail": str(exc).splitlines()[0][:500]}
    for key in EVIDENCE_KEYS:
        value = (exc.metadata or {}).get(key)
        if value is not None:
            data[key] = str(value)[:MAX_VALUE_CHARS]
    return cls(f"{exc.reason}: {data['detail']}", data=data)
