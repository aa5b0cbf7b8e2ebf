"""``accord peer remove`` is atomic across files (issue #11).

The peer's bundle and its name in ``witnesses`` (node.toml) go together or not
at all: a failure writing node.toml puts the bundle back. The bundles retired
by the peer's key rotations go with it.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from nodes.test_cli_walkthrough import _pair, accord, ok

pytestmark = pytest.mark.xdist_group("cli")


def test_a_failed_config_write_leaves_the_peer_pinned_and_a_witness(tmp_path, capsys, monkeypatch):
    d = _pair(tmp_path, capsys, "alpha", "beta", "gamma")
    a = d["alpha"]
    ok(capsys, "peer", "add", tmp_path / "beta.json", "--dir", a, "--witness")
    ok(capsys, "peer", "add", tmp_path / "gamma.json", "--dir", a, "--witness")
    before = {p.name: p.read_bytes() for p in (a / "peers").iterdir()}
    config = (a / "node.toml").read_bytes()
    import federation.config

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(federation.config, "save_config", fail)
    code, _, err = accord(capsys, "peer", "remove", "beta", "--dir", a)
    assert code != 0 and "No space left" in err
    assert {p.name: p.read_bytes() for p in (a / "peers").iterdir()} == before  # bundle back, nothing aside
    assert (a / "node.toml").read_bytes() == config
    monkeypatch.undo()
    ok(capsys, "peer", "remove", "beta", "--dir", a)
    assert sorted(p.name for p in (a / "peers").iterdir()) == ["gamma.json"]
    assert tomllib.loads((a / "node.toml").read_text())["witnesses"] == ["gamma"]


def test_remove_drops_the_peers_retired_bundles(tmp_path, capsys):
    from federation.identity import NodeIdentity
    from federation.rotation import apply_rotation, load_rotation_steps, rotate_org_key

    d = _pair(tmp_path, capsys, "alpha", "beta")
    a, b = d["alpha"], d["beta"]
    ok(capsys, "peer", "add", tmp_path / "beta.json", "--dir", a)
    rotate_org_key(b)
    beta = NodeIdentity.load(b)
    apply_rotation(
        a / "peers",
        own_did=NodeIdentity.load(a).org_did,
        caller_did=beta.org_did,
        steps=load_rotation_steps(beta.paths),
    )
    assert list((a / "peers" / "retired").glob("beta.*.json"))
    ok(capsys, "peer", "remove", "beta", "--dir", a)
    assert not list((a / "peers" / "retired").glob("beta.*.json"))
    assert json.loads(ok(capsys, "peer", "list", "--dir", a, "--json")) == []


def test_a_bundle_that_cannot_be_deleted_never_leaves_half_a_removal(tmp_path, capsys, monkeypatch):
    """The bundle leaves by rename before node.toml changes (deleting it first-hand after the config write
    could fail and leave the peer pinned but no longer a witness)."""
    import pathlib

    d = _pair(tmp_path, capsys, "alpha", "beta", "gamma")
    a = d["alpha"]
    ok(capsys, "peer", "add", tmp_path / "beta.json", "--dir", a, "--witness")
    ok(capsys, "peer", "add", tmp_path / "gamma.json", "--dir", a, "--witness")
    real_unlink = pathlib.Path.unlink

    def unlink(self, *args, **kwargs):
        if self.name == "beta.json":
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    accord(capsys, "peer", "remove", "beta", "--dir", a)
    monkeypatch.undo()
    pinned = (a / "peers" / "beta.json").exists()
    witness = "beta" in tomllib.loads((a / "node.toml").read_text())["witnesses"]
    assert pinned == witness, f"half a removal: pinned={pinned} witness={witness}"
