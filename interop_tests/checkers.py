"""Independent verifiers written from the spec texts (not from Accord's ledger code).

* RFC 9162 §2.1.1 leaf hash and §2.1.3.2 inclusion-proof verification.
* C2SP signed-note (Ed25519, key type 0x01) signature check and C2SP
  tlog-checkpoint body parsing.
* C2SP tlog-proof parsing.

They use only ``hashlib``, ``base64`` and ``cryptography``, so a bug in
``ledger`` cannot hide itself here.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class CheckFailed(Exception):
    """A conformance check failed; the message says what was expected and what came."""


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc9162_leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 || entry)."""
    return _h(b"\x00" + entry)


def rfc9162_verify_inclusion(
    *, leaf_index: int, tree_size: int, leaf: bytes, path: list[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2 inclusion proof verification, step by step.

    Raises:
        CheckFailed: the proof does not lead to ``root``.

    """
    if leaf_index >= tree_size:
        raise CheckFailed(f"leaf_index {leaf_index} >= tree_size {tree_size}")
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise CheckFailed("inclusion path longer than the tree allows")
        if fn & 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise CheckFailed("inclusion path shorter than the tree requires")
    if r != root:
        raise CheckFailed("inclusion proof does not reproduce the checkpoint root")


@dataclass(frozen=True)
class ParsedCheckpoint:
    """A checkpoint body: origin, tree size, root hash."""

    origin: str
    size: int
    root: bytes


def verify_signed_note(note: str, vkey: str) -> str:
    """Check a C2SP signed note against a vkey ``<name>+<hex8>+<b64(0x01||key)>``; return its text.

    Raises:
        CheckFailed: malformed note or vkey, or no valid signature by that key.

    """
    name, _, rest = vkey.partition("+")
    hex_id, _, b64key = rest.partition("+")
    raw = base64.b64decode(b64key)
    if len(raw) != 33 or raw[0] != 0x01:
        raise CheckFailed("vkey is not an Ed25519 (type 0x01) signed-note key")
    key_id = _h(name.encode() + b"\n" + raw)[:4]
    if key_id.hex() != hex_id:
        raise CheckFailed(f"vkey key ID mismatch: computed {key_id.hex()}, vkey says {hex_id}")
    text, sep, sigs = note.rpartition("\n\n")
    if not sep:
        raise CheckFailed("signed note has no blank line before its signatures")
    text += "\n"
    pub = Ed25519PublicKey.from_public_bytes(raw[1:])
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise CheckFailed(f"bad signature line {line!r}")
        sig_name, _, b64sig = line[2:].partition(" ")
        blob = base64.b64decode(b64sig)
        if sig_name != name or blob[:4] != key_id:
            continue
        try:
            pub.verify(blob[4:], text.encode())
        except InvalidSignature as exc:
            raise CheckFailed("the log's signature on the checkpoint does not verify") from exc
        return text
    raise CheckFailed("no signature by the log key on the checkpoint")


def parse_checkpoint(text: str) -> ParsedCheckpoint:
    """C2SP tlog-checkpoint body: origin, decimal size, base64 root (extensions ignored)."""
    lines = text.split("\n")
    if len(lines) < 4:
        raise CheckFailed("checkpoint body has fewer than three lines")
    root = base64.b64decode(lines[2])
    if len(root) != 32 or not lines[1].isdigit():
        raise CheckFailed("checkpoint size or root malformed")
    return ParsedCheckpoint(lines[0], int(lines[1]), root)


def verify_tlog_proof(proof_text: str, *, entry: bytes, vkey: str, origin: str) -> ParsedCheckpoint:
    """Verify a C2SP tlog-proof receipt offline for ``entry``.

    Raises:
        CheckFailed: any step fails (format, signature, origin, inclusion).

    """
    head, sep, note = proof_text.partition("\n\n")
    if not sep:
        raise CheckFailed("tlog-proof has no checkpoint")
    lines = head.split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        raise CheckFailed(f"tlog-proof header is {lines[0]!r}")
    pos = 1
    if lines[pos].startswith("extra "):
        pos += 1
    if not lines[pos].startswith("index "):
        raise CheckFailed("tlog-proof has no index line")
    index = int(lines[pos][6:])
    path = [base64.b64decode(x) for x in lines[pos + 1 :]]
    cp = parse_checkpoint(verify_signed_note(note, vkey))
    if cp.origin != origin:
        raise CheckFailed(f"checkpoint origin {cp.origin!r}, expected {origin!r}")
    rfc9162_verify_inclusion(
        leaf_index=index, tree_size=cp.size, leaf=rfc9162_leaf_hash(entry), path=path, root=cp.root
    )
    return cp


def rfc9162_verify_consistency(
    *, size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 §2.1.4.2 consistency proof verification, step by step.

    Raises:
        CheckFailed: the proof does not reproduce both roots.
    """
    if size1 == size2:
        if proof or root1 != root2:
            raise CheckFailed("equal sizes need an empty proof and equal roots")
        return
    if not 0 < size1 < size2:
        raise CheckFailed(f"bad sizes {size1}, {size2}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: prepend the first root
        path = [root1, *path]
    if not path:
        raise CheckFailed("empty consistency proof")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise CheckFailed("consistency proof longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = _h(b"\x01" + c + fr)
            sr = _h(b"\x01" + c + sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _h(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != root1 or sr != root2:
        raise CheckFailed("consistency proof does not reproduce both roots")


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def consistency_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) over leaf hashes (for the tester's own little log)."""

    def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]

    return subproof(m, leaves, True) if 0 < m < len(leaves) else []


def inclusion_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) over leaf hashes (the tester's provider log).

    Raises:
        CheckFailed: ``m`` is not an index of ``leaves``.

    """
    n = len(leaves)
    if not 0 <= m < n:
        raise CheckFailed(f"leaf {m} is not in a tree of {n}")
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return inclusion_path(m, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(m - k, leaves[k:]) + [mth(leaves[:k])]
