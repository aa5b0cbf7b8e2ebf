"""Requester-side receipt checking: the provider's receipt must be about *this* exchange (issue #10.5).

A provider answers every decided request with a C2SP tlog-proof receipt and
the bytes of the entry it logged. Checking only that *some* entry is included
in the provider's log lets a provider hand back a receipt for another entry of
its own log (or log one thing and send another). The requester node therefore:

1. bounds the outcome before parsing anything in it (:func:`check_outcome_size`,
   ``OUTCOME_TOO_LARGE``);
2. verifies the receipt offline (log signature, RFC 9162 inclusion) and that the
   receipt's leaf hash, index and entry agree (:func:`ledger.verify_receipt`);
3. parses the logged entry and compares it with what it asked and what it
   received: kind, disclosure id, organizations, agent, contract, purpose,
   request digest (SHA-256 of the bytes the agent signed), response digest
   (SHA-256 of the canonical payload), released / stripped fields, record
   count, decision, reason and decision hash (:func:`bind_entry`,
   ``RECEIPT_MISMATCH``);
4. remembers, per peer log, the last checkpoint it verified and every receipt
   checkpoint not yet covered by one (:class:`PeerLogBook`). Two different roots
   at one size are refused at once (``PEER_LOG_INCONSISTENT``).

**Witness policy.** A receipt's checkpoint is signed by the provider in the
same turn that logged the entry, so no witness can have cosigned it yet; making
the exchange wait for cosignatures would add a witness round (seconds) to every
exchange. Instead the receipt is accepted *pending*: its checkpoint (size, root,
signed note) is kept, and :meth:`PeerLogBook.settle` — run by every witnessing
round (:class:`federation.witnessing.WitnessCoordinator`) — fetches the peer's
latest witnessed checkpoint, requires it to meet the federation's witness
policy (:func:`peer_log_policy`), proves it consistent (RFC 9162 §2.1.4) with
the last verified one and proves every pending checkpoint it covers consistent
with it. Only then is a receipt *settled*. Any failed proof is
``PEER_LOG_INCONSISTENT``: both signed notes are stored as equivocation
evidence in the node's ledger evidence table, so the next witnessing round
alerts and writes an ``equivocation`` entry (the same path as a split view
seen by the witness). A provider that rolls its log back and grows a different
history is caught by its partners this way, not only by its own ``verify``.

The book is kept in memory between rounds and persisted (node state
``peer_logs``) by every settle; at most :data:`MAX_PENDING` distinct pending
checkpoints per peer are kept: beyond that, exchanges with that peer are
refused (``RECEIPTS_UNSETTLED``, retryable) until a round settles them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from federation.errors import FederationError
from ledger import (
    MAX_ENTRY_BYTES,
    DisclosureEntry,
    EquivocationError,
    LedgerError,
    NoteVerifier,
    SignedCheckpoint,
    open_checkpoint,
    verify_consistency,
)

__all__ = [
    "ReceiptMismatchError",
    "PeerLogInconsistentError",
    "OutcomeTooLargeError",
    "ReceiptsUnsettledError",
    "OutcomeLimits",
    "check_outcome_size",
    "bind_entry",
    "payload_digest",
    "PeerLogBook",
    "peer_log_policy",
    "MAX_PENDING",
    "MAX_EVIDENCE",
    "receipt_book",
    "persist_book",
    "check_receipt",
]

MAX_PENDING = 4096
"""Most distinct unsettled receipt checkpoints kept per peer log."""
MAX_EVIDENCE = 64
"""Most receipt-mismatch evidence records kept (oldest dropped first)."""
MAX_TLOG_PROOF_BYTES = 64 * 1024
"""Largest accepted tlog-proof text: 64 proof lines plus a checkpoint with cosignatures fit easily."""
MAX_NAMES = 256
"""Most field names (released, stripped), reasons or obligations in one outcome."""
MAX_NAME_CHARS = 256
"""Longest field name, reason, obligation, disclosure id or decision hash."""


class ReceiptMismatchError(FederationError):
    """The provider's receipt is not about this exchange (another entry, other fields, other digests).

    ``metadata["mismatch"]`` names the entry members that differ (comma-separated).
    """

    reason = "RECEIPT_MISMATCH"
    status = "FAILED_PRECONDITION"


class PeerLogInconsistentError(FederationError):
    """The provider's log presented two views that no consistency proof reconciles (a fork)."""

    reason = "PEER_LOG_INCONSISTENT"
    status = "FAILED_PRECONDITION"


class OutcomeTooLargeError(FederationError):
    """The provider's outcome exceeds a bound (payload, names, receipt); nothing in it was used."""

    reason = "OUTCOME_TOO_LARGE"
    status = "FAILED_PRECONDITION"


class ReceiptsUnsettledError(FederationError):
    """Too many of this peer's receipts await a witnessed checkpoint; retry after a witness round."""

    reason = "RECEIPTS_UNSETTLED"
    status = "UNAVAILABLE"


# ---------------------------------------------------------------- outcome bounds


@dataclass(frozen=True)
class OutcomeLimits:
    """Bounds on a provider's outcome, checked before anything in it is parsed.

    Attributes:
        max_payload_bytes: Largest payload (UTF-8 JSON), bytes.
        max_names: Most entries in each list (released, stripped, reasons, obligations).
        max_name_chars: Longest string in those lists and of the ids, characters.
        max_tlog_proof_bytes: Largest tlog-proof text, bytes.
        max_entry_bytes: Largest logged entry, bytes (the ledger's own limit).

    """

    max_payload_bytes: int = 1 << 20
    max_names: int = MAX_NAMES
    max_name_chars: int = MAX_NAME_CHARS
    max_tlog_proof_bytes: int = MAX_TLOG_PROOF_BYTES
    max_entry_bytes: int = MAX_ENTRY_BYTES


def check_outcome_size(outcome: Any, limits: OutcomeLimits = OutcomeLimits()) -> None:
    """Refuse an outcome of unreasonable size (a peer's :class:`federation.domain.ReceivedOutcome`).

    Raises:
        OutcomeTooLargeError: naming the member (``metadata["field"]``) and its size.

    """

    def too_large(name: str, size: int, limit: int) -> OutcomeTooLargeError:
        return OutcomeTooLargeError(
            f"outcome.{name} is {size}, more than {limit}",
            metadata={"field": name, "size": size, "limit": limit},
        )

    if len(outcome.payload_json) > limits.max_payload_bytes:
        raise too_large("payload_json", len(outcome.payload_json), limits.max_payload_bytes)
    for name in ("released_fields", "stripped_fields", "reasons", "obligations"):
        values = getattr(outcome, name)
        if len(values) > limits.max_names:
            raise too_large(name, len(values), limits.max_names)
        longest = max((len(v) for v in values), default=0)
        if longest > limits.max_name_chars:
            raise too_large(name, longest, limits.max_name_chars)
    for name in ("disclosure_id", "decision_hash", "decision"):
        if len(getattr(outcome, name)) > limits.max_name_chars:
            raise too_large(name, len(getattr(outcome, name)), limits.max_name_chars)
    receipt = outcome.receipt
    if len(receipt.tlog_proof) > limits.max_tlog_proof_bytes:
        raise too_large("receipt.tlog_proof", len(receipt.tlog_proof), limits.max_tlog_proof_bytes)
    if len(receipt.entry) > limits.max_entry_bytes:
        raise too_large("receipt.entry", len(receipt.entry), limits.max_entry_bytes)
    if len(receipt.leaf_hash) > 32:
        raise too_large("receipt.leaf_hash", len(receipt.leaf_hash), 32)
    if not math.isfinite(outcome.effective_trust):
        raise OutcomeTooLargeError(
            "outcome.effective_trust is not finite", metadata={"field": "effective_trust"}
        )


def payload_digest(payload_json: bytes) -> str:
    """Hex SHA-256 of ``Outcome.payload_json`` exactly as received (SHA-256("") for none).

    The provider logs the digest of the bytes it sends (spec ``docs/spec/accord-v1.md``,
    receipt binding: ``response_digest``), so the requester hashes what it got, never a
    re-spelling of it: the same JSON value sent with other spacing or key order is a
    payload other than the logged one.

    Raises:
        ReceiptMismatchError: If the payload is not JSON (the provider logged a JSON payload).

    """
    if payload_json:
        try:
            json.loads(payload_json)
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting beyond the parser's depth
            raise ReceiptMismatchError(
                "outcome payload is not JSON", metadata={"mismatch": "response_digest"}
            ) from exc
    return hashlib.sha256(payload_json).hexdigest()


# ---------------------------------------------------------------- binding


def bind_entry(entry_bytes: bytes, expected: dict[str, Any]) -> DisclosureEntry:
    """Parse the entry the provider logged and compare it with what the requester knows.

    Args:
        entry_bytes: The receipt's entry bytes (RFC 8785 JCS of the disclosure entry).
        expected: Entry member name → expected value. ``kind`` may be a tuple of
            accepted kinds; list values are compared as tuples. Members absent
            from ``expected`` are not compared.

    Returns:
        The parsed entry.

    Raises:
        ReceiptMismatchError: The bytes are not a canonical entry, or members
            differ (``metadata["mismatch"]`` lists them, sorted).

    """
    try:
        entry = DisclosureEntry.from_canonical_bytes(entry_bytes)
        canonical = entry.canonical_bytes() == bytes(entry_bytes)
    except LedgerError as exc:
        raise ReceiptMismatchError(
            "the receipt's entry is not a disclosure entry", metadata={"mismatch": "entry"}
        ) from exc
    if not canonical:
        raise ReceiptMismatchError("the receipt's entry is not canonical JCS", metadata={"mismatch": "entry"})
    bad = []
    for name, want in expected.items():
        got = getattr(entry, name)
        if name == "kind" and isinstance(want, tuple):
            ok = got in want
        elif isinstance(want, list | tuple):
            ok = tuple(got) == tuple(want)
        else:
            ok = got == want
        if not ok:
            bad.append(name)
    if bad:
        raise ReceiptMismatchError(
            f"the provider's logged entry differs from this exchange in {', '.join(sorted(bad))}",
            metadata={"mismatch": ",".join(sorted(bad)), "disclosure_id": entry.disclosure_id[:256]},
        )
    return entry


# ---------------------------------------------------------------- peer logs


def peer_log_policy(node: Any, bundle: Any) -> Any | None:
    """The witness policy a peer's checkpoints must meet, as this node sees the federation.

    The witnesses are this node's own witness and those of the peers named in
    ``witnesses`` (``node.toml``), never the log's own organization; the quorum
    is ``witness_quorum``, capped at their number (the peer's own policy may
    name this node in place of itself). Pinning an organization that is not a
    configured witness never changes it.

    Returns:
        A :class:`ledger.WitnessPolicy`, or ``None`` when no witness is known.

    """
    from ledger import WitnessPolicy

    named = set(node.config.witnesses)
    witnesses = {
        b.org_name: b.witness_vkey
        for b in node.peers
        if b.witness_vkey and b.org_did != bundle.org_did and b.org_name in named
    }
    witnesses[node.config.org_name] = node.witness.vkey
    k = max(1, min(node.config.witness_quorum, len(witnesses)))
    return WitnessPolicy.k_of_n(k, witnesses, logs=[bundle.ledger_vkey])


@dataclass
class _PeerLog:
    """One peer log's state in the book (sizes in entries, roots raw bytes)."""

    size: int = -1
    root: bytes = b""
    note: str = ""
    pending: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    settled: int = 0
    inconsistent: str = ""


class PeerLogBook:
    """Each peer log's last verified checkpoint and the receipt checkpoints awaiting a witnessed one.

    Args:
        state: The persisted form (from :meth:`to_dict`), or ``None`` for an empty book.

    """

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self._logs: dict[str, _PeerLog] = {}
        self.evidence: list[dict[str, str]] = []
        for origin, st in (state or {}).get("logs", {}).items():
            self._logs[origin] = _PeerLog(
                size=int(st["size"]),
                root=base64.b64decode(st["root"]),
                note=st["note"],
                pending={int(s): (base64.b64decode(r), n) for s, (r, n) in st.get("pending", {}).items()},
                settled=int(st.get("settled", 0)),
                inconsistent=str(st.get("inconsistent", "")),
            )
        self.evidence = list((state or {}).get("evidence", []))[-MAX_EVIDENCE:]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (roots base64)."""
        return {
            "logs": {
                o: {
                    "size": st.size,
                    "root": base64.b64encode(st.root).decode(),
                    "note": st.note,
                    "pending": {
                        str(s): [base64.b64encode(r).decode(), n] for s, (r, n) in st.pending.items()
                    },
                    "settled": st.settled,
                    "inconsistent": st.inconsistent,
                }
                for o, st in self._logs.items()
            },
            "evidence": self.evidence[-MAX_EVIDENCE:],
        }

    def verified(self, origin: str) -> tuple[int, bytes] | None:
        """The last verified (witnessed, consistent) checkpoint of ``origin``: (size, root), or None."""
        st = self._logs.get(origin)
        return None if st is None or st.size < 0 else (st.size, st.root)

    def pending(self, origin: str) -> list[int]:
        """Sizes of ``origin``'s receipt checkpoints not yet covered by a verified one, ascending."""
        st = self._logs.get(origin)
        return sorted(st.pending) if st else []

    def remember_mismatch(self, origin: str, reason: str, detail: str, **items: str) -> None:
        """Keep evidence of a refused receipt (receipt text, entry bytes, ...), bounded."""
        rec = {"origin": origin, "reason": reason, "detail": detail[:500], "time": _now_text(), **items}
        self.evidence = [*self.evidence, rec][-MAX_EVIDENCE:]

    def observe(self, origin: str, signed: SignedCheckpoint) -> None:
        """Record a receipt's verified checkpoint as pending; refuse a second root at a known size.

        Args:
            origin: The peer log's origin.
            signed: The receipt's checkpoint, already verified against the log key.

        Raises:
            PeerLogInconsistentError: The log signed another root at this size
                (the verified checkpoint or a pending one): conclusive, no proof
                can reconcile it. ``error.evidence`` holds both notes.
            ReceiptsUnsettledError: :data:`MAX_PENDING` checkpoints already await settling.

        """
        st = self._logs.setdefault(origin, _PeerLog())
        if st.inconsistent:
            raise PeerLogInconsistentError(
                f"peer log {origin} was found inconsistent: {st.inconsistent}",
                metadata={"origin": origin[:200], "detail": st.inconsistent},
            )
        cp = signed.checkpoint
        if cp.size == st.size:
            if cp.root != st.root:
                raise self._fail(
                    st, _inconsistent(origin, cp.size, st.note, signed.note, "two roots at one size")
                )
            return
        held = st.pending.get(cp.size)
        if held is not None:
            if held[0] != cp.root:
                raise self._fail(
                    st, _inconsistent(origin, cp.size, held[1], signed.note, "two roots at one size")
                )
            return
        if len(st.pending) >= MAX_PENDING:
            raise ReceiptsUnsettledError(
                f"{MAX_PENDING} receipts of {origin} await a witnessed checkpoint",
                metadata={"origin": origin},
            )
        st.pending[cp.size] = (cp.root, signed.note)

    def inconsistent(self, origin: str) -> str:
        """Why ``origin`` was found inconsistent (``""`` if it was not); its exchanges are refused."""
        st = self._logs.get(origin)
        return st.inconsistent if st else ""

    @staticmethod
    def _fail(st: _PeerLog, err: PeerLogInconsistentError) -> PeerLogInconsistentError:
        st.inconsistent = err.metadata.get("detail", "inconsistent")
        st.pending.clear()
        return err

    async def settle(
        self,
        origin: str,
        *,
        witnessed_note: str,
        verifier: NoteVerifier,
        policy: Any,
        prove: Callable[[int, int], Awaitable[Sequence[bytes]]],
        now: datetime | None = None,
    ) -> int:
        """Verify the peer's witnessed checkpoint and settle every pending receipt it covers.

        Args:
            origin: The peer log's origin.
            witnessed_note: The peer's latest witnessed checkpoint (note with cosignatures).
            verifier: The peer log's key.
            policy: The witness policy it must meet (:func:`peer_log_policy`).
            prove: ``prove(size1, size2)`` → the peer's RFC 9162 consistency proof.
            now: Current time (cosignature freshness).

        Returns:
            How many pending checkpoints were settled.

        Raises:
            QuorumNotMetError / InvalidSignatureError / MalformedNoteError: the
                checkpoint does not meet the policy (nothing changes; retried next round).
            PeerLogInconsistentError: a consistency proof failed (evidence in
                ``error.evidence``); the log is marked inconsistent: its pending
                receipts are dropped, later receipts from it are refused and
                later rounds skip it (an operator decides what happens next).

        """
        st = self._logs.setdefault(origin, _PeerLog())
        if st.inconsistent:
            return 0
        signed = open_checkpoint(witnessed_note, verifier, origin=origin)
        if policy is not None:
            policy.check(signed, now=now)
        w = signed.checkpoint

        async def consistent(size1: int, root1: bytes, note1: str, size2: int, root2: bytes, note2: str):
            if size1 == size2:
                ok = root1 == root2
            elif size1 == 0:
                ok = True
            else:
                proof = await prove(size1, size2)
                try:
                    verify_consistency(size1, size2, root1, root2, list(proof))
                    ok = True
                except LedgerError:
                    ok = False
            if not ok:
                raise self._fail(
                    st,
                    _inconsistent(
                        origin,
                        min(size1, size2),
                        note1,
                        note2,
                        f"no consistency proof from size {size1} to {size2}",
                    ),
                )

        if st.size >= 0:
            if st.size <= w.size:
                await consistent(st.size, st.root, st.note, w.size, w.root, signed.note)
            else:
                await consistent(w.size, w.root, signed.note, st.size, st.root, st.note)
        settled = 0
        for size in sorted(s for s in st.pending if s <= w.size):
            root, note = st.pending[size]
            await consistent(size, root, note, w.size, w.root, signed.note)
            del st.pending[size]
            settled += 1
        if w.size >= st.size:
            st.size, st.root, st.note = w.size, w.root, signed.note
        st.settled += settled
        return settled


def _inconsistent(origin: str, size: int, note_a: str, note_b: str, detail: str) -> PeerLogInconsistentError:
    err = PeerLogInconsistentError(
        f"peer log {origin} is inconsistent: {detail}",
        metadata={"origin": origin[:200], "size": size, "detail": detail},
    )
    err.evidence = EquivocationError(  # type: ignore[attr-defined]
        f"log {origin!r}: {detail}", origin=origin, note_a=note_a, note_b=note_b, metadata={"size": size}
    )
    return err


def _now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- the requester's check


def receipt_book(node: Any) -> PeerLogBook:
    """The node's :class:`PeerLogBook` (loaded from node state ``peer_logs`` on first use)."""
    book = getattr(node, "_receipt_book", None)
    if book is None:
        book = PeerLogBook(node.store.get_state("peer_logs"))
        node._receipt_book = book
    return book


def persist_book(node: Any) -> None:
    """Persist the node's book (node state ``peer_logs``)."""
    node.store.put_state("peer_logs", receipt_book(node).to_dict(), now=datetime.now(UTC))


#: Checkpoint notes whose signature verified, by (origin, log vkey, note text): the receipts of one
#: provider batch share one signed checkpoint, verified once (bounded; the key is the exact signed text)
_VERIFIED_NOTES: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_VERIFIED_NOTES_MAX = 256
_VERIFIED_NOTES_LOCK = threading.Lock()


def open_checkpoint_cached(note: str, verifier: NoteVerifier, *, origin: str) -> Any:
    """:func:`ledger.open_checkpoint`, remembering the last notes that verified.

    The cache key is the note's exact text with the origin and the verifier
    key, so a hit is a note whose bytes, signature included, were verified
    with that key before; any other note is verified. Raises as
    :func:`ledger.open_checkpoint` (failures are never cached).
    """
    key = (origin, verifier.vkey, note)
    with _VERIFIED_NOTES_LOCK:
        hit = _VERIFIED_NOTES.get(key)
        if hit is not None:
            _VERIFIED_NOTES.move_to_end(key)
            return hit
    signed = open_checkpoint(note, verifier, origin=origin)
    with _VERIFIED_NOTES_LOCK:
        _VERIFIED_NOTES[key] = signed
        while len(_VERIFIED_NOTES) > _VERIFIED_NOTES_MAX:
            _VERIFIED_NOTES.popitem(last=False)
    return signed


def check_receipt(
    book: PeerLogBook,
    *,
    origin: str,
    verifier: NoteVerifier,
    tlog_proof: str,
    entry_bytes: bytes,
    leaf_index: int | None,
    claimed_leaf_hash: bytes | None,
    expected: dict[str, Any],
) -> bool:
    """Check a provider's receipt for one exchange (see the module docstring, steps 2–4).

    Args:
        book: The node's peer-log book (the receipt's checkpoint is recorded as pending).
        origin: The provider log's origin (from its pinned bundle).
        verifier: The provider log's key (from its pinned bundle).
        tlog_proof: The receipt (C2SP tlog-proof text).
        entry_bytes: The entry bytes the provider says it logged.
        leaf_index: The leaf index the provider claims, if it claims one.
        claimed_leaf_hash: The leaf hash the provider claims, if it claims one.
        expected: What the entry must say (:func:`bind_entry`).

    Returns:
        ``True`` if the receipt verified and is bound to the exchange; ``False``
        if its signature or inclusion proof does not verify (``RECEIPT_INVALID``:
        recorded by the caller, not fatal, as before).

    Raises:
        ReceiptMismatchError: the receipt verifies but is about something else.
        PeerLogInconsistentError: the receipt's checkpoint contradicts one already seen.
        ReceiptsUnsettledError: too many receipts of this peer await settling.

    """
    from ledger import Receipt, leaf_hash, verify_inclusion

    lh = leaf_hash(entry_bytes)
    try:
        receipt = Receipt.parse(tlog_proof)
        signed = open_checkpoint_cached(receipt.checkpoint_note, verifier, origin=origin)
        cp = signed.checkpoint
        verify_inclusion(receipt.index, cp.size, lh, receipt.proof, cp.root)
    except LedgerError:
        return False
    claims = []
    if leaf_index is not None and receipt.index != leaf_index:
        claims.append("leaf_index")
    if claimed_leaf_hash is not None and claimed_leaf_hash != lh:
        claims.append("leaf_hash")
    bind_entry(entry_bytes, expected)
    if claims:
        raise ReceiptMismatchError(
            "the receipt proves another leaf than the one the outcome names",
            metadata={"mismatch": ",".join(claims)},
        )
    book.observe(origin, signed)
    return True
