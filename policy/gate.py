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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from policy.paths import NAME_RE, canonical_paths, covered_by

__all__ = ["GateResult", "apply_gate", "leaf_paths"]

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
