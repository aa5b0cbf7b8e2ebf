r"""Checkpoints (c2sp.org/tlog-checkpoint): the signed tree head of a log.

Body: ``<origin>\n<decimal size>\n<base64 root>\n[<extension line>\n ...]``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import MalformedCheckpointError, OriginMismatchError
from ledger.hashing import EMPTY_ROOT, HASH_SIZE
from ledger.note import MAX_NOTE_BYTES, SignatureVerifier, b64decode_strict, open_note, parse_note
from ledger.proofs import MAX_TREE_SIZE

__all__ = ["Checkpoint", "SignedCheckpoint", "open_checkpoint"]


def _parse_size(text: str) -> int:
    if not text or not text.isascii() or not text.isdigit():
        raise MalformedCheckpointError(f"size {text!r} is not a decimal integer")
    if len(text) > 1 and text[0] == "0":
        raise MalformedCheckpointError(f"size {text!r} has a leading zero")
    size = int(text)
    if size > MAX_TREE_SIZE:
        raise MalformedCheckpointError(f"size {text} does not fit in 64 bits")
    return size


@dataclass(frozen=True)
class Checkpoint:
    """A log checkpoint body (c2sp.org/tlog-checkpoint).

    Attributes:
        origin: Log origin (non-empty, no newline); a schema-less URL.
        size: Tree size (entries), ``0 <= size < 2^64``.
        root: 32-byte RFC 9162 root hash of the first ``size`` entries.
        extensions: Optional extension lines (non-empty, NOT RECOMMENDED).

    Raises:
        MalformedCheckpointError: On construction, if a field is invalid (empty
            origin, size out of range, root not 32 bytes, size 0 with a root other
            than SHA-256(""), empty extension line).

    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (
            not isinstance(self.origin, str)
            or not self.origin
            or any(ord(c) < 0x20 or c == "\x7f" for c in self.origin)
        ):
            raise MalformedCheckpointError(f"invalid origin {self.origin!r}")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise MalformedCheckpointError(f"size {self.size!r} is not in [0, 2^64)")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise MalformedCheckpointError("root must be 32 bytes")
        if self.size == 0 and self.root != EMPTY_ROOT:
            raise MalformedCheckpointError("a size-0 checkpoint must carry SHA-256('')")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext or any(ord(c) < 0x20 or c == "\x7f" for c in ext):
                raise MalformedCheckpointError(f"invalid extension line {ext!r}")

    def body(self) -> str:
        """Return the checkpoint body text (the note text), ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        lines.extend(self.extensions)
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, body: str, *, origin: str | None = None) -> Checkpoint:
        """Parse a checkpoint body (the text of a signed note).

        Args:
            body: The body text, ending in a newline.
            origin: If given, the origin the checkpoint must name.

        Returns:
            The checkpoint.

        Raises:
            MalformedCheckpointError: If the body is longer than
                :data:`ledger.note.MAX_NOTE_BYTES` or violates c2sp.org/tlog-checkpoint
                (leading zero or sign in the size, non-canonical or 31-byte root,
                empty lines, missing final newline ...).
            OriginMismatchError: If ``origin`` is given and differs.

        """
        if isinstance(body, bytes | bytearray | str) and len(body) > MAX_NOTE_BYTES:
            raise MalformedCheckpointError(
                f"checkpoint body is longer than {MAX_NOTE_BYTES}", metadata={"length": len(body)}
            )
        if isinstance(body, bytes | bytearray):
            try:
                body = bytes(body).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedCheckpointError("checkpoint is not UTF-8") from exc
        if not isinstance(body, str) or not body.endswith("\n"):
            raise MalformedCheckpointError("checkpoint body must end in a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError("checkpoint body needs origin, size and root lines")
        try:
            root = b64decode_strict(lines[2], what="root")
        except ValueError as exc:
            raise MalformedCheckpointError(str(exc)) from exc
        cp = cls(lines[0], _parse_size(lines[1]), root, tuple(lines[3:]))
        if origin is not None and cp.origin != origin:
            raise OriginMismatchError(
                f"checkpoint origin is {cp.origin!r}, expected {origin!r}",
                metadata={"expected": origin, "got": cp.origin},
            )
        return cp


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint together with its full signed note.

    Attributes:
        checkpoint: The parsed body.
        note: The full signed note text (body, blank line, signature lines); may
            carry witness cosignature lines.

    """

    checkpoint: Checkpoint
    note: str

    def with_signature_lines(self, lines: Iterable[str]) -> SignedCheckpoint:
        """Return a copy whose note has ``lines`` appended (skipping ones already present)."""
        note = self.note
        present = {s.line for s in parse_note(note).signatures}
        for line in lines:
            if line not in present:
                note += line
                present.add(line)
        return SignedCheckpoint(self.checkpoint, note)


def open_checkpoint(
    note: str | bytes,
    verifiers: Iterable[SignatureVerifier] | SignatureVerifier,
    *,
    origin: str | None = None,
) -> SignedCheckpoint:
    """Verify a signed checkpoint note and parse its body.

    Args:
        note: The signed note.
        verifiers: The log's verifier (or several trusted log keys).
        origin: The origin the checkpoint must name (defaults to no check).

    Returns:
        The verified :class:`SignedCheckpoint`.

    Raises:
        MalformedNoteError: If the note does not parse.
        InvalidSignatureError: If no trusted log key signed it (or one failed).
        MalformedCheckpointError: If the body is not a checkpoint.
        OriginMismatchError: If the origin differs from ``origin``.

    """
    if isinstance(verifiers, SignatureVerifier):
        verifiers = [verifiers]
    parsed, _ = open_note(note, verifiers)
    cp = Checkpoint.parse(parsed.text, origin=origin)
    text = note if isinstance(note, str) else bytes(note).decode("utf-8")
    return SignedCheckpoint(cp, text)
