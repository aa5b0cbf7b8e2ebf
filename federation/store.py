"""The node's own tables (agents, status list indices, persisted state).

SQLAlchemy 2 Core over the node database (SQLite in WAL mode by default,
PostgreSQL in production). The ledger keeps its own ``ledger_*`` tables in
the same database (see :mod:`ledger`). Only this module runs the node's SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine

from federation.errors import InvalidRequestError, NotFoundError

metadata = MetaData()
VERSION_TABLE = "node_alembic_version"

agents = Table(
    "node_agents",
    metadata,
    Column("did", String(200), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(100), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("trust_tier", Integer, nullable=False),
    Column("status_index", Integer, nullable=False, unique=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("suspended", Boolean, nullable=False, default=False),
    Column("credential", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

state = Table(
    "node_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


datasets = Table(
    "node_datasets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

dataset_records = Table(
    "node_dataset_records",
    metadata,
    Column("dataset", String(100), primary_key=True),
    Column("record_id", BigInteger, primary_key=True),
    Column("data", Text, nullable=False),
)

# ---------------------------------------------------------------- state the replicas share (0003)

sessions_t = Table(
    "node_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("peer_org", String(256), nullable=False),
    Column("agent_did", String(200), nullable=False),
    Column("agent_public_key", LargeBinary, nullable=False),
    Column("claims", Text, nullable=False),
    Column("credential_id", String(512), nullable=False),
    Column("delegation", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    # 0005: the counters a contract's session limits read, shared by the replicas
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("denials", BigInteger, nullable=False, server_default="0"),
    Column("released", Text, nullable=False, server_default="[]"),
)

local_sessions_t = Table(
    "node_local_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("peer_org", String(256), nullable=False),
    Column("agent_did", String(200), nullable=False),
    Column("agent_public_key", LargeBinary, nullable=False),
    Column("expires_at", Float, nullable=False),
)

challenges_t = Table(
    "node_challenges",
    metadata,
    Column("challenge", String(64), primary_key=True),
    Column("owner", String(256), nullable=False),
    Column("subject", String(700), nullable=False),
    Column("expires_at", Float, nullable=False),
)

nonces_t = Table(
    "node_nonces",
    metadata,
    Column("nonce", String(128), primary_key=True),
    Column("seen_at", Float, nullable=False),
)

leases_t = Table(
    "node_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("epoch", BigInteger, nullable=False),
)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, synchronous=FULL and a busy timeout.

    A SQLite database file is created owner-only (0600) first
    (:func:`federation.paths.create_private_sqlite`).
    """
    from federation.paths import create_private_sqlite

    create_private_sqlite(url)
    # PostgreSQL: a pooled connection is pinged before use, so after a server restart the
    # pool reconnects by itself instead of handing out a dead connection (docs/operator-guide.md)
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is the database being unreachable.

    A connection-level failure: SQLAlchemy's ``OperationalError`` or
    ``InterfaceError``, or any DBAPI error that invalidated its connection
    (the server restarting or down, a reset connection, an administrator's
    shutdown). Errors about the statement or the data are not.
    """
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OperationalError | InterfaceError):
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        e = e.__cause__ or e.__context__
    return False


def as_unavailable(exc: BaseException) -> BaseException:
    """``exc`` translated to :class:`DatabaseUnavailableError` when it is a lost connection, else ``exc``.

    Used at the RPC boundary (:func:`federation.services.base.rpc`): a request
    that failed because the database was away answers ``UNAVAILABLE`` with the
    reason ``DATABASE_UNAVAILABLE`` (retryable), not ``INTERNAL``. A typed
    error whose reason already says what happened (a denial, a refusal) is kept.
    """
    from federation.errors import DatabaseUnavailableError

    reason = getattr(exc, "reason", None)
    if reason not in (None, "LEDGER_STORAGE", "AUDIT_ERROR", "INVALID_AUDIT_STATE") or not connection_lost(
        exc
    ):
        return exc
    err = DatabaseUnavailableError("the node database is unavailable; retry later")
    err.__cause__ = exc
    return err


def migrate(engine: Engine) -> None:
    """Upgrade the node tables to the latest Alembic revision (``federation/migrations``).

    On PostgreSQL an advisory lock serialises replicas migrating at once.
    """
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect() as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7400001)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass(frozen=True)
class AgentRecord:
    """One registered agent of this organization.

    Attributes:
        did: the agent's ``did:key``.
        name: unique agent name within the organization.
        role: role claim (e.g. ``"triage-coordinator"``).
        scopes: scopes granted (e.g. ``("patients:read",)``).
        trust_tier: integer tier 0..3 claimed in the credential.
        status_index: its bit in the organization's status lists.
        revoked: revocation bit.
        suspended: suspension bit.
        credential: the signed AgentCredential (JSON object).

    """

    did: str
    name: str
    role: str
    scopes: tuple[str, ...]
    trust_tier: int
    status_index: int
    revoked: bool
    suspended: bool
    credential: dict[str, Any]


def _record(row: Any) -> AgentRecord:
    return AgentRecord(
        did=row.did,
        name=row.name,
        role=row.role,
        scopes=tuple(row.scopes),
        trust_tier=row.trust_tier,
        status_index=row.status_index,
        revoked=bool(row.revoked),
        suspended=bool(row.suspended),
        credential=json.loads(row.credential),
    )


class NodeStore:
    """Agent registry and persisted node state over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        migrate(engine)

    def ping(self) -> None:
        """Run ``SELECT 1`` (readiness: the database answers).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database is unreachable.

        """
        from sqlalchemy import text

        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def next_status_index(self) -> int:
        """The next free status-list index (0-based)."""
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(agents.c.status_index))).scalar()
        return 0 if top is None else int(top) + 1

    def add_agent(self, record: AgentRecord, *, now: dt.datetime) -> None:
        """Insert an agent.

        Raises:
            InvalidRequestError: reason ``AGENT_EXISTS`` when the name or DID is taken.

        """
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as conn:
                conn.execute(
                    agents.insert().values(
                        did=record.did,
                        name=record.name,
                        role=record.role,
                        scopes=list(record.scopes),
                        trust_tier=record.trust_tier,
                        status_index=record.status_index,
                        revoked=record.revoked,
                        suspended=record.suspended,
                        credential=json.dumps(record.credential),
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise InvalidRequestError(
                f"agent {record.name!r} is already registered", reason="AGENT_EXISTS"
            ) from exc

    def agents(self) -> list[AgentRecord]:
        """All agents, ordered by status index."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).order_by(agents.c.status_index)).all()
        return [_record(r) for r in rows]

    def agent(self, name_or_did: str) -> AgentRecord:
        """One agent by name or DID.

        Raises:
            NotFoundError: reason ``UNKNOWN_AGENT``.

        """
        with self.engine.connect() as conn:
            row = conn.execute(
                select(agents).where((agents.c.did == name_or_did) | (agents.c.name == name_or_did))
            ).first()
        if row is None:
            raise NotFoundError(f"unknown agent {name_or_did!r}", reason="UNKNOWN_AGENT")
        return _record(row)

    def set_status(
        self, name_or_did: str, *, revoked: bool | None = None, suspended: bool | None = None
    ) -> AgentRecord:
        """Flip an agent's revocation / suspension bits; returns the new record."""
        rec = self.agent(name_or_did)
        values: dict[str, bool] = {}
        if revoked is not None:
            values["revoked"] = revoked
        if suspended is not None:
            values["suspended"] = suspended
        with self.engine.begin() as conn:
            conn.execute(update(agents).where(agents.c.did == rec.did).values(**values))
        return self.agent(rec.did)

    def replace_credential(self, did: str, credential: dict[str, Any]) -> AgentRecord:
        """Store a renewed AgentCredential for the agent ``did``; returns the new record.

        Raises:
            NotFoundError: reason ``UNKNOWN_AGENT``.

        """
        with self.engine.begin() as conn:
            n = conn.execute(
                update(agents).where(agents.c.did == did).values(credential=json.dumps(credential))
            ).rowcount
        if n != 1:
            raise NotFoundError(f"unknown agent {did!r}", reason="UNKNOWN_AGENT")
        return self.agent(did)

    def put_dataset(
        self,
        name: str,
        spec: dict[str, Any],
        records: list[dict[str, Any]],
        *,
        id_column: str,
        now: dt.datetime,
        replace: bool = False,
    ) -> None:
        """Store a dataset's spec and records (one transaction).

        Raises:
            InvalidRequestError: ``DATASET_EXISTS`` unless ``replace``.
        """
        with self.engine.begin() as conn:
            exists = conn.execute(select(datasets.c.name).where(datasets.c.name == name)).first()
            if exists and not replace:
                raise InvalidRequestError(f"dataset {name!r} already registered", reason="DATASET_EXISTS")
            conn.execute(datasets.delete().where(datasets.c.name == name))
            conn.execute(dataset_records.delete().where(dataset_records.c.dataset == name))
            conn.execute(datasets.insert().values(name=name, spec=json.dumps(spec), created_at=now))
            if records:
                conn.execute(
                    dataset_records.insert(),
                    [
                        {"dataset": name, "record_id": int(r[id_column]), "data": json.dumps(r)}
                        for r in records
                    ],
                )

    def delete_dataset(self, name: str) -> bool:
        """Remove a dataset's spec and records (one transaction); False if there was none."""
        with self.engine.begin() as conn:
            gone = conn.execute(datasets.delete().where(datasets.c.name == name)).rowcount
            conn.execute(dataset_records.delete().where(dataset_records.c.dataset == name))
        return bool(gone)

    def add_dataset_records(self, name: str, records: list[dict[str, Any]], *, id_column: str) -> None:
        """Append records to a registered dataset."""
        with self.engine.begin() as conn:
            conn.execute(
                dataset_records.insert(),
                [{"dataset": name, "record_id": int(r[id_column]), "data": json.dumps(r)} for r in records],
            )

    def datasets(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every dataset: (spec, records ordered by id)."""
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(select(datasets).order_by(datasets.c.name)).all():
                recs = (
                    conn.execute(
                        select(dataset_records.c.data)
                        .where(dataset_records.c.dataset == row.name)
                        .order_by(dataset_records.c.record_id)
                    )
                    .scalars()
                    .all()
                )
                out.append((json.loads(row.spec), [json.loads(r) for r in recs]))
        return out

    def get_state(self, key: str) -> Any | None:
        """A persisted JSON value, or None."""
        with self.engine.connect() as conn:
            raw = conn.execute(select(state.c.value).where(state.c.key == key)).scalar()
        return None if raw is None else json.loads(raw)

    def put_state(self, key: str, value: Any, *, now: dt.datetime) -> None:
        """Persist a JSON value under ``key`` (upsert)."""
        raw = json.dumps(value, sort_keys=True)
        with self.engine.begin() as conn:
            done = conn.execute(update(state).where(state.c.key == key).values(value=raw, updated_at=now))
            if done.rowcount == 0:
                conn.execute(state.insert().values(key=key, value=raw, updated_at=now))


# ---------------------------------------------------------------- trust and budget state
#
# Trust pairs and budget keys are persisted one row per key in ``node_state``
# (issue #10.2), and only the rows changed since the last write: no whole-book
# document is rewritten every few seconds. Row keys are fixed prefixes plus a
# digest of the (authenticated) key strings, so their length is bounded whatever
# the strings are; the strings themselves are inside the row's JSON value.

TRUST_CONFIG_KEY = "trust:config"
TRUST_PAIR_PREFIX = "trust:pair:"
#: Agents suspended after a behavioural anomaly, shared by replicas (:mod:`federation.behaviour`).
SUSPENDED_PREFIX = "behaviour:suspended:"
#: Operator changes (``accord trust set``) waiting for the running node to apply them.
TRUST_SET_PREFIX = "trust:set:"
_LEDGER_PREFIX = {"budgets": "budgets:key:", "requests": "requests:key:"}
#: The earlier whole-document rows, imported once then deleted.
_LEGACY_KEYS = ("trust", "budgets", "requests")


def _digest_key(prefix: str, parts: tuple[str, str]) -> str:
    import hashlib

    return prefix + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:48]


@dataclass
class PolicyState:
    """The trust book and the two ledgers a node's decision point keeps.

    Attributes:
        trust: the :class:`policy.TrustBook`.
        budgets: the trust-budget :class:`policy.BudgetLedger`.
        requests: the request counter (rate limits), a :class:`policy.BudgetLedger`.
        legacy: the earlier whole-document rows are still in the database.
    """

    trust: Any
    budgets: Any
    requests: Any
    legacy: bool = False
    #: the ledgers' rows are written through by the decision point (replicas): not persisted here
    ledgers_shared: bool = False
    #: one writer at a time, so an older snapshot never lands after a newer one
    write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class PolicyStateStore:
    """Load and incrementally persist a node's trust book and ledgers (rows in ``node_state``)."""

    def __init__(self, store: NodeStore) -> None:
        self.store = store

    def get_rows(self, prefix: str) -> dict[str, Any]:
        """Every persisted JSON value whose key starts with ``prefix``."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(state.c.key, state.c.value).where(state.c.key.startswith(prefix, autoescape=True))
            ).all()
        return {r.key: json.loads(r.value) for r in rows}

    def take_rows(self, prefix: str) -> dict[str, Any]:
        """Delete and return every row whose key starts with ``prefix`` (one statement: taken once)."""
        with self.store.engine.begin() as conn:
            rows = conn.execute(
                state.delete()
                .where(state.c.key.startswith(prefix, autoescape=True))
                .returning(state.c.key, state.c.value)
            ).all()
        return {r.key: json.loads(r.value) for r in rows}

    def put_rows(self, rows: dict[str, Any], *, now: dt.datetime) -> None:
        """Upsert (value) or delete (None) many rows in one transaction."""
        if not rows:
            return
        with self.store.engine.begin() as conn:
            for key, value in sorted(rows.items()):
                if value is None:
                    conn.execute(state.delete().where(state.c.key == key))
                    continue
                raw = json.dumps(value, sort_keys=True)
                done = conn.execute(update(state).where(state.c.key == key).values(value=raw, updated_at=now))
                if done.rowcount == 0:
                    conn.execute(state.insert().values(key=key, value=raw, updated_at=now))

    def load(self) -> PolicyState:
        """Rebuild the book and ledgers: per-key rows, plus the earlier whole documents if still there.

        Raises:
            TrustStateError / BudgetStateError: a persisted row is malformed.
        """
        from policy import BudgetLedger, TrustBook

        legacy = {k: self.store.get_state(k) for k in _LEGACY_KEYS}
        config = self.store.get_state(TRUST_CONFIG_KEY)
        pair_rows = list(self.get_rows(TRUST_PAIR_PREFIX).values())
        old_trust = legacy["trust"] or {}
        if old_trust:
            # import the earlier document: its rows under the per-key rows, its config unless one is set
            seen = {(r.get("requester"), r.get("provider")) for r in pair_rows}
            old_rows = TrustBook.from_dict(old_trust).to_dict()["pairs"]
            pair_rows = [r for r in old_rows if (r["requester"], r["provider"]) not in seen] + pair_rows
            config = config if config is not None else old_trust.get("config")
        trust = TrustBook.from_rows(config or {}, pair_rows)
        if old_trust:
            trust.mark_dirty(trust.pairs())
        ledgers = []
        for name, prefix in _LEDGER_PREFIX.items():
            rows = list(self.get_rows(prefix).values())
            if legacy[name]:
                old = BudgetLedger.from_dict(legacy[name]).to_dict()["keys"]
                seen = {(r["contract_id"], r["requester"]) for r in rows}
                rows += [r for r in old if (r["contract_id"], r["requester"]) not in seen]
            led = BudgetLedger.from_rows(rows)
            if legacy[name]:
                led.mark_dirty((r["contract_id"], r["requester"]) for r in rows)
            ledgers.append(led)
        was_legacy = any(v is not None for v in legacy.values())
        return PolicyState(trust=trust, budgets=ledgers[0], requests=ledgers[1], legacy=was_legacy)

    def request_trust_set(
        self, requester: str, provider: str, value: float, *, reason: str, now: dt.datetime
    ) -> str:
        """Queue an operator change of a pair's baseline for the node to apply; returns its row key.

        Raises:
            TrustStateError: value outside [0, 1] or an empty reason.
        """
        import secrets

        from policy import TrustStateError

        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise TrustStateError(f"trust value must be in [0, 1], got {value!r}")
        if not reason.strip():
            raise TrustStateError("an operator trust change needs a reason")
        key = TRUST_SET_PREFIX + f"{now.timestamp():017.6f}:" + secrets.token_hex(8)
        self.put_rows(
            {
                key: {
                    "requester": requester,
                    "provider": provider,
                    "value": float(value),
                    "reason": reason.strip()[:200],
                    "at": now.timestamp(),
                }
            },
            now=now,
        )
        return key

    def apply_trust_sets(self, trust: Any, *, now: dt.datetime, shared: bool = False) -> dict[str, None]:
        """Apply the queued operator changes to ``trust`` (oldest first); returns their keys to delete.

        With ``shared`` (a node run as several replicas, whose trust book
        writes every change through to the database: :meth:`policy.TrustBook.share`),
        each change is taken (deleted) by one replica in one statement and
        applied once, through the shared book; nothing is left to delete.

        Raises (``shared``): the database failed while applying; the changes
        not yet applied are queued again.
        """
        from policy import TrustStateError

        done: dict[str, None] = {}
        cmds = self.take_rows(TRUST_SET_PREFIX) if shared else self.get_rows(TRUST_SET_PREFIX)
        items = sorted(cmds.items())
        for i, (key, cmd) in enumerate(items):
            try:
                at = dt.datetime.fromtimestamp(float(cmd["at"]), tz=dt.UTC)
                pair = (str(cmd["requester"]), str(cmd["provider"]))
                trust.set_baseline(pair, cmd["value"], reason=str(cmd["reason"]), now=at)
            except (TrustStateError, KeyError, TypeError, ValueError, OverflowError):
                pass  # malformed: dropped (it was written by the operator tool; nothing to apply)
            except Exception:
                if shared:  # the database went away mid-way: queue the rest again
                    self.put_rows(dict(items[i:]), now=now)
                raise
            if not shared:
                done[key] = None
        return done

    def persist(self, ps: PolicyState, *, now: dt.datetime) -> int:
        """Write the changed trust pairs and ledger keys (expired ledger slots pruned); returns rows written.

        Queued operator trust changes are applied first. On failure the
        changed keys stay marked, to be written next time.
        """
        with ps.write_lock:
            return self._persist(ps, now=now)

    def _persist(self, ps: PolicyState, *, now: dt.datetime) -> int:
        from dataclasses import asdict

        rows: dict[str, Any] = self.apply_trust_sets(ps.trust, now=now, shared=ps.ledgers_shared)
        for led in (ps.budgets, ps.requests):
            led.prune(now=now)
        trust_dirty = ps.trust.take_dirty()
        ledger_dirty = {name: getattr(ps, name).take_dirty() for name in _LEDGER_PREFIX}
        if ps.ledgers_shared:
            # written through under the replicas' locks (the decision point's ledgers, the
            # shared trust book); a copy here could be stale
            ledger_dirty = {name: {} for name in _LEDGER_PREFIX}
            trust_dirty = {}
        for pair, row in trust_dirty.items():
            rows[_digest_key(TRUST_PAIR_PREFIX, pair)] = row
        if trust_dirty:
            rows[TRUST_CONFIG_KEY] = asdict(ps.trust.config)
        for name, dirty in ledger_dirty.items():
            for key, row in dirty.items():
                rows[_digest_key(_LEDGER_PREFIX[name], key)] = row
        if rows and ps.legacy:
            for k in _LEGACY_KEYS:
                rows[k] = None
        try:
            self.put_rows(rows, now=now)
        except Exception:
            ps.trust.mark_dirty(trust_dirty)
            for name, dirty in ledger_dirty.items():
                getattr(ps, name).mark_dirty(dirty)
            raise
        if rows:
            ps.legacy = False
        return len(rows)


# ---------------------------------------------------------------- replicas: shared state


def _advisory_key(*parts: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key for ``parts`` (SHA-256 prefix)."""
    import hashlib

    return int.from_bytes(hashlib.sha256("\n".join(parts).encode()).digest()[:8], "big", signed=True)


class ReplicaStateStore:
    """The SQL of the state that the replicas of one node share (docs/architecture.md, "Scale-out").

    Sessions, the agents' local sessions, challenges, the replay cache
    (request nonces), leases, and the per-key rows of the trust-budget and
    rate ledgers read and written under a PostgreSQL advisory lock. Times
    are Unix seconds (floats) supplied by the caller (the clock is a
    parameter). Works on SQLite too (one process; the unit tests), where the
    advisory locks are no-ops.

    Raises (every method):
        sqlalchemy.exc.SQLAlchemyError: the database failed (nothing was changed).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"
        #: single statements (a read, one insert, one delete … returning) run in autocommit: one
        #: round trip each instead of BEGIN, statement, COMMIT (they are atomic on their own)
        self._auto = engine.execution_options(isolation_level="AUTOCOMMIT") if self._pg else engine

    def _single(self):
        """A connection for one self-contained statement (PostgreSQL autocommit; SQLite a transaction)."""
        return self._auto.connect() if self._pg else self.engine.begin()

    def _insert(self, table: Table):
        if self._pg:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def _lock(self, conn: Any, *parts: str) -> None:
        if self._pg:
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key(*parts)})

    # ---- provider sessions
    def session_create(
        self, row: dict[str, Any], *, now: float, max_per_agent: int, max_per_peer: int
    ) -> str:
        """Insert a session row unless the caps are reached; returns ``""`` or the cap hit.

        Under an advisory lock per requesting organization, the open
        sessions of the (peer, agent) and of the peer are counted and the row
        inserted in one transaction, so two replicas cannot both pass a cap.

        Returns:
            ``""`` when inserted, else ``"agent"`` or ``"peer"`` (the cap reached).

        """
        from sqlalchemy import and_

        t = sessions_t
        is_open = and_(t.c.state == "open", t.c.expires_at > now)
        with self.engine.begin() as conn:
            self._lock(conn, "session-cap", row["peer_org"])
            n_agent = conn.execute(
                select(func.count())
                .select_from(t)
                .where(t.c.peer_org == row["peer_org"], t.c.agent_did == row["agent_did"], is_open)
            ).scalar_one()
            if n_agent >= max_per_agent:
                return "agent"
            n_peer = conn.execute(
                select(func.count()).select_from(t).where(t.c.peer_org == row["peer_org"], is_open)
            ).scalar_one()
            if n_peer >= max_per_peer:
                return "peer"
            conn.execute(t.insert().values(**row))
        return ""

    def session_get(self, session_id: str) -> Any | None:
        """The session row (all columns) or None."""
        with self._single() as conn:
            return conn.execute(select(sessions_t).where(sessions_t.c.id == session_id)).first()

    def session_state(self, session_id: str) -> str | None:
        """The session's state column, or None when there is no such row."""
        with self._single() as conn:
            return conn.execute(
                select(sessions_t.c.state).where(sessions_t.c.id == session_id)
            ).scalar_one_or_none()

    def session_set_state(self, session_id: str, state_: str, *, only_from: str = "open") -> bool:
        """Move one session from ``only_from`` to ``state_``; True if a row moved."""
        t = sessions_t
        with self._single() as conn:
            done = conn.execute(
                update(t).where(t.c.id == session_id, t.c.state == only_from).values(state=state_)
            )
        return done.rowcount > 0

    def session_counters(self, session_id: str, *, add_request: bool = True):
        """Context manager: lock one session's row across replicas; yields its counters, writes them.

        Yields ``{"requests": int, "denials": int, "released": list[str]}``
        (None when there is no such row); on exit the request counter is
        incremented (``add_request``) and ``denials`` / ``released`` as the
        caller left them are written, in the same transaction.
        """
        import contextlib

        t = sessions_t

        @contextlib.contextmanager
        def cm():
            with self.engine.begin() as conn:
                q = select(t.c.requests, t.c.denials, t.c.released).where(t.c.id == session_id)
                row = conn.execute(q.with_for_update() if self._pg else q).first()
                if row is None:
                    yield None
                    return
                cell = {
                    "requests": int(row.requests),
                    "denials": int(row.denials),
                    "released": json.loads(row.released),
                }
                yield cell
                conn.execute(
                    update(t)
                    .where(t.c.id == session_id)
                    .values(
                        requests=int(cell["requests"]) + (1 if add_request else 0),
                        denials=int(cell["denials"]),
                        released=json.dumps(sorted(set(cell["released"]))),
                    )
                )

        return cm()

    def sessions_terminate_agent(self, agent_did: str) -> int:
        """Terminate every open session of ``agent_did`` (any peer); returns how many."""
        t = sessions_t
        with self._single() as conn:
            done = conn.execute(
                update(t).where(t.c.agent_did == agent_did, t.c.state == "open").values(state="terminated")
            )
        return done.rowcount

    def sessions_open(self, *, now: float) -> int:
        """How many sessions are open now."""
        t = sessions_t
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(t).where(t.c.state == "open", t.c.expires_at > now)
            ).scalar_one()

    # ---- the agents' sessions at this node (requester side)
    def local_session_put(self, row: dict[str, Any]) -> None:
        """Insert one requester-side session row."""
        with self._single() as conn:
            conn.execute(local_sessions_t.insert().values(**row))

    def local_session_get(self, session_id: str) -> Any | None:
        """The requester-side session row or None."""
        with self._single() as conn:
            return conn.execute(select(local_sessions_t).where(local_sessions_t.c.id == session_id)).first()

    # ---- challenges
    def challenge_issue(
        self,
        challenge: str,
        *,
        owner: str,
        subject: str,
        expires_at: float,
        now: float,
        max_per_owner: int,
        max_open: int,
    ) -> bool:
        """Insert a challenge unless ``owner`` or the table holds the most allowed; True if inserted."""
        t = challenges_t
        with self.engine.begin() as conn:
            self._lock(conn, "challenge-cap", owner)
            per_owner = conn.execute(
                select(func.count()).select_from(t).where(t.c.owner == owner, t.c.expires_at > now)
            ).scalar_one()
            if per_owner >= max_per_owner:
                return False
            total = conn.execute(select(func.count()).select_from(t).where(t.c.expires_at > now)).scalar_one()
            if total >= max_open:
                return False
            conn.execute(
                t.insert().values(challenge=challenge, owner=owner, subject=subject, expires_at=expires_at)
            )
        return True

    def challenge_take(self, challenge: str) -> tuple[str, str, float] | None:
        """Delete a challenge; returns its (owner, subject, expires_at), or None (used or never issued)."""
        t = challenges_t
        with self._single() as conn:
            row = conn.execute(
                t.delete().where(t.c.challenge == challenge).returning(t.c.owner, t.c.subject, t.c.expires_at)
            ).first()
        return None if row is None else (row.owner, row.subject, row.expires_at)

    def challenges_open(self, *, now: float) -> int:
        """How many challenges are unexpired."""
        t = challenges_t
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t).where(t.c.expires_at > now)).scalar_one()

    # ---- replay cache
    def nonce_first_use(self, nonce: str, *, now: float) -> bool:
        """Record ``nonce``; True the first time, False when it was recorded before (a replay)."""
        stmt = (
            self._insert(nonces_t)
            .values(nonce=nonce, seen_at=now)
            .on_conflict_do_nothing()
            .returning(nonces_t.c.nonce)
        )
        with self._single() as conn:
            return conn.execute(stmt).first() is not None

    # ---- sweeping
    def sweep(self, *, now: float, nonce_cutoff: float) -> dict[str, int]:
        """Delete expired sessions, local sessions, challenges and nonces seen before ``nonce_cutoff``.

        Returns the rows deleted per table (short names).
        """
        out: dict[str, int] = {}
        with self.engine.begin() as conn:
            out["sessions"] = conn.execute(sessions_t.delete().where(sessions_t.c.expires_at <= now)).rowcount
            out["local_sessions"] = conn.execute(
                local_sessions_t.delete().where(local_sessions_t.c.expires_at <= now)
            ).rowcount
            out["challenges"] = conn.execute(
                challenges_t.delete().where(challenges_t.c.expires_at <= now)
            ).rowcount
            out["nonces"] = conn.execute(nonces_t.delete().where(nonces_t.c.seen_at < nonce_cutoff)).rowcount
        return out

    # ---- leases
    def lease_acquire(self, name: str, *, holder: str, ttl_seconds: float, now: float) -> int | None:
        """Take or renew the lease ``name`` for ``holder``; returns its epoch, or None if another holds it.

        A lease is held until ``expires_at``; an expired lease is taken over
        and its epoch incremented (the epoch tells holders apart in logs and
        tests). The row is read ``FOR UPDATE`` (PostgreSQL), so two replicas
        never both take it.
        """
        t = leases_t
        with self.engine.begin() as conn:
            q = select(t).where(t.c.name == name)
            row = conn.execute(q.with_for_update() if self._pg else q).first()
            if row is None:
                stmt = self._insert(t).values(name=name, holder=holder, expires_at=now + ttl_seconds, epoch=1)
                done = conn.execute(stmt.on_conflict_do_nothing().returning(t.c.epoch)).first()
                return 1 if done is not None else None
            if row.holder != holder and row.expires_at > now:
                return None
            epoch = row.epoch if row.holder == holder else row.epoch + 1
            conn.execute(
                update(t)
                .where(t.c.name == name)
                .values(holder=holder, expires_at=now + ttl_seconds, epoch=epoch)
            )
            return epoch

    def lease_release(self, name: str, *, holder: str) -> None:
        """Give the lease up now (only if ``holder`` holds it)."""
        t = leases_t
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.name == name, t.c.holder == holder).values(expires_at=0.0))

    def lease_holder(self, name: str) -> tuple[str, float, int] | None:
        """(holder, expires_at, epoch) of the lease, or None."""
        t = leases_t
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        return None if row is None else (row.holder, row.expires_at, row.epoch)

    # ---- rows of node_state read and written under an advisory lock (budgets, trust, auditor)
    def locked_state_rows(
        self, lock: tuple[str, ...], names: dict[str, str], *, lazy: frozenset[str] = frozenset()
    ):
        """Context manager: lock ``lock`` across replicas, yield rows of ``node_state``, write them back.

        ``names`` maps a short name to a ``node_state`` key. Yields a dict
        ``{name: JSON value | None}`` of those rows, except the names in
        ``lazy``, which are not read up front: ``cell["load"](name)`` reads one
        (a large row, e.g. an auditor state, read only when needed). Whatever
        the caller leaves under a name (a lazy one only if it sets it) is
        written in the same transaction (None deletes the row), which commits
        and releases the lock on exit. An exception rolls everything back.
        """
        import contextlib

        @contextlib.contextmanager
        def cm():
            with self.engine.begin() as conn:
                self._lock(conn, *lock)
                eager = {n: k for n, k in names.items() if n not in lazy}
                rows = conn.execute(
                    select(state.c.key, state.c.value).where(state.c.key.in_(eager.values()))
                ).all()
                by_key = {r.key: json.loads(r.value) for r in rows}
                got: dict[str, Any] = {n: by_key.get(k) for n, k in eager.items()}
                before = json.dumps(got, sort_keys=True)

                def load(name: str) -> Any:
                    raw = conn.execute(select(state.c.value).where(state.c.key == names[name])).scalar()
                    return None if raw is None else json.loads(raw)

                cell: dict[str, Any] = {**got, "load": load}
                yield cell
                cell.pop("load", None)
                changed = (
                    {n: cell.get(n) for n in eager}
                    if json.dumps({n: cell.get(n) for n in eager}, sort_keys=True) != before
                    else {}
                )
                changed.update({n: cell[n] for n in lazy if n in cell})
                now = dt.datetime.now(dt.UTC)
                for n, value in changed.items():
                    k = names[n]
                    if value is None:
                        conn.execute(state.delete().where(state.c.key == k))
                        continue
                    raw = json.dumps(value, sort_keys=True)
                    done = conn.execute(
                        update(state).where(state.c.key == k).values(value=raw, updated_at=now)
                    )
                    if done.rowcount == 0:
                        conn.execute(state.insert().values(key=k, value=raw, updated_at=now))

        return cm()

    def locked_ledger_rows(self, key: tuple[str, str]):
        """Context manager: lock ``key`` across replicas, yield its ledger rows, write them back.

        Yields a dict ``{"budgets": row | None, "requests": row | None}``
        (the :class:`policy.BudgetLedger` rows of the key, as persisted in
        ``node_state``); whatever the caller leaves in it is written in the
        same transaction, which commits (and releases the advisory lock) on
        exit. An exception rolls everything back.
        """
        names = {name: _digest_key(prefix, key) for name, prefix in _LEDGER_PREFIX.items()}
        return self.locked_state_rows(("ledger-key", *key), names)

    # ---- behavioural suspensions (federation.behaviour): one replica suspends, every replica refuses
    def suspend_agent(self, agent_did: str, *, until: float) -> None:
        """Record that ``agent_did`` is suspended here until ``until`` (Unix seconds); a later end wins."""
        key = _digest_key(SUSPENDED_PREFIX, ("agent", agent_did))
        with self.locked_state_rows(("suspended", agent_did), {"row": key}) as rows:
            old = rows["row"]
            if old is None or float(old.get("until", 0)) < until:
                rows["row"] = {"until": until}

    def agent_suspended_until(self, agent_did: str, *, now: float) -> float | None:
        """When ``agent_did``'s suspension ends (Unix seconds), or None if it is not suspended at ``now``.

        A suspension that has ended is deleted as it is read (the rows stay
        bounded by the agents suspended within the last ``suspend_seconds``).
        """
        key = _digest_key(SUSPENDED_PREFIX, ("agent", agent_did))
        with self._single() as conn:
            raw = conn.execute(select(state.c.value).where(state.c.key == key)).scalar()
            if raw is None:
                return None
            until = float(json.loads(raw).get("until", 0))
            if until <= now:
                conn.execute(state.delete().where(state.c.key == key))
                return None
            return until

    # ---- trust pairs: read-through and write-through (policy.TrustBook.share)
    def trust_row(self, pair: tuple[str, str]) -> dict[str, Any] | None:
        """The persisted row of a trust pair (:meth:`policy.TrustBook.take_dirty` shape), or None."""
        key = _digest_key(TRUST_PAIR_PREFIX, pair)
        with self._single() as conn:
            raw = conn.execute(select(state.c.value).where(state.c.key == key)).scalar()
        return None if raw is None else json.loads(raw)

    def locked_trust_row(self, pair: tuple[str, str]):
        """Context manager: lock a trust pair across replicas; yields ``{"row": row | None}``, writes it."""
        return self.locked_state_rows(("trust-pair", *pair), {"row": _digest_key(TRUST_PAIR_PREFIX, pair)})

    # ---- the reconstruction auditor and DP budgets of a dataset (federation.datasets)
    def locked_audit_rows(self, dataset: str):
        """Context manager: lock a dataset's auditing across replicas; yields its rows, writes them back.

        Yields ``{"generation": int | None, "denials": dict | None, "dp": dict | None,
        "load": callable}``: ``load("state")`` reads the auditor state (large:
        read only when the generation moved since this replica last read it).
        Set ``"state"`` (and bump ``"generation"``) after a commit, ``"denials"``
        after a denial, ``"dp"`` after a charge; they are written in the same
        transaction.
        """
        names = {
            "state": f"audit:{dataset}",
            "generation": f"audit-generation:{dataset}",
            "denials": f"audit-denials:{dataset}",
            "dp": f"dp:{dataset}",
        }
        return self.locked_state_rows(("audit", dataset), names, lazy=frozenset({"state"}))


# ---------------------------------------------------------------- issue #15 (next/approvals)
#
# Operators and the approval queue (federation.approvals), and the data this node received
# under contracts with onward-flow or retention terms (federation.onward). Additive tables,
# Alembic revision 0004_approvals.

operators = Table(
    "node_operators",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("public_key", String(64), nullable=False, unique=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

approvals = Table(
    "node_approvals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("shape", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("requester_org", String(256), nullable=False),
    Column("requester_agent", String(256), nullable=False),
    Column("contract_id", String(256), nullable=False),
    Column("contract_hash", String(128), nullable=False),
    Column("purpose", String(256), nullable=False),
    Column("resource", String(256), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("rule", String(300), nullable=False),
    Column("risk", Float, nullable=False),
    Column("risk_reason", String(400), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("subjects", JSON, nullable=False),
    Column("agents", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("grant_seconds", Integer, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(100), nullable=True),
    Column("note", String(300), nullable=True),
    Column("signed_decision", Text, nullable=True),
    Column("signature", String(200), nullable=True),
    Column("grant_until", DateTime(timezone=True), nullable=True),
    Column("ledgered", Boolean, nullable=False, default=False),
    Column("reported", Boolean, nullable=False, default=False),
)

received_data = Table(
    "node_received_data",
    metadata,
    Column("disclosure_id", String(256), primary_key=True),
    Column("provider_org", String(256), nullable=False),
    Column("contract_id", String(256), nullable=False),
    Column("contract_hash", String(128), nullable=False),
    Column("agent_did", String(256), nullable=False),
    Column("obligations", JSON, nullable=False),
    Column("onward", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("retain_until", DateTime(timezone=True), nullable=True, index=True),
    Column("payload", Text, nullable=False),
    Column("value_digests", JSON, nullable=False),
)

#: columns of ``node_approvals`` a caller may set on insert or update
APPROVAL_COLUMNS = frozenset(c.name for c in approvals.columns)


def _aware(v: Any) -> Any:
    """SQLite returns naive datetimes for timezone columns: read them back as UTC."""
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.UTC)
    return v


def _row_dict(row: Any) -> dict[str, Any]:
    return {k: _aware(v) for k, v in row._mapping.items()}


class ApprovalStore:
    """Operators and the approval queue over the node database (only SQL; no policy).

    Rows are plain dicts (the ``node_approvals`` columns); :mod:`federation.approvals`
    gives them meaning.
    """

    def __init__(self, store: NodeStore) -> None:
        self.engine = store.engine

    # ------------------------------------------------------------ operators

    def add_operator(self, name: str, public_key: str, *, now: dt.datetime) -> None:
        """Register an operator's Ed25519 public key (base64url, 32 bytes).

        Raises:
            InvalidRequestError: ``OPERATOR_EXISTS`` when the name or key is taken.
        """
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as conn:
                conn.execute(
                    operators.insert().values(name=name, public_key=public_key, revoked=False, created_at=now)
                )
        except IntegrityError as exc:
            raise InvalidRequestError(
                f"operator {name!r} (or its key) is already registered", reason="OPERATOR_EXISTS"
            ) from exc

    def revoke_operator(self, name: str) -> bool:
        """Mark an operator revoked; False if there is none by that name."""
        with self.engine.begin() as conn:
            n = conn.execute(update(operators).where(operators.c.name == name).values(revoked=True)).rowcount
        return bool(n)

    def operators(self) -> list[dict[str, Any]]:
        """Every registered operator: ``name``, ``public_key``, ``revoked``, ``created_at``."""
        with self.engine.connect() as conn:
            return [_row_dict(r) for r in conn.execute(select(operators).order_by(operators.c.name)).all()]

    def operator(self, name: str) -> dict[str, Any] | None:
        """One operator row, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(operators).where(operators.c.name == name)).first()
        return None if row is None else _row_dict(row)

    # ------------------------------------------------------------ approvals

    def insert(self, row: dict[str, Any]) -> None:
        """Insert one approval row (every column of :data:`approvals` not defaulted)."""
        with self.engine.begin() as conn:
            conn.execute(approvals.insert().values(**row))

    def get(self, approval_id: str) -> dict[str, Any] | None:
        """One approval row by id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        return None if row is None else _row_dict(row)

    def latest_for_shape(self, shape: str) -> dict[str, Any] | None:
        """The newest approval row of a request shape, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(approvals)
                .where(approvals.c.shape == shape)
                .order_by(approvals.c.created_at.desc(), approvals.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _row_dict(row)

    def rows(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Approval rows (newest first), optionally of one status; at most ``limit``."""
        q = select(approvals).order_by(approvals.c.created_at.desc()).limit(limit)
        if status is not None:
            q = q.where(approvals.c.status == status)
        with self.engine.connect() as conn:
            return [_row_dict(r) for r in conn.execute(q).all()]

    def unledgered(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Settled rows (not ``pending``) whose outcome is not yet in the ledger, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(approvals)
                .where(approvals.c.ledgered.is_(False) & (approvals.c.status != "pending"))
                .order_by(approvals.c.created_at)
                .limit(limit)
            ).all()
        return [_row_dict(r) for r in rows]

    def overdue(self, *, now: dt.datetime, limit: int = 1000) -> list[str]:
        """Ids of pending rows whose expiry is at or before ``now``."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(approvals.c.id)
                    .where((approvals.c.status == "pending") & (approvals.c.expires_at <= now))
                    .limit(limit)
                ).scalars()
            )

    def update(self, approval_id: str, *, expect_status: str | None = None, **values: Any) -> bool:
        """Update one row; with ``expect_status`` only if its status still is that (compare-and-set).

        Returns:
            True if a row was updated.
        """
        q = update(approvals).where(approvals.c.id == approval_id)
        if expect_status is not None:
            q = q.where(approvals.c.status == expect_status)
        with self.engine.begin() as conn:
            return bool(conn.execute(q.values(**values)).rowcount)

    def decisions_by(self, operator: str, *, since: dt.datetime) -> int:
        """How many decisions ``operator`` signed since ``since``.

        One per signature (a batch is one); ``invalid`` rows (not the operator's signature) do not count.
        """
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count(approvals.c.signature.distinct()))
                    .select_from(approvals)
                    .where(
                        (approvals.c.decided_by == operator)
                        & (approvals.c.decided_at >= since)
                        & (approvals.c.status != "invalid")  # not signed by the operator: not its prompt
                    )
                ).scalar()
                or 0
            )

    def count(self, *, status: str) -> int:
        """Rows of one status."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(approvals).where(approvals.c.status == status)
                ).scalar()
                or 0
            )


class ReceivedStore:
    """Records received under contracts with onward-flow or retention terms (only SQL)."""

    def __init__(self, store: NodeStore) -> None:
        self.engine = store.engine

    def put(self, row: dict[str, Any]) -> None:
        """Insert one received disclosure (idempotent on ``disclosure_id``)."""
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as conn:
                conn.execute(received_data.insert().values(**row))
        except IntegrityError:
            pass  # the same disclosure twice: already kept

    def put_many(self, rows: list[dict[str, Any]]) -> None:
        """Insert received disclosures in one transaction (one statement, many rows).

        Idempotent on ``disclosure_id``: a batch holding a disclosure already
        kept (or one twice) is rolled back and inserted row by row with
        :meth:`put`. Blocking; the node runs it through a
        :class:`federation.ledger_writer.GroupCommit`.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database failed (nothing of the batch was kept).

        """
        from sqlalchemy.exc import IntegrityError

        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(received_data.insert(), rows)
        except IntegrityError:
            for row in rows:
                self.put(row)

    def rows(self, *, limit: int = 100_000) -> list[dict[str, Any]]:
        """Every kept disclosure (oldest first), at most ``limit``."""
        with self.engine.connect() as conn:
            return [
                _row_dict(r)
                for r in conn.execute(
                    select(received_data).order_by(received_data.c.received_at).limit(limit)
                ).all()
            ]

    def get(self, disclosure_id: str) -> dict[str, Any] | None:
        """One kept disclosure, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(received_data).where(received_data.c.disclosure_id == disclosure_id)
            ).first()
        return None if row is None else _row_dict(row)

    def due(self, *, now: dt.datetime, limit: int = 1000) -> list[dict[str, Any]]:
        """Disclosures whose retention ended at or before ``now`` (oldest first)."""
        with self.engine.connect() as conn:
            return [
                _row_dict(r)
                for r in conn.execute(
                    select(received_data)
                    .where(received_data.c.retain_until.is_not(None) & (received_data.c.retain_until <= now))
                    .order_by(received_data.c.retain_until)
                    .limit(limit)
                ).all()
            ]

    def delete(self, disclosure_ids: list[str]) -> int:
        """Delete kept disclosures; returns how many were deleted."""
        if not disclosure_ids:
            return 0
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    received_data.delete().where(received_data.c.disclosure_id.in_(disclosure_ids))
                ).rowcount
            )
