"""Receipts: C2SP tlog-proof (``c2sp.org/tlog-proof@v1``) texts, verifiable offline."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import DisclosureEntry
from ledger.errors import MalformedProofError
from ledger.hashing import HASH_SIZE, leaf_hash
from ledger.note import MAX_NOTE_BYTES, NoteVerifier, b64decode_strict
from ledger.proofs import verify_inclusion

if TYPE_CHECKING:
    from ledger.policy import WitnessPolicy

__all__ = ["Receipt", "verify_receipt", "PROOF_HEADER", "MAX_RECEIPT_BYTES", "MAX_PROOF_HASHES"]

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
"""First line of every tlog-proof."""
MAX_PROOF_HASHES = 64
"""Most inclusion-proof hashes in a receipt (a tree of at most 2**64 leaves needs at most 64)."""
MAX_RECEIPT_BYTES = MAX_NOTE_BYTES + 8 * 1024
"""Largest receipt text accepted, bytes (or characters), checked before any parsing."""


def _parse_index(text: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise MalformedProofError(f"index {text!r} is not a canonical decimal")
    value = int(text)
    if value >= 1 << 64:
        raise MalformedProofError("index does not fit in 64 bits")
    return value


@dataclass(frozen=True)
class Receipt:
    """A transparency-log proof of inclusion (c2sp.org/tlog-proof).

    Attributes:
        index: Zero-based index of the entry.
        proof: Inclusion proof hashes (32 bytes each), leaf sibling first.
        checkpoint_note: The signed checkpoint note, possibly with cosignatures.
        extra: Optional opaque, unauthenticated extra data.

    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "proof", tuple(bytes(p) for p in self.proof))
        if any(len(p) != HASH_SIZE for p in self.proof):
            raise MalformedProofError("every proof hash must be 32 bytes")
        if not isinstance(self.index, int) or not 0 <= self.index < 1 << 64:
            raise MalformedProofError("index must be in [0, 2^64)")

    def to_text(self) -> str:
        """Return the tlog-proof text (store it as ``*.tlog-proof``)."""
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(p).decode() for p in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint_note

    @classmethod
    def parse(cls, text: str | bytes) -> Receipt:
        """Parse a tlog-proof text.

        Raises:
            MalformedProofError: If the text is longer than :data:`MAX_RECEIPT_BYTES`,
                holds more than :data:`MAX_PROOF_HASHES` hashes, or does not follow
                c2sp.org/tlog-proof.

        """
        if not isinstance(text, bytes | bytearray | str):
            raise MalformedProofError("receipt must be str or bytes")
        if len(text) > MAX_RECEIPT_BYTES:
            raise MalformedProofError(
                f"receipt is longer than {MAX_RECEIPT_BYTES}", metadata={"length": len(text)}
            )
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedProofError("receipt is not UTF-8") from exc
        head, sep, note = text.partition("\n\n")
        if not sep or not note:
            raise MalformedProofError("receipt has no checkpoint after a blank line")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise MalformedProofError(f"receipt must start with {PROOF_HEADER!r}")
        pos = 1
        extra = None
        if pos < len(lines) and lines[pos].startswith("extra "):
            try:
                extra = b64decode_strict(lines[pos][6:], what="extra")
            except ValueError as exc:
                raise MalformedProofError(str(exc)) from exc
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise MalformedProofError("receipt has no 'index' line")
        index = _parse_index(lines[pos][6:])
        if len(lines) - pos - 1 > MAX_PROOF_HASHES:
            raise MalformedProofError(f"more than {MAX_PROOF_HASHES} proof hashes")
        proof = []
        for line in lines[pos + 1 :]:
            try:
                h = b64decode_strict(line, what="proof hash")
            except ValueError as exc:
                raise MalformedProofError(str(exc)) from exc
            if len(h) != HASH_SIZE:
                raise MalformedProofError("proof hash is not 32 bytes")
            proof.append(h)
        return cls(index, tuple(proof), note, extra)


def verify_receipt(
    receipt: Receipt | str,
    *,
    entry: DisclosureEntry | bytes,
    log_verifier: NoteVerifier,
    origin: str | None = None,
    policy: WitnessPolicy | None = None,
    now: datetime | None = None,
) -> Checkpoint:
    """Verify a receipt offline: log signature, optional witness quorum, inclusion.

    Root and size come from the verified checkpoint only, never from elsewhere.

    Args:
        receipt: The receipt or its tlog-proof text.
        entry: The entry (its canonical bytes are the leaf data) or raw leaf data.
        log_verifier: The log's trusted key.
        origin: Expected log origin; defaults to the log key's name.
        policy: If given, the checkpoint's cosignatures must satisfy it.
        now: Current time for cosignature freshness (``policy`` only).

    Returns:
        The verified checkpoint that includes the entry.

    Raises:
        MalformedProofError: If the receipt text does not parse.
        MalformedNoteError, MalformedCheckpointError: If the checkpoint is malformed.
        InvalidSignatureError: If the log's signature is missing or invalid.
        OriginMismatchError: If the checkpoint's origin is not the expected one.
        QuorumNotMetError: If ``policy`` is given and not satisfied.
        InvalidProofError: If the entry is not included at the index.

    """
    if not isinstance(receipt, Receipt):
        receipt = Receipt.parse(receipt)
    data = entry.canonical_bytes() if isinstance(entry, DisclosureEntry) else bytes(entry)
    signed = open_checkpoint(
        receipt.checkpoint_note,
        log_verifier,
        origin=origin if origin is not None else log_verifier.name,
    )
    if policy is not None:
        policy.check(signed, now=now)
    cp = signed.checkpoint
    verify_inclusion(receipt.index, cp.size, leaf_hash(data), receipt.proof, cp.root)
    return cp
