"""Canonicalization: safe mode, RDFC-1.0 escaping, a differential test against pyld, caps."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyld.canon import URDNA2015

from credentials import (
    DocumentLoader,
    DocumentTooLargeError,
    MalformedCredentialError,
    RelativeIriError,
    UndefinedTermError,
    UnknownContextError,
    canonicalize_jcs,
    canonicalize_rdfc,
    check_document_limits,
    load_json,
)
from credentials.canonical import escape_literal, rdfc_canonical_nquads, to_rdf_quads
from tests.credentials.cred_support import RDFC, load

V2 = "https://www.w3.org/ns/credentials/v2"


def _doc(**subject):
    return {
        "@context": [V2, "https://w3id.org/accord/credentials/v1"],
        "type": ["VerifiableCredential"],
        "issuer": "did:web:a.accord.test",
        "credentialSubject": {"id": "did:example:1", **subject},
    }


def test_defined_accord_terms_are_kept():
    nquads = canonicalize_rdfc(_doc(role="nurse", scopes=["a", "b"], trustTier=1))
    assert '<https://w3id.org/accord/vocab#role> "nurse"' in nquads
    assert nquads.count("<https://w3id.org/accord/vocab#scopes>") == 2
    assert '"1"^^<http://www.w3.org/2001/XMLSchema#integer>' in nquads


def test_undefined_property_is_an_error_not_dropped():
    with pytest.raises(UndefinedTermError) as info:
        canonicalize_rdfc(_doc(favouriteColour="blue"))
    assert info.value.reason == "UNDEFINED_TERM"
    assert info.value.metadata["term"] == "favouriteColour"


def test_undefined_type_is_an_error():
    doc = _doc()
    doc["type"].append("SuperCredential")
    with pytest.raises(UndefinedTermError):
        canonicalize_rdfc(doc)


def test_keyword_lookalike_is_an_error():
    with pytest.raises(UndefinedTermError):
        canonicalize_rdfc(_doc(**{"@foo": "x"}))


@pytest.mark.parametrize("iri", ["relative/path", "#me", "", "//evil.example/x", "has space"])
def test_relative_iri_is_an_error(iri):
    doc = _doc()
    doc["credentialSubject"]["id"] = iri
    with pytest.raises(RelativeIriError) as info:
        canonicalize_rdfc(doc)
    assert info.value.reason == "RELATIVE_IRI"


def test_blank_node_property_is_refused():
    doc = {"@context": [V2, {"_:p": {"@id": "_:p"}}], "id": "urn:x:1", "_:p": "v"}
    with pytest.raises((UndefinedTermError, MalformedCredentialError)):
        canonicalize_rdfc(doc)


def test_unknown_context_is_never_fetched():
    doc = _doc()
    doc["@context"].append("https://example.com/ctx.jsonld")
    with pytest.raises(UnknownContextError) as info:
        canonicalize_rdfc(doc)
    assert info.value.metadata["url"] == "https://example.com/ctx.jsonld"


def test_protected_term_redefinition_is_malformed():
    doc = _doc()
    doc["@context"].append({"role": "https://evil.example/role"})
    with pytest.raises(MalformedCredentialError):
        canonicalize_rdfc(doc)


def test_jsonld_syntax_error_is_malformed_not_a_crash():
    with pytest.raises(MalformedCredentialError):
        canonicalize_rdfc({"@context": 5, "id": "urn:x"})
    with pytest.raises(MalformedCredentialError):
        canonicalize_rdfc({"@context": [V2], "@id": {"no": "string"}})


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\bb", "a\\bb"),
        ("tab\there", "tab\\there"),
        ("nl\ncr\r", "nl\\ncr\\r"),
        ("ff\f", "ff\\f"),
        ('q"b\\', 'q\\"b\\\\'),
        ("\x00\x01\x1f", "\\u0000\\u0001\\u001F"),
        ("del\x7f", "del\\u007F"),
        ("é ü 😀 \u2028", "é ü 😀 \u2028"),
    ],
)
def test_rdfc_literal_escaping(raw, escaped):
    assert escape_literal(raw) == escaped


def test_control_characters_canonicalize_with_rdfc_escapes():
    nquads = canonicalize_rdfc(_doc(role="x\by\x0bz\x7f"))
    assert '"x\\by\\u000Bz\\u007F"' in nquads


def test_language_and_direction_i18n_datatype():
    doc = _doc()
    doc["name"] = {"@value": "שלום", "@language": "he", "@direction": "rtl"}
    nquads = canonicalize_rdfc(doc)
    assert '"שלום"^^<https://www.w3.org/ns/i18n#he_rtl>' in nquads


def test_jcs_matches_rfc8785_examples():
    assert canonicalize_jcs({"b": 2, "a": [1, "é", None, True]}) == ('{"a":[1,"é",null,true],"b":2}'.encode())
    assert canonicalize_jcs({"n": 1e-7, "m": 1e21}) == b'{"m":1e+21,"n":1e-7}'
    with pytest.raises(MalformedCredentialError):
        canonicalize_jcs({"big": 2**60})


def test_employ_vector_blank_nodes_are_stable_under_key_reordering():
    doc = load(RDFC / "employ" / "employmentAuth.json")
    expected = (RDFC / "employ" / "canonDocDataInt.txt").read_text(encoding="utf-8")
    reordered = json.loads(json.dumps(doc, sort_keys=True))
    assert canonicalize_rdfc(reordered) == expected


def test_memoized_context_processing_equals_fresh_processing():
    docs = [
        load(RDFC / "unsigned.json"),
        load(RDFC / "employ" / "employmentAuth.json"),
        _doc(role="r", scopes=["s"]),
        load(RDFC / "signedDataInt.json"),
    ]
    warm = DocumentLoader()
    for _ in range(3):
        for doc in docs:
            assert canonicalize_rdfc(doc, loader=warm) == canonicalize_rdfc(doc, loader=DocumentLoader())


def test_input_document_is_not_modified():
    doc = load(RDFC / "employ" / "employmentAuth.json")
    before = copy.deepcopy(doc)
    canonicalize_rdfc(doc)
    assert doc == before


# ---------------------------------------------------------------- differential: RDFC-1.0 vs pyld

_IRIS = [f"<http://example.org/{c}>" for c in "abc"]
_term_s = st.one_of(st.sampled_from(_IRIS), st.integers(0, 5).map(lambda i: f"_:n{i}"))
_term_o = st.one_of(_term_s, st.text(alphabet="xyz é", max_size=3).map(lambda t: '"' + t + '"'))
_quad = st.tuples(
    _term_s,
    st.sampled_from(["<http://example.org/p>", "<http://example.org/q>"]),
    _term_o,
    st.sampled_from(["", "", "<http://example.org/g>", "_:n0", "_:n5"]),
)


def _pyld_node(term: str) -> dict:
    if term.startswith("<"):
        return {"type": "IRI", "value": term[1:-1]}
    if term.startswith("_:"):
        return {"type": "blank node", "value": term}
    return {
        "type": "literal",
        "value": term[1:-1],
        "datatype": "http://www.w3.org/2001/XMLSchema#string",
    }


def _pyld_canonical(quads) -> str:
    dataset: dict[str, list] = {}
    for s, p, o, g in dict.fromkeys(quads):
        triple = {"subject": _pyld_node(s), "predicate": _pyld_node(p), "object": _pyld_node(o)}
        dataset.setdefault(g[1:-1] if g.startswith("<") else (g or "@default"), []).append(triple)
    return URDNA2015().main(dataset, {"format": "application/n-quads"})


def _bnode_twice(quad) -> bool:
    nodes = [t for i, t in enumerate(quad) if i != 1 and t.startswith("_:")]
    return len(nodes) != len(set(nodes))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_quad, min_size=1, max_size=12))
def test_rdfc10_agrees_with_pyld_urdna2015(quads):
    # pyld lists a quad once per blank-node occurrence (the old URDNA2015 code);
    # RDFC-1.0 / rdf-canonize 5 keep a set. Only datasets where they coincide here.
    assume(not any(_bnode_twice(q) for q in quads))
    assert rdfc_canonical_nquads(quads) == _pyld_canonical(quads)


def test_regression_blank_node_twice_in_one_quad_is_hashed_once():
    # Found by the differential test above: "_:n0 q _:n0" contributes ONE line to
    # _:n0's first-degree hash (rdf-canonize 5 uses a Set of quads); pyld 3.3 counts
    # it twice and so labels this dataset differently.
    quads = [
        ("<http://example.org/a>", "<http://example.org/p>", "<http://example.org/a>", "_:n5"),
        ("_:n0", "<http://example.org/q>", "_:n0", ""),
    ]
    assert rdfc_canonical_nquads(quads) == (
        "<http://example.org/a> <http://example.org/p> <http://example.org/a> _:c14n1 .\n"
        "_:c14n0 <http://example.org/q> _:c14n0 .\n"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_quad, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_rdfc10_is_invariant_under_blank_node_relabelling(quads, rnd):
    labels = [f"_:n{i}" for i in range(6)]
    shuffled = labels[:]
    rnd.shuffle(shuffled)
    mapping = dict(zip(labels, (f"_:x{s[3:]}" for s in shuffled), strict=True))
    # blank-node graph names: see the known-limit regression below
    assume(not any(q[3].startswith("_:") for q in quads))
    relabelled = [tuple(mapping.get(t, t) for t in q) for q in quads]
    rnd.shuffle(relabelled)
    assert rdfc_canonical_nquads(quads) == rdfc_canonical_nquads(relabelled)


#: Found by the relabelling property above (2026-12-04): two blank nodes pointing at each
#: other from two blank-node graphs. Accord's RDFC-1.0 gives two different "canonical" forms
#: depending on the order of the input quads; pyld's URDNA2015 also varies here (with the
#: order, and even with Python's hash seed), so it cannot serve as the reference (open).
_SYMMETRIC_GRAPHS = [
    ("_:n1", "<http://example.org/p>", "_:n4", "_:n0"),
    ("_:n4", "<http://example.org/p>", "_:n1", "_:n5"),
    ("<http://example.org/a>", "<http://example.org/p>", "<http://example.org/a>", ""),
    ("<http://example.org/a>", "<http://example.org/p>", "<http://example.org/a>", "_:n0"),
]


@pytest.mark.xfail(strict=True, reason="RDFC-1.0 output depends on quad order here: open")
def test_regression_symmetric_blank_graphs_are_labelled_independently_of_input_labels():
    reordered = [_SYMMETRIC_GRAPHS[1], _SYMMETRIC_GRAPHS[0], *_SYMMETRIC_GRAPHS[2:]]  # same quads
    assert rdfc_canonical_nquads(_SYMMETRIC_GRAPHS) == rdfc_canonical_nquads(reordered)



def test_to_rdf_quads_shape():
    quads = to_rdf_quads(load(RDFC / "unsigned.json"))
    assert all(len(q) == 4 and q[1].startswith("<") for q in quads)
    assert len(quads) == 8


# ---------------------------------------------------------------- caps


def test_depth_cap():
    deep: dict = {"x": 1}
    for _ in range(40):
        deep = {"a": deep}
    with pytest.raises(DocumentTooLargeError) as info:
        check_document_limits(deep)
    assert info.value.reason == "DOCUMENT_TOO_LARGE"


def test_size_cap():
    with pytest.raises(DocumentTooLargeError):
        check_document_limits({"blob": "x" * (256 * 1024)})
    check_document_limits({"blob": "x" * 1000})


def test_non_json_values_are_refused():
    for bad in ({"n": float("nan")}, {1: "int key"}, {"s": {1, 2}}):
        with pytest.raises(MalformedCredentialError):
            check_document_limits(bad)


def test_load_json_caps_and_errors():
    assert load_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(DocumentTooLargeError):
        load_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(DocumentTooLargeError):
        load_json(b'"' + b"x" * (300 * 1024) + b'"')
    for bad in (b"{", b"\xff\xfe", b'{"a": NaN}', b"[1,]"):
        with pytest.raises(MalformedCredentialError):
            load_json(bad)


@pytest.mark.parametrize("n", [6, 10])
def test_poison_graph_hits_the_work_bound_quickly(n):
    import time

    clique = [
        (f"_:e{i}", "<http://example.org/p>", f"_:e{j}", "") for i in range(n) for j in range(n) if i != j
    ]
    start = time.perf_counter()
    with pytest.raises(DocumentTooLargeError):
        rdfc_canonical_nquads(clique)
    assert time.perf_counter() - start < 5


def test_small_symmetric_graph_is_within_bounds():
    ring = [(f"_:e{i}", "<http://example.org/p>", f"_:e{(i + 1) % 5}", "") for i in range(5)]
    out = rdfc_canonical_nquads(ring)
    assert out.count("_:c14n") == 10 and "_:e" not in out
