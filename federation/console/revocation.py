"""Revoked console operator certificates: an X.509 CRL (RFC 5280 §5) signed by the node's CA.

``accord console revoke-operator`` adds a certificate's serial number to
``tls/console-crl.pem``, a certificate revocation list signed with the node's CA
key (ECDSA P-256, SHA-256), so any X.509 tool can read it
(``openssl crl -in tls/console-crl.pem -text``). The console checks every client
certificate against it (:class:`RevocationList`) and answers a revoked one with
``403 OPERATOR_REVOKED``. The list is re-read when the file changes, so a
revocation takes effect on the next request without restarting a console or
the node.

A list that does not parse or whose signature does not verify against the CA
fails closed: every certificate-authenticated request is refused
(``403 REVOCATION_LIST_INVALID``) until the file is fixed or removed.

The check is the console's: the node's ``AdminService`` (``tls/operator.pem``)
and the peers' mTLS do not read this list.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

__all__ = ["CRL_FILE", "RevocationList", "RevocationError", "revoke_certificate", "revoked_serials"]

CRL_FILE = "console-crl.pem"
"""File name of the console's CRL in the node's ``tls/`` directory."""
MAX_CRL_BYTES = 4 * 1024 * 1024
"""Largest CRL file read, bytes (about 100,000 revoked certificates)."""
_NEXT_UPDATE = dt.timedelta(days=3650)


class RevocationError(ValueError):
    """A certificate that cannot be revoked here, or a CRL that does not verify.

    Attributes:
        reason: ``NOT_ISSUED_HERE`` (not signed by this node's CA),
            ``REVOCATION_LIST_INVALID`` (the stored list does not parse or verify).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _load(path: Path, ca: x509.Certificate) -> x509.CertificateRevocationList | None:
    """The CRL at ``path``, its signature checked against ``ca``; ``None`` when there is no file.

    Raises:
        RevocationError: (``REVOCATION_LIST_INVALID``) oversized, not a PEM CRL, another
            issuer, or a signature that does not verify.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_CRL_BYTES:
        raise RevocationError(f"{path.name} is over {MAX_CRL_BYTES} bytes", reason="REVOCATION_LIST_INVALID")
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except ValueError as exc:
        raise RevocationError(f"{path.name} is not a PEM CRL", reason="REVOCATION_LIST_INVALID") from exc
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise RevocationError(
            f"{path.name} is not signed by this node's CA", reason="REVOCATION_LIST_INVALID"
        )
    return crl


def revoke_certificate(
    tls_dir: Path, cert: x509.Certificate, *, now: dt.datetime | None = None
) -> tuple[int, bool]:
    """Add ``cert`` to the console CRL in ``tls_dir`` (signed anew by the CA; written atomically).

    Args:
        tls_dir: the node's ``tls/`` directory (``ca.pem``, ``ca.key``).
        cert: the operator certificate to revoke.
        now: the revocation time (default: now, UTC).

    Returns:
        ``(serial number, newly revoked)``; ``False`` when it was already on the list.

    Raises:
        RevocationError: the certificate was not issued by this node's CA
            (``NOT_ISSUED_HERE``), or the stored list does not verify.
    """
    from federation.paths import write_private

    now = now or dt.datetime.now(dt.UTC)
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise RevocationError(
            "this certificate was not issued by this node's CA", reason="NOT_ISSUED_HERE"
        ) from exc
    path = tls_dir / CRL_FILE
    old = _load(path, ca)
    if old is not None and old.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        return cert.serial_number, False
    ca_key = serialization.load_pem_private_key((tls_dir / "ca.key").read_bytes(), password=None)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + _NEXT_UPDATE)
    )
    for r in old or ():
        builder = builder.add_revoked_certificate(r)
    builder = builder.add_revoked_certificate(
        x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build()
    )
    crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    tmp = path.with_suffix(".tmp")
    write_private(tmp, crl.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)
    return cert.serial_number, True


def revoked_serials(tls_dir: Path) -> list[tuple[int, dt.datetime]]:
    """``(serial number, revocation time)`` of every certificate on the console CRL, oldest first.

    Raises:
        RevocationError: the stored list does not verify.
    """
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
    crl = _load(tls_dir / CRL_FILE, ca)
    rows = [(r.serial_number, r.revocation_date_utc) for r in crl or ()]
    return sorted(rows, key=lambda r: r[1])


class RevocationList:
    """The console CRL of one node, re-read when its file changes (thread-safe).

    Args:
        tls_dir: the node's ``tls/`` directory.
    """

    def __init__(self, tls_dir: Path) -> None:
        self._path = tls_dir / CRL_FILE
        self._ca = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._crl: x509.CertificateRevocationList | None = None
        self._error: RevocationError | None = None

    def is_revoked(self, cert: x509.Certificate) -> bool:
        """True iff ``cert``'s serial number is on the list.

        Raises:
            RevocationError: (``REVOCATION_LIST_INVALID``) the file does not verify: fail closed.
        """
        try:
            st = self._path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp or (stamp is None and self._crl is not None):
                self._stamp = stamp
                try:
                    self._crl, self._error = _load(self._path, self._ca), None
                except RevocationError as exc:
                    self._crl, self._error = None, exc
            if self._error is not None:
                raise self._error
            crl = self._crl
        return (
            crl is not None and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        )
