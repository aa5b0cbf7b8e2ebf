"""Canonicalization: RDFC-1.0 (via safe-mode JSON-LD to RDF) and RFC 8785 JCS.

* ``canonicalize_rdfc`` implements what ``eddsa-rdfc-2022`` needs
  (VC DI EdDSA §3.3.2 "Transformation"): JSON-LD 1.1 *Deserialize JSON-LD to
  RDF* (expansion and RDF conversion by pyld, with ``rdfDirection:
  'i18n-datatype'`` and an offline document loader), in **safe mode** as the
  reference implementation runs it, then the W3C RDF Dataset Canonicalization
  algorithm RDFC-1.0 (implemented here, §4.4-§4.8) and canonical N-Quads with
  RDFC-1.0's literal escaping (§4.3 / N-Quads canonical form).
* ``canonicalize_jcs`` is RFC 8785 (the ``rfc8785`` package), for ``eddsa-jcs-2022``.
* ``load_json`` and ``check_document_limits`` bound what is processed at all
  (``credentials.limits.DocumentLimits``: bytes, depth, JSON values, values per
  property, keys per object, string length; quads before RDFC-1.0): a document
  beyond them is refused before any JSON-LD processing.

Safe mode (as in jsonld.js ``safe: true``): a property that the active
contexts do not define (pyld would silently drop it, leaving its value
unsigned) raises ``UndefinedTermError``; a document-relative IRI in an ``@id``
or ``@type`` position (pyld would resolve it against a default base) raises
``RelativeIriError`` (``UndefinedTermError`` for an undefined type name).
A blank-node property, which standard RDF cannot carry, is refused too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import permutations
from typing import Any
from uuid import uuid4

import rfc8785
from cachetools import LRUCache
from pyld import jsonld
from pyld.context_resolver import ContextResolver

from credentials.errors import (
    CredentialError,
    DocumentTooLargeError,
    MalformedCredentialError,
    RelativeIriError,
    UndefinedTermError,
)
from credentials.limits import DEFAULT_LIMITS, DocumentLimits, check_quad_count
from credentials.limits import check_document_limits as _check_limits
from credentials.loader import DocumentLoader, default_loader

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_JSON_DEPTH",
    "canonicalize_jcs",
    "canonicalize_rdfc",
    "check_document_limits",
    "escape_literal",
    "load_json",
    "rdfc_canonical_nquads",
    "to_rdf_quads",
]

#: Largest accepted document, bytes of its compact JSON (UTF-8). 256 KiB.
MAX_DOCUMENT_BYTES = DEFAULT_LIMITS.max_bytes
#: Deepest accepted JSON nesting (objects and arrays), levels.
MAX_JSON_DEPTH = DEFAULT_LIMITS.max_depth
#: RDFC-1.0 work bounds (RDFC-1.0 §4.4.2 and §7 on poison graphs): Hash N-Degree Quads
#: calls, and permutations examined, per canonicalization.
MAX_NDEGREE_CALLS = 2000
MAX_PERMUTATIONS = 50_000

_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

# A quad is a 4-tuple of serialized N-Quads terms: "<iri>", "_:label", or a literal
# ('"…"', '"…"@lang', '"…"^^<dt>'); the graph term is "" for the default graph.
Quad = tuple[str, str, str, str]


# --------------------------------------------------------------------------- limits


def check_document_limits(
    document: Any,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    limits: DocumentLimits | None = None,
) -> None:
    """Refuse a JSON value that is too large, too deep, too complex, or not plain JSON.

    A thin wrapper over :func:`credentials.limits.check_document_limits` (see
    there for every bound): ``max_bytes`` and ``max_depth`` override those two
    bounds of ``limits`` (default :data:`credentials.limits.DEFAULT_LIMITS`).

    Args:
        document: a parsed JSON value (dict/list/str/int/float/bool/None).
        max_bytes: size cap, bytes of the compact UTF-8 JSON serialization.
        max_depth: nesting cap, levels of objects/arrays.
        limits: the other bounds (nodes, array length, keys, string length).

    Raises:
        DocumentTooLargeError: deeper than ``max_depth`` or larger than ``max_bytes``.
        DocumentTooComplexError: beyond another bound of ``limits``.
        MalformedCredentialError: a non-JSON value (non-string key, NaN/Infinity,
            an unsupported Python type).

    """
    base = limits or DEFAULT_LIMITS
    if base.max_bytes != max_bytes or base.max_depth != max_depth:
        base = replace(base, max_bytes=max_bytes, max_depth=max_depth)
    _check_limits(document, base)


def load_json(
    data: bytes | str,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON text with size and depth caps applied before and after parsing.

    Args:
        data: UTF-8 bytes or text.
        max_bytes: cap on the input length, bytes.
        max_depth: nesting cap, levels.

    Returns:
        The parsed JSON value.

    Raises:
        DocumentTooLargeError: the input exceeds a cap.
        MalformedCredentialError: not UTF-8 or not JSON (including NaN/Infinity
            and duplicate-free but otherwise invalid JSON).

    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise DocumentTooLargeError(
            f"document is {len(raw)} bytes, the limit is {max_bytes}",
            metadata={"size": str(len(raw)), "max_bytes": str(max_bytes)},
        )

    def _reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise DocumentTooLargeError("JSON nesting too deep", metadata={"max_depth": str(max_depth)}) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedCredentialError(f"not valid JSON: {exc}") from None
    check_document_limits(value, max_bytes=max_bytes, max_depth=max_depth)
    return value


# --------------------------------------------------------------------------- JCS


def canonicalize_jcs(value: Any) -> bytes:
    """Serialize a JSON value with the JSON Canonicalization Scheme (RFC 8785 §3).

    Returns:
        The canonical UTF-8 bytes.

    Raises:
        MalformedCredentialError: the value cannot be represented (e.g. an
            integer outside IEEE 754 double precision, NaN, non-string keys).

    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedCredentialError(f"cannot JCS-canonicalize: {exc}") from None


# --------------------------------------------------------------------------- JSON-LD


class _SafeProcessor(jsonld.JsonLdProcessor):
    """pyld processor with jsonld.js-style safe-mode checks (see module docstring).

    It also memoizes context processing per loader: pyld re-processes a
    type- or property-scoped context every time it applies it to a fresh
    child context (a new ``_uuid`` each time, so its own cache misses). The
    memo key is the input active context's ``_uuid``, the identity of the local
    context (or its URLs) and the processing flags; pyld never mutates a
    processed context afterwards except to give it a ``_uuid``.
    """

    def __init__(self, memo: LRUCache) -> None:
        super().__init__(on_property_dropped=self._dropped)
        self._memo = memo

    def _process_context(
        self,
        active_ctx,
        local_ctx,
        options,
        override_protected=False,
        propagate=True,
        validate_scoped=True,
        cycles=None,
    ):  # noqa: D102 - pyld override
        uuid = active_ctx.get("_uuid")
        if uuid is None or cycles is not None:
            return super()._process_context(
                active_ctx,
                local_ctx,
                options,
                override_protected,
                propagate,
                validate_scoped,
                cycles,
            )
        if isinstance(local_ctx, str):
            ctx_key: Any = local_ctx
        elif isinstance(local_ctx, list) and all(isinstance(c, str) for c in local_ctx):
            ctx_key = tuple(local_ctx)
        else:
            ctx_key = id(local_ctx)
        key = (uuid, ctx_key, override_protected, propagate, validate_scoped)
        hit = self._memo.get(key)
        if hit is not None and (not isinstance(ctx_key, int) or hit[0] is local_ctx):
            return hit[1]
        result = super()._process_context(
            active_ctx, local_ctx, options, override_protected, propagate, validate_scoped, cycles
        )
        if "_uuid" not in result:
            result["_uuid"] = str(uuid4())
        self._memo[key] = (local_ctx, result)
        return result

    @staticmethod
    def _dropped(term: str | None) -> None:
        raise UndefinedTermError(
            f"term {term!r} is not defined by the document's contexts (JSON-LD safe mode)",
            metadata={"term": str(term)[:200]},
        )

    def _expand_iri(self, active_ctx, value, base=None, vocab=False, local_ctx=None, defined=None):  # noqa: D102 - pyld override
        if base is None or local_ctx is not None or not isinstance(value, str):
            return super()._expand_iri(active_ctx, value, base, vocab, local_ctx, defined)
        # Document-relative expansion requested: resolve without a base first; a value
        # that is still not an absolute IRI (nor a keyword or blank node) is relative.
        result = super()._expand_iri(active_ctx, value, None, vocab, local_ctx, defined)
        if result is None or not isinstance(result, str) or result.startswith("@"):
            return result
        if result.startswith("_:") or jsonld._is_absolute_iri(result):
            return result
        if vocab:
            raise UndefinedTermError(
                f"type {value!r} is not defined by the document's contexts (JSON-LD safe mode)",
                metadata={"term": value[:200]},
            )
        raise RelativeIriError(f"relative IRI {value!r} (JSON-LD safe mode)", metadata={"iri": value[:200]})


def _unwrap(exc: BaseException) -> CredentialError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CredentialError):
            return current
        current = current.__cause__ or current.__context__
    return None


def escape_literal(value: str) -> str:
    r"""Escape a literal's lexical form as RDFC-1.0 canonical N-Quads requires.

    ``\b \t \n \f \r \" \\`` become two-character escapes; every other
    character in U+0000-U+001F and U+007F becomes ``\u00XX`` (upper-case hex);
    everything else is emitted as is (UTF-8 in the output).
    """
    out: list[str] = []
    for ch in value:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    return "".join(out)


_ESCAPES = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}
_NEEDS_ESCAPE = frozenset(_ESCAPES) | frozenset(chr(c) for c in range(0x20)) | {"\x7f"}


def _term(node: dict[str, Any]) -> str:
    kind = node["type"]
    value = node["value"]
    if kind == "IRI":
        return "<" + value + ">"
    if kind == "blank node":
        return value
    if not _NEEDS_ESCAPE.isdisjoint(value):
        value = escape_literal(value)
    datatype = node.get("datatype")
    if datatype == _RDF_LANGSTRING:
        return '"' + value + '"@' + node.get("language", "")
    if datatype and datatype != _XSD_STRING:
        return '"' + value + '"^^<' + datatype + ">"
    return '"' + value + '"'


def to_rdf_quads(document: Any, *, loader: DocumentLoader | None = None) -> list[Quad]:
    """Deserialize JSON-LD to an RDF dataset, in safe mode, offline.

    Args:
        document: the JSON-LD document (a dict; it is not modified).
        loader: the document loader (default: ``default_loader()``).

    Returns:
        The dataset's quads as serialized N-Quads terms ``(s, p, o, g)``, ``g``
        being ``""`` for the default graph; blank nodes carry pyld's labels.

    Raises:
        DocumentTooLargeError, DocumentTooComplexError: beyond ``DEFAULT_LIMITS``
            (checked before pyld runs; the quad count before the quads are returned).
        UnknownContextError: a context URL is not served by the loader.
        UndefinedTermError: a property or type is not defined (safe mode).
        RelativeIriError: a relative IRI in an ``@id`` position (safe mode).
        MalformedCredentialError: any other JSON-LD processing error.

    """
    check_document_limits(document)
    loader = loader or default_loader()
    options = {
        "base": "",
        "documentLoader": loader,
        "contextResolver": ContextResolver(loader.context_cache, loader),
        "rdfDirection": "i18n-datatype",
        "produceGeneralizedRdf": True,
        "processingMode": "json-ld-1.1",
        "extractAllScripts": False,
    }
    try:
        with loader.lock:  # pyld's caches (cachetools LRUCache) are not thread-safe
            dataset = _SafeProcessor(loader.processed_cache).to_rdf(document, options)
    except CredentialError:
        raise
    except RecursionError:
        raise DocumentTooLargeError("JSON-LD structure too deep") from None
    except Exception as exc:  # pyld raises JsonLdError and, on odd input, others
        inner = _unwrap(exc)
        if inner is not None:
            raise inner from None
        raise MalformedCredentialError(
            f"JSON-LD processing failed: {_describe(exc)}",
            metadata={"jsonld_error": str(getattr(exc, "type", type(exc).__name__))},
        ) from None
    check_quad_count(sum(len(triples) for triples in dataset.values()))
    quads: list[Quad] = []
    for graph_name, triples in dataset.items():
        g = "" if graph_name == "@default" else _graph_term(graph_name)
        for triple in triples:
            predicate = triple["predicate"]
            if predicate["type"] != "IRI":
                raise UndefinedTermError(
                    "blank node used as a property (JSON-LD safe mode)",
                    metadata={"term": str(predicate.get("value"))[:200]},
                )
            quads.append(
                (
                    _term(triple["subject"]),
                    "<" + predicate["value"] + ">",
                    _term(triple["object"]),
                    g,
                )
            )
    return quads


def _graph_term(name: str) -> str:
    return name if name.startswith("_:") else "<" + name + ">"


def _describe(exc: BaseException) -> str:
    parts = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 4:
        message = getattr(current, "message", None) or str(current)
        parts.append(str(message).split("\n")[0][:200])
        current = current.__cause__
    return "; ".join(parts)


# --------------------------------------------------------------------------- RDFC-1.0


class _IdentifierIssuer:
    """RDFC-1.0 §4.5 Issue Identifier: prefix + counter, issue order remembered."""

    __slots__ = ("prefix", "counter", "issued")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counter = 0
        self.issued: dict[str, str] = {}

    def issue(self, existing: str) -> str:
        issued = self.issued.get(existing)
        if issued is None:
            issued = f"{self.prefix}{self.counter}"
            self.counter += 1
            self.issued[existing] = issued
        return issued

    def copy(self) -> _IdentifierIssuer:
        other = _IdentifierIssuer(self.prefix)
        other.counter = self.counter
        other.issued = dict(self.issued)
        return other


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _line(quad: Quad) -> str:
    s, p, o, g = quad
    return f"{s} {p} {o} {g} .\n" if g else f"{s} {p} {o} .\n"


class _Canonicalizer:
    """State of one RDFC-1.0 run (§4.4.2 canonicalization state)."""

    def __init__(self, quads: Sequence[Quad]) -> None:
        self.quads = list(dict.fromkeys(quads))  # an RDF dataset is a set
        self.bnode_quads: dict[str, list[Quad]] = {}
        for quad in self.quads:
            for position in (0, 2, 3):
                term = quad[position]
                if term.startswith("_:"):
                    refs = self.bnode_quads.setdefault(term, [])
                    if not refs or refs[-1] is not quad:
                        refs.append(quad)
        self.canonical = _IdentifierIssuer("_:c14n")
        self.first_degree: dict[str, str] = {}
        self.ndegree_calls = 0
        self.permutations = 0

    # §4.6 Hash First Degree Quads
    def hash_first_degree(self, node: str) -> str:
        cached = self.first_degree.get(node)
        if cached is not None:
            return cached
        lines = []
        for quad in self.bnode_quads[node]:
            replaced = tuple(
                (("_:a" if t == node else "_:z") if t.startswith("_:") else t) if i != 1 else t
                for i, t in enumerate(quad)
            )
            lines.append(_line(replaced))  # type: ignore[arg-type]
        lines.sort()
        digest = _sha256_hex("".join(lines))
        self.first_degree[node] = digest
        return digest

    # §4.7 Hash Related Blank Node
    def hash_related(self, related: str, quad: Quad, issuer: _IdentifierIssuer, pos: str) -> str:
        if related in self.canonical.issued:
            ident = self.canonical.issued[related]
        elif related in issuer.issued:
            ident = issuer.issued[related]
        else:
            ident = self.hash_first_degree(related)
        data = pos + (quad[1] if pos != "g" else "") + ident
        return _sha256_hex(data)

    # §4.8 Hash N-Degree Quads
    def hash_n_degree(self, node: str, issuer: _IdentifierIssuer) -> tuple[str, _IdentifierIssuer]:
        self.ndegree_calls += 1
        if self.ndegree_calls > MAX_NDEGREE_CALLS:
            raise DocumentTooLargeError(
                "RDFC-1.0 work limit exceeded (blank node structure too complex)",
                metadata={"max_ndegree_calls": str(MAX_NDEGREE_CALLS)},
            )
        related_by_hash: dict[str, list[str]] = {}
        for quad in self.bnode_quads[node]:
            for position, pos in ((0, "s"), (2, "o"), (3, "g")):
                term = quad[position]
                if term.startswith("_:") and term != node:
                    h = self.hash_related(term, quad, issuer, pos)
                    related_by_hash.setdefault(h, []).append(term)
        data = []
        for related_hash in sorted(related_by_hash):
            data.append(related_hash)
            chosen_path = ""
            chosen_issuer: _IdentifierIssuer | None = None
            for permutation in permutations(related_by_hash[related_hash]):
                self.permutations += 1
                if self.permutations > MAX_PERMUTATIONS:
                    raise DocumentTooLargeError(
                        "RDFC-1.0 work limit exceeded (blank node structure too complex)",
                        metadata={"max_permutations": str(MAX_PERMUTATIONS)},
                    )
                issuer_copy = issuer.copy()
                path = ""
                recursion: list[str] = []
                skip = False
                for related in permutation:
                    if related in self.canonical.issued:
                        path += self.canonical.issued[related]
                    else:
                        if related not in issuer_copy.issued:
                            recursion.append(related)
                        path += issuer_copy.issue(related)
                    if chosen_path and len(path) >= len(chosen_path) and path > chosen_path:
                        skip = True
                        break
                if skip:
                    continue
                for related in recursion:
                    result_hash, result_issuer = self.hash_n_degree(related, issuer_copy)
                    path += issuer_copy.issue(related)
                    path += "<" + result_hash + ">"
                    issuer_copy = result_issuer
                    if chosen_path and len(path) >= len(chosen_path) and path > chosen_path:
                        skip = True
                        break
                if skip:
                    continue
                if not chosen_path or path < chosen_path:
                    chosen_path = path
                    chosen_issuer = issuer_copy
            data.append(chosen_path)
            assert chosen_issuer is not None
            issuer = chosen_issuer
        return _sha256_hex("".join(data)), issuer

    # §4.4.3 Canonicalization algorithm
    def run(self) -> str:
        by_hash: dict[str, list[str]] = {}
        for node in self.bnode_quads:
            by_hash.setdefault(self.hash_first_degree(node), []).append(node)
        for h in sorted(by_hash):
            nodes = by_hash[h]
            if len(nodes) == 1:
                self.canonical.issue(nodes[0])
                del by_hash[h]
        for h in sorted(by_hash):
            results = []
            for node in by_hash[h]:
                if node in self.canonical.issued:
                    continue
                temp = _IdentifierIssuer("_:b")
                temp.issue(node)
                results.append(self.hash_n_degree(node, temp))
            results.sort(key=lambda r: r[0])
            for _, issuer in results:
                for existing in issuer.issued:
                    self.canonical.issue(existing)
        issued = self.canonical.issued
        lines = {
            _line(
                tuple(issued[t] if t.startswith("_:") and i != 1 else t for i, t in enumerate(q))  # type: ignore[arg-type]
            )
            for q in self.quads
        }
        return "".join(sorted(lines))


def rdfc_canonical_nquads(quads: Iterable[Quad]) -> str:
    r"""Run RDFC-1.0 (W3C RDF Dataset Canonicalization §4.4) on a dataset.

    Args:
        quads: the dataset as serialized terms ``(s, p, o, g)`` (see ``to_rdf_quads``).

    Returns:
        The canonical N-Quads document: one line per quad, each ending in
        ``"\n"``, sorted in Unicode code point order, blank nodes relabelled
        ``_:c14n0``, ``_:c14n1``, ...

    Raises:
        DocumentTooLargeError: a work bound (``MAX_NDEGREE_CALLS``,
            ``MAX_PERMUTATIONS``) was hit: a "poison" dataset.

    """
    return _Canonicalizer(list(quads)).run()


def canonicalize_rdfc(document: Any, *, loader: DocumentLoader | None = None) -> str:
    """Canonicalize a JSON-LD document to RDFC-1.0 canonical N-Quads (safe mode, offline).

    Args:
        document: the JSON-LD document (dict).
        loader: document loader (default: ``default_loader()``).

    Returns:
        The canonical N-Quads text (UTF-8 when encoded).

    Raises:
        UnknownContextError, UndefinedTermError, RelativeIriError,
        MalformedCredentialError, DocumentTooLargeError: see ``to_rdf_quads``.

    """
    return rdfc_canonical_nquads(to_rdf_quads(document, loader=loader))
