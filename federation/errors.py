"""Typed errors of the node (``federation``).

Each error has a stable ``reason`` code (the ``google.rpc.ErrorInfo`` reason
on the wire), a ``status`` naming the gRPC status code it maps to (as a
string, so this module stays free of gRPC: looked up in the one table,
:data:`federation.reasons.STATUS_BY_REASON`), ``caller_fault`` and
``metadata`` (evidence, never data values). The single translator between
these errors (and the ``credentials``/``policy``/``ledger`` errors) and the
wire lives in :mod:`federation.wire`.
"""

from __future__ import annotations

from collections.abc import Mapping

from federation.reasons import status_for


class FederationError(Exception):
    """Base class of every node error.

    Attributes:
        reason: stable reason code, e.g. ``"UNKNOWN_PEER"``.
        status: gRPC status code name, e.g. ``"UNAUTHENTICATED"``: the reason's entry in
            :data:`federation.reasons.STATUS_BY_REASON`; the class default only for a
            reason that is data (not in the table); as sent for an error rebuilt from a peer.
        caller_fault: True when the caller's input caused it.
        metadata: string evidence for ``ErrorInfo.metadata``.

    """

    reason: str = "FEDERATION_ERROR"
    status: str = "INTERNAL"
    caller_fault: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        # the one table decides (federation.reasons); the class's status only for a reason that is data,
        # ``status`` only for an error rebuilt from a peer's answer (federation.wire.from_rpc_error)
        self.status = status if status is not None else status_for(self.reason, type(self).status)
        self.metadata: dict[str, str] = {k: str(v) for k, v in (metadata or {}).items()}


class ConfigError(FederationError):
    """The node directory or its configuration is missing or invalid."""

    reason = "CONFIG_INVALID"
    status = "FAILED_PRECONDITION"
    caller_fault = True


class PeerError(FederationError):
    """A peer is unknown, its bundle is invalid, or its certificate does not chain."""

    reason = "UNKNOWN_PEER"
    status = "UNAUTHENTICATED"
    caller_fault = True


class AuthenticationError(FederationError):
    """An agent or request could not be authenticated (signature, session, nonce)."""

    reason = "UNAUTHENTICATED"
    status = "UNAUTHENTICATED"
    caller_fault = True


class InvalidRequestError(FederationError):
    """A request is malformed (schema, size limits, unknown resource)."""

    reason = "MALFORMED_REQUEST"
    status = "INVALID_ARGUMENT"
    caller_fault = True


class NotFoundError(FederationError):
    """A named object (agent, contract, resource, session) does not exist."""

    reason = "NOT_FOUND"
    status = "NOT_FOUND"
    caller_fault = True


class DeniedError(FederationError):
    """The provider's policy denied the request; the denial is in its ledger.

    ``metadata`` carries ``disclosure_id``, ``leaf_index``, ``decision_hash``,
    ``reasons`` (comma-separated) and ``tlog_proof`` (the receipt).
    """

    reason = "POLICY_DENIED"
    status = "PERMISSION_DENIED"
    caller_fault = True


class PeerUnavailableError(FederationError):
    """A peer node could not be reached or answered with an error."""

    reason = "PEER_UNAVAILABLE"
    status = "UNAVAILABLE"
    caller_fault = False


class DatabaseUnavailableError(FederationError):
    """The node's database could not be reached, or dropped the connection mid-statement.

    Raised (translated at the RPC boundary, :func:`federation.store.as_unavailable`)
    for a connection-level failure: the server restarting or down, a
    connection reset, an administrator's shutdown. Nothing the request asked
    for was acknowledged; the caller may retry once the database is back (the
    node reconnects by itself: pooled connections are pinged before use).
    """

    reason = "DATABASE_UNAVAILABLE"
    status = "UNAVAILABLE"
    caller_fault = False


class ResourceLimitError(FederationError):
    """A per-peer or per-agent bound was reached (open sessions, challenges, request rate).

    The caller may retry later; nothing was recorded. ``metadata`` names the
    ``limit`` and its value.
    """

    reason = "RESOURCE_LIMIT"
    status = "RESOURCE_EXHAUSTED"
    caller_fault = True
