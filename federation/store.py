"""The node's own tables (agents, status list indices, persisted state).

SQLAlchemy 2 Core over the node database (SQLite in WAL mode by default,
PostgreSQL in production). The ledger keeps its own ``ledger_*`` tables in
the same database (see :mod:`ledger`). Only this module runs the node's SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
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


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, synchronous=FULL and a busy timeout.

    A SQLite database file is created owner-only (0600) first
    (:func:`federation.paths.create_private_sqlite`).
    """
    from federation.paths import create_private_sqlite

    create_private_sqlite(url)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


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
