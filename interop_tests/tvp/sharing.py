"""k-of-n secret sharing of field values, for the Sensitive-Information Repartitioning defense.

Shamir's scheme (A. Shamir, "How to share a secret", CACM 22(11), 1979) as
implemented by PyCryptodome (``Crypto.Protocol.SecretSharing.Shamir``: over
GF(2^128), one polynomial per 16-byte block, fresh random coefficients from
the OS). A value is JSON-encoded, prefixed with its length (4 bytes,
big-endian), zero-padded to whole blocks; each block is split into ``n``
shares with threshold ``k``. Holder ``i`` (1-based) gets one text share::

    sss1:<i>:<k>:<hex of the concatenated 16-byte share blocks>

Any ``k`` distinct shares give the value back (:func:`combine`); fewer give
nothing about it (information-theoretic secrecy of the scheme).
"""

from __future__ import annotations

import json
from typing import Any

from Crypto.Protocol.SecretSharing import Shamir

__all__ = ["MAX_VALUE_BYTES", "ShareError", "combine", "split"]

#: largest JSON encoding of a value that may be shared, bytes
MAX_VALUE_BYTES = 4096
_BLOCK = 16
_PREFIX = "sss1"


class ShareError(ValueError):
    """A share that does not parse, shares that do not belong together, or too few of them."""


def split(value: Any, *, k: int, n: int) -> list[str]:
    """Split a JSON value into ``n`` text shares, any ``k`` of which reconstruct it.

    Args:
        value: any JSON-encodable value (at most :data:`MAX_VALUE_BYTES` encoded).
        k: threshold, 2 ≤ k ≤ n.
        n: number of shares, n ≤ 16.

    Returns:
        ``n`` share strings; share ``i`` (1-based) is for holder ``i``.

    Raises:
        ShareError: bad ``k``/``n`` or a value too large.
    """
    if not 2 <= k <= n <= 16:
        raise ShareError("k-of-n sharing needs 2 <= k <= n <= 16")
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    if len(data) > MAX_VALUE_BYTES:
        raise ShareError(f"value larger than {MAX_VALUE_BYTES} bytes")
    blob = len(data).to_bytes(4, "big") + data
    blob += b"\0" * (-len(blob) % _BLOCK)
    parts: list[list[bytes]] = [[] for _ in range(n)]
    for off in range(0, len(blob), _BLOCK):
        for idx, share in Shamir.split(k, n, blob[off : off + _BLOCK], ssss=False):
            parts[idx - 1].append(share)
    return [f"{_PREFIX}:{i + 1}:{k}:{b''.join(p).hex()}" for i, p in enumerate(parts)]


def parse(share: Any) -> tuple[int, int, bytes]:
    """``(holder index, threshold, share bytes)`` of one text share.

    Raises:
        ShareError: not a share of this format.
    """
    if not isinstance(share, str) or len(share) > 4 * MAX_VALUE_BYTES:
        raise ShareError("a share is a bounded string")
    bits = share.split(":")
    if len(bits) != 4 or bits[0] != _PREFIX or not bits[1].isdigit() or not bits[2].isdigit():
        raise ShareError("not an sss1 share")
    try:
        raw = bytes.fromhex(bits[3])
    except ValueError as exc:
        raise ShareError("share body is not hex") from exc
    idx, k = int(bits[1]), int(bits[2])
    if not (1 <= idx <= 16 and 2 <= k <= 16) or not raw or len(raw) % _BLOCK:
        raise ShareError("share index, threshold or length out of range")
    return idx, k, raw


def combine(shares: list[str]) -> Any:
    """Reconstruct the value from at least ``k`` distinct shares of it.

    Raises:
        ShareError: a malformed share, shares of different values or thresholds,
            fewer than ``k`` distinct holders, or a result that is not a value.
    """
    parsed = {}
    for s in shares:
        idx, k, raw = parse(s)
        parsed.setdefault(idx, (k, raw))
    if not parsed:
        raise ShareError("no shares")
    ks = {k for k, _ in parsed.values()}
    sizes = {len(raw) for _, raw in parsed.values()}
    if len(ks) != 1 or len(sizes) != 1:
        raise ShareError("shares of different values")
    k = ks.pop()
    if len(parsed) < k:
        raise ShareError(f"{len(parsed)} share(s); {k} needed")
    chosen = sorted(parsed.items())[:k]
    blob = b"".join(
        Shamir.combine([(idx, raw[off : off + _BLOCK]) for idx, (_, raw) in chosen], ssss=False)
        for off in range(0, sizes.pop(), _BLOCK)
    )
    size = int.from_bytes(blob[:4], "big")
    if size > len(blob) - 4:
        raise ShareError("reconstruction failed")
    try:
        return json.loads(blob[4 : 4 + size])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ShareError("reconstruction failed") from exc
