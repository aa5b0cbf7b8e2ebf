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
        [sys.executable, "-m", "federation.cli.main", "demo", "--workdir", str(work), "--agents"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "demo passed" in p.stdout
    # --agents: the SDK, a real MCP client and a real A2A client side by side (federation.demo.agents
    # checks the outcomes; the demo fails otherwise)
    assert "three ways in" in p.stdout and "mcp ClientSession" in p.stdout and "a2a-sdk client" in p.stdout
    assert "FIELD_NOT_IN_CONTRACT" in p.stdout and "FREE_TEXT_NOT_ALLOWED" in p.stdout
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
    # re-running on the kept directory reuses it: same keys, ledgers untouched and still verifying
    keys = {org: (work / org / "keys" / "org.jwk").read_bytes() for org in ("hospital", "relief", "supplier")}
    sizes = {org: _ledger_size(work / org) for org in ("hospital", "relief", "supplier")}
    again = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "demo", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "reusing the federation kept in" in again.stdout and "AGENT_EXISTS" not in again.stderr
    for org in ("hospital", "relief", "supplier"):
        assert (work / org / "keys" / "org.jwk").read_bytes() == keys[org]
        assert _ledger_size(work / org) == sizes[org]
        assert not (work / org / "node.pid").exists()
    v = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "ledger", "verify", "--dir", str(work / "hospital")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert v.returncode == 0, v.stdout + v.stderr


def _ledger_size(directory) -> int:
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    lg = open_ledger_readonly(NodeIdentity.load(directory))
    try:
        return lg.size()
    finally:
        lg.close()


def test_demo_refuses_a_directory_it_did_not_make(tmp_path):
    from federation.identity import init_node

    init_node(tmp_path / "hospital", org_name="hospital", listen="127.0.0.1:7400")
    key = (tmp_path / "hospital" / "keys" / "org.jwk").read_bytes()
    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stdout + p.stderr
    assert p.stderr.startswith("accord: error: WORKDIR_IN_USE:") and "choose another --workdir" in p.stderr
    assert (tmp_path / "hospital" / "keys" / "org.jwk").read_bytes() == key
