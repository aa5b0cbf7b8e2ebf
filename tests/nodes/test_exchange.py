"""End-to-end exchanges between real node processes over mTLS."""

from __future__ import annotations

import base64
import json

import pytest

from federation.client import AgentClient
from federation.errors import DeniedError, FederationError, NotFoundError
from nodes.conftest import run

pytestmark = pytest.mark.xdist_group("federation")

TRIAGE_MNI = ["patient_id", "triage_level", "mobility", "shelter"]


async def _triage(fed, fields, subject="patient-001", agent="relief/triage-coordinator"):
    async with AgentClient.from_wallet(fed.layout.wallets[agent]) as c:
        s = await c.open_session("hospital")
        return await c.request(
            s,
            contract_id="relief-hospital-triage",
            purpose="triage-coordination",
            resource="patients",
            subject=subject,
            fields=fields,
        )


def test_mni_request_is_released_with_a_verified_receipt(fed):
    r = run(_triage(fed, TRIAGE_MNI))
    assert r.decision == "allow"
    assert set(r.released_fields) == set(TRIAGE_MNI)
    assert r.records and all(set(rec) <= set(TRIAGE_MNI) for rec in r.records)
    assert r.receipt_verified is True
    # the source offered the whole record: everything else was stripped by the gate
    assert {"diagnosis", "hiv_status", "insurance_id", "name"} <= set(r.stripped_fields)


def test_over_broad_request_is_trimmed_to_what_the_decision_released(fed):
    asked = TRIAGE_MNI + ["diagnosis", "hiv_status", "insurance_id"]
    r = run(_triage(fed, asked, subject="patient-002"))
    assert r.decision == "allow"
    assert not {"diagnosis", "hiv_status", "insurance_id"} & set(r.released_fields)
    for rec in r.records:
        assert "diagnosis" not in rec and "hiv_status" not in rec


def test_missing_scope_is_denied_and_logged_on_both_sides(fed):
    with pytest.raises(DeniedError) as ei:
        run(_triage(fed, TRIAGE_MNI, agent="relief/logistics"))
    err = ei.value
    assert err.reason == "MISSING_SCOPE"
    assert err.status == "PERMISSION_DENIED"
    assert err.metadata["disclosure_id"].startswith("dsc_")
    assert err.metadata["receipt_verified"] == "true"
    # the provider's denial entry bytes are in the metadata and carry no values
    entry = json.loads(base64.b64decode(err.metadata["entry_b64"]))
    assert entry["decision"] == "deny" and entry["kind"] == "denial"


def test_request_outside_any_contract_is_not_found(fed):
    async def go():
        async with AgentClient.from_wallet(fed.layout.wallets["supplier/dispatcher"]) as c:
            s = await c.open_session("hospital")
            return await c.request(
                s, contract_id="nope", purpose="marketing", resource="patients", subject="*", fields=["name"]
            )

    with pytest.raises(NotFoundError) as ei:
        run(go())
    assert ei.value.reason == "UNKNOWN_CONTRACT"


def test_received_entry_references_the_provider_leaf(fed):
    from federation.demo.run import ledger_rows

    r = run(_triage(fed, TRIAGE_MNI, subject="patient-003"))
    relief = [e for e in ledger_rows(fed.layout, "relief") if e["disclosure_id"] == r.disclosure_id]
    hospital = [e for e in ledger_rows(fed.layout, "hospital") if e["disclosure_id"] == r.disclosure_id]
    assert len(relief) == 1 and relief[0]["kind"] == "received"
    assert len(hospital) == 1 and hospital[0]["kind"] == "disclosure"
    assert base64.b64decode(relief[0]["provider_leaf_hash"]).hex() == hospital[0]["leaf_hash"]
    # names and digests only: no released value appears in either ledger entry
    values = {json.dumps(v) for rec in r.records for v in rec.values()}
    for e in relief + hospital:
        flat = json.dumps(e)
        assert not any(v.strip('"') in flat for v in values if len(v) > 6)


def test_unregistered_agent_cannot_use_another_agents_session(fed):
    async def go():
        async with (
            AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as a,
            AgentClient.from_wallet(fed.layout.wallets["relief/logistics"]) as b,
        ):
            s = await a.open_session("hospital")
            return await b.request(
                s,
                contract_id="relief-hospital-triage",
                purpose="triage-coordination",
                resource="patients",
                subject="patient-001",
                fields=TRIAGE_MNI,
            )

    with pytest.raises(FederationError) as ei:
        run(go())
    assert ei.value.status == "UNAUTHENTICATED"
    assert ei.value.reason == "AGENT_MISMATCH"


def test_metrics_and_trust_commands_show_oer_and_tau(fed):
    import subprocess
    import sys

    run(_triage(fed, TRIAGE_MNI + ["diagnosis"], subject="patient-004"))
    d = fed.layout.orgs["hospital"]
    m = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "metrics", "--dir", str(d), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert m.returncode == 0, m.stderr
    series = json.loads(m.stdout)
    oer = [s for s in series if s["name"] == "accord_oer_ratio" and s["labels"]["peer"] == "relief"]
    assert {s["labels"]["stage"] for s in oer} == {"offered", "released"}
    offered = [s["value"] for s in oer if s["labels"]["stage"] == "offered"]
    assert offered and all(v == 1.0 for v in offered)  # the source always offers whole records
    t = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "trust", "show", "--dir", str(d), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert t.returncode == 0, t.stderr
    rows = {r["contract"]: r for r in json.loads(t.stdout)}
    triage = rows["relief-hospital-triage"]
    assert triage["tau"] <= triage["ceiling"] == 0.8
    assert "interop-unsigned-hospital" not in rows


def test_federated_query_returns_only_our_crossings_each_verified(fed):
    import subprocess
    import sys
    import time

    run(_triage(fed, TRIAGE_MNI, subject="patient-005"))
    d = fed.layout.orgs["relief"]
    deadline = time.monotonic() + 20
    while True:
        q = subprocess.run(
            [
                sys.executable,
                "-m",
                "federation.cli.main",
                "ledger",
                "query",
                "--dir",
                str(d),
                "--federation",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert q.returncode == 0, q.stderr
        rows = json.loads(q.stdout)
        hospital = [r for r in rows if r["source"] == "hospital"]
        if any(r["verified"] == "verified" for r in hospital) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert hospital and all(r["verified"] in ("verified", "unwitnessed") for r in hospital)
    assert any(r["verified"] == "verified" for r in hospital)
    relief = "did:web:relief.accord.test"
    assert all(relief in (r["provider_org"], r["requester_org"]) for r in hospital)
    # the interop tester's organization runs no node: reported, not fatal
    assert any(r["source"] == "interop" and r["verified"].startswith("unreachable") for r in rows)
