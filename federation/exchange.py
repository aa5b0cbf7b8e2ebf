"""The pure core of one exchange at the provider: plan the entry, then the outcome or the refusal.

One request goes authorize → decide → (offer → gate) → **plan** → write →
**outcome / refusal**. The bold steps are here, as functions of values
(no I/O, no clock, no ledger): the async shell in
:class:`federation.provider.ProviderSide` authenticates, decides, asks
the data source, writes the planned entry durably, and then turns the
write's receipt into the answer with :func:`outcome` or
:func:`refusal`. The record path and the aggregate path share every step.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from federation import entries
from federation.domain import Outcome, payload_bytes
from federation.errors import DeniedError, FederationError, NotFoundError
from ledger import DisclosureEntry

__all__ = ["Plan", "deny_reason", "outcome", "plan_disclosure", "plan_refusal", "refusal", "response_digest"]

#: reasons a refusal reports as NotFoundError (the requester may treat them as absent data)
NOT_FOUND_REASONS = frozenset({"UNKNOWN_RESOURCE", "UNKNOWN_SUBJECT"})


@dataclass(frozen=True)
class Plan:
    """What one request comes to, before anything is written.

    Attributes:
        entry: the ledger entry to write (a disclosure, or a denial / audit denial).
        allow: whether data crosses.
        payload: the gated records (or the aggregate answer), JSON values; ``None`` for a refusal.
        reasons: the reason codes the answer reports.
        extra: evidence for a refusal's ``ErrorInfo.metadata`` (e.g. ``query_digest``, ``scope``).

    """

    entry: DisclosureEntry
    allow: bool
    payload: Any = None
    reasons: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


def deny_reason(decision: Any) -> str:
    """The reason a denied :class:`policy.Decision` is logged and answered with (first code)."""
    return decision.reason_codes[0] if decision.reason_codes else "POLICY_DENIED"


def response_digest(payload: Any) -> str:
    """Hex SHA-256 of the payload as it crosses (:func:`federation.domain.payload_bytes`)."""
    return entries.sha256_hex(payload_bytes(payload))


def plan_disclosure(
    base: Mapping[str, Any],
    *,
    payload: Any,
    released: tuple[str, ...] | list[str],
    stripped: tuple[str, ...] | list[str],
    record_count: int,
    reasons: tuple[str, ...],
    extra: Mapping[str, str] | None = None,
) -> Plan:
    """A release: the disclosure entry names what crosses (names, count, response digest)."""
    entry = entries.disclosure(
        base,
        released=tuple(released),
        stripped=sorted(set(stripped)),
        record_count=record_count,
        reason=",".join(reasons),
        response_digest=response_digest(payload),
        extra=extra,
    )
    return Plan(entry=entry, allow=True, payload=payload, reasons=reasons, extra=dict(extra or {}))


def plan_refusal(
    base: Mapping[str, Any],
    *,
    reason: str,
    reasons: tuple[str, ...] = (),
    extra: Mapping[str, str] | None = None,
) -> Plan:
    """A refusal: a ``denial`` (``audit_denial`` for ``RECONSTRUCTION_RISK``) with the reason."""
    entry = entries.denial(base, reason=reason, extra=extra)
    return Plan(entry=entry, allow=False, reasons=reasons or (reason,), extra=dict(extra or {}))


def outcome(plan: Plan, decision: Any, written: Any) -> Outcome:
    """The answer to a release, with the receipt of its durably written entry.

    Args:
        plan: from :func:`plan_disclosure`.
        decision: the :class:`policy.Decision` (obligations, τ, digest).
        written: the ledger writer's result (``receipt``, ``index``, ``leaf_hash``).

    """
    e = plan.entry
    return Outcome(
        disclosure_id=e.disclosure_id,
        decision="allow",
        released_fields=tuple(e.fields_released),
        stripped_fields=tuple(e.fields_stripped),
        payload=plan.payload,
        record_count=e.record_count,
        reasons=plan.reasons,
        obligations=tuple(decision.obligations),
        effective_trust=decision.effective_trust,
        decision_hash=decision.digest(),
        receipt=written.receipt,
        entry=e.canonical_bytes(),
        leaf_index=written.index,
        leaf_hash=written.leaf_hash,
    )


def refusal(plan: Plan, *, org_name: str, decision_hash: str, written: Any) -> FederationError:
    """The error for a logged refusal: it carries the receipt, so the requester can check it is on record.

    Returns:
        :class:`NotFoundError` for an unknown resource or subject, else :class:`DeniedError`
        (the status is the reason's in :data:`federation.reasons.STATUS_BY_REASON`). The
        metadata holds ``disclosure_id``, ``leaf_index``, ``decision_hash``, ``reasons``,
        ``tlog_proof`` (the receipt), ``entry_b64`` (the logged entry) and the plan's ``extra``.

    """
    e = plan.entry
    err_cls = NotFoundError if e.reason in NOT_FOUND_REASONS else DeniedError
    return err_cls(
        f"denied by {org_name}: {', '.join(plan.reasons) or e.reason}",
        reason=e.reason,
        metadata={
            "disclosure_id": e.disclosure_id,
            "leaf_index": str(written.index),
            "decision_hash": decision_hash,
            "reasons": ",".join(plan.reasons),
            "tlog_proof": written.receipt.to_text(),
            "entry_b64": base64.b64encode(e.canonical_bytes()).decode(),
            **plan.extra,
        },
    )
