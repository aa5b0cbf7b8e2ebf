"""Split-view detection between two signed checkpoints of one log (monitor / peer side).

Compare (origin, size, root), never cosigned bytes: the same tree head cosigned
at two times is not a conflict.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.checkpoint import SignedCheckpoint
from ledger.errors import EquivocationError, InvalidProofError, OriginMismatchError
from ledger.proofs import verify_consistency

__all__ = ["compare_checkpoints"]


def compare_checkpoints(
    a: SignedCheckpoint, b: SignedCheckpoint, *, proof: Sequence[bytes] | None = None
) -> None:
    """Check that two *verified* signed checkpoints of one log can both be honest.

    Args:
        a: A checkpoint seen earlier (signature already verified).
        b: Another checkpoint of the same origin (signature already verified).
        proof: RFC 9162 consistency proof from the smaller to the larger size
            (required when the sizes differ; ignored when they are equal).

    Raises:
        OriginMismatchError: If the origins differ (not comparable).
        EquivocationError: If the sizes are equal and the roots differ, or the
            proof does not link the smaller tree to the larger one. The error
            carries both notes as evidence.
        InvalidProofError: If sizes differ and no proof is given.

    """
    ca, cb = a.checkpoint, b.checkpoint
    if ca.origin != cb.origin:
        raise OriginMismatchError("checkpoints of different logs", metadata={"a": ca.origin, "b": cb.origin})
    if ca.size == cb.size:
        if ca.root != cb.root:
            raise EquivocationError(
                f"two roots signed for size {ca.size}",
                origin=ca.origin,
                note_a=a.note,
                note_b=b.note,
                metadata={"size": ca.size, "root_a": ca.root.hex(), "root_b": cb.root.hex()},
            )
        return
    old, new = (a, b) if ca.size < cb.size else (b, a)
    if proof is None:
        raise InvalidProofError("a consistency proof is needed to compare different sizes")
    try:
        verify_consistency(
            old.checkpoint.size,
            new.checkpoint.size,
            old.checkpoint.root,
            new.checkpoint.root,
            proof,
            allow_empty_old=True,
        )
    except InvalidProofError as exc:
        raise EquivocationError(
            f"no valid consistency proof from size {old.checkpoint.size} to {new.checkpoint.size}",
            origin=ca.origin,
            note_a=old.note,
            note_b=new.note,
            metadata={"size1": old.checkpoint.size, "size2": new.checkpoint.size},
        ) from exc
