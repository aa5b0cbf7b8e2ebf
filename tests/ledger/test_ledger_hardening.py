"""Hardening of the ledger at rest (issue #10 class 6): ``verify`` checks the query columns."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from ledger_support import ORIGIN, make_entry

from ledger import EntryFilter, TransparencyLog

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def _sql(db_url: str, statement: str, *args) -> None:
    con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    con.execute(statement, args)
    con.commit()
    con.close()


def _fresh(db_url, signer, n=12):
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer)
    log.append([make_entry(i) for i in range(n)])
    log.integrate()
    return log


@pytest.mark.parametrize(
    ("statement", "hidden_by"),
    [
        (
            "UPDATE ledger_entries SET contract_id = 'other' WHERE idx = 5",
            EntryFilter(contract_id="contract-1"),
        ),
        ("UPDATE ledger_entries SET purpose = 'x' WHERE idx = 5", EntryFilter(purpose="care-coordination")),
        (
            "UPDATE ledger_entries SET requester_org = 'did:web:nobody' WHERE idx = 5",
            EntryFilter(counterpart_org="did:web:requester.example"),
        ),
        ("UPDATE ledger_entries SET decision = 'deny' WHERE idx = 5", EntryFilter(decision="allow")),
        ("UPDATE ledger_entries SET kind = 'drift' WHERE idx = 5", EntryFilter(kind="disclosure")),
        ("UPDATE ledger_entries SET time_us = 0 WHERE idx = 5", None),
        ("UPDATE ledger_entries SET requester_agent = '' WHERE idx = 5", None),
        (
            "DELETE FROM ledger_entry_fields WHERE idx = 5 AND field = 'diagnosis'",
            EntryFilter(field="diagnosis"),
        ),
    ],
)
def test_verify_catches_an_edited_query_column(db_url, signer, statement, hidden_by):
    """A DB edit of an indexed column hides the entry from filtered queries; verify must say so."""
    log = _fresh(db_url, signer)
    assert log.verify().ok
    _sql(db_url, statement)
    if hidden_by is not None:  # the edit does hide the entry (the attack is real)
        assert 5 not in {e.index for e in log.query(hidden_by)}
    report = log.verify()
    assert not report.ok
    assert report.first_bad_index == 5
    log.close()


def test_verify_catches_field_rows_no_entry_holds(db_url, signer):
    """A field row added for an entry (it then matches a filter it should not) is reported."""
    log = _fresh(db_url, signer)
    _sql(db_url, "INSERT INTO ledger_entry_fields (idx, role, field) VALUES (3, 1, 'ssn')")
    assert 3 in {e.index for e in log.query(EntryFilter(field="ssn"))}
    report = log.verify()
    assert not report.ok and report.first_bad_index == 3
    log.close()
    log2 = _fresh(db_url.replace("ledger.db", "l2.db"), signer)
    _sql(db_url.replace("ledger.db", "l2.db"), "INSERT INTO ledger_entry_fields VALUES (999, 1, 'ssn')")
    report = log2.verify()
    assert not report.ok and any("field rows" in p for p in report.problems)
    log2.close()


# ------------------------------------------------------------------ witness: rollback and regrowth


def test_witness_keeps_evidence_of_a_log_rolled_back_and_regrown(tmp_path, signer):
    """The log's own key signs a larger tree that does not extend the cosigned one: evidence + alert."""
    from ledger import Witness

    honest = TransparencyLog.open(f"sqlite:///{tmp_path / 'a.db'}", origin=ORIGIN, signer=signer)
    honest.append([make_entry(i) for i in range(10)])
    honest.integrate()
    w = Witness.open(f"sqlite:///{tmp_path / 'w.db'}", name="w.example", seed=b"\x44" * 32)
    w.add_log(ORIGIN, signer.vkey)
    assert w.add_checkpoint(honest.add_checkpoint_request(0), now=NOW).status == 200
    cosigned = honest.latest_checkpoint().note
    # The operator restores a backup of size 6 and grows a different history to size 14.
    regrown = TransparencyLog.open(f"sqlite:///{tmp_path / 'b.db'}", origin=ORIGIN, signer=signer)
    regrown.append([make_entry(i) for i in range(6)])
    regrown.append([make_entry(i, purpose="rewritten") for i in range(100, 108)])
    regrown.integrate()
    body = regrown.add_checkpoint_request(10, size=14)  # a proof valid only inside the new history
    r = w.add_checkpoint(body, now=NOW)
    assert r.status == 422
    assert w.latest(ORIGIN).checkpoint.size == 10  # nothing moved
    ev = w.equivocations()
    assert len(ev) == 1
    assert ev[0].note_a == cosigned and ev[0].note_b == regrown.latest_checkpoint().note
    assert ev[0].error().reason == "EQUIVOCATION"
    # the same pair again is kept once; evidence rows per log are capped
    assert w.add_checkpoint(body, now=NOW).status == 422
    assert len(w.equivocations()) == 1
    for log in (honest, regrown, w):
        log.close()


def test_witness_evidence_is_capped_per_log(tmp_path):
    from ledger import MAX_EVIDENCE_PER_LOG, Checkpoint, NoteSigner, Witness, format_add_checkpoint

    w = Witness.open(f"sqlite:///{tmp_path / 'w.db'}", name="w.example", seed=b"\x45" * 32)
    log = NoteSigner("log.example", b"\x01" * 32)
    w.add_log("log.example", log.vkey)
    first = log.sign(Checkpoint("log.example", 5, b"\x07" * 32).body())
    assert w.add_checkpoint(format_add_checkpoint(0, [], first), now=NOW).status == 200
    for i in range(MAX_EVIDENCE_PER_LOG + 10):
        fork = log.sign(Checkpoint("log.example", 5, i.to_bytes(32, "big")).body())
        assert w.add_checkpoint(format_add_checkpoint(5, [], fork), now=NOW).status == 409
    assert len(w.equivocations()) == MAX_EVIDENCE_PER_LOG
    w.close()
