"""RFC 9162 §2.1.1 Merkle tree hashing (SHA-256, leaf prefix 0x00, node prefix 0x01)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "leaf_hash",
    "node_hash",
    "split_point",
    "merkle_root",
    "CompactRange",
]

HASH_SIZE = 32
"""Size in bytes of every tree hash (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1), 32 bytes."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf: ``SHA-256(0x00 || data)`` (RFC 9162 §2.1.1).

    Args:
        data: The leaf's data bytes (for the ledger: the entry's RFC 8785 bytes).

    Returns:
        The 32-byte leaf hash.

    """
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1).

    Args:
        left: 32-byte hash of the left subtree.
        right: 32-byte hash of the right subtree.

    Returns:
        The 32-byte node hash.

    """
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"split_point needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute MTH over already-hashed leaves (RFC 9162 §2.1.1), iteratively.

    Args:
        leaf_hashes: The 32-byte leaf hashes, in index order.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for no leaves.

    """
    rng = CompactRange()
    rng.extend(leaf_hashes)
    return rng.root()


@dataclass
class CompactRange:
    """A compact range ``[0, size)``: the perfect-subtree hashes along the right edge.

    Appending a leaf costs amortised O(1) hashes; ``root`` folds O(log n) hashes.
    ``append`` reports every perfect subtree it completes as ``(level, index, hash)``
    so storage can persist them as immutable rows (level 0 = leaves; the node at
    ``(level, index)`` covers leaves ``[index << level, (index + 1) << level)``).

    Attributes:
        size: Number of leaves covered.
        hashes: Perfect-subtree hashes, largest (leftmost) first; one per set bit of
            ``size``, from the most significant bit down.

    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one 32-byte leaf hash.

        Returns:
            The nodes completed by this leaf as ``(level, index, hash)``, the leaf
            itself first (level 0).

        """
        index = self.size
        made = [(0, index, leaf)]
        h = leaf
        level = 0
        while index & 1:
            h = node_hash(self.hashes.pop(), h)
            index >>= 1
            level += 1
            made.append((level, index, h))
        self.hashes.append(h)
        self.size += 1
        return made

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append many leaf hashes; return every completed node, in completion order."""
        out: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            out.extend(self.append(leaf))
        return out

    def root(self) -> bytes:
        """Return MTH of the covered leaves (32 bytes; :data:`EMPTY_ROOT` if empty)."""
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    @staticmethod
    def nodes_for_size(size: int) -> list[tuple[int, int]]:
        """Return the ``(level, index)`` of the perfect subtrees making up ``[0, size)``.

        The list is ordered like :attr:`hashes` (largest subtree first).
        """
        out = []
        lo = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, lo >> level))
                lo += 1 << level
        return out
