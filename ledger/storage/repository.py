"""The ledger repository: every SQL statement of the package lives here.

Works on SQLite (WAL, ``synchronous=FULL``, busy timeout, ``BEGIN IMMEDIATE`` for
writes) and PostgreSQL (psycopg 3; singleton rows locked with ``SELECT … FOR
UPDATE``). Migrations run through Alembic with the ``ledger_alembic_version``
version table.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ledger.errors import StorageError
from ledger.query import agent_key
from ledger.storage import schema as s

__all__ = ["create_ledger_engine", "LedgerStore", "Tx", "CheckpointRow", "EntryRow", "INDEXED_COLUMNS"]

SQLITE_BUSY_TIMEOUT_S = 60
"""Seconds a SQLite writer waits for the database lock before failing."""

_IN_CHUNK = 500
TIME_WINDOW_PROBE = 10_000
"""Entries of a ``since``/``until`` window read from the ``(time_us, idx)`` index to bound a query's walk."""
_MIGRATION_LOCK_KEY = 0x1ED6E4  # pg_advisory_xact_lock key for ledger migrations


def create_ledger_engine(database_url: str) -> Engine:
    """Create an engine configured for the ledger's durability needs.

    SQLite: WAL journal, ``synchronous=FULL``, a busy timeout of
    :data:`SQLITE_BUSY_TIMEOUT_S` seconds and ``BEGIN IMMEDIATE`` for write
    transactions. PostgreSQL: pre-pinged pooled connections.

    Args:
        database_url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    Returns:
        The engine.

    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        memory = url.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        }
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:
            mode = conn.get_execution_options().get("ledger_begin", "IMMEDIATE")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


@dataclass(frozen=True)
class CheckpointRow:
    """A stored signed checkpoint (sizes in entries, times in microseconds since the epoch)."""

    size: int
    root: bytes
    note: str
    signed_at_us: int
    witnessed: bool


@dataclass(frozen=True)
class EntryRow:
    """A stored entry row."""

    index: int
    disclosure_id: str
    leaf_hash: bytes
    data: bytes
    sequenced_at_us: int


INDEXED_COLUMNS = (
    "kind",
    "time_us",
    "provider_org",
    "requester_org",
    "requester_agent",
    "provider_agent",
    "contract_id",
    "purpose",
    "decision",
)
"""Columns of ``ledger_entries`` derived from the entry for filtered queries (``ledger query``)."""


def _chunks(items: Sequence, n: int = _IN_CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


@functools.lru_cache(maxsize=16)
def _node_lookup(n: int):
    terms = " OR ".join(f"(level = :l{j} AND idx = :i{j})" for j in range(n))
    return text(f"SELECT level, idx, hash FROM ledger_nodes WHERE {terms}")


def _singleton(table, *cols) -> dict[bool, Any]:
    """``SELECT cols FROM table WHERE id = 1``, plain and ``FOR UPDATE`` (PostgreSQL)."""
    q = select(*cols).where(table.c.id == 1)
    return {False: q, True: q.with_for_update()}


# The write path's statements on the singleton rows, built once: SQLAlchemy then
# reuses their compiled form and cache keys instead of rebuilding them per batch.
_LOCK_SEQUENCE = _singleton(s.sequence, s.sequence.c.next_index)
_LOCK_TREE = _singleton(s.tree, s.tree.c.size, s.tree.c.root)
_LOCK_SIGNER = _singleton(s.signer, s.signer.c.size, s.signer.c.root)
_SET_SEQUENCE = update(s.sequence).where(s.sequence.c.id == 1).values(next_index=bindparam("next_index"))
_SET_TREE = update(s.tree).where(s.tree.c.id == 1).values(size=bindparam("size"), root=bindparam("root"))
_CAS_SIGNER = (
    update(s.signer)
    .where(
        s.signer.c.id == 1,
        s.signer.c.size == bindparam("old_size"),
        s.signer.c.root == bindparam("old_root"),
    )
    .values(size=bindparam("new_size"), root=bindparam("new_root"))
)


class Tx:
    """One database transaction of the ledger; methods are single SQL operations."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._pg = conn.dialect.name == "postgresql"

    # -- singleton coordination rows ------------------------------------------------
    def lock_sequence(self) -> int:
        """Lock the sequence counter row; return the next free index."""
        return int(self.conn.execute(_LOCK_SEQUENCE[self._pg]).one()[0])

    def set_sequence(self, next_index: int) -> None:
        """Store the next free index (caller holds the lock)."""
        self.conn.execute(_SET_SEQUENCE, {"next_index": next_index})

    def lock_tree(self) -> tuple[int, bytes]:
        """Lock the integration row; return ``(integrated size, root)``."""
        row = self.conn.execute(_LOCK_TREE[self._pg]).one()
        return int(row[0]), bytes(row[1])

    def integrated_size(self) -> int:
        """Return the integrated tree size (no lock)."""
        return int(self.conn.execute(select(s.tree.c.size)).scalar_one())

    def next_index(self) -> int:
        """Return the next free index, i.e. the number of sequenced entries (no lock)."""
        return int(self.conn.execute(select(s.sequence.c.next_index)).scalar_one())

    def tree_root(self) -> bytes:
        """Return the stored root at the integrated size (no lock)."""
        return bytes(self.conn.execute(select(s.tree.c.root)).scalar_one())

    def set_tree(self, size: int, root: bytes) -> None:
        """Store the integrated size and root (caller holds the lock)."""
        self.conn.execute(_SET_TREE, {"size": size, "root": root})

    def lock_signer(self) -> tuple[int, bytes]:
        """Lock the signer's CAS row; return the last signed ``(size, root)``."""
        row = self.conn.execute(_LOCK_SIGNER[self._pg]).one()
        return int(row[0]), bytes(row[1])

    def cas_signer(self, old: tuple[int, bytes], new: tuple[int, bytes]) -> bool:
        """Compare-and-swap the last signed ``(size, root)``; ``True`` if swapped."""
        res = self.conn.execute(
            _CAS_SIGNER, {"old_size": old[0], "old_root": old[1], "new_size": new[0], "new_root": new[1]}
        )
        return res.rowcount == 1

    def meta(self) -> tuple[str, str] | None:
        """Return ``(origin, log vkey)`` or ``None`` if the log is not initialised."""
        row = self.conn.execute(select(s.meta.c.origin, s.meta.c.log_vkey)).first()
        return None if row is None else (row[0], row[1])

    def init_singletons(self, origin: str, vkey: str, empty_root: bytes, now_us: int) -> None:
        """Insert the singleton rows of a fresh log."""
        self.conn.execute(insert(s.meta).values(id=1, origin=origin, log_vkey=vkey, created_at_us=now_us))
        self.conn.execute(insert(s.sequence).values(id=1, next_index=0))
        self.conn.execute(insert(s.tree).values(id=1, size=0, root=empty_root))
        self.conn.execute(insert(s.signer).values(id=1, size=-1, root=b""))

    # -- entries ----------------------------------------------------------------------
    def find_by_ids(self, ids: Sequence[str]) -> dict[str, EntryRow]:
        """Return stored entries by ``disclosure_id``."""
        out: dict[str, EntryRow] = {}
        e = s.entries.c
        for chunk in _chunks(list(ids)):
            q = select(e.idx, e.disclosure_id, e.leaf_hash, e.data, e.sequenced_at_us).where(
                e.disclosure_id.in_(chunk)
            )
            for r in self.conn.execute(q):
                out[r[1]] = EntryRow(int(r[0]), r[1], bytes(r[2]), bytes(r[3]), int(r[4]))
        return out

    def insert_entries(self, rows: list[dict], field_rows: list[dict], agent_rows: list[dict] = ()) -> None:
        """Insert entry rows, their field-name rows and their provenance agent rows."""
        if rows:
            self.conn.execute(insert(s.entries), rows)
        if field_rows:
            self.conn.execute(insert(s.entry_fields), field_rows)
        if agent_rows:
            self.conn.execute(insert(s.entry_agents), list(agent_rows))

    def entry(self, index: int) -> EntryRow | None:
        """Return the entry at ``index``."""
        return self._entry_where(s.entries.c.idx == index)

    def entry_by_id(self, disclosure_id: str) -> EntryRow | None:
        """Return the entry with ``disclosure_id``."""
        return self._entry_where(s.entries.c.disclosure_id == disclosure_id)

    def _entry_where(self, cond) -> EntryRow | None:
        e = s.entries.c
        r = self.conn.execute(
            select(e.idx, e.disclosure_id, e.leaf_hash, e.data, e.sequenced_at_us).where(cond)
        ).first()
        return None if r is None else EntryRow(int(r[0]), r[1], bytes(r[2]), bytes(r[3]), int(r[4]))

    def iter_entries(self, lo: int, hi: int, *, chunk: int = 5000) -> Iterator[EntryRow]:
        """Yield stored entries with ``lo <= index < hi`` in index order."""
        e = s.entries.c
        pos = lo
        while pos < hi:
            q = (
                select(e.idx, e.disclosure_id, e.leaf_hash, e.data, e.sequenced_at_us)
                .where(e.idx >= pos, e.idx < hi)
                .order_by(e.idx)
                .limit(chunk)
            )
            rows = self.conn.execute(q).all()
            if not rows:
                return
            for r in rows:
                yield EntryRow(int(r[0]), r[1], bytes(r[2]), bytes(r[3]), int(r[4]))
            pos = int(rows[-1][0]) + 1

    def iter_indexed_columns(self, lo: int, hi: int, *, chunk: int = 5000) -> Iterator[tuple[int, dict]]:
        """Yield ``(index, columns)`` for ``lo <= index < hi``: every column a query filters on.

        ``columns`` maps the ``ledger_entries`` index columns (``kind``, ``time_us``,
        organizations, agents, ``contract_id``, ``purpose``, ``decision``,
        ``disclosure_id``) to their stored values and ``"fields"`` to the set of
        ``(role, field)`` rows of ``ledger_entry_fields`` for that index, ``"agents"``
        to the set of ``ledger_entry_agents`` keys (agent SHA-256) for that index.
        """
        e = s.entries.c
        f = s.entry_fields.c
        a = s.entry_agents.c
        cols = [e.idx, e.disclosure_id, *(getattr(e, n) for n in INDEXED_COLUMNS)]
        pos = lo
        while pos < hi:
            rows = self.conn.execute(
                select(*cols).where(e.idx >= pos, e.idx < hi).order_by(e.idx).limit(chunk)
            ).all()
            if not rows:
                return
            top = int(rows[-1][0]) + 1
            fields: dict[int, set[tuple[int, str]]] = {}
            for r in self.conn.execute(select(f.idx, f.role, f.field).where(f.idx >= pos, f.idx < top)):
                fields.setdefault(int(r[0]), set()).add((int(r[1]), r[2]))
            agents: dict[int, set[bytes]] = {}
            for r in self.conn.execute(select(a.idx, a.agent_sha256).where(a.idx >= pos, a.idx < top)):
                agents.setdefault(int(r[0]), set()).add(bytes(r[1]))
            for r in rows:
                out = dict(zip(("disclosure_id", *INDEXED_COLUMNS), r[1:], strict=True))
                out["fields"] = fields.get(int(r[0]), set())
                out["agents"] = agents.get(int(r[0]), set())
                yield int(r[0]), out
            pos = top

    def count_entry_fields(self) -> int:
        """Return the number of ``ledger_entry_fields`` rows."""
        return int(self.conn.execute(select(func.count()).select_from(s.entry_fields)).scalar_one())

    def count_entry_agents(self) -> int:
        """Return the number of ``ledger_entry_agents`` rows."""
        return int(self.conn.execute(select(func.count()).select_from(s.entry_agents)).scalar_one())

    def leaf_hashes(self, lo: int, hi: int) -> list[tuple[int, bytes]]:
        """Return ``(index, leaf hash)`` for ``lo <= index < hi``, in index order."""
        e = s.entries.c
        q = select(e.idx, e.leaf_hash).where(e.idx >= lo, e.idx < hi).order_by(e.idx)
        return [(int(r[0]), bytes(r[1])) for r in self.conn.execute(q)]

    def count_entries(self) -> int:
        """Return the number of entry rows."""
        return int(self.conn.execute(select(func.count()).select_from(s.entries)).scalar_one())

    def query(self, flt, *, time_bounds: tuple[int | None, int | None]) -> list[EntryRow]:
        """Run an :class:`~ledger.query.EntryFilter` (times given in microseconds).

        A counterpart filter (``provider_org = X OR requester_org = X``), or else an
        agent filter, runs as index-ordered, limited selects (one per alternative)
        merged by index: an ``OR`` would make the database collect and sort every
        match before the ``LIMIT``. The column alternatives read the ``(column,
        idx)`` indexes of migration 0002; the agent filter's delegation-provenance
        alternative (``extra.root_agent``/``extra.chain_agents``) reads
        ``ledger_entry_agents`` by ``(agent_sha256, idx)`` (migration 0003). A
        ``since``/``until`` window first bounds the index range it can occupy
        (:meth:`_time_window`), so the index-ordered walk never crosses entries
        far outside the window.
        """
        since, until = time_bounds
        if since is None and until is None:
            return self._query(flt, flt.start_index, flt.end_index, since, until)
        return self._query_window(flt, since, until)

    def _query_window(self, flt, since: int | None, until: int | None) -> list[EntryRow]:
        """:meth:`query` with a ``since``/``until`` window, its walk bounded to the window's index range.

        Reads the ``(time_us, idx)`` index only. A window of at most
        :data:`TIME_WINDOW_PROBE` entries: its smallest and largest index bound
        the walk exactly. A larger window: first the newest (oldest, for ascending
        order) :data:`TIME_WINDOW_PROBE` indices of the range are tried, which
        answers a window that reaches them (``since`` an hour ago); otherwise the
        window's largest (smallest) index below the cursor, an index-only
        aggregate over the window, starts the walk.
        """
        e = s.entries.c
        time_conds = []
        if since is not None:
            time_conds.append(e.time_us >= since)
        if until is not None:
            time_conds.append(e.time_us < until)
        lo, hi = flt.start_index, flt.end_index
        probe = [
            int(r[0])
            for r in self.conn.execute(select(e.idx).where(*time_conds).limit(TIME_WINDOW_PROBE + 1))
        ]
        if len(probe) <= TIME_WINDOW_PROBE:
            inside = [i for i in probe if i >= lo and (hi is None or i < hi)]
            if not inside:
                return []
            return self._query(flt, min(inside), max(inside) + 1, since, until)
        # a large window: does it reach the first TIME_WINDOW_PROBE entries of the walk?
        if flt.newest_first:
            top = hi if hi is not None else self.next_index()
            near = (max(lo, top - TIME_WINDOW_PROBE), top)
        else:
            near = (lo, lo + TIME_WINDOW_PROBE if hi is None else min(hi, lo + TIME_WINDOW_PROBE))
        first = self._query(flt, near[0], near[1], since, until)
        if len(first) >= flt.limit:
            return first
        # ``idx + 0``: no index on idx for this aggregate, or the database walks the primary key
        # from the end until a row falls in the window (all rows newer than the window, for an old one);
        # the window's (time_us, idx) index answers it from the window's entries alone
        shifted = e.idx + 0
        bounded = [shifted >= lo, *([] if hi is None else [shifted < hi])]
        edge = (func.max if flt.newest_first else func.min)(shifted)
        got = self.conn.execute(select(edge).where(*time_conds, *bounded)).scalar_one()
        if got is None:
            return []
        return self._query(flt, *((lo, int(got) + 1) if flt.newest_first else (int(got), hi)), since, until)

    def _query(self, flt, lo: int, hi: int | None, since: int | None, until: int | None) -> list[EntryRow]:
        """:meth:`query` over the index range ``[lo, hi)`` (``hi`` ``None``: unbounded)."""
        e = s.entries.c
        conds = [e.idx >= lo]
        if hi is not None:
            conds.append(e.idx < hi)
        # one OR filter is split into index-ordered selects, one per alternative; any other stays an OR
        split: list[Any] | None = None
        if flt.counterpart_org is not None:
            split = [e.provider_org == flt.counterpart_org, e.requester_org == flt.counterpart_org]
        provenance = None
        if flt.agent_did is not None:
            a = s.entry_agents.c
            key = agent_key(flt.agent_did)
            provenance = (a, key)
            if split is None:
                split = [e.requester_agent == flt.agent_did, e.provider_agent == flt.agent_did]
            else:
                conds.append(
                    or_(
                        e.requester_agent == flt.agent_did,
                        e.provider_agent == flt.agent_did,
                        exists().where(a.agent_sha256 == key, a.idx == e.idx),
                    )
                )
                provenance = None
        for name in ("contract_id", "purpose", "decision", "kind"):
            value = getattr(flt, name)
            if value is not None:
                conds.append(getattr(e, name) == value)
        if flt.field is not None:
            f = s.entry_fields.c
            conds.append(exists().where(f.idx == e.idx, f.field == flt.field))
        if since is not None:
            conds.append(e.time_us >= since)
        if until is not None:
            conds.append(e.time_us < until)
        cols = (e.idx, e.disclosure_id, e.leaf_hash, e.data, e.sequenced_at_us)

        def ordered(c):
            return c.desc() if flt.newest_first else c

        if split is None:
            q = select(*cols).where(and_(*conds)).order_by(ordered(e.idx)).limit(flt.limit)
        else:
            parts = []
            for i, alternative in enumerate(split):
                # each row comes from the first alternative it matches (NULL counts as no match)
                earlier = [not_(func.coalesce(c, false())) for c in split[:i]]
                parts.append(
                    select(*cols)
                    .where(and_(*conds, alternative, *earlier))
                    .order_by(ordered(e.idx))
                    .limit(flt.limit)
                    .subquery()
                )
            if provenance is not None:
                # driven by the (agent_sha256, idx) primary key of the side table, read in index order
                a, key = provenance
                earlier = [not_(func.coalesce(c, false())) for c in split]
                bounds = [a.idx >= lo, *([] if hi is None else [a.idx < hi])]
                parts.append(
                    select(*cols)
                    .select_from(s.entry_agents.join(s.entries, e.idx == a.idx))
                    .where(a.agent_sha256 == key, *bounds, *conds, *earlier)
                    .order_by(ordered(a.idx))
                    .limit(flt.limit)
                    .subquery()
                )
            both = union_all(*(select(*p.c) for p in parts)).subquery()
            q = select(*both.c).order_by(ordered(both.c.idx)).limit(flt.limit)
        return [EntryRow(int(r[0]), r[1], bytes(r[2]), bytes(r[3]), int(r[4])) for r in self.conn.execute(q)]

    # -- tree nodes -------------------------------------------------------------------
    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return the hashes of the perfect subtrees ``(level, index)`` that exist."""
        out: dict[tuple[int, int], bytes] = {}
        for chunk in _chunks(sorted(set(keys)), 200):
            # A textual OR of primary-key equalities: each term is an index lookup
            # (a row-value IN defeats SQLite's PK index). The key list is padded (the
            # last key repeated) to a power of two, so there are a handful of statement
            # texts and SQLAlchemy's compiled cache keeps every one of them (one text
            # per key count recompiled whenever the cache had evicted it).
            width = min(200, 1 << (len(chunk) - 1).bit_length())
            stmt = _node_lookup(width)
            params = {}
            for j in range(width):
                level, idx = chunk[min(j, len(chunk) - 1)]
                params[f"l{j}"] = level
                params[f"i{j}"] = idx
            for r in self.conn.execute(stmt, params):
                out[(int(r[0]), int(r[1]))] = bytes(r[2])
        return out

    def node_range(self, level: int, lo: int, hi: int) -> list[tuple[int, bytes]]:
        """Return ``(index, hash)`` of level-``level`` nodes with ``lo <= index < hi``."""
        n = s.nodes.c
        q = select(n.idx, n.hash).where(n.level == level, n.idx >= lo, n.idx < hi).order_by(n.idx)
        return [(int(r[0]), bytes(r[1])) for r in self.conn.execute(q)]

    def insert_nodes(self, rows: Iterable[tuple[int, int, bytes]]) -> None:
        """Insert immutable node rows ``(level, index, hash)``."""
        data = [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in rows]
        if data:
            self.conn.execute(insert(s.nodes), data)

    # -- checkpoints ------------------------------------------------------------------
    def insert_checkpoint(self, size: int, root: bytes, note: str, now_us: int) -> None:
        """Store a signed checkpoint."""
        self.conn.execute(
            insert(s.checkpoints).values(
                size=size, root=root, note=note, signed_at_us=now_us, witnessed=False
            )
        )

    def _cp(self, q) -> CheckpointRow | None:
        c = s.checkpoints.c
        r = self.conn.execute(
            q.with_only_columns(c.size, c.root, c.note, c.signed_at_us, c.witnessed)
        ).first()
        return None if r is None else CheckpointRow(int(r[0]), bytes(r[1]), r[2], int(r[3]), bool(r[4]))

    def latest_checkpoint(self, *, min_size: int = 0, witnessed: bool = False) -> CheckpointRow | None:
        """Return the largest checkpoint with ``size >= min_size`` (optionally witnessed)."""
        c = s.checkpoints.c
        q = select(c.size).where(c.size >= min_size)
        if witnessed:
            q = q.where(c.witnessed.is_(True))
        return self._cp(q.order_by(c.size.desc()).limit(1))

    def checkpoint_at(self, size: int) -> CheckpointRow | None:
        """Return the checkpoint of exactly ``size`` entries."""
        c = s.checkpoints.c
        return self._cp(select(c.size).where(c.size == size))

    def all_checkpoints(self) -> list[CheckpointRow]:
        """Return every checkpoint, smallest first."""
        c = s.checkpoints.c
        q = select(c.size, c.root, c.note, c.signed_at_us, c.witnessed).order_by(c.size)
        return [
            CheckpointRow(int(r[0]), bytes(r[1]), r[2], int(r[3]), bool(r[4])) for r in self.conn.execute(q)
        ]

    def mark_witnessed(self, size: int) -> None:
        """Flag the checkpoint of ``size`` as meeting the witness quorum."""
        self.conn.execute(update(s.checkpoints).where(s.checkpoints.c.size == size).values(witnessed=True))

    def watermarks(self) -> tuple[int, int, int, int]:
        """Return ``(next index, integrated size, checkpoint size, witnessed size)``."""
        c = s.checkpoints.c
        nxt = self.conn.execute(select(s.sequence.c.next_index)).scalar_one()
        size = self.conn.execute(select(s.tree.c.size)).scalar_one()
        cp = self.conn.execute(select(func.max(c.size))).scalar_one()
        wit = self.conn.execute(select(func.max(c.size)).where(c.witnessed.is_(True))).scalar_one()
        return int(nxt), int(size), int(cp or 0), int(wit or 0)

    # -- cosignatures and equivocations --------------------------------------------
    def cosignatures(self, size: int) -> list[tuple[str, bytes, int, str]]:
        """Return ``(witness, key id, timestamp, line)`` stored for the checkpoint of ``size``."""
        c = s.cosignatures.c
        q = select(c.witness, c.key_id, c.timestamp, c.line).where(c.size == size).order_by(c.witness)
        return [(r[0], bytes(r[1]), int(r[2]), r[3]) for r in self.conn.execute(q)]

    def upsert_cosignature(
        self, size: int, witness: str, key_id: bytes, timestamp: int, line: str, now_us: int
    ) -> None:
        """Store a cosignature line, keeping the newest one per (size, witness, key)."""
        c = s.cosignatures.c
        cond = and_(c.size == size, c.witness == witness, c.key_id == key_id)
        old = self.conn.execute(select(c.timestamp).where(cond)).first()
        if old is None:
            self.conn.execute(
                insert(s.cosignatures).values(
                    size=size,
                    witness=witness,
                    key_id=key_id,
                    timestamp=timestamp,
                    line=line,
                    recorded_at_us=now_us,
                )
            )
        elif int(old[0]) < timestamp:
            self.conn.execute(
                update(s.cosignatures)
                .where(cond)
                .values(timestamp=timestamp, line=line, recorded_at_us=now_us)
            )

    def insert_equivocation(
        self, origin: str, size: int, note_a: str, note_b: str, detail: str, now_us: int
    ) -> None:
        """Store equivocation evidence (both signed notes)."""
        self.conn.execute(
            insert(s.equivocations).values(
                origin=origin,
                size=size,
                note_a=note_a,
                note_b=note_b,
                detail=detail,
                detected_at_us=now_us,
            )
        )

    def count_equivocations(
        self, origin: str, *, note_a: str | None = None, note_b: str | None = None
    ) -> int:
        """Return how many evidence rows name ``origin`` (and, if given, exactly these notes)."""
        q = s.equivocations.c
        conds = [q.origin == origin]
        if note_a is not None:
            conds.append(q.note_a == note_a)
        if note_b is not None:
            conds.append(q.note_b == note_b)
        return int(self.conn.execute(select(func.count()).where(and_(*conds))).scalar_one())

    def equivocations(self) -> list[tuple[str, int, str, str, str, int]]:
        """Return ``(origin, size, note_a, note_b, detail, detected_at_us)`` rows."""
        q = s.equivocations.c
        rows = self.conn.execute(
            select(q.origin, q.size, q.note_a, q.note_b, q.detail, q.detected_at_us).order_by(q.id)
        )
        return [(r[0], int(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows]

    # -- witness state ------------------------------------------------------------------
    def witness_state(self, witness: str, origin: str, *, lock: bool) -> tuple | None:
        """Return ``(vkey, size, root, note)`` of a witness's log state (locked if asked)."""
        w = s.witness_logs.c
        q = select(w.vkey, w.size, w.root, w.note).where(w.witness == witness, w.origin == origin)
        if lock and self._pg:
            q = q.with_for_update()
        r = self.conn.execute(q).first()
        return None if r is None else (r[0], int(r[1]), None if r[2] is None else bytes(r[2]), r[3])

    def witness_add_log(self, witness: str, origin: str, vkey: str, now_us: int) -> None:
        """Register a log with a witness (size 0, no state) or update its vkey."""
        w = s.witness_logs.c
        cond = and_(w.witness == witness, w.origin == origin)
        if self.conn.execute(select(w.size).where(cond)).first() is None:
            self.conn.execute(
                insert(s.witness_logs).values(
                    witness=witness,
                    origin=origin,
                    vkey=vkey,
                    size=0,
                    root=None,
                    note=None,
                    updated_at_us=now_us,
                )
            )
        else:
            self.conn.execute(update(s.witness_logs).where(cond).values(vkey=vkey))

    def witness_cas(
        self,
        witness: str,
        origin: str,
        old_size: int,
        size: int,
        root: bytes,
        note: str,
        now_us: int,
    ) -> bool:
        """Compare-and-swap a witness's stored size; ``True`` if swapped."""
        w = s.witness_logs.c
        res = self.conn.execute(
            update(s.witness_logs)
            .where(w.witness == witness, w.origin == origin, w.size == old_size)
            .values(size=size, root=root, note=note, updated_at_us=now_us)
        )
        return res.rowcount == 1

    def witness_reset_log(self, witness: str, origin: str, now_us: int) -> int | None:
        """Forget what a witness cosigned for ``origin`` (size 0, no checkpoint; vkey kept).

        Returns the size it held, or None when the log is not configured.
        Equivocation evidence is not touched.
        """
        w = s.witness_logs.c
        cond = and_(w.witness == witness, w.origin == origin)
        row = self.conn.execute(select(w.size).where(cond)).first()
        if row is None:
            return None
        self.conn.execute(
            update(s.witness_logs).where(cond).values(size=0, root=None, note=None, updated_at_us=now_us)
        )
        return int(row[0])

    def witness_logs(self, witness: str) -> list[tuple[str, str, int]]:
        """Return ``(origin, vkey, size)`` of every log a witness knows."""
        w = s.witness_logs.c
        q = select(w.origin, w.vkey, w.size).where(w.witness == witness).order_by(w.origin)
        return [(r[0], r[1], int(r[2])) for r in self.conn.execute(q)]


class LedgerStore:
    """Owns the engine; hands out read and write transactions.

    Args:
        engine: Engine from :func:`create_ledger_engine`.

    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def open(cls, database_url: str, *, migrate: bool = True) -> LedgerStore:
        """Create the engine and (by default) run the Alembic migrations to head.

        Raises:
            StorageError: If the database cannot be reached or migrated.

        """
        try:
            store = cls(create_ledger_engine(database_url))
            if migrate:
                store.migrate()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot open ledger database: {exc.__class__.__name__}") from exc
        return store

    def migrate(self) -> None:
        """Upgrade the ledger schema to head (serialised across processes)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.connect() as conn:
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """Open a write transaction (SQLite ``BEGIN IMMEDIATE``); commit on success.

        Raises:
            StorageError: On any database failure (the transaction is rolled back).

        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(ledger_begin="IMMEDIATE")
                with conn.begin():
                    yield Tx(conn)
        except SQLAlchemyError as exc:
            raise StorageError(f"ledger database error: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """Open a read-only transaction (SQLite deferred ``BEGIN``: no write lock).

        Raises:
            StorageError: On any database failure.

        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(ledger_begin="DEFERRED")
                if self.dialect == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield Tx(conn)
        except SQLAlchemyError as exc:
            raise StorageError(f"ledger database error: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self.engine.dispose()
