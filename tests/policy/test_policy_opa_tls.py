"""OpaRestEngine over HTTPS with mutual TLS, against the stub with real certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from policy_opa_stub import OpaStub
from policy_support import make_input

from policy import Contract, EngineError, OpaRestEngine, OpaTls

NOW = dt.datetime.now(dt.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer_key, issuer: x509.Name | None, *, ca: bool, ip: bool = False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *objs) -> str:
    out = b""
    for o in objs:
        if isinstance(o, x509.Certificate):
            out += o.public_bytes(serialization.Encoding.PEM)
        else:
            out += o.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(out)
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("Accord test CA", ca_key, ca_key, None, ca=True)
    srv_key, cli_key = _key(), _key()
    srv = _cert("opa", srv_key, ca_key, ca.subject, ca=False, ip=True)
    cli = _cert("node", cli_key, ca_key, ca.subject, ca=False)
    return {
        "ca": _write(d / "ca.pem", ca),
        "srv_cert": _write(d / "srv.pem", srv),
        "srv_key": _write(d / "srv.key", srv_key),
        "cli_cert": _write(d / "cli.pem", cli),
        "cli_key": _write(d / "cli.key", cli_key),
    }


@pytest.fixture()
def mtls_stub(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["srv_cert"], pki["srv_key"])
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    s = OpaStub(tls=ctx).start()
    yield s
    s.stop()


def test_mutual_tls_round_trip(mtls_stub, pki, hospital: Contract, monkeypatch) -> None:
    # regression: REQUESTS_CA_BUNDLE used to override OpaTls.ca_file
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    tls = OpaTls(ca_file=pki["ca"], client_cert=pki["cli_cert"], client_key=pki["cli_key"])
    e = OpaRestEngine(mtls_stub.url, tls=tls, timeout_seconds=3)
    e.load([hospital])
    d = e.decide(make_input())
    assert d.allow and d.engine == "opa-rest"
    e.close()


def test_without_client_certificate_the_engine_fails_closed(mtls_stub, pki, hospital) -> None:
    e = OpaRestEngine(mtls_stub.url, tls=OpaTls(ca_file=pki["ca"]), timeout_seconds=3)
    with pytest.raises(EngineError):
        e.load([hospital])
    assert e.decide(make_input()).reasons == ("ENGINE_ERROR",)


def test_untrusted_server_certificate_fails_closed(mtls_stub, pki, hospital, tmp_path) -> None:
    other_key = _key()
    other_ca = _write(tmp_path / "other.pem", _cert("other", other_key, other_key, None, ca=True))
    tls = OpaTls(ca_file=other_ca, client_cert=pki["cli_cert"], client_key=pki["cli_key"])
    e = OpaRestEngine(mtls_stub.url, tls=tls, timeout_seconds=3)
    with pytest.raises(EngineError):
        e.load([hospital])
