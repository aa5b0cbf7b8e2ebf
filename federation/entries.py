"""Every ledger entry the node writes, built in one place (names and digests, never data values).

Provider side: :func:`provider_base` (what a disclosure and a refusal of one
request share), :func:`disclosure`, :func:`denial` (``denial`` or
``audit_denial``), :func:`drift`. Requester side: :func:`received_base`,
:func:`received_outcome`, :func:`received_refusal`, :func:`received_denial`.
Witnessing: :func:`equivocation`. Pure functions of their arguments: the
time is passed in (one clock reading per request), ids derive from the
request digest or are random where no request exists.

Raises (every builder): ``pydantic.ValidationError`` or
:class:`ledger.LedgerError` if the members do not form a valid
:class:`ledger.DisclosureEntry`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from federation.clock import rfc3339
from federation.domain import ReceivedOutcome, Request
from ledger import DisclosureEntry, leaf_hash

__all__ = [
    "bounded_extra",
    "denial",
    "disclosure",
    "drift",
    "equivocation",
    "node_event",
    "provider_base",
    "received_base",
    "received_denial",
    "received_outcome",
    "received_refusal",
    "received_unformable",
    "sha256_hex",
]

#: longest ``extra`` value kept in an entry, characters
MAX_EXTRA_CHARS = 200


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def bounded_extra(metadata: Mapping[str, Any]) -> dict[str, str]:
    """An error's metadata as entry ``extra``: strings, each at most ``MAX_EXTRA_CHARS``."""
    return {k: str(v)[:MAX_EXTRA_CHARS] for k, v in metadata.items()}


# ---------------------------------------------------------------- provider


def _crossing(
    request: Request, now: dt.datetime, provider_org: str, requester_org: str, prefix: str
) -> dict[str, Any]:
    """Members every entry about one request shares, on either side.

    ``disclosure_id`` is ``prefix`` + the first 32 hex digits of the request
    digest, the SHA-256 of the bytes the agent signed (``request_digest``).
    """
    digest = sha256_hex(request.signed_bytes)
    return dict(
        disclosure_id=prefix + digest[:32],
        time=rfc3339(now),
        provider_org=provider_org,
        requester_org=requester_org,
        requester_agent=request.agent_did,
        provider_agent="",
        contract_id=request.contract_id,
        purpose=request.purpose,
        request_digest=digest,
    )


def provider_base(
    *,
    provider_org: str,
    requester_org: str,
    request: Request,
    contract_hash: str,
    decision_hash: str,
    effective_trust: float,
    now: dt.datetime,
    fields_requested: list[str],
) -> dict[str, Any]:
    """The members a provider's disclosure and refusal of ``request`` share.

    ``disclosure_id`` is ``dsc_`` + the first 32 hex digits of the request
    digest (SHA-256 of the bytes the agent signed), so a retried request
    names the same crossing.
    """
    return dict(
        _crossing(request, now, provider_org, requester_org, "dsc_"),
        contract_hash=contract_hash,
        fields_requested=fields_requested,
        decision_hash=decision_hash,
        effective_trust=effective_trust,
    )


def disclosure(
    base: Mapping[str, Any],
    *,
    released: list[str] | tuple[str, ...],
    stripped: list[str],
    record_count: int,
    reason: str,
    response_digest: str,
    extra: Mapping[str, str] | None = None,
) -> DisclosureEntry:
    """A ``disclosure``: what crossed (field names, record count, response digest)."""
    return DisclosureEntry(
        kind="disclosure",
        fields_released=list(released),
        fields_stripped=stripped,
        record_count=record_count,
        decision="allow",
        reason=reason,
        response_digest=response_digest,
        **({"extra": dict(extra)} if extra is not None else {}),
        **base,
    )


def denial(
    base: Mapping[str, Any], *, reason: str, extra: Mapping[str, str] | None = None
) -> DisclosureEntry:
    """A provider's logged refusal: ``audit_denial`` for ``RECONSTRUCTION_RISK``, ``denial`` otherwise."""
    return DisclosureEntry(
        kind="audit_denial" if reason == "RECONSTRUCTION_RISK" else "denial",
        fields_released=[],
        fields_stripped=[],
        record_count=0,
        decision="deny",
        reason=reason,
        response_digest="",
        **({"extra": dict(extra)} if extra is not None else {}),
        **base,
    )


def drift(
    *,
    provider_org: str,
    requester_org: str,
    chain: list[str],
    reason: str,
    metadata: Mapping[str, Any],
    now: dt.datetime,
    request: Request | None = None,
) -> DisclosureEntry:
    """Authorization Drift: the chain's last agent (or the request's), evidence in ``extra``."""
    return DisclosureEntry(
        kind="drift",
        disclosure_id="drf_" + secrets.token_hex(16),
        time=rfc3339(now),
        provider_org=provider_org,
        requester_org=requester_org,
        requester_agent=chain[-1] if chain else (request.agent_did if request else ""),
        provider_agent="",
        contract_id=request.contract_id if request else "",
        contract_hash="",
        purpose=request.purpose if request else "",
        fields_requested=list(request.fields) if request else [],
        fields_released=[],
        fields_stripped=[],
        record_count=0,
        decision="deny",
        reason=reason,
        decision_hash="",
        request_digest=sha256_hex(request.signed_bytes) if request else "",
        response_digest="",
        effective_trust=0.0,
        extra=bounded_extra(metadata),
    )


# ---------------------------------------------------------------- requester


def received_base(
    *, provider_org: str, requester_org: str, request: Request, provider_entry: bytes, now: dt.datetime
) -> dict[str, Any]:
    """The members every "received" entry of ``request`` shares (names and digests only).

    ``disclosure_id`` is this node's own id for the request (``rcv_`` + the
    request digest): the builders replace it with the provider's id once its
    receipt verified. ``provider_leaf_hash`` is RFC 9162 §2.1.1 over the
    provider's logged entry bytes.
    """
    return dict(
        _crossing(request, now, provider_org, requester_org, "rcv_"),
        kind="received",
        contract_hash="",
        fields_requested=list(request.fields),
        provider_leaf_hash=base64.b64encode(leaf_hash(provider_entry)).decode(),
    )


def received_outcome(
    base: Mapping[str, Any],
    outcome: ReceivedOutcome,
    *,
    contract_hash: str,
    verified: bool,
    response_digest: str,
    extra: Mapping[str, str] | None = None,
) -> DisclosureEntry:
    """The "received" entry for an outcome passed on (``RECEIPT_INVALID`` if its receipt did not verify).

    ``extra``: this node's screening of the incoming free text (verdict, detector
    versions, labels; :func:`federation.content.requester_controls`), if any.
    """
    return DisclosureEntry(
        **({"extra": dict(extra)} if extra else {}),
        **{**base, "disclosure_id": outcome.disclosure_id, "contract_hash": contract_hash},
        fields_released=list(outcome.released_fields),
        fields_stripped=list(outcome.stripped_fields),
        record_count=outcome.record_count,
        decision=outcome.decision,
        reason="" if verified else "RECEIPT_INVALID",
        decision_hash=outcome.decision_hash,
        response_digest=response_digest,
        effective_trust=outcome.effective_trust,
    )


def received_unformable(base: Mapping[str, Any]) -> DisclosureEntry:
    """The "received" entry for an unverified outcome whose members form no entry: what this node knows."""
    return DisclosureEntry(decision="deny", reason="RECEIPT_INVALID", **base)


def received_refusal(base: Mapping[str, Any], *, reason: str, metadata: Mapping[str, Any]) -> DisclosureEntry:
    """The "received" entry for an outcome this node refused (bad receipt, too large, log inconsistent)."""
    fields = dict(base)
    return DisclosureEntry(
        disclosure_id=fields.pop("disclosure_id"),
        decision="deny",
        reason=reason,
        extra=bounded_extra(metadata),
        **fields,
    )


def received_denial(
    base: Mapping[str, Any],
    *,
    reason: str,
    decision_hash: str,
    extra: Mapping[str, str],
) -> DisclosureEntry:
    """The "received" entry for a provider's logged refusal (receipt checked, or why it was refused)."""
    return DisclosureEntry(
        **base,
        decision="deny",
        reason=reason[:256],
        decision_hash=decision_hash,
        extra=dict(extra),
    )


# ---------------------------------------------------------------- witnessing


def equivocation(*, log_owner: str, this_org: str, evidence: Any, now: dt.datetime) -> DisclosureEntry:
    """An ``equivocation``: two signed checkpoints of one log that cannot both be true.

    The entry names the log (origin), the size and the SHA-256 of both signed
    notes; the notes themselves stay in the evidence table.

    Args:
        log_owner: DID of the organization whose log equivocated (this node's own if unknown).
        this_org: this node's organization DID.
        evidence: a :class:`ledger.EquivocationEvidence` (``origin``, ``size``, ``detail``,
            ``note_a``, ``note_b``).
        now: the time of the report.

    """
    return DisclosureEntry(
        kind="equivocation",
        disclosure_id="eqv_" + secrets.token_hex(16),
        time=rfc3339(now),
        provider_org=log_owner,
        requester_org=this_org,
        requester_agent="",
        provider_agent="",
        contract_id="",
        contract_hash="",
        purpose="",
        fields_requested=[],
        fields_released=[],
        fields_stripped=[],
        record_count=0,
        decision="deny",
        reason="EQUIVOCATION",
        decision_hash="",
        request_digest="",
        response_digest="",
        effective_trust=0.0,
        extra={
            "origin": evidence.origin[:200],
            "size": str(evidence.size),
            "detail": evidence.detail[:200],
            "note_a_sha256": sha256_hex(evidence.note_a.encode()),
            "note_b_sha256": sha256_hex(evidence.note_b.encode()),
        },
    )


# ---------------------------------------------------------------- node-local events (issue #15)


def node_event(
    *,
    kind: str,
    prefix: str,
    provider_org: str,
    requester_org: str,
    reason: str,
    now: dt.datetime,
    agent: str = "",
    contract_id: str = "",
    contract_hash: str = "",
    purpose: str = "",
    fields: tuple[str, ...] | list[str] = (),
    decision: str = "deny",
    effective_trust: float = 0.0,
    extra: Mapping[str, Any] | None = None,
    disclosure_id: str = "",
) -> DisclosureEntry:
    """A node-local event (issue #15): approval, anomaly, onward refusal, retention purge, exposure alert.

    Names, codes and digests only, never values; evidence goes in ``extra``
    (bounded by :func:`bounded_extra`). The id is ``prefix`` + 32 random hex
    digits unless ``disclosure_id`` is given.
    """
    return DisclosureEntry(
        kind=kind,  # type: ignore[arg-type]
        disclosure_id=disclosure_id or prefix + secrets.token_hex(16),
        time=rfc3339(now),
        provider_org=provider_org,
        requester_org=requester_org,
        requester_agent=agent,
        provider_agent="",
        contract_id=contract_id,
        contract_hash=contract_hash,
        purpose=purpose,
        fields_requested=list(fields),
        decision=decision,  # type: ignore[arg-type]
        reason=reason[:256],
        effective_trust=max(0.0, min(1.0, effective_trust)),
        extra=bounded_extra(extra or {}),
    )
