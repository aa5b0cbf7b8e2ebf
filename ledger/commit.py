"""Commit states of a ledger entry, as a transition table (data, not code paths).

An entry is *sequenced* once it has a durable index, *integrated* once the Merkle
tree covers it, *checkpointed* once a signed checkpoint covers it and
*witnessed* once a checkpoint covering it carries a quorum of witness
cosignatures (the "published" state of Tessera / Rekor v2).
"""

from __future__ import annotations

import enum

__all__ = ["CommitState", "TRANSITIONS", "commit_state", "transition_table_markdown"]


class CommitState(enum.Enum):
    """Lifecycle of one entry; each state implies all previous ones."""

    SEQUENCED = "sequenced"
    INTEGRATED = "integrated"
    CHECKPOINTED = "checkpointed"
    WITNESSED = "witnessed"


TRANSITIONS: tuple[tuple[CommitState | None, str, CommitState, str], ...] = (
    (None, "append", CommitState.SEQUENCED, "index assigned and committed to storage"),
    (
        CommitState.SEQUENCED,
        "integrate",
        CommitState.INTEGRATED,
        "tree extended over the index; node rows committed",
    ),
    (
        CommitState.INTEGRATED,
        "integrate (sign)",
        CommitState.CHECKPOINTED,
        "checkpoint with size > index signed through the CAS guard",
    ),
    (
        CommitState.CHECKPOINTED,
        "add_cosignatures",
        CommitState.WITNESSED,
        "a checkpoint with size > index has a policy quorum of cosignatures",
    ),
)
"""``(from, event, to, condition)`` rows; the docs table is generated from this."""


def commit_state(
    index: int, *, integrated_size: int, checkpoint_size: int, witnessed_size: int
) -> CommitState:
    """Derive the state of ``index`` from the log's watermarks (sizes in entries).

    Args:
        index: Entry index.
        integrated_size: Number of leaves the stored tree covers.
        checkpoint_size: Size of the largest signed checkpoint.
        witnessed_size: Size of the largest checkpoint meeting the witness quorum.

    """
    if index < witnessed_size:
        return CommitState.WITNESSED
    if index < checkpoint_size:
        return CommitState.CHECKPOINTED
    if index < integrated_size:
        return CommitState.INTEGRATED
    return CommitState.SEQUENCED


def transition_table_markdown() -> str:
    """Render :data:`TRANSITIONS` as a Markdown table (embedded in ``docs/ledger.md``)."""
    rows = ["| from | event | to | condition |", "| --- | --- | --- | --- |"]
    for src, event, dst, cond in TRANSITIONS:
        rows.append(f"| {src.value if src else '—'} | `{event}` | {dst.value} | {cond} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(transition_table_markdown(), end="")
