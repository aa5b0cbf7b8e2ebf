"""SQLAlchemy Core tables of the ledger (all prefixed ``ledger_``).

Rows of ``ledger_entries``, ``ledger_nodes`` and ``ledger_checkpoints`` are
immutable once written (only ``ledger_checkpoints.witnessed`` flips to true).
Singleton rows (``id = 1``) hold the write-coordination state: the sequence
counter, the integrated tree size and the signer's compare-and-swap guard.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

__all__ = [
    "metadata",
    "meta",
    "sequence",
    "tree",
    "signer",
    "entries",
    "entry_fields",
    "entry_agents",
    "nodes",
    "checkpoints",
    "cosignatures",
    "equivocations",
    "witness_logs",
    "VERSION_TABLE",
]

VERSION_TABLE = "ledger_alembic_version"
"""Alembic version table of the ledger (the database may be shared with other packages)."""

metadata = MetaData()

meta = Table(
    "ledger_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", Text, nullable=False),
    Column("log_vkey", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

sequence = Table(
    "ledger_sequence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_index", BigInteger, nullable=False),
)

tree = Table(
    "ledger_tree",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
)

signer = Table(
    "ledger_signer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
)

entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("disclosure_id", String(256), nullable=False, unique=True),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("sequenced_at_us", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("provider_org", Text, nullable=False),
    Column("requester_org", Text, nullable=False),
    Column("requester_agent", Text, nullable=False),
    Column("provider_agent", Text, nullable=False),
    Column("contract_id", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("decision", String(8), nullable=False),
    # (column, idx): newest-first filtered pages stop after the page (migration 0002)
    Index("ix_ledger_entries_kind_idx", "kind", "idx"),
    Index("ix_ledger_entries_provider_org_idx", "provider_org", "idx"),
    Index("ix_ledger_entries_requester_org_idx", "requester_org", "idx"),
    Index("ix_ledger_entries_contract_id_idx", "contract_id", "idx"),
    Index("ix_ledger_entries_requester_agent_idx", "requester_agent", "idx"),
    Index("ix_ledger_entries_provider_agent_idx", "provider_agent", "idx"),
    # (time_us, idx): a since/until window's indices read from the index alone (migration 0003)
    Index("ix_ledger_entries_time_us_idx", "time_us", "idx"),
)

entry_fields = Table(
    "ledger_entry_fields",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("role", SmallInteger, primary_key=True, autoincrement=False),
    Column("field", String(256), primary_key=True),
    Index("ix_ledger_entry_fields_field", "field"),
)

entry_agents = Table(
    "ledger_entry_agents",
    metadata,
    # SHA-256 of an agent DID named in the entry's delegation provenance
    # (``extra.root_agent``, each item of ``extra.chain_agents``): fixed-size keys
    # whatever the DID's length; (agent_sha256, idx) is read backwards for a page
    Column("agent_sha256", LargeBinary(32), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Index("ix_ledger_entry_agents_idx", "idx"),
)

nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at_us", BigInteger, nullable=False),
    Column("witnessed", Boolean, nullable=False, default=False),
)

cosignatures = Table(
    "ledger_cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(256), primary_key=True),
    Column("key_id", LargeBinary, primary_key=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("line", Text, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
)

equivocations = Table(
    "ledger_equivocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("note_a", Text, nullable=False),
    Column("note_b", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("detected_at_us", BigInteger, nullable=False),
)

witness_logs = Table(
    "ledger_witness_logs",
    metadata,
    Column("witness", String(256), primary_key=True),
    Column("origin", String(512), primary_key=True),
    Column("vkey", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=True),
    Column("note", Text, nullable=True),
    Column("updated_at_us", BigInteger, nullable=False),
)
