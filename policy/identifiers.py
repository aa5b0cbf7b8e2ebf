"""One grammar for every identifier a request carries (contract, purpose, resource, field, subject, agent).

Every identifier that reaches the decision point is checked here, once, at
the wire, before any lookup: the exact string that passed is the one every
consumer (the node's bookkeeping, the Rego engine, the ledger, the auditor)
sees. A string that is not already in Unicode NFC, carries a control or
format character (NUL among them), or is outside its kind's character set
and length is refused; nothing is normalized silently, so no two spellings
of one name exist.

Kinds and their grammar (ASCII; lengths in characters):

=============  ==========================================  ======
kind           pattern                                     max
=============  ==========================================  ======
``contract``   ``[A-Za-z0-9][A-Za-z0-9._:-]*``             128
``purpose``    ``[A-Za-z0-9][A-Za-z0-9._:-]*``             128
``resource``   ``[A-Za-z0-9][A-Za-z0-9._:-]*``             128
``column``     ``[A-Za-z_][A-Za-z0-9_]*``                  64
``field``      a field path (:mod:`policy.paths` grammar)    200
``subject``    ``*`` or ``[A-Za-z0-9][A-Za-z0-9._:@+-]*``  128
``did``        ``did:<method>:<method-specific-id>``        256
               (W3C DID Core §3.1 syntax, ASCII)
=============  ==========================================  ======
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final

from policy.errors import PolicyError

__all__ = ["IDENTIFIER_KINDS", "InvalidIdentifierError", "check_identifier", "is_identifier"]


class InvalidIdentifierError(PolicyError):
    """An identifier does not match its kind's grammar.

    ``metadata`` carries ``kind`` (the identifier's kind) and ``field`` (the
    request member, when the caller names it); never the value itself when it
    holds control characters (its ``repr`` is in the message, bounded).
    """

    reason = "MALFORMED_IDENTIFIER"
    caller_fault = True


_IDCHAR = r"(?:[A-Za-z0-9._\-]|%[0-9A-Fa-f]{2})"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._:\-]*"
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_\-]*(?:\[\])?"  # policy.paths grammar

#: kind -> (compiled full-match pattern, maximum length in characters)
IDENTIFIER_KINDS: Final[dict[str, tuple[re.Pattern[str], int]]] = {
    "contract": (re.compile(_NAME), 128),
    "purpose": (re.compile(_NAME), 128),
    "resource": (re.compile(_NAME), 128),
    "column": (re.compile(r"[A-Za-z_][A-Za-z0-9_]*"), 64),
    "field": (re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*"), 200),
    "subject": (re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9._:@+\-]*"), 128),
    # DID Core §3.1: did:method-name:method-specific-id (pct-encoded allowed)
    "did": (re.compile(rf"did:[a-z0-9]+:(?:{_IDCHAR}|:)*{_IDCHAR}"), 256),
}


def check_identifier(value: object, kind: str, *, field: str | None = None) -> str:
    """Return ``value`` unchanged if it is a valid identifier of ``kind``.

    Args:
        value: the candidate (anything: non-strings are refused).
        kind: one of :data:`IDENTIFIER_KINDS`.
        field: the request member it came from, for the error's metadata.

    Returns:
        The same string object (never a normalized copy).

    Raises:
        InvalidIdentifierError: not a string, empty, too long, not NFC, or
            outside the kind's grammar (``MALFORMED_IDENTIFIER``).
        KeyError: ``kind`` is not a known kind (a programming error).

    """
    pattern, max_len = IDENTIFIER_KINDS[kind]
    if type(value) is str and len(value) <= max_len and _accepted(value, kind):
        return value
    meta = {"kind": kind, **({"field": field} if field else {})}
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{field or kind} must be a string", metadata=meta)
    if not value or len(value) > max_len:
        raise InvalidIdentifierError(f"{field or kind} must be 1..{max_len} characters", metadata=meta)
    # the ASCII grammar below already excludes controls and non-NFC text; the
    # explicit check keeps the error precise for the common hostile cases
    if not value.isascii() or unicodedata.normalize("NFC", value) != value:
        raise InvalidIdentifierError(f"{field or kind} must be ASCII: {value[:64]!r}", metadata=meta)
    if pattern.fullmatch(value) is None:
        raise InvalidIdentifierError(f"{field or kind} is not a valid {kind}: {value[:64]!r}", metadata=meta)
    return value


@functools.lru_cache(maxsize=8192)
def _accepted(value: str, kind: str) -> bool:
    """The grammar check of :func:`check_identifier`, remembered for recently seen strings.

    Requests repeat the same DIDs, contract ids and field paths; the cache is
    bounded (8,192 entries, each at most its kind's maximum length) and keyed
    on exact ``str`` values only, so it answers exactly as the full check.
    """
    pattern, _ = IDENTIFIER_KINDS[kind]
    return (
        bool(value)
        and value.isascii()
        and unicodedata.normalize("NFC", value) == value
        and pattern.fullmatch(value) is not None
    )


def is_identifier(value: object, kind: str) -> bool:
    """True when :func:`check_identifier` accepts ``value`` as ``kind``."""
    try:
        check_identifier(value, kind)
    except InvalidIdentifierError:
        return False
    return True
