"""Accord's disclosure ledger: an RFC 9162 transparency log with C2SP checkpoints.

Merkle tree hashing and proofs (RFC 9162 §2.1), signed notes (c2sp.org/signed-note),
checkpoints (c2sp.org/tlog-checkpoint), receipts (c2sp.org/tlog-proof) and a
SQLAlchemy-backed log that separates sequencing from integration.
"""

from ledger.audit import compare_checkpoints
from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from ledger.commit import TRANSITIONS, CommitState
from ledger.cosignature import (
    SIG_MLDSA44,
    Cosignature,
    CosignatureSigner,
    CosignatureVerifier,
    open_cosignatures,
)
from ledger.entry import MAX_ENTRY_BYTES, AppendResult, DisclosureEntry, StoredEntry
from ledger.errors import (
    CheckpointConflictError,
    ConfigurationError,
    EntryNotFoundError,
    EquivocationError,
    IdempotencyConflictError,
    InvalidEntryError,
    InvalidKeyError,
    InvalidProofError,
    InvalidSignatureError,
    LedgerError,
    MalformedCheckpointError,
    MalformedError,
    MalformedNoteError,
    MalformedPolicyError,
    MalformedProofError,
    NotCheckpointedError,
    OriginMismatchError,
    QuorumNotMetError,
    StorageError,
    TreeSizeError,
    UnknownLogError,
    WitnessStateChangedError,
)
from ledger.hashing import EMPTY_ROOT, leaf_hash, merkle_root, node_hash
from ledger.log import FsckReport, IntegratedBatch, TransparencyLog, Watermarks
from ledger.note import MAX_NOTE_BYTES, NoteSigner, NoteVerifier, key_id, open_note, parse_note
from ledger.policy import WitnessPolicy
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.query import EntryFilter
from ledger.receipt import MAX_RECEIPT_BYTES, Receipt, verify_receipt
from ledger.tiles import (
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    entry_bundle_path,
    parse_tile_path,
    tile_path,
)
from ledger.witness import (
    MAX_ADD_CHECKPOINT_BYTES,
    MAX_EVIDENCE_PER_LOG,
    AddCheckpointRequest,
    Equivocation,
    Witness,
    WitnessResponse,
    format_add_checkpoint,
    parse_add_checkpoint,
)

__all__ = [
    "SIG_MLDSA44",
    "MAX_EVIDENCE_PER_LOG",
    "MAX_ADD_CHECKPOINT_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_RECEIPT_BYTES",
    "AddCheckpointRequest",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Equivocation",
    "Witness",
    "WitnessPolicy",
    "WitnessResponse",
    "TileRef",
    "compare_checkpoints",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entry_bundle_path",
    "parse_tile_path",
    "tile_path",
    "format_add_checkpoint",
    "open_cosignatures",
    "parse_add_checkpoint",
    "EMPTY_ROOT",
    "MAX_ENTRY_BYTES",
    "TRANSITIONS",
    "AppendResult",
    "Checkpoint",
    "CheckpointConflictError",
    "CommitState",
    "ConfigurationError",
    "DisclosureEntry",
    "EntryFilter",
    "EntryNotFoundError",
    "EquivocationError",
    "FsckReport",
    "IdempotencyConflictError",
    "InvalidEntryError",
    "InvalidKeyError",
    "InvalidProofError",
    "InvalidSignatureError",
    "LedgerError",
    "MalformedCheckpointError",
    "MalformedError",
    "MalformedNoteError",
    "MalformedPolicyError",
    "MalformedProofError",
    "NotCheckpointedError",
    "NoteSigner",
    "NoteVerifier",
    "OriginMismatchError",
    "QuorumNotMetError",
    "Receipt",
    "SignedCheckpoint",
    "StorageError",
    "StoredEntry",
    "TransparencyLog",
    "TreeSizeError",
    "UnknownLogError",
    "WitnessStateChangedError",
    "Watermarks",
    "IntegratedBatch",
    "key_id",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
]
