"""A node on PostgreSQL: same exchanges, ledger and audit state as on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from federation.client import AgentClient
from nodes.conftest import Fed, run

PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL")
pytestmark = [
    pytest.mark.xdist_group("postgres-node"),
    pytest.mark.skipif(
        not PG_URL,
        reason="PostgreSQL node test needs ACCORD_TEST_DATABASE_URL "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
    ),
]


@pytest.fixture()
def pg_schema_url():
    schema = f"accord_node_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def test_provider_node_on_postgresql(tmp_path, pg_schema_url):
    from federation.config import load_config, save_config
    from federation.demo.setup import provision
    from federation.supervisor import NodeProcess

    # provision on SQLite, then move the hospital's database to PostgreSQL before first start
    layout = provision(tmp_path / "pg", orgs=("hospital", "relief"), with_interop=False)
    hdir = layout.orgs["hospital"]
    cfg = load_config(hdir)
    # the agents and datasets live in the node database: re-provision them into PostgreSQL
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    sqlite_store = open_store(NodeIdentity.load(hdir))
    agents, datasets = sqlite_store.agents(), sqlite_store.datasets()
    save_config(hdir, cfg.model_copy(update={"database_url": pg_schema_url}))
    pg_store = open_store(NodeIdentity.load(hdir))
    import datetime as dt

    for a in agents:
        pg_store.add_agent(a, now=dt.datetime.now(dt.UTC))
    for spec, recs in datasets:
        pg_store.put_dataset(spec["name"], spec, recs, id_column=spec["id"], now=dt.datetime.now(dt.UTC))
    procs = {o: NodeProcess(layout.orgs[o]).start() for o in ("hospital", "relief")}
    fed = Fed(layout, procs)
    try:

        async def go():
            async with AgentClient.from_wallet(layout.wallets["relief/triage-coordinator"]) as c:
                s = await c.open_session("hospital")
                out = []
                for i in range(1, 6):
                    out.append(
                        await c.request(
                            s,
                            contract_id="relief-hospital-triage",
                            purpose="triage-coordination",
                            resource="patients",
                            subject=f"patient-{i:03d}",
                            fields=["patient_id", "triage_level"],
                        )
                    )
                return out

        results = run(go())
        assert all(r.decision == "allow" and r.receipt_verified for r in results)
        v = subprocess.run(
            [sys.executable, "-m", "federation.cli.main", "ledger", "verify", "--dir", str(hdir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert v.returncode == 0, v.stdout + v.stderr
        engine = sa.create_engine(pg_schema_url)
        with engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar()
        engine.dispose()
        assert n >= 5
    finally:
        fed.stop()
