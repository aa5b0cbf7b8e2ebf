"""The transparency log: sequencing, batched integration, CAS-guarded checkpoints, proofs.

Sequencing (``append``) durably assigns indices in one transaction; integration
(``integrate``) extends the RFC 9162 tree in batches, writing every completed
perfect subtree as an immutable row so that any proof is O(log n) row reads; the
signer signs a c2sp.org/tlog-checkpoint only through a persisted compare-and-swap
on the last signed (size, root).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from ledger.commit import CommitState, commit_state
from ledger.cosignature import open_cosignatures
from ledger.entry import MAX_ENTRY_BYTES, AppendResult, DisclosureEntry, StoredEntry
from ledger.errors import (
    CheckpointConflictError,
    ConfigurationError,
    EntryNotFoundError,
    EquivocationError,
    IdempotencyConflictError,
    InvalidEntryError,
    InvalidProofError,
    LedgerError,
    NotCheckpointedError,
    StorageError,
    TreeSizeError,
)
from ledger.hashing import EMPTY_ROOT, CompactRange, leaf_hash
from ledger.note import NoteSigner, NoteVerifier
from ledger.policy import WitnessPolicy
from ledger.proofs import consistency_proof_from, inclusion_proof_from, verify_consistency
from ledger.query import EntryFilter, agent_key, provenance_agents
from ledger.receipt import Receipt
from ledger.storage.repository import CheckpointRow, EntryRow, LedgerStore, Tx
from ledger.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    encode_entry_bundle,
    parse_tile_path,
)
from ledger.witness import Equivocation, format_add_checkpoint

__all__ = ["TransparencyLog", "FsckReport", "IntegratedBatch", "Watermarks", "DEFAULT_INTEGRATION_BATCH"]

DEFAULT_INTEGRATION_BATCH = 65_536
"""Leaves integrated per database transaction by :meth:`TransparencyLog.integrate`."""

_ROLES = ("fields_requested", "fields_released", "fields_stripped")


@dataclass(frozen=True)
class IntegratedBatch:
    """What :meth:`TransparencyLog.append_integrated` committed.

    Attributes:
        results: one :class:`AppendResult` per input entry, in input order.
        checkpoint: the signed checkpoint covering every entry of the batch.
        receipts: one c2sp.org/tlog-proof :class:`Receipt` per entry, against
            ``checkpoint`` (in input order; a duplicate's receipt proves its
            earlier index).
    """

    results: list[AppendResult]
    checkpoint: SignedCheckpoint
    receipts: list[Receipt]


def _indexed(e: DisclosureEntry) -> tuple[dict[str, object], list[tuple[int, str]]]:
    """The query columns stored beside an entry: ``ledger_entries`` columns and field rows.

    They are derived from the entry alone, so :meth:`TransparencyLog.verify` can
    recompute them and catch a database edit that hides an entry from filtered
    queries.
    """
    columns = {
        "kind": e.kind,
        "time_us": _us(e.timestamp()),
        "provider_org": e.provider_org,
        "requester_org": e.requester_org,
        "requester_agent": e.requester_agent,
        "provider_agent": e.provider_agent,
        "contract_id": e.contract_id,
        "purpose": e.purpose,
        "decision": e.decision,
    }
    fields = [(role, f) for role, name in enumerate(_ROLES) for f in dict.fromkeys(getattr(e, name))]
    return columns, fields


def _agent_rows(index: int, e: DisclosureEntry) -> list[dict]:
    return [{"agent_sha256": agent_key(a), "idx": index} for a in provenance_agents(e.extra)]


def _us(dt: datetime) -> int:
    if dt.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return int(round(dt.timestamp() * 1_000_000))


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


@dataclass(frozen=True)
class Watermarks:
    """How far each commit state reaches, in entries (index i is in a state iff i < size).

    Attributes:
        sequenced: Entries with a durable index (the log's ``size()``).
        integrated: Entries covered by the stored tree.
        checkpointed: Size of the largest signed checkpoint.
        witnessed: Size of the largest checkpoint meeting the witness quorum.

    """

    sequenced: int
    integrated: int
    checkpointed: int
    witnessed: int


@dataclass(frozen=True)
class FsckReport:
    """The result of :meth:`TransparencyLog.verify` (re-derivation of every hash).

    Attributes:
        ok: ``True`` iff no problem was found.
        entries_checked: Entries whose leaf hash was recomputed.
        integrated_size: Tree size recorded by integration.
        checkpoints_checked: Signed checkpoints re-verified.
        first_bad_index: Smallest entry index implicated in a problem, or ``None``.
        problems: Human-readable problem descriptions ("expected X, got Y").

    """

    ok: bool
    entries_checked: int
    integrated_size: int
    checkpoints_checked: int
    first_bad_index: int | None
    problems: tuple[str, ...] = field(default_factory=tuple)


class TransparencyLog:
    """An RFC 9162 / C2SP transparency log of :class:`DisclosureEntry` over SQLAlchemy.

    Use :meth:`open`; the constructor takes an already migrated store.

    Args:
        store: The storage.
        origin: Log origin (checkpoint first line).
        signer: The log's Ed25519 note signer.

    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        origin: str,
        signer: NoteSigner,
        witness_policy: WitnessPolicy | None = None,
    ) -> None:
        self._store = store
        self._origin = origin
        self._signer = signer
        self._policy = witness_policy
        self._verifier = NoteVerifier.from_vkey(signer.vkey)
        Checkpoint(origin, 0, EMPTY_ROOT)  # validates the origin
        if signer.name != origin:
            # c2sp.org/tlog-policy: a log key's name MUST be the log's origin.
            raise ConfigurationError(
                f"the log key is named {signer.name!r}, the origin is {origin!r}",
                metadata={"key_name": signer.name, "origin": origin},
            )

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        origin: str,
        signer: NoteSigner,
        witness_policy: WitnessPolicy | None = None,
        now: datetime | None = None,
    ) -> TransparencyLog:
        """Open (creating tables and state if needed) the log stored at ``database_url``.

        Runs the Alembic migrations (version table ``ledger_alembic_version``).

        Args:
            database_url: SQLAlchemy URL (SQLite file or PostgreSQL via psycopg 3).
            origin: Log origin; must match the stored one for an existing log.
            signer: Log key; must match the stored vkey for an existing log.
            witness_policy: Witness keys and quorum (c2sp.org/tlog-policy) deciding
                when a checkpoint, and the entries it covers, are WITNESSED.
            now: Creation time for a fresh log (defaults to the current time).

        Returns:
            The open log.

        Raises:
            ConfigurationError: If the stored origin or key differ, or the signer's key
                name is not ``origin`` (c2sp.org/tlog-policy requires them equal).
            StorageError: If the database cannot be opened or migrated.
            MalformedCheckpointError: If ``origin`` is not a valid origin.

        """
        store = LedgerStore.open(database_url)
        try:
            log = cls(store, origin=origin, signer=signer, witness_policy=witness_policy)
            log._init_state(_now(now))
        except BaseException:
            store.close()
            raise
        return log

    def _init_state(self, now: datetime) -> None:
        for attempt in range(2):
            try:
                with self._store.write() as tx:
                    meta = tx.meta()
                    if meta is None:
                        tx.init_singletons(self._origin, self._signer.vkey, EMPTY_ROOT, _us(now))
                        return
                break
            except StorageError:
                if attempt:
                    raise
        origin, vkey = meta
        if origin != self._origin:
            raise ConfigurationError(
                f"log origin is {origin!r}, opened as {self._origin!r}",
                metadata={"expected": origin, "got": self._origin},
            )
        if vkey != self._signer.vkey:
            raise ConfigurationError(
                "log was created with another signing key",
                metadata={"expected": vkey, "got": self._signer.vkey},
            )

    def close(self) -> None:
        """Release database connections."""
        self._store.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def origin(self) -> str:
        """The log origin."""
        return self._origin

    @property
    def verifier(self) -> NoteVerifier:
        """The log's note verifier (its public key)."""
        return self._verifier

    @property
    def witness_policy(self) -> WitnessPolicy | None:
        """The witness policy in force, if any."""
        return self._policy

    def set_witness_policy(self, policy: WitnessPolicy | None) -> None:
        """Replace the witness policy (applies to cosignatures added from now on)."""
        self._policy = policy

    @property
    def store(self) -> LedgerStore:
        """The underlying storage (for the node's own tables and tests)."""
        return self._store

    # ------------------------------------------------------------------ sequencing
    def append(
        self, entries: Sequence[DisclosureEntry], *, now: datetime | None = None
    ) -> list[AppendResult]:
        """Durably assign indices to entries (one transaction, committed before returning).

        ``disclosure_id`` is an idempotency key: an id already logged with the same
        content is answered from the *stored* entry with ``duplicate=True``.

        Args:
            entries: Entries to append, in order.
            now: Sequencing time (defaults to the current time).

        Returns:
            One :class:`AppendResult` per input entry, in input order.

        Raises:
            InvalidEntryError: If an item is not a :class:`DisclosureEntry` or its
                canonical bytes exceed 65,535 bytes.
            IdempotencyConflictError: If a ``disclosure_id`` is reused with other content.
            StorageError: If the database fails (nothing is written).
            ValueError: If ``now`` is a naive datetime.

        """
        now_us = _us(_now(now))
        prepared = self._prepare(entries)
        if not prepared:
            return []
        with self._store.write() as tx:
            return self._sequence(tx, prepared, now_us)

    def append_integrated(
        self, entries: Sequence[DisclosureEntry], *, now: datetime | None = None
    ) -> IntegratedBatch:
        """Sequence, integrate and sign in one transaction: one durable commit for a batch.

        The same three steps as :meth:`append` then :meth:`integrate` (same
        checks, same compare-and-swap guard on the last signed checkpoint),
        committed together, so a batch whose callers all want receipts costs
        one commit instead of three. All or nothing: if integration or the
        signature is refused, the appended entries are rolled back too and
        nothing is acknowledged. Entries sequenced earlier and not yet
        integrated (appended without a receipt) are integrated in the same
        transaction; the node's witnessing loop integrates periodically, so
        they are few.

        Args:
            entries: Entries to append, in order (may be empty: then only the
                waiting entries are integrated).
            now: Sequencing and signing time (defaults to the current time).

        Returns:
            An :class:`IntegratedBatch`: one :class:`AppendResult` per input
            entry (input order), the signed checkpoint covering all of them,
            and one receipt per entry against that checkpoint (built in the
            same transaction, from the nodes it wrote).

        Raises:
            InvalidEntryError, IdempotencyConflictError: as :meth:`append`
                (nothing is written).
            CheckpointConflictError, StorageError: as :meth:`integrate`
                (nothing is written, the appends included).

        """
        now_us = _us(_now(now))
        prepared = self._prepare(entries)
        with self._store.write() as tx:
            results = self._sequence(tx, prepared, now_us) if prepared else []
            # lock order sequence → signer → tree, as integrate()'s signing takes signer → tree
            # (PostgreSQL: no deadlock with a concurrent integrator)
            tx.lock_signer()
            while self._extend(tx, DEFAULT_INTEGRATION_BATCH):
                pass
            signed = self._sign_in(tx, now_us)
            proofs = self._proofs(tx, [r.index for r in results], signed.checkpoint.size)
        receipts = [Receipt(r.index, p, signed.note) for r, p in zip(results, proofs, strict=True)]
        return IntegratedBatch(results, signed, receipts)

    def _prepare(self, entries: Sequence[DisclosureEntry]) -> list[tuple[DisclosureEntry, bytes, bytes]]:
        """Check entries and compute (entry, canonical bytes, leaf hash); no I/O."""
        prepared: list[tuple[DisclosureEntry, bytes, bytes]] = []
        first: dict[str, int] = {}
        for e in entries:
            if not isinstance(e, DisclosureEntry):
                raise InvalidEntryError(f"expected DisclosureEntry, got {type(e).__name__}")
            data = e.canonical_bytes()
            if len(data) > MAX_ENTRY_BYTES:
                raise InvalidEntryError(
                    f"entry is {len(data)} bytes, more than {MAX_ENTRY_BYTES}",
                    metadata={"disclosure_id": e.disclosure_id, "bytes": len(data)},
                )
            if e.disclosure_id in first and prepared[first[e.disclosure_id]][1] != data:
                raise IdempotencyConflictError(
                    "disclosure_id appears twice in the batch with different content",
                    metadata={"disclosure_id": e.disclosure_id},
                )
            first.setdefault(e.disclosure_id, len(prepared))
            prepared.append((e, data, leaf_hash(data)))
        return prepared

    @staticmethod
    def _sequence(
        tx: Tx, prepared: list[tuple[DisclosureEntry, bytes, bytes]], now_us: int
    ) -> list[AppendResult]:
        """Assign indices inside an open write transaction (see :meth:`append`)."""
        nxt = tx.lock_sequence()
        stored = tx.find_by_ids(list(dict.fromkeys(e.disclosure_id for e, _, _ in prepared)))
        results: list[AppendResult] = []
        assigned: dict[str, AppendResult] = {}
        rows: list[dict] = []
        field_rows: list[dict] = []
        agent_rows: list[dict] = []
        for e, data, lh in prepared:
            did = e.disclosure_id
            old = stored.get(did)
            if old is not None:
                if old.data != data:
                    raise IdempotencyConflictError(
                        f"disclosure_id {did!r} is already logged at index {old.index} "
                        "with different content",
                        metadata={"disclosure_id": did, "index": old.index},
                    )
                results.append(AppendResult(old.index, old.leaf_hash, True))
                continue
            if did in assigned:
                prev = assigned[did]
                results.append(AppendResult(prev.index, prev.leaf_hash, True))
                continue
            res = AppendResult(nxt, lh, False)
            assigned[did] = res
            results.append(res)
            columns, fields = _indexed(e)
            rows.append(
                {
                    "idx": nxt,
                    "disclosure_id": did,
                    "leaf_hash": lh,
                    "data": data,
                    "sequenced_at_us": now_us,
                    **columns,
                }
            )
            field_rows.extend({"idx": nxt, "role": role, "field": f} for role, f in fields)
            agent_rows.extend(_agent_rows(nxt, e))
            nxt += 1
        if rows:
            tx.insert_entries(rows, field_rows, agent_rows)
            tx.set_sequence(nxt)
        return results

    # ------------------------------------------------------------------ integration
    def integrate(
        self, *, now: datetime | None = None, batch_size: int = DEFAULT_INTEGRATION_BATCH
    ) -> SignedCheckpoint:
        """Integrate every sequenced entry into the tree and sign a checkpoint.

        The tree is extended in transactions of at most ``batch_size`` leaves; the
        signature goes through the compare-and-swap guard on the last signed
        (size, root): it never signs a smaller size, nor a second root for a size,
        and it checks consistency from the last signed root before signing. If
        nothing new was integrated, the existing checkpoint is returned unsigned-again.

        Args:
            now: Signing time recorded with the checkpoint (defaults to now).
            batch_size: Leaves per integration transaction (entries).

        Returns:
            The latest signed checkpoint (covering every entry sequenced before the call).

        Raises:
            CheckpointConflictError: If the CAS guard refuses (concurrent signer,
                rollback, or a different root for a signed size).
            StorageError: If storage is corrupt (missing nodes, gaps) or fails.

        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        while self._integrate_batch(batch_size):
            pass
        return self._sign(_us(_now(now)))

    def _integrate_batch(self, batch_size: int) -> bool:
        with self._store.write() as tx:
            return self._extend(tx, batch_size)

    def _extend(self, tx: Tx, batch_size: int) -> bool:
        """Integrate up to ``batch_size`` waiting leaves in ``tx``; True if more may wait."""
        size, _ = tx.lock_tree()
        leaves = tx.leaf_hashes(size, size + batch_size)
        if not leaves:
            return False
        if leaves[0][0] != size or leaves[-1][0] != size + len(leaves) - 1:
            raise StorageError(
                "sequenced entries are not contiguous",
                metadata={"expected_first": size, "got_first": leaves[0][0]},
            )
        rng = self._compact_range(tx, size)
        made = rng.extend(h for _, h in leaves)
        tx.insert_nodes(made)
        tx.set_tree(rng.size, rng.root())
        return len(leaves) == batch_size

    @staticmethod
    def _compact_range(tx: Tx, size: int) -> CompactRange:
        keys = CompactRange.nodes_for_size(size)
        got = tx.get_nodes(keys)
        missing = [k for k in keys if k not in got]
        if missing:
            raise StorageError(
                "tree nodes are missing", metadata={"level": missing[0][0], "index": missing[0][1]}
            )
        return CompactRange(size, [got[k] for k in keys])

    def _sign(self, now_us: int) -> SignedCheckpoint:
        with self._store.write() as tx:
            return self._sign_in(tx, now_us)

    def _sign_in(self, tx: Tx, now_us: int) -> SignedCheckpoint:
        """Sign the tree in ``tx`` through the compare-and-swap guard (see :meth:`integrate`)."""
        last = tx.lock_signer()
        size, root = tx.lock_tree()
        if size < last[0]:
            raise CheckpointConflictError(
                f"refusing to sign size {size}: size {last[0]} is already signed",
                metadata={"signed_size": last[0], "size": size},
            )
        if size == last[0]:
            if root != last[1]:
                raise CheckpointConflictError(
                    f"refusing to sign a second root for size {size}",
                    metadata={"size": size, "signed_root": last[1].hex(), "root": root.hex()},
                )
            row = tx.checkpoint_at(size)
            if row is None:
                raise StorageError("signed checkpoint row is missing", metadata={"size": size})
            return self._signed(tx, row)
        if last[0] > 0:
            proof = consistency_proof_from(last[0], size, tx.get_nodes)
            try:
                verify_consistency(last[0], size, last[1], root, proof)
            except InvalidProofError as exc:
                raise CheckpointConflictError(
                    "new tree is not consistent with the last signed checkpoint",
                    metadata={"signed_size": last[0], "size": size},
                ) from exc
        cp = Checkpoint(self._origin, size, root)
        note = self._signer.sign(cp.body())
        if not tx.cas_signer(last, (size, root)):
            raise CheckpointConflictError(
                "another signer moved the checkpoint concurrently",
                metadata={"size": size},
            )
        tx.insert_checkpoint(size, root, note, now_us)
        return SignedCheckpoint(cp, note)

    def _signed(self, tx: Tx, row: CheckpointRow) -> SignedCheckpoint:
        note = row.note + "".join(line for *_, line in tx.cosignatures(row.size))
        return SignedCheckpoint(Checkpoint(self._origin, row.size, row.root), note)

    # ------------------------------------------------------------------ reads
    def latest_checkpoint(self, *, witnessed: bool = False) -> SignedCheckpoint | None:
        """Return the largest signed checkpoint (with stored cosignature lines), if any.

        Args:
            witnessed: Only consider checkpoints that met the witness quorum.

        """
        with self._store.read() as tx:
            row = tx.latest_checkpoint(witnessed=witnessed)
            return None if row is None else self._signed(tx, row)

    def checkpoint(self, size: int) -> SignedCheckpoint | None:
        """Return the signed checkpoint of exactly ``size`` entries, if one was signed."""
        with self._store.read() as tx:
            row = tx.checkpoint_at(size)
            return None if row is None else self._signed(tx, row)

    def size(self) -> int:
        """Return the number of sequenced entries."""
        with self._store.read() as tx:
            return tx.next_index()

    def watermarks(self) -> Watermarks:
        """Return the sizes reached by each commit state (one consistent read)."""
        with self._store.read() as tx:
            return Watermarks(*tx.watermarks())

    def integrated_size(self) -> int:
        """Return the number of entries covered by the stored tree."""
        with self._store.read() as tx:
            return tx.integrated_size()

    def _check_size(self, tx: Tx, tree_size: int) -> None:
        integrated = tx.integrated_size()
        if not 0 <= tree_size <= integrated:
            raise TreeSizeError(
                f"tree size {tree_size} is beyond the integrated size {integrated}",
                metadata={"tree_size": tree_size, "integrated_size": integrated},
            )

    def _nodes(self, tx: Tx):
        def get(keys):
            got = tx.get_nodes(keys)
            if len(got) != len(keys):
                raise StorageError("tree nodes are missing for a proof")
            return got

        return get

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        """Return the RFC 9162 §2.1.3.1 inclusion proof of ``index`` in the tree of ``tree_size``.

        Reads O(log n) immutable node rows in one query.

        Returns:
            32-byte hashes, leaf sibling first.

        Raises:
            TreeSizeError: If ``tree_size`` exceeds the integrated size or
                ``index >= tree_size``.

        """
        with self._store.read() as tx:
            self._check_size(tx, tree_size)
            return inclusion_proof_from(index, tree_size, self._nodes(tx))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Return the RFC 9162 §2.1.4.1 consistency proof between two tree sizes.

        Raises:
            TreeSizeError: If ``size2`` exceeds the integrated size or ``size1 > size2``.

        """
        with self._store.read() as tx:
            self._check_size(tx, size2)
            return consistency_proof_from(size1, size2, self._nodes(tx))

    def receipt(self, index: int, *, witnessed: bool = False) -> Receipt:
        """Return a C2SP tlog-proof receipt for ``index`` against the latest covering checkpoint.

        The checkpoint note carries every stored witness cosignature.

        Args:
            index: Entry index.
            witnessed: Use the latest checkpoint that met the witness quorum.

        Raises:
            EntryNotFoundError: If no entry has this index.
            NotCheckpointedError: If no (witnessed) checkpoint covers it yet.

        """
        with self._store.read() as tx:
            if index < 0 or index >= tx.next_index():
                raise EntryNotFoundError(f"no entry at index {index}", metadata={"index": index})
            row = tx.latest_checkpoint(min_size=index + 1, witnessed=witnessed)
            if row is None:
                raise NotCheckpointedError(
                    f"no {'witnessed ' if witnessed else ''}checkpoint covers index {index} yet",
                    metadata={"index": index},
                )
            proof = inclusion_proof_from(index, row.size, self._nodes(tx))
            signed = self._signed(tx, row)
        return Receipt(index, tuple(proof), signed.note)

    def receipts(self, indices: Sequence[int]) -> list[Receipt]:
        """Receipts for several entries against one checkpoint, in one read transaction.

        All receipts are relative to the latest checkpoint (which must cover
        every index); the tree node rows the proofs need are fetched once
        (consecutive leaves share most of their paths), so a batch of k
        receipts costs about one receipt plus k proof assemblies.

        Raises:
            EntryNotFoundError: an index has no entry.
            NotCheckpointedError: the latest checkpoint does not cover every index.
        """
        if not indices:
            return []
        with self._store.read() as tx:
            top = max(indices)
            if min(indices) < 0 or top >= tx.next_index():
                raise EntryNotFoundError("no entry at some index", metadata={"index": top})
            row = tx.latest_checkpoint(min_size=top + 1, witnessed=False)
            if row is None:
                raise NotCheckpointedError("no checkpoint covers every index yet", metadata={"index": top})
            signed = self._signed(tx, row)
            proofs = self._proofs(tx, indices, row.size)
            return [Receipt(i, p, signed.note) for i, p in zip(indices, proofs, strict=True)]

    def _proofs(self, tx: Tx, indices: Sequence[int], tree_size: int) -> list[tuple[bytes, ...]]:
        """Inclusion proofs of ``indices`` in the tree of ``tree_size``, each node row read once."""
        fetch = self._nodes(tx)
        cache: dict[tuple[int, int], bytes] = {}

        def cached(keys):
            missing = [k for k in keys if k not in cache]
            if missing:
                cache.update(fetch(missing))
            return {k: cache[k] for k in keys}

        return [tuple(inclusion_proof_from(i, tree_size, cached)) for i in indices]

    def _stored(self, tx: Tx, row: EntryRow, marks: tuple[int, int, int, int]) -> StoredEntry:
        entry = DisclosureEntry.from_canonical_bytes(row.data)
        state = commit_state(
            row.index,
            integrated_size=marks[1],
            checkpoint_size=marks[2],
            witnessed_size=marks[3],
        )
        return StoredEntry(row.index, row.leaf_hash, entry, _from_us(row.sequenced_at_us), state)

    def get(self, index: int) -> StoredEntry:
        """Return the entry at ``index`` with its current commit state.

        Raises:
            EntryNotFoundError: If there is no such entry.

        """
        with self._store.read() as tx:
            row = tx.entry(index)
            if row is None:
                raise EntryNotFoundError(f"no entry at index {index}", metadata={"index": index})
            return self._stored(tx, row, tx.watermarks())

    def find(self, disclosure_id: str) -> StoredEntry | None:
        """Return the entry logged with ``disclosure_id``, or ``None``."""
        with self._store.read() as tx:
            row = tx.entry_by_id(disclosure_id)
            return None if row is None else self._stored(tx, row, tx.watermarks())

    def state(self, index: int) -> CommitState:
        """Return the commit state of ``index``.

        Raises:
            EntryNotFoundError: If there is no such entry.

        """
        return self.get(index).state

    def query(self, flt: EntryFilter) -> list[StoredEntry]:
        """Return at most ``flt.limit`` entries matching ``flt``, by index (descending: ``newest_first``)."""
        bounds = (
            None if flt.since is None else _us(flt.since),
            None if flt.until is None else _us(flt.until),
        )
        with self._store.read() as tx:
            marks = tx.watermarks()
            return [self._stored(tx, r, marks) for r in tx.query(flt, time_bounds=bounds)]

    # ------------------------------------------------------------------ tiles
    def read_tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """Return a C2SP tlog-tiles tile: ``width`` 32-byte hashes, from immutable node rows.

        Args:
            level: Tile level (tree height ``8 * level``), 0..7 in practice.
            index: Tile index N.
            width: 256 for a full tile, 1..255 for a partial one.

        Returns:
            ``32 * width`` bytes.

        Raises:
            TreeSizeError: If the integrated tree does not yet contain those hashes.

        """
        if not 0 <= level <= 7 or not 1 <= width <= TILE_WIDTH or index < 0:
            raise TreeSizeError(
                "tile out of range", metadata={"level": level, "index": index, "width": width}
            )
        height = TILE_HEIGHT * level
        lo = index * TILE_WIDTH
        with self._store.read() as tx:
            rows = tx.node_range(height, lo, lo + width)
        if len(rows) != width:
            raise TreeSizeError(
                f"tile {level}/{index} of width {width} is not available",
                metadata={"level": level, "index": index, "width": width},
            )
        return b"".join(h for _, h in rows)

    def read_entry_bundle(self, index: int, width: int = TILE_WIDTH) -> bytes:
        """Return a tlog-tiles entry bundle (uint16-BE length-prefixed canonical entries).

        Only integrated entries are served (a bundle matches its level-0 tile).

        Raises:
            TreeSizeError: If the entries are not all integrated yet.

        """
        if not 1 <= width <= TILE_WIDTH or index < 0:
            raise TreeSizeError("entry bundle out of range", metadata={"index": index})
        lo = index * TILE_WIDTH
        with self._store.read() as tx:
            if lo + width > tx.integrated_size():
                raise TreeSizeError(
                    f"entry bundle {index} of width {width} is not integrated yet",
                    metadata={"index": index, "width": width},
                )
            rows = list(tx.iter_entries(lo, lo + width))
        return encode_entry_bundle([r.data for r in rows])

    def read_path(self, path: str) -> tuple[bytes, str]:
        """Serve a tlog-tiles resource by path (``checkpoint``, ``tile/…``).

        Returns:
            ``(body, content type)``.

        Raises:
            MalformedError: If the path is not a tlog-tiles path.
            NotCheckpointedError: For ``checkpoint`` before the first signature.
            TreeSizeError: If the tile or bundle is not available.

        """
        if path == "checkpoint":
            signed = self.latest_checkpoint()
            if signed is None:
                raise NotCheckpointedError("no checkpoint signed yet")
            return signed.note.encode("utf-8"), "text/plain; charset=utf-8"
        ref = parse_tile_path(path)
        if ref.level is None:
            return self.read_entry_bundle(ref.index, ref.width), "application/octet-stream"
        return self.read_tile(ref.level, ref.index, ref.width), "application/octet-stream"

    # ------------------------------------------------------------------ witnessing
    def add_checkpoint_request(self, old_size: int, *, size: int | None = None) -> bytes:
        """Build a c2sp.org/tlog-witness add-checkpoint body for a signed checkpoint.

        Args:
            old_size: The size the witness last cosigned (0 if unknown; on a 409
                the witness answers with its size: retry with it).
            size: Checkpoint size to submit (default: the latest checkpoint).

        Raises:
            NotCheckpointedError: If there is no such checkpoint.
            TreeSizeError: If ``old_size`` exceeds the checkpoint size.

        """
        with self._store.read() as tx:
            row = tx.latest_checkpoint() if size is None else tx.checkpoint_at(size)
            if row is None:
                raise NotCheckpointedError("no such signed checkpoint", metadata={"size": size})
            if not 0 <= old_size <= row.size:
                raise TreeSizeError(
                    f"old size {old_size} is not in [0, {row.size}]",
                    metadata={"old_size": old_size, "size": row.size},
                )
            proof = consistency_proof_from(old_size, row.size, self._nodes(tx))
        return format_add_checkpoint(old_size, proof, row.note)

    def add_cosignatures(
        self,
        signed_checkpoint: SignedCheckpoint | str,
        cosignature_lines: str | bytes | Sequence[str],
        *,
        now: datetime | None = None,
    ) -> SignedCheckpoint:
        r"""Record witness cosignatures on one of this log's checkpoints.

        Lines are verified against the witness policy's keys over the stored
        checkpoint body; lines from unknown keys are ignored. When the stored
        cosignatures meet the policy's quorum, the checkpoint (and every entry it
        covers) becomes WITNESSED.

        Args:
            signed_checkpoint: The checkpoint the witnesses cosigned (signed by this log).
            cosignature_lines: A witness's 200 response body, or lines ``"— name b64\\n"``.
            now: Current time (freshness of cosignatures, record time).

        Returns:
            The checkpoint with every stored cosignature line.

        Raises:
            ConfigurationError: If the log has no witness policy.
            InvalidSignatureError: If the checkpoint is not signed by this log, or a
                known witness's line fails.
            EquivocationError: If the checkpoint is validly signed by this log's key
                but differs from what the log stored for that size (evidence stored).
            NotCheckpointedError: If the log never signed a checkpoint of that size.

        """
        if self._policy is None:
            raise ConfigurationError("no witness policy configured for this log")
        now_dt = _now(now)
        note = signed_checkpoint if isinstance(signed_checkpoint, str) else signed_checkpoint.note
        signed = open_checkpoint(note, self._verifier, origin=self._origin)
        cp = signed.checkpoint
        if isinstance(cosignature_lines, bytes | bytearray):
            cosignature_lines = bytes(cosignature_lines).decode("utf-8")
        if isinstance(cosignature_lines, str):
            cosignature_lines = cosignature_lines.splitlines(keepends=True)
        lines = [ln if ln.endswith("\n") else ln + "\n" for ln in cosignature_lines if ln.strip()]
        with self._store.read() as tx:
            row = tx.checkpoint_at(cp.size)
        if row is None or row.root != cp.root:
            evidence = row.note if row is not None else ""
            err = EquivocationError(
                f"a checkpoint of size {cp.size} signed by this log's key is not the stored one",
                origin=self._origin,
                note_a=evidence,
                note_b=note,
                metadata={"size": cp.size},
            )
            self.record_equivocation(err, now=now_dt)
            if row is None and cp.size <= self.integrated_size():
                raise NotCheckpointedError(
                    f"this log never signed a checkpoint of size {cp.size}",
                    metadata={"size": cp.size},
                ) from err
            raise err
        _, verified = open_cosignatures(row.note + "".join(lines), self._policy.witnesses.values())
        now_us = _us(now_dt)
        with self._store.write() as tx:
            for c in verified:
                tx.upsert_cosignature(cp.size, c.name, c.key_id, c.timestamp, c.line, now_us)
            stored = tx.checkpoint_at(cp.size)
            assert stored is not None
            full = stored.note + "".join(line for *_, line in tx.cosignatures(cp.size))
            if not stored.witnessed and self._policy.satisfied_by(self._policy.counted(full, now=now_dt)):
                tx.mark_witnessed(cp.size)
            return SignedCheckpoint(Checkpoint(self._origin, cp.size, cp.root), full)

    def record_equivocation(self, error: EquivocationError, *, now: datetime | None = None) -> None:
        """Store equivocation evidence (both notes) so the node can report it."""
        with self._store.write() as tx:
            tx.insert_equivocation(
                error.origin,
                int(error.metadata.get("size", error.metadata.get("size1", "0"))),
                error.note_a,
                error.note_b,
                error.message,
                _us(_now(now)),
            )

    def equivocations(self) -> list[Equivocation]:
        """Return all stored equivocation evidence, oldest first."""
        with self._store.read() as tx:
            rows = tx.equivocations()
        return [Equivocation(o, s, a, b, d, _from_us(t)) for o, s, a, b, d, t in rows]

    # ------------------------------------------------------------------ fsck
    def verify(self, *, chunk: int = 16_384) -> FsckReport:
        """Re-derive every hash from storage (like Tessera's fsck) and report mismatches.

        Recomputes every leaf hash from the stored entry bytes, checks indices are
        contiguous, recomputes every query column, field row and provenance agent
        row from the entry (an edited column would hide the entry from filtered
        ``query`` calls),
        rebuilds every tree node and compares it with the stored rows, and
        re-verifies every signed checkpoint (signature and root).

        Args:
            chunk: Leaves processed per read (entries).

        Returns:
            The report; ``first_bad_index`` names the first mismatching entry index.

        Raises:
            StorageError: If the database cannot be read.

        """
        problems: list[str] = []
        bad: list[int] = []  # entry indices implicated directly
        bad_nodes: list[tuple[int, int]] = []  # (level, first leaf) of mismatching nodes

        def problem(msg: str, index: int | None = None, *, level: int = 0) -> None:
            if len(problems) < 100:
                problems.append(msg)
            if index is not None:
                if level:
                    bad_nodes.append((level, index))
                else:
                    bad.append(index)

        with self._store.read() as tx:
            nxt, tsize, _, _ = tx.watermarks()
            tree_root = tx.tree_root()
            cps = tx.all_checkpoints()
            cp_by_size = {c.size: c for c in cps}
            rng = CompactRange()
            expected = 0
            checked = 0
            cps_checked = 0
            if 0 in cp_by_size:
                cps_checked += self._check_cp(cp_by_size[0], EMPTY_ROOT, problem)
            pending: list[tuple[int, int, bytes]] = []
            columns_iter = tx.iter_indexed_columns(0, nxt, chunk=chunk)
            expected_field_rows = 0
            expected_agent_rows = 0

            def flush() -> None:
                by_level: dict[int, list[tuple[int, bytes]]] = {}
                for lv, ix, h in pending:
                    by_level.setdefault(lv, []).append((ix, h))
                for lv, items in by_level.items():
                    stored = dict(tx.node_range(lv, items[0][0], items[-1][0] + 1))
                    for ix, h in items:
                        got = stored.get(ix)
                        if got != h:
                            what = "missing" if got is None else f"{got.hex()[:16]}…"
                            problem(
                                f"node (level {lv}, index {ix}): expected {h.hex()[:16]}…, got {what}",
                                ix << lv,
                                level=lv,
                            )
                pending.clear()

            for row in tx.iter_entries(0, nxt, chunk=chunk):
                while expected < row.index:
                    problem(f"entry {expected} is missing", expected)
                    expected += 1
                    if expected <= tsize:
                        rng.append(b"\0" * 32)  # keep positions; the root check will fail
                expected = row.index + 1
                checked += 1
                lh = leaf_hash(row.data)
                if lh != row.leaf_hash:
                    problem(
                        f"entry {row.index}: leaf hash column {row.leaf_hash.hex()[:16]}…, "
                        f"data hashes to {lh.hex()[:16]}…",
                        row.index,
                    )
                cidx, stored_cols = next(columns_iter, (None, {}))
                try:
                    entry = DisclosureEntry.from_canonical_bytes(row.data)
                    if entry.disclosure_id != row.disclosure_id:
                        problem(f"entry {row.index}: disclosure_id column differs", row.index)
                    if entry.canonical_bytes() != row.data:
                        problem(f"entry {row.index}: data is not canonical JCS", row.index)
                    want_cols, want_fields = _indexed(entry)
                    expected_field_rows += len(want_fields)
                    if cidx != row.index:
                        problem(f"entry {row.index}: indexed columns not found", row.index)
                    else:
                        for name, want in want_cols.items():
                            if stored_cols.get(name) != want:
                                problem(
                                    f"entry {row.index}: column {name} is {stored_cols.get(name)!r}, "
                                    f"the entry says {want!r}",
                                    row.index,
                                )
                        if stored_cols["fields"] != set(want_fields):
                            problem(
                                f"entry {row.index}: field rows differ from the entry's fields", row.index
                            )
                        want_agents = {agent_key(a) for a in provenance_agents(entry.extra)}
                        expected_agent_rows += len(want_agents)
                        if stored_cols["agents"] != want_agents:
                            problem(
                                f"entry {row.index}: provenance agent rows differ from the entry's "
                                "delegation provenance",
                                row.index,
                            )
                except LedgerError:
                    problem(f"entry {row.index}: data is not a disclosure entry", row.index)
                if row.index < tsize:
                    pending.extend(rng.append(lh))
                    if rng.size in cp_by_size:
                        cps_checked += self._check_cp(cp_by_size[rng.size], rng.root(), problem)
                if len(pending) >= 2 * chunk:
                    flush()
            while expected < nxt:
                problem(f"entry {expected} is missing", expected)
                expected += 1
            flush()
            if tx.count_entries() != nxt:
                problem(f"expected {nxt} entry rows, found {tx.count_entries()}")
            if not bad and tx.count_entry_fields() != expected_field_rows:
                problem(
                    f"expected {expected_field_rows} field rows, found {tx.count_entry_fields()} "
                    "(rows that no entry holds)"
                )
            if not bad and tx.count_entry_agents() != expected_agent_rows:
                problem(
                    f"expected {expected_agent_rows} provenance agent rows, found {tx.count_entry_agents()} "
                    "(rows that no entry holds)"
                )
            if rng.size == tsize and rng.root() != tree_root:
                problem(f"integrated root at size {tsize} differs from the recomputed root")
            for c in cps:
                if c.size > tsize:
                    problem(f"checkpoint of size {c.size} is beyond the integrated size {tsize}")
        # A leaf rewritten together with its level-0 row is only visible one level up:
        # the smallest mismatching subtree then names its first leaf.
        first = min(bad) if bad else (min(bad_nodes)[1] if bad_nodes else None)
        return FsckReport(not problems, checked, tsize, cps_checked, first, tuple(problems))

    def _check_cp(self, row: CheckpointRow, root: bytes, problem) -> int:
        try:
            text = self._verifier.verify(row.note)
            cp = Checkpoint.parse(text, origin=self._origin)
        except LedgerError as exc:
            problem(f"checkpoint {row.size}: {exc.diagnostics()}")
            return 1
        if cp.size != row.size or cp.root != row.root:
            problem(f"checkpoint {row.size}: signed body disagrees with its row")
        if root != cp.root:
            problem(
                f"checkpoint {row.size}: signed root {cp.root.hex()[:16]}…, entries give {root.hex()[:16]}…"
            )
        return 1
