"""Who is asking: the console's roles, operator client certificates, sessions and CSRF.

Two ways in (``docs/console.md``):

* **Loopback** (the default bind, ``127.0.0.1``): plain HTTP, reachable only
  from this machine. The role is ``read``, or ``write`` when the console was
  started with ``--write`` (the person who started it granted it).
* **Off loopback**: TLS only, with a client certificate **required** in the
  handshake and chained to the node's own CA (the CA that already issues the
  node's mTLS certificate and the AdminService operator certificate). The role
  comes from the certificate's single SAN URI:

  ============================================  ======
  SAN URI                                       role
  ============================================  ======
  ``<org DID>#operator`` (``tls/operator.pem``)  write
  ``<org DID>#console-write:<name>``            write
  ``<org DID>#console-read:<name>``             read
  anything else (e.g. the node's own cert)      refused (403)
  ============================================  ======

  A certificate on the console's CRL (``tls/console-crl.pem``,
  ``accord console revoke-operator``; :mod:`federation.console.revocation`)
  is refused (403 ``OPERATOR_REVOKED``).

  ``accord console issue-cert`` mints the ``console-*`` certificates (and a
  PKCS#12 file for a browser's certificate store).

Sessions are a cookie signed with :mod:`itsdangerous` (HMAC-SHA1 keyed by a
per-process secret, timestamped, HttpOnly, SameSite=Strict, Secure over
TLS); they carry only the CSRF token. A cookie whose signature does not
verify is refused (403), never silently replaced. The role is re-derived
from the connection on every request, never read from the cookie.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from federation.tls import OPERATOR_FRAGMENT

__all__ = [
    "Role",
    "Principal",
    "ConsoleAuthError",
    "role_for_san",
    "is_loopback_host",
    "SessionCodec",
    "CONSOLE_READ",
    "CONSOLE_WRITE",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE",
    "check_csrf",
]

Role = Literal["read", "write"]
CONSOLE_READ = "#console-read:"
"""SAN URI fragment prefix of a read-only console certificate (``<org DID>#console-read:<name>``)."""
CONSOLE_WRITE = "#console-write:"
"""SAN URI fragment prefix of a console certificate with the write role."""
SESSION_COOKIE = "accord_console"
"""Name of the signed session cookie."""
SESSION_MAX_AGE = 8 * 3600
"""Session lifetime, seconds (an older cookie starts a fresh session)."""
_MAX_COOKIE = 4096


class ConsoleAuthError(Exception):
    """A request the console refuses for who sent it.

    Attributes:
        status: HTTP status (401, 403).
        reason: stable reason code (``NOT_OPERATOR``, ``OPERATOR_REVOKED``,
            ``REVOCATION_LIST_INVALID``, ``TLS_REQUIRED``, ``FORGED_SESSION``,
            ``WRITE_ROLE_REQUIRED``, ``CSRF``).
    """

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """The authenticated operator of one request.

    Attributes:
        role: ``read`` or ``write``.
        actor: who, for the ledger: the certificate's SAN URI, or ``loopback``.
        via: ``loopback`` or ``mtls``.
    """

    role: Role
    actor: str
    via: Literal["loopback", "mtls"]

    @property
    def can_write(self) -> bool:
        """True iff the role is ``write``."""
        return self.role == "write"


def is_loopback_host(host: str) -> bool:
    """True iff ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def role_for_san(san: str, org_did: str) -> Role:
    """The console role a client certificate's SAN URI grants (table in the module docstring).

    Raises:
        ConsoleAuthError: (403, ``NOT_OPERATOR``) the SAN grants no console role.
    """
    if san == org_did + OPERATOR_FRAGMENT:
        return "write"
    for prefix, role in ((org_did + CONSOLE_WRITE, "write"), (org_did + CONSOLE_READ, "read")):
        if san.startswith(prefix) and 1 <= len(san) - len(prefix) <= 64:
            return role  # type: ignore[return-value]
    raise ConsoleAuthError(
        "this certificate is not one of this node's operators", status=403, reason="NOT_OPERATOR"
    )


def principal_from_cert(pem: str, *, org_did: str, revocations: Any = None) -> Principal:
    """The principal of a TLS client certificate already chained to the node CA by the handshake.

    Args:
        pem: the client certificate (PEM).
        org_did: this node's organization DID.
        revocations: the console CRL (:class:`federation.console.revocation.RevocationList`),
            or ``None`` to check none.

    Raises:
        ConsoleAuthError: (403) no single SAN URI, or one granting no role
            (``NOT_OPERATOR``); a certificate on the console CRL (``OPERATOR_REVOKED``);
            a CRL that does not verify (``REVOCATION_LIST_INVALID``: fail closed).
    """
    from federation.console.revocation import RevocationError
    from federation.errors import PeerError
    from federation.tls import san_uri

    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        san = san_uri(cert)
    except (PeerError, ValueError) as exc:
        raise ConsoleAuthError(
            "the client certificate names no single SAN URI", status=403, reason="NOT_OPERATOR"
        ) from exc
    role = role_for_san(san, org_did)
    if revocations is not None:
        try:
            revoked = revocations.is_revoked(cert)
        except RevocationError as exc:
            raise ConsoleAuthError(
                f"the console's certificate revocation list does not verify ({exc}): "
                "certificate logins are refused until it is fixed",
                status=403,
                reason="REVOCATION_LIST_INVALID",
            ) from exc
        if revoked:
            raise ConsoleAuthError(
                f"this operator certificate ({san}, serial {cert.serial_number:x}) has been revoked "
                "(accord console revoke-operator)",
                status=403,
                reason="OPERATOR_REVOKED",
            )
    return Principal(role=role, actor=san, via="mtls")


def principal_for(
    scope: dict[str, Any], *, org_did: str, loopback_role: Role, revocations: Any = None
) -> Principal:
    """Authenticate one ASGI request from its connection (never from a header or cookie).

    Over TLS the handshake already required a client certificate chained to the
    node CA; its PEM arrives in the ASGI TLS extension
    (``scope["extensions"]["tls"]["client_cert_chain"]``, put there by
    :mod:`federation.console.server`). Without TLS only a loopback peer is served.

    Raises:
        ConsoleAuthError: (401 ``TLS_REQUIRED``) plain HTTP from off loopback, or TLS
            without a client certificate; (403) a certificate granting no role or
            revoked (:func:`principal_from_cert`; ``revocations`` is the console CRL).
    """
    tls = (scope.get("extensions") or {}).get("tls")
    if tls is not None:
        chain = tls.get("client_cert_chain") or []
        if not chain:
            raise ConsoleAuthError("a client certificate is required", status=401, reason="TLS_REQUIRED")
        return principal_from_cert(chain[0], org_did=org_did, revocations=revocations)
    client = scope.get("client") or ("", 0)
    if not is_loopback_host(str(client[0])):
        raise ConsoleAuthError(
            "off loopback the console is served only over TLS with an operator certificate",
            status=401,
            reason="TLS_REQUIRED",
        )
    return Principal(role=loopback_role, actor="loopback", via="loopback")


class SessionCodec:
    """Sign and open the session cookie (itsdangerous, timestamped).

    Args:
        secret: HMAC key (at least 32 bytes); a fresh random one per console process
            by default, so a restart ends every session.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._s = URLSafeTimedSerializer(secret or secrets.token_bytes(32), salt="accord-console-session")

    def dumps(self, data: dict[str, str]) -> str:
        """The cookie value for ``data``."""
        return self._s.dumps(data)

    def loads(self, cookie: str | None) -> dict[str, str] | None:
        """The session in ``cookie``; ``None`` when absent or expired (a fresh session starts).

        Raises:
            ConsoleAuthError: (403 ``FORGED_SESSION``) the signature does not verify
                or the cookie is oversized or malformed.
        """
        if not cookie:
            return None
        if len(cookie) > _MAX_COOKIE:
            raise ConsoleAuthError("session cookie is oversized", status=403, reason="FORGED_SESSION")
        try:
            data = self._s.loads(cookie, max_age=SESSION_MAX_AGE)
        except SignatureExpired:
            return None
        except BadSignature as exc:
            raise ConsoleAuthError(
                "the session cookie's signature does not verify (forged, or from another console); "
                "it has been cleared: reload the page",
                status=403,
                reason="FORGED_SESSION",
            ) from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConsoleAuthError("session cookie is malformed", status=403, reason="FORGED_SESSION")
        return data


def check_csrf(session: dict[str, str], submitted: str | None) -> None:
    """Check a write form's CSRF token against the session's (synchronizer token pattern).

    Raises:
        ConsoleAuthError: (403 ``CSRF``) missing or different token.
    """
    expected = session.get("csrf", "")
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise ConsoleAuthError(
            "the form's CSRF token is missing or does not match this session", status=403, reason="CSRF"
        )
