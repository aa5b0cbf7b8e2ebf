"""Known divergences of the JS reference (jsonld.js + rdf-canonize) from the standards.

Accord follows the standards (JSON-LD 1.1 to RDF, RDFC-1.0). Where the JS
reference would canonicalize a document differently, a credential signed by
one side does not verify on the other; ``interop_warnings`` finds such values
so that ``issue_credential`` can warn (``InteropWarning``) before signing:

* a non-integral JSON number whose JavaScript string form has no ``.``
  (``1e-7``, ``5e-10``): jsonld.js emits it as ``xsd:integer`` (``"0"``),
  JSON-LD 1.1 API §8.6 (and pyld) as ``xsd:double``;
* strings mixing characters above U+FFFF with characters in U+E000-U+FFFF:
  rdf-canonize sorts N-Quads by UTF-16 code units, RDFC-1.0 by code points.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InteropWarning", "interop_warnings"]


class InteropWarning(UserWarning):
    """A value that the JS reference implementation canonicalizes differently."""


def interop_warnings(document: Any) -> list[str]:
    """List the values in ``document`` on which the JS reference diverges (see module doc).

    Args:
        document: a parsed JSON value.

    Returns:
        Human-readable messages, one per finding (empty if none); JSON pointers
        name the places.

    """
    findings: list[str] = []
    astral = False
    private_bmp = False
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append((item, f"{pointer}/{_escape(key)}"))
                astral, private_bmp = _scan(key, astral, private_bmp)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((item, f"{pointer}/{index}"))
        elif isinstance(value, float) and not isinstance(value, bool):
            # JS writes non-integers below 1e-6 in exponent form ("1e-7"); without a
            # "." jsonld.js takes them for integers. Whole floats (2.0) are integers
            # on both sides (JSON-LD 1.1 API §8.6), and >= 1e21 doubles on both.
            if not value.is_integer() and abs(value) < 1e-6 and "." not in repr(value):
                findings.append(
                    f"{pointer or '/'}: number {value!r} is xsd:double in RDF but the JS "
                    "reference treats it as xsd:integer; use a string or an integer"
                )
        elif isinstance(value, str):
            astral, private_bmp = _scan(value, astral, private_bmp)
    if astral and private_bmp:
        findings.append(
            "characters above U+FFFF together with U+E000-U+FFFF characters: the JS "
            "reference orders N-Quads by UTF-16 code units, RDFC-1.0 by code points"
        )
    return findings


def _scan(text: str, astral: bool, private_bmp: bool) -> tuple[bool, bool]:
    if text.isascii():
        return astral, private_bmp
    for ch in text:
        code = ord(ch)
        if code > 0xFFFF:
            astral = True
        elif code >= 0xE000:
            private_bmp = True
    return astral, private_bmp


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
