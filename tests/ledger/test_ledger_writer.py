"""The node's group-commit writer: one refused entry never fails a batch of unrelated entries."""

from __future__ import annotations

import asyncio

import pytest
from ledger_support import ORIGIN, make_entry

from federation.ledger_writer import LedgerWriter
from ledger import IdempotencyConflictError, InvalidEntryError, TransparencyLog, verify_receipt


def test_one_bad_entry_does_not_fail_the_batch(db_url, signer):
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    log.append([make_entry(0)])  # disc-000000 is on record

    async def main():
        w = LedgerWriter(log, max_batch=64)
        w.start()
        try:
            return await asyncio.gather(
                w.write(make_entry(1), receipt=True),
                w.write(make_entry(2, extra={"blob": "x" * 70_000}), receipt=True),  # over 65,535 bytes
                w.write(make_entry(0, purpose="other"), receipt=False),  # id reused, other content
                w.write(make_entry(3), receipt=False),
                return_exceptions=True,
            ), w.batches
        finally:
            await w.stop()

    (ok1, too_big, conflict, ok3), batches = asyncio.run(main())
    assert batches == 1  # all four were in one batch
    assert isinstance(too_big, InvalidEntryError)
    assert isinstance(conflict, IdempotencyConflictError)
    assert not isinstance(ok1, BaseException) and not isinstance(ok3, BaseException)
    assert log.get(ok1.index).entry.disclosure_id == "disc-000001"
    assert log.get(ok3.index).entry.disclosure_id == "disc-000003"
    verify_receipt(ok1.receipt, entry=make_entry(1), log_verifier=signer.verifier())
    assert log.size() == 3
    log.close()


def test_a_single_bad_entry_gets_its_error(db_url, signer):
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)

    async def main():
        w = LedgerWriter(log)
        w.start()
        try:
            await w.write(make_entry(2, extra={"blob": "x" * 70_000}), receipt=True)
        finally:
            await w.stop()

    with pytest.raises(InvalidEntryError):
        asyncio.run(main())
    log.close()


def _count_commits(log) -> list[int]:
    """Count write transactions (SQLite ``BEGIN IMMEDIATE``: each commit of one is an fsync)."""
    import sqlalchemy as sa

    seen = [0]

    @sa.event.listens_for(log.store.engine, "before_cursor_execute")
    def _on_execute(conn, cursor, statement, *args) -> None:  # noqa: ARG001
        if statement.strip().upper() == "BEGIN IMMEDIATE":
            seen[0] += 1

    return seen


def test_a_batch_with_receipts_is_one_commit(db_url, signer):
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    commits = _count_commits(log)

    async def main():
        w = LedgerWriter(log, max_batch=64)
        w.start()
        try:
            got = await asyncio.gather(*(w.write(make_entry(i), receipt=True) for i in range(10)))
            return got, w.batches
        finally:
            await w.stop()

    written, batches = asyncio.run(main())
    assert batches == 1
    assert commits[0] == 1  # append, integration and the checkpoint signature together
    for i, wr in enumerate(written):
        verify_receipt(wr.receipt, entry=make_entry(i), log_verifier=signer.verifier())
    log.close()


def test_received_entries_are_group_committed_and_durable_when_acknowledged(db_url, signer):
    """The requester's "received" path: many writes, few commits, every acknowledged entry on disk."""
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    commits = _count_commits(log)

    async def main():
        w = LedgerWriter(log, max_batch=16)
        w.start()
        try:
            got = await asyncio.gather(*(w.write(make_entry(i), receipt=False) for i in range(40)))
            return got, w.batches
        finally:
            await w.stop()

    written, batches = asyncio.run(main())
    log.close()
    assert batches == commits[0] == 3  # 16 + 16 + 8: one commit per batch
    assert all(wr.receipt is None for wr in written)
    reopened = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    for i, wr in enumerate(written):
        assert reopened.get(wr.index).entry.disclosure_id == make_entry(i).disclosure_id
    assert reopened.verify().ok
    reopened.close()


def _kept_row(i: int) -> dict:
    import datetime as dt

    return {
        "disclosure_id": f"disc-{i:06d}",
        "provider_org": "did:web:hospital.example",
        "contract_id": "c",
        "contract_hash": "h",
        "agent_did": "did:key:z6Mk",
        "obligations": [],
        "onward": {},
        "received_at": dt.datetime(2026, 12, 4, tzinfo=dt.UTC),
        "retain_until": None,
        "payload": "[]",
        "value_digests": [],
    }


def test_kept_disclosures_are_group_committed_on_the_writer_thread(tmp_path, db_url, signer):
    """The requester's kept disclosures (issue #15): many callers, one transaction per turn, each durable."""
    import threading

    from federation.ledger_writer import GroupCommit
    from federation.store import NodeStore, ReceivedStore, make_engine

    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    store = ReceivedStore(NodeStore(make_engine(f"sqlite:///{tmp_path / 'node.db'}")))
    turns: list[tuple[int, str]] = []

    def commit(rows):
        turns.append((len(rows), threading.current_thread().name))
        store.put_many(rows)

    async def main():
        w = LedgerWriter(log)
        w.start()
        kept = GroupCommit(w, commit, max_batch=16)
        try:
            await asyncio.gather(*(kept.submit(_kept_row(i)) for i in range(40)))
            await kept.submit(_kept_row(3))  # the same disclosure again: idempotent
        finally:
            await kept.stop()
            await w.stop()

    asyncio.run(main())
    log.close()
    assert [n for n, _ in turns] == [16, 16, 8, 1]
    assert all(name.startswith("ledger") for _, name in turns)  # the one thread writing the database
    assert sorted(r["disclosure_id"] for r in store.rows()) == [f"disc-{i:06d}" for i in range(40)]


def test_a_failed_group_commit_answers_every_caller_of_its_turn(db_url, signer):
    from federation.ledger_writer import GroupCommit

    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)

    def commit(rows):
        if any(r == "bad" for r in rows):
            raise RuntimeError("database down")

    async def main():
        w = LedgerWriter(log)
        w.start()
        kept = GroupCommit(w, commit)
        try:
            first = await asyncio.gather(kept.submit("a"), kept.submit("bad"), return_exceptions=True)
            return first, await kept.submit("b")  # the worker keeps serving after a failed turn
        finally:
            await kept.stop()
            await w.stop()

    (a, bad), b = asyncio.run(main())
    log.close()
    assert isinstance(a, RuntimeError) and isinstance(bad, RuntimeError)  # nothing of the turn committed
    assert b is None
