"""C2SP tlog-tiles: resource paths and byte encodings of tiles and entry bundles.

A tile at level ``L``, index ``N`` holds up to 256 hashes: the RFC 9162 tree
nodes at tree height ``8 * L`` with indices ``N * 256 .. N * 256 + 255``. An
entry bundle holds the same range of entries, each as ``uint16 BE length ||
bytes``. Paths: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``
where ``N`` is written in 3-digit groups, all but the last prefixed with ``x``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import InvalidEntryError, MalformedError
from ledger.hashing import HASH_SIZE, node_hash

__all__ = [
    "TILE_WIDTH",
    "TILE_HEIGHT",
    "TileRef",
    "encode_tile_index",
    "tile_path",
    "entry_bundle_path",
    "parse_tile_path",
    "encode_entry_bundle",
    "decode_entry_bundle",
    "split_tile",
    "full_tile_root",
    "partial_width",
]

TILE_WIDTH = 256
"""Hashes (or entries) in a full tile (bundle)."""
TILE_HEIGHT = 8
"""Tree levels spanned by one tile level (256 = 2**8)."""

_PATH = re.compile(r"^tile/(entries|0|[1-9]\d?)/((?:x\d{3}/)*\d{3})(?:\.p/([1-9]\d{0,2}))?$")


@dataclass(frozen=True)
class TileRef:
    """A parsed tile resource.

    Attributes:
        level: Tile level (``None`` for an entry bundle).
        index: Tile index N.
        width: Number of hashes or entries (256 for a full tile).

    """

    level: int | None
    index: int
    width: int

    @property
    def is_entries(self) -> bool:
        """``True`` for an entry bundle."""
        return self.level is None

    def path(self) -> str:
        """Return the resource path (without the log prefix)."""
        if self.level is None:
            return entry_bundle_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


def encode_tile_index(n: int) -> str:
    """Encode a tile index as 3-digit path elements (1234067 -> ``x001/x234/067``)."""
    if n < 0:
        raise ValueError("tile index must be >= 0")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"width must be in [1, {TILE_WIDTH}]")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/<L>/<N>[.p/<W>]`` (level 0..63, width 1..256; 256 = full)."""
    if not 0 <= level <= 63:
        raise ValueError("tile level must be in [0, 63]")
    return f"tile/{level}/{encode_tile_index(index)}{_suffix(width)}"


def entry_bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/entries/<N>[.p/<W>]``."""
    return f"tile/entries/{encode_tile_index(index)}{_suffix(width)}"


def parse_tile_path(path: str) -> TileRef:
    """Parse a tile or entry-bundle path (without the prefix).

    Raises:
        MalformedError: If the path is not a canonical tlog-tiles path.

    """
    m = _PATH.match(path)
    if not m:
        raise MalformedError(f"not a tlog-tiles path: {path!r}")
    kind, digits, w = m.groups()
    parts = digits.split("/")
    if len(parts) > 1 and parts[0] == "x000":
        raise MalformedError("tile index has a leading zero group")
    index = int("".join(p.lstrip("x") for p in parts))
    width = int(w) if w else TILE_WIDTH
    if w and width >= TILE_WIDTH:
        raise MalformedError("partial width must be in [1, 255]")
    level = None if kind == "entries" else int(kind)
    if level is not None and level > 63:
        raise MalformedError("tile level must be in [0, 63]")
    return TileRef(level, index, width)


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode entries as uint16 big-endian length-prefixed records.

    Raises:
        InvalidEntryError: If an entry exceeds 65,535 bytes.

    """
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise InvalidEntryError("entry longer than 65,535 bytes cannot be bundled")
        out += struct.pack(">H", len(e)) + e
    return bytes(out)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """Decode an entry bundle.

    Raises:
        MalformedError: If a length prefix runs past the end of the data.

    """
    out, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise MalformedError("truncated entry bundle length prefix")
        (n,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + n > len(data):
            raise MalformedError("truncated entry bundle entry")
        out.append(bytes(data[pos : pos + n]))
        pos += n
    return out


def split_tile(data: bytes) -> list[bytes]:
    """Split tile bytes into 32-byte hashes.

    Raises:
        MalformedError: If the length is not a positive multiple of 32 up to 8,192.

    """
    if not data or len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
        raise MalformedError(f"tile of {len(data)} bytes is not 1..256 hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def full_tile_root(data: bytes) -> bytes:
    """Return the hash a full tile contributes to the level above (MTH of its 256 hashes)."""
    hashes = split_tile(data)
    if len(hashes) != TILE_WIDTH:
        raise MalformedError("only full tiles are hashed into the level above")
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def partial_width(level: int, tree_size: int) -> int:
    """Width of the partial tile at ``level`` for ``tree_size`` (0 if none)."""
    return (tree_size >> (TILE_HEIGHT * level)) % TILE_WIDTH
