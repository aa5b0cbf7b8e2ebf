"""Per-session counters shared by the replicas (a contract's session limits).

Revision ID: 0005_session_counters
Revises: 0004_approvals
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_session_counters"
down_revision = "0004_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the requests and denials counters and the released field names to ``node_sessions``."""
    with op.batch_alter_table("node_sessions") as batch:
        batch.add_column(sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("denials", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("released", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    """Drop the session counters."""
    with op.batch_alter_table("node_sessions") as batch:
        for name in ("released", "denials", "requests"):
            batch.drop_column(name)
