"""Operator CLI on real node directories: one line and a non-zero exit on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.xdist_group("cli")


def accord(*args, cwd=None, check=False):
    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    if check and p.returncode != 0:
        raise AssertionError(p.stderr)
    return p


def test_init_export_add_and_refusals(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    accord("node", "init", "--org", "alpha", "--dir", a, "--listen", "127.0.0.1:7611", check=True)
    accord("node", "init", "--org", "beta", "--dir", b, "--listen", "127.0.0.1:7612", check=True)
    assert (a / "tls" / "node.pem").exists() and (a / "keys" / "org.jwk").stat().st_mode & 0o077 == 0
    accord("peer", "export-bundle", "--dir", b, "--out", tmp_path / "beta.json", check=True)
    p = accord("peer", "add", tmp_path / "beta.json", "--dir", a, check=True)
    assert "did:web:beta.accord.test" in p.stdout
    listed = json.loads(accord("peer", "list", "--dir", a, "--json", check=True).stdout)
    assert [x["did"] for x in listed] == ["did:web:beta.accord.test"]

    # a tampered bundle is refused with one line and exit 1
    doc = json.loads((tmp_path / "beta.json").read_text())
    doc["endpoint"] = "10.9.9.9:1"
    (tmp_path / "evil.json").write_text(json.dumps(doc))
    p = accord("peer", "add", tmp_path / "evil.json", "--dir", a)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "BAD_BUNDLE" in p.stderr

    # init over an existing node is refused
    p = accord("node", "init", "--org", "alpha", "--dir", a)
    assert p.returncode == 1 and "already holds a node" in p.stderr


def test_commands_on_a_non_node_directory_fail_cleanly(tmp_path):
    p = accord("ledger", "query", "--dir", tmp_path)
    assert p.returncode == 1
    assert p.stderr.startswith("accord: error: CONFIG_INVALID") and "Traceback" not in p.stderr


def test_agent_register_list_revoke(tmp_path):
    d = tmp_path / "n"
    accord("node", "init", "--org", "gamma", "--dir", d, check=True)
    accord(
        "agent",
        "register",
        "--dir",
        d,
        "--name",
        "bot",
        "--role",
        "analyst",
        "--scope",
        "x:read",
        "--scope",
        "y:read",
        check=True,
    )
    p = accord("agent", "register", "--dir", d, "--name", "bot", "--role", "analyst", "--scope", "x:read")
    assert p.returncode == 1 and "AGENT_EXISTS" in p.stderr
    wallet = json.loads((d / "agents" / "bot.json").read_text())
    assert wallet["did"].startswith("did:key:z6Mk")
    assert "AgentCredential" in wallet["credential"]["type"]
    assert wallet["credential"]["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    accord("agent", "revoke", "bot", "--dir", d, check=True)
    rows = json.loads(accord("agent", "list", "--dir", d, "--json", check=True).stdout)
    assert rows[0]["status"] == "revoked"


def test_contract_propose_sign_register_retire(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    accord("node", "init", "--org", "alpha", "--dir", a, "--listen", "127.0.0.1:7621", check=True)
    accord("node", "init", "--org", "beta", "--dir", b, "--listen", "127.0.0.1:7622", check=True)
    accord("peer", "export-bundle", "--dir", a, "--out", tmp_path / "a.json", check=True)
    accord("peer", "export-bundle", "--dir", b, "--out", tmp_path / "b.json", check=True)
    accord("peer", "add", tmp_path / "b.json", "--dir", a, check=True)
    accord("peer", "add", tmp_path / "a.json", "--dir", b, check=True)
    draft = tmp_path / "draft.json"
    accord(
        "contract",
        "propose",
        "--dir",
        a,
        "--id",
        "alpha-beta",
        "--requester",
        "beta",
        "--purpose",
        "research",
        "--mni",
        "x",
        "--mni",
        "y",
        "--resource",
        "records",
        "--scope",
        "r:read",
        "--out",
        draft,
        check=True,
    )
    # registering with one signature is refused, one line, exit 1
    accord("contract", "sign", draft, "--dir", a, "-o", tmp_path / "one.json", check=True)
    p = accord("contract", "register", tmp_path / "one.json", "--dir", a)
    assert p.returncode == 1 and "CONTRACT_UNSIGNED" in p.stderr and p.stderr.count("\n") == 1
    accord("contract", "sign", tmp_path / "one.json", "--dir", b, "-o", tmp_path / "two.json", check=True)
    # the provider does not have the resource the contract names: refused, naming it
    p = accord("contract", "register", tmp_path / "two.json", "--dir", a)
    assert p.returncode == 1 and "CONTRACT_INVALID" in p.stderr and "records" in p.stderr
    (a / "data").mkdir(exist_ok=True)
    (a / "data" / "records.json").write_text(json.dumps({"records": {"r1": {"x": 1, "y": 2, "z": 3}}}))
    lint = accord("contract", "lint", tmp_path / "two.json")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    accord("contract", "register", tmp_path / "two.json", "--dir", a, check=True)
    accord("contract", "register", tmp_path / "two.json", "--dir", b, check=True)
    rows = json.loads(accord("contract", "list", "--dir", a, "--json", check=True).stdout)
    assert [r["id"] for r in rows] == ["alpha-beta"]
    accord("contract", "retire", "alpha-beta", "--dir", a, check=True)
    shown = json.loads(accord("contract", "show", "alpha-beta", "--dir", a, check=True).stdout)
    assert shown["retired_at"]
    # re-registering the retired version would undo the retirement: versions only move forward
    p = accord("contract", "register", tmp_path / "two.json", "--dir", a)
    assert p.returncode == 1 and "CONTRACT_VERSION_NOT_NEWER" in p.stderr
    # lint explains every problem in one line each: file, line, key
    broken = json.loads((tmp_path / "two.json").read_text())
    broken["trust_ceiling"] = "0.8"
    broken["purposes"]["research"]["colums"] = ["x"]
    (tmp_path / "broken.json").write_text(json.dumps(broken, indent=2))
    lint = accord("contract", "lint", tmp_path / "broken.json")
    assert lint.returncode == 1
    lines = [ln for ln in lint.stdout.splitlines() if ln.strip()]
    assert any("trust_ceiling" in ln for ln in lines) and any("colums" in ln for ln in lines)
    assert all(ln.startswith(f"{tmp_path / 'broken.json'}:") for ln in lines)
    # a tampered term breaks both signatures
    doc = json.loads((tmp_path / "two.json").read_text())
    doc["trust_ceiling"] = 1.0
    (tmp_path / "evil.json").write_text(json.dumps(doc))
    p = accord("contract", "register", tmp_path / "evil.json", "--dir", b)
    assert p.returncode == 1 and "CONTRACT_SIGNATURE" in p.stderr
