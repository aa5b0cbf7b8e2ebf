"""Signed peer bundles and the peer registry.

A peer bundle is what one organization hands another out of band (like a
SPIFFE federation bundle): its DID document, its CA certificate, its ledger
and witness verifier keys and its endpoint, signed with its organization
Ed25519 key over the RFC 8785 (JCS) canonical form of everything but the
``signature`` member. The registry pins bundles in ``peers/<name>.json``;
an organization not in it is refused with UNAUTHENTICATED.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from pydantic import BaseModel, ConfigDict, ValidationError

from credentials import Ed25519KeyPair, verify_ed25519
from federation.errors import PeerError
from federation.tls import check_chain, san_uri_of_pem

BUNDLE_VERSION = 1


class PeerBundle(BaseModel):
    """A signed peer bundle (see the module docstring).

    Attributes:
        version: bundle format version (1).
        org_name: short organization name.
        org_did: organization DID (``did:web:…``).
        verification_method: DID URL of the organization key (``<did>#key-1``).
        public_key_multibase: the organization Ed25519 key, Multikey form.
        did_document: the organization's DID document.
        ca_certificate_pem: PEM of the organization CA.
        endpoint: gRPC ``HOST:PORT``.
        ledger_origin: checkpoint origin of the organization's log.
        ledger_vkey: C2SP signed-note verifier key of the log.
        witness_vkey: verifier key of the organization's witness (cosignature/v1).
        issued_at: RFC 3339 time the bundle was made.
        signature: base64url Ed25519 signature (64 bytes) over the JCS of the rest.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = BUNDLE_VERSION
    org_name: str
    org_did: str
    verification_method: str
    public_key_multibase: str
    did_document: dict[str, Any]
    ca_certificate_pem: str
    endpoint: str
    ledger_origin: str
    ledger_vkey: str
    witness_vkey: str = ""
    issued_at: str
    signature: str = ""

    def signing_bytes(self) -> bytes:
        """RFC 8785 canonical bytes of the bundle without ``signature``."""
        data = self.model_dump(mode="json")
        data.pop("signature", None)
        return rfc8785.dumps(data)

    @property
    def public_key(self) -> bytes:
        """The 32-byte organization Ed25519 public key."""
        from credentials import public_key_from_multibase

        return public_key_from_multibase(self.public_key_multibase)

    def signed(self, key: Ed25519KeyPair) -> PeerBundle:
        """Return a copy signed with the organization key."""
        sig = key.sign(self.signing_bytes())
        return self.model_copy(update={"signature": base64.urlsafe_b64encode(sig).rstrip(b"=").decode()})

    def verify(self) -> None:
        """Check the self-signature and internal consistency.

        Raises:
            PeerError: reason ``BAD_BUNDLE`` if the signature does not verify
                or the DID document does not carry the bundle's key.

        """
        try:
            sig = base64.urlsafe_b64decode(self.signature + "=" * (-len(self.signature) % 4))
            verify_ed25519(self.public_key, sig, self.signing_bytes())
        except Exception as exc:  # any decoding or signature failure
            raise PeerError(
                f"peer bundle of {self.org_did} does not verify: {exc}", reason="BAD_BUNDLE"
            ) from exc
        if self.did_document.get("id") != self.org_did:
            raise PeerError("bundle DID document id differs from org_did", reason="BAD_BUNDLE")
        if not self.verification_method.startswith(self.org_did + "#"):
            raise PeerError("verification method is not controlled by org_did", reason="BAD_BUNDLE")

    def fingerprint(self) -> str:
        """Short SHA-256 fingerprint of the signed bundle, to compare out of band."""
        return hashlib.sha256(self.signing_bytes()).hexdigest()[:16]

    @classmethod
    def parse(cls, raw: bytes | str) -> PeerBundle:
        """Parse and verify a bundle from JSON.

        Raises:
            PeerError: reason ``BAD_BUNDLE`` for malformed JSON, a schema
                violation or a bad signature.

        """
        try:
            bundle = cls.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
            raise PeerError(f"malformed peer bundle: {exc}".splitlines()[0], reason="BAD_BUNDLE") from exc
        bundle.verify()
        return bundle


@dataclass(frozen=True)
class AuthenticatedPeer:
    """A caller authenticated by its client certificate.

    Attributes:
        org_did: the peer organization DID.
        bundle: its pinned bundle.

    """

    org_did: str
    bundle: PeerBundle


class PeerRegistry:
    """Pinned peer bundles of one node, keyed by organization DID."""

    def __init__(self, bundles: Iterable[PeerBundle] = ()) -> None:
        self._by_did: dict[str, PeerBundle] = {}
        self._by_name: dict[str, str] = {}
        for bundle in bundles:
            self.add(bundle)

    @classmethod
    def load(cls, directory: Path) -> PeerRegistry:
        """Load and verify every ``*.json`` bundle in ``directory``."""
        bundles = []
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                bundles.append(PeerBundle.parse(path.read_bytes()))
        return cls(bundles)

    def add(self, bundle: PeerBundle) -> None:
        """Pin a (verified) bundle, replacing an older one of the same DID."""
        self._by_did[bundle.org_did] = bundle
        self._by_name[bundle.org_name] = bundle.org_did

    def __len__(self) -> int:
        return len(self._by_did)

    def __iter__(self):
        return iter(self._by_did.values())

    def get(self, org: str) -> PeerBundle:
        """Return the bundle of an organization by DID or name.

        Raises:
            PeerError: reason ``UNKNOWN_PEER``.

        """
        did = self._by_name.get(org, org)
        bundle = self._by_did.get(did)
        if bundle is None:
            raise PeerError(f"unknown peer {org!r}: not in the peer registry", metadata={"peer": org})
        return bundle

    def ca_bundle_pem(self) -> bytes:
        """Concatenated CA certificates of all peers (PEM), for TLS trust roots."""
        return b"".join(b.ca_certificate_pem.encode() for b in self._by_did.values())

    def authenticate(self, cert_pem: bytes) -> AuthenticatedPeer:
        """Map a TLS client certificate to a pinned peer.

        The certificate's SAN URI must name a registered organization and the
        certificate must be issued by that organization's pinned CA.

        Raises:
            PeerError: ``UNKNOWN_PEER``, ``BAD_CERTIFICATE``,
                ``CERTIFICATE_NOT_CHAINED`` or ``CERTIFICATE_EXPIRED``.

        """
        try:
            did = san_uri_of_pem(cert_pem)
        except ValueError as exc:
            raise PeerError("unparseable peer certificate", reason="BAD_CERTIFICATE") from exc
        bundle = self._by_did.get(did)
        if bundle is None:
            raise PeerError(f"unknown peer {did!r}: not in the peer registry", metadata={"peer": did})
        check_chain(cert_pem, bundle.ca_certificate_pem.encode())
        return AuthenticatedPeer(org_did=did, bundle=bundle)
