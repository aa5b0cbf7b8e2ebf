"""Decision input and output records, and the decision log.

A :class:`DecisionInput` is what the node knows when a request arrives; it
becomes the Rego ``input`` document via :meth:`DecisionInput.to_rego_input`.
A :class:`Decision` is the engine's answer plus its evidence (digests of the
input, the contract version and the loaded policy bundle).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import rfc8785
from pydantic import ValidationError

from policy.errors import DecisionInputError, GateError
from policy.identifiers import check_identifier
from policy.input import POLICY_INPUT_VERSION, AgentClaims, validate_policy_input
from policy.micros import MICROS, micros_down, micros_up
from policy.paths import canonical_path

__all__ = ["Decision", "DecisionInput", "DecisionLog", "jcs_digest", "MICROS", "to_micros"]

# Budget arithmetic in Rego is in integer micro-units (MICROS, from policy.micros).
_MAX_INT = 2**53 - 1


_SORTED_COMPACT = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=False
).encode


def _plain(obj: Any) -> bool:
    """True when ``obj`` holds only what sorted, compact ``json`` writes exactly as RFC 8785 does.

    That is: dicts with ASCII keys (code-point order is then UTF-16 order,
    RFC 8785 §3.2.3), lists, strings (JSON's minimal escaping is RFC 8785
    §3.2.2.2's), integers within ±(2**53 − 1), booleans and null. Floats
    (RFC 8785 §3.2.2.3 number serialization) and anything else are not.
    """
    stack = [obj]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if -_MAX_INT <= v <= _MAX_INT:
                continue
            return False
        if t is dict:
            for k, x in v.items():
                if type(k) is not str or not k.isascii():
                    return False
                stack.append(x)
            continue
        if t is list:
            stack.extend(v)
            continue
        return False
    return True


def jcs_bytes(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON of ``obj``, UTF-8.

    Values made only of :func:`_plain` members (every policy input and
    decision record) take a fast path through the C JSON encoder, equal byte
    for byte to the ``rfc8785`` package (checked by a property test); anything
    else goes through ``rfc8785``.

    Raises:
        rfc8785.CanonicalizationError, TypeError, ValueError: as ``rfc8785.dumps``
            (a float that is not finite, an integer outside I-JSON, a lone
            surrogate, a value that is not JSON).
    """
    if _plain(obj):
        try:
            return _SORTED_COMPACT(obj).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 raises its own error
            pass
    return rfc8785.dumps(obj)


def jcs_digest(obj: Any) -> str:
    """Hex SHA-256 of the RFC 8785 (JCS) canonical JSON of ``obj``."""
    return hashlib.sha256(jcs_bytes(obj)).hexdigest()


def to_micros(value: float | int, *, rounding: str = "exact") -> int:
    """Convert a number of units to integer micro-units (1 unit = 10**6 micros), one rule everywhere.

    The rule is :mod:`policy.micros`: the number is read as the shortest
    decimal that round-trips its float (``repr``: ``0.7`` is 0.7, not
    0.69999…), so converting what an operator wrote is exact.

    Args:
        value: a finite, non-negative int or float.
        rounding: ``"exact"`` (contract terms: at most 6 decimals),
            ``"floor"`` (against the requester for what it *has*, e.g. τ:
            :func:`~policy.micros.micros_down`) or ``"ceil"`` (for what it
            *used*: :func:`~policy.micros.micros_up`).

    Returns:
        The micro-units as an int.

    Raises:
        ValueError: not a finite non-negative number, or more than 6 decimals
            with ``rounding="exact"``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a finite number >= 0, got {value!r}")
    down, up = micros_down(value), micros_up(value)
    if rounding == "floor":
        return down
    if rounding == "ceil":
        return up
    if down != up:
        raise ValueError(f"{value!r} has more than 6 decimal places (write at most micro-unit precision)")
    return down


def _freeze(m: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


def _json_safe(obj: Any, where: str) -> Any:
    try:
        value = json.loads(json.dumps(obj, allow_nan=False))
        jcs_bytes(value)  # I-JSON numbers only (|int| < 2**53), else digests fail
        return value
    except (TypeError, ValueError):
        raise DecisionInputError(f"{where} must be JSON-serializable", metadata={"field": where}) from None


@dataclass(frozen=True)
class DecisionInput:
    """Everything the policy sees about one request.

    Every member is checked here, once, so that the exact value that passed is
    the one every consumer (the decision point's bookkeeping, both engines,
    the decision log, the ledger) reads: identifiers against
    :mod:`policy.identifiers`, claims against the normalized
    :class:`policy.input.AgentClaims` shape, and the whole Rego document
    against :class:`policy.input.PolicyInput`.

    Attributes:
        contract_id: the contract the request invokes.
        purpose: the purpose name within that contract.
        requester_org: DID of the requesting organization (authenticated peer).
        provider_org: DID of the organization deciding (this node's org).
        requester_agent: DID of the requesting agent.
        agent_claims: the normalized claims (:class:`policy.input.AgentClaims`;
            build them with :func:`policy.input.session_claims`); missing
            optional keys are filled with their defaults.
        requested_fields: field paths asked for (canonicalized, order kept,
            duplicates removed).
        effective_trust: τ in [0, 1] from :class:`policy.TrustBook`.
        budget_used: trust-budget units already spent in the current window.
        session: ``requests`` decided before this one, ``fields_released``
            (and optionally ``released_names``, the distinct field paths already
            released, so the session cap counts distinct fields),
            ``denials`` in the requester's session (ints, default 0).
        now: decision time (timezone-aware; policy sees whole Unix seconds).
        resource: the resource (data set) the request reads.
        subject: the record key asked for, or ``"*"``.
        recent_requests: decisions for this (contract, requester org) inside
            the contract's rate-limit window, before this one.
        context: request context a contract hook may read (integers, booleans,
            null and plain ASCII text only, e.g. ``{"consent": true}``).

    Raises:
        InvalidIdentifierError: ``MALFORMED_IDENTIFIER``: an identifier (contract,
            purpose, resource, subject, DID, field) outside its grammar (a
            control character, NUL among them, non-ASCII, too long...).
        DecisionInputError: bad field path, naive ``now``, τ outside [0, 1],
            negative counters, claims not in the normalized shape, or a
            context value the engines could read differently (a float).
    """

    contract_id: str
    purpose: str
    requester_org: str
    provider_org: str
    requester_agent: str
    agent_claims: Mapping[str, Any]
    requested_fields: tuple[str, ...]
    effective_trust: float
    budget_used: float
    session: Mapping[str, int]
    now: datetime
    resource: str
    subject: str
    recent_requests: int = 0
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, kind in (
            ("contract_id", "contract"),
            ("purpose", "purpose"),
            ("resource", "resource"),
            ("subject", "subject"),
            ("requester_org", "did"),
            ("provider_org", "did"),
            ("requester_agent", "did"),
        ):
            check_identifier(getattr(self, name), kind, field=name)
        if isinstance(self.requested_fields, str) or not isinstance(self.requested_fields, list | tuple):
            raise DecisionInputError(
                "requested_fields must be a sequence of paths, not a string",
                metadata={"field": "requested_fields"},
            )
        seen: dict[str, None] = {}
        for f in self.requested_fields:
            check_identifier(f, "field", field="requested_fields")
            try:
                seen[canonical_path(f)] = None
            except GateError as exc:
                raise DecisionInputError(str(exc), metadata={"field": "requested_fields"}) from None
        object.__setattr__(self, "requested_fields", tuple(seen))
        self._check_state()
        if not isinstance(self.now, datetime) or self.now.tzinfo is None:
            raise DecisionInputError("now must be a timezone-aware datetime", metadata={"field": "now"})
        sess: dict[str, Any] = {"requests": 0, "fields_released": 0, "denials": 0}
        for k, v in dict(self.session or {}).items():
            if k == "released_names":  # the distinct field paths released so far in the session
                if (
                    not isinstance(v, list | tuple)
                    or len(v) > 10_000
                    or not all(isinstance(f, str) and 0 < len(f) <= 256 for f in v)
                ):
                    raise DecisionInputError(
                        "session.released_names must be a list of field paths",
                        metadata={"field": "session.released_names"},
                    )
                sess[k] = sorted(set(v))
                continue
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _MAX_INT:
                raise DecisionInputError(
                    f"session.{k} must be an int in [0, 2**53)", metadata={"field": f"session.{k}"}
                )
            sess[str(k)] = v
        object.__setattr__(self, "session", _freeze(sess))
        claims = _json_safe(dict(self.agent_claims or {}), "agent_claims")
        try:
            claims = AgentClaims.model_validate(claims).model_dump()
        except ValidationError as exc:
            errs = exc.errors()
            loc = ".".join(str(p) for p in errs[0]["loc"])
            raise DecisionInputError(
                f"agent_claims are not in the normalized shape (policy.input.AgentClaims) at "
                f"{loc or '<root>'}: {errs[0]['msg']}",
                metadata={"field": f"agent_claims.{loc}" if loc else "agent_claims"},
            ) from None
        object.__setattr__(self, "agent_claims", _freeze(claims))
        object.__setattr__(self, "context", _freeze(_json_safe(dict(self.context or {}), "context")))
        validate_policy_input(self.to_rego_input())

    def _check_state(self) -> None:
        """Check the members the decision point fills in (τ, budget used, recent requests).

        Within these bounds the Rego document's ``trust_micros``,
        ``budget_used_micros`` and ``recent_requests`` meet :class:`policy.input.PolicyInput`.
        """
        t = self.effective_trust
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
            raise DecisionInputError(
                f"effective_trust must be in [0, 1], got {t!r}",
                metadata={"field": "effective_trust"},
            )
        b = self.budget_used
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0 <= b <= 1e9:
            raise DecisionInputError(
                f"budget_used must be a number in [0, 1e9], got {b!r}",
                metadata={"field": "budget_used"},
            )
        if (
            not isinstance(self.recent_requests, int)
            or isinstance(self.recent_requests, bool)
            or not 0 <= self.recent_requests <= _MAX_INT
        ):
            raise DecisionInputError(
                "recent_requests must be an int >= 0", metadata={"field": "recent_requests"}
            )

    def with_state(
        self, *, effective_trust: float, budget_used: float, recent_requests: int
    ) -> DecisionInput:
        """Return a copy with the decision point's state filled in.

        Only the three new values are checked (the rest passed when this input
        was built), so the decision point does not validate a request twice.

        Raises:
            DecisionInputError: a value out of the bounds :class:`DecisionInput` checks.
        """
        new = object.__new__(type(self))  # a shallow copy without copy.copy's reduce protocol
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_digest", None)  # the digest covers the old values
        object.__setattr__(new, "effective_trust", effective_trust)
        object.__setattr__(new, "budget_used", budget_used)
        object.__setattr__(new, "recent_requests", recent_requests)
        new._check_state()
        return new

    @property
    def now_unix(self) -> int:
        """Decision time as whole Unix seconds (floor)."""
        return math.floor(self.now.timestamp())

    @property
    def trust_micros(self) -> int:
        """τ in integer micro-units, rounded *down* (:func:`policy.micros.micros_down`)."""
        return min(MICROS, micros_down(self.effective_trust))

    @property
    def budget_used_micros(self) -> int:
        """Budget used in integer micro-units, rounded *up* (:func:`policy.micros.micros_up`)."""
        return micros_up(self.budget_used)

    def to_rego_input(self) -> dict[str, Any]:
        """Return the Rego ``input`` document (JSON values only; :class:`policy.input.PolicyInput`).

        Shape (version 1; integers only, no floats)::

            {"input_version": 1, "contract_id", "purpose", "resource", "subject",
             "requester_org", "provider_org", "requester_agent",
             "agent_claims": {"org", "scopes", "organization", "role", "trust_tier",
                              "delegated_by", "delegation_depth"},
             "requested_fields": [...], "trust_micros": int,
             "budget_used_micros": int,
             "session": {"requests", "fields_released", "denials", "released_names"?},
             "recent_requests": int, "context": {...}, "now_unix": int}
        """
        return {
            "input_version": POLICY_INPUT_VERSION,
            "contract_id": self.contract_id,
            "purpose": self.purpose,
            "resource": self.resource,
            "subject": self.subject,
            "requester_org": self.requester_org,
            "provider_org": self.provider_org,
            "requester_agent": self.requester_agent,
            "agent_claims": dict(self.agent_claims),
            "requested_fields": list(self.requested_fields),
            "trust_micros": self.trust_micros,
            "budget_used_micros": self.budget_used_micros,
            "session": dict(self.session),
            "recent_requests": self.recent_requests,
            "context": dict(self.context),
            "now_unix": self.now_unix,
        }

    def digest(self) -> str:
        """Hex SHA-256 of the JCS of :meth:`to_rego_input` (the canonical input digest).

        Computed once per input (the input is immutable).
        """
        d = self.__dict__.get("_digest")
        if d is None:
            d = jcs_digest(self.to_rego_input())
            object.__setattr__(self, "_digest", d)
        return d


@dataclass(frozen=True)
class Decision:
    """A policy decision with its evidence.

    Attributes:
        allow: True if the request may proceed.
        released_fields: canonical field paths that may cross (sorted; empty if denied).
        obligations: obligation codes the node must honour (sorted).
        reasons: stable codes, sorted: deny reasons when denied
            (``CONTRACT_NOT_IN_FORCE``, ``UNKNOWN_PURPOSE``, ``PARTY_MISMATCH``,
            ``MISSING_SCOPE``, ``RATE_LIMITED``, ``SESSION_LIMIT``,
            ``UNKNOWN_CONTRACT``, ``EMPTY_REQUEST``, ``ENGINE_ERROR``, hook
            codes); notes when allowed (``FIELD_NOT_IN_CONTRACT:<f>``,
            ``TRUST_TOO_LOW:<f>``, ``TRUST_BUDGET_EXHAUSTED``).
        decision_id: random 128-bit hex id of this decision.
        input_digest: :meth:`DecisionInput.digest`.
        contract_hash: the contract's version hash ("" if unknown).
        bundle_hash: digest of everything the engine loaded (policy, hooks, data).
        engine: ``"regopy"`` or ``"opa-rest"``.
        effective_trust: τ after the contract ceiling.
        budget_spent: trust-budget units this decision spends (0 if denied).
        max_records: the purpose's record cap, or None.
    """

    allow: bool
    released_fields: tuple[str, ...]
    obligations: tuple[str, ...]
    reasons: tuple[str, ...]
    decision_id: str
    input_digest: str
    contract_hash: str
    bundle_hash: str
    engine: str
    effective_trust: float
    budget_spent: float
    max_records: int | None = None

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """The reasons without their ``:<detail>`` suffixes, deduplicated, in order."""
        return tuple(dict.fromkeys(r.split(":", 1)[0] for r in self.reasons))

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON values (tuples as lists)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("released_fields", "obligations", "reasons"):
            d[k] = list(d[k])
        return d

    def digest(self) -> str:
        """Hex SHA-256 of the JCS of :meth:`to_dict` (what the ledger records).

        Computed once per decision (the decision is immutable).
        """
        d = self.__dict__.get("_digest")
        if d is None:
            d = jcs_digest(self.to_dict())
            object.__setattr__(self, "_digest", d)
        return d

    def outcome(self) -> dict[str, Any]:
        """Return the engine-independent part (for comparing engines): no ids, no engine name."""
        d = self.to_dict()
        for k in ("decision_id", "engine"):
            d.pop(k)
        return d


class DecisionLog:
    """In-memory, thread-safe, append-only log of decision records.

    Each record is ``{"decided_at": RFC 3339, "decision": Decision.to_dict(),
    "decision_digest": hex, "input": DecisionInput.to_rego_input()}``.
    """

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def append(self, inp: DecisionInput, decision: Decision) -> dict[str, Any]:
        """Record one decision; returns the stored record."""
        rec = {
            "decided_at": inp.now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "decision": decision.to_dict(),
            "decision_digest": decision.digest(),
            "input": inp.to_rego_input(),
        }
        with self._lock:
            self._records.append(rec)
        return rec

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            return iter(list(self._records))

    def drain(self) -> list[dict[str, Any]]:
        """Take every record appended so far and empty the log (atomically).

        The log object stays the same, so a thread that read a reference to
        it before the drain and appends after it still lands in the log (the
        next drain takes it); replacing the log object would lose that record.
        """
        with self._lock:
            records, self._records = self._records, []
        return records

    def export_jsonl(self, path: str | Path) -> int:
        """Write every record as one JCS line (UTF-8) to ``path``; returns the count."""
        with self._lock:
            records = list(self._records)
        with Path(path).open("wb") as fh:
            for r in records:
                fh.write(rfc8785.dumps(r) + b"\n")
        return len(records)
