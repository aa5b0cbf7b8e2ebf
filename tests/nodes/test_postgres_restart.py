"""PostgreSQL restarted under load: the node reconnects by itself and loses nothing acknowledged.

The supplier runs on a PostgreSQL 15 server of the test's own (never the
machine's shared one: :mod:`nodes.own_postgres`), as one process and as two
replicas; the relief node (its partner, on SQLite) drives exchanges at it
from several concurrent callers. Mid-load the server is restarted with
``pg_ctl restart -m fast``, then stopped with ``-m immediate`` (a crash:
no shutdown checkpoint, recovery from the WAL) and started again. Checked:

* the node process is never restarted: after each outage exchanges succeed again;
* a request that fails during an outage fails with ``UNAVAILABLE`` and the
  reason ``DATABASE_UNAVAILABLE`` (in the reason table), never ``INTERNAL``;
* witnessing resumes: the partner cosigns a checkpoint covering every
  acknowledged exchange;
* every acknowledged exchange (a receipt returned to the requester) is in
  the supplier's ledger at the index its receipt proved, no disclosure is
  logged twice, the log has no gaps, and ``accord ledger verify`` passes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from federation.client import AgentClient
from federation.errors import FederationError
from nodes import own_postgres

pytestmark = [
    pytest.mark.xdist_group("postgres-restart"),
    pytest.mark.skipif(bool(own_postgres.available()), reason=own_postgres.available() or "-"),
]

CONTRACT = "relief-supplier-procurement"
PURPOSE = "emergency-procurement"
FIELDS = ["sku", "name", "stock", "warehouse"]
OUTAGE_REASONS = {"DATABASE_UNAVAILABLE"}


@pytest.fixture(scope="module")
def server():
    from federation.supervisor import free_port

    pg = own_postgres.OwnPostgres(free_port()).init()
    try:
        yield pg
    finally:
        pg.stop()


def _federation(tmp_path, url: str, replicas: int):
    """Provision supplier + relief; the supplier's database on ``url``; start them."""
    from federation.agents import open_store
    from federation.config import load_config, save_config
    from federation.demo.setup import provision
    from federation.identity import NodeIdentity
    from federation.supervisor import NodeProcess, ReplicaSet, free_port

    layout = provision(tmp_path, orgs=("supplier", "relief"), with_interop=False)
    hdir = layout.orgs["supplier"]
    cfg = load_config(hdir)
    sqlite_store = open_store(NodeIdentity.load(hdir))
    agents, datasets = sqlite_store.agents(), sqlite_store.datasets()
    port = free_port()
    while replicas > 1 and not _bindable(port + 1):
        port = free_port()
    save_config(hdir, cfg.model_copy(update={"database_url": url, "listen": f"127.0.0.1:{port}"}))
    pg_store = open_store(NodeIdentity.load(hdir))
    now = dt.datetime.now(dt.UTC)
    for a in agents:
        pg_store.add_agent(a, now=now)
    for spec, recs in datasets:
        pg_store.put_dataset(spec["name"], spec, recs, id_column=spec["id"], now=now)
    pg_store.engine.dispose()
    rdir = layout.orgs["relief"]
    eps = [f"127.0.0.1:{port + i}" for i in range(replicas)]
    save_config(rdir, load_config(rdir).model_copy(update={"peer_endpoints": {"supplier": eps}}))
    supplier = ReplicaSet(hdir, replicas).start() if replicas > 1 else NodeProcess(hdir).start()
    relief = NodeProcess(rdir).start()
    return layout, supplier, relief


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Load:
    """Concurrent exchanges from the relief's logistics agent until stopped; what came back."""

    def __init__(self) -> None:
        self.acknowledged: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []  # (status, reason)
        self.stopping = False

    async def run(self, wallet, in_flight: int) -> None:
        async with AgentClient.from_wallet(wallet) as c:
            session = await c.open_session("supplier")

            async def worker(w: int) -> None:
                i = 0
                while not self.stopping:
                    i += 1
                    try:
                        r = await c.request(
                            session,
                            contract_id=CONTRACT,
                            purpose=PURPOSE,
                            resource="inventory",
                            subject="SKU-1001",
                            fields=FIELDS,
                        )
                    except FederationError as exc:
                        self.failures.append((exc.status, exc.reason))
                        await asyncio.sleep(0.05)
                        continue
                    assert r.receipt_verified
                    self.acknowledged[r.disclosure_id] = r.outcome.receipt.leaf_index

            await asyncio.gather(*(worker(w) for w in range(in_flight)))

    async def until(self, n_more: int, timeout: float = 60.0) -> None:
        """Wait until ``n_more`` further exchanges were acknowledged."""
        target = len(self.acknowledged) + n_more
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < target:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no progress: {len(self.acknowledged)} acknowledged, last failures {self.failures[-5:]}"
                )
            await asyncio.sleep(0.05)


def _wait_witnessed(url: str, size: int, timeout: float = 60.0) -> bool:
    """Wait until a checkpoint of at least ``size`` entries met the witness quorum."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                got = conn.execute(
                    sa.text("SELECT max(size) FROM ledger_checkpoints WHERE witnessed")
                ).scalar_one()
            if got is not None and got >= size:
                return True
            time.sleep(0.2)
        return False
    finally:
        engine.dispose()


def _check_ledger(url: str, hdir, acknowledged: dict[str, int]) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT disclosure_id, idx FROM ledger_entries")).all()
    finally:
        engine.dispose()
    by_id: dict[str, int] = {}
    for did, idx in rows:
        assert did not in by_id, f"disclosure {did} logged twice"
        by_id[did] = idx
    missing = {d: i for d, i in acknowledged.items() if by_id.get(d) != i}
    assert not missing, f"acknowledged entries lost or moved: {list(missing.items())[:3]}"
    assert sorted(by_id.values()) == list(range(len(by_id))), "the log has gaps"
    v = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "ledger", "verify", "--dir", str(hdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert v.returncode == 0, v.stdout + v.stderr


@pytest.mark.parametrize("replicas", [1, 2], ids=["one-process", "two-replicas"])
def test_postgresql_restarted_under_load(server, tmp_path, replicas):
    from federation.reasons import STATUS_BY_REASON

    url = server.create_database(f"supplier_{replicas}")
    layout, supplier, relief = _federation(tmp_path, url, replicas)
    procs = supplier.procs if replicas > 1 else [supplier]
    pids = [p.pid for p in procs]
    load = Load()
    outage_failures: list[list[tuple[str, str]]] = []

    async def scenario() -> None:
        task = asyncio.create_task(load.run(layout.wallets["relief/logistics"], in_flight=6))
        try:
            await load.until(20)
            # 1. a fast restart: sessions terminated, open transactions rolled back
            before = len(load.failures)
            await asyncio.to_thread(server.restart_fast)
            await load.until(20)
            outage_failures.append(load.failures[before:])
            # 2. a crash: immediate stop, a moment down (requests fail meanwhile), start (WAL recovery)
            before = len(load.failures)
            await asyncio.to_thread(server.stop_immediate)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(server.start)
            await load.until(20)
            outage_failures.append(load.failures[before:])
        finally:
            load.stopping = True
            await task

    try:
        asyncio.run(scenario())
        assert all(p.alive() for p in procs) and [p.pid for p in procs] == pids, "a node process restarted"
        # requests during the outages failed, each with a precise status and reason
        assert outage_failures[1], "no request failed while the server was down: the outage was not exercised"
        bad = [f for f in load.failures if f[1] not in OUTAGE_REASONS or f[0] != "UNAVAILABLE"]
        assert not bad, f"failures other than UNAVAILABLE/DATABASE_UNAVAILABLE: {sorted(set(bad))}"
        assert STATUS_BY_REASON["DATABASE_UNAVAILABLE"] == "UNAVAILABLE"
        # witnessing resumed: the partner cosigns a checkpoint covering every acknowledged entry
        covered = max(load.acknowledged.values()) + 1
        assert _wait_witnessed(url, covered), (
            f"no witnessed checkpoint of size >= {covered} after the restarts"
        )
    finally:
        relief.stop()
        supplier.stop()
    _check_ledger(url, layout.orgs["supplier"], load.acknowledged)
