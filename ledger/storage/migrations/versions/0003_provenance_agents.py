"""Provenance agents beside each entry, and a (time_us, idx) index, for keyset agent and time filters.

An agent filter matches ``requester_agent``, ``provider_agent`` (indexed by
0002) and the agents of the entry's delegation provenance
(``extra.root_agent``, ``extra.chain_agents``), which until now were matched
with ``LIKE`` on the entry bytes: a scan of the table for a rare agent.
``ledger_entry_agents`` holds one row per (agent, entry) of that provenance,
keyed by the SHA-256 of the agent DID; the log fills it in the transaction
that appends the entry, and this migration backfills it from the entries
that name a provenance (rows whose bytes contain ``"root_agent"`` or
``"chain_agents"``).

The single-column ``time_us`` index is replaced by ``(time_us, idx)``: a
``since``/``until`` window's indices are then read from the index alone,
which the query uses to bound its index-ordered walk (``Tx.query``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5000


def _backfill() -> None:
    from ledger.query import agent_key, provenance_agents

    bind = op.get_bind()
    entries = sa.table("ledger_entries", sa.column("idx", sa.BigInteger), sa.column("data", sa.LargeBinary))
    agents = sa.table(
        "ledger_entry_agents", sa.column("agent_sha256", sa.LargeBinary), sa.column("idx", sa.BigInteger)
    )

    def contains(needle: bytes):
        if bind.dialect.name == "sqlite":
            return sa.func.instr(entries.c.data, needle) > 0
        return entries.c.data.op("LIKE", is_comparison=True)(b"%" + needle.replace(b"_", b"\\_") + b"%")

    named = sa.or_(contains(b'"root_agent"'), contains(b'"chain_agents"'))
    pos = 0
    while True:
        rows = bind.execute(
            sa.select(entries.c.idx, entries.c.data)
            .where(entries.c.idx >= pos, named)
            .order_by(entries.c.idx)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        out = []
        for idx, data in rows:
            extra = json.loads(bytes(data)).get("extra")
            out += [{"agent_sha256": agent_key(a), "idx": int(idx)} for a in provenance_agents(extra)]
        if out:
            bind.execute(sa.insert(agents), out)
        pos = int(rows[-1][0]) + 1


def upgrade() -> None:
    """Create ``ledger_entry_agents`` (backfilled) and the ``(time_us, idx)`` index."""
    op.create_table(
        "ledger_entry_agents",
        sa.Column("agent_sha256", sa.LargeBinary(32), primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    op.create_index("ix_ledger_entry_agents_idx", "ledger_entry_agents", ["idx"])
    _backfill()
    op.create_index("ix_ledger_entries_time_us_idx", "ledger_entries", ["time_us", "idx"])
    op.drop_index("ix_ledger_entries_time_us", table_name="ledger_entries")


def downgrade() -> None:
    """Drop the side table; back to the single-column ``time_us`` index."""
    op.create_index("ix_ledger_entries_time_us", "ledger_entries", ["time_us"])
    op.drop_index("ix_ledger_entries_time_us_idx", table_name="ledger_entries")
    op.drop_index("ix_ledger_entry_agents_idx", table_name="ledger_entry_agents")
    op.drop_table("ledger_entry_agents")
