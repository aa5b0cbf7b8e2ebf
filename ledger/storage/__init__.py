"""Ledger storage: SQLAlchemy schema, Alembic migrations and the repository (all SQL lives here)."""

from ledger.storage.repository import LedgerStore, create_ledger_engine

__all__ = ["LedgerStore", "create_ledger_engine"]
