"""Every ledger parser an outsider reaches: bounded, total, precise (issue #10 classes 5 and 6).

Signed notes, checkpoints, cosignatures, tlog-proofs (receipts) and
add-checkpoint bodies come from peers, from anyone who reaches the HTTP
endpoint, or from a provider's answer. Each parser must: refuse an input over
its size bound before parsing it; never raise anything but a typed
``LedgerError`` with a stable reason; and never accept a mutated input it
should not. The seeds are real artefacts of a real log and real witness.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_support import ORIGIN, make_entry

from ledger import (
    MAX_ADD_CHECKPOINT_BYTES,
    MAX_NOTE_BYTES,
    MAX_RECEIPT_BYTES,
    Checkpoint,
    CosignatureSigner,
    LedgerError,
    NoteSigner,
    Receipt,
    TransparencyLog,
    Witness,
    WitnessPolicy,
    open_checkpoint,
    open_cosignatures,
    parse_add_checkpoint,
    parse_note,
    verify_receipt,
)

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
REASON = re.compile(r"^[A-Z][A-Z0-9_]+$")
SIGNER = NoteSigner(ORIGIN, bytes(range(32)))
WITNESS = CosignatureSigner("witness.example/w", b"\x21" * 32)
POLICY = WitnessPolicy.k_of_n(1, {"w": WITNESS.vkey}, logs=[SIGNER.vkey])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Real artefacts: a cosigned checkpoint note, a receipt and an add-checkpoint body."""
    url = f"sqlite:///{tmp_path_factory.mktemp('seeds') / 'l.db'}"
    log = TransparencyLog.open(url, origin=ORIGIN, signer=SIGNER)
    log.append([make_entry(i) for i in range(7)])
    cp = log.integrate()
    cosigned = cp.note + WITNESS.cosign(cp.checkpoint.body(), now=NOW)
    receipt = log.receipt(3).to_text()
    body = log.add_checkpoint_request(0).decode()
    log.close()
    return {"note": cosigned, "receipt": receipt, "add": body, "entry": make_entry(3)}


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for pos, op, ch in edits:
        i = pos % (len(text) + 1)
        if op == 0:
            text = text[:i] + ch + text[i:]
        elif op == 1:
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + ch + text[i + 1 :]
    return text


EDITS = st.lists(
    st.tuples(
        st.integers(0, 10_000), st.integers(0, 2), st.sampled_from(list("\n \u2014+/=aZ09\x00\x7f\u00e9"))
    ),
    min_size=1,
    max_size=4,
)


def _total(fn, *args, **kw):
    """Call ``fn``: success, or a LedgerError with a stable reason; anything else fails the test."""
    try:
        return fn(*args, **kw)
    except LedgerError as exc:
        assert REASON.match(exc.reason), exc.reason
        assert exc.caller_fault  # the outsider's input was wrong, never "our side failed"
        return None


# ------------------------------------------------------------------ size bounds before parsing


def test_oversized_note_is_refused_before_parsing():
    """A validly signed checkpoint with a 1 MiB extension line: refused by size, not accepted."""
    body = Checkpoint(ORIGIN, 1, b"\x01" * 32, ("x" * MAX_NOTE_BYTES,)).body()
    note = SIGNER.sign(body)
    with pytest.raises(LedgerError) as exc:
        open_checkpoint(note, SIGNER.verifier(), origin=ORIGIN)
    assert exc.value.reason == "MALFORMED_NOTE" and exc.value.metadata["limit"] == str(MAX_NOTE_BYTES)
    with pytest.raises(LedgerError) as exc:
        Checkpoint.parse(body)
    assert exc.value.reason == "MALFORMED_CHECKPOINT"


def test_oversized_receipt_and_add_checkpoint_are_refused(seeds):
    with pytest.raises(LedgerError) as exc:
        Receipt.parse(seeds["receipt"] + "x" * MAX_RECEIPT_BYTES)
    assert exc.value.reason == "MALFORMED_PROOF" and "longer" in str(exc.value)
    head, note = seeds["receipt"].split("\n\n", 1)
    many = head + ("\n" + "A" * 43 + "=") * 65 + "\n\n" + note
    with pytest.raises(LedgerError) as exc:
        Receipt.parse(many)
    assert exc.value.reason == "MALFORMED_PROOF" and "proof hashes" in str(exc.value)
    with pytest.raises(LedgerError) as exc:
        parse_add_checkpoint(seeds["add"] + "x" * MAX_ADD_CHECKPOINT_BYTES)
    assert exc.value.reason == "MALFORMED_NOTE"


# ------------------------------------------------------------------ totality under mutation


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_signed_note_checkpoint_and_cosignature_parsers_are_total(seeds, edits):
    note = _mutate(seeds["note"], edits)
    _total(parse_note, note)
    _total(parse_note, note.encode("utf-8", "surrogatepass"))
    signed = _total(open_checkpoint, note, SIGNER.verifier(), origin=ORIGIN)
    _total(open_cosignatures, note, [WITNESS.verifier()])
    checked = _total(POLICY.check, note, now=NOW)
    _total(Checkpoint.parse, note.split("\n\n")[0] + "\n")
    if signed is not None and checked is not None:
        # accepted only if the signed body and the counted cosignature are still intact
        assert signed.checkpoint.body() == seeds["note"].split("\n\n")[0] + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_receipt_parser_and_verifier_are_total(seeds, edits):
    text = _mutate(seeds["receipt"], edits)
    parsed = _total(Receipt.parse, text)
    cp = _total(verify_receipt, text, entry=seeds["entry"], log_verifier=SIGNER.verifier())
    if cp is not None:
        assert parsed is not None and parsed.index == 3  # an accepted receipt still proves leaf 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_add_checkpoint_parser_and_witness_are_total(seeds, tmp_path_factory, edits):
    body = _mutate(seeds["add"], edits)
    _total(parse_add_checkpoint, body)
    w = _witness(tmp_path_factory)
    r = w.add_checkpoint(body.encode("utf-8", "surrogatepass"), now=NOW)
    assert r.status in (200, 400, 403, 404, 409, 422)


_W: dict[str, Witness] = {}


def _witness(tmp_path_factory) -> Witness:
    if "w" not in _W:
        w = Witness.open(
            f"sqlite:///{tmp_path_factory.mktemp('fw') / 'w.db'}", name="w.example", seed=b"\x47" * 32
        )
        w.add_log(ORIGIN, SIGNER.vkey)
        _W["w"] = w
    return _W["w"]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=2000)))
def test_all_outsider_parsers_are_total_on_arbitrary_input(data):
    for fn in (parse_note, Checkpoint.parse, Receipt.parse, parse_add_checkpoint):
        _total(fn, data)
    _total(open_checkpoint, data, SIGNER.verifier(), origin=ORIGIN)
    _total(open_cosignatures, data, [WITNESS.verifier()])


# ------------------------------------------------------------------ the requester's receipt checks


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS, entry_edits=EDITS)
def test_requester_receipt_check_is_total(seeds, edits, entry_edits):
    """A provider's receipt and entry, mutated: True, False (does not verify) or a typed refusal."""
    from federation.errors import FederationError
    from federation.receipts import PeerLogBook, check_receipt

    entry = seeds["entry"]
    entry_bytes = _mutate(entry.canonical_bytes().decode(), entry_edits).encode("utf-8", "surrogatepass")
    expected = {"disclosure_id": entry.disclosure_id, "kind": ("disclosure",), "purpose": entry.purpose}
    try:
        ok = check_receipt(
            PeerLogBook(),
            origin=ORIGIN,
            verifier=SIGNER.verifier(),
            tlog_proof=_mutate(seeds["receipt"], edits),
            entry_bytes=entry_bytes,
            leaf_index=3,
            claimed_leaf_hash=None,
            expected=expected,
        )
    except FederationError as exc:
        assert exc.reason in ("RECEIPT_MISMATCH", "PEER_LOG_INCONSISTENT")
    else:
        assert ok in (True, False)
        if ok:
            assert entry_bytes == entry.canonical_bytes()


def test_peer_log_book_settles_and_catches_a_regrown_history(tmp_path):
    """Deferred consistency: pending receipts settle against a witnessed checkpoint; a regrown log fails."""
    from federation.receipts import PeerLogBook, PeerLogInconsistentError
    from ledger import QuorumNotMetError

    honest = TransparencyLog.open(f"sqlite:///{tmp_path / 'a.db'}", origin=ORIGIN, signer=SIGNER)
    book = PeerLogBook()

    def prover(log):
        async def prove(a, b):
            return log.consistency_proof(a, b)

        return prove

    def settle(log, note):
        return asyncio.run(
            book.settle(
                ORIGIN,
                witnessed_note=note,
                verifier=SIGNER.verifier(),
                policy=POLICY,
                prove=prover(log),
                now=NOW,
            )
        )

    honest.append([make_entry(i) for i in range(10)])
    cp10 = honest.integrate()
    with pytest.raises(QuorumNotMetError):  # a checkpoint without the witness quorum settles nothing
        settle(honest, cp10.note)
    assert settle(honest, cp10.note + WITNESS.cosign(cp10.checkpoint.body(), now=NOW)) == 0
    assert book.verified(ORIGIN) == (10, cp10.checkpoint.root)
    honest.append([make_entry(i) for i in range(10, 12)])
    book.observe(ORIGIN, honest.integrate())  # a receipt's fresh checkpoint: pending
    honest.append([make_entry(i) for i in range(12, 14)])
    cp14 = honest.integrate()
    book.observe(ORIGIN, cp14)
    assert book.pending(ORIGIN) == [12, 14]
    assert settle(honest, cp14.note + WITNESS.cosign(cp14.checkpoint.body(), now=NOW)) == 2
    assert book.pending(ORIGIN) == [] and book.verified(ORIGIN)[0] == 14
    # round trip through the persisted form
    book = PeerLogBook(PeerLogBook.to_dict(book))
    assert book.verified(ORIGIN) == (14, cp14.checkpoint.root)
    # the provider restores a backup of size 6 and grows a different history to 20, which a
    # witness that lost its state cosigns; its receipts verify on their own
    regrown = TransparencyLog.open(f"sqlite:///{tmp_path / 'b.db'}", origin=ORIGIN, signer=SIGNER)
    regrown.append([make_entry(i) for i in range(6)])
    regrown.append([make_entry(i, purpose="rewritten") for i in range(100, 114)])
    cp20 = regrown.integrate()
    book.observe(ORIGIN, cp20)
    with pytest.raises(PeerLogInconsistentError) as exc:
        settle(regrown, cp20.note + WITNESS.cosign(cp20.checkpoint.body(), now=NOW))
    assert exc.value.reason == "PEER_LOG_INCONSISTENT"
    ev = exc.value.evidence
    assert ev.note_a == cp14.note + WITNESS.cosign(cp14.checkpoint.body(), now=NOW)
    assert ev.note_b.startswith(cp20.note)
    assert book.inconsistent(ORIGIN)
    with pytest.raises(PeerLogInconsistentError):  # later receipts from it are refused
        book.observe(ORIGIN, cp20)
    honest.close()
    regrown.close()


def test_outcome_size_bounds():
    from federation.pb import federation_pb2 as pb
    from federation.receipts import OutcomeLimits, OutcomeTooLargeError, check_outcome_size

    ok = pb.Outcome(disclosure_id="d", decision="allow", released_fields=["a"], payload_json=b"[]")
    check_outcome_size(ok)
    for bad, field in (
        (pb.Outcome(payload_json=b"x" * 2000), "payload_json"),
        (pb.Outcome(released_fields=["f"] * 300), "released_fields"),
        (pb.Outcome(obligations=["o" * 300]), "obligations"),
        (pb.Outcome(receipt=pb.Receipt(tlog_proof="x" * 70_000)), "receipt.tlog_proof"),
        (pb.Outcome(receipt=pb.Receipt(entry=b"x" * 70_000)), "receipt.entry"),
        (pb.Outcome(effective_trust=float("nan")), "effective_trust"),
    ):
        with pytest.raises(OutcomeTooLargeError) as exc:
            check_outcome_size(bad, OutcomeLimits(max_payload_bytes=1000))
        assert exc.value.metadata["field"] == field


def test_payload_nested_beyond_the_parser_is_a_mismatch_not_a_crash():
    from federation.receipts import ReceiptMismatchError, payload_digest

    with pytest.raises(ReceiptMismatchError):
        payload_digest(b"[" * 200_000 + b"]" * 200_000)
    # the digest is of the bytes as received (spec receipt binding), never of a re-spelling
    assert payload_digest(b"[1]") != payload_digest(b"[ 1 ]")
    assert payload_digest(b"[ 1 ]") == hashlib.sha256(b"[ 1 ]").hexdigest()
