"""A witness (c2sp.org/tlog-witness ``add-checkpoint``), sans-IO: bytes in, response out.

The witness keeps, per known log origin, the last checkpoint it cosigned (size,
root and the full signed note as evidence). Checking the request against that
state and persisting the new state happen in one database transaction (row lock
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so concurrent requests cannot roll
the state back.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.cosignature import CosignatureSigner
from ledger.errors import (
    EquivocationError,
    InvalidKeyError,
    InvalidProofError,
    InvalidSignatureError,
    LedgerError,
    MalformedCheckpointError,
    MalformedNoteError,
    UnknownLogError,
)
from ledger.hashing import EMPTY_ROOT, HASH_SIZE
from ledger.note import NoteVerifier, b64decode_strict, open_note, parse_note
from ledger.proofs import MAX_TREE_SIZE, verify_consistency
from ledger.storage.repository import LedgerStore

__all__ = [
    "Witness",
    "WitnessResponse",
    "AddCheckpointRequest",
    "Equivocation",
    "parse_add_checkpoint",
    "format_add_checkpoint",
    "MAX_PROOF_LINES",
    "MAX_EVIDENCE_PER_LOG",
    "MAX_ADD_CHECKPOINT_BYTES",
    "SIZE_CONTENT_TYPE",
]

MAX_EVIDENCE_PER_LOG = 64
"""Most split-view evidence rows a witness keeps per log origin (identical pairs are kept once)."""
MAX_PROOF_LINES = 63
"""Most consistency-proof lines an add-checkpoint request may carry."""
MAX_ADD_CHECKPOINT_BYTES = 64 * 1024
"""Largest add-checkpoint request body accepted, bytes (checked before any parsing)."""
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of a 409 response body (the witness's current size)."""
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class WitnessResponse:
    """An HTTP-shaped answer: status code, body bytes, content type."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint request body.

    Attributes:
        old_size: The size the client believes the witness last cosigned.
        proof: Consistency proof hashes (32 bytes each), at most 63.
        note: The signed checkpoint note.

    """

    old_size: int
    proof: tuple[bytes, ...]
    note: str


@dataclass(frozen=True)
class Equivocation:
    """Stored evidence of a split view: two signed checkpoints of one log.

    Attributes:
        origin: Log origin.
        size: Tree size at which (or from which) the views diverge.
        note_a: The checkpoint seen first (full signed note).
        note_b: The conflicting checkpoint (full signed note).
        detail: What was inconsistent.
        detected_at: When it was recorded (aware UTC).

    """

    origin: str
    size: int
    note_a: str
    note_b: str
    detail: str
    detected_at: datetime

    def error(self) -> EquivocationError:
        """Return this evidence as a raisable :class:`EquivocationError`."""
        return EquivocationError(
            f"log {self.origin!r} equivocated at size {self.size}: {self.detail}",
            origin=self.origin,
            note_a=self.note_a,
            note_b=self.note_b,
            metadata={"size": self.size},
        )


def _decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise MalformedNoteError(f"{what} {text!r} is not a canonical decimal")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise MalformedNoteError(f"{what} does not fit in 64 bits")
    return value


def parse_add_checkpoint(body: bytes | str) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body (``old N``, proof lines, blank line, note).

    Raises:
        MalformedNoteError: If the body is longer than :data:`MAX_ADD_CHECKPOINT_BYTES`
            or malformed.

    """
    if not isinstance(body, bytes | bytearray | str):
        raise MalformedNoteError("request must be str or bytes")
    if len(body) > MAX_ADD_CHECKPOINT_BYTES:
        raise MalformedNoteError(
            f"request is longer than {MAX_ADD_CHECKPOINT_BYTES}", metadata={"length": len(body)}
        )
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("request is not UTF-8") from exc
    head, sep, note = body.partition("\n\n")
    if not sep:
        raise MalformedNoteError("request has no blank line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise MalformedNoteError("request must start with 'old <size>'")
    old = _decimal(lines[0][4:], "old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise MalformedNoteError(f"more than {MAX_PROOF_LINES} proof lines")
    proof = []
    for line in lines[1:]:
        try:
            h = b64decode_strict(line, what="proof line")
        except ValueError as exc:
            raise MalformedNoteError(str(exc)) from exc
        if len(h) != HASH_SIZE:
            raise MalformedNoteError("proof hash is not 32 bytes")
        proof.append(h)
    return AddCheckpointRequest(old, tuple(proof), note)


def format_add_checkpoint(old_size: int, proof: list[bytes] | tuple[bytes, ...], note: str) -> bytes:
    """Build an add-checkpoint request body (the client side of the protocol)."""
    lines = [f"old {old_size}"] + [base64.b64encode(p).decode() for p in proof]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def _reply(status: int, text: str = "", content_type: str = _TEXT) -> WitnessResponse:
    return WitnessResponse(status, text.encode("utf-8"), content_type)


def _us(now: datetime) -> int:
    return int(now.timestamp() * 1_000_000)


def _keep_evidence(tx, cp: Checkpoint, note_a: str, note_b: str, detail: str, now_us: int) -> None:
    """Store two signed notes of one log that no proof reconciles (deduplicated, capped per log)."""
    if tx.count_equivocations(cp.origin, note_a=note_a, note_b=note_b):
        return
    if tx.count_equivocations(cp.origin) >= MAX_EVIDENCE_PER_LOG:
        return
    tx.insert_equivocation(cp.origin, cp.size, note_a, note_b, detail, now_us)


class Witness:
    """A tlog-witness: verifies checkpoints against its stored view and cosigns them.

    Args:
        store: Storage (the ledger's schema; table ``ledger_witness_logs``).
        signer: The witness's cosigning key (its name is the witness name).

    """

    def __init__(self, store: LedgerStore, signer: CosignatureSigner) -> None:
        self._store = store
        self._signer = signer

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        name: str = "",
        seed: bytes | None = None,
        signer: CosignatureSigner | None = None,
    ) -> Witness:
        """Open a witness on a database (migrating it) with an Ed25519 cosignature key.

        Args:
            database_url: SQLAlchemy URL.
            name: Witness name (with ``seed``).
            seed: 32-byte Ed25519 seed of the cosignature (type 0x04) key.
            signer: instead of ``name`` and ``seed``, the cosigning key (e.g. one
                whose private half is in an HSM).

        Raises:
            StorageError: If the database cannot be opened.
            InvalidKeyError: On a bad name or seed, or both / neither of ``seed`` and ``signer``.

        """
        if signer is None:
            signer = CosignatureSigner(name, seed)
        elif seed is not None or (name and name != signer.name):
            raise InvalidKeyError("give a witness name and seed, or a signer")
        return cls(LedgerStore.open(database_url), signer)

    @property
    def name(self) -> str:
        """Witness name."""
        return self._signer.name

    @property
    def vkey(self) -> str:
        """The witness's cosignature vkey (type 0x04)."""
        return self._signer.vkey

    def close(self) -> None:
        """Release database connections."""
        self._store.close()

    def add_log(self, origin: str, vkey: str, *, now: datetime | None = None) -> None:
        """Trust ``vkey`` (a 0x01/0x02 log vkey) for checkpoints of ``origin``.

        Raises:
            InvalidKeyError: If the vkey is invalid.

        """
        NoteVerifier.from_vkey(vkey)
        Checkpoint(origin, 0, EMPTY_ROOT)
        with self._store.write() as tx:
            tx.witness_add_log(self.name, origin, vkey, _us(now or datetime.now(UTC)))

    def reset_log(self, origin: str, *, expected_size: int, now: datetime | None = None) -> None:
        """Forget the checkpoint cosigned for ``origin``, so the log is accepted again from size 0.

        The operator's recovery after the log's owner restored an older backup
        (docs/operator-guide.md, "Restoring an older backup"): the witness
        then accepts a log that does not extend the one it cosigned (trust on
        first use again). The vkey and all stored equivocation evidence stay.

        Args:
            origin: the log's origin.
            expected_size: the size the operator saw held (guards against
                resetting a state that moved since it was read).
            now: the time recorded.

        Raises:
            UnknownLogError: the origin is not configured.
            WitnessStateChangedError: the held size is not ``expected_size``.

        """
        from ledger.errors import WitnessStateChangedError

        with self._store.write() as tx:
            st = tx.witness_state(self.name, origin, lock=True)
            if st is None:
                raise UnknownLogError(f"unknown log {origin!r}", metadata={"origin": origin})
            if st[1] != expected_size:
                raise WitnessStateChangedError(
                    f"the witness holds size {st[1]} for {origin}, not {expected_size}",
                    metadata={"origin": origin, "held": str(st[1]), "expected": str(expected_size)},
                )
            tx.witness_reset_log(self.name, origin, _us(now or datetime.now(UTC)))

    def known_logs(self) -> list[tuple[str, str, int]]:
        """Return ``(origin, log vkey, last cosigned size)`` for every configured log."""
        with self._store.read() as tx:
            return tx.witness_logs(self.name)

    def latest(self, origin: str) -> SignedCheckpoint | None:
        """Return the last checkpoint cosigned for ``origin`` (the log-signed note).

        Raises:
            UnknownLogError: If the origin is not configured.

        """
        with self._store.read() as tx:
            st = tx.witness_state(self.name, origin, lock=False)
        if st is None:
            raise UnknownLogError(f"unknown log {origin!r}", metadata={"origin": origin})
        _, size, root, note = st
        if note is None:
            return None
        return SignedCheckpoint(Checkpoint(origin, size, root), note)

    def add_checkpoint(self, body: bytes, *, now: datetime) -> WitnessResponse:
        r"""Handle ``POST <prefix>/add-checkpoint`` (c2sp.org/tlog-witness).

        Status codes: 200 with cosignature line(s) after the new state is
        persisted; 400 malformed request or old size > checkpoint size; 403 no
        trusted log signature verifies (or a trusted one fails); 404 unknown
        origin; 409 old size differs from the stored size (body ``<size>\n``,
        ``text/x.tlog.size``), or same size with a different root (evidence is
        stored); 422 a proof that does not verify (both notes are stored as
        evidence: a log that rolled back and grew a different history is caught
        here), a non-empty proof with old 0, or a size-0 checkpoint whose root
        is not SHA-256(""). Evidence is kept once per pair of notes and at most
        :data:`MAX_EVIDENCE_PER_LOG` rows per log.

        Args:
            body: Request body bytes.
            now: Current time; the cosignature timestamp (POSIX seconds).

        Returns:
            The response; never raises for bad input (storage failures do raise
            :class:`~ledger.errors.StorageError`).

        """
        try:
            req = parse_add_checkpoint(body)
            parsed = parse_note(req.note)
        except LedgerError as exc:
            return _reply(400, exc.message + "\n")
        lines = parsed.text[:-1].split("\n")
        try:
            cp = Checkpoint.parse(parsed.text)
        except MalformedCheckpointError as exc:
            if len(lines) >= 3 and lines[1] == "0" and lines[0]:
                return _reply(422, "a size-0 checkpoint must carry SHA-256('')\n")
            return _reply(400, exc.message + "\n")
        with self._store.write() as tx:
            st = tx.witness_state(self.name, cp.origin, lock=True)
            if st is None:
                return _reply(404, f"unknown log origin {cp.origin!r}\n")
            vkey, stored_size, stored_root, stored_note = st
            try:
                open_note(req.note, [NoteVerifier.from_vkey(vkey)])
            except (InvalidSignatureError, MalformedNoteError):
                return _reply(403, "no valid signature from a trusted log key\n")
            if req.old_size > cp.size:
                return _reply(400, f"old size {req.old_size} > checkpoint size {cp.size}\n")
            if req.old_size != stored_size:
                return _reply(409, f"{stored_size}\n", SIZE_CONTENT_TYPE)
            if req.old_size == 0:
                if req.proof:
                    return _reply(422, "the proof must be empty when old is 0\n")
            elif req.old_size == cp.size:
                if req.proof:
                    return _reply(422, "the proof must be empty for equal sizes\n")
                if cp.root != stored_root:
                    _keep_evidence(tx, cp, stored_note or "", req.note, "same size, different root", _us(now))
                    return _reply(409, f"{stored_size}\n", SIZE_CONTENT_TYPE)
            else:
                assert stored_root is not None
                try:
                    verify_consistency(req.old_size, cp.size, stored_root, cp.root, req.proof)
                except InvalidProofError:
                    # The log signed a larger tree that nothing shows extends the one cosigned:
                    # a log rolled back and regrown differs here. Both notes are kept.
                    _keep_evidence(
                        tx,
                        cp,
                        stored_note or "",
                        req.note,
                        f"no consistency proof from the cosigned size {stored_size} to size {cp.size}",
                        _us(now),
                    )
                    return _reply(422, "consistency proof does not verify against stored root\n")
            if not tx.witness_cas(
                self.name, cp.origin, stored_size, cp.size, cp.root, req.note, _us(now)
            ):  # pragma: no cover - the row lock makes this unreachable
                return _reply(409, f"{stored_size}\n", SIZE_CONTENT_TYPE)
            line = self._signer.cosign(parsed.text, now=now)
        return _reply(200, line)

    def equivocations(self) -> list[Equivocation]:
        """Return the split-view evidence recorded by this witness's database."""
        with self._store.read() as tx:
            rows = tx.equivocations()
        return [
            Equivocation(o, s, a, b, d, datetime.fromtimestamp(t / 1e6, tz=UTC)) for o, s, a, b, d, t in rows
        ]
