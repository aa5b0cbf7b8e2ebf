"""Pinning a partner checked against its did:web DID document over HTTPS (``peer add --check-did``, #11).

A real HTTPS server (TLS 1.2+, a certificate for ``beta.example`` from its
own CA) serves beta's DID document; the test process resolves
``beta.example`` to it (``socket.getaddrinfo`` patched here, in the test: no
DNS or /etc/hosts is touched). ``accord peer add`` runs in process through its
real entry point. It pins only when the document, fetched under a CA the
operator pins, names the bundle's key as an assertion key; every other answer
is refused in one line and nothing is pinned.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nodes.test_cli_walkthrough import accord, ok, one_line_error

pytestmark = pytest.mark.xdist_group("cli")

DID = "did:web:beta.example"


@pytest.fixture
def did_host(tmp_path, monkeypatch):
    """An HTTPS server for ``beta.example``: (state to set what it answers, the PEM of its CA)."""
    from federation.tls import mint_tls_material

    tls = mint_tls_material(org_name="beta-web", org_did=DID, hosts=("beta.example",))
    (tmp_path / "web.pem").write_bytes(tls.cert_pem)
    (tmp_path / "web.key").write_bytes(tls.key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "web.pem", tmp_path / "web.key")
    state = {"body": b"{}", "redirect": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if state["redirect"]:
                self.send_response(302)
                self.send_header("Location", state["redirect"])
                self.end_headers()
                return
            if self.path != "/.well-known/did.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/did+json")
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    real = socket.getaddrinfo

    def resolve(host, p, *args, **kw):
        if host == "beta.example":
            return real("127.0.0.1", port, *args, **kw)
        return real(host, p, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    ca = tmp_path / "web-ca.pem"
    ca.write_bytes(tls.ca_pem)
    yield state, ca
    server.shutdown()
    server.server_close()


def test_peer_add_check_did_pins_only_what_the_did_document_names(tmp_path, capsys, did_host):
    from credentials import Ed25519KeyPair
    from federation.identity import NodeIdentity, did_document

    state, ca = did_host
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    ok(capsys, "node", "init", "--org", "alpha", "--dir", alpha, "--listen", "127.0.0.1:7400")
    ok(capsys, "node", "init", "--org", "beta", "--dir", beta, "--listen", "127.0.0.1:7401", "--did", DID)
    ok(capsys, "peer", "export-bundle", "--dir", beta, "--out", tmp_path / "beta.json")
    doc = did_document(NodeIdentity.load(beta))
    pinned = alpha / "peers" / "beta.json"
    add = ["peer", "add", tmp_path / "beta.json", "--dir", alpha, "--check-did"]

    def refused(reason, why, *extra):
        code, _, err = accord(capsys, *add, *extra)
        one_line_error(code, err, reason)
        assert why in err and not pinned.exists(), err

    state["body"] = json.dumps(doc).encode()
    # the server's certificate chains to neither the system trust store nor beta's Accord CA
    refused("DID_UNRESOLVABLE", "certificate verify failed")
    refused("DID_UNRESOLVABLE", "certificate verify failed", "--did-ca", "bundle")
    # the document gives the method another key
    other = Ed25519KeyPair.generate().public_key_multibase
    forged = json.loads(json.dumps(doc))
    forged["verificationMethod"][0]["publicKeyMultibase"] = other
    state["body"] = json.dumps(forged).encode()
    refused("DID_MISMATCH", "another key than the bundle", "--did-ca", ca)
    # the key is listed, but not as an assertion key
    state["body"] = json.dumps({**doc, "assertionMethod": []}).encode()
    refused("DID_MISMATCH", "an assertionMethod", "--did-ca", ca)
    # another DID's document, an oversized one, not JSON, a redirect
    state["body"] = json.dumps({**doc, "id": "did:web:mallory.example"}).encode()
    refused("DID_UNRESOLVABLE", "id is not", "--did-ca", ca)
    state["body"] = json.dumps({**doc, "pad": "x" * 17_000}).encode()
    refused("DID_UNRESOLVABLE", "larger than", "--did-ca", ca)
    state["body"] = b"\xff not json"
    refused("DID_UNRESOLVABLE", "not JSON", "--did-ca", ca)
    state["body"], state["redirect"] = json.dumps(doc).encode(), "https://mallory.example/did.json"
    refused("DID_UNRESOLVABLE", "redirect", "--did-ca", ca)
    state["redirect"] = ""
    # --did-ca without --check-did is a usage error
    code, _, err = accord(capsys, "peer", "add", tmp_path / "beta.json", "--dir", alpha, "--did-ca", ca)
    assert code != 0 and "--check-did" in err and not pinned.exists()
    # the document beta publishes, under the pinned CA: pinned
    out = ok(capsys, *add, "--did-ca", ca)
    assert f"the DID document of {DID} names the bundle's key ({DID}#key-1)" in out
    assert pinned.exists()
