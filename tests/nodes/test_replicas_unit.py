"""The state a node's replicas share, with a fake clock: two tables over one database act as one.

Each test builds two sets of ``Shared*`` tables over one database (two
``ReplicaStateStore`` on two engines: what two replica processes hold) and
checks that what one does the other sees. On SQLite, and on PostgreSQL
when ``ACCORD_TEST_DATABASE_URL`` is set (a schema per test); the
multi-process tests are ``test_replicas.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa

from federation.errors import AuthenticationError, ResourceLimitError
from federation.replicas import IntegratorLease, ReplicaRole
from federation.sessions import (
    SharedChallengeTable,
    SharedLocalSessions,
    SharedNonceCache,
    SharedSessionTable,
)
from federation.store import NodeStore, ReplicaStateStore, make_engine


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def two(request, tmp_path):
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'node.db'}"
    else:
        if not PG_URL:
            pytest.skip("needs ACCORD_TEST_DATABASE_URL")
        schema = f"accord_rep_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    engines = [make_engine(url), make_engine(url)]
    NodeStore(engines[0])  # migrates
    yield [ReplicaStateStore(e) for e in engines]
    for e in engines:
        e.dispose()
    if schema is not None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _open(table, agent="did:key:z6MkA", peer="did:web:relief.accord.test", **kw):
    return table.create(
        peer_org=peer,
        agent_did=agent,
        agent_public_key=b"\x01" * 32,
        claims={"role": "r", "scopes": ["a"]},
        credential_id="urn:uuid:1",
        **kw,
    )


def test_a_session_opened_on_one_replica_is_usable_and_terminated_on_the_other(two):
    clock = FakeClock()
    a, b = (SharedSessionTable(s, ttl_seconds=60, clock=clock) for s in two)
    sess = _open(a)
    got = b.get(sess.id, peer_org="did:web:relief.accord.test")
    assert (got.agent_did, got.agent_public_key, got.claims) == (sess.agent_did, b"\x01" * 32, sess.claims)
    with pytest.raises(AuthenticationError) as e:
        b.get(sess.id, peer_org="did:web:other.accord.test")
    assert e.value.reason == "UNKNOWN_SESSION"
    assert b.terminate_agent("did:key:z6MkA") == 1
    with pytest.raises(AuthenticationError) as e:  # a holds it cached: the state is read anyway
        a.get(sess.id, peer_org="did:web:relief.accord.test")
    assert e.value.reason == "SESSION_TERMINATED"


def test_session_expiry_and_the_agent_cap_hold_across_replicas(two):
    clock = FakeClock()
    a, b = (SharedSessionTable(s, ttl_seconds=60, max_per_agent=2, clock=clock) for s in two)
    s1 = _open(a)
    _open(b)
    with pytest.raises(ResourceLimitError) as e:
        _open(a)
    assert e.value.reason == "SESSION_LIMIT_AGENT"
    clock.t += 61
    with pytest.raises(AuthenticationError) as e:
        b.get(s1.id, peer_org="did:web:relief.accord.test")
    assert e.value.reason == "SESSION_EXPIRED"
    _open(a)  # the expired ones no longer count


def test_delegation_authority_travels_with_the_session(two):
    from federation.delegation import DelegatedAuthority

    clock = FakeClock()
    a, b = (SharedSessionTable(s, ttl_seconds=60, clock=clock) for s in two)
    auth = DelegatedAuthority(
        holder="did:key:z6MkB",
        claims={"id": "did:key:z6MkB", "scopes": ["a"]},
        credential_id="urn:uuid:2",
        not_after=clock.t + 30,
        scopes=frozenset({"a"}),
        fields=frozenset({"x", "y"}),
        chain_agents=("did:key:z6MkA", "did:key:z6MkB"),
        root_credential={"id": "urn:uuid:0"},
    )
    sess = _open(a, agent="did:key:z6MkB", not_after=auth.not_after, delegation=auth)
    got = b.get(sess.id, peer_org="did:web:relief.accord.test")
    assert got.delegation == auth and got.delegation.root_credential == {"id": "urn:uuid:0"}
    assert got.expires_at == auth.not_after


def test_a_challenge_is_used_once_whichever_replica_issued_it(two):
    clock = FakeClock()
    a, b = (SharedChallengeTable(s, ttl_seconds=10, max_per_owner=2, clock=clock) for s in two)
    ch, _ = a.issue("peer agent", owner="peer")
    with pytest.raises(AuthenticationError):
        b.consume(ch, "peer other-agent")  # wrong subject: consumed and refused
    ch, _ = a.issue("peer agent", owner="peer")
    b.consume(ch, "peer agent")
    with pytest.raises(AuthenticationError) as e:
        a.consume(ch, "peer agent")
    assert e.value.reason == "WRONG_CHALLENGE"
    a.issue("s", owner="peer")
    b.issue("s", owner="peer")
    with pytest.raises(ResourceLimitError) as e:
        a.issue("s", owner="peer")
    assert e.value.reason == "CHALLENGE_LIMIT"
    clock.t += 11
    late, _ = b.issue("s", owner="peer")  # the expired ones no longer count
    clock.t += 11
    with pytest.raises(AuthenticationError):
        a.consume(late, "s")


def test_a_nonce_seen_by_one_replica_is_a_replay_at_the_other_until_swept(two):
    clock = FakeClock()
    a, b = (SharedNonceCache(s, skew_seconds=5, clock=clock) for s in two)
    ts = int(clock.t * 1000)
    a.check("n" * 20, ts)
    with pytest.raises(AuthenticationError) as e:
        b.check("n" * 20, ts)
    assert e.value.reason == "REPLAYED_REQUEST"
    with pytest.raises(AuthenticationError) as e:
        b.check("short", ts)
    assert e.value.reason == "BAD_NONCE"
    clock.t += 11
    assert b.sweep()["nonces"] == 1
    with pytest.raises(AuthenticationError) as e:  # swept, but the old request is stale anyway
        a.check("n" * 20, ts)
    assert e.value.reason == "STALE_REQUEST"


def test_local_sessions_are_shared(two):
    from federation.domain import LocalSession

    a, b = (SharedLocalSessions(s) for s in two)
    local = LocalSession("sid-1", "did:web:h.accord.test", "did:key:z6MkA", b"\x02" * 32, 123.0)
    a["sid-1"] = local
    assert b.get("sid-1") == local
    assert b.get("nope") is None


def test_the_integrator_lease_has_one_holder_and_moves_when_it_expires(two):
    clock = FakeClock()
    a = IntegratorLease(two[0], holder="host:1:r0", ttl_seconds=3, clock=clock)
    b = IntegratorLease(two[1], holder="host:2:r1", ttl_seconds=3, clock=clock)
    assert a.renew() and not b.renew()
    clock.t += 2
    assert a.renew() and not b.renew()  # renewed: still a's
    clock.t += 3.5  # a stopped renewing (killed)
    assert not a.holds()
    assert b.renew() and b.epoch == a.epoch + 1
    assert not a.renew()
    b.release()
    assert a.renew()


def test_budget_rows_are_read_and_written_under_the_shared_lock(two):
    from policy import BudgetLedger

    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    key = ("contract-1", "did:web:relief.accord.test")
    led_a, led_b = BudgetLedger(), BudgetLedger()
    for store, led in ((two[0], led_a), (two[1], led_b), (two[0], led_a)):
        with store.locked_ledger_rows(key) as rows:
            led.set_key_row(key, rows["budgets"])
            led.charge(key, 1.5, now=now)
            rows["budgets"] = led.key_row(key)
    with two[1].locked_ledger_rows(key) as rows:
        led_b.set_key_row(key, rows["budgets"])
    assert led_b.spent(key, window_seconds=3600, now=now) == pytest.approx(4.5)


def test_replica_role_ports_and_lock_files():
    r = ReplicaRole(index=2, count=3)
    assert r.shared and r.shift("127.0.0.1:7000") == "127.0.0.1:7002"
    assert r.shift("127.0.0.1:0") == "127.0.0.1:0" and r.shift("") == ""
    assert r.pidfile_name() == "node-replica-2.pid" and ReplicaRole().pidfile_name() == "node.pid"
    with pytest.raises(ValueError):
        ReplicaRole(index=3, count=3)


def _shared_states(two):
    """Each replica's policy state with its trust book shared as the node shares it (write-through)."""
    from federation.store import NodeStore, PolicyStateStore

    stores = [PolicyStateStore(NodeStore(s.engine)) for s in two]
    states = [pss.load() for pss in stores]
    for ps, rs in zip(states, two, strict=True):
        ps.ledgers_shared = True  # as the node sets it for replicas
        ps.trust.share(rs.trust_row, rs.locked_trust_row)
    return stores, states


def test_a_queued_operator_trust_change_is_applied_once_and_seen_by_every_replica(two):
    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    stores, states = _shared_states(two)
    pair = ("did:web:r.example", "did:web:p.example")
    stores[0].request_trust_set(pair[0], pair[1], 0.8, reason="contract review", now=now)
    for pss, ps in zip(stores, states, strict=True):
        pss.persist(ps, now=now + dt.timedelta(seconds=5))
        pss.persist(ps, now=now + dt.timedelta(seconds=10))
    for ps in states:  # taken and applied by one replica, once; read by both
        assert ps.trust.score(pair, now=now) == 0.8 and len(ps.trust.history(pair)) == 1
    assert not stores[0].get_rows("trust:set:")


def test_a_trust_penalty_at_one_replica_lowers_tau_at_the_other(two):
    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    _, states = _shared_states(two)
    a, b = states[0].trust, states[1].trust
    pair = ("did:web:r.example", "did:web:p.example")
    before = b.effective_trust(pair, ceiling=1.0, now=now)
    a.record_audit_hit(pair, now=now)
    b.record_denial(pair, now=now)  # applied on top of a's penalty, not on a stale copy
    penalty = a.config.audit_penalty + a.config.denial_penalty
    assert b.effective_trust(pair, ceiling=1.0, now=now) == pytest.approx(before - penalty)
    assert a.score(pair, now=now) == pytest.approx(before - penalty)
    assert [h["cause"] for h in a.history(pair)] == ["audit_hit", "denial"]
    assert not a.take_dirty() and not b.take_dirty()  # already written through


def test_session_counters_are_shared_and_a_request_is_counted_under_the_row_lock(two):
    """A contract's session limits read counters every replica adds to (requests, denials, names)."""
    from federation.sessions import SharedSessionTable

    a, b = (SharedSessionTable(s, ttl_seconds=600) for s in two)
    sess_a = a.create(
        peer_org="did:web:r.example",
        agent_did="did:key:z6Mkagent",
        agent_public_key=b"\x01" * 32,
        claims={},
        credential_id="urn:uuid:1",
    )
    sess_b = b.get(sess_a.id, peer_org="did:web:r.example")
    for table, sess in ((a, sess_a), (b, sess_b), (a, sess_a)):
        with table.counted(sess):
            pass  # the decision runs here
    b.count(sess_b, denials=1, released=["name"])
    a.count(sess_a, released=["stock", "name"])
    with b.counted(sess_b):
        assert sess_b.requests == 3 and sess_b.denials == 1
        assert sess_b.fields_released == {"name", "stock"}
    with a.counted(sess_a):
        assert sess_a.requests == 4


def test_shared_call_leaves_the_event_loop_only_for_replicas():
    import asyncio
    import threading

    from federation.replicas import shared_call

    async def go():
        inline = await shared_call(None, threading.get_ident)
        off = await shared_call(object(), threading.get_ident)
        return inline, off, threading.get_ident()

    inline, off, loop_thread = asyncio.run(go())
    assert inline == loop_thread and off != loop_thread


def test_an_agent_suspended_by_one_replica_is_refused_by_the_other(two):
    """Behavioural suspension (issue #15) holds across replicas: the agent cannot move to another one."""
    import asyncio
    import datetime as dt
    from types import SimpleNamespace

    from federation.behaviour import ThrottledError, admit

    a, b = two
    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    t = now.timestamp()
    agent = "did:key:z6MkProber"
    contract = SimpleNamespace(baselines=SimpleNamespace())  # a contract with a baselines block
    request = SimpleNamespace(agent_did=agent)
    at_b = SimpleNamespace(shared_state=b)  # replica b's node: it has suspended no one itself

    def ask(node, when):
        sess = SimpleNamespace(throttle_cap=None, requests=0)
        asyncio.run(admit(node, sess, request, contract, when))

    ask(at_b, now)  # not suspended anywhere yet
    a.suspend_agent(agent, until=t + 600)
    a.suspend_agent(agent, until=t + 60)  # a shorter, later suspension does not cut the first
    with pytest.raises(ThrottledError) as ei:
        ask(SimpleNamespace(shared_state=b), now + dt.timedelta(seconds=120))
    assert ei.value.reason == "AGENT_SUSPENDED_ANOMALY"
    assert ei.value.metadata["until_unix"] == f"{t + 600:.0f}"
    # once it has ended, every replica admits the agent again and the row is gone
    assert b.agent_suspended_until(agent, now=t + 601) is None
    assert a.agent_suspended_until(agent, now=t) is None
    ask(SimpleNamespace(shared_state=b), now + dt.timedelta(seconds=601))
