"""Field paths: how contracts, decisions and the MNI gate name data fields.

Grammar (one notation everywhere in Accord)::

    path     = segment *( "." segment )
    segment  = name [ "[]" ]
    name     = ( ALPHA / "_" ) *( ALPHA / DIGIT / "_" / "-" )

``patient.age`` names key ``age`` inside the object at key ``patient``.
Lists are transparent: a path continues *through* a list into each of its
elements, so ``visits.date`` names the ``date`` of every object in the list
``visits``. The optional ``[]`` suffix (``visits[].date``) documents that a
segment is a list and is otherwise ignored: the canonical form drops it.
A path covers itself and everything below it (``patient`` covers
``patient.age``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from policy.errors import GateError

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_\-]*"
_PATH_RE = re.compile(rf"^{_SEGMENT}(?:\[\])?(?:\.{_SEGMENT}(?:\[\])?)*$")
NAME_RE = re.compile(rf"^{_SEGMENT}$")

__all__ = ["canonical_path", "canonical_paths", "covered_by", "is_valid_path", "NAME_RE"]


def is_valid_path(path: str) -> bool:
    """Return True if ``path`` follows the field-path grammar (module docstring)."""
    return isinstance(path, str) and bool(_PATH_RE.match(path))


def canonical_path(path: str) -> str:
    """Return the canonical form of a field path (``[]`` suffixes dropped).

    Args:
        path: a field path, e.g. ``"visits[].date"``.

    Returns:
        The canonical path, e.g. ``"visits.date"``.

    Raises:
        GateError: if ``path`` does not follow the grammar.
    """
    if not is_valid_path(path):
        raise GateError(
            f"invalid field path {path!r}: expected dotted names like 'patient.age'",
            metadata={"path": str(path)[:200]},
        )
    return path.replace("[]", "")


def canonical_paths(paths: Iterable[str]) -> frozenset[str]:
    """Canonicalize every path of ``paths`` (see :func:`canonical_path`)."""
    return frozenset(canonical_path(p) for p in paths)


def covered_by(path: str, released: frozenset[str]) -> bool:
    """Return True if canonical ``path`` equals or lies below a released path."""
    if path in released:
        return True
    parts = path.split(".")
    for i in range(1, len(parts)):
        if ".".join(parts[:i]) in released:
            return True
    return False
