"""Two replicas of one node on one PostgreSQL database, with real partner processes.

The hospital runs as two processes (``node start --replica I --replicas 2``)
on one PostgreSQL schema; the relief node (requester) lists both addresses
in ``peer_endpoints`` and dials them in turn; the interop tester speaks to
each replica directly. Checked: exchanges land on both replicas; a session
(and a challenge) opened through one is used through the other; a request
replayed to the other replica is refused (``REPLAYED_REQUEST``); a trust
budget is spent once across the replicas; ``kill -9`` of the integrator
lease holder under load loses no acknowledged entry, duplicates none, the
other replica takes the lease, the signed size an observer polls never
goes back, and the log verifies with every checkpoint consistent with the
one before it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import grpc
import pytest
import sqlalchemy as sa

from federation.client import AgentClient
from federation.errors import FederationError

PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL")
pytestmark = [
    pytest.mark.xdist_group("replicas"),
    pytest.mark.skipif(
        not PG_URL,
        reason="replica tests need ACCORD_TEST_DATABASE_URL (postgresql+psycopg://USER@HOST:PORT/DB)",
    ),
]

CONTRACT = "relief-hospital-triage"
PURPOSE = "triage-coordination"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Replicated:
    """The running federation: the hospital's replicas, the relief node, the layout, the schema URL."""

    def __init__(self, layout, replicas, relief, url: str) -> None:
        self.layout, self.replicas, self.relief, self.url = layout, replicas, relief, url

    def sql(self, query: str, **params):
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(query), params).all()
        finally:
            engine.dispose()

    def lease(self) -> tuple[str, float, int]:
        rows = self.sql("SELECT holder, expires_at, epoch FROM node_leases WHERE name = 'integrator'")
        return tuple(rows[0])


LIMITED = "interop-limited-hospital"
"""A contract between the hospital and the interop tester with a session limit of 3 requests."""


def _add_limited_contract(layout) -> None:
    from federation.demo.setup import INTEROP_ORG, _sign_both, interop_contract
    from federation.identity import NodeIdentity

    doc = interop_contract("hospital", dt.datetime.now(dt.UTC))
    doc.update(
        {"id": LIMITED, "trust_budget": None, "session_limits": {"max_requests": 3, "max_fields": None}}
    )
    idents = {o: NodeIdentity.load(layout.orgs[o]) for o in ("hospital", INTEROP_ORG)}
    _sign_both(doc, idents).dump(layout.orgs["hospital"] / "contracts" / f"{LIMITED}.json")


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    from federation.agents import open_store
    from federation.config import load_config, save_config
    from federation.demo.setup import provision
    from federation.identity import NodeIdentity
    from federation.supervisor import NodeProcess, ReplicaSet

    schema = f"accord_replicas_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    layout = provision(tmp_path_factory.mktemp("replicas"), orgs=("hospital", "relief"))
    hdir = layout.orgs["hospital"]
    _add_limited_contract(layout)
    cfg = load_config(hdir)
    port = int(cfg.listen.rpartition(":")[2])
    if not _bindable(port + 1):
        pytest.skip(f"port {port + 1} (replica 1 of the hospital) is taken on this machine")
    # the agents and datasets live in the node database: provisioned on SQLite, copied to PostgreSQL
    sqlite_store = open_store(NodeIdentity.load(hdir))
    agents, datasets = sqlite_store.agents(), sqlite_store.datasets()
    save_config(hdir, cfg.model_copy(update={"database_url": url}))
    pg_store = open_store(NodeIdentity.load(hdir))
    now = dt.datetime.now(dt.UTC)
    for a in agents:
        pg_store.add_agent(a, now=now)
    for spec, recs in datasets:
        pg_store.put_dataset(spec["name"], spec, recs, id_column=spec["id"], now=now)
    rdir = layout.orgs["relief"]
    both = [f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"]
    save_config(rdir, load_config(rdir).model_copy(update={"peer_endpoints": {"hospital": both}}))
    replicas = ReplicaSet(hdir, 2)
    relief = None
    try:
        replicas.start()
        relief = NodeProcess(rdir).start()
        yield Replicated(layout, replicas, relief, url)
    finally:
        if relief is not None:
            relief.stop()
        replicas.stop()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _interop(replicated, index: int):
    from interop_tests.cases import Context
    from interop_tests.peer import InteropIdentity

    layout = replicated.layout
    return Context(
        target=replicated.replicas.endpoints[index],
        bundle=json.loads(layout.bundle_path("hospital").read_text()),
        ident=InteropIdentity.load(layout.orgs["interop"]),
        contract_id="interop-hospital",
    )


def _reason(exc: grpc.aio.AioRpcError) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(exc)
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


async def _requests(client: AgentClient, session, subjects: range):
    return [
        await client.request(
            session,
            contract_id=CONTRACT,
            purpose=PURPOSE,
            resource="patients",
            subject=f"patient-{i:03d}",
            fields=["patient_id", "triage_level"],
        )
        for i in subjects
    ]


def test_exchanges_land_on_both_replicas_through_one_requester_session(replicated):
    wallet = replicated.layout.wallets["relief/triage-coordinator"]

    async def go():
        async with AgentClient.from_wallet(wallet) as c:
            # GetChallenge goes to one replica, OpenSession to the other: the challenge is shared
            s = await c.open_session("hospital")
            return await _requests(c, s, range(1, 7))

    results = asyncio.run(go())
    assert all(r.decision == "allow" and r.receipt_verified for r in results)
    ids = [r.disclosure_id for r in results]
    logs = [p.log_path.read_text() for p in replicated.replicas.procs]
    served = [sum(1 for d in ids if d in text) for text in logs]
    # round robin skips a subchannel still connecting (under load the split can be 5/1): both serve
    assert all(n >= 1 for n in served), f"exchanges per replica: {served}"
    assert sum(served) == len(ids)


def test_a_session_opened_on_one_replica_serves_on_the_other_and_a_replay_there_is_refused(replicated):
    from interop_tests.cases import MNI

    a, b = _interop(replicated, 0), _interop(replicated, 1)

    async def go():
        peer_a, peer_b = a.peer(), b.peer()
        try:
            sess = await peer_a.open_session(a.ident)
            first = await peer_b.exchange(b.ident, sess.session_id, b.request(fields=MNI, subject="rec-1"))
            signed = a.request(fields=MNI, subject="rec-2")
            await peer_a.exchange(a.ident, sess.session_id, signed)
            try:
                await peer_b.exchange(b.ident, sess.session_id, signed)
            except grpc.aio.AioRpcError as exc:
                return first, exc
            return first, None
        finally:
            await peer_a.close()
            await peer_b.close()

    first, refused = asyncio.run(go())
    assert first.outcome.decision == "allow"
    assert refused is not None, "the request replayed to the other replica was accepted"
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED and _reason(refused) == "REPLAYED_REQUEST"


def test_a_trust_budget_is_spent_once_across_the_replicas(replicated):
    """The interop contract allows 2 units of beyond-MNI fields per hour: 2 releases of ``region`` in all."""
    ctxs = [_interop(replicated, 0), _interop(replicated, 1)]

    async def go():
        peers = [c.peer() for c in ctxs]
        try:
            sess = await peers[0].open_session(ctxs[0].ident)
            released = []
            for i in range(8):
                c = ctxs[i % 2]
                r = await peers[i % 2].exchange(
                    c.ident,
                    sess.session_id,
                    c.request(fields=["record_id", "region"], purpose="conformance-budget", subject="rec-1"),
                )
                released.append("region" in r.outcome.released_fields)
            return released
        finally:
            for p in peers:
                await p.close()

    released = asyncio.run(go())
    assert sum(released) == 2, f"region released {sum(released)} times across replicas: {released}"
    assert released[:2] == [True, True]


def test_an_agent_session_opened_through_one_replica_is_used_through_the_other(replicated):
    """Requester side: the hospital's agent opens its session through replica 0, asks through replica 1."""
    wallet = replicated.layout.wallets["hospital/bed-manager"]
    a, b = replicated.replicas.endpoints

    async def go():
        async with (
            AgentClient.from_wallet(wallet, endpoint=a) as via_a,
            AgentClient.from_wallet(wallet, endpoint=b) as via_b,
        ):
            s = await via_a.open_session("relief")
            out = []
            for client in (via_b, via_a, via_b):
                out.append(
                    await client.request(
                        s,
                        contract_id="hospital-relief-shelters",
                        purpose="bed-planning",
                        resource="shelters",
                        subject="north-school",
                        fields=["shelter_id", "capacity", "occupancy", "location"],
                    )
                )
            return out

    results = asyncio.run(go())
    assert all(r.decision == "allow" and r.receipt_verified for r in results)
    # each replica wrote the "received" entries of the requests it forwarded, in the one shared log
    indices = [r.received_leaf_index for r in results]
    assert len(set(indices)) == 3
    logs = [p.log_path.read_text() for p in replicated.replicas.procs]
    assert sum(results[0].disclosure_id in t for t in logs) >= 1
    assert results[1].disclosure_id in logs[0] and results[0].disclosure_id in logs[1]


def test_a_reconstruction_attack_split_across_the_replicas_is_refused_and_lowers_trust_at_both(replicated):
    """SUM(north) answered by replica 0, the differencing query sent to replica 1: refused there.

    The refusal's audit penalty, earned at replica 1, lowers the τ replica 0 uses next.
    """
    from interop_tests.cases import MNI, NORTH, _aggregate

    a, b = _interop(replicated, 0), _interop(replicated, 1)

    async def tau(ctx) -> float:  # the τ an ordinary exchange is decided with, at ctx's replica
        peer = ctx.peer()
        try:
            sess = await peer.open_session(ctx.ident)
            r = await peer.exchange(ctx.ident, sess.session_id, ctx.request(fields=MNI, subject="rec-1"))
            return r.outcome.effective_trust
        finally:
            await peer.close()

    async def go():
        before = await tau(a)
        answered = await _aggregate(a, a.ident, "sum", NORTH)
        attack = {"and": [NORTH, {"col": "unit", "op": "!=", "val": "x"}]}
        try:
            await _aggregate(b, b.ident, "sum", attack)
        except grpc.aio.AioRpcError as exc:
            refused = exc
        else:
            refused = None
        return before, answered, refused, await tau(a), await tau(b)

    before, answered, refused, after_a, after_b = asyncio.run(go())
    assert answered["records"] > 1
    assert refused is not None, "the differencing query sent to the other replica was answered"
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and _reason(refused) == "RECONSTRUCTION_RISK"
    from policy.trust import TrustConfig

    penalty = TrustConfig().audit_penalty
    assert after_a <= before - 0.9 * penalty, (before, after_a)  # seen at the replica that did not refuse
    assert after_b == pytest.approx(after_a, abs=1e-3)


def test_a_session_limit_counts_the_requests_of_both_replicas(replicated):
    """max_requests = 3 per session: requests alternate between the replicas; the 4th is refused."""
    import dataclasses

    from interop_tests.cases import MNI

    ctxs = [dataclasses.replace(_interop(replicated, i), contract_id=LIMITED) for i in (0, 1)]

    async def go():
        peers = [c.peer() for c in ctxs]
        try:
            sess = await peers[0].open_session(ctxs[0].ident)
            out = []
            for i in range(5):
                c = ctxs[i % 2]
                try:
                    r = await peers[i % 2].exchange(
                        c.ident, sess.session_id, c.request(fields=MNI, subject=f"rec-{1 + i % 3}")
                    )
                    out.append(r.outcome.decision)
                except grpc.aio.AioRpcError as exc:
                    out.append(_reason(exc))
            return out
        finally:
            for p in peers:
                await p.close()

    got = asyncio.run(go())
    assert got == ["allow", "allow", "allow", "SESSION_LIMIT", "SESSION_LIMIT"], got


def test_kill_9_of_the_lease_holder_under_load_loses_and_duplicates_nothing(replicated):
    from ledger.proofs import verify_consistency

    holder, _, epoch = replicated.lease()
    pid = int(holder.split(":")[-2])
    victim = next(p for p in replicated.replicas.procs if p.pid == pid)
    wallet = replicated.layout.wallets["relief/triage-coordinator"]
    acknowledged: dict[str, int] = {}
    failed: list[str] = []

    async def one(c: AgentClient, s, i: int) -> None:
        try:
            r = await c.request(
                s,
                contract_id=CONTRACT,
                purpose=PURPOSE,
                resource="patients",
                subject=f"patient-{1 + i % 6:03d}",
                fields=["patient_id", "triage_level"],
            )
        except FederationError as exc:
            failed.append(exc.reason)
            return
        assert r.receipt_verified
        acknowledged[r.disclosure_id] = r.outcome.receipt.leaf_index

    signed_sizes: list[int] = []  # the log's last signed size, as an observer polling it sees it
    polling = True

    def poll() -> None:
        engine = sa.create_engine(replicated.url)
        try:
            while polling:
                with engine.connect() as conn:
                    signed_sizes.append(conn.execute(sa.text("SELECT size FROM ledger_signer")).scalar_one())
                time.sleep(0.01)
        finally:
            engine.dispose()

    async def go():
        async with AgentClient.from_wallet(wallet) as c:
            s = await c.open_session("hospital")
            sem = asyncio.Semaphore(8)

            async def bounded(i):
                async with sem:
                    await one(c, s, i)

            tasks = [asyncio.create_task(bounded(i)) for i in range(120)]
            while len(acknowledged) < 30:
                await asyncio.sleep(0.02)
            victim.kill()  # SIGKILL mid-load: its in-flight requests fail, nothing acknowledged is lost
            await asyncio.gather(*tasks)
            return len(acknowledged)

    import threading

    observer = threading.Thread(target=poll, daemon=True)
    observer.start()
    try:
        asyncio.run(go())
    finally:
        polling = False
        observer.join(10)
    assert not victim.alive()
    assert len(signed_sizes) > 10 and signed_sizes == sorted(signed_sizes), "a signed size went backwards"
    assert len(acknowledged) >= 60, f"only {len(acknowledged)} acknowledged; failures {failed[:5]}"
    # the surviving replica takes the integrator lease once the dead one's expires
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new_holder, _, new_epoch = replicated.lease()
        if new_holder != holder:
            break
        time.sleep(0.2)
    assert new_holder != holder and new_epoch == epoch + 1 and f":{victim.pid}:" not in new_holder
    # every acknowledged entry is in the log, at the index its receipt proved, once
    rows = replicated.sql("SELECT disclosure_id, idx FROM ledger_entries")
    by_id = {}
    for did, idx in rows:
        assert did not in by_id, f"disclosure {did} logged twice"
        by_id[did] = idx
    missing = {d: i for d, i in acknowledged.items() if by_id.get(d) != i}
    assert not missing, f"acknowledged entries lost or moved: {list(missing.items())[:3]}"
    assert sorted(by_id.values()) == list(range(len(by_id))), "the log has gaps"
    # checkpoints: one per size, each consistent with the one before (one append-only tree)
    cps = replicated.sql("SELECT size, root FROM ledger_checkpoints ORDER BY size")
    assert cps[-1].size == len(by_id)
    from federation.identity import NodeIdentity, ledger_origin
    from ledger import TransparencyLog

    ident = NodeIdentity.load(replicated.layout.orgs["hospital"])
    tlog = TransparencyLog.open(
        replicated.url,
        origin=ledger_origin(ident.config.org_name),
        signer=ident.ledger_signer(),
    )
    try:
        for older, newer in zip(cps, cps[1:], strict=False):
            if 0 < older.size < newer.size:
                proof = tlog.consistency_proof(older.size, newer.size)
                verify_consistency(older.size, newer.size, bytes(older.root), bytes(newer.root), proof)
    finally:
        tlog.close()
    v = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "ledger", "verify", "--dir", str(ident.paths.root)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert v.returncode == 0, v.stdout + v.stderr
    # the dead replica comes back and joins (the lease stays where it is)
    replicated.replicas.restart(replicated.replicas.procs.index(victim))
    assert replicated.lease()[0] == new_holder


def test_node_start_replicas_supervises_and_stops_them(replicated):
    """``accord node start --replicas 2`` prints each replica's READY line and stops both on SIGTERM."""
    import signal

    from federation.supervisor import ready_endpoint

    replicated.replicas.stop()
    hdir = replicated.layout.orgs["hospital"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "federation.cli.main", "node", "start", "--dir", str(hdir), "--replicas", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        endpoints = []
        assert proc.stdout is not None
        for line in proc.stdout:
            if ready_endpoint(line):
                endpoints.append(ready_endpoint(line))
            if len(endpoints) == 2:
                break
        ports = sorted(int(e.rpartition(":")[2]) for e in endpoints)
        assert ports[1] == ports[0] + 1, endpoints
        pids = [json.loads((hdir / name).read_text())["pid"] for name in ("node.pid", "node-replica-1.pid")]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        for pid in pids:  # the replicas are gone with their supervisor
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
