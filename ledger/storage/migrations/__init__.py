"""Alembic migration scripts of the ledger (run programmatically by ``LedgerStore.migrate``)."""
