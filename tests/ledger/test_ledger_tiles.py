"""C2SP tlog-tiles paths, encodings and tiles served from the log's node rows."""

from __future__ import annotations

import pytest
from ledger_support import make_entry

from ledger import InvalidEntryError, MalformedError, TreeSizeError, leaf_hash
from ledger.hashing import CompactRange
from ledger.tiles import (
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_tile_index,
    entry_bundle_path,
    full_tile_root,
    parse_tile_path,
    partial_width,
    split_tile,
    tile_path,
)


def test_index_encoding_and_paths():
    assert encode_tile_index(1234067) == "x001/x234/067"
    assert encode_tile_index(0) == "000"
    assert encode_tile_index(1000) == "x001/000"
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert entry_bundle_path(273, 112) == "tile/entries/273.p/112"
    for p in ("tile/0/x001/x234/067", "tile/1/005.p/17", "tile/entries/273.p/112", "tile/63/000"):
        assert parse_tile_path(p).path() == p
    assert parse_tile_path("tile/entries/000") == TileRef(None, 0, 256)


@pytest.mark.parametrize(
    "bad",
    [
        "tile/0/5",
        "tile/0/0005",
        "tile/00/005",
        "tile/0/x000/005",
        "tile/0/005.p/0",
        "tile/0/005.p/256",
        "tile/0/005.p/012",
        "tile/64/000",
        "tile/0/x1/005",
        "checkpoint/x",
    ],
)
def test_bad_paths(bad):
    with pytest.raises(MalformedError):
        parse_tile_path(bad)


def test_partial_widths_of_spec_example():
    # A tree of 70,000: 273 full level-0 tiles + width 112; level 1: width 17; level 2: width 1.
    assert 70_000 // 256 == 273
    assert [partial_width(level, 70_000) for level in range(3)] == [112, 17, 1]
    assert [partial_width(level, 256) for level in range(2)] == [0, 1]


def test_entry_bundle_round_trip_and_limits():
    entries = [b"", b"a", b"\x00" * 300]
    data = encode_entry_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:4] == b"\x00\x01"
    assert decode_entry_bundle(data) == entries
    with pytest.raises(MalformedError):
        decode_entry_bundle(data[:-1])
    with pytest.raises(InvalidEntryError):
        encode_entry_bundle([b"x" * 70_000])


def test_tiles_served_from_log_rebuild_the_signed_root(log):
    n = 600
    log.append([make_entry(i) for i in range(n)])
    signed = log.integrate(batch_size=250)
    t0 = [log.read_tile(0, i) for i in range(2)]
    p0 = log.read_tile(0, 2, 88)
    assert len(t0[0]) == 8192 and len(p0) == 88 * 32
    level1 = log.read_tile(1, 0, 2)
    assert split_tile(level1) == [full_tile_root(t) for t in t0]  # level-1 hash = MTH of tile
    # A client rebuilds the checkpoint root from the tiles alone.
    rng = CompactRange()
    rng.extend(split_tile(t0[0]) + split_tile(t0[1]) + split_tile(p0))
    assert rng.root() == signed.checkpoint.root
    # Entry bundles hash to the level-0 tile.
    bundle = decode_entry_bundle(log.read_entry_bundle(2, 88))
    assert [leaf_hash(e) for e in bundle] == split_tile(p0)
    assert bundle[0] == make_entry(512).canonical_bytes()
    body, ctype = log.read_path("tile/entries/002.p/88")
    assert ctype == "application/octet-stream" and decode_entry_bundle(body) == bundle
    body, ctype = log.read_path("checkpoint")
    assert body.decode() == signed.note and ctype.startswith("text/plain")
    with pytest.raises(TreeSizeError):
        log.read_tile(0, 2)  # the full tile does not exist yet
    with pytest.raises(TreeSizeError):
        log.read_tile(1, 0)
    log.append([make_entry(n)])
    with pytest.raises(TreeSizeError):
        log.read_entry_bundle(2, 89)  # sequenced, not integrated
