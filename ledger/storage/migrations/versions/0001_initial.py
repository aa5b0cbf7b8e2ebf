"""Initial ledger schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the ledger tables."""
    op.create_table(
        "ledger_meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("log_vkey", sa.Text, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_sequence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_index", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_tree",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_signer",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("disclosure_id", sa.String(256), nullable=False, unique=True),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("sequenced_at_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("provider_org", sa.Text, nullable=False),
        sa.Column("requester_org", sa.Text, nullable=False),
        sa.Column("requester_agent", sa.Text, nullable=False),
        sa.Column("provider_agent", sa.Text, nullable=False),
        sa.Column("contract_id", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
    )
    op.create_index("ix_ledger_entries_provider_org", "ledger_entries", ["provider_org"])
    op.create_index("ix_ledger_entries_requester_org", "ledger_entries", ["requester_org"])
    op.create_index("ix_ledger_entries_contract_id", "ledger_entries", ["contract_id"])
    op.create_index("ix_ledger_entries_time_us", "ledger_entries", ["time_us"])
    op.create_table(
        "ledger_entry_fields",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("role", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("field", sa.String(256), primary_key=True),
    )
    op.create_index("ix_ledger_entry_fields_field", "ledger_entry_fields", ["field"])
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("signed_at_us", sa.BigInteger, nullable=False),
        sa.Column("witnessed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "ledger_cosignatures",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness", sa.String(256), primary_key=True),
        sa.Column("key_id", sa.LargeBinary, primary_key=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_equivocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("note_a", sa.Text, nullable=False),
        sa.Column("note_b", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("detected_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_witness_logs",
        sa.Column("witness", sa.String(256), primary_key=True),
        sa.Column("origin", sa.String(512), primary_key=True),
        sa.Column("vkey", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop the ledger tables."""
    for name in (
        "ledger_witness_logs",
        "ledger_equivocations",
        "ledger_cosignatures",
        "ledger_checkpoints",
        "ledger_nodes",
        "ledger_entry_fields",
        "ledger_entries",
        "ledger_signer",
        "ledger_tree",
        "ledger_sequence",
        "ledger_meta",
    ):
        op.drop_table(name)
