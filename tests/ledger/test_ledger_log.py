"""TransparencyLog on real SQLite files: sequencing, integration, CAS guard, receipts, fsck."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_support import ORIGIN, make_entry, rfc_mth, rfc_verify_consistency, rfc_verify_inclusion

from ledger import (
    EMPTY_ROOT,
    CheckpointConflictError,
    CommitState,
    ConfigurationError,
    DisclosureEntry,
    EntryFilter,
    EntryNotFoundError,
    IdempotencyConflictError,
    InvalidEntryError,
    InvalidProofError,
    NotCheckpointedError,
    NoteSigner,
    Receipt,
    TransparencyLog,
    TreeSizeError,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_receipt,
)

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def test_append_assigns_dense_indices_and_is_durable(log, db_url, signer):
    res = log.append([make_entry(i) for i in range(5)], now=NOW)
    assert [r.index for r in res] == [0, 1, 2, 3, 4]
    assert not any(r.duplicate for r in res)
    assert res[2].leaf_hash == leaf_hash(make_entry(2).canonical_bytes())
    log.close()
    again = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    assert again.size() == 5
    stored = again.get(3)
    assert stored.entry == make_entry(3)
    assert stored.state is CommitState.SEQUENCED
    assert stored.sequenced_at == NOW
    again.close()


def test_duplicate_is_answered_from_stored_entry(log):
    log.append([make_entry(i) for i in range(3)])
    res = log.append([make_entry(9), make_entry(1), make_entry(9)])
    assert res[0].index == 3 and not res[0].duplicate
    assert res[1].index == 1 and res[1].duplicate
    assert res[1].leaf_hash == leaf_hash(make_entry(1).canonical_bytes())
    assert res[2].index == 3 and res[2].duplicate
    assert log.size() == 4


def test_reused_id_with_other_content_is_refused_without_partial_write(log):
    log.append([make_entry(1)])
    with pytest.raises(IdempotencyConflictError) as exc:
        log.append([make_entry(2), make_entry(1, purpose="other")])
    assert exc.value.metadata["index"] == "0"
    assert log.size() == 1 and log.find("disc-000002") is None
    with pytest.raises(IdempotencyConflictError):
        log.append([make_entry(5), make_entry(5, record_count=9)])


def test_entry_validation_and_size_limit(log):
    with pytest.raises(ValueError):
        make_entry(1, time="2026-11-21T05:00:00+02:00")
    with pytest.raises(ValueError):
        make_entry(1, kind="received")  # needs provider_leaf_hash
    with pytest.raises(ValueError):
        make_entry(1, request_digest="xyz")
    with pytest.raises(ValueError):
        make_entry(1, unknown_field=1)
    with pytest.raises(InvalidEntryError):
        log.append([make_entry(1, extra={"k": "v" * 70_000})])
    with pytest.raises(InvalidEntryError):
        log.append([{"kind": "disclosure"}])  # type: ignore[list-item]


def test_integrate_signs_checkpoint_and_proofs_verify(log, signer):
    entries = [make_entry(i) for i in range(13)]
    log.append(entries)
    signed = log.integrate(now=NOW)
    cp = signed.checkpoint
    assert (cp.origin, cp.size) == (ORIGIN, 13)
    assert cp.root == rfc_mth([e.canonical_bytes() for e in entries])
    assert open_checkpoint(signed.note, signer.verifier(), origin=ORIGIN) == signed
    for i in range(13):
        proof = log.inclusion_proof(i, 13)
        verify_inclusion(i, 13, leaf_hash(entries[i].canonical_bytes()), proof, cp.root)
        assert rfc_verify_inclusion(i, 13, leaf_hash(entries[i].canonical_bytes()), proof, cp.root)
    log.append([make_entry(i) for i in range(13, 40)])
    signed2 = log.integrate(batch_size=7)
    for m in range(1, 41):
        old_root = rfc_mth([make_entry(i).canonical_bytes() for i in range(m)])
        proof = log.consistency_proof(m, 40)
        verify_consistency(m, 40, old_root, signed2.checkpoint.root, proof)
        assert rfc_verify_consistency(m, 40, old_root, signed2.checkpoint.root, proof)
    assert log.latest_checkpoint() == signed2
    assert log.checkpoint(13) == signed
    with pytest.raises(TreeSizeError):
        log.inclusion_proof(0, 41)
    with pytest.raises(TreeSizeError):
        log.consistency_proof(5, 41)


def test_empty_log_checkpoint_and_repeat_integrate_does_not_resign(log):
    assert log.latest_checkpoint() is None
    first = log.integrate()
    assert first.checkpoint.size == 0 and first.checkpoint.root == EMPTY_ROOT
    assert log.integrate() == first
    log.append([make_entry(1)])
    assert log.integrate().checkpoint.size == 1


def test_commit_states_progress(log):
    log.append([make_entry(i) for i in range(3)])
    assert log.get(0).state is CommitState.SEQUENCED
    log.integrate()
    log.append([make_entry(3)])
    assert log.get(2).state is CommitState.CHECKPOINTED
    assert log.get(3).state is CommitState.SEQUENCED
    assert log.state(1) is CommitState.CHECKPOINTED
    marks = log.watermarks()
    assert (marks.sequenced, marks.integrated, marks.checkpointed, marks.witnessed) == (4, 3, 3, 0)
    with pytest.raises(EntryNotFoundError):
        log.get(4)


def test_receipt_round_trip_and_wrong_entry(log, signer):
    log.append([make_entry(i) for i in range(6)])
    with pytest.raises(NotCheckpointedError):
        log.receipt(2)
    log.integrate()
    receipt = log.receipt(4)
    text = receipt.to_text()
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 4\n")
    assert Receipt.parse(text) == receipt
    cp = verify_receipt(text, entry=make_entry(4), log_verifier=signer.verifier())
    assert cp.size == 6
    assert verify_receipt(receipt, entry=make_entry(4).canonical_bytes(), log_verifier=signer.verifier())
    with pytest.raises(InvalidProofError):
        verify_receipt(receipt, entry=make_entry(3), log_verifier=signer.verifier())
    other = NoteSigner(ORIGIN, b"\x07" * 32)
    with pytest.raises(Exception) as exc:
        verify_receipt(receipt, entry=make_entry(4), log_verifier=other.verifier())
    assert exc.value.__class__.__name__ == "InvalidSignatureError"
    with pytest.raises(EntryNotFoundError):
        log.receipt(6)


def test_query_filters(log):
    log.append(
        [
            make_entry(0),
            make_entry(1, requester_org="did:web:other.example", decision="deny", reason="DENY"),
            make_entry(2, fields_requested=["zip"], fields_released=[], fields_stripped=[]),
            make_entry(3, time="2026-11-22T00:00:00.123456789Z", kind="denial"),
            make_entry(4, requester_agent="did:key:z6MkOther", purpose="billing"),
        ]
    )
    ids = lambda flt: [s.index for s in log.query(flt)]  # noqa: E731
    assert ids(EntryFilter()) == [0, 1, 2, 3, 4]
    assert ids(EntryFilter(counterpart_org="did:web:other.example")) == [1]
    assert ids(EntryFilter(counterpart_org="did:web:provider.example")) == [0, 1, 2, 3, 4]
    assert ids(EntryFilter(decision="deny")) == [1]
    assert ids(EntryFilter(field="zip")) == [2]
    assert ids(EntryFilter(field="name")) == [0, 1, 3, 4]
    assert ids(EntryFilter(kind="denial")) == [3]
    assert ids(EntryFilter(agent_did="did:key:z6MkOther")) == [4]
    assert ids(EntryFilter(purpose="billing", contract_id="contract-1")) == [4]
    day2 = datetime(2026, 11, 22, tzinfo=UTC)
    assert ids(EntryFilter(since=day2)) == [3]
    assert ids(EntryFilter(until=day2)) == [0, 1, 2, 4]
    assert ids(EntryFilter(limit=2, start_index=1)) == [1, 2]
    with pytest.raises(ValueError):
        EntryFilter(limit=0)
    with pytest.raises(ValueError):
        EntryFilter(since=datetime(2026, 1, 1))


def test_reopen_with_other_origin_or_key_is_refused(log, db_url, signer):
    log.append([make_entry(0)])
    log.close()
    with pytest.raises(ConfigurationError):
        TransparencyLog.open(db_url, origin="other.example/log", signer=signer)
    with pytest.raises(ConfigurationError):
        TransparencyLog.open(db_url, origin=ORIGIN, signer=NoteSigner(ORIGIN, b"\x09" * 32))


# ---------------------------------------------------------------- CAS guard


def test_cas_refuses_second_root_for_a_signed_size(log):
    log.append([make_entry(i) for i in range(4)])
    signed = log.integrate()
    with log.store.write() as tx:  # a corrupted/forked replica state
        tx.set_tree(4, b"\x55" * 32)
    with pytest.raises(CheckpointConflictError) as exc:
        log.integrate()
    assert exc.value.metadata["size"] == "4"
    assert log.latest_checkpoint() == signed


def test_cas_refuses_smaller_size_across_restart(db_url, signer):
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    log.append([make_entry(i) for i in range(8)])
    log.integrate()
    log.close()
    # Roll back the tree state (as a restored backup of the tree rows would).
    con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    root3 = rfc_mth([make_entry(i).canonical_bytes() for i in range(3)])
    con.execute("UPDATE ledger_tree SET size = 3, root = ?", (root3,))
    con.commit()
    con.close()
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    with log.store.write() as tx:  # stop integration from re-reaching 8
        tx.conn.exec_driver_sql("DELETE FROM ledger_entries WHERE idx >= 3")
    with pytest.raises(CheckpointConflictError):
        log.integrate()
    assert log.latest_checkpoint().checkpoint.size == 8
    log.close()


def test_cas_refuses_inconsistent_extension(log):
    log.append([make_entry(i) for i in range(5)])
    log.integrate()
    log.append([make_entry(i) for i in range(5, 9)])
    with log.store.write() as tx:  # someone rewrote an already signed node
        tx.conn.exec_driver_sql("UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0")
    with pytest.raises(CheckpointConflictError):
        log.integrate()
    assert log.latest_checkpoint().checkpoint.size == 5


def test_concurrent_appenders_and_integrators_on_one_sqlite_file(db_url, signer):
    logs = [TransparencyLog.open(db_url, origin=ORIGIN, signer=signer) for _ in range(4)]
    acks: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for j in range(15):
                res = logs[k].append([make_entry(k * 1000 + j * 2), make_entry(k * 1000 + j * 2 + 1)])
                with lock:
                    acks.extend(r.index for r in res)
                if j % 5 == 0:
                    logs[k].integrate()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(acks) == list(range(120))
    final = logs[0].integrate()
    assert final.checkpoint.size == 120
    report = logs[0].verify()
    assert report.ok, report.problems
    assert report.checkpoints_checked >= 2
    for lg in logs:
        lg.close()


# ---------------------------------------------------------------- fsck


def _fresh(db_url, signer, n=20):
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    log.append([make_entry(i) for i in range(n)])
    log.integrate()
    log.append([make_entry(i) for i in range(n, n + 3)])  # sequenced, not integrated
    return log


def _sql(db_url, statement, *args):
    con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    con.execute(statement, args)
    con.commit()
    con.close()


def test_verify_passes_on_healthy_log(db_url, signer):
    log = _fresh(db_url, signer)
    report = log.verify()
    assert report.ok and report.entries_checked == 23 and report.integrated_size == 20
    assert report.first_bad_index is None


def test_verify_names_edited_row(db_url, signer):
    log = _fresh(db_url, signer)
    data = make_entry(7, purpose="exfiltration").canonical_bytes()
    _sql(db_url, "UPDATE ledger_entries SET data = ? WHERE idx = 7", data)
    report = log.verify()
    assert not report.ok and report.first_bad_index == 7


def test_verify_names_deleted_row(db_url, signer):
    log = _fresh(db_url, signer)
    _sql(db_url, "DELETE FROM ledger_entries WHERE idx = 11")
    report = log.verify()
    assert not report.ok and report.first_bad_index == 11
    assert any("11 is missing" in p for p in report.problems)


def test_verify_detects_consistent_rewrite_via_signed_checkpoint(db_url, signer):
    log = _fresh(db_url, signer)
    data = make_entry(3, purpose="rewritten").canonical_bytes()
    lh = leaf_hash(data)
    _sql(
        db_url,
        "UPDATE ledger_entries SET data = ?, leaf_hash = ?, purpose = ? WHERE idx = 3",
        data,
        lh,
        "rewritten",
    )
    _sql(db_url, "UPDATE ledger_nodes SET hash = ? WHERE level = 0 AND idx = 3", lh)
    report = log.verify()
    # Leaves 2 and 3 share the first mismatching parent; nothing can tell which one moved.
    assert not report.ok and report.first_bad_index == 2
    assert any("checkpoint 20" in p for p in report.problems)


def test_verify_detects_edited_node_and_forged_checkpoint(db_url, signer):
    log = _fresh(db_url, signer)
    _sql(db_url, "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 3 AND idx = 1")
    report = log.verify()
    assert not report.ok and report.first_bad_index == 8
    log2 = _fresh(db_url.replace("ledger.db", "l2.db"), signer)
    _sql(
        db_url.replace("ledger.db", "l2.db"),
        "UPDATE ledger_checkpoints SET note = replace(note, '\n20\n', '\n21\n')",
    )
    assert not log2.verify().ok
    log.close()
    log2.close()


def test_clock_is_a_parameter(log):
    log.append([make_entry(0)], now=NOW - timedelta(days=1))
    assert log.get(0).sequenced_at == NOW - timedelta(days=1)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
    extra=st.dictionaries(
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=5),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8),
        max_size=4,
    ),
    trust=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    count=st.integers(min_value=0, max_value=2**53 - 1),
)
def test_canonical_fast_path_equals_rfc8785(text, extra, trust, count):
    e = make_entry(
        1,
        purpose=text or "p",
        extra=extra,
        effective_trust=trust,
        record_count=count,
        fields_requested=[text or "f", "g"],
    )
    assert e.canonical_bytes() == rfc8785.dumps(e.model_dump(mode="json"))
    assert DisclosureEntry.from_canonical_bytes(e.canonical_bytes()) == e


def test_batched_receipts_equal_single_receipts(tmp_path):
    """receipts(indices) gives exactly what receipt(i) gives, one transaction for the batch."""
    from ledger import NoteSigner, TransparencyLog, verify_receipt

    signer = NoteSigner("batch.example/log", bytes(range(32)))
    log = TransparencyLog.open(f"sqlite:///{tmp_path / 'b.db'}", origin="batch.example/log", signer=signer)
    try:
        from ledger import DisclosureEntry

        def entry(i):
            return DisclosureEntry(
                kind="disclosure",
                disclosure_id=f"b{i}",
                time="2026-11-21T00:00:00Z",
                provider_org="did:web:a.accord.test",
                requester_org="did:web:b.accord.test",
                requester_agent="",
                provider_agent="",
                contract_id="c",
                contract_hash="ab" * 32,
                purpose="p",
                fields_requested=["x"],
                fields_released=["x"],
                fields_stripped=[],
                record_count=1,
                decision="allow",
                reason="",
                decision_hash="0" * 64,
                request_digest="0" * 64,
                response_digest="0" * 64,
                effective_trust=0.5,
            )

        for start, n in ((0, 5), (5, 1), (6, 37)):
            res = log.append([entry(start + i) for i in range(n)])
            log.integrate()
            idx = [r.index for r in res]
            batch = log.receipts(idx)
            assert [r.to_text() for r in batch] == [log.receipt(i).to_text() for i in idx]
            for r, i in zip(batch, idx, strict=True):
                verify_receipt(r, entry=entry(i), log_verifier=signer.verifier())
        assert log.receipts([]) == []
    finally:
        log.close()


# ------------------------------------------------------------------ one commit per batch


def _count_commits(log) -> list[int]:
    """Count write transactions (SQLite ``BEGIN IMMEDIATE``: each commit of one is an fsync)."""
    import sqlalchemy as sa

    seen = [0]

    @sa.event.listens_for(log.store.engine, "before_cursor_execute")
    def _on_execute(conn, cursor, statement, *args) -> None:  # noqa: ARG001
        if statement.strip().upper() == "BEGIN IMMEDIATE":
            seen[0] += 1

    return seen


def test_append_integrated_is_one_commit_and_its_receipts_verify(log, signer):
    log.append([make_entry(i) for i in range(3)])  # sequenced without a receipt, not integrated
    commits = _count_commits(log)
    done = log.append_integrated([make_entry(i) for i in range(3, 8)], now=NOW)
    res, signed = done.results, done.checkpoint
    assert commits[0] == 1
    assert [r.index for r in res] == [3, 4, 5, 6, 7]
    assert signed.checkpoint.size == 8  # the earlier entries were integrated with the batch
    assert log.latest_checkpoint() == signed
    for r, rc, i in zip(res, done.receipts, range(3, 8), strict=True):
        assert rc.index == r.index and rc.checkpoint_note == signed.note
        verify_receipt(rc, entry=make_entry(i), log_verifier=signer.verifier())
        verify_receipt(log.receipt(r.index), entry=make_entry(i), log_verifier=signer.verifier())
    assert log.verify().ok


def test_append_integrated_refused_signature_writes_nothing(log):
    log.append_integrated([make_entry(i) for i in range(5)])
    with log.store.write() as tx:  # someone rewrote an already signed node
        tx.conn.exec_driver_sql("UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0")
    with pytest.raises(CheckpointConflictError):
        log.append_integrated([make_entry(i) for i in range(5, 9)])
    assert log.size() == 5  # the appends were rolled back with the refused signature
    assert log.find(make_entry(6).disclosure_id) is None
    assert log.latest_checkpoint().checkpoint.size == 5


def test_append_integrated_keeps_idempotency(log):
    first = log.append_integrated([make_entry(1), make_entry(2)]).results
    done = log.append_integrated([make_entry(2), make_entry(3)])
    again, signed = done.results, done.checkpoint
    assert again[0].duplicate and again[0].index == first[1].index
    assert not again[1].duplicate and again[1].index == 2
    assert signed.checkpoint.size == 3
    with pytest.raises(IdempotencyConflictError):
        log.append_integrated([make_entry(3, purpose="other")])
    assert log.size() == 3


@pytest.fixture(params=["sqlite", "postgresql"])
def any_log(request, tmp_path, signer):
    """A log on SQLite, and on PostgreSQL when ACCORD_TEST_DATABASE_URL is set (own schema)."""
    import os
    import uuid

    if request.param == "sqlite":
        lg = TransparencyLog.open(f"sqlite:///{tmp_path / 'chain.db'}", origin=ORIGIN, signer=signer)
        yield lg
        lg.close()
        return
    pg = os.environ.get("ACCORD_TEST_DATABASE_URL")
    if not pg:
        pytest.skip("PostgreSQL tests need ACCORD_TEST_DATABASE_URL")
    import sqlalchemy as sa

    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg else "?"
    lg = TransparencyLog.open(f"{pg}{sep}options=-csearch_path%3D{schema}", origin=ORIGIN, signer=signer)
    try:
        yield lg
    finally:
        lg.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_agent_filter_finds_every_agent_of_a_delegation_chain(any_log):
    """Provenance (issue #15): ``extra.root_agent`` / ``extra.chain_agents`` match, as whole items only.

    SQLite's LIKE never matches a BLOB: this failed there (no row found) before
    the filter used ``instr``; on PostgreSQL it runs as bytea LIKE (``_`` escaped).
    """
    chain = "did:key:z6MkRoot,did:key:z6MkMid_1,did:key:z6MkLeaf"
    any_log.append(
        [
            make_entry(0),
            make_entry(
                1,
                requester_agent="did:key:z6MkLeaf",
                extra={"root_agent": "did:key:z6MkRoot", "chain_agents": chain, "delegation_chain": "a,b,c"},
            ),
        ]
    )
    ids = lambda flt: [s.index for s in any_log.query(flt)]  # noqa: E731
    for agent in ("did:key:z6MkRoot", "did:key:z6MkMid_1", "did:key:z6MkLeaf"):
        assert ids(EntryFilter(agent_did=agent)) == [1], agent
    for outsider in ("did:key:z6MkMid", "did:key:z6MkMidX1", "did:key:z6Mk", "did:key:z6MkRoot,"):
        assert ids(EntryFilter(agent_did=outsider)) == [], outsider
