"""Newest-first keyset paging of ``TransparencyLog.query`` (the explorer's read) agrees with brute force.

The counterpart and agent filters run as index-ordered selects merged by
index, the agent filter's delegation provenance through ``ledger_entry_agents``,
and a ``since``/``until`` window bounds the walk to the window's index range
(``ledger/storage/repository.py``); every page of every filter must be exactly
the brute-force answer, on SQLite and (when its URL is set) PostgreSQL, with
entry times out of index order and whichever way the window is bounded.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger import DisclosureEntry, EntryFilter, NoteSigner, TransparencyLog
from ledger.query import agent_key
from ledger.storage import repository

ORIGIN = "keyset.accord.test/log"
N = 240
T0 = dt.datetime(2026, 12, 4, 10, tzinfo=dt.UTC)


def _entry(i: int) -> DisclosureEntry:
    me = "did:web:me.accord.test"
    other = f"did:web:peer{i % 3}.accord.test"
    provider, requester = (me, other) if i % 4 else (other, me)
    kind = "operator_action" if i % 37 == 0 else "denial" if i % 5 == 0 else "disclosure"
    # delegated requests name their provenance: a rare root agent, and chains of two or three agents
    extra = {}
    if i % 9 == 4:
        chain = ["did:key:z6MkRoot", f"did:key:z6MkA{i % 7}"] if i % 27 == 4 else [f"did:key:z6MkA{i % 5}"]
        chain += ["did:key:z6MkHolderX"] if i % 18 == 4 else []
        extra = {"root_agent": chain[0], "chain_agents": ",".join(chain)}
    # times mostly follow the index; every 11th entry is an hour late (an out-of-order time)
    seconds = i * 10 - (3600 if i % 11 == 0 else 0)
    return DisclosureEntry(
        kind=kind,
        disclosure_id=f"k-{i}",
        time=(T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        extra=extra,
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
    # delegation provenance: only as root agent / only inside a chain / with a counterpart too
    {"agent_did": "did:key:z6MkRoot"},
    {"agent_did": "did:key:z6MkA4"},
    {"agent_did": "did:key:z6MkRoot", "counterpart_org": "did:web:peer1.accord.test"},
    {"agent_did": "did:key:z6MkHolder"},  # a prefix of a chain item, never a match
    # time windows: recent, old, narrow, empty, combined with other filters
    {"since": T0 + dt.timedelta(seconds=1800)},
    {"until": T0 + dt.timedelta(seconds=600)},
    {"since": T0 + dt.timedelta(seconds=300), "until": T0 + dt.timedelta(seconds=900)},
    {"since": T0 + dt.timedelta(days=1)},
    {"since": T0 + dt.timedelta(seconds=500), "kind": "denial"},
    {"until": T0 + dt.timedelta(seconds=1200), "agent_did": "did:key:z6MkA4"},
    {
        "since": T0 + dt.timedelta(seconds=100),
        "until": T0 + dt.timedelta(seconds=100),
        "counterpart_org": "did:web:me.accord.test",
    },
]


def _matches(e: DisclosureEntry, f: dict) -> bool:
    if "counterpart_org" in f and f["counterpart_org"] not in (e.provider_org, e.requester_org):
        return False
    chain = e.extra.get("chain_agents", "").split(",")
    if "agent_did" in f and f["agent_did"] not in (e.requester_agent, e.provider_agent, *chain):
        return False
    if "since" in f and e.timestamp() < f["since"]:
        return False
    if "until" in f and e.timestamp() >= f["until"]:
        return False
    if "field" in f and f["field"] not in (*e.fields_requested, *e.fields_released, *e.fields_stripped):
        return False
    return all(getattr(e, k) == v for k, v in f.items() if k in ("kind", "contract_id", "decision"))


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("probe", [10_000, 30, 3], ids=["small-window", "near-walk", "edge-aggregate"])
def test_every_page_of_every_filter_matches_brute_force(tmp_path, monkeypatch, newest_first, probe):
    # the probe size decides which way a window is bounded: every way must give the same pages
    monkeypatch.setattr(repository, "TIME_WINDOW_PROBE", probe)
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


def test_migration_backfills_provenance_agents_and_verify_checks_them(tmp_path):
    """0003 fills ``ledger_entry_agents`` from existing entries; ``verify`` catches a deleted or added row."""
    from alembic import command
    from alembic.config import Config

    entries = [_entry(i) for i in range(60)]
    delegated = [i for i, e in enumerate(entries) if "did:key:z6MkRoot" in e.extra.get("chain_agents", "")]
    assert delegated
    flt = EntryFilter(agent_did="did:key:z6MkRoot", limit=100)
    for url in _urls(tmp_path):
        lg = TransparencyLog.open(url, origin=ORIGIN, signer=NoteSigner(ORIGIN, bytes(32)))
        lg.append(entries)
        assert [e.index for e in lg.query(flt)] == delegated
        lg.close()
        # back to 0002 (no side table), then up again: the migration backfills from the entry bytes
        eng = sa.create_engine(url)
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(repository.__file__).parent / "migrations"))
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
        with eng.connect() as conn:
            assert "ledger_entry_agents" not in sa.inspect(conn).get_table_names()
        lg = TransparencyLog.open(url, origin=ORIGIN, signer=NoteSigner(ORIGIN, bytes(32)))
        add = sa.text("INSERT INTO ledger_entry_agents (agent_sha256, idx) VALUES (:k, :i)")
        try:
            assert [e.index for e in lg.query(flt)] == delegated
            assert lg.verify().ok
            with eng.begin() as conn:
                conn.execute(sa.text("DELETE FROM ledger_entry_agents WHERE idx = :i"), {"i": delegated[0]})
            report = lg.verify()
            assert not report.ok and report.first_bad_index == delegated[0]
            assert any("provenance agent rows" in p for p in report.problems)
            # a row naming an agent the entry does not (it would show the entry under that agent)
            with eng.begin() as conn:
                conn.execute(add, {"k": agent_key("did:key:z6MkRoot"), "i": delegated[0]})
                conn.execute(add, {"k": agent_key("did:x:y"), "i": 1})
            report = lg.verify()
            assert not report.ok and report.first_bad_index == 1
        finally:
            lg.close()
            eng.dispose()
