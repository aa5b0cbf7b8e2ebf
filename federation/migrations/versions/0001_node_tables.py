"""Node tables: agents and persisted state.

Revision ID: 0001_node_tables
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_node_tables"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``node_agents`` and ``node_state``."""
    op.create_table(
        "node_agents",
        sa.Column("did", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("trust_tier", sa.Integer, nullable=False),
        sa.Column("status_index", sa.Integer, nullable=False, unique=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("suspended", sa.Boolean, nullable=False),
        sa.Column("credential", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "node_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the node tables."""
    op.drop_table("node_state")
    op.drop_table("node_agents")
