"""Organization key rotation (issue #11, "Identity and keys over time").

On real node processes: ``accord node rotate-key`` on hospital while it runs;
relief (which pinned hospital's old bundle) follows through the rotation
statement hospital announces, without any re-pinning by hand, and both
directions keep exchanging: relief's agent asks hospital (hospital signs
status lists with the new key, its contracts were signed with the old one),
hospital's agents (credentials signed by the old key, and a new agent whose
credential the new key signs) ask relief (envelopes signed with the new
key). A receipt handed out before the rotation still verifies. A rotation
statement not signed by the pinned key is refused and the pin does not move.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys

import pytest

from credentials import Ed25519KeyPair
from federation.agents import register_agent
from federation.client import AgentClient
from federation.errors import FederationError, PeerError
from federation.identity import NodeIdentity, export_bundle
from federation.peers import PeerBundle, RotationStatement
from federation.rotation import RotationStep, apply_rotation, load_rotation_steps, rotate_org_key
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("federation")

TRIAGE_MNI = ["patient_id", "triage_level", "mobility", "shelter"]


def _accord(*args):
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
    )


async def _triage(fed, subject="patient-001"):
    async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
        s = await c.open_session("hospital")
        return await c.request(
            s,
            contract_id="relief-hospital-triage",
            purpose="triage-coordination",
            resource="patients",
            subject=subject,
            fields=TRIAGE_MNI,
        )


async def _beds(wallet_path, endpoint=None):
    async with AgentClient.from_wallet(wallet_path, endpoint=endpoint) as c:
        s = await c.open_session("relief")
        return await c.request(
            s,
            contract_id="hospital-relief-shelters",
            purpose="bed-planning",
            resource="shelters",
            subject="north-school",
            fields=["shelter_id", "capacity", "occupancy", "location"],
        )


def _pinned(node_dir, org) -> PeerBundle:
    return PeerBundle.parse((node_dir / "peers" / f"{org}.json").read_bytes())


def _forged_announcement(hospital, relief):
    """A rotation of hospital's pin to an attacker's key, signed by the attacker's key, not hospital's."""
    ident = NodeIdentity.load(hospital)
    pinned = _pinned(relief, "hospital")
    attacker = Ed25519KeyPair.generate()
    import dataclasses

    forged_ident = dataclasses.replace(ident, org_key=attacker)
    new = export_bundle(forged_ident)
    fake_old = export_bundle(forged_ident)
    stmt = RotationStatement.make(old=fake_old, new=new, old_key=attacker)
    stmt = stmt.model_copy(update={"old_fingerprint": pinned.fingerprint(), "signature": ""})
    sig = attacker.sign(stmt.signing_bytes())
    stmt = stmt.model_copy(update={"signature": base64.urlsafe_b64encode(sig).rstrip(b"=").decode()})
    return RotationStep(stmt, new)


async def _announce(hospital_ident, relief_bundle, steps):
    from federation.peer_client import PeerClient

    ident = hospital_ident
    client = PeerClient(cert_pem=ident.tls_pem("node.pem"), key_pem=ident.tls_pem("node.key"))
    try:
        wire = [(s.statement.model_dump_json().encode(), s.bundle.model_dump_json().encode()) for s in steps]
        return await client.announce_key_rotation(relief_bundle, wire)
    finally:
        await client.close()


def test_rotation_on_running_nodes_keeps_both_directions_exchanging(tmp_path):
    fed = start(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    hospital, relief = fed.layout.orgs["hospital"], fed.layout.orgs["relief"]
    try:
        before = run(_triage(fed))
        assert before.decision == "allow" and before.receipt_verified
        assert run(_beds(fed.layout.wallets["hospital/bed-manager"])).decision == "allow"
        old_pin = _pinned(relief, "hospital")
        old_vkey = old_pin.ledger_vkey

        # a forged rotation (statement signed by a key that is not the pinned one) is refused
        hosp_ident = NodeIdentity.load(hospital)
        with pytest.raises(FederationError) as ei:
            run(_announce(hosp_ident, _pinned(hospital, "relief"), [_forged_announcement(hospital, relief)]))
        assert ei.value.reason == "BAD_ROTATION"
        assert _pinned(relief, "hospital").fingerprint() == old_pin.fingerprint()

        p = _accord("node", "rotate-key", "--dir", hospital, "--json")
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        # supplier is pinned but not running: reported, and retried by the running node
        # ("unchanged" when the running node's retry loop announced it first)
        assert out["peers"]["relief"] in ("rotation", "unchanged"), out
        assert "DEADLINE_EXCEEDED" in out["peers"]["supplier"] or "UNAVAILABLE" in out["peers"]["supplier"]
        assert out["verification_method"].endswith("#key-2")
        new_pin = _pinned(relief, "hospital")
        assert new_pin.fingerprint() == out["new_fingerprint"] != old_pin.fingerprint()
        assert new_pin.public_key != old_pin.public_key
        # the log key does not rotate with the organization key
        assert new_pin.ledger_vkey == old_vkey
        assert list((relief / "peers" / "retired").glob("hospital.*.json"))
        # the old private key is gone from the node directory
        assert NodeIdentity.load(hospital).org_key.public_key == new_pin.public_key

        # relief → hospital: status lists now signed by key-2; hospital's contracts by key-1 still verify
        after = run(_triage(fed, subject="patient-002"))
        assert after.decision == "allow" and after.receipt_verified
        # hospital → relief: envelopes signed with the new key, the agent's credential by the old one
        assert run(_beds(fed.layout.wallets["hospital/bed-manager"])).decision == "allow"
        # an agent registered after the rotation holds a credential signed by key-2
        wallet = register_agent(
            NodeIdentity.load(hospital), name="planner", role="bed-manager", scopes=["shelters:read"]
        )
        assert wallet.credential["proof"]["verificationMethod"].endswith("#key-2")
        p = _accord("peer", "list", "--dir", hospital)  # any command; then reload the running node
        p = _accord("node", "status", "--dir", hospital, "--json")
        assert json.loads(p.stdout)["org_key"].endswith("#key-2")
        from federation.cli.common import nudge_running_node

        assert "reloaded" in (nudge_running_node(hospital) or "")
        assert run(_beds(hospital / "agents" / "planner.json", fed.endpoint("hospital"))).decision == "allow"

        # the receipt handed out before the rotation still verifies, with the (unchanged) log key
        from ledger import NoteVerifier, verify_receipt

        r = before.outcome.receipt
        verify_receipt(r.tlog_proof, entry=r.entry, log_verifier=NoteVerifier.from_vkey(new_pin.ledger_vkey))

        # supplier comes up later: the running hospital node announces the rotation to it
        from federation.supervisor import NodeProcess

        supplier = fed.layout.orgs["supplier"]
        fed.procs["supplier"] = NodeProcess(supplier).start()
        import time

        deadline = time.monotonic() + 60
        while _pinned(supplier, "hospital").fingerprint() != new_pin.fingerprint():
            assert time.monotonic() < deadline, "the running node did not re-announce its rotation"
            time.sleep(0.5)

        # announcing again changes nothing
        resp = run(
            _announce(
                NodeIdentity.load(hospital),
                _pinned(hospital, "relief"),
                load_rotation_steps(NodeIdentity.load(hospital).paths),
            )
        )
        assert resp == (new_pin.fingerprint(), "unchanged")
    finally:
        fed.stop()
    # offline: relief's ledger and contracts still verify with the retired key
    p = _accord("contract", "list", "--dir", relief, "--json")
    assert p.returncode == 0, p.stderr
    p = _accord("ledger", "verify", "--dir", relief)
    assert p.returncode == 0, p.stdout + p.stderr


def _two_nodes(tmp_path):
    from federation.identity import init_node
    from federation.peers import pin_bundle

    a, b = tmp_path / "a", tmp_path / "b"
    init_node(a, org_name="alpha", listen="127.0.0.1:7601")
    init_node(b, org_name="beta", listen="127.0.0.1:7602")
    pin_bundle(b / "peers", export_bundle(NodeIdentity.load(a)), own_did=NodeIdentity.load(b).org_did)
    return a, b


def test_a_chain_of_rotations_is_followed_from_the_pinned_key(tmp_path):
    a, b = _two_nodes(tmp_path)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rotate_org_key(a, now=t0)
    rotate_org_key(a, now=t0 + dt.timedelta(days=30))
    steps = load_rotation_steps(NodeIdentity.load(a).paths)
    assert len(steps) == 2
    did = NodeIdentity.load(a).org_did
    fp, how = apply_rotation(b / "peers", own_did=NodeIdentity.load(b).org_did, caller_did=did, steps=steps)
    assert how == "rotation" and fp == export_bundle(NodeIdentity.load(a)).fingerprint()
    assert len(list((b / "peers" / "retired").glob("alpha.*.json"))) == 2
    history = json.loads((a / "keys" / "org-history.json").read_text())["keys"]
    assert [k["id"] for k in history] == ["key-1", "key-2", "key-3"]
    assert history[0]["validUntil"] == "2026-01-01T00:00:00Z" and history[2]["validUntil"] is None
    # every key of alpha still resolves at beta (old contracts and credentials verify)
    from federation.node_offline import key_resolver

    resolver = key_resolver(NodeIdentity.load(b))
    for k in history:
        resolver(f"{did}#{k['id']}")
    # the steps again: nothing to do
    assert apply_rotation(b / "peers", own_did="x", caller_did=did, steps=steps)[1] == "unchanged"


def test_a_rotation_not_from_the_pinned_key_is_refused(tmp_path):
    a, b = _two_nodes(tmp_path)
    rotate_org_key(a)
    steps = load_rotation_steps(NodeIdentity.load(a).paths)
    did = NodeIdentity.load(a).org_did
    pinned = (b / "peers" / "alpha.json").read_bytes()
    # only the second step (its old key is not the one beta pinned): no statement from the pinned key
    rotate_org_key(a)
    later = load_rotation_steps(NodeIdentity.load(a).paths)[1:]
    with pytest.raises(PeerError) as ei:
        apply_rotation(b / "peers", own_did="x", caller_did=did, steps=later)
    assert ei.value.reason == "BAD_ROTATION"
    # a statement whose signature is not the old key's
    bad = RotationStep(steps[0].statement.model_copy(update={"signature": "A" * 86}), steps[0].bundle)
    with pytest.raises(PeerError) as ei:
        apply_rotation(b / "peers", own_did="x", caller_did=did, steps=[bad])
    assert ei.value.reason == "BAD_ROTATION"
    # steps about another organization than the caller
    with pytest.raises(PeerError) as ei:
        apply_rotation(b / "peers", own_did="x", caller_did="did:web:beta.accord.test", steps=steps)
    assert ei.value.reason == "BAD_ROTATION"
    assert (b / "peers" / "alpha.json").read_bytes() == pinned
    assert not (b / "peers" / "retired").exists()


def test_rotation_keeps_encrypted_keys_encrypted(tmp_path, monkeypatch):
    from federation.identity import KeyPassphrase, init_node

    monkeypatch.setenv("ROT_PASS", "correct horse battery staple")
    a = tmp_path / "a"
    init_node(a, org_name="alpha", listen="127.0.0.1:7603", passphrase=KeyPassphrase(env="ROT_PASS"))
    before = NodeIdentity.load(a).org_key.public_key
    rotate_org_key(a)
    assert not (a / "keys" / "org.jwk").exists()
    assert b"ENCRYPTED PRIVATE KEY" in (a / "keys" / "org.p8").read_bytes()
    ident = NodeIdentity.load(a)
    assert ident.org_key.public_key != before and ident.verification_method.endswith("#key-2")
