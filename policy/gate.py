"""The MNI gate: build a response only from released fields.

Pure function over JSON values. Field paths follow :mod:`policy.paths`
(dotted keys, lists transparent, ``[]`` optional). What the source offered
beyond the released set is dropped and reported, so released
over-exposure is zero by construction and *attempted* over-exposure is
measurable.

Rules:

* a dict key survives if its path is covered by a released path (equal or
  below) or if some released path lies below it (then it is filtered
  recursively);
* a list is filtered element by element; elements left with nothing are
  dropped, and so are dicts and lists left empty by filtering;
* keys that are not valid path segments (non-strings, containing ``.``,
  ``[``, spaces…) cannot be named, so they survive only inside a subtree
  released as a whole (``patient`` releases everything below it); elsewhere
  they are stripped (reported as ``<parent>.?``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policy.paths import NAME_RE, canonical_paths, covered_by

__all__ = [
    "FreeTextValue",
    "GateResult",
    "ValueCheck",
    "ValueViolation",
    "apply_gate",
    "check_values",
    "leaf_paths",
    "strip_slots",
    "value_violation",
]

_DROP = object()


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`apply_gate`.

    Attributes:
        payload: the filtered payload (new objects; the input is not modified).
        stripped: sorted leaf paths offered but not released.
        offered: sorted leaf paths present in the source payload.
    """

    payload: Any
    stripped: tuple[str, ...]
    offered: tuple[str, ...]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def leaf_paths(value: Any, prefix: str = "") -> set[str]:
    """Return the canonical leaf paths of a JSON value (lists transparent).

    Empty dicts/lists count as a leaf at their own path; invalid keys appear
    as ``<parent>.?``.
    """
    out: set[str] = set()
    if isinstance(value, dict):
        if not value and prefix:
            out.add(prefix)
        for k, v in value.items():
            if isinstance(k, str) and NAME_RE.match(k):
                out |= leaf_paths(v, _join(prefix, k))
            else:
                out.add(_join(prefix, "?"))
    elif isinstance(value, list | tuple):
        if not value and prefix:
            out.add(prefix)
        for v in value:
            out |= leaf_paths(v, prefix)
    elif prefix:
        out.add(prefix)
    return out


def _has_below(prefix: str, released: frozenset[str]) -> bool:
    p = prefix + "."
    return any(r.startswith(p) for r in released)


def _filter(value: Any, prefix: str, released: frozenset[str]) -> Any:
    if prefix and covered_by(prefix, released):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not (isinstance(k, str) and NAME_RE.match(k)):
                continue
            path = _join(prefix, k)
            if covered_by(path, released):
                out[k] = v
            elif _has_below(path, released):
                fv = _filter(v, path, released)
                if fv is not _DROP:
                    out[k] = fv
        return out if out else _DROP
    if isinstance(value, list | tuple):
        items = [fv for fv in (_filter(v, prefix, released) for v in value) if fv is not _DROP]
        return items if items else _DROP
    return _DROP


def apply_gate(payload: dict[str, Any] | list[Any], released_fields: Iterable[str]) -> GateResult:
    """Keep only the released fields of ``payload``.

    Args:
        payload: a JSON object, or a list of records (each filtered alike).
        released_fields: field paths from :attr:`policy.Decision.released_fields`.

    Returns:
        :class:`GateResult`; ``payload`` is ``{}`` (or ``[]`` for a list)
        when nothing survives.

    Raises:
        GateError: a released path does not follow the field-path grammar.
        TypeError: ``payload`` is neither a dict nor a list.
    """
    if not isinstance(payload, dict | list):
        raise TypeError(f"payload must be a dict or a list, got {type(payload).__name__}")
    released = canonical_paths(released_fields)
    offered = leaf_paths(payload)
    kept = _filter(payload, "", released)
    if kept is _DROP:
        kept = {} if isinstance(payload, dict) else []
    stripped = sorted(p for p in offered if not covered_by(p, released))
    return GateResult(payload=_copy(kept), stripped=tuple(stripped), offered=tuple(sorted(offered)))


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_copy(x) for x in v]
    return v


# ------------------------------------------------------------------ typed values

#: Longest value of a non-free-text string field without a declared ``max_length``, characters.
MAX_TOKEN_CHARS = 256

#: Why a released value broke its declared type (the ledger entry's ``extra`` carries these).
VALUE_REASONS = (
    "VALUE_TYPE_MISMATCH",
    "VALUE_NOT_IN_ENUM",
    "VALUE_OUT_OF_RANGE",
    "VALUE_TOO_LONG",
    "VALUE_PATTERN_MISMATCH",
    "VALUE_NOT_A_TOKEN",
)


@dataclass(frozen=True)
class ValueViolation:
    """One released value that broke its field's declared type.

    Attributes:
        field: the canonical field path.
        reason: one of :data:`VALUE_REASONS`.
    """

    field: str
    reason: str


@dataclass(frozen=True)
class FreeTextValue:
    """A value of a field declared ``free_text: true``, to be screened.

    Attributes:
        field: the canonical field path.
        text: the value.
        slot: its position in the payload's walk order (for :func:`strip_slots`).
    """

    field: str
    text: str
    slot: int


@dataclass(frozen=True)
class ValueCheck:
    """Outcome of :func:`check_values`.

    Attributes:
        payload: a copy of the payload with every violating field removed.
        violations: the violations, in walk order (one per field occurrence).
        free_text: the remaining free-text values, in walk order.
    """

    payload: Any
    violations: tuple[ValueViolation, ...]
    free_text: tuple[FreeTextValue, ...]

    @property
    def violated_fields(self) -> tuple[str, ...]:
        """Sorted distinct paths that had a violation."""
        return tuple(sorted({v.field for v in self.violations}))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def value_violation(value: Any, spec: Any) -> str:
    """Check one scalar value against a :class:`policy.contract.FieldType`.

    Args:
        value: a JSON scalar (a list is checked element by element by the caller).
        spec: the field's declared type.

    Returns:
        ``""`` when the value conforms, else a reason code from :data:`VALUE_REASONS`.
    """
    t = spec.type
    if t == "string":
        if not isinstance(value, str):
            return "VALUE_TYPE_MISMATCH"
        limit = spec.max_length
        if limit is None and not spec.free_text:
            limit = MAX_TOKEN_CHARS
        if limit is not None and len(value) > limit:
            return "VALUE_TOO_LONG"
        if not spec.free_text and (not value or any(c.isspace() or not c.isprintable() for c in value)):
            return "VALUE_NOT_A_TOKEN"
        if spec.compiled is not None and spec.compiled.fullmatch(value) is None:
            return "VALUE_PATTERN_MISMATCH"
        return ""
    if t == "boolean":
        return "" if isinstance(value, bool) else "VALUE_TYPE_MISMATCH"
    if t == "enum":
        ok = any(type(value) is type(x) and value == x for x in spec.values)
        return "" if ok else "VALUE_NOT_IN_ENUM"
    if not _is_number(value) or (t == "integer" and not isinstance(value, int)):
        return "VALUE_TYPE_MISMATCH"
    if spec.minimum is not None and value < spec.minimum:
        return "VALUE_OUT_OF_RANGE"
    if spec.maximum is not None and value > spec.maximum:
        return "VALUE_OUT_OF_RANGE"
    return ""


def _check_field(value: Any, spec: Any) -> str:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict | list):
            return "VALUE_TYPE_MISMATCH"
        reason = value_violation(item, spec)
        if reason:
            return reason
    return ""


def check_values(payload: Any, fields: Mapping[str, Any]) -> ValueCheck:
    """Check every value of a typed field in a (gated) payload; remove the fields that violate.

    Lists are transparent (``visits.date`` types each visit's date; a list
    value is checked element by element and removed whole if any element
    violates). Fields without a declared type are left as they are.

    Args:
        payload: JSON value (the MNI gate's output: a dict or a list of records).
        fields: canonical field path → :class:`policy.contract.FieldType`
            (``Contract.content.fields``).

    Returns:
        :class:`ValueCheck`: the payload without violating fields, what
        violated and why, and the free-text values left to screen.
    """
    violations: list[ValueViolation] = []
    free: list[FreeTextValue] = []

    def walk(v: Any, prefix: str) -> Any:
        if isinstance(v, list):
            return [walk(x, prefix) for x in v]
        if not isinstance(v, dict):
            return v
        out: dict[Any, Any] = {}
        for k, x in v.items():
            path = _join(prefix, k) if isinstance(k, str) else prefix
            spec = fields.get(path) if isinstance(k, str) else None
            if spec is None:
                out[k] = walk(x, path)
                continue
            reason = _check_field(x, spec)
            if reason:
                violations.append(ValueViolation(field=path, reason=reason))
                continue
            out[k] = _copy(x)
            if spec.free_text:
                for item in x if isinstance(x, list) else [x]:
                    free.append(FreeTextValue(field=path, text=item, slot=len(free)))
        return out

    kept = walk(payload, "")
    return ValueCheck(payload=kept, violations=tuple(violations), free_text=tuple(free))


def strip_slots(payload: Any, fields: Mapping[str, Any], slots: Collection[int]) -> Any:
    """Remove the free-text fields whose value (or any list element) sits at one of ``slots``.

    ``slots`` are :attr:`FreeTextValue.slot` numbers from :func:`check_values`
    on the same ``fields``, run over the payload it returned (walk order is
    the same).

    Returns:
        A copy of ``payload`` without those fields.
    """
    counter = [0]
    drop = frozenset(slots)

    def walk(v: Any, prefix: str) -> Any:
        if isinstance(v, list):
            return [walk(x, prefix) for x in v]
        if not isinstance(v, dict):
            return v
        out: dict[Any, Any] = {}
        for k, x in v.items():
            path = _join(prefix, k) if isinstance(k, str) else prefix
            spec = fields.get(path) if isinstance(k, str) else None
            if spec is None or not spec.free_text:
                out[k] = walk(x, path)
                continue
            n = len(x) if isinstance(x, list) else 1
            mine = range(counter[0], counter[0] + n)
            counter[0] += n
            if not any(s in drop for s in mine):
                out[k] = _copy(x)
        return out

    return walk(payload, "")
