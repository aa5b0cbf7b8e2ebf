"""Checking a partner's bundle against its did:web DID document, resolved over HTTPS (W3C did:web §3.2).

``accord peer add BUNDLE --check-did`` resolves the bundle's ``org_did``
(``did:web:DOMAIN[:PATH…]``) at ``https://DOMAIN/.well-known/did.json`` (or
``https://DOMAIN/PATH…/did.json``) and pins the bundle only when the document
the organization publishes names the bundle's key: its ``id`` is the DID, the
bundle's verification method is listed with the bundle's
``publicKeyMultibase`` and is an ``assertionMethod`` (the key signs the
organization's credentials, contracts and envelopes).

Trust in the HTTPS answer comes from the server certificate: verified against
a CA the operator pins (``--did-ca FILE``), the CA in the partner's bundle
(``--did-ca bundle``, when the organization serves its document with a
certificate from its Accord CA), or the system's trust store (default, for a
document hosted under a public web PKI certificate). The bundle's fingerprint
is still what partners compare out of band; the DID document is a second,
independent channel binding the organization's domain to the same key.

Every input is hostile: redirects are refused (did:web §3.2 does not follow
them to another origin), the answer is read up to
:data:`federation.identity.MAX_DID_DOCUMENT_BYTES` and refused beyond, within
a timeout; failures are :class:`~federation.errors.PeerError` with reason
``DID_UNRESOLVABLE`` (nothing verifiable came back) or ``DID_MISMATCH`` (the
document does not carry the bundle's key).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from federation.config import check_did_web, did_web_document_path
from federation.errors import PeerError
from federation.identity import MAX_DID_DOCUMENT_BYTES
from federation.peers import PeerBundle

__all__ = ["check_bundle_against_did", "did_web_url", "resolve_did_web"]

#: Seconds allowed for connecting and for each read of the DID document.
RESOLVE_TIMEOUT_SECONDS = 10.0


def did_web_url(did: str) -> str:
    """The HTTPS URL of a did:web DID's document (did:web §3.2: ``:`` path separators, no port).

    Raises:
        PeerError: ``DID_UNRESOLVABLE`` when ``did`` is not a did:web DID of a domain.

    """
    try:
        check_did_web(did)
    except ValueError as exc:
        raise PeerError(str(exc), reason="DID_UNRESOLVABLE") from exc
    return f"https://{did.split(':')[2]}{did_web_document_path(did)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, D102, PLR0913
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl[:200]} refused", headers, fp)


def resolve_did_web(
    did: str, *, ca_pem: bytes | None = None, timeout: float = RESOLVE_TIMEOUT_SECONDS
) -> dict:
    """Fetch and parse a did:web DID document over HTTPS.

    Args:
        did: ``did:web:DOMAIN[:PATH…]``.
        ca_pem: PEM CA certificate(s) the server certificate must chain to
            (None: the system trust store). The host name is always checked.
        timeout: seconds for the connection and each read.

    Returns:
        The DID document (a JSON object whose ``id`` is ``did``).

    Raises:
        PeerError: ``DID_UNRESOLVABLE`` — TLS, HTTP, size, JSON or ``id`` failure.

    """
    url = did_web_url(did)
    try:
        ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii") if ca_pem else None)
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
        raise PeerError(f"--did-ca: not a PEM CA certificate ({exc})", reason="DID_UNRESOLVABLE") from exc
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _NoRedirect())
    request = urllib.request.Request(url, headers={"Accept": "application/did+json, application/json"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            if resp.status != 200:
                raise PeerError(f"{url}: HTTP {resp.status}", reason="DID_UNRESOLVABLE")
            body = resp.read(MAX_DID_DOCUMENT_BYTES + 1)
    except PeerError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        detail = getattr(exc, "reason", None) or exc
        raise PeerError(
            f"{url}: cannot resolve {did}: {str(detail)[:300]}", reason="DID_UNRESOLVABLE"
        ) from exc
    if len(body) > MAX_DID_DOCUMENT_BYTES:
        raise PeerError(
            f"{url}: the DID document is larger than {MAX_DID_DOCUMENT_BYTES} bytes",
            reason="DID_UNRESOLVABLE",
        )
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise PeerError(f"{url}: the DID document is not JSON ({exc})", reason="DID_UNRESOLVABLE") from exc
    if not isinstance(doc, dict) or doc.get("id") != did:
        raise PeerError(f"{url}: the document's id is not {did}", reason="DID_UNRESOLVABLE")
    return doc


def _absolute(did: str, ref: Any) -> str | None:
    """A verification method reference as an absolute DID URL (``#key-1`` → ``<did>#key-1``)."""
    if isinstance(ref, dict):
        ref = ref.get("id")
    if not isinstance(ref, str):
        return None
    return did + ref if ref.startswith("#") else ref


def check_bundle_against_did(bundle: PeerBundle, doc: dict) -> str:
    """Check that the DID document ``doc`` carries the bundle's organization key as an assertion key.

    Returns:
        The verification method that matched (``<did>#key-N``).

    Raises:
        PeerError: ``DID_MISMATCH`` — the document lists no such method, with
            another key, or not as an ``assertionMethod``.

    """
    did, vm = bundle.org_did, bundle.verification_method
    methods = doc.get("verificationMethod")
    methods = methods if isinstance(methods, list) else []
    listed = [
        m
        for m in methods[:100]
        if isinstance(m, dict) and _absolute(did, m) == vm and m.get("controller") == did
    ]
    if not listed:
        raise PeerError(f"the DID document of {did} does not list {vm}", reason="DID_MISMATCH")
    if listed[0].get("publicKeyMultibase") != bundle.public_key_multibase:
        raise PeerError(
            f"the DID document of {did} gives {vm} another key than the bundle "
            f"({str(listed[0].get('publicKeyMultibase'))[:60]} != {bundle.public_key_multibase})",
            reason="DID_MISMATCH",
        )
    assertion = doc.get("assertionMethod")
    if not isinstance(assertion, list) or vm not in {_absolute(did, r) for r in assertion[:100]}:
        raise PeerError(
            f"the DID document of {did} does not name {vm} an assertionMethod", reason="DID_MISMATCH"
        )
    return vm
