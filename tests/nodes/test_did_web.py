"""An organization's own did:web (issue #11): ``node init --did did:web:DOMAIN``.

The node serves its DID document (current and retired keys) at
``/.well-known/did.json`` on its HTTP listener; partners pin its bundle (the
DID is the organization's own, bound by the pin) and authenticate its mTLS
certificate (SAN URI = that DID) like any other.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from federation.config import load_config, save_config
from federation.identity import NodeIdentity, export_bundle
from federation.peers import PeerBundle, pin_bundle
from federation.supervisor import NodeProcess, free_port
from nodes.test_cli_walkthrough import accord, ok, one_line_error

pytestmark = pytest.mark.xdist_group("federation")

DID = "did:web:acme.example.org"


def test_init_with_an_own_did_web_serves_its_document_and_peers_authenticate_it(tmp_path, capsys):
    from federation.rotation import rotate_org_key

    acme, beta = tmp_path / "acme", tmp_path / "beta"
    ok(
        capsys,
        "node",
        "init",
        "--org",
        "acme",
        "--did",
        DID,
        "--dir",
        acme,
        "--listen",
        f"127.0.0.1:{free_port()}",
    )
    ok(capsys, "node", "init", "--org", "beta", "--dir", beta, "--listen", f"127.0.0.1:{free_port()}")
    cfg = load_config(acme)
    assert cfg.org_did == DID
    http_port = free_port()
    save_config(acme, cfg.model_copy(update={"http_listen": f"127.0.0.1:{http_port}"}))
    rotate_org_key(acme)  # the document lists the retired key too
    ident = NodeIdentity.load(acme)
    bundle = PeerBundle.parse(export_bundle(ident).model_dump_json())
    assert bundle.org_did == DID
    # beta pins acme (by fingerprint, out of band) and acme pins beta
    pin_bundle(beta / "peers", bundle, own_did=NodeIdentity.load(beta).org_did)
    pin_bundle(acme / "peers", export_bundle(NodeIdentity.load(beta)), own_did=DID)
    procs = {}
    try:
        for name, d in (("acme", acme), ("beta", beta)):
            procs[name] = NodeProcess(d).start()
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/.well-known/did.json", timeout=20) as r:
            assert r.headers["Content-Type"].startswith("application/did+json")
            raw = r.read()
        assert len(raw) <= 16 * 1024
        doc = json.loads(raw)
        assert doc["id"] == DID
        keys = {m["id"]: m["publicKeyMultibase"] for m in doc["verificationMethod"]}
        assert keys[f"{DID}#key-2"] == bundle.public_key_multibase
        assert f"{DID}#key-1" in keys and doc["assertionMethod"] == [f"{DID}#key-2"]

        # acme calls beta over mTLS with its certificate (SAN URI = its own did:web): beta authenticates it
        from federation.peer_client import PeerClient

        async def call():
            client = PeerClient(cert_pem=ident.tls_pem("node.pem"), key_pem=ident.tls_pem("node.key"))
            try:
                beta_bundle = PeerBundle.parse((acme / "peers" / "beta.json").read_bytes())
                return await client.node_info(beta_bundle)
            finally:
                await client.close()

        info = asyncio.run(call())
        assert info.org_did == "did:web:beta.accord.test"
    finally:
        for p in procs.values():
            p.stop()


def test_a_malformed_did_is_refused_in_one_line(tmp_path, capsys):
    for bad in ("did:web:Acme.Example.org", "did:key:z6Mk", "did:web:localhost", "did:web:a..b.org"):
        code, _, err = accord(capsys, "node", "init", "--org", "acme", "--did", bad, "--dir", tmp_path / "x")
        one_line_error(code, err, "CONFIG_INVALID")
        assert "--did" in err
        assert not (tmp_path / "x").exists()


def test_a_bundle_cannot_claim_another_organizations_default_did(tmp_path):
    """An own did:web is allowed, but did:web:<x>.accord.test stays bound to org_name x."""
    import dataclasses

    from federation.errors import PeerError
    from federation.identity import init_node

    init_node(tmp_path / "mallory", org_name="mallory", listen="127.0.0.1:7641")
    ident = NodeIdentity.load(tmp_path / "mallory")
    forged = dataclasses.replace(
        ident, config=ident.config.model_copy(update={"org_did": "did:web:hospital.accord.test"})
    )
    with pytest.raises(PeerError) as ei:
        PeerBundle.parse(export_bundle(forged).model_dump_json())
    assert ei.value.reason == "BAD_BUNDLE" and ei.value.metadata["field"] == "org_did"
