"""The requester verifies a provider batch's checkpoint signature once, and never trusts a look-alike."""

from __future__ import annotations

import pytest

from federation import receipts
from ledger import Checkpoint, LedgerError, NoteSigner, NoteVerifier

ORIGIN = "hospital.accord.test/ledger"


def _signed(signer: NoteSigner, size: int) -> str:
    return signer.sign(Checkpoint(ORIGIN, size, size.to_bytes(32, "big")).body())


def test_a_verified_note_is_verified_once_and_a_forged_one_is_refused(monkeypatch):
    signer = NoteSigner(ORIGIN, b"\x07" * 32)
    verifier = NoteVerifier.from_vkey(signer.vkey)
    calls = []
    real = receipts.open_checkpoint

    def counting(note, v, *, origin):
        calls.append(note)
        return real(note, v, origin=origin)

    monkeypatch.setattr(receipts, "open_checkpoint", counting)
    receipts._VERIFIED_NOTES.clear()
    note = _signed(signer, 5)
    for _ in range(10):  # the receipts of one batch share the checkpoint
        assert receipts.open_checkpoint_cached(note, verifier, origin=ORIGIN).checkpoint.size == 5
    assert len(calls) == 1
    # the same body under another key's signature: a different note text, verified, refused
    other = NoteSigner(ORIGIN, b"\x08" * 32)
    forged = _signed(other, 5)
    with pytest.raises(LedgerError):
        receipts.open_checkpoint_cached(forged, verifier, origin=ORIGIN)
    with pytest.raises(LedgerError):  # a failure is not remembered
        receipts.open_checkpoint_cached(forged, verifier, origin=ORIGIN)
    assert len(calls) == 3
    # the same note checked against another log key is verified again (and refused)
    with pytest.raises(LedgerError):
        receipts.open_checkpoint_cached(note, NoteVerifier.from_vkey(other.vkey), origin=ORIGIN)
    # bounded
    for size in range(6, 6 + receipts._VERIFIED_NOTES_MAX + 10):
        receipts.open_checkpoint_cached(_signed(signer, size), verifier, origin=ORIGIN)
    assert len(receipts._VERIFIED_NOTES) == receipts._VERIFIED_NOTES_MAX
