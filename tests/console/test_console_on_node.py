"""``console = true``: the node's own HTTP listener serves the console (real node processes).

Two nodes: one with ``http_listen`` on loopback and ``console_write = true``
(plain HTTP, the write role for local clients), one on ``0.0.0.0`` (the listener
then speaks TLS; the console needs an operator certificate of the node's CA,
the public log endpoints do not).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from federation.config import load_config, save_config
from federation.identity import init_node
from federation.supervisor import NodeProcess, free_port
from tests.console.test_console_security import assert_error_page, get, post, session_and_csrf

pytestmark = pytest.mark.slow  # no demo federation: free to run beside the "console" group


def accord(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def _node(root, org: str, http_host: str, **settings) -> int:
    init_node(root, org_name=org, listen="127.0.0.1:0")
    port = free_port()
    cfg = load_config(root)
    save_config(root, cfg.model_copy(update={"http_listen": f"{http_host}:{port}", **settings}))
    return port


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("console-on-node")
    local, remote = base / "local", base / "remote"
    local_port = _node(local, "localorg", "127.0.0.1", console=True, console_write=True)
    remote_port = _node(remote, "remoteorg", "0.0.0.0", console=True)
    p = accord("agent", "register", "--dir", str(local), "--name", "bot", "--role", "r", "--scope", "s:read")
    assert p.returncode == 0, p.stderr
    procs = [NodeProcess(local).start(), NodeProcess(remote).start()]
    try:
        yield {
            "local": (local, f"http://127.0.0.1:{local_port}"),
            "remote": (remote, f"https://127.0.0.1:{remote_port}", remote_port),
        }
    finally:
        for n in procs:
            n.stop()


def _tls(cert=None, key=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def test_loopback_listener_serves_the_console_with_the_configured_write_role(nodes):
    d, base = nodes["local"]
    # the listener's own endpoints are untouched
    status, body, _ = get(base + "/healthz")
    assert status == 200
    status, body, headers = get(base + "/")
    assert status == 200 and "localorg" in body
    assert 'data-role="write"' in body and "app;dur=" in headers["server-timing"]
    status, _, headers = get(base + "/static/verify.js")
    assert status == 200 and "javascript" in headers["content-type"]
    status, body, _ = get(base + "/ledger/999999")
    assert_error_page(status, body, 404, "UNKNOWN_ENTRY")
    # a write through the node's listener: CSRF-checked, applied and ledgered
    cookie, csrf = session_and_csrf(base)
    status, body = post(f"{base}/agents/bot/suspend", "csrf=nope", cookie=cookie)
    assert_error_page(status, body, 403, "CSRF")
    status, body = post(f"{base}/agents/bot/suspend", f"csrf={csrf}", cookie=cookie)
    assert status == 200, body[:500]
    agents = json.loads(accord("agent", "list", "--dir", str(d), "--json").stdout)
    assert {a["name"]: a["status"] for a in agents}["bot"] == "suspended"
    ops = json.loads(accord("ledger", "query", "--dir", str(d), "--kind", "operator_action", "--json").stdout)
    assert [(o["extra"]["action"], o["extra"]["target"]) for o in ops] == [("agent.suspend", "bot")]
    # the explorer on the node's listener shows that entry
    status, body, _ = get(base + "/ledger?kind=operator_action")
    assert status == 200 and body.count("<tr data-index=") == 1


def test_off_loopback_listener_speaks_tls_and_the_console_needs_an_operator_certificate(nodes, tmp_path):
    d, base, port = nodes["remote"]
    # plain HTTP gets no HTTP answer
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        try:
            answer = s.recv(100)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")
    # the public endpoints need no client certificate
    status, _, _ = get(base + "/healthz", context=_tls())
    assert status == 200
    # the console does: none -> 401; the node's own server certificate names no console role -> 403
    status, body, _ = get(base + "/", context=_tls())
    assert_error_page(status, body, 401, "TLS_REQUIRED")
    tls = d / "tls"
    status, body, _ = get(base + "/", context=_tls(tls / "node.pem", tls / "node.key"))
    assert_error_page(status, body, 403, "NOT_OPERATOR")
    # the operator certificate: write; a console-read certificate: read, its write refused
    status, body, headers = get(base + "/", context=_tls(tls / "operator.pem", tls / "operator.key"))
    assert status == 200 and 'data-role="write"' in body and "Secure" in headers["set-cookie"]
    p = accord(
        "console", "issue-cert", "--dir", str(d), "--name", "bob", "--role", "read", "--out", str(tmp_path)
    )
    assert p.returncode == 0, p.stderr
    ctx = _tls(tmp_path / "bob.pem", tmp_path / "bob.key")
    status, body, headers = get(base + "/agents", context=ctx)
    assert status == 200 and 'data-role="read"' in body
    # a certificate from another CA fails the handshake itself
    other = tmp_path / "other"
    init_node(other, org_name="otherorg", listen="127.0.0.1:0")
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        urllib.request.urlopen(
            base + "/",
            timeout=10,
            context=_tls(other / "tls" / "operator.pem", other / "tls" / "operator.key"),
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"console": True}, "set http_listen too"),
        ({"console_write": True, "http_listen": "127.0.0.1:8080"}, "console_write needs console = true"),
        (
            {"console": True, "console_write": True, "http_listen": "0.0.0.0:8080"},
            "plain loopback requests only",
        ),
    ],
)
def test_console_settings_are_checked_at_load(settings, message):
    from federation.config import NodeConfig

    with pytest.raises(ValueError, match=message):
        NodeConfig(org_name="x", org_did="did:web:x.accord.test", **settings)


def test_revoked_operator_certificate_is_refused_with_a_clear_403(nodes, tmp_path):
    d, base, _ = nodes["remote"]
    for name in ("carol", "dave"):
        p = accord(
            "console",
            "issue-cert",
            "--dir",
            str(d),
            "--name",
            name,
            "--role",
            "write",
            "--out",
            str(tmp_path),
        )
        assert p.returncode == 0, p.stderr
    carol = _tls(tmp_path / "carol.pem", tmp_path / "carol.key")
    dave = _tls(tmp_path / "dave.pem", tmp_path / "dave.key")
    assert get(base + "/", context=carol)[0] == 200
    p = accord("console", "revoke-operator", "--dir", str(d), "--cert", str(tmp_path / "carol.pem"))
    assert p.returncode == 0 and "revoked: serial" in p.stdout, p.stderr
    # the running node's console re-reads the list: carol is refused, dave is not
    status, body, _ = get(base + "/", context=carol)
    assert_error_page(status, body, 403, "OPERATOR_REVOKED")
    assert "has been revoked" in body
    assert get(base + "/", context=dave)[0] == 200
    # the list is a CRL signed by the node's CA, listing carol's serial
    from cryptography import x509

    crl = x509.load_pem_x509_crl((d / "tls" / "console-crl.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((d / "tls" / "ca.pem").read_bytes())
    serial = x509.load_pem_x509_certificate((tmp_path / "carol.pem").read_bytes()).serial_number
    assert crl.is_signature_valid(ca.public_key())
    assert [r.serial_number for r in crl] == [serial]
    listed = json.loads(accord("console", "revoked-operators", "--dir", str(d), "--json").stdout)
    assert [r["serial"] for r in listed] == [f"{serial:x}"]
    # revoking again is a no-op; a certificate of another CA is refused in one line
    p = accord("console", "revoke-operator", "--dir", str(d), "--cert", str(tmp_path / "carol.pem"))
    assert p.returncode == 0 and "already revoked" in p.stdout
    other = tmp_path / "other"
    init_node(other, org_name="otherorg", listen="127.0.0.1:0")
    p = accord("console", "revoke-operator", "--dir", str(d), "--cert", str(other / "tls" / "operator.pem"))
    assert p.returncode != 0 and "NOT_ISSUED_HERE" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    # a list that does not verify (here: signed by another CA) fails closed until it is fixed
    from federation.console.revocation import revoke_certificate

    revoke_certificate(
        other / "tls", x509.load_pem_x509_certificate((other / "tls" / "operator.pem").read_bytes())
    )
    crl_path = d / "tls" / "console-crl.pem"
    good = crl_path.read_bytes()
    try:
        crl_path.write_bytes((other / "tls" / "console-crl.pem").read_bytes())
        status, body, _ = get(base + "/", context=dave)
        assert_error_page(status, body, 403, "REVOCATION_LIST_INVALID")
    finally:
        crl_path.write_bytes(good)
    assert get(base + "/", context=dave)[0] == 200
