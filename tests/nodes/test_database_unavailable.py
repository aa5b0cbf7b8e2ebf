"""A lost database connection answers ``UNAVAILABLE`` / ``DATABASE_UNAVAILABLE``; other errors do not."""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy as sa

from federation.errors import DatabaseUnavailableError, DeniedError
from federation.store import as_unavailable, connection_lost
from federation.supervisor import free_port
from federation.wire import status_code_for
from ledger.errors import StorageError


@pytest.fixture(scope="module")
def refused() -> sa.exc.OperationalError:
    """The real error of connecting to a PostgreSQL port nobody listens on."""
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x", pool_pre_ping=True)
    try:
        with pytest.raises(sa.exc.OperationalError) as ei, engine.connect():
            pass
    finally:
        engine.dispose()
    return ei.value


def test_a_lost_connection_and_a_ledger_error_raised_from_it_are_unavailable(refused):
    assert connection_lost(refused)
    for exc in (refused, _chained(StorageError("ledger database error: OperationalError"), refused)):
        out = as_unavailable(exc)
        assert isinstance(out, DatabaseUnavailableError) and out.__cause__ is exc
        assert out.reason == "DATABASE_UNAVAILABLE" and status_code_for(out) == grpc.StatusCode.UNAVAILABLE


def test_errors_about_the_data_or_a_decision_keep_their_own_status(refused):
    integrity = sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not connection_lost(integrity) and as_unavailable(integrity) is integrity
    torn = StorageError("the log's tree does not match its entries")  # an invariant, not the connection
    assert as_unavailable(torn) is torn and status_code_for(torn) == grpc.StatusCode.INTERNAL
    denied = _chained(DeniedError("denied", reason="POLICY_DENIED"), refused)
    assert as_unavailable(denied) is denied  # a typed answer says what happened already


def _chained(exc: Exception, cause: BaseException) -> Exception:
    exc.__cause__ = cause
    return exc
