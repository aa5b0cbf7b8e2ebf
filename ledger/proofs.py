"""RFC 9162 §2.1.3 / §2.1.4 inclusion and consistency proofs: generation and verification.

Generation is pure: it names the perfect subtrees ``(level, index)`` it needs, lets
the caller fetch their hashes from storage in one batch, and folds them. A node
``(level, index)`` covers leaves ``[index << level, (index + 1) << level)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ledger.errors import InvalidProofError, TreeSizeError
from ledger.hashing import HASH_SIZE, node_hash, split_point

__all__ = [
    "MAX_TREE_SIZE",
    "verify_inclusion",
    "verify_consistency",
    "root_from_inclusion_proof",
    "inclusion_ranges",
    "consistency_ranges",
    "range_nodes",
    "build_proof",
    "inclusion_proof_from",
    "consistency_proof_from",
]

MAX_TREE_SIZE = (1 << 64) - 1
"""Largest tree size accepted (sizes are uint64 on the wire)."""

NodeKey = tuple[int, int]
Range = tuple[int, int]


def _check_hash(name: str, h: object) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        n = len(h) if isinstance(h, bytes | bytearray) else type(h).__name__
        raise InvalidProofError(f"{name} must be a {HASH_SIZE}-byte hash, got {n}", metadata={"field": name})


def _check_size(name: str, n: object) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > MAX_TREE_SIZE:
        raise InvalidProofError(f"{name} must be an integer in [0, 2^64), got {n!r}")


def root_from_inclusion_proof(index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """Recompute the root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-5).

    Args:
        index: Zero-based leaf index, ``0 <= index < tree_size``.
        tree_size: Number of leaves in the tree (entries).
        leaf_hash: 32-byte leaf hash.
        proof: Audit path, leaf sibling first, each 32 bytes.

    Returns:
        The 32-byte root the proof leads to.

    Raises:
        InvalidProofError: If an input has the wrong shape or the proof has the
            wrong length for ``(index, tree_size)``.

    """
    _check_size("index", index)
    _check_size("tree_size", tree_size)
    if index >= tree_size:
        raise InvalidProofError(
            f"index {index} is not below tree size {tree_size}",
            metadata={"index": index, "tree_size": tree_size},
        )
    _check_hash("leaf_hash", leaf_hash)
    fn, sn, r = index, tree_size - 1, bytes(leaf_hash)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
        if sn == 0:
            raise InvalidProofError(
                f"inclusion proof too long: {len(proof)} hashes",
                metadata={"index": index, "tree_size": tree_size, "proof_len": len(proof)},
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError(
            f"inclusion proof too short: {len(proof)} hashes",
            metadata={"index": index, "tree_size": tree_size, "proof_len": len(proof)},
        )
    return r


def verify_inclusion(
    index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify a Merkle inclusion proof (RFC 9162 §2.1.3.2).

    Args:
        index: Zero-based leaf index, ``0 <= index < tree_size``.
        tree_size: Tree size (entries), below 2^64.
        leaf_hash: 32-byte leaf hash (``leaf_hash(data)``).
        proof: Audit path, leaf sibling first, each hash 32 bytes.
        root: Expected 32-byte root of the tree of ``tree_size`` leaves.

    Raises:
        InvalidProofError: If the proof does not lead to ``root`` or any input is
            malformed (hash not 32 bytes, index out of range, wrong proof length).

    """
    _check_hash("root", root)
    got = root_from_inclusion_proof(index, tree_size, leaf_hash, proof)
    if got != root:
        raise InvalidProofError(
            "inclusion proof does not lead to the expected root",
            metadata={
                "index": index,
                "tree_size": tree_size,
                "expected_root": root.hex(),
                "computed_root": got.hex(),
            },
        )


def verify_consistency(
    size1: int,
    size2: int,
    root1: bytes,
    root2: bytes,
    proof: Sequence[bytes],
    *,
    allow_empty_old: bool = False,
) -> None:
    """Verify a Merkle consistency proof between two tree heads (RFC 9162 §2.1.4.2).

    ``size1 == size2`` is valid iff the proof is empty and the roots are equal.
    ``size1 == 0`` is an error under RFC 9162; with ``allow_empty_old=True``
    (c2sp.org/tlog-witness semantics) it is valid iff the proof is empty.

    Args:
        size1: Size of the older tree (entries).
        size2: Size of the newer tree (entries), ``size1 <= size2 < 2^64``.
        root1: 32-byte root of the older tree.
        root2: 32-byte root of the newer tree.
        proof: Consistency proof hashes, 32 bytes each.
        allow_empty_old: Accept ``size1 == 0`` with an empty proof.

    Raises:
        InvalidProofError: If the proof fails, has the wrong length, or the inputs
            are malformed (``size1 > size2``, hashes not 32 bytes ...).

    """
    _check_size("size1", size1)
    _check_size("size2", size2)
    meta = {"size1": size1, "size2": size2, "proof_len": len(proof)}
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if size2 < size1:
        raise InvalidProofError(f"size1 {size1} is larger than size2 {size2}", metadata=meta)
    if size1 == 0:
        _check_hash("root2", root2)
        if not allow_empty_old:
            raise InvalidProofError("consistency from an empty tree is undefined", metadata=meta)
        if proof:
            raise InvalidProofError("a consistency proof from size 0 must be empty", metadata=meta)
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    if size1 == size2:
        if proof:
            raise InvalidProofError("a proof between equal sizes must be empty", metadata=meta)
        if root1 != root2:
            raise InvalidProofError("equal sizes with different roots", metadata=meta)
        return
    if not proof:
        raise InvalidProofError("empty consistency proof for size1 < size2", metadata=meta)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is a proof node
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProofError("consistency proof too long", metadata=meta)
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("consistency proof too short", metadata=meta)
    if fr != root1:
        raise InvalidProofError(
            "consistency proof does not lead to the old root",
            metadata={**meta, "expected_root1": root1.hex(), "computed_root1": fr.hex()},
        )
    if sr != root2:
        raise InvalidProofError(
            "consistency proof does not lead to the new root",
            metadata={**meta, "expected_root2": root2.hex(), "computed_root2": sr.hex()},
        )


# ----------------------------------------------------------------- generation


def inclusion_ranges(index: int, tree_size: int) -> list[Range]:
    """Return the leaf ranges ``[lo, hi)`` whose MTH form the audit path (RFC 9162 §2.1.3.1).

    Ordered leaf sibling first. Raises :class:`TreeSizeError` if out of range.
    """
    if not 0 <= index < tree_size:
        raise TreeSizeError(
            f"index {index} is not below tree size {tree_size}",
            metadata={"index": index, "tree_size": tree_size},
        )
    out: list[Range] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """Return the leaf ranges whose MTH form the consistency proof (RFC 9162 §2.1.4.1).

    ``size1 == size2`` (and ``size1 == 0``) give an empty proof. Raises
    :class:`TreeSizeError` if ``size1 > size2``.
    """
    if not 0 <= size1 <= size2:
        raise TreeSizeError(
            f"need 0 <= size1 <= size2, got {size1}, {size2}",
            metadata={"size1": size1, "size2": size2},
        )
    if size1 == 0 or size1 == size2:
        return []
    out: list[Range] = []
    lo, hi, m, complete = 0, size2, size1, True
    while True:
        if m == hi - lo:
            if not complete:
                out.append((lo, hi))
            break
        k = split_point(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    out.reverse()
    return out


def range_nodes(lo: int, hi: int) -> list[NodeKey]:
    """Decompose ``[lo, hi)`` into perfect subtrees ``(level, index)``, largest first.

    Valid for the ranges the proof algorithms produce (``lo`` is aligned to a power
    of two at least ``hi - lo``). MTH of the range folds them from the right.
    """
    out: list[NodeKey] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo & ((1 << level) - 1):
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def build_proof(ranges: Sequence[Range], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """Fold perfect-subtree hashes into the proof hashes for ``ranges``.

    Args:
        ranges: Output of :func:`inclusion_ranges` or :func:`consistency_ranges`.
        nodes: Every ``(level, index)`` named by :func:`range_nodes` for those ranges.

    Returns:
        The proof, one 32-byte hash per range.

    """
    out = []
    for lo, hi in ranges:
        keys = range_nodes(lo, hi)
        h = nodes[keys[-1]]
        for key in reversed(keys[:-1]):
            h = node_hash(nodes[key], h)
        out.append(h)
    return out


def _from(ranges: Sequence[Range], get: Callable[[Sequence[NodeKey]], Mapping[NodeKey, bytes]]):
    keys = sorted({k for lo, hi in ranges for k in range_nodes(lo, hi)})
    return build_proof(ranges, get(keys) if keys else {})


def inclusion_proof_from(
    index: int,
    tree_size: int,
    get_nodes: Callable[[Sequence[NodeKey]], Mapping[NodeKey, bytes]],
) -> list[bytes]:
    """Build an inclusion proof, reading perfect-subtree hashes with one ``get_nodes`` call.

    Args:
        index: Leaf index, ``0 <= index < tree_size``.
        tree_size: Tree size (entries).
        get_nodes: Returns the 32-byte hash of each requested ``(level, index)``.

    Returns:
        The audit path, leaf sibling first (O(log n) hashes).

    """
    return _from(inclusion_ranges(index, tree_size), get_nodes)


def consistency_proof_from(
    size1: int,
    size2: int,
    get_nodes: Callable[[Sequence[NodeKey]], Mapping[NodeKey, bytes]],
) -> list[bytes]:
    """Build a consistency proof between sizes, with one ``get_nodes`` call.

    Returns:
        The RFC 9162 §2.1.4.1 proof (empty when ``size1`` is 0 or equals ``size2``).

    """
    return _from(consistency_ranges(size1, size2), get_nodes)
