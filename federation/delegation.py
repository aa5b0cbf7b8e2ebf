"""Delegation chains: issuing links, presenting them, and verifying them at the provider.

An agent may hand a *subset* of its authority to another agent with a signed
``DelegationCredential`` (W3C VC Data Model 2.0, secured with the
``eddsa-jcs-2022`` cryptosuite so that no JSON-LD terms are needed for the
delegation claims)::

    {
      "@context": ["https://www.w3.org/ns/credentials/v2", ACCORD_CONTEXT_URL],
      "id": "urn:uuid:…",
      "type": ["VerifiableCredential", "DelegationCredential"],
      "issuer": "did:key:z6Mk…",            # the delegating agent
      "validFrom": "…Z", "validUntil": "…Z",  # validUntil is required
      "credentialSubject": {
        "id": "did:key:z6Mk…",              # the delegatee agent
        "parent": "urn:uuid:…",             # parent link id, or the root AgentCredential id
        "scopes": ["patients:read"],        # ⊆ the parent's scopes
        "purposes": ["triage-coordination"],# optional; ⊆ the parent's purposes
        "fields": ["patient_id", …],        # optional; each within the parent's fields
        "maxDepth": 1                       # further hops allowed below this link
      }
    }

The holder (the last delegatee) presents ``[root AgentCredential, link 1, …,
link n]`` in one Verifiable Presentation bound to the provider's challenge and
DID. :func:`verify_delegated_presentation` checks, in order: the presentation
proof (holder key, challenge, domain); exactly one root ``AgentCredential``,
issued by the requesting organization (``FOREIGN_ORG`` otherwise) and verified
with its status; the parent references from the holder's link back to the
root (``BROKEN_CHAIN``, ``DELEGATION_CYCLE``); the depth (``maxDepth`` of every
link and :data:`MAX_CHAIN_LINKS`: ``DELEGATION_TOO_DEEP``); each link's
signature by its issuer's ``did:key`` (``BAD_DELEGATION_SIGNATURE``) and its
validity window (``DELEGATION_EXPIRED``); and attenuation — scopes, purposes
and fields of every link within its parent's. Any expansion is
*Authorization Drift* (:class:`DriftError`): the node writes a ``drift`` ledger
entry, lowers τ for the pair and terminates the sessions of every agent in
the chain (see :meth:`federation.node.Node.record_drift`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from credentials import (
    ACCORD_CONTEXT_URL,
    VC_V2_CONTEXT_URL,
    CredentialError,
    Ed25519KeyPair,
    ExpiredError,
    NotYetValidError,
    VerifiedCredential,
    create_presentation,
    issue_credential,
    verification_method_id,
    verify_credential,
    verify_presentation_proof,
)
from federation.errors import FederationError
from policy.paths import covered_by, is_valid_path

__all__ = [
    "DELEGATION_CREDENTIAL_TYPE",
    "DELEGATION_CRYPTOSUITE",
    "MAX_CHAIN_LINKS",
    "DelegatedAuthority",
    "DelegationError",
    "DriftError",
    "check_request_within",
    "delegate",
    "delegation_credential",
    "delegation_presentation",
    "open_delegated_session",
    "verify_delegated_job",
    "verify_delegated_presentation",
]

#: The credential type of a delegation link.
DELEGATION_CREDENTIAL_TYPE = "DelegationCredential"
#: Links and delegated presentations are secured with JCS (no JSON-LD terms needed).
DELEGATION_CRYPTOSUITE = "eddsa-jcs-2022"
#: Global cap on the number of delegation links in one chain (whatever maxDepth says).
MAX_CHAIN_LINKS = 8

_AGENT_CREDENTIAL_TYPE = "AgentCredential"


class DelegationError(FederationError):
    """A delegation chain is malformed or invalid (broken, cycle, depth, expired, foreign org).

    Reasons: ``BROKEN_CHAIN``, ``DELEGATION_CYCLE``, ``DELEGATION_TOO_DEEP``,
    ``DELEGATION_EXPIRED``, ``FOREIGN_ORG``, ``BAD_DELEGATION_SIGNATURE``,
    ``MALFORMED_DELEGATION`` (default ``BAD_DELEGATION``).
    """

    reason = "BAD_DELEGATION"
    status = "PERMISSION_DENIED"
    caller_fault = True


class DriftError(DelegationError):
    """Authorization Drift: a link or request expands its parent's authority.

    Attributes:
        chain_agents: DIDs of every agent in the chain (their sessions are terminated).
        metadata: ``dimension`` (``scopes``/``purposes``/``fields``), ``extra``
            (the expanded values, comma-separated) and ``link`` (1-based link index,
            ``request`` for a request beyond the delegated authority).
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
        claims: claims for the policy input: the root agent's claims with
            ``id`` = holder, ``scopes`` = the delegated scopes (sorted list),
            ``delegatedBy`` = the root agent DID and ``delegationDepth`` = links.
        credential_id: the last link's credential id.
        not_after: unix time (seconds) the earliest credential of the chain expires.
        scopes: the delegated scopes (never empty).
        purposes: the delegated purposes; empty = not restricted by the chain.
        fields: the delegated field paths; empty = not restricted by the chain.
        chain_agents: DIDs from the root agent to the holder.
        root_credential: the verified root AgentCredential (for a status check by
            a caller that verified the chain with ``status=None``, e.g. in a worker).
        chain_credentials: credential ids from the root AgentCredential to the
            last link (provenance: recorded in every disclosure entry of the session).
    """

    holder: str
    claims: dict[str, Any]
    credential_id: str
    not_after: float | None
    scopes: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    chain_agents: tuple[str, ...] = field(default_factory=tuple)
    root_credential: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    chain_credentials: tuple[str, ...] = field(default_factory=tuple)

    @property
    def root_agent(self) -> str:
        """The DID of the agent that rooted the chain (first of :attr:`chain_agents`)."""
        return self.chain_agents[0] if self.chain_agents else self.holder

    def provenance(self) -> dict[str, str]:
        """Ledger-entry ``extra`` members that attribute a request through the chain.

        ``root_agent`` (DID), ``chain_agents`` (DIDs root → holder, comma-separated),
        ``delegation_chain`` (credential ids root → last link, comma-separated).
        """
        return {
            "root_agent": self.root_agent,
            "chain_agents": ",".join(self.chain_agents),
            "delegation_chain": ",".join(self.chain_credentials),
        }


# --------------------------------------------------------------------- issuing


def _rfc3339(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return t.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _credential_id(credential: dict[str, Any]) -> str:
    cid = credential.get("id")
    if not isinstance(cid, str) or not cid:
        raise DelegationError("a credential in the chain has no id", reason="MALFORMED_DELEGATION")
    return cid


def delegation_credential(
    *,
    delegator: str,
    delegatee: str,
    parent_id: str,
    scopes: Sequence[str],
    valid_until: dt.datetime,
    purposes: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    max_depth: int = 0,
    valid_from: dt.datetime | None = None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """Build an unsigned DelegationCredential (shape in the module docstring).

    Args:
        delegator: the issuing agent's ``did:key``.
        delegatee: the receiving agent's ``did:key``.
        parent_id: id of the parent link, or of the root AgentCredential.
        scopes: delegated scopes (non-empty).
        valid_until: expiry (aware datetime, written in UTC to the second).
        purposes: delegated purposes, or None to inherit the parent's.
        fields: delegated field paths, or None to inherit the parent's.
        max_depth: further delegation hops allowed below this link (≥ 0).
        valid_from: start of validity (default: not stated).
        credential_id: the link id (default: a fresh ``urn:uuid:``).

    Returns:
        The unsigned credential (a new dict).

    Raises:
        DelegationError: ``MALFORMED_DELEGATION`` for empty scopes or a negative depth.
    """
    if not scopes or max_depth < 0:
        raise DelegationError(
            "a delegation needs scopes and a non-negative maxDepth", reason="MALFORMED_DELEGATION"
        )
    subject: dict[str, Any] = {
        "id": delegatee,
        "parent": parent_id,
        "scopes": sorted(set(scopes)),
        "maxDepth": int(max_depth),
    }
    if purposes is not None:
        subject["purposes"] = sorted(set(purposes))
    if fields is not None:
        subject["fields"] = sorted(set(fields))
    cred: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT_URL, ACCORD_CONTEXT_URL],
        "id": credential_id or f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", DELEGATION_CREDENTIAL_TYPE],
        "issuer": delegator,
        "credentialSubject": subject,
        "validUntil": _rfc3339(valid_until),
    }
    if valid_from is not None:
        cred["validFrom"] = _rfc3339(valid_from)
    return cred


def delegate(
    *,
    key: Ed25519KeyPair,
    delegator: str,
    delegatee: str,
    parent: dict[str, Any],
    scopes: Sequence[str],
    valid_until: dt.datetime,
    purposes: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    max_depth: int = 0,
    valid_from: dt.datetime | None = None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """Issue one delegation link, signed by the delegator's agent key (``eddsa-jcs-2022``).

    The issuer does not check attenuation: a delegator may sign anything, and
    the verifier (:func:`verify_delegated_presentation`) refuses expansions as
    Authorization Drift.

    Args:
        key: the delegator's Ed25519 key (the key of ``delegator``).
        delegator: the delegator's ``did:key``.
        delegatee: the delegatee's ``did:key``.
        parent: the parent credential (root AgentCredential or parent link); its ``id`` is referenced.
        scopes: delegated scopes (non-empty).
        valid_until: expiry (aware datetime).
        purposes: delegated purposes, or None to inherit the parent's.
        fields: delegated field paths, or None to inherit the parent's.
        max_depth: further delegation hops allowed below this link (≥ 0).
        valid_from: start of validity (default: not stated).
        credential_id: the link id (default: a fresh ``urn:uuid:``).

    Returns:
        The signed DelegationCredential.

    Raises:
        DelegationError: ``MALFORMED_DELEGATION`` (see :func:`delegation_credential`).
        credentials.CredentialError: signing failed.
    """
    unsigned = delegation_credential(
        delegator=delegator,
        delegatee=delegatee,
        parent_id=_credential_id(parent),
        scopes=scopes,
        valid_until=valid_until,
        purposes=purposes,
        fields=fields,
        max_depth=max_depth,
        valid_from=valid_from,
        credential_id=credential_id,
    )
    return issue_credential(
        unsigned,
        key=key,
        verification_method=verification_method_id(delegator),
        cryptosuite=DELEGATION_CRYPTOSUITE,
    )


def delegation_presentation(
    chain: Sequence[dict[str, Any]], *, holder: str, key: Ed25519KeyPair, challenge: str, domain: str
) -> dict[str, Any]:
    """The holder's Verifiable Presentation of ``[root AgentCredential, link 1, …, link n]``.

    Args:
        chain: the root AgentCredential followed by the links (root first).
        holder: the last delegatee's ``did:key``.
        key: the holder's key.
        challenge: the provider's challenge.
        domain: the provider organization's DID.

    Returns:
        The signed presentation (``eddsa-jcs-2022``).

    Raises:
        credentials.CredentialError: empty chain or signing failure.
    """
    return create_presentation(
        list(chain),
        holder=holder,
        key=key,
        verification_method=verification_method_id(holder),
        challenge=challenge,
        domain=domain,
        cryptosuite=DELEGATION_CRYPTOSUITE,
    )


async def open_delegated_session(client: Any, peer: str, chain: Sequence[dict[str, Any]]) -> Any:
    """Agent SDK: open a session with ``peer`` presenting a delegation chain.

    Args:
        client: a :class:`federation.client.AgentClient` of the holder (the last delegatee).
        peer: the provider organization (name or DID).
        chain: root AgentCredential then links (see :func:`delegation_presentation`).

    Returns:
        A :class:`federation.client.AgentSession`.

    Raises:
        federation.errors.FederationError: refused, with the provider's reason
            (e.g. ``AUTHORIZATION_DRIFT``, ``BROKEN_CHAIN``).
    """
    w = client.wallet
    return await client.open_session_with(
        peer,
        lambda challenge, domain: delegation_presentation(
            chain, holder=w.did, key=w.key, challenge=challenge, domain=domain
        ),
    )


# ------------------------------------------------------------------ verifying


def _types(cred: Any) -> list[str]:
    if not isinstance(cred, dict):
        return []
    t = cred.get("type")
    return [t] if isinstance(t, str) else [x for x in (t or []) if isinstance(x, str)]


def _issuer(cred: dict[str, Any]) -> str:
    iss = cred.get("issuer")
    if isinstance(iss, dict):
        iss = iss.get("id")
    if not isinstance(iss, str) or not iss:
        raise DelegationError("credential has no issuer", reason="MALFORMED_DELEGATION")
    return iss


def _str_set(value: Any, what: str, *, required: bool) -> frozenset[str] | None:
    if value is None and not required:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v and len(v) <= 200 for v in value)
    ):
        raise DelegationError(
            f"credentialSubject.{what} must be a non-empty list of strings",
            reason="MALFORMED_DELEGATION",
            metadata={"field": what},
        )
    return frozenset(value)


@dataclass(frozen=True)
class _Link:
    cred: dict[str, Any]
    id: str
    issuer: str
    subject: str
    parent: str
    scopes: frozenset[str]
    purposes: frozenset[str] | None
    fields: frozenset[str] | None
    max_depth: int


def _parse_link(cred: dict[str, Any]) -> _Link:
    subj = cred.get("credentialSubject")
    if not isinstance(subj, dict):
        raise DelegationError(
            "DelegationCredential needs one credentialSubject object", reason="MALFORMED_DELEGATION"
        )
    sid, parent, depth = subj.get("id"), subj.get("parent"), subj.get("maxDepth")
    if not isinstance(sid, str) or not sid.startswith("did:key:"):
        raise DelegationError(
            "delegatee must be a did:key", reason="MALFORMED_DELEGATION", metadata={"field": "id"}
        )
    if not isinstance(parent, str) or not parent:
        raise DelegationError(
            "credentialSubject.parent is missing",
            reason="BROKEN_CHAIN",
            metadata={"link": _credential_id(cred)},
        )
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise DelegationError(
            "credentialSubject.maxDepth must be a non-negative integer",
            reason="MALFORMED_DELEGATION",
            metadata={"field": "maxDepth"},
        )
    if "validUntil" not in cred:
        raise DelegationError(
            "a delegation link must expire (validUntil)",
            reason="MALFORMED_DELEGATION",
            metadata={"field": "validUntil"},
        )
    fields = _str_set(subj.get("fields"), "fields", required=False)
    if fields is not None and not all(is_valid_path(f) for f in fields):
        raise DelegationError(
            "credentialSubject.fields holds an invalid field path",
            reason="MALFORMED_DELEGATION",
            metadata={"field": "fields"},
        )
    return _Link(
        cred=cred,
        id=_credential_id(cred),
        issuer=_issuer(cred),
        subject=sid,
        parent=parent,
        scopes=_str_set(subj.get("scopes"), "scopes", required=True) or frozenset(),
        purposes=_str_set(subj.get("purposes"), "purposes", required=False),
        fields=fields,
        max_depth=depth,
    )


def _order_chain(links: list[_Link], root_id: str, holder: str) -> list[_Link]:
    """Links from the root to the holder, following parent references back from the holder."""
    by_id: dict[str, _Link] = {}
    for link in links:
        if link.id in by_id or link.id == root_id:
            raise DelegationError(
                "two credentials in the chain share an id",
                reason="DELEGATION_CYCLE",
                metadata={"link": link.id[:200]},
            )
        by_id[link.id] = link
    referenced = {link.parent for link in links}
    leaves = [link for link in links if link.id not in referenced]
    if len(leaves) != 1:
        # no leaf: every link is someone's parent, i.e. the references loop
        raise DelegationError(
            "the delegation chain has no single last link",
            reason="DELEGATION_CYCLE" if not leaves else "BROKEN_CHAIN",
            metadata={"leaves": str(len(leaves))},
        )
    leaf = leaves[0]
    if leaf.subject != holder:
        raise DelegationError(
            "the last link is not delegated to the presentation holder",
            reason="BROKEN_CHAIN",
            metadata={"holder": holder[:200]},
        )
    ordered = [leaf]
    seen = {leaf.id}
    current = leaf
    while current.parent != root_id:
        parent = by_id.get(current.parent)
        if parent is None:
            raise DelegationError(
                "a link's parent is not in the chain",
                reason="BROKEN_CHAIN",
                metadata={"link": current.id[:200], "parent": current.parent[:200]},
            )
        if parent.id in seen:
            raise DelegationError(
                "the parent references form a cycle",
                reason="DELEGATION_CYCLE",
                metadata={"link": parent.id[:200]},
            )
        seen.add(parent.id)
        ordered.append(parent)
        current = parent
    if len(ordered) != len(links):
        raise DelegationError(
            "the presentation holds links outside the chain",
            reason="BROKEN_CHAIN",
            metadata={"links": str(len(links)), "chain": str(len(ordered))},
        )
    ordered.reverse()
    return ordered


def verify_delegated_presentation(
    vp: dict[str, Any],
    *,
    challenge: str,
    domain: str,
    resolve_key: Any,
    now: Any,
    status: Any,
    requester_org: str,
    allowed_orgs: Collection[str] = (),
) -> DelegatedAuthority:
    """Verify a VP carrying an AgentCredential and a chain of DelegationCredentials.

    Built on the credentials verifier: the presentation's bounds, profile and
    holder proof are :func:`credentials.verify_presentation_proof`; the root
    and every link are :func:`credentials.verify_credential`. What is
    delegation's own: the chain's shape (:func:`_split_chain`,
    :func:`_order_chain`), who may root it (:func:`_verify_root`), the
    links' depth and issuers (:func:`_verify_links`) and attenuation
    (:func:`_attenuate`).

    Args:
        vp: the parsed presentation (holder = the last delegatee).
        challenge: the challenge this node issued for the session.
        domain: this node's organization DID.
        resolve_key: key resolver for the organization and ``did:key`` verification methods.
        now: verification time (aware datetime).
        status: status checker for the root AgentCredential (None skips status).
        requester_org: DID of the forwarding organization; the root must be issued by it.
        allowed_orgs: further organizations whose agents may root a chain
            presented by ``requester_org`` (e.g. parties named by the contract);
            default none.

    Returns:
        The :class:`DelegatedAuthority` of the holder.

    Raises:
        DriftError: a link expands its parent (scopes, purposes, fields).
        DelegationError: ``BROKEN_CHAIN``, ``DELEGATION_CYCLE``, ``DELEGATION_TOO_DEEP``,
            ``DELEGATION_EXPIRED``, ``FOREIGN_ORG``, ``BAD_DELEGATION_SIGNATURE``,
            ``MALFORMED_DELEGATION``.
        credentials.CredentialError: the presentation is beyond the document limits
            (``DOCUMENT_TOO_LARGE``, ``DOCUMENT_TOO_COMPLEX``), outside Accord's
            JSON-LD profile (``CONTEXT_NOT_ALLOWED``, ``TERM_NOT_ALLOWED``,
            ``UNKNOWN_CONTEXT``) or not a presentation (``MALFORMED_CREDENTIAL``),
            checked first; the presentation proof (wrong challenge, domain, holder
            key) or the root AgentCredential (signature, status, validity) does
            not verify.
    """
    if not isinstance(vp, dict):
        raise DelegationError("presentation must be a JSON object", reason="MALFORMED_DELEGATION")
    # bounded and in Accord's JSON-LD profile before anything is read by JSON key: the keys
    # read below (type, issuer, validUntil, credentialSubject.parent/scopes/…) then mean
    # what the signatures cover
    presented = verify_presentation_proof(
        vp, challenge=challenge, domain=domain, resolve_key=resolve_key, now=now
    )
    holder = presented.holder
    if not holder.startswith("did:key:"):
        raise DelegationError("presentation holder must be a did:key", reason="MALFORMED_DELEGATION")
    root_raw, raw_links = _split_chain(presented.embedded)
    root = _verify_root(
        root_raw,
        requester_org=requester_org,
        allowed_orgs=allowed_orgs,
        resolve_key=resolve_key,
        now=now,
        status=status,
    )
    root_id = _credential_id(root_raw)
    links = _order_chain([_parse_link(c) for c in raw_links], root_id, holder)
    agents = [root.subject_id or ""] + [link.subject for link in links]
    if len(set(agents)) != len(agents):
        raise DelegationError(
            "an agent appears twice in the delegation chain",
            reason="DELEGATION_CYCLE",
            metadata={"agents": str(len(agents))},
        )
    ends = [root.valid_until, *_verify_links(links, agents, resolve_key=resolve_key, now=now)]
    root_scopes = root.agent.scopes if root.agent else root.subject.get("scopes") or ()
    scopes, purposes, fields = _attenuate(frozenset(root_scopes), links, agents)
    claims = dict(root.subject)
    claims.update(
        {"id": holder, "scopes": sorted(scopes), "delegatedBy": agents[0], "delegationDepth": len(links)}
    )
    known_ends = [t.timestamp() for t in ends if t is not None]
    return DelegatedAuthority(
        holder=holder,
        claims=claims,
        credential_id=links[-1].id,
        not_after=min(known_ends) if known_ends else None,
        scopes=scopes,
        purposes=purposes or frozenset(),
        fields=fields or frozenset(),
        chain_agents=tuple(agents),
        root_credential=root.credential,
        chain_credentials=(root_id, *(link.id for link in links)),
    )


def _split_chain(embedded: Sequence[Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the one root AgentCredential, the DelegationCredentials) of a presentation, counts bounded.

    Raises:
        DelegationError: not exactly one root, no link (``BROKEN_CHAIN``), other
            credential types (``MALFORMED_DELEGATION``), more than
            :data:`MAX_CHAIN_LINKS` links (``DELEGATION_TOO_DEEP``).
    """
    roots = [c for c in embedded if _AGENT_CREDENTIAL_TYPE in _types(c)]
    links = [c for c in embedded if DELEGATION_CREDENTIAL_TYPE in _types(c)]
    if len(roots) != 1:
        raise DelegationError(
            "a delegated presentation holds exactly one AgentCredential",
            reason="BROKEN_CHAIN",
            metadata={"agent_credentials": str(len(roots))},
        )
    if len(roots) + len(links) != len(embedded):
        raise DelegationError(
            "a delegated presentation holds only agent and delegation credentials",
            reason="MALFORMED_DELEGATION",
        )
    if not links:
        raise DelegationError("no delegation link", reason="BROKEN_CHAIN")
    if len(links) > MAX_CHAIN_LINKS:
        raise DelegationError(
            f"chain longer than {MAX_CHAIN_LINKS} links",
            reason="DELEGATION_TOO_DEEP",
            metadata={"links": str(len(links)), "max": str(MAX_CHAIN_LINKS)},
        )
    return roots[0], links


def _verify_root(
    root_raw: dict[str, Any],
    *,
    requester_org: str,
    allowed_orgs: Collection[str],
    resolve_key: Any,
    now: Any,
    status: Any,
) -> VerifiedCredential:
    """Verify the chain's root AgentCredential, issued by ``requester_org`` or one of ``allowed_orgs``.

    Raises:
        DelegationError: ``FOREIGN_ORG`` (another issuer), ``BROKEN_CHAIN`` (no did:key subject).
        credentials.CredentialError: as :func:`credentials.verify_credential`.
    """
    issuer = _issuer(root_raw)
    if issuer != requester_org and issuer not in set(allowed_orgs):
        raise DelegationError(
            "the chain's root agent belongs to an organization the contract does not name",
            reason="FOREIGN_ORG",
            metadata={"issuer": issuer[:200], "requester_org": requester_org[:200]},
        )
    root = verify_credential(
        root_raw, resolve_key=resolve_key, now=now, status=status, trusted_issuers=[issuer]
    )
    if root.subject_id is None or not root.subject_id.startswith("did:key:"):
        raise DelegationError("the root AgentCredential has no did:key subject", reason="BROKEN_CHAIN")
    return root


def _verify_links(links: list[_Link], agents: list[str], *, resolve_key: Any, now: Any) -> list[Any]:
    """Check each link's issuer and depth, then verify it; returns each link's ``validUntil``.

    Link ``i`` (1-based, root first) must be issued by ``agents[i - 1]`` (its
    parent's delegatee) and allow the links below it (``maxDepth``).

    Raises:
        DelegationError: ``BROKEN_CHAIN``, ``DELEGATION_TOO_DEEP``,
            ``DELEGATION_EXPIRED`` (outside its validity window),
            ``BAD_DELEGATION_SIGNATURE`` (any other verification failure).
    """
    ends = []
    for i, link in enumerate(links, start=1):
        if link.issuer != agents[i - 1]:
            raise DelegationError(
                "a link is not issued by its parent's delegatee",
                reason="BROKEN_CHAIN",
                metadata={"link": str(i), "issuer": link.issuer[:200]},
            )
        below = len(links) - i
        if below > link.max_depth:
            raise DelegationError(
                "the chain is deeper than a link's maxDepth allows",
                reason="DELEGATION_TOO_DEEP",
                metadata={"link": str(i), "max_depth": str(link.max_depth), "below": str(below)},
            )
        try:
            verified = verify_credential(
                link.cred, resolve_key=resolve_key, now=now, status=None, trusted_issuers=[agents[i - 1]]
            )
        except (ExpiredError, NotYetValidError) as exc:
            raise DelegationError(
                f"delegation link {i} is outside its validity period",
                reason="DELEGATION_EXPIRED",
                metadata={"link": str(i), "validUntil": str(link.cred.get("validUntil"))},
            ) from exc
        except CredentialError as exc:
            raise DelegationError(
                f"delegation link {i} does not verify: {exc}",
                reason="BAD_DELEGATION_SIGNATURE",
                metadata={"link": str(i), "cause": getattr(exc, "reason", "")},
            ) from exc
        ends.append(verified.valid_until)  # from the verified credential, not re-parsed JSON
    return ends


def _attenuate(
    scopes: frozenset[str], links: list[_Link], agents: list[str]
) -> tuple[frozenset[str], frozenset[str] | None, frozenset[str] | None]:
    """Walk the chain from the root's ``scopes``: each link within its parent; the holder's authority.

    The root grants its scopes and unrestricted purposes and fields; a link
    may narrow each, never widen it (a field is within its parent's when
    :func:`policy.paths.covered_by` says so).

    Returns:
        (scopes, purposes or None = unrestricted, fields or None = unrestricted).

    Raises:
        DriftError: a link expands its parent (metadata ``dimension``, ``link``, ``extra``).
    """
    purposes: frozenset[str] | None = None
    fields: frozenset[str] | None = None

    def drift(i: int, dimension: str, extra: list[str]) -> DriftError:
        return DriftError(
            f"link {i} delegates {dimension} beyond its parent's: {extra}",
            chain_agents=agents,
            metadata={"dimension": dimension, "link": str(i), "extra": ",".join(extra)[:200]},
        )

    for i, link in enumerate(links, start=1):
        if extra := sorted(link.scopes - scopes):
            raise drift(i, "scopes", extra)
        scopes = link.scopes
        if link.purposes is not None:
            if purposes is not None and (extra := sorted(link.purposes - purposes)):
                raise drift(i, "purposes", extra)
            purposes = link.purposes
        if link.fields is not None:
            if fields is not None and (extra := sorted(f for f in link.fields if not covered_by(f, fields))):
                raise drift(i, "fields", extra)
            fields = link.fields
    return scopes, purposes, fields


def verify_delegated_job(vp: dict[str, Any], kwargs: dict[str, Any]) -> DelegatedAuthority:
    """:func:`verify_delegated_presentation` without status checks, for a worker process.

    A module-level function (picklable by reference) for
    :meth:`credentials.pool.VerifierPool.run`: the JSON-LD and signature work of
    the whole chain runs in the worker; the caller then checks the root's status
    with ``status.check(authority.root_credential, now=now)``.

    Args:
        vp: the parsed presentation.
        kwargs: the other keyword arguments of :func:`verify_delegated_presentation`
            except ``status`` (all picklable: ``resolve_key`` a ``StaticKeyResolver``).

    Returns:
        The :class:`DelegatedAuthority`.

    Raises:
        DriftError, DelegationError, credentials.CredentialError: as
            :func:`verify_delegated_presentation`.
    """
    return verify_delegated_presentation(vp, status=None, **kwargs)


def check_request_within(
    authority: DelegatedAuthority, *, purpose: str, fields: Sequence[str], contract_id: str
) -> None:
    """Refuse a request beyond the delegated purposes or fields.

    A requested field is within the delegation when it equals a delegated
    path or lies below one (``policy.paths.covered_by``).

    Args:
        authority: the session's verified delegation.
        purpose: the request's purpose.
        fields: the requested field paths.
        contract_id: the request's contract (recorded in the error metadata).

    Raises:
        DriftError: the request expands the delegated authority (metadata
            ``dimension``, ``extra``, ``link`` = ``request``).
    """
    if authority.purposes and purpose not in authority.purposes:
        raise DriftError(
            f"purpose {purpose!r} was not delegated",
            chain_agents=authority.chain_agents,
            metadata={
                "dimension": "purposes",
                "extra": purpose[:200],
                "link": "request",
                "contract_id": contract_id[:200],
            },
        )
    extra = sorted(f for f in fields if not covered_by(f, authority.fields)) if authority.fields else []
    if extra:
        raise DriftError(
            f"fields {extra} were not delegated",
            chain_agents=authority.chain_agents,
            metadata={
                "dimension": "fields",
                "extra": ",".join(extra)[:200],
                "link": "request",
                "contract_id": contract_id[:200],
            },
        )
