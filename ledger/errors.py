"""Typed errors of the ledger package.

Every error has a stable ``reason`` code (UPPER_SNAKE), a ``caller_fault`` flag
(``True`` when the input or request was wrong, ``False`` when the failure is on
our side or on a remote log's side) and ``metadata`` (``dict[str, str]``) with the
evidence. The node translates these to wire statuses in exactly one place; this
package never imports gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "LedgerError",
    "MalformedError",
    "MalformedNoteError",
    "MalformedCheckpointError",
    "MalformedProofError",
    "MalformedPolicyError",
    "InvalidKeyError",
    "InvalidEntryError",
    "InvalidProofError",
    "InvalidSignatureError",
    "OriginMismatchError",
    "EntryNotFoundError",
    "TreeSizeError",
    "NotCheckpointedError",
    "IdempotencyConflictError",
    "CheckpointConflictError",
    "EquivocationError",
    "QuorumNotMetError",
    "UnknownLogError",
    "WitnessStateChangedError",
    "ConfigurationError",
    "StorageError",
]


class LedgerError(Exception):
    """Base class of every error raised by :mod:`ledger`.

    Attributes:
        reason: Stable UPPER_SNAKE reason code, safe to put on the wire.
        caller_fault: ``True`` if the caller's input caused the failure.
        metadata: String-to-string evidence (sizes, indices, key names ...).

    """

    reason: str = "LEDGER_ERROR"
    caller_fault: bool = False

    def __init__(self, message: str, *, metadata: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}

    def diagnostics(self) -> str:
        """Return a one-line human explanation with the reason code and metadata."""
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.metadata.items()))
        return f"{self.reason}: {self.message}" + (f" ({extra})" if extra else "")


class MalformedError(LedgerError):
    """Input bytes or text do not parse as the expected format."""

    reason = "MALFORMED"
    caller_fault = True


class MalformedNoteError(MalformedError):
    """A signed note violates c2sp.org/signed-note (layout, names, control characters)."""

    reason = "MALFORMED_NOTE"


class MalformedCheckpointError(MalformedError):
    """A checkpoint body violates c2sp.org/tlog-checkpoint."""

    reason = "MALFORMED_CHECKPOINT"


class MalformedProofError(MalformedError):
    """A proof, receipt (c2sp.org/tlog-proof) or add-checkpoint request does not parse."""

    reason = "MALFORMED_PROOF"


class MalformedPolicyError(MalformedError):
    """A c2sp.org/tlog-policy text is invalid (unknown names, bad thresholds ...)."""

    reason = "MALFORMED_POLICY"


class InvalidKeyError(LedgerError):
    """A key, vkey or skey string is invalid (wrong key ID, length, type or name)."""

    reason = "INVALID_KEY"
    caller_fault = True


class InvalidEntryError(LedgerError):
    """A disclosure entry fails validation (field shapes, size limits)."""

    reason = "INVALID_ENTRY"
    caller_fault = True


class InvalidProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify (RFC 9162 §2.1.3.2, §2.1.4.2)."""

    reason = "INVALID_PROOF"
    caller_fault = True


class InvalidSignatureError(LedgerError):
    """A note has no valid signature from a trusted key, or a trusted key's signature fails."""

    reason = "INVALID_SIGNATURE"
    caller_fault = True


class OriginMismatchError(LedgerError):
    """A checkpoint names a different log origin than the one expected."""

    reason = "ORIGIN_MISMATCH"
    caller_fault = True


class EntryNotFoundError(LedgerError):
    """No entry exists at the requested index (or with the requested id)."""

    reason = "ENTRY_NOT_FOUND"
    caller_fault = True


class TreeSizeError(LedgerError):
    """A requested tree size or index is out of range for the current tree."""

    reason = "TREE_SIZE_OUT_OF_RANGE"
    caller_fault = True


class NotCheckpointedError(LedgerError):
    """No signed checkpoint covers the requested index yet (call ``integrate`` first)."""

    reason = "ENTRY_NOT_CHECKPOINTED"
    caller_fault = True


class IdempotencyConflictError(LedgerError):
    """A ``disclosure_id`` already logged is submitted again with different content."""

    reason = "IDEMPOTENCY_KEY_CONFLICT"
    caller_fault = True


class CheckpointConflictError(LedgerError):
    """The signer's compare-and-swap guard refused to sign.

    Raised when signing would produce a smaller size than the last signed
    checkpoint, a different root for an already signed size, or when another
    replica signed concurrently. Nothing is signed when this is raised.
    """

    reason = "CHECKPOINT_CAS_CONFLICT"
    caller_fault = False


class EquivocationError(LedgerError):
    """A log signed two checkpoints that cannot both be honest (a fork / split view).

    Attributes:
        origin: The log origin.
        note_a: The first signed checkpoint note (full text, evidence).
        note_b: The second, conflicting signed checkpoint note.

    """

    reason = "EQUIVOCATION"
    caller_fault = False

    def __init__(
        self,
        message: str,
        *,
        origin: str,
        note_a: str,
        note_b: str,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        meta = {"origin": origin, **(metadata or {})}
        super().__init__(message, metadata=meta)
        self.origin = origin
        self.note_a = note_a
        self.note_b = note_b


class QuorumNotMetError(LedgerError):
    """A checkpoint lacks the cosignatures required by the witness policy."""

    reason = "WITNESS_QUORUM_NOT_MET"
    caller_fault = True


class UnknownLogError(LedgerError):
    """A witness was asked about a log origin it is not configured for."""

    reason = "UNKNOWN_LOG"
    caller_fault = True


class WitnessStateChangedError(LedgerError):
    """A witness reset named another size than the one the witness holds (it moved, or was misread)."""

    reason = "WITNESS_STATE_CHANGED"
    caller_fault = True


class ConfigurationError(LedgerError):
    """The ledger was opened with settings that contradict its stored state."""

    reason = "LEDGER_CONFIGURATION"
    caller_fault = True


class StorageError(LedgerError):
    """The database failed or holds data that contradicts the log's invariants."""

    reason = "LEDGER_STORAGE"
    caller_fault = False
