"""X.509 material for mutual TLS between nodes, and the peer-certificate check.

Each organization has its own CA (ECDSA P-256, self-signed) that issues the
node's TLS certificate (serverAuth + clientAuth) whose SAN URI is the
organization DID (as SPIFFE puts the workload ID in the SAN URI), plus an
operator certificate (SAN URI ``<org DID>#operator``) for the AdminService.
The CA certificate travels in the signed peer bundle; a peer's certificate
must chain to the CA pinned for the DID it claims.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.errors import PeerError

OPERATOR_FRAGMENT = "#operator"


@dataclass(frozen=True)
class TlsMaterial:
    """PEM-encoded TLS material of one node.

    Attributes:
        ca_pem: the organization CA certificate.
        ca_key_pem: the CA private key (PKCS#8, unencrypted; file mode 0600).
        cert_pem: node certificate (SAN URI = org DID, DNS localhost, IP 127.0.0.1).
        key_pem: node private key.
        operator_cert_pem: operator client certificate (SAN URI = DID#operator).
        operator_key_pem: operator private key.

    """

    ca_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    operator_cert_pem: bytes
    operator_key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _leaf(
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    common_name: str,
    san_uri: str,
    hosts: tuple[str, ...],
    now: dt.datetime,
    days: int,
) -> tuple[bytes, bytes]:
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(san_uri)]
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def mint_tls_material(
    *,
    org_name: str,
    org_did: str,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    now: dt.datetime | None = None,
    days: int = 365,
) -> TlsMaterial:
    """Create an organization CA, its node certificate and operator certificate.

    Args:
        org_name: organization name (CA and certificate common names).
        org_did: organization DID, put in the SAN URI of the node certificate.
        hosts: DNS names / IP addresses for the node certificate's SAN.
        now: issuance time (UTC); defaults to the current time.
        days: validity of the certificates, days.

    """
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org_name} Accord CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days * 5))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_pem, key_pem = _leaf(
        ca_key=ca_key,
        ca_name=ca_name,
        common_name=f"{org_name} node",
        san_uri=org_did,
        hosts=hosts,
        now=now,
        days=days,
    )
    op_pem, op_key = _leaf(
        ca_key=ca_key,
        ca_name=ca_name,
        common_name=f"{org_name} operator",
        san_uri=org_did + OPERATOR_FRAGMENT,
        hosts=(),
        now=now,
        days=days,
    )
    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key_pem=_key_pem(ca_key),
        cert_pem=cert_pem,
        key_pem=key_pem,
        operator_cert_pem=op_pem,
        operator_key_pem=op_key,
    )


@functools.lru_cache(maxsize=4096)
def san_uri_of_pem(cert_pem: bytes) -> str:
    """:func:`san_uri` of a PEM certificate (memoized per certificate)."""
    return san_uri(x509.load_pem_x509_certificate(cert_pem))


def san_uri(cert: x509.Certificate) -> str:
    """Return the single SAN URI of a certificate.

    Raises:
        PeerError: (reason ``BAD_CERTIFICATE``) none or several SAN URIs.

    """
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound as exc:
        raise PeerError("peer certificate has no SAN", reason="BAD_CERTIFICATE") from exc
    uris = ext.value.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise PeerError(
            f"expected exactly one SAN URI in the peer certificate, got {len(uris)}",
            reason="BAD_CERTIFICATE",
        )
    return uris[0]


_CHAIN_OK: dict[tuple[bytes, bytes], tuple[dt.datetime, dt.datetime]] = {}


def check_chain(cert_pem: bytes, ca_pem: bytes, *, now: dt.datetime | None = None) -> None:
    """Check that ``cert_pem`` was issued by ``ca_pem`` and is valid at ``now``.

    A verified (certificate, CA) pair is remembered (the signature check is
    the expensive part; the validity window is checked every time).

    Raises:
        PeerError: (reason ``CERTIFICATE_NOT_CHAINED``) the signature or issuer
            does not match the pinned CA, or the certificate is outside its
            validity period (reason ``CERTIFICATE_EXPIRED``).

    """
    now = now or dt.datetime.now(dt.UTC)
    hit = _CHAIN_OK.get((cert_pem, ca_pem))
    if hit is not None:  # signature already verified for this exact pair: only the validity window
        if not hit[0] <= now <= hit[1]:
            raise PeerError("peer certificate is outside its validity period", reason="CERTIFICATE_EXPIRED")
        return
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PeerError(
            "peer certificate does not chain to the CA pinned in its bundle",
            reason="CERTIFICATE_NOT_CHAINED",
        ) from exc
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise PeerError("peer certificate is outside its validity period", reason="CERTIFICATE_EXPIRED")
    if len(_CHAIN_OK) > 4096:
        _CHAIN_OK.clear()
    _CHAIN_OK[(cert_pem, ca_pem)] = (cert.not_valid_before_utc, cert.not_valid_after_utc)


def fingerprint(pem: bytes) -> str:
    """SHA-256 fingerprint of a PEM certificate, hex with colons."""
    cert = x509.load_pem_x509_certificate(pem)
    return cert.fingerprint(hashes.SHA256()).hex(":")


def issue_client_certificate(
    *,
    ca_pem: bytes,
    ca_key_pem: bytes,
    san: str,
    common_name: str,
    days: int = 365,
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """Issue a client certificate (SAN URI = ``san``) from an organization CA.

    Returns:
        (certificate PEM, private key PEM).

    """
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _leaf(
        ca_key=ca_key,
        ca_name=ca.subject,
        common_name=common_name,
        san_uri=san,
        hosts=(),
        now=now or dt.datetime.now(dt.UTC),
        days=days,
    )


def renew_node_certificate(
    *,
    ca_pem: bytes,
    ca_key_pem: bytes,
    current_cert_pem: bytes,
    days: int = 365,
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A fresh node certificate (new key pair) from the organization CA, same SAN URI, names and usages.

    The subject common name, SAN URI (the organization DID) and SAN DNS
    names / IP addresses are copied from ``current_cert_pem``; the CA stays
    the one pinned in peers' bundles, so no peer re-pins.

    Args:
        ca_pem: the organization CA certificate.
        ca_key_pem: its private key (PKCS#8 PEM, unencrypted).
        current_cert_pem: the node certificate being replaced.
        days: validity of the new certificate, days (1..3650).
        now: issuance time (UTC).

    Returns:
        (certificate PEM, private key PEM).

    Raises:
        ValueError: ``days`` out of range, or the current certificate has no single SAN URI.

    """
    if not 1 <= days <= 3650:
        raise ValueError(f"certificate validity must be 1..3650 days, got {days}")
    current = x509.load_pem_x509_certificate(current_cert_pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise ValueError("the current node certificate has no single SAN URI")
    hosts = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    )
    cn = current.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return _leaf(
        ca_key=ca_key,
        ca_name=ca.subject,
        common_name=str(cn[0].value) if cn else "node",
        san_uri=uris[0],
        hosts=hosts,
        now=now or dt.datetime.now(dt.UTC),
        days=days,
    )
