"""Delegation chains at the provider: verification and Authorization Drift.

Interface used by :mod:`federation.node` (the implementation is being built;
until then a presentation carrying a DelegationCredential is refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from federation.errors import FederationError


class DelegationError(FederationError):
    """A delegation chain is malformed or invalid (broken, cycle, depth, expired, foreign org)."""

    reason = "BAD_DELEGATION"
    status = "PERMISSION_DENIED"
    caller_fault = True


class DriftError(DelegationError):
    """Authorization Drift: a link or request expands its parent's authority.

    Attributes:
        chain_agents: DIDs of every agent in the chain (their sessions are terminated).
    """

    reason = "AUTHORIZATION_DRIFT"

    def __init__(self, message: str, *, chain_agents: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.chain_agents = tuple(chain_agents)


@dataclass(frozen=True)
class DelegatedAuthority:
    """What a verified chain grants its last holder.

    Attributes:
        holder: the acting agent's DID (the VP holder).
        claims: claims for the policy input (``scopes`` = the delegated scopes, ``role``…).
        credential_id: the last link's credential id.
        not_after: unix time (seconds) the earliest link expires.
        scopes / purposes / fields: the attenuated authority.
        chain_agents: DIDs from the root agent to the holder.
    """

    holder: str
    claims: dict[str, Any]
    credential_id: str
    not_after: float | None
    scopes: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    chain_agents: tuple[str, ...] = field(default_factory=tuple)


def verify_delegated_presentation(vp: dict[str, Any], *, challenge: str, domain: str, resolve_key: Any,
                                  now: Any, status: Any, requester_org: str) -> DelegatedAuthority:
    """Verify a VP carrying an AgentCredential and a chain of DelegationCredentials.

    Raises:
        DriftError: a link expands its parent (scopes, fields, purposes).
        DelegationError: anything else wrong with the chain.
    """
    raise DelegationError("delegation chains are not supported by this node yet",
                          reason="DELEGATION_UNSUPPORTED")


def check_request_within(authority: DelegatedAuthority, *, purpose: str, fields: Sequence[str],
                         contract_id: str) -> None:
    """Refuse a request beyond the delegated purposes or fields.

    Raises:
        DriftError: the request expands the delegated authority.
    """
    if authority.purposes and purpose not in authority.purposes:
        raise DriftError(f"purpose {purpose!r} was not delegated", chain_agents=authority.chain_agents)
    extra = sorted(set(fields) - set(authority.fields)) if authority.fields else []
    if extra:
        raise DriftError(f"fields {extra} were not delegated", chain_agents=authority.chain_agents)
