"""Issue #10.7: the peer registry validates every bundle field and never silently re-pins.

Real node directories (``init_node``), real signed bundles; attacker bundles
are real bundles of the attacker's own node, edited and re-signed with the
attacker's own key (a bundle only proves possession of its own key).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from federation.errors import PeerError
from federation.identity import NodeIdentity, export_bundle, init_node
from federation.peers import PeerBundle, PeerRegistry, RotationStatement, pin_bundle

pytestmark = pytest.mark.xdist_group("cli")


def _node(root: Path, name: str, port: int = 7700) -> NodeIdentity:
    init_node(root / name, org_name=name, listen=f"127.0.0.1:{port}", force=True)
    return NodeIdentity.load(root / name)


def _forge(ident: NodeIdentity, **changes) -> PeerBundle:
    """The attacker's own bundle with ``changes``, re-signed with its own key (no checks)."""
    data = export_bundle(ident).model_dump()
    data.update(changes)
    data["signature"] = ""
    return PeerBundle.model_construct(**data).signed(ident.org_key)


def _pin_raw(peers: Path, bundle: PeerBundle, own: str = "did:web:me.accord.test", **kw):
    """Pin as ``accord peer add`` does: parse the JSON a file would hold, then pin."""
    return pin_bundle(peers, PeerBundle.parse(bundle.model_dump_json()), own_did=own, **kw)


@pytest.fixture
def world(tmp_path):
    me = _node(tmp_path, "me", 7701)
    hospital = _node(tmp_path, "hospital", 7702)
    evil = _node(tmp_path, "evil", 7703)
    _pin_raw(me.paths.peers, export_bundle(hospital))
    return tmp_path, me, hospital, evil


@pytest.mark.parametrize(
    "org_name", ["../../escape", "x/../../escape", "/tmp/abs", "Hospital", "a" * 64, "ev\x00il", ""]
)
def test_org_name_with_path_characters_is_refused_and_nothing_is_written(world, org_name):
    root, me, _, evil = world
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    forged = _forge(evil, org_name=org_name)
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, forged)
    assert info.value.reason == "BAD_BUNDLE"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_cli_peer_add_with_a_traversal_name_writes_nothing_outside_peers(world):
    root, me, _, evil = world
    forged = _forge(evil, org_name="../../escape")
    (root / "forged.json").write_text(forged.model_dump_json())
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "peer",
            "add",
            str(root / "forged.json"),
            "--dir",
            str(me.paths.root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1 and "BAD_BUNDLE" in p.stderr and "Traceback" not in p.stderr
    assert not (root / "escape.json").exists() and not (me.paths.root / "escape.json").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ledger_origin", "hospital.accord.test/ledger"),  # the hospital's log
        ("org_did", "did:web:hospital.accord.test"),  # the hospital's DID under evil's name
        ("endpoint", "127.0.0.1:7700\n"),
        ("endpoint", "host:99999"),
        ("issued_at", "yesterday"),
        ("witness_vkey", "x" * 600),
        ("ca_certificate_pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    ],
)
def test_every_bundle_field_is_validated(world, field, value):
    _, me, _, evil = world
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, _forge(evil, **{field: value}))
    assert info.value.reason == "BAD_BUNDLE"


def test_a_bundle_carrying_another_orgs_ca_or_log_key_is_refused(world):
    _, me, hospital, evil = world
    h = export_bundle(hospital)
    # the hospital's CA under evil's name: not evil's CA (its organization is "hospital")
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, _forge(evil, ca_certificate_pem=h.ca_certificate_pem))
    assert info.value.reason == "BAD_BUNDLE"
    # a DID document that lists a key other than the bundle's
    doc = json.loads(json.dumps(h.did_document).replace("hospital", "evil"))
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, _forge(evil, did_document=doc))
    assert info.value.reason == "BAD_BUNDLE"


def test_a_bundle_claiming_a_pinned_orgs_name_is_refused_and_the_pin_stays(world):
    _, me, hospital, evil = world
    pinned = (me.paths.peers / "hospital.json").read_text()
    # evil re-labels its own node as "hospital": every derived name is the hospital's, the key is evil's
    twin_dir = me.paths.root.parent / "twin"
    init_node(twin_dir, org_name="hospital", listen="127.0.0.1:7704", force=True)
    twin = export_bundle(NodeIdentity.load(twin_dir))
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, twin)
    assert info.value.reason == "PIN_CHANGE_REFUSED"
    assert (me.paths.peers / "hospital.json").read_text() == pinned
    assert PeerRegistry.load(me.paths.peers).get("hospital").public_key == export_bundle(hospital).public_key


def test_registry_refuses_collisions_between_pinned_files(world):
    _, me, hospital, evil = world
    # an operator (or a compromised script) drops a second file for the same organization
    (me.paths.peers / "evil.json").write_text(_forge(evil).model_dump_json())
    (me.paths.peers / "copy.json").write_text(export_bundle(hospital).model_dump_json())
    with pytest.raises(PeerError) as info:
        PeerRegistry.load(me.paths.peers)
    assert info.value.reason == "BAD_BUNDLE"  # copy.json is not named after its organization
    (me.paths.peers / "copy.json").unlink()
    assert len(PeerRegistry.load(me.paths.peers)) == 2


def test_registry_add_refuses_shared_keys_across_organizations(world):
    _, _, hospital, evil = world
    reg = PeerRegistry([export_bundle(hospital)])
    h = export_bundle(hospital)
    # same organization key under another (valid) name: model_construct skips nothing at add time
    clash = export_bundle(evil).model_copy(update={"public_key_multibase": h.public_key_multibase})
    with pytest.raises(PeerError) as info:
        reg.add(clash)
    assert info.value.reason == "PEER_COLLISION" and "public_key" in info.value.metadata["fields"]


def test_fingerprint_is_stable_across_exports_and_over_key_material(world):
    _, _, hospital, evil = world
    a = export_bundle(hospital, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    b = export_bundle(hospital, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), endpoint="10.0.0.1:7702")
    assert a.signing_bytes() != b.signing_bytes()
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 32
    assert export_bundle(evil).fingerprint() != a.fingerprint()


def test_re_export_of_the_same_identity_re_pins_without_ceremony(world):
    _, me, hospital, _ = world
    later = export_bundle(hospital, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert _pin_raw(me.paths.peers, later).how == "unchanged"


def _rotated(root: Path, hospital: NodeIdentity) -> PeerBundle:
    """The hospital after a key rotation: new keys, same name and DID."""
    d = root / "hospital-new"
    init_node(d, org_name="hospital", listen="127.0.0.1:7702", force=True)
    return export_bundle(NodeIdentity.load(d))


def test_key_change_needs_a_rotation_statement_signed_by_the_old_key(world):
    root, me, hospital, evil = world
    new = _rotated(root, hospital)
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, new)
    assert info.value.reason == "PIN_CHANGE_REFUSED"
    old = export_bundle(hospital)
    # a statement signed by someone else's key (here: the new key itself) does not count
    genuine = RotationStatement.make(old=old, new=new, old_key=hospital.org_key)
    # change a character in the middle (the last ones may carry only padding bits)
    sig = genuine.signature
    flipped = sig[:10] + ("B" if sig[10] != "B" else "C") + sig[11:]
    forged = genuine.model_copy(update={"signature": flipped})
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, new, rotation=forged)
    assert info.value.reason == "BAD_ROTATION"
    # a genuine statement for another bundle does not move the pin to this one
    other = _forged_endpoint(new, root)
    stmt_other = RotationStatement.make(old=old, new=other, old_key=hospital.org_key)
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, new, rotation=stmt_other)
    assert info.value.reason == "BAD_ROTATION"
    stmt = RotationStatement.make(old=old, new=new, old_key=hospital.org_key)
    res = _pin_raw(me.paths.peers, new, rotation=RotationStatement.parse(stmt.model_dump_json()))
    assert res.how == "rotation" and res.previous_fingerprint == old.fingerprint()
    assert PeerRegistry.load(me.paths.peers).get("hospital").fingerprint() == new.fingerprint()


def _forged_endpoint(bundle: PeerBundle, root: Path) -> PeerBundle:
    ident = NodeIdentity.load(root / "hospital-new")
    return export_bundle(ident, endpoint="10.1.1.1:7702")


def test_endpoint_change_is_not_silent_either(world):
    _, me, hospital, _ = world
    moved = export_bundle(hospital, endpoint="10.9.9.9:7702")
    with pytest.raises(PeerError) as info:
        _pin_raw(me.paths.peers, moved)
    assert info.value.reason == "PIN_CHANGE_REFUSED"
    fp = moved.fingerprint()
    assert _pin_raw(me.paths.peers, moved, override=(fp, fp)).how == "override"


def test_operator_override_must_name_both_fingerprints(world):
    root, me, hospital, _ = world
    new = _rotated(root, hospital)
    old_fp = export_bundle(hospital).fingerprint()
    for wrong in ((old_fp, old_fp), (new.fingerprint(), new.fingerprint()), ("0" * 32, new.fingerprint())):
        with pytest.raises(PeerError) as info:
            _pin_raw(me.paths.peers, new, override=wrong)
        assert info.value.reason == "PIN_CHANGE_REFUSED"
    assert _pin_raw(me.paths.peers, new, override=(old_fp, new.fingerprint())).how == "override"


def test_cli_rotation_round_trip(world):
    root, me, hospital, _ = world
    new = _rotated(root, hospital)
    (root / "new.json").write_text(new.model_dump_json())

    def accord(*args):
        return subprocess.run(
            [sys.executable, "-m", "federation.cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    p = accord("peer", "add", root / "new.json", "--dir", me.paths.root)
    assert p.returncode == 1 and "PIN_CHANGE_REFUSED" in p.stderr
    p = accord(
        "peer", "sign-rotation", root / "new.json", "--dir", hospital.paths.root, "--out", root / "rot.json"
    )
    assert p.returncode == 0, p.stderr
    p = accord("peer", "add", root / "new.json", "--dir", me.paths.root, "--rotation", root / "rot.json")
    assert p.returncode == 0, p.stderr
    assert new.fingerprint() in p.stdout
