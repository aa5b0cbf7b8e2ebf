"""Shared helpers for the ledger tests, including an INDEPENDENT RFC 9162 implementation.

The functions prefixed ``rfc_`` are written from the RFC 9162 §2.1 text (recursive
definitions of MTH, PATH and SUBPROOF) and deliberately import nothing from
``ledger``: they check the package's iterative algorithms from the outside.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

#: the test log's origin (also used by conftest.py)
ORIGIN = "accord.example/provider/log"

VECTORS = Path(__file__).parent / "vectors"


def vectors(group: str) -> dict:
    return json.loads((VECTORS / group / "values.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------- independent RFC 9162 code


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def rfc_leaf(d: bytes) -> bytes:
    return _h(b"\x00" + d)


def rfc_node(a: bytes, b: bytes) -> bytes:
    return _h(b"\x01" + a + b)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(leaves: list[bytes]) -> bytes:
    """MTH over raw leaf data (RFC 9162 §2.1.1)."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return rfc_leaf(leaves[0])
    k = _k(n)
    return rfc_node(rfc_mth(leaves[:k]), rfc_mth(leaves[k:]))


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 §2.1.3.1)."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return rfc_path(m, leaves[:k]) + [rfc_mth(leaves[k:])]
    return rfc_path(m - k, leaves[k:]) + [rfc_mth(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], b: bool = True) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 9162 §2.1.4.1)."""
    n = len(leaves)
    if m == n:
        return [] if b else [rfc_mth(leaves)]
    k = _k(n)
    if m <= k:
        return rfc_subproof(m, leaves[:k], b) + [rfc_mth(leaves[k:])]
    return rfc_subproof(m - k, leaves[k:], False) + [rfc_mth(leaves[:k])]


def rfc_inclusion_root(m: int, n: int, leaf_hash: bytes, proof: list[bytes]) -> bytes | None:
    """Rebuild the root by walking PATH backwards; ``None`` if the shape is wrong."""
    if n == 1:
        return leaf_hash if not proof else None
    if not proof:
        return None
    k = _k(n)
    if m < k:
        left = rfc_inclusion_root(m, k, leaf_hash, proof[:-1])
        return None if left is None else rfc_node(left, proof[-1])
    right = rfc_inclusion_root(m - k, n - k, leaf_hash, proof[:-1])
    return None if right is None else rfc_node(proof[-1], right)


def rfc_consistency_roots(
    m: int, n: int, proof: list[bytes], root1: bytes, b: bool = True
) -> tuple[bytes, bytes] | None:
    """Rebuild (old root, new root) by walking SUBPROOF backwards; ``None`` on bad shape."""
    if m == n:
        if b:
            return (root1, root1) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = _k(n)
    last = proof[-1]
    if m <= k:
        sub = rfc_consistency_roots(m, k, proof[:-1], root1, b)
        return None if sub is None else (sub[0], rfc_node(sub[1], last))
    sub = rfc_consistency_roots(m - k, n - k, proof[:-1], root1, False)
    return None if sub is None else (rfc_node(last, sub[0]), rfc_node(last, sub[1]))


def rfc_verify_consistency(m, n, root1, root2, proof) -> bool:
    if not 0 < m <= n:
        return False
    if m == n:
        return not proof and root1 == root2
    got = rfc_consistency_roots(m, n, list(proof), root1)
    return got is not None and got == (root1, root2)


def rfc_verify_inclusion(i, n, leaf_hash, proof, root) -> bool:
    if not 0 <= i < n:
        return False
    return rfc_inclusion_root(i, n, leaf_hash, list(proof)) == root


# ----------------------------------------------------------------------- entries


def make_entry(i: int = 0, **over):
    from ledger import DisclosureEntry

    base = dict(
        kind="disclosure",
        disclosure_id=f"disc-{i:06d}",
        time="2026-11-21T05:00:00Z",
        provider_org="did:web:provider.example",
        requester_org="did:web:requester.example",
        requester_agent="did:key:z6MkRequester",
        provider_agent="",
        contract_id="contract-1",
        contract_hash="ab" * 32,
        purpose="care-coordination",
        fields_requested=["name", "diagnosis"],
        fields_released=["diagnosis"],
        fields_stripped=["name"],
        record_count=1,
        decision="allow",
        reason="",
        decision_hash="cd" * 32,
        request_digest="01" * 32,
        response_digest="02" * 32,
        effective_trust=0.75,
    )
    base.update(over)
    return DisclosureEntry(**base)
