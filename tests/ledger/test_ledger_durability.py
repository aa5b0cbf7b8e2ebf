"""Crash safety (kill -9 during appends) and PostgreSQL concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from ledger_support import ORIGIN, make_entry

from ledger import NoteSigner, TransparencyLog

HERE = Path(__file__).parent
PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL")


def _wait_for(child: subprocess.Popen, path: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if child.poll() is not None:
            raise AssertionError(f"child exited with {child.returncode} before {text!r}")
        time.sleep(0.02)
    raise AssertionError(f"child never wrote {text!r}")


def test_kill_9_during_appends_loses_no_acknowledged_entry(tmp_path, signer):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    ack = tmp_path / "acks.txt"
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for rnd in range(1, 6):
        child = subprocess.Popen(
            [sys.executable, str(HERE / "ledger_crash_child.py"), url, str(ack), str(rnd)],
            env=env,
        )
        try:
            _wait_for(child, ack, f"ready {rnd}\n")
            time.sleep(0.3 + 0.1 * rnd)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL
    acked = {}
    for line in ack.read_text().splitlines():
        if not line.startswith("ready"):
            idx, did = line.split(" ")
            acked[int(idx)] = did
    assert len(acked) > 50, "the child did not append enough to make the test meaningful"
    log = TransparencyLog.open(url, origin=ORIGIN, signer=signer)
    report = log.verify()
    assert report.ok, report.problems
    for idx, did in acked.items():
        assert log.get(idx).entry.disclosure_id == did
    assert log.size() >= max(acked) + 1
    final = log.integrate()
    assert final.checkpoint.size == log.size()
    assert log.verify().ok
    log.close()


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture
def pg_url():
    if not PG_URL:
        pytest.skip("PostgreSQL tests need ACCORD_TEST_DATABASE_URL (e.g. postgresql+psycopg://…)")
    import sqlalchemy as sa

    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _pg_worker(url: str, worker: int, batches: int) -> list[tuple[int, str]]:
    log = TransparencyLog.open(url, origin=ORIGIN, signer=NoteSigner(ORIGIN, bytes(range(32))))
    out = []
    try:
        for b in range(batches):
            batch = [make_entry(worker * 100_000 + b * 3 + k) for k in range(3)]
            # a third of the batches in one commit with their integration (as a provider node),
            # racing other workers' separate integrate() calls: no deadlock, one order
            res = log.append_integrated(batch).results if b % 3 == 1 else log.append(batch)
            out.extend((r.index, e.disclosure_id) for r, e in zip(res, batch, strict=True))
            if b % 7 == 0:
                log.integrate()
    finally:
        log.close()
    return out


@pytest.mark.postgres
def test_postgres_concurrent_appenders_get_one_gapless_order(pg_url, signer):
    with ProcessPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_pg_worker, pg_url, w, 25) for w in range(4)]
        acks = [a for f in futures for a in f.result()]
    indices = sorted(i for i, _ in acks)
    assert indices == list(range(300)), "indices must be dense and unique"
    log = TransparencyLog.open(pg_url, origin=ORIGIN, signer=signer)
    for idx, did in acks:
        assert log.find(did).index == idx
    assert log.integrate().checkpoint.size == 300
    assert log.verify().ok
    assert log.append([make_entry(5)])[0].duplicate
    log.close()
