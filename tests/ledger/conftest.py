from __future__ import annotations

import pytest
from ledger_support import ORIGIN  # noqa: E402

from ledger import NoteSigner, TransparencyLog


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, bytes(range(32)))


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def log(db_url, signer):
    lg = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    yield lg
    lg.close()
