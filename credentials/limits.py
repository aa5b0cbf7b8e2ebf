"""Structural bounds on a JSON(-LD) document, checked before any JSON-LD processing.

JSON-LD processing in pyld has super-linear steps: its duplicate-value check
(``JsonLdProcessor.add_value`` -> ``has_value``) scans every value already
added to a property, so one property with *n* distinct values costs O(n²)
comparisons (20 000 short strings, under 100 KB of JSON, took minutes).
Expansion, RDF conversion and RDFC-1.0 also grow with the number of nodes and
quads. Every entry point that signs or verifies (``issue_credential``,
``create_presentation``, ``verify_credential``, ``verify_presentation``,
``add_proof``, ``verify_proof`` and, through them, delegation chains) and
``canonical.to_rdf_quads`` itself call :func:`check_document_limits` first: one
linear pass over the parsed JSON, refusing with ``DOCUMENT_TOO_LARGE`` (bytes,
depth) or ``DOCUMENT_TOO_COMPLEX`` (every other bound) before pyld runs.

The defaults fit Accord's documents with a wide margin: an AgentCredential is
~40 JSON values, a delegated presentation with :data:`federation.delegation.MAX_CHAIN_LINKS`
links ~600, a Bitstring Status List credential carries one ~22 KB string
(16 KiB list, base64url, after gzip).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from credentials.errors import DocumentTooComplexError, DocumentTooLargeError, MalformedCredentialError

__all__ = [
    "DEFAULT_LIMITS",
    "DocumentLimits",
    "check_document_limits",
]


@dataclass(frozen=True)
class DocumentLimits:
    """Bounds on one document (credential, presentation, proof options).

    Attributes:
        max_bytes: size of the compact UTF-8 JSON serialization, bytes (256 KiB).
        max_depth: nesting of objects and arrays, levels (32).
        max_nodes: JSON values in the whole document (objects, arrays, scalars), count (4096).
        max_array_length: values of one property (elements of one JSON array), count (256).
        max_object_keys: members of one JSON object, count (128).
        max_string_chars: length of one string (key or value), Unicode code points (65 536).
        max_quads: RDF quads produced by JSON-LD to RDF, before RDFC-1.0 runs, count (4096).

    """

    max_bytes: int = 256 * 1024
    max_depth: int = 32
    max_nodes: int = 4096
    max_array_length: int = 256
    max_object_keys: int = 128
    max_string_chars: int = 65_536
    max_quads: int = 4096


#: The limits every entry point applies unless given others.
DEFAULT_LIMITS = DocumentLimits()


def _too_complex(limit: str, maximum: int, what: str) -> DocumentTooComplexError:
    return DocumentTooComplexError(
        f"document too complex: {what} (limit {limit}={maximum})",
        metadata={"limit": limit, "max": str(maximum)},
    )


def _check_scalar(value: Any, limits: DocumentLimits) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if len(value) > limits.max_string_chars:
            raise _too_complex("max_string_chars", limits.max_string_chars, "a string is too long")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedCredentialError("JSON numbers must be finite")
        return
    raise MalformedCredentialError(f"not a JSON value: {type(value).__name__}")


def check_document_limits(document: Any, limits: DocumentLimits = DEFAULT_LIMITS) -> None:
    """Refuse a JSON value beyond ``limits``, or not plain JSON; one linear pass, no recursion.

    Args:
        document: a parsed JSON value (dict/list/str/int/float/bool/None).
        limits: the bounds (default :data:`DEFAULT_LIMITS`).

    Raises:
        DocumentTooLargeError: deeper than ``max_depth`` or larger than ``max_bytes``
            (reason ``DOCUMENT_TOO_LARGE``).
        DocumentTooComplexError: more than ``max_nodes`` values, an array longer than
            ``max_array_length``, an object with more than ``max_object_keys`` members,
            a string longer than ``max_string_chars`` (reason ``DOCUMENT_TOO_COMPLEX``;
            ``metadata["limit"]`` names the bound).
        MalformedCredentialError: a non-JSON value (non-string key, NaN/Infinity,
            an unsupported Python type).

    """
    nodes = 0
    chars = 0  # code points of keys and strings: a lower bound on the serialized size
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise _too_complex("max_nodes", limits.max_nodes, "too many JSON values")
        if isinstance(value, dict | list):
            if depth > limits.max_depth:
                raise DocumentTooLargeError(
                    f"JSON nesting deeper than {limits.max_depth} levels",
                    metadata={"max_depth": str(limits.max_depth)},
                )
            if isinstance(value, dict):
                if len(value) > limits.max_object_keys:
                    raise _too_complex(
                        "max_object_keys", limits.max_object_keys, "an object has too many keys"
                    )
                for key in value:
                    if not isinstance(key, str):
                        raise MalformedCredentialError("JSON object keys must be strings")
                    if len(key) > limits.max_string_chars:
                        raise _too_complex("max_string_chars", limits.max_string_chars, "a key is too long")
                    chars += len(key)
                items = value.values()
            else:
                if len(value) > limits.max_array_length:
                    raise _too_complex(
                        "max_array_length", limits.max_array_length, "a property has too many values"
                    )
                items = value
            for item in items:
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            chars += len(value)
        if chars > limits.max_bytes:
            raise DocumentTooLargeError(
                f"document is over {limits.max_bytes} bytes",
                metadata={"size": f">{chars}", "max_bytes": str(limits.max_bytes)},
            )
        if not isinstance(value, dict | list):
            _check_scalar(value, limits)
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > limits.max_bytes:
        raise DocumentTooLargeError(
            f"document is {size} bytes, the limit is {limits.max_bytes}",
            metadata={"size": str(size), "max_bytes": str(limits.max_bytes)},
        )


def check_quad_count(count: int, limits: DocumentLimits = DEFAULT_LIMITS) -> None:
    """Refuse an RDF dataset with more than ``limits.max_quads`` quads (before RDFC-1.0).

    Raises:
        DocumentTooComplexError: ``count`` exceeds ``max_quads``.

    """
    if count > limits.max_quads:
        raise _too_complex("max_quads", limits.max_quads, f"{count} RDF quads")
