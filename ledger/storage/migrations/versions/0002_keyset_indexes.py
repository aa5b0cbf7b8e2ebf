"""Keyset indexes for newest-first filtered ledger queries (the console's ledger explorer).

``WHERE <column> = ? ORDER BY idx DESC LIMIT n`` reads an index on
``(<column>, idx)`` backwards and stops after ``n`` rows, however rare the
value (the two agent columns and the two org columns serve the agent and
counterpart filters, each split into two such reads). With the single-column
indexes of 0001 (or none, for ``kind`` and the agents) the database walks the
primary key backwards and filters: a full scan when nothing matches. The
three single-column indexes are replaced (each composite index serves every
lookup the old one did).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_REPLACED = {
    "ix_ledger_entries_provider_org": "provider_org",
    "ix_ledger_entries_requester_org": "requester_org",
    "ix_ledger_entries_contract_id": "contract_id",
}

_AGENTS = ("requester_agent", "provider_agent")


def upgrade() -> None:
    """Create the ``(column, idx)`` indexes; drop the single-column ones they replace."""
    op.create_index("ix_ledger_entries_kind_idx", "ledger_entries", ["kind", "idx"])
    for column in _AGENTS:
        op.create_index(f"ix_ledger_entries_{column}_idx", "ledger_entries", [column, "idx"])
    for old, column in _REPLACED.items():
        op.create_index(f"ix_ledger_entries_{column}_idx", "ledger_entries", [column, "idx"])
        op.drop_index(old, table_name="ledger_entries")


def downgrade() -> None:
    """Back to the single-column indexes of 0001."""
    for old, column in _REPLACED.items():
        op.create_index(old, "ledger_entries", [column])
        op.drop_index(f"ix_ledger_entries_{column}_idx", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_kind_idx", table_name="ledger_entries")
    for column in _AGENTS:
        op.drop_index(f"ix_ledger_entries_{column}_idx", table_name="ledger_entries")
