"""Datasets for aggregate queries: schema and records.

Revision ID: 0002_datasets
Revises: 0001_node_tables
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_datasets"
down_revision = "0001_node_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``node_datasets`` and ``node_dataset_records``."""
    op.create_table(
        "node_datasets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "node_dataset_records",
        sa.Column("dataset", sa.String(100), primary_key=True),
        sa.Column("record_id", sa.BigInteger, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop the dataset tables."""
    op.drop_table("node_dataset_records")
    op.drop_table("node_datasets")
