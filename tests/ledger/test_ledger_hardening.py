"""Hardening of the ledger at rest (issue #10 class 6): ``verify`` checks the query columns."""

from __future__ import annotations

import sqlite3

import pytest
from ledger_support import ORIGIN, make_entry

from ledger import EntryFilter, TransparencyLog


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
