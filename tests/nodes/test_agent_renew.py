"""Agent credential renewal (issue #11, "Identity and keys over time").

``accord agent list`` shows each credential's ``validUntil`` and flags the ones
expiring soon; ``accord agent renew`` re-issues the credential (same DID, same
claims, new window). The end-to-end test runs real node processes: an agent
whose credential has expired is refused, ``agent renew`` reloads the running
node, and the agent then opens a session at a peer with the new credential.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from federation.agents import register_agent
from federation.client import AgentClient, AgentWallet
from federation.errors import FederationError
from federation.identity import NodeIdentity
from nodes.conftest import Fed, run
from nodes.test_cli_walkthrough import accord, ok, one_line_error

pytestmark = pytest.mark.xdist_group("cli")


def _accord_proc(*args):
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def node(tmp_path, capsys):
    d = tmp_path / "alpha"
    ok(capsys, "node", "init", "--org", "alpha", "--dir", d, "--listen", "127.0.0.1:7400")
    return d


def _rows(capsys, node, *extra):
    return {r["name"]: r for r in json.loads(ok(capsys, "agent", "list", "--dir", node, "--json", *extra))}


def test_list_shows_expiry_and_flags_soon_expiring(capsys, node):
    ok(
        capsys,
        "agent",
        "register",
        "--dir",
        node,
        "--name",
        "soon",
        "--role",
        "r",
        "--scope",
        "x:read",
        "--valid-days",
        "3",
    )
    ok(
        capsys,
        "agent",
        "register",
        "--dir",
        node,
        "--name",
        "later",
        "--role",
        "r",
        "--scope",
        "x:read",
        "--valid-days",
        "60",
    )
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=5)
    register_agent(NodeIdentity.load(node), name="gone", role="r", scopes=["x:read"], valid_days=1, now=past)
    rows = _rows(capsys, node)
    assert (rows["soon"]["expiry"], rows["later"]["expiry"], rows["gone"]["expiry"]) == (
        "expiring",
        "ok",
        "expired",
    )
    until = dt.datetime.fromisoformat(rows["soon"]["valid_until"])
    assert dt.timedelta(days=2) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(days=3)
    # the threshold is the operator's
    assert _rows(capsys, node, "--expiring-within", "1")["soon"]["expiry"] == "ok"
    assert _rows(capsys, node, "--expiring-within", "90")["later"]["expiry"] == "expiring"
    table = ok(capsys, "agent", "list", "--dir", node)
    assert "soon" in table and "expired" in table and rows["later"]["valid_until"][:10] in table


def test_renew_keeps_did_and_claims_and_moves_the_window(capsys, node):
    ok(
        capsys, "agent", "register", "--dir", node, "--name", "bot", "--role", "analyst",
        "--scope", "x:read", "--scope", "y:read", "--trust-tier", "2", "--valid-days", "2",
    )  # fmt: skip
    before = AgentWallet.load(node / "agents" / "bot.json")
    out = ok(capsys, "agent", "renew", "bot", "--dir", node, "--days", "90")
    assert "renewed agent bot" in out
    after = AgentWallet.load(node / "agents" / "bot.json")
    assert after.did == before.did and after.key.public_key == before.key.public_key
    old_c, new_c = before.credential, after.credential
    assert new_c["id"] != old_c["id"] and new_c["proof"] != old_c["proof"]
    assert new_c["credentialSubject"] == old_c["credentialSubject"]
    assert new_c["credentialStatus"] == old_c["credentialStatus"]
    assert dt.datetime.fromisoformat(new_c["validUntil"]) - dt.datetime.now(dt.UTC) > dt.timedelta(days=89)
    assert after.tls_cert_pem != before.tls_cert_pem
    row = _rows(capsys, node)["bot"]
    assert row["valid_until"] == new_c["validUntil"] and row["expiry"] == "ok"
    # the credential verifies under the organization key
    from credentials import StaticKeyResolver, verify_credential

    ident = NodeIdentity.load(node)
    verify_credential(
        new_c, resolve_key=StaticKeyResolver({ident.verification_method: ident.org_key.public_key})
    )


def test_renew_bad_input_is_one_line(capsys, node):
    code, _, err = accord(capsys, "agent", "renew", "nobody", "--dir", node)
    one_line_error(code, err, "UNKNOWN_AGENT")
    ok(capsys, "agent", "register", "--dir", node, "--name", "bot", "--role", "r", "--scope", "x:read")
    wallet = (node / "agents" / "bot.json").read_bytes()
    code, _, err = accord(capsys, "agent", "renew", "bot", "--dir", node, "--days", "0")
    one_line_error(code, err, "BAD_VALIDITY")
    ok(capsys, "agent", "revoke", "bot", "--dir", node)
    code, _, err = accord(capsys, "agent", "renew", "bot", "--dir", node)
    one_line_error(code, err, "AGENT_REVOKED")
    assert (node / "agents" / "bot.json").read_bytes() == wallet  # nothing half-written


def test_renew_on_running_nodes_lets_an_expired_agent_open_a_session(tmp_path):
    from federation.config import load_config, save_config
    from federation.demo.setup import provision
    from federation.supervisor import NodeProcess

    layout = provision(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    relief = layout.orgs["relief"]
    cfg = load_config(relief)  # the node would renew the expired agent by itself (test_auto_renewal.py)
    save_config(
        relief, cfg.model_copy(update={"renewal": cfg.renewal.model_copy(update={"agents_before_days": 0})})
    )
    fed = Fed(layout, {})
    try:
        for org in ("hospital", "relief"):
            fed.procs[org] = NodeProcess(layout.orgs[org]).start()
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        wallet = register_agent(
            NodeIdentity.load(relief),
            name="late",
            role="analyst",
            scopes=["shelters:read"],
            valid_days=1,
            now=past,
        )
        path = relief / "agents" / "late.json"

        async def session():
            async with AgentClient.from_wallet(path, endpoint=fed.endpoint("relief")) as c:
                return await c.open_session("hospital")

        with pytest.raises(FederationError) as exc:
            run(session())
        assert "EXPIRED" in exc.value.reason
        p = _accord_proc("agent", "renew", "late", "--dir", relief, "--days", "30")
        assert p.returncode == 0, p.stderr
        assert "running node reloaded" in p.stdout
        renewed = AgentWallet.load(path)
        assert renewed.did == wallet.did and renewed.credential["id"] != wallet.credential["id"]
        s = run(session())
        assert s.session_id
    finally:
        fed.stop()
