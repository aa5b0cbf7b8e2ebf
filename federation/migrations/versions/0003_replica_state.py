"""State shared by the replicas of one node: sessions, challenges, replay cache, leases.

Revision ID: 0003_replica_state
Revises: 0002_datasets
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_replica_state"
down_revision = "0002_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the sessions, local sessions, challenges, nonces and leases tables."""
    op.create_table(
        "node_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("peer_org", sa.String(256), nullable=False),
        sa.Column("agent_did", sa.String(200), nullable=False),
        sa.Column("agent_public_key", sa.LargeBinary, nullable=False),
        sa.Column("claims", sa.Text, nullable=False),
        sa.Column("credential_id", sa.String(512), nullable=False),
        sa.Column("delegation", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index("node_sessions_agent", "node_sessions", ["peer_org", "agent_did"])
    op.create_index("node_sessions_expiry", "node_sessions", ["expires_at"])
    op.create_table(
        "node_local_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("peer_org", sa.String(256), nullable=False),
        sa.Column("agent_did", sa.String(200), nullable=False),
        sa.Column("agent_public_key", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("node_local_sessions_expiry", "node_local_sessions", ["expires_at"])
    op.create_table(
        "node_challenges",
        sa.Column("challenge", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("subject", sa.String(700), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("node_challenges_owner", "node_challenges", ["owner"])
    op.create_index("node_challenges_expiry", "node_challenges", ["expires_at"])
    op.create_table(
        "node_nonces",
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("node_nonces_seen", "node_nonces", ["seen_at"])
    op.create_table(
        "node_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop the replica tables."""
    for name in ("node_leases", "node_nonces", "node_challenges", "node_local_sessions", "node_sessions"):
        op.drop_table(name)
