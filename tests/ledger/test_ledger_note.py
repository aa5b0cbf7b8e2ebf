"""Signed notes and checkpoints against the C2SP, Go sumdb and transparency-dev vectors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_support import vectors

from ledger import (
    EMPTY_ROOT,
    Checkpoint,
    InvalidKeyError,
    InvalidSignatureError,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteSigner,
    NoteVerifier,
    OriginMismatchError,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
)
from ledger.errors import LedgerError

C2SP = vectors("c2sp-signed-note")
GO = vectors("golang-mod-sumdb-note")
FMT = vectors("formats-log-note")
CP = vectors("c2sp-tlog-checkpoint")
DIST = vectors("distributor-readme")
LOGS = vectors("omniwitness-logs")
MONKEYS = vectors("witness-witness-test")


def test_c2sp_example_note_verifies():
    v = NoteVerifier.from_vkey(C2SP["C2SP_NOTE_VKEY"])
    assert v.key_id.hex() == "530d903a"
    assert v.verify(C2SP["C2SP_NOTE"]) == "This is an example message.\n"


def test_go_signer_is_byte_exact():
    signer = NoteSigner.from_skey(GO["GO_PETER_SKEY"])
    assert signer.vkey == GO["GO_PETER_VKEY"]
    assert signer.skey == GO["GO_PETER_SKEY"]
    assert signer.key_id.hex() == "c74f20a3"
    note = signer.sign(GO["GO_TEXT"])
    assert note == GO["GO_TEXT"] + "\n" + GO["GO_PETER_SIG"]  # Ed25519 is deterministic


def test_go_two_signatures_and_unknown_keys_ignored():
    note = GO["GO_TEXT"] + "\n" + GO["GO_PETER_SIG"] + GO["GO_ENOCH_SIG"]
    peter = NoteVerifier.from_vkey(GO["GO_PETER_VKEY"])
    enoch = NoteVerifier.from_vkey(GO["GO_ENOCH_VKEY"])
    assert peter.verify(note) == GO["GO_TEXT"]
    assert enoch.verify(note) == GO["GO_TEXT"]
    _, verified = open_note(note, [peter, enoch])
    assert [v.name for v, _ in verified] == ["PeterNeumann", "EnochRoot"]


def test_go_bad_vkeys_rejected():
    for bad in GO["GO_BAD_VKEYS"]:
        with pytest.raises(InvalidKeyError):
            NoteVerifier.from_vkey(bad)
    name, hexid, b64 = GO["GO_PETER_VKEY"].split("+")
    with pytest.raises(InvalidKeyError):  # key ID + 1
        NoteVerifier.from_vkey(f"{name}+{int(hexid, 16) + 1:08x}+{b64}")
    with pytest.raises(InvalidKeyError):  # space in the name
        NoteVerifier.from_vkey(f"Peter Neumann+{hexid}+{b64}")
    with pytest.raises(InvalidKeyError):  # unknown type byte
        raw = base64.b64decode(b64)
        mangled = base64.b64encode(bytes([9]) + raw[1:]).decode()
        NoteVerifier.from_vkey(f"{name}+{hexid}+{mangled}")
    with pytest.raises(InvalidKeyError):
        NoteVerifier.from_vkey(f"{name}+{hexid.upper()}+{b64}")


def test_malformed_notes():
    text, sig = GO["GO_TEXT"], GO["GO_PETER_SIG"]
    peter = NoteVerifier.from_vkey(GO["GO_PETER_VKEY"])
    bad = [
        text + "\n" + GO["GO_BAD_SIG_LINE"],  # name with a space, no final newline
        text + "\n" + sig[:-1],  # missing final newline
        text + sig,  # no blank line
        (text + "\n" + sig).replace("\n", "\r\n"),  # CRLF
        "\x01" + text + "\n" + sig,  # control character
        text + "\n" + sig + "junk\n",  # trailing junk
        text + "\n" + sig.replace("\u2014", "-"),  # hyphen instead of em dash
        text + "\n" + sig * 101,  # more than 100 signatures
        text + "\n" + "\u2014 a+b " + sig.split(" ")[2],  # plus in name
    ]
    for note in bad:
        with pytest.raises(MalformedNoteError):
            peter.verify(note)
    with pytest.raises(MalformedNoteError):
        parse_note(b"\xff\xfe\n\n")


def test_corrupted_known_signature_rejects_note_and_no_known_key_rejects():
    text, sig = GO["GO_TEXT"], GO["GO_PETER_SIG"]
    peter = NoteVerifier.from_vkey(GO["GO_PETER_VKEY"])
    enoch = NoteVerifier.from_vkey(GO["GO_ENOCH_VKEY"])
    raw = bytearray(base64.b64decode(sig.split(" ")[2]))
    raw[10] ^= 1
    corrupted = f"\u2014 PeterNeumann {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_note(text + "\n" + GO["GO_ENOCH_SIG"] + corrupted, [peter, enoch])
    with pytest.raises(InvalidSignatureError):
        enoch.verify(text + "\n" + sig)
    with pytest.raises(InvalidSignatureError):  # signature moved onto another text
        peter.verify("another text\n\n" + sig)


def test_grease_lines_ignored():
    # Same name, different key ID: MUST be ignored (not an error).
    text, sig = GO["GO_TEXT"], GO["GO_PETER_SIG"]
    grease = "\u2014 PeterNeumann " + base64.b64encode(b"\x00\x00\x00\x00" + b"g" * 64).decode()
    peter = NoteVerifier.from_vkey(GO["GO_PETER_VKEY"])
    assert peter.verify(text + "\n" + grease + "\n" + sig) == text


def test_sumdb_checkpoint_verifies_with_origin_differing_from_key_name():
    v = NoteVerifier.from_vkey(FMT["SUMDB_VKEY"])
    assert v.key_id.hex() == "033de0ae"
    signed = open_checkpoint(FMT["SUMDB_CHECKPOINT"], v, origin=FMT["SUMDB_ORIGIN"])
    assert signed.checkpoint.size == 6476701
    with pytest.raises(OriginMismatchError):
        open_checkpoint(FMT["SUMDB_CHECKPOINT"], v, origin="sum.golang.org")


def test_c2sp_checkpoint_example_is_renamed_sumdb_head():
    body = Checkpoint(
        FMT["SUMDB_ORIGIN"], CP["C2SP_EXAMPLE_SIZE"], base64.b64decode(CP["C2SP_EXAMPLE_ROOT_B64"])
    ).body()
    note = body + "\n\u2014 sum.golang.org " + CP["C2SP_EXAMPLE_SIG"] + "\n"
    v = NoteVerifier.from_vkey(FMT["SUMDB_VKEY"])
    assert open_checkpoint(note, v).checkpoint.size == 20852163
    renamed = note.replace(FMT["SUMDB_ORIGIN"], CP["C2SP_EXAMPLE_ORIGIN"])
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(renamed, v)


def test_formats_extra_vectors_and_witness_logs():
    for item in FMT["FORMATS_EXTRA"]:
        v = NoteVerifier.from_vkey(item["vkey"])
        assert item["signature_line"].startswith(f"\u2014 {v.name} ")
    monkeys = NoteVerifier.from_vkey(MONKEYS["MONKEYS_VKEY"])
    for key in ("MONKEYS_INIT", "MONKEYS_NEXT"):
        cp = open_checkpoint(MONKEYS[key], monkeys, origin="monkeys").checkpoint
        assert cp.size in (5, 8)


def test_armored_witness_log_checkpoint_and_pixel_ecdsa():
    aw = NoteVerifier.from_vkey(LOGS["AW_FTLOG_VKEY"])
    cp = open_checkpoint(DIST["AW_FTLOG_CHECKPOINT"], aw, origin=LOGS["AW_FTLOG_ORIGIN"])
    assert cp.checkpoint.size == 59
    pixel = NoteVerifier.from_vkey(LOGS["PIXEL_VKEY"])
    assert pixel.key_id.hex() == "72c878db"  # SHA-256(SPKI)[:4], no name
    cp = open_checkpoint(DIST["PIXEL_CHECKPOINT"], pixel, origin=LOGS["PIXEL_ORIGIN"])
    assert cp.checkpoint.size == 611


def test_key_id_type_byte_matters():
    aw = vectors("distributor-witnesses-prod")["AW_WITNESSES"]
    v = NoteVerifier.from_vkey(aw["ArmoredWitness-small-breeze"])
    assert v.key_id.hex() == "7b3ada3a"
    assert key_id(v.name, 0x04, v.public_key).hex() == "9d1ab951"


@pytest.mark.parametrize(
    "body",
    [
        "o\n01\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # leading zero
        "o\n+1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # sign
        "o\n1\n" + base64.b64encode(b"\x00" * 31).decode() + "\n",  # 31-byte root
        "o\n1\n" + base64.b64encode(b"\x00" * 32).decode().rstrip("=") + "\n",  # unpadded
        "o\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n\n",  # empty extension line
        "\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # empty origin
        "o\n1\n" + base64.b64encode(b"\x00" * 32).decode(),  # no final newline
        "o\n0\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # size 0, non-empty root
        "o\n18446744073709551616\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # 2^64
        "o\n1\n",
    ],
)
def test_malformed_checkpoint_bodies(body):
    with pytest.raises(MalformedCheckpointError):
        Checkpoint.parse(body)


def test_checkpoint_round_trip_with_extension():
    cp = Checkpoint("example.com/log", 0, EMPTY_ROOT, ("ext line",))
    assert Checkpoint.parse(cp.body()) == cp
    assert cp.body().endswith("ext line\n")
    with pytest.raises(OriginMismatchError):
        Checkpoint.parse(cp.body(), origin="other")


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_parse_is_total(data):
    """Any input parses or raises our typed error, nothing else."""
    peter = NoteVerifier.from_vkey(GO["GO_PETER_VKEY"])
    for fn in (parse_note, peter.verify, Checkpoint.parse):
        try:
            fn(data)
        except LedgerError:
            pass


class _ExternalKey:
    """An Ed25519 key that only signs (as a key in an HSM does): no seed is reachable through it."""

    def __init__(self, seed: bytes, *, mangle: bool = False) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        k = Ed25519PrivateKey.from_private_bytes(seed)
        self._sign = k.sign
        self.public_key = k.public_key().public_bytes_raw()
        self.mangle = mangle
        self.calls = 0

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        sig = self._sign(message)
        return sig[:63] if self.mangle else sig


def test_a_signer_over_an_external_key_makes_the_same_notes_and_gives_no_seed():
    from ledger import CosignatureSigner, CosignatureVerifier, open_cosignatures

    seed = bytes(range(32))
    key = _ExternalKey(seed)
    by_key, by_seed = NoteSigner("example.com/log", key=key), NoteSigner("example.com/log", seed)
    assert by_key.vkey == by_seed.vkey and by_key.key_id == by_seed.key_id
    text = "example.com/log\n1\n" + base64.b64encode(bytes(32)).decode() + "\n"
    note = by_key.sign(text)
    assert note == by_seed.sign(text) and key.calls == 1  # Ed25519 is deterministic (RFC 8032)
    assert open_checkpoint(note, by_seed.verifier()).checkpoint.size == 1
    with pytest.raises(InvalidKeyError, match="not exportable"):
        _ = by_key.skey
    cosigner = CosignatureSigner("example.com/witness", key=key)
    assert cosigner.vkey == CosignatureSigner("example.com/witness", seed).vkey
    line = cosigner.cosign(text, now=1_700_000_000)
    _, cosigs = open_cosignatures(note + line, [CosignatureVerifier.from_vkey(cosigner.vkey)])
    assert [c.timestamp for c in cosigs] == [1_700_000_000]


def test_a_bad_external_key_is_refused():
    from ledger import CosignatureSigner

    seed = bytes(range(32))
    with pytest.raises(InvalidKeyError, match="exactly one"):
        NoteSigner("example.com/log")
    with pytest.raises(InvalidKeyError, match="exactly one"):
        NoteSigner("example.com/log", seed, key=_ExternalKey(seed))
    short = _ExternalKey(seed)
    short.public_key = short.public_key[:31]
    with pytest.raises(InvalidKeyError, match="32-byte public_key"):
        NoteSigner("example.com/log", key=short)
    with pytest.raises(InvalidKeyError, match="sign"):
        NoteSigner("example.com/log", key=object())  # type: ignore[arg-type]
    # a key store returning a malformed signature makes no note
    with pytest.raises(InvalidSignatureError, match="64-byte"):
        NoteSigner("example.com/log", key=_ExternalKey(seed, mangle=True)).sign("x\n")
    with pytest.raises(InvalidKeyError, match="cosignature/v1"):
        CosignatureSigner("example.com/witness", key=_ExternalKey(seed), sig_type=0x06)
