"""The main job: ``accord demo`` runs end to end and leaves usable node directories."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.xdist_group("demo")


def test_demo_runs_and_operator_commands_work_offline_afterwards(tmp_path):
    work = tmp_path / "demo"
    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "demo", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "demo passed" in p.stdout
    for org in ("hospital", "relief", "supplier"):
        assert (work / org / "node.toml").exists()
        assert not (work / org / "node.pid").exists(), "node processes were not cleaned up"
    q = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "ledger",
            "query",
            "--dir",
            str(work / "hospital"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert q.returncode == 0, q.stderr
    rows = json.loads(q.stdout)
    kinds = {r["kind"] for r in rows}
    assert {"disclosure", "denial", "received"} <= kinds
    assert len([r for r in rows if r["kind"] in ("disclosure", "denial")]) >= 14
    # the gate held: every released field set stays inside the request
    for r in rows:
        assert set(r["fields_released"]) <= set(r["fields_requested"])
    v = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "ledger", "verify", "--dir", str(work / "relief")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert v.returncode == 0, v.stdout + v.stderr
