"""Human approval without fatigue (issue #15) on real node processes.

A contract requires approval when ``age`` would be released. The requester
sees ``APPROVAL_PENDING`` (batched by request shape), an operator approves with
a registered key, the retry is released and the decision ledgered; a key that
is not an operator's is refused (by the CLI, and by the node for a decision
written into the queue by hand); denial, expiry and the hourly cap are precise.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import tomllib
import urllib.request

import pytest
import sqlalchemy as sa

from federation.client import AgentClient
from federation.demo.setup import _sign_both, provision
from federation.errors import FederationError
from federation.identity import NodeIdentity
from federation.supervisor import NodeProcess
from nodes.conftest import run

pytestmark = pytest.mark.xdist_group("federation")

MNI = ["patient_id", "triage_level", "mobility", "shelter"]
CONTRACT = "relief-hospital-triage"


def accord(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def amend(layout, contract_id: str, **terms) -> None:
    """Version 2 of a scenario contract with extra terms, signed by both parties, on both nodes."""
    idents = {o: NodeIdentity.load(layout.orgs[o]) for o in ("hospital", "relief")}
    path = layout.orgs["hospital"] / "contracts" / f"{contract_id}.json"
    v1 = json.loads(path.read_text())
    doc = {k: v for k, v in v1.items() if k != "signatures"}
    c = _sign_both({**doc, "version": v1["version"] + 1, **terms}, idents)
    for org in ("hospital", "relief"):
        c.dump(layout.orgs[org] / "contracts" / f"{contract_id}.json")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("approvals")
    layout = provision(root, orgs=("hospital", "relief"), with_interop=False)
    amend(
        layout,
        CONTRACT,
        approval={"require": {"fields": ["age"]}, "expires_seconds": 3600, "grant_seconds": 3600},
    )
    h = layout.orgs["hospital"]
    keys = root / "keys"
    keys.mkdir()
    gen = accord("approvals", "operator-keygen", "--out", keys / "alice.pem")
    assert gen.returncode == 0, gen.stderr
    add = accord("approvals", "operator-add", "alice", "--public-key", gen.stdout.strip(), "--dir", h)
    assert add.returncode == 0, add.stderr
    assert accord("approvals", "operator-keygen", "--out", keys / "mallory.pem").returncode == 0
    procs = {o: NodeProcess(layout.orgs[o]).start() for o in ("hospital", "relief")}
    yield layout, keys, procs
    for p in procs.values():
        p.stop()


async def _ask(layout, fields, subject="patient-001"):
    async with AgentClient.from_wallet(layout.wallets["relief/triage-coordinator"]) as c:
        s = await c.open_session("hospital")
        return await c.request(
            s,
            contract_id=CONTRACT,
            purpose="triage-coordination",
            resource="patients",
            subject=subject,
            fields=fields,
        )


def ask(layout, fields, subject="patient-001"):
    return run(_ask(layout, fields, subject))


def refused(layout, fields, subject="patient-001") -> FederationError:
    with pytest.raises(FederationError) as ei:
        ask(layout, fields, subject)
    return ei.value


def ledger(d, kind: str) -> list[dict]:
    out = accord("ledger", "query", "--dir", d, "--kind", kind, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_for(fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def queue_db(d) -> sa.Engine:
    from federation.config import database_url_for, load_config

    return sa.create_engine(database_url_for(d, load_config(d)))


def test_held_batched_approved_released_and_ledgered(pair):
    layout, keys, procs = pair
    h = layout.orgs["hospital"]
    assert ask(layout, MNI).decision == "allow"  # no rule met: no prompt at all
    err = refused(layout, [*MNI, "age"])
    assert (err.reason, err.status) == ("APPROVAL_PENDING", "FAILED_PRECONDITION")
    aid = err.metadata["approval_id"]
    assert aid.startswith("apr_") and "age" in err.metadata["risk_reason"]
    again = refused(layout, [*MNI, "age"], subject="patient-002")  # same shape: the same row
    assert again.reason == "APPROVAL_PENDING" and again.metadata["approval_id"] == aid
    assert again.metadata["batched"] == "2"
    rows = json.loads(accord("approvals", "list", "--dir", h, "--json").stdout)
    assert [r["id"] for r in rows] == [aid]
    assert rows[0]["requests"] == 2 and set(rows[0]["subjects"]) == {"patient-001", "patient-002"}
    assert "age" in rows[0]["risk_reason"] and 0 < rows[0]["risk"] <= 1
    # a key that is not alice's is refused, in one line
    bad = accord(
        "approvals", "approve", aid, "--operator", "alice", "--key", keys / "mallory.pem", "--dir", h
    )
    assert (
        bad.returncode == 1 and "NOT_AN_OPERATOR" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    )
    bad = accord(
        "approvals", "approve", "apr_nope", "--operator", "alice", "--key", keys / "alice.pem", "--dir", h
    )
    assert bad.returncode == 1 and "UNKNOWN_APPROVAL" in bad.stderr
    ok = accord("approvals", "approve", aid, "--operator", "alice", "--key", keys / "alice.pem", "--dir", h)
    assert ok.returncode == 0, ok.stderr
    r = ask(layout, [*MNI, "age"], subject="patient-003")  # a third subject: the decision covers the shape
    assert r.decision == "allow" and "age" in r.released_fields
    entries = wait_for(lambda: [e for e in ledger(h, "approval") if e["extra"].get("approval_id") == aid])
    assert entries[0]["reason"] == "APPROVED" and entries[0]["extra"]["operator"] == "alice"
    assert entries[0]["extra"]["requests"] == "2"
    released = [e for e in ledger(h, "disclosure") if e["extra"].get("approval_id") == aid]
    assert released and "age" in released[-1]["fields_released"]
    port = tomllib.loads((h / "node.toml").read_text())["metrics_port"]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'accord_approval_decisions_total{decision="approved"} 1.0' in text
    assert "accord_approval_time_to_decision_seconds_count 1.0" in text
    assert 'accord_approval_requests_total{contract="relief-hospital-triage",outcome="held"} 1.0' in text


def test_a_decision_no_operator_signed_is_refused_by_the_node(pair):
    """A row set to approved by hand, signed by a key that is not an operator's: refused and ledgered."""
    import rfc8785

    from federation.approvals import APPROVAL_DOMAIN, load_operator_key, operator_public_key  # noqa: F401

    layout, keys, _ = pair
    h = layout.orgs["hospital"]
    err = refused(layout, ["patient_id", "age"])
    aid = err.metadata["approval_id"]
    mallory = load_operator_key((keys / "mallory.pem").read_bytes())
    eng = queue_db(h)
    with eng.begin() as conn:
        row = conn.execute(sa.text("SELECT shape FROM node_approvals WHERE id = :i"), {"i": aid}).one()
        doc = {
            "type": "accord.approval-decision/v1",
            "node": NodeIdentity.load(h).org_did,
            "approval_ids": [aid],
            "shapes": [row.shape],
            "decision": "approve",
            "operator": "alice",
            "decided_at": "2026-12-04T00:00:00Z",
            "note": "",
        }
        payload = rfc8785.dumps(doc)
        import base64

        sig = base64.urlsafe_b64encode(mallory.sign(APPROVAL_DOMAIN + payload)).rstrip(b"=").decode()
        conn.execute(
            sa.text(
                "UPDATE node_approvals SET status='approved', decided_by='alice', decided_at=:t, "
                "grant_until=:g, signed_decision=:p, signature=:s WHERE id=:i"
            ),
            {
                "t": dt.datetime.now(dt.UTC),
                "g": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
                "p": payload.decode(),
                "s": sig,
                "i": aid,
            },
        )
    eng.dispose()
    err = refused(layout, ["patient_id", "age"])
    assert (err.reason, err.status) == ("APPROVAL_SIGNATURE_INVALID", "PERMISSION_DENIED")
    got = wait_for(lambda: [e for e in ledger(h, "approval") if e["extra"].get("approval_id") == aid])
    assert got[-1]["reason"] == "APPROVAL_SIGNATURE_INVALID"
    shown = json.loads(accord("approvals", "show", aid, "--dir", h, "--json").stdout)
    assert shown["status"] == "invalid"


def test_denied_expired_and_the_hourly_cap(pair):
    layout, keys, _ = pair
    h = layout.orgs["hospital"]
    a = refused(layout, ["triage_level", "age"]).metadata["approval_id"]
    b = refused(layout, ["mobility", "age"]).metadata["approval_id"]
    c = refused(layout, ["shelter", "age"]).metadata["approval_id"]
    # whatever alice signed this hour (by the other tests, if they ran first), one decision is left
    from federation.store import ApprovalStore

    class _Store:  # ApprovalStore reads only .engine
        engine = queue_db(h)

    used = ApprovalStore(_Store).decisions_by("alice", since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    _Store.engine.dispose()
    cap = str(used + 1)
    assert accord("approvals", "configure", "--max-prompts-per-hour", cap, "--dir", h).returncode == 0
    # a batch of two is one decision: the last one alice may sign this hour
    out = accord(
        "approvals",
        "deny",
        a,
        b,
        "--operator",
        "alice",
        "--key",
        keys / "alice.pem",
        "--note",
        "no",
        "--dir",
        h,
    )
    assert out.returncode == 0, out.stderr
    err = refused(layout, ["triage_level", "age"])
    assert (err.reason, err.status) == ("APPROVAL_DENIED", "PERMISSION_DENIED") and err.metadata[
        "approval_id"
    ] == a
    assert refused(layout, ["mobility", "age"]).reason == "APPROVAL_DENIED"
    capped = accord("approvals", "approve", c, "--operator", "alice", "--key", keys / "alice.pem", "--dir", h)
    assert capped.returncode == 1 and "APPROVER_CAP_REACHED" in capped.stderr
    listed = json.loads(accord("approvals", "list", "--dir", h, "--operator", "alice", "--json").stdout)
    assert listed == []  # no prompts left for alice this hour
    eng = queue_db(h)
    with eng.begin() as conn:  # time passes: c is overdue
        conn.execute(
            sa.text("UPDATE node_approvals SET expires_at=:t WHERE id=:i"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), "i": c},
        )
    eng.dispose()
    err = refused(layout, ["shelter", "age"])
    assert (err.reason, err.status) == ("APPROVAL_EXPIRED", "FAILED_PRECONDITION") and err.metadata[
        "approval_id"
    ] == c
    fresh = refused(layout, ["shelter", "age"])  # reported once; asking again starts a new row
    assert fresh.reason == "APPROVAL_PENDING" and fresh.metadata["approval_id"] != c
    reasons = wait_for(
        lambda: (
            {e["extra"]["approval_id"]: e["reason"] for e in ledger(h, "approval")}.items()
            >= {
                (a, "APPROVAL_DENIED"),
                (b, "APPROVAL_DENIED"),
                (c, "APPROVAL_EXPIRED"),
            }
            or None
        )
    )
    assert reasons
