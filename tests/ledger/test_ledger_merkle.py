"""RFC 9162 tree hashing and proofs against published vectors and an independent verifier."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_support import (
    VECTORS,
    rfc_mth,
    rfc_path,
    rfc_subproof,
    rfc_verify_consistency,
    rfc_verify_inclusion,
    vectors,
)

from ledger import (
    EMPTY_ROOT,
    InvalidProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.hashing import CompactRange, merkle_root
from ledger.proofs import (
    MAX_TREE_SIZE,
    consistency_proof_from,
    consistency_ranges,
    inclusion_proof_from,
)

CONST = vectors("merkle-testonly-constants")
PROOFGEN = vectors("merkle-proofgen")
LEAVES = [bytes.fromhex(x) for x in CONST["RFC6962_LEAVES"]]


def _store(leaf_hashes):
    rng = CompactRange()
    nodes = {(lv, ix): h for lv, ix, h in rng.extend(leaf_hashes)}
    return rng, (lambda keys: {k: nodes[k] for k in keys})


def _tree(n, seed=b""):
    data = [seed + i.to_bytes(4, "big") for i in range(n)]
    return data, [leaf_hash(d) for d in data]


def test_empty_root_is_sha256_of_empty_string():
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert EMPTY_ROOT.hex().startswith("e3b0c442")
    assert merkle_root([]) == EMPTY_ROOT


def test_single_leaf_and_prefixes():
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = b"\x11" * 32, b"\x22" * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("size", range(9))
def test_rfc6962_reference_roots(size):
    expected = bytes.fromhex(CONST["RFC6962_ROOTS"][size])
    assert merkle_root([leaf_hash(x) for x in LEAVES[:size]]) == expected
    assert rfc_mth(LEAVES[:size]) == expected


def test_rfc6962_reference_nodes():
    rng, get = _store([leaf_hash(x) for x in LEAVES])
    for level, row in enumerate(CONST["RFC6962_NODES"]):
        for index, hexhash in enumerate(row):
            assert get([(level, index)])[(level, index)].hex() == hexhash


@pytest.mark.parametrize("case", PROOFGEN["RFC6962_INCLUSION"], ids=lambda c: str(c))
def test_proofgen_inclusion_vectors(case):
    i, n = case["leaf_index_1based"] - 1, case["tree_size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    _, get = _store([leaf_hash(x) for x in LEAVES[:n]])
    assert inclusion_proof_from(i, n, get) == proof
    root = bytes.fromhex(CONST["RFC6962_ROOTS"][n])
    verify_inclusion(i, n, leaf_hash(LEAVES[i]), proof, root)


@pytest.mark.parametrize("case", PROOFGEN["RFC6962_CONSISTENCY"], ids=lambda c: str(c))
def test_proofgen_consistency_vectors(case):
    m, n = case["size1"], case["size2"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    _, get = _store([leaf_hash(x) for x in LEAVES[:n]])
    assert consistency_proof_from(m, n, get) == proof
    r1, r2 = (bytes.fromhex(CONST["RFC6962_ROOTS"][s]) for s in (m, n))
    verify_consistency(m, n, r1, r2, proof)


def test_every_proof_up_to_48_matches_rfc_definition_and_verifies():
    data, hashes = _tree(48)
    for n in range(1, 49):
        rng, get = _store(hashes[:n])
        root = rng.root()
        assert root == rfc_mth(data[:n])
        for i in range(n):
            proof = inclusion_proof_from(i, n, get)
            assert proof == rfc_path(i, data[:n])
            verify_inclusion(i, n, hashes[i], proof, root)
            assert rfc_verify_inclusion(i, n, hashes[i], proof, root)
        for m in range(1, n + 1):
            proof = consistency_proof_from(m, n, get)
            assert proof == rfc_subproof(m, data[:n])
            r1 = rfc_mth(data[:m])
            verify_consistency(m, n, r1, root, proof)
            assert rfc_verify_consistency(m, n, r1, root, proof)


def _tamper_variants(proof):
    """Every structural tampering of NOTES §6 case 4 except bit flips (done separately)."""
    out = []
    if proof:
        out.append(("truncated", proof[:-1]))
        out.append(("first-dropped", proof[1:]))
    out.append(("extended", proof + [b"\x00" * 32]))
    out.append(("prefixed", [b"\x00" * 32] + proof))
    for a in range(len(proof)):
        for b in range(a + 1, len(proof)):
            if proof[a] != proof[b]:
                p = list(proof)
                p[a], p[b] = p[b], p[a]
                out.append((f"swap-{a}-{b}", p))
    return out


def test_tampering_is_rejected_by_both_verifiers():
    data, hashes = _tree(21, b"t")
    count = 0
    for n in range(1, 22):
        rng, get = _store(hashes[:n])
        root = rng.root()
        for i in range(n):
            proof = inclusion_proof_from(i, n, get)
            for name, bad in _tamper_variants(proof):
                with pytest.raises(InvalidProofError):
                    verify_inclusion(i, n, hashes[i], bad, root)
                assert not rfc_verify_inclusion(i, n, hashes[i], bad, root), name
                count += 1
            for j in (i - 1, i + 1, n):
                if proof and 0 <= j and j != i:
                    with pytest.raises(InvalidProofError):
                        verify_inclusion(j, n, hashes[i], proof, root)
                    count += 1
            with pytest.raises(InvalidProofError):
                verify_inclusion(i, n, leaf_hash(b"wrong"), proof, root)
        for m in range(1, n):
            proof = consistency_proof_from(m, n, get)
            r1 = rfc_mth(data[:m])
            for name, bad in _tamper_variants(proof):
                with pytest.raises(InvalidProofError):
                    verify_consistency(m, n, r1, root, bad)
                assert not rfc_verify_consistency(m, n, r1, root, bad), name
                count += 1
            with pytest.raises(InvalidProofError):
                verify_consistency(m, n, root, r1, proof)  # swapped roots
            with pytest.raises(InvalidProofError):
                verify_consistency(n, m, root, r1, proof)  # rollback: size1 > size2
    assert count > 3000


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=300),
    data=st.data(),
)
def test_property_random_proofs_verify_and_any_bit_flip_fails(n, data):
    _, hashes = _tree(n, b"p")
    rng, get = _store(hashes)
    root = rng.root()
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof_from(i, n, get)
    verify_inclusion(i, n, hashes[i], proof, root)
    assert rfc_verify_inclusion(i, n, hashes[i], proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[k] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(bad[k]))
        with pytest.raises(InvalidProofError):
            verify_inclusion(i, n, hashes[i], bad, root)
        assert not rfc_verify_inclusion(i, n, hashes[i], bad, root)
    m = data.draw(st.integers(1, n))
    cproof = consistency_proof_from(m, n, get)
    r1 = merkle_root(hashes[:m])
    verify_consistency(m, n, r1, root, cproof)
    assert rfc_verify_consistency(m, n, r1, root, cproof)
    if cproof:
        k = data.draw(st.integers(0, len(cproof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(cproof)
        flipped = bytearray(bad[k])
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad[k] = bytes(flipped)
        with pytest.raises(InvalidProofError):
            verify_consistency(m, n, r1, root, bad)
        assert not rfc_verify_consistency(m, n, r1, root, bad)


def test_editing_leaf_k_changes_exactly_the_roots_above_k():
    data, hashes = _tree(20, b"e")
    k = 7
    edited = list(hashes)
    edited[k] = leaf_hash(b"tampered")
    for n in range(1, 21):
        same = merkle_root(hashes[:n]) == merkle_root(edited[:n])
        assert same == (n <= k)
    _, get = _store(hashes)
    _, get_bad = _store(edited)
    honest_old = merkle_root(hashes[:10])
    tampered_new = merkle_root(edited)
    proof = consistency_proof_from(10, 20, get_bad)
    with pytest.raises(InvalidProofError):
        verify_consistency(10, 20, honest_old, tampered_new, proof)
    with pytest.raises(InvalidProofError):
        verify_inclusion(k, 20, hashes[k], inclusion_proof_from(k, 20, get), tampered_new)


def test_equal_sizes_and_empty_old_semantics():
    r = merkle_root(_tree(5)[1])
    verify_consistency(5, 5, r, r, [])
    with pytest.raises(InvalidProofError):
        verify_consistency(5, 5, r, b"\x00" * 32, [])  # fork at one size
    with pytest.raises(InvalidProofError):
        verify_consistency(5, 5, r, r, [r])
    with pytest.raises(InvalidProofError):
        verify_consistency(0, 5, EMPTY_ROOT, r, [])  # RFC: undefined
    verify_consistency(0, 5, EMPTY_ROOT, r, [], allow_empty_old=True)  # tlog-witness
    with pytest.raises(InvalidProofError):
        verify_consistency(0, 5, EMPTY_ROOT, r, [r], allow_empty_old=True)
    assert consistency_ranges(0, 5) == []


def test_second_preimage_interior_node_as_leaf_fails():
    _, hashes = _tree(4)
    root = merkle_root(hashes)
    left = node_hash(hashes[0], hashes[1])
    right = node_hash(hashes[2], hashes[3])
    # The interior node presented as leaf data hashes with the 0x00 prefix, so it cannot match.
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 2, leaf_hash(left), [right], root)


def test_strict_shapes():
    _, hashes = _tree(4)
    root = merkle_root(hashes)
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 4, hashes[0][:31], [hashes[1]], root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 4, hashes[0], [hashes[1] + b"\x00"], root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, MAX_TREE_SIZE + 1, hashes[0], [], root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(-1, 4, hashes[0], [], root)
    with pytest.raises(InvalidProofError):
        verify_consistency(1, 2, root[:31], root, [root])


@pytest.mark.parametrize("n", [2**63, MAX_TREE_SIZE, 2**40 + 12345])
def test_huge_sizes_proof_shapes_agree(n):
    from ledger.proofs import inclusion_ranges

    for i in (0, n // 3, n - 1):
        assert len(inclusion_ranges(i, n)) <= 64
    assert len(consistency_ranges(n // 2 + 1, n)) <= 130


def test_compact_range_matches_recursive_mth_for_every_size():
    data, hashes = _tree(130, b"c")
    rng = CompactRange()
    assert rng.root() == rfc_mth([])
    for n in range(1, 131):
        rng.append(hashes[n - 1])
        assert rng.root() == rfc_mth(data[:n])
        assert len(rng.hashes) == bin(n).count("1")


MERKLE_TESTDATA = json.loads((VECTORS / "merkle-testdata" / "cases.json").read_text())
STRICT_DEVIATIONS = {"testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


@pytest.mark.parametrize("item", MERKLE_TESTDATA, ids=lambda i: i["path"])
def test_transparency_dev_merkle_json_vectors(item):
    c = item["case"]
    want_err = c["wantErr"] or item["path"] in STRICT_DEVIATIONS
    try:
        if item["kind"] == "inclusion":
            idx = c.get("leafIdx", c.get("leafIndex"))
            verify_inclusion(
                idx,
                c["treeSize"],
                _b64(c["leafHash"]),
                [_b64(p) for p in c["proof"]],
                _b64(c["root"]),
            )
        else:
            verify_consistency(
                c["size1"],
                c["size2"],
                _b64(c["root1"]),
                _b64(c["root2"]),
                [_b64(p) for p in c["proof"]],
            )
    except InvalidProofError:
        assert want_err, c["desc"]
    else:
        assert not want_err, c["desc"]
