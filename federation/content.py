"""Value-level controls at the boundary: typed values and free-text screening (issue #15).

Provider side, :func:`provider_controls`: after the MNI gate, every value of
a typed field (``content.fields`` of the contract) is checked against its
declared type (:func:`policy.gate.check_values`) and each remaining
free-text value is screened (:class:`policy.screening.Screener`, cached by
digest, off the event loop). What breaks a type, or what screening flags
under a ``strip`` policy, is removed before the payload is digested and
logged; a ``deny`` policy turns the request into a logged refusal. Either
way the ledger entry names the fields and the reasons in ``extra`` (never
the values). A screener that cannot load fails closed: the free-text
fields do not cross (``SCREENING_UNAVAILABLE``, counted in
``accord_screening_failures_total``).

Requester side, :func:`requester_controls`: the free-text fields of an
incoming payload are screened with the same screener; flagged values are
labelled for the agent (``SendRequestResponse.content_labels``) or, if the
contract says ``received: quarantine``, withheld from it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter

from policy import Contract
from policy.gate import check_values, strip_slots
from policy.screening import Screener, ScreeningUnavailableError, Verdict

__all__ = [
    "ContentOutcome",
    "ReceivedLabels",
    "preload",
    "provider_controls",
    "requester_controls",
    "screener_for",
]

log = structlog.get_logger("accord.node")

SCREENED = Counter(
    "accord_screened_values_total", "Free-text values screened at the boundary", ["side", "verdict"]
)
SCREENING_FAILURES = Counter(
    "accord_screening_failures_total",
    "Free-text values that did not cross because screening was unavailable (fail closed)",
    ["side"],
)
VALUE_VIOLATIONS = Counter(
    "accord_value_violations_total", "Released values that broke their declared type", ["reason"]
)

#: longest ``extra`` value this module writes, characters
_EXTRA_CHARS = 500
_SCREENER_LOCK = threading.Lock()


def screener_for(node: Any) -> Screener:
    """The node's one :class:`Screener` (created on first use; models load lazily)."""
    with _SCREENER_LOCK:
        s = node.__dict__.get("screener")
        if s is None:
            s = Screener()
            node.__dict__["screener"] = s
        return s


def preload(node: Any, contracts: Any) -> None:
    """Load the screening models in a background thread if a contract in force screens free text."""
    if not any(c.content is not None and c.content.free_text_fields for c in contracts):
        return
    screener = screener_for(node)
    if screener.loaded:
        return

    def run() -> None:
        try:
            screener.load()
        except ScreeningUnavailableError as exc:
            log.error("screening models failed to load: free text will not cross", error=str(exc))

    threading.Thread(target=run, name="accord-screening-load", daemon=True).start()


@dataclass(frozen=True)
class ContentOutcome:
    """What the provider's content controls made of a gated payload.

    Attributes:
        payload: what crosses (violating / flagged free-text fields removed).
        stripped: field paths removed here (added to the entry's ``fields_stripped``).
        extra: ledger-entry ``extra`` members (names, reasons, verdicts, versions; never values).
        deny_reason: ``""``, ``VALUE_CONSTRAINT_VIOLATED`` or ``CONTENT_SCREENING_DENIED``.
    """

    payload: Any
    stripped: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    deny_reason: str = ""


def _findings(field_path: str, v: Verdict) -> str:
    parts = list(v.personal_data)
    if v.injection:
        parts.append("injection(" + ",".join(v.injection_rules or ("embedding",)) + ")")
    if v.too_long:
        parts.append("too_long")
    return f"{field_path}:{'+'.join(parts)}"


async def provider_controls(payload: Any, contract: Contract | None, screener: Screener) -> ContentOutcome:
    """Check typed values and screen free text in a gated payload (module docstring).

    Args:
        payload: the MNI gate's output.
        contract: the request's contract (None or without ``content``: nothing to do).
        screener: the node's screener.

    Returns:
        :class:`ContentOutcome`.
    """
    content = contract.content if contract is not None else None
    if content is None or not content.fields:
        return ContentOutcome(payload=payload)
    checked = check_values(payload, content.fields)
    extra: dict[str, str] = {}
    stripped = set(checked.violated_fields)
    if checked.violations:
        for v in checked.violations:
            VALUE_VIOLATIONS.labels(reason=v.reason).inc()
        extra["value_violations"] = ";".join(
            dict.fromkeys(f"{v.field}:{v.reason}" for v in checked.violations)
        )[:_EXTRA_CHARS]
        if content.on_violation == "deny":
            return ContentOutcome(payload=None, extra=extra, deny_reason="VALUE_CONSTRAINT_VIOLATED")
    out = checked.payload
    if checked.free_text:
        policy = content.screening
        try:
            verdicts = await screener.screen_many([f.text for f in checked.free_text])
        except ScreeningUnavailableError as exc:
            SCREENING_FAILURES.labels(side="provider").inc(len(checked.free_text))
            extra["screening"] = "unavailable"
            extra["screening_error"] = str(exc.metadata.get("cause", ""))[:200]
            out = strip_slots(out, content.fields, [f.slot for f in checked.free_text])
            stripped |= {f.field for f in checked.free_text}
            return ContentOutcome(payload=out, stripped=tuple(sorted(stripped)), extra=extra)
        drop: list[int] = []
        deny = False
        notes: list[str] = []
        for f, v in zip(checked.free_text, verdicts, strict=True):
            SCREENED.labels(side="provider", verdict="flagged" if v.flagged else "clean").inc()
            if not v.flagged:
                continue
            notes.append(_findings(f.field, v))
            action = "strip"
            if v.injection:
                action = policy.injection
            if v.personal_data and policy.personal_data == "deny":
                action = "deny"
            elif v.personal_data and not v.injection and not v.too_long:
                action = policy.personal_data
            if action == "deny":
                deny = True
            elif action == "strip":
                drop.append(f.slot)
        extra["screening"] = "flagged" if notes else "clean"
        extra["screened_values"] = str(len(verdicts))
        extra["screening_detectors"] = verdicts[0].detectors[:_EXTRA_CHARS]
        if notes:
            extra["screening_findings"] = ";".join(dict.fromkeys(notes))[:_EXTRA_CHARS]
        if deny:
            return ContentOutcome(payload=None, extra=extra, deny_reason="CONTENT_SCREENING_DENIED")
        if drop:
            out = strip_slots(out, content.fields, drop)
            stripped |= {f.field for f in checked.free_text if f.slot in set(drop)}
    return ContentOutcome(payload=out, stripped=tuple(sorted(stripped)), extra=extra)


@dataclass(frozen=True)
class ReceivedLabels:
    """What the requester's screening of an incoming payload found.

    Attributes:
        payload_json: the payload passed to the agent (flagged fields removed under quarantine).
        labels: ``(record index, field, verdict, findings, quarantined)`` per flagged value.
        extra: members for the "received" entry's ``extra``.
    """

    payload_json: bytes
    labels: tuple[tuple[int, str, str, tuple[str, ...], bool], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


async def requester_controls(
    payload_json: bytes, contract: Contract | None, screener: Screener
) -> ReceivedLabels:
    """Screen the free-text fields of an incoming payload (a list of records, JSON); label or quarantine.

    A payload that is not a JSON list of objects, or a contract without
    free-text fields, is passed on unchanged. If screening is unavailable,
    every free-text value is treated as flagged (labelled ``unscreened``;
    withheld under quarantine) and counted.
    """
    content = contract.content if contract is not None else None
    if content is None or not content.free_text_fields:
        return ReceivedLabels(payload_json=payload_json)
    try:
        records = json.loads(payload_json) if payload_json else []
    except ValueError:
        return ReceivedLabels(payload_json=payload_json)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return ReceivedLabels(payload_json=payload_json)
    free_only = {p: t for p, t in content.fields.items() if t.free_text}
    per_record = []
    texts: list[str] = []
    for i, rec in enumerate(records):
        found = check_values(
            [rec], free_only
        )  # text values of free-text fields (type violations: labelled too)
        per_record.append((i, found))
        texts.extend(f.text for f in found.free_text)
    quarantine = content.screening.received == "quarantine"
    extra: dict[str, str] = {}
    try:
        verdicts = await screener.screen_many(texts) if texts else []
        failed = False
    except ScreeningUnavailableError:
        SCREENING_FAILURES.labels(side="requester").inc(len(texts))
        verdicts, failed = [], True
        extra["screening"] = "unavailable"
    labels: list[tuple[int, str, str, tuple[str, ...], bool]] = []
    out_records = []
    k = 0
    for i, found in per_record:
        drop = []
        for f in found.free_text:
            v = None if failed else verdicts[k]
            k += 1
            if v is not None:
                SCREENED.labels(side="requester", verdict="flagged" if v.flagged else "clean").inc()
            if v is not None and not v.flagged:
                continue
            findings = (
                ("unscreened",) if v is None else tuple(_findings(f.field, v).split(":", 1)[1].split("+"))
            )
            verdict = "unscreened" if v is None else ("injection" if v.injection else "personal_data")
            labels.append((i, f.field, verdict, findings, quarantine))
            drop.append(f.slot)
        for viol in found.violations:
            labels.append((i, viol.field, "type_violation", (viol.reason,), quarantine))
        rec = records[i]
        if quarantine and (drop or found.violations):
            rec = check_values([rec], free_only).payload[0] if found.violations else rec
            rec = strip_slots([rec], free_only, drop)[0] if drop else rec
        out_records.append(rec)
    if texts and not failed:
        extra["screening"] = "flagged" if labels else "clean"
        extra["screening_detectors"] = verdicts[0].detectors[:_EXTRA_CHARS]
    if labels:
        extra["content_labels"] = ";".join(dict.fromkeys(f"{lbl[0]}:{lbl[1]}:{lbl[2]}" for lbl in labels))[
            :_EXTRA_CHARS
        ]
        extra["received_action"] = "quarantine" if quarantine else "label"
    new_json = (
        json.dumps(out_records, separators=(",", ":"), ensure_ascii=False).encode()
        if quarantine and labels
        else payload_json
    )
    return ReceivedLabels(payload_json=new_json, labels=tuple(labels), extra=extra)
