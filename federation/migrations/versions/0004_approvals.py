"""Operators, the approval queue and received data kept under onward-flow terms (issue #15).

Revision ID: 0004_approvals
Revises: 0003_replica_state
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_approvals"
down_revision = "0003_replica_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``node_operators``, ``node_approvals`` and ``node_received_data``."""
    op.create_table(
        "node_operators",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "node_approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("shape", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("requester_org", sa.String(256), nullable=False),
        sa.Column("requester_agent", sa.String(256), nullable=False),
        sa.Column("contract_id", sa.String(256), nullable=False),
        sa.Column("contract_hash", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(256), nullable=False),
        sa.Column("resource", sa.String(256), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("rule", sa.String(300), nullable=False),
        sa.Column("risk", sa.Float, nullable=False),
        sa.Column("risk_reason", sa.String(400), nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("subjects", sa.JSON, nullable=False),
        sa.Column("agents", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grant_seconds", sa.Integer, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("note", sa.String(300), nullable=True),
        sa.Column("signed_decision", sa.Text, nullable=True),
        sa.Column("signature", sa.String(200), nullable=True),
        sa.Column("grant_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ledgered", sa.Boolean, nullable=False),
        sa.Column("reported", sa.Boolean, nullable=False),
    )
    op.create_table(
        "node_received_data",
        sa.Column("disclosure_id", sa.String(256), primary_key=True),
        sa.Column("provider_org", sa.String(256), nullable=False),
        sa.Column("contract_id", sa.String(256), nullable=False),
        sa.Column("contract_hash", sa.String(128), nullable=False),
        sa.Column("agent_did", sa.String(256), nullable=False),
        sa.Column("obligations", sa.JSON, nullable=False),
        sa.Column("onward", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True, index=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("value_digests", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("node_received_data")
    op.drop_table("node_approvals")
    op.drop_table("node_operators")
