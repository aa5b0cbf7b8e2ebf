"""Issue #10.2: the node persists trust and budget state one bounded row per key, only changed ones."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from federation.store import NodeStore, PolicyStateStore, make_engine, state
from policy import BudgetLedger, TrustBook, TrustConfig

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
PROVIDER = "did:web:hospital.example"


PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield NodeStore(make_engine(f"sqlite:///{tmp_path / 'node.db'}"))
        return
    if not PG_URL:
        pytest.skip("needs ACCORD_TEST_DATABASE_URL")
    schema = f"accord_trust_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield NodeStore(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _keys(store: NodeStore) -> dict[str, str]:
    with store.engine.connect() as conn:
        return {r.key: r.value for r in conn.execute(select(state.c.key, state.c.value)).all()}


def test_only_changed_keys_are_written_one_row_each_with_bounded_row_keys(store) -> None:
    pss = PolicyStateStore(store)
    ps = pss.load()
    long_org = "did:web:" + "x" * 900 + ".example"  # a row key must not grow with the string
    for i in range(20):
        ps.trust.record_denial((f"did:web:peer{i}.example", PROVIDER), now=NOW)
    ps.trust.record_denial((long_org, PROVIDER), now=NOW)
    ps.budgets.charge(("contract-a", long_org), 0.25, now=NOW)
    written = pss.persist(ps, now=NOW)
    assert written == 21 + 1 + 1  # pairs, the trust config, one budget key
    rows = _keys(store)
    assert all(len(k) <= 100 for k in rows)
    assert sum(k.startswith("trust:pair:") for k in rows) == 21
    # nothing changed: nothing written
    assert pss.persist(ps, now=NOW + dt.timedelta(seconds=5)) == 0
    # one pair changed: its row (and the config row) only
    ps.trust.record_drift(("did:web:peer3.example", PROVIDER), now=NOW + dt.timedelta(seconds=6))
    assert pss.persist(ps, now=NOW + dt.timedelta(seconds=7)) == 2
    again = PolicyStateStore(store).load()
    later = NOW + dt.timedelta(days=1)
    for pair in ps.trust.pairs():
        assert again.trust.score(pair, now=later) == ps.trust.score(pair, now=later)
    assert again.budgets.spent(("contract-a", long_org), window_seconds=3600, now=NOW) == 0.25


def test_earlier_whole_documents_are_imported_then_removed(store) -> None:
    legacy_book = TrustBook(TrustConfig(initial=1.0))
    store.put_state("trust", legacy_book.to_dict(), now=NOW)  # what the TVP runner seeds
    charge = {"contract_id": "c", "requester": "did:web:r.example", "at": NOW.timestamp(), "units": 0.3}
    store.put_state("budgets", {"charges": [charge]}, now=NOW)
    pss = PolicyStateStore(store)
    ps = pss.load()
    assert ps.trust.config.initial == 1.0
    assert ps.budgets.spent(("c", "did:web:r.example"), window_seconds=60, now=NOW) == 0.3
    ps.trust.record_denial(("did:web:r.example", PROVIDER), now=NOW)
    pss.persist(ps, now=NOW)
    rows = _keys(store)
    assert "trust" not in rows and "budgets" not in rows
    again = PolicyStateStore(store).load()
    assert again.trust.config.initial == 1.0
    assert again.budgets.spent(("c", "did:web:r.example"), window_seconds=60, now=NOW) == 0.3
    assert isinstance(again.requests, BudgetLedger)


def test_queued_operator_changes_are_applied_once(store) -> None:
    pss = PolicyStateStore(store)
    ps = pss.load()
    pair = ("did:web:r.example", PROVIDER)
    pss.request_trust_set(pair[0], PROVIDER, 0.8, reason="contract review", now=NOW)
    pss.persist(ps, now=NOW + dt.timedelta(seconds=1))
    assert ps.trust.score(pair, now=NOW) == 0.8
    assert [e["reason"] for e in ps.trust.history(pair)] == ["contract review"]
    pss.persist(ps, now=NOW + dt.timedelta(seconds=2))
    assert len(ps.trust.history(pair)) == 1
    assert not [k for k in _keys(store) if k.startswith("trust:set:")]


def test_the_periodic_write_runs_off_the_event_loop_and_only_writes_changes(tmp_path) -> None:
    import asyncio
    import threading

    from federation.identity import init_node
    from federation.node import Node
    from federation.server import _persist_loop
    from federation.supervisor import free_port

    d = tmp_path / "org"
    init_node(d, org_name="org", listen=f"127.0.0.1:{free_port()}", force=True)
    node = Node.open(d)
    threads: list[int] = []
    real = node.persist_state

    def persist_state(**kw) -> None:
        threads.append(threading.get_ident())
        real(**kw)

    node.persist_state = persist_state  # type: ignore[method-assign]
    node.trust.record_denial(("did:web:peer.example", node.did), now=NOW)

    async def go() -> int:
        task = asyncio.create_task(_persist_loop(node, every=0.01))
        while len(threads) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        return threading.get_ident()

    try:
        loop_thread = asyncio.run(go())
        assert threads and loop_thread not in threads
        rows = _keys(node.store)
        assert sum(k.startswith("trust:pair:") for k in rows) == 1
    finally:
        node.ledger.close()
        node.witness.close()
