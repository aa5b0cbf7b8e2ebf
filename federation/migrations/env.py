"""Alembic environment for the node's own tables (``node_*``), on the connection handed in."""

from alembic import context

from federation.store import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=metadata, version_table=VERSION_TABLE, transactional_ddl=True
)
with context.begin_transaction():
    context.run_migrations()
