"""Newest-first keyset paging of ``TransparencyLog.query`` (the explorer's read) agrees with brute force.

The counterpart and agent filters run as two index-ordered selects merged by
index (``ledger/storage/repository.py``); every page of every filter must be
exactly the brute-force answer, on SQLite and (when its URL is set) PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from ledger import DisclosureEntry, EntryFilter, NoteSigner, TransparencyLog

ORIGIN = "keyset.accord.test/log"
N = 240


def _entry(i: int) -> DisclosureEntry:
    me = "did:web:me.accord.test"
    other = f"did:web:peer{i % 3}.accord.test"
    provider, requester = (me, other) if i % 4 else (other, me)
    kind = "operator_action" if i % 37 == 0 else "denial" if i % 5 == 0 else "disclosure"
    return DisclosureEntry(
        kind=kind,
        disclosure_id=f"k-{i}",
        time=f"2026-12-04T10:{i // 60:02d}:{i % 60:02d}Z",
        provider_org=provider,
        requester_org=requester,
        requester_agent=f"did:key:z6MkA{i % 7}",
        provider_agent=f"did:key:z6MkA{(i + 3) % 11}" if i % 2 else "",
        contract_id=f"c-{i % 4}",
        contract_hash="ab" * 32,
        purpose="triage",
        fields_requested=("a", "b"),
        fields_released=("a",) if kind == "disclosure" else (),
        decision="allow" if kind == "disclosure" else "deny",
    )


def _urls(tmp_path):
    yield f"sqlite:///{tmp_path / 'keyset.db'}"
    url = os.environ.get("ACCORD_TEST_DATABASE_URL")
    if url:
        schema = "ks_" + uuid.uuid4().hex[:8]
        eng = sa.create_engine(url)
        with eng.begin() as c:
            c.exec_driver_sql(f"CREATE SCHEMA {schema}")
        try:
            yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
        finally:
            with eng.begin() as c:
                c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            eng.dispose()


FILTERS = [
    {},
    {"counterpart_org": "did:web:peer1.accord.test"},
    {"counterpart_org": "did:web:me.accord.test"},
    {"counterpart_org": "did:web:nobody.accord.test"},
    {"agent_did": "did:key:z6MkA3"},
    {"agent_did": "did:key:z6MkA3", "counterpart_org": "did:web:peer2.accord.test"},
    {"kind": "operator_action"},
    {"kind": "drift"},
    {"contract_id": "c-2", "decision": "deny"},
    {"field": "a", "counterpart_org": "did:web:peer0.accord.test"},
]


def _matches(e: DisclosureEntry, f: dict) -> bool:
    if "counterpart_org" in f and f["counterpart_org"] not in (e.provider_org, e.requester_org):
        return False
    if "agent_did" in f and f["agent_did"] not in (e.requester_agent, e.provider_agent):
        return False
    if "field" in f and f["field"] not in (*e.fields_requested, *e.fields_released, *e.fields_stripped):
        return False
    return all(getattr(e, k) == v for k, v in f.items() if k in ("kind", "contract_id", "decision"))


@pytest.mark.parametrize("newest_first", [True, False])
def test_every_page_of_every_filter_matches_brute_force(tmp_path, newest_first):
    entries = [_entry(i) for i in range(N)]
    for url in _urls(tmp_path):
        lg = TransparencyLog.open(url, origin=ORIGIN, signer=NoteSigner(ORIGIN, bytes(32)))
        try:
            lg.append(entries)
            for f in FILTERS:
                want = [i for i, e in enumerate(entries) if _matches(e, f)]
                if newest_first:
                    want.reverse()
                got: list[int] = []
                cursor: dict = {}
                for _ in range(N):  # walk the pages with the keyset cursor
                    page = lg.query(EntryFilter(**f, **cursor, limit=17, newest_first=newest_first))
                    got += [p.index for p in page]
                    if len(page) < 17:
                        break
                    last = page[-1].index
                    cursor = {"end_index": last} if newest_first else {"start_index": last + 1}
                assert got == want, (url.split(":")[0], f)
        finally:
            lg.close()


def test_end_index_bounds_and_validation(tmp_path):
    lg = TransparencyLog.open(
        f"sqlite:///{tmp_path / 'b.db'}", origin=ORIGIN, signer=NoteSigner(ORIGIN, bytes(32))
    )
    try:
        lg.append([_entry(i) for i in range(30)])
        assert [e.index for e in lg.query(EntryFilter(end_index=3, limit=10, newest_first=True))] == [2, 1, 0]
        assert lg.query(EntryFilter(end_index=0, newest_first=True)) == []
        assert [e.index for e in lg.query(EntryFilter(start_index=5, end_index=8))] == [5, 6, 7]
    finally:
        lg.close()
    with pytest.raises(ValueError):
        EntryFilter(end_index=-1)
