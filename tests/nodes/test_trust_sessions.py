"""Issue #18.2 on real nodes: sessions do not raise τ; the operator sets it (`accord trust set|show`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from federation.client import AgentClient
from nodes.conftest import run

pytestmark = pytest.mark.xdist_group("federation")


async def _open_sessions(fed, n: int) -> list[float]:
    taus = []
    async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
        for _ in range(n):
            s = await c.open_session("hospital")
            taus.append(s.effective_trust)
    return taus


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "trust", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _triage_row(d) -> dict:
    t = _cli("show", "--dir", str(d), "--json")
    assert t.returncode == 0, t.stderr
    return {r["contract"]: r for r in json.loads(t.stdout)}["relief-hospital-triage"]


def test_opening_sessions_in_a_row_does_not_raise_trust(fed):
    taus = _open_sessions_blocking(fed, 6)
    # on the earlier code each session added 0.05: 0.5, 0.55, ... up to the ceiling
    assert max(taus) - taus[0] < 1e-4, taus
    assert taus[0] <= 0.5


def _open_sessions_blocking(fed, n):
    return run(_open_sessions(fed, n))


def test_operator_sets_trust_and_the_running_node_applies_it_with_its_reason(fed):
    d = fed.layout.orgs["hospital"]
    before = _open_sessions_blocking(fed, 1)[0]
    try:
        r = _cli("set", "--dir", str(d), "--requester", "relief", "--value", "0.3", "--reason", "incident 17")
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 30
        while True:
            row = _triage_row(d)
            applied = [e for e in row["history"] if e["cause"] == "operator" and e["reason"] == "incident 17"]
            if applied and not row["pending"]:
                break
            assert time.monotonic() < deadline, row
            time.sleep(0.5)
        assert row["baseline"] == 0.3 and row["tau"] == pytest.approx(0.3)
        assert applied[-1]["new"] == pytest.approx(0.3)
        assert _open_sessions_blocking(fed, 1)[0] == pytest.approx(0.3)
        bad = _cli("set", "--dir", str(d), "--requester", "nobody", "--value", "0.3", "--reason", "x")
        assert bad.returncode == 1 and "UNKNOWN_PEER" in bad.stderr
        bad = _cli("set", "--dir", str(d), "--requester", "relief", "--value", "1.3", "--reason", "x")
        assert bad.returncode == 1 and "TRUST_STATE_INVALID" in bad.stderr
    finally:
        _cli("set", "--dir", str(d), "--requester", "relief", "--value", "0.5", "--reason", "test cleanup")
        deadline = time.monotonic() + 30
        while _triage_row(d)["pending"] and time.monotonic() < deadline:
            time.sleep(0.5)
    assert before <= 0.5
