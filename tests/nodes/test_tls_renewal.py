"""TLS certificate renewal without a restart (issue #11, "Identity and keys over time").

On real node processes: relief's agent keeps exchanging with hospital while
``accord node renew-tls`` renews hospital's certificates; no exchange fails,
a new TLS connection to hospital is served the new certificate, hospital's
own calls to relief work with its new client certificate, and ``kill -HUP``
reloads the certificates the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from federation.client import AgentClient
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


def _served_certificate(endpoint: str, tls_dir) -> bytes:
    """DER of the certificate a fresh TLS handshake with ``endpoint`` is served."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(tls_dir / "ca.pem"))
    ctx.load_cert_chain(str(tls_dir / "operator.pem"), str(tls_dir / "operator.key"))
    ctx.set_alpn_protocols(["h2"])
    host, _, port = endpoint.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def _der(pem_path) -> bytes:
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(Encoding.DER)


async def _keep_exchanging(fed, stop: asyncio.Event, results: list):
    """relief → hospital, a new session every few requests (new sessions, same channel and fresh ones)."""
    i = 0
    while not stop.is_set():
        async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
            s = await c.open_session("hospital")
            for _ in range(3):
                i += 1
                try:
                    r = await c.request(
                        s,
                        contract_id="relief-hospital-triage",
                        purpose="triage-coordination",
                        resource="patients",
                        subject=f"patient-00{1 + i % 5}",
                        fields=TRIAGE_MNI,
                    )
                    results.append(r.decision)
                except Exception as exc:  # noqa: BLE001 - recorded: the test asserts there is none
                    results.append(f"{exc.__class__.__name__}: {exc}")


async def _beds(fed):
    async with AgentClient.from_wallet(fed.layout.wallets["hospital/bed-manager"]) as c:
        s = await c.open_session("relief")
        r = await c.request(
            s,
            contract_id="hospital-relief-shelters",
            purpose="bed-planning",
            resource="shelters",
            subject="north-school",
            fields=["shelter_id", "capacity", "occupancy", "location"],
        )
        return r.decision


def test_renew_tls_while_a_partner_keeps_exchanging(tmp_path):
    fed = start(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    hospital = fed.layout.orgs["hospital"]
    tls = hospital / "tls"
    try:
        old_der = _der(tls / "node.pem")
        assert _served_certificate(fed.endpoint("hospital"), tls) == old_der
        assert run(_beds(fed)) == "allow"

        async def scenario():
            stop, results = asyncio.Event(), []
            task = asyncio.create_task(_keep_exchanging(fed, stop, results))
            while len(results) < 3:
                await asyncio.sleep(0.1)
            p = await asyncio.to_thread(_accord, "node", "renew-tls", "--dir", hospital, "--days", "30")
            n_at_renewal = len(results)
            while len(results) < n_at_renewal + 6:  # and then some more exchanges, on fresh sessions
                await asyncio.sleep(0.1)
            stop.set()
            await task
            return p, results

        p, results = run(scenario())
        assert p.returncode == 0, p.stderr
        assert "running node reloaded" in p.stdout
        assert results and all(r == "allow" for r in results), results
        new_der = _der(tls / "node.pem")
        assert new_der != old_der
        assert _served_certificate(fed.endpoint("hospital"), tls) == new_der
        # hospital's own calls (new channels, the new client certificate) still reach relief
        assert run(_beds(fed)) == "allow"
        # the operator certificate was renewed too, and still reaches the AdminService
        assert "reloaded" in _accord("agent", "renew", "bed-manager", "--dir", hospital).stdout

        # SIGHUP reloads certificates the same way
        from federation.paths import NodePaths, write_private
        from federation.tls import renew_node_certificate

        cert, key = renew_node_certificate(
            ca_pem=(tls / "ca.pem").read_bytes(),
            ca_key_pem=(tls / "ca.key").read_bytes(),
            current_cert_pem=(tls / "node.pem").read_bytes(),
            days=10,
        )
        write_private(tls / "node.key", key)
        (tls / "node.pem").write_bytes(cert)
        from federation.lifecycle import read_pidfile

        os.kill(int(read_pidfile(NodePaths(hospital).pidfile)["pid"]), signal.SIGHUP)
        hup_der = _der(tls / "node.pem")
        deadline = time.monotonic() + 30
        while _served_certificate(fed.endpoint("hospital"), tls) != hup_der:
            assert time.monotonic() < deadline, "SIGHUP did not swap the served certificate"
            time.sleep(0.3)
        assert run(_beds(fed)) == "allow"
    finally:
        fed.stop()


def test_renewed_certificate_keeps_names_and_chains_to_the_same_ca(tmp_path):
    from federation.identity import init_node
    from federation.tls import check_chain, renew_node_certificate, san_uri_of_pem

    d = tmp_path / "a"
    init_node(d, org_name="alpha", listen="127.0.0.1:7611")
    tls = d / "tls"
    old = (tls / "node.pem").read_bytes()
    cert, _ = renew_node_certificate(
        ca_pem=(tls / "ca.pem").read_bytes(),
        ca_key_pem=(tls / "ca.key").read_bytes(),
        current_cert_pem=old,
        days=7,
    )
    check_chain(cert, (tls / "ca.pem").read_bytes())
    assert san_uri_of_pem(cert) == san_uri_of_pem(old) == "did:web:alpha.accord.test"
    new_c, old_c = x509.load_pem_x509_certificate(cert), x509.load_pem_x509_certificate(old)
    san = x509.SubjectAlternativeName
    assert (
        new_c.extensions.get_extension_for_class(san).value
        == old_c.extensions.get_extension_for_class(san).value
    )
    assert new_c.public_key().public_numbers() != old_c.public_key().public_numbers()
    assert 6 < (new_c.not_valid_after_utc - new_c.not_valid_before_utc).days <= 7
    with pytest.raises(ValueError):
        renew_node_certificate(
            ca_pem=(tls / "ca.pem").read_bytes(),
            ca_key_pem=(tls / "ca.key").read_bytes(),
            current_cert_pem=old,
            days=0,
        )


def test_peer_client_presents_a_renewed_certificate_on_new_channels(tmp_path):
    from federation.identity import NodeIdentity, export_bundle, init_node
    from federation.peer_client import PeerClient

    d = tmp_path / "a"
    init_node(d, org_name="alpha", listen="127.0.0.1:7612")
    ident = NodeIdentity.load(d)
    bundle = export_bundle(ident)

    async def go():
        client = PeerClient(cert_pem=b"old-cert", key_pem=b"old-key")
        first = client.stub(bundle)
        assert client.stub(bundle) is first
        client.update_certificate(cert_pem=ident.tls_pem("node.pem"), key_pem=ident.tls_pem("node.key"))
        second = client.stub(bundle)
        assert second is not first and client._cert == ident.tls_pem("node.pem")
        await asyncio.sleep(0)
        await client.close()

    run(go())
