"""Signed peer bundles and the peer registry.

A peer bundle is what one organization hands another out of band (like a
SPIFFE federation bundle): its DID document, its CA certificate, its ledger
and witness verifier keys and its endpoint, signed with its organization
Ed25519 key over the RFC 8785 (JCS) canonical form of everything but the
``signature`` member. The registry pins bundles in ``peers/<name>.json``;
an organization not in it is refused with UNAUTHENTICATED.

Every field of a bundle is bounded and checked (:meth:`PeerBundle.verify`):
the organization name is a DNS label, and every name derived from it is
bound to it: the DID is ``did:web:<name>.accord.test`` (or the
organization's own ``did:web:DOMAIN``, whose binding to the organization is
the pin itself: the operator checks the fingerprint out of band, and no two
pinned organizations may claim one DID), the ledger origin
``<name>.accord.test/ledger`` (also the ledger vkey's key name), the witness
key name ``<name>.accord.test/witness``, the status lists
``https://<name>.accord.test/status/…``; the DID document carries exactly the
bundle's key; the CA is a self-issued CA certificate of that organization.
So a bundle cannot claim another organization's name, DID, ledger origin or
status lists under its own key.

The registry refuses two pinned organizations that share any of name, DID,
ledger origin, organization key, CA or log/witness key
(``PEER_COLLISION``). A pinned organization's keys, CA and endpoint are never
replaced silently (:func:`pin_bundle`): a re-pin needs a
:class:`RotationStatement` signed by the pinned (old) organization key, or an
operator override naming both fingerprints (``PIN_CHANGE_REFUSED``
otherwise). :meth:`PeerBundle.fingerprint` is computed over key material
only (DID, organization key, CA, log and witness keys), so two exports of
one identity have the same fingerprint and operators can compare it out of
band.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from credentials import Ed25519KeyPair, verify_ed25519
from federation.errors import PeerError
from federation.tls import check_chain, san_uri_of_pem

BUNDLE_VERSION = 1
DOMAIN_SUFFIX = "accord.test"
#: largest bundle file accepted, bytes (a real bundle is ~3 KiB)
MAX_BUNDLE_BYTES = 64 * 1024
ORG_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_MULTIBASE_ED25519 = r"^z[1-9A-HJ-NP-Za-km-z]{40,60}$"
_RFC3339_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_HOST_PORT = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}$"
)


def ledger_origin(org_name: str) -> str:
    """Checkpoint origin (and log key name) of an organization's ledger."""
    return f"{org_name}.{DOMAIN_SUFFIX}/ledger"


def witness_name(org_name: str) -> str:
    """Key name of an organization's witness (cosignature/v1)."""
    return f"{org_name}.{DOMAIN_SUFFIX}/witness"


def _bad(message: str, field: str) -> PeerError:
    return PeerError(message, reason="BAD_BUNDLE", metadata={"field": field})


class PeerBundle(BaseModel):
    """A signed peer bundle (see the module docstring).

    Attributes:
        version: bundle format version (1).
        org_name: short organization name, a DNS label ``[a-z0-9][a-z0-9-]{0,62}``.
        org_did: organization DID, ``did:web:<org_name>.accord.test`` or the organization's own did:web.
        verification_method: DID URL of the organization key (``<did>#key-1``).
        public_key_multibase: the organization Ed25519 key, Multikey form.
        did_document: the organization's DID document (at most 8 KiB as JSON).
        ca_certificate_pem: PEM of the organization CA (at most 8 KiB).
        endpoint: gRPC ``HOST:PORT``.
        ledger_origin: checkpoint origin of the organization's log, ``<org_name>.accord.test/ledger``.
        ledger_vkey: C2SP signed-note verifier key of the log (key name = ``ledger_origin``).
        witness_vkey: verifier key of the organization's witness (cosignature/v1,
            key name ``<org_name>.accord.test/witness``), or "".
        issued_at: RFC 3339 UTC time the bundle was made (``…Z``).
        signature: base64url Ed25519 signature (64 bytes) over the JCS of the rest.

    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    version: Literal[1] = BUNDLE_VERSION
    org_name: str = Field(pattern=ORG_NAME_PATTERN)
    org_did: str = Field(max_length=256)
    verification_method: str = Field(max_length=300)
    public_key_multibase: str = Field(pattern=_MULTIBASE_ED25519)
    did_document: dict[str, Any]
    ca_certificate_pem: str = Field(max_length=8192)
    endpoint: str = Field(max_length=262)
    ledger_origin: str = Field(max_length=256)
    ledger_vkey: str = Field(max_length=512)
    witness_vkey: str = Field(default="", max_length=512)
    issued_at: str = Field(pattern=_RFC3339_Z)
    signature: str = Field(default="", pattern=r"^(?:[A-Za-z0-9_-]{86})?$")

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not _HOST_PORT.fullmatch(value) or not 0 < int(value.rpartition(":")[2]) <= 65535:
            raise ValueError(f"endpoint must be HOST:PORT, got {value[:80]!r}")
        return value

    @field_validator("did_document")
    @classmethod
    def _bounded_document(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > 8192:
            raise ValueError("did_document is larger than 8 KiB")
        return value

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
        """Check the self-signature and that every field is bound to ``org_name``.

        Checks, in order: the signature; ``org_did`` is
        ``did:web:<org_name>.accord.test``; the verification method is
        ``<org_did>#…`` and the DID document's only verification method is
        exactly it with the bundle's key; the ledger origin and the ledger and
        witness vkeys' key names derive from ``org_name`` and the vkeys parse
        (C2SP signed-note); the CA certificate is one self-issued CA
        certificate whose organization is ``org_name``.

        Raises:
            PeerError: reason ``BAD_BUNDLE`` (``metadata["field"]`` names the
                offending member) when any check fails.

        """
        try:
            sig = base64.urlsafe_b64decode(self.signature + "=" * (-len(self.signature) % 4))
            verify_ed25519(self.public_key, sig, self.signing_bytes())
        except Exception as exc:  # any decoding or signature failure
            raise PeerError(
                f"peer bundle of {self.org_did[:256]} does not verify: {exc}",
                reason="BAD_BUNDLE",
                metadata={"field": "signature"},
            ) from exc
        if self.org_did != f"did:web:{self.org_name}.{DOMAIN_SUFFIX}":
            from federation.config import check_did_web

            try:  # an organization's own did:web (`node init --did`); collisions are checked at pin time
                check_did_web(self.org_did)
                host = self.org_did.split(":")[2]
                if host == DOMAIN_SUFFIX or host.endswith("." + DOMAIN_SUFFIX):
                    raise ValueError(f"names under {DOMAIN_SUFFIX} are bound to org_name")
            except ValueError as exc:
                raise _bad(
                    f"org_did must be did:web:{self.org_name}.{DOMAIN_SUFFIX} or a did:web of the "
                    f"organization's domain: {exc}",
                    "org_did",
                ) from exc
        if not self.verification_method.startswith(self.org_did + "#") or not re.fullmatch(
            r"[A-Za-z0-9._-]{1,64}", self.verification_method[len(self.org_did) + 1 :]
        ):
            raise _bad("verification method is not a key of org_did", "verification_method")
        doc = self.did_document
        if doc.get("id") != self.org_did:
            raise _bad("bundle DID document id differs from org_did", "did_document")
        methods = doc.get("verificationMethod")
        if (
            not isinstance(methods, list)
            or len(methods) != 1
            or not isinstance(methods[0], dict)
            or methods[0].get("id") != self.verification_method
            or methods[0].get("controller") != self.org_did
            or methods[0].get("publicKeyMultibase") != self.public_key_multibase
        ):
            raise _bad("the DID document does not carry exactly the bundle's key", "did_document")
        self._verify_log_keys()
        self._verify_ca()

    def _verify_log_keys(self) -> None:
        from ledger import CosignatureVerifier, LedgerError, NoteVerifier

        if self.ledger_origin != ledger_origin(self.org_name):
            raise _bad(f"ledger_origin must be {ledger_origin(self.org_name)}", "ledger_origin")
        try:
            if NoteVerifier.from_vkey(self.ledger_vkey).name != self.ledger_origin:
                raise _bad("the ledger vkey is not named after ledger_origin", "ledger_vkey")
        except LedgerError as exc:
            raise _bad(f"ledger_vkey: {exc}", "ledger_vkey") from exc
        if self.witness_vkey:
            try:
                if CosignatureVerifier.from_vkey(self.witness_vkey).name != witness_name(self.org_name):
                    raise _bad(
                        f"the witness vkey must be named {witness_name(self.org_name)}", "witness_vkey"
                    )
            except LedgerError as exc:
                raise _bad(f"witness_vkey: {exc}", "witness_vkey") from exc

    def _verify_ca(self) -> None:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        pem = self.ca_certificate_pem.encode()
        if pem.count(b"-----BEGIN CERTIFICATE-----") != 1:
            raise _bad("ca_certificate_pem must hold exactly one certificate", "ca_certificate_pem")
        try:
            ca = x509.load_pem_x509_certificate(pem)
            basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
            orgs = [a.value for a in ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        except (ValueError, x509.ExtensionNotFound) as exc:
            raise _bad(f"ca_certificate_pem is not a CA certificate: {exc}", "ca_certificate_pem") from exc
        if not basic.ca or ca.subject != ca.issuer or orgs != [self.org_name]:
            raise _bad(f"ca_certificate_pem is not a self-issued CA of {self.org_name}", "ca_certificate_pem")

    def ca_sha256(self) -> str:
        """Hex SHA-256 of the CA certificate (DER)."""
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        der = x509.load_pem_x509_certificate(self.ca_certificate_pem.encode()).public_bytes(Encoding.DER)
        return hashlib.sha256(der).hexdigest()

    def fingerprint(self) -> str:
        """Fingerprint of the organization's key material, to compare out of band.

        SHA-256 over the RFC 8785 JCS of ``{org_did, public_key_multibase,
        ca_sha256 (DER), ledger_vkey, witness_vkey}``, first 32 hex digits
        (128 bits). It does not change when the same identity is exported
        again (``issued_at``) or moves (``endpoint``).
        """
        material = {
            "org_did": self.org_did,
            "public_key_multibase": self.public_key_multibase,
            "ca_sha256": self.ca_sha256(),
            "ledger_vkey": self.ledger_vkey,
            "witness_vkey": self.witness_vkey,
        }
        return hashlib.sha256(rfc8785.dumps(material)).hexdigest()[:32]

    def same_pin(self, other: PeerBundle) -> bool:
        """True if ``other`` pins the same keys, CA and endpoint (only ``issued_at`` may differ)."""
        return self.fingerprint() == other.fingerprint() and self.endpoint == other.endpoint

    @classmethod
    def parse(cls, raw: bytes | str) -> PeerBundle:
        """Parse and verify a bundle from JSON.

        Raises:
            PeerError: reason ``BAD_BUNDLE`` for more than ``MAX_BUNDLE_BYTES``,
                malformed JSON, a schema violation (pattern, length, unknown
                member), a bad signature or a field not bound to ``org_name``.

        """
        if len(raw) > MAX_BUNDLE_BYTES:
            raise PeerError(f"peer bundle is larger than {MAX_BUNDLE_BYTES} bytes", reason="BAD_BUNDLE")
        try:
            bundle = cls.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError, RecursionError) as exc:
            raise PeerError(f"malformed peer bundle: {exc}".splitlines()[0], reason="BAD_BUNDLE") from exc
        bundle.verify()
        return bundle


class RotationStatement(BaseModel):
    """An organization's statement, signed by its *old* key, that its pin moves to a new bundle.

    Attributes:
        type: ``"AccordPeerRotation"``.
        org_did: the organization (same DID before and after).
        old_fingerprint: :meth:`PeerBundle.fingerprint` of the pinned bundle.
        new_fingerprint: fingerprint of the new bundle.
        new_bundle_sha256: hex SHA-256 of the new bundle's signing bytes
            (binds its endpoint too).
        issued_at: RFC 3339 UTC time.
        signature: base64url Ed25519 signature by the old organization key
            over the RFC 8785 JCS of the other members.

    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    type: Literal["AccordPeerRotation"] = "AccordPeerRotation"
    org_did: str = Field(max_length=256)
    old_fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")
    new_fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")
    new_bundle_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    issued_at: str = Field(pattern=_RFC3339_Z)
    signature: str = Field(default="", pattern=r"^(?:[A-Za-z0-9_-]{86})?$")

    def signing_bytes(self) -> bytes:
        """RFC 8785 canonical bytes without ``signature``."""
        data = self.model_dump(mode="json")
        data.pop("signature", None)
        return rfc8785.dumps(data)

    @classmethod
    def make(
        cls, *, old: PeerBundle, new: PeerBundle, old_key: Ed25519KeyPair, now: dt.datetime | None = None
    ) -> RotationStatement:
        """Sign a rotation from ``old`` to ``new`` with the old organization key.

        Raises:
            PeerError: ``BAD_ROTATION`` if the DIDs differ or ``old_key`` is not ``old``'s key.

        """
        if old.org_did != new.org_did:
            raise PeerError("a rotation keeps the organization DID", reason="BAD_ROTATION")
        if old_key.public_key != old.public_key:
            raise PeerError("the signing key is not the pinned organization key", reason="BAD_ROTATION")
        now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
        stmt = cls(
            org_did=old.org_did,
            old_fingerprint=old.fingerprint(),
            new_fingerprint=new.fingerprint(),
            new_bundle_sha256=hashlib.sha256(new.signing_bytes()).hexdigest(),
            issued_at=now.isoformat().replace("+00:00", "Z"),
        )
        sig = old_key.sign(stmt.signing_bytes())
        return stmt.model_copy(update={"signature": base64.urlsafe_b64encode(sig).rstrip(b"=").decode()})

    @classmethod
    def parse(cls, raw: bytes | str) -> RotationStatement:
        """Parse a statement from JSON (at most 4 KiB).

        Raises:
            PeerError: ``BAD_ROTATION`` for anything malformed.

        """
        if len(raw) > 4096:
            raise PeerError("rotation statement is larger than 4 KiB", reason="BAD_ROTATION")
        try:
            return cls.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
            raise PeerError(
                f"malformed rotation statement: {exc}".splitlines()[0], reason="BAD_ROTATION"
            ) from exc

    def verify(self, *, old: PeerBundle, new: PeerBundle) -> None:
        """Check that this statement moves the pin of ``old`` to exactly ``new``, signed by ``old``'s key.

        Raises:
            PeerError: ``BAD_ROTATION`` naming what does not match.

        """
        expected = {
            "org_did": (self.org_did, old.org_did),
            "old_fingerprint": (self.old_fingerprint, old.fingerprint()),
            "new_fingerprint": (self.new_fingerprint, new.fingerprint()),
            "new_bundle_sha256": (self.new_bundle_sha256, hashlib.sha256(new.signing_bytes()).hexdigest()),
        }
        for name, (got, want) in expected.items():
            if got != want or new.org_did != old.org_did:
                raise PeerError(
                    f"rotation statement {name} does not match the bundles",
                    reason="BAD_ROTATION",
                    metadata={"field": name},
                )
        try:
            sig = base64.urlsafe_b64decode(self.signature + "=" * (-len(self.signature) % 4))
            verify_ed25519(old.public_key, sig, self.signing_bytes())
        except Exception as exc:  # any decoding or signature failure
            raise PeerError(
                "rotation statement is not signed by the pinned organization key", reason="BAD_ROTATION"
            ) from exc


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
    """Pinned peer bundles of one node, keyed by organization DID.

    No two pinned organizations share a name, DID, ledger origin,
    organization key, CA or log/witness key (:meth:`add`).
    """

    def __init__(self, bundles: Iterable[PeerBundle] = ()) -> None:
        self._by_did: dict[str, PeerBundle] = {}
        self._by_name: dict[str, str] = {}
        for bundle in bundles:
            self.add(bundle)

    @classmethod
    def load(cls, directory: Path) -> PeerRegistry:
        """Load and verify every ``*.json`` bundle in ``directory``.

        Raises:
            PeerError: ``BAD_BUNDLE`` for an invalid bundle or one whose file is
                not named ``<org_name>.json``; ``PEER_COLLISION`` (see :meth:`add`).

        """
        bundles = []
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                bundle = PeerBundle.parse(path.read_bytes())
                if path.stem != bundle.org_name:
                    raise PeerError(
                        f"{path.name} holds the bundle of {bundle.org_name}: a pinned bundle is "
                        f"named <org_name>.json",
                        reason="BAD_BUNDLE",
                        metadata={"file": path.name[:100]},
                    )
                bundles.append(bundle)
        return cls(bundles)

    @staticmethod
    def _claims(bundle: PeerBundle) -> dict[str, str]:
        """What a bundle claims that no other pinned organization may claim."""
        from federation.statuslists import StatusListPublisher

        return {
            "org_name": bundle.org_name,
            "org_did": bundle.org_did,
            "ledger_origin": bundle.ledger_origin,
            "status_list": StatusListPublisher.url_for(bundle.org_name, "revocation"),
            "public_key": bundle.public_key_multibase,
            "ca_certificate": bundle.ca_sha256(),
            "ledger_key": bundle.ledger_vkey.rpartition("+")[2],
            "witness_key": bundle.witness_vkey.rpartition("+")[2] if bundle.witness_vkey else "",
        }

    def add(self, bundle: PeerBundle) -> None:
        """Pin a (verified) bundle.

        Raises:
            PeerError: ``PEER_COLLISION`` if another pinned organization
                already has this name, ledger origin, status lists, organization
                key, CA, log key or witness key; ``PIN_CHANGE_REFUSED`` if this
                organization is pinned with other keys, CA or endpoint (a
                re-pin goes through :func:`pin_bundle`).

        """
        pinned = self._by_did.get(bundle.org_did)
        if pinned is not None and not pinned.same_pin(bundle):
            raise PeerError(
                f"{bundle.org_did} is already pinned with other keys, CA or endpoint",
                reason="PIN_CHANGE_REFUSED",
                metadata={"peer": bundle.org_did},
            )
        mine = self._claims(bundle)
        for other in self._by_did.values():
            if other.org_did == bundle.org_did:
                continue
            theirs = self._claims(other)
            clash = sorted(k for k, v in mine.items() if v and theirs[k] == v)
            if clash:
                raise PeerError(
                    f"bundle of {bundle.org_did} claims the {', '.join(clash)} of pinned {other.org_did}",
                    reason="PEER_COLLISION",
                    metadata={"peer": bundle.org_did, "pinned": other.org_did, "fields": ",".join(clash)},
                )
        self._by_did[bundle.org_did] = bundle
        self._by_name[bundle.org_name] = bundle.org_did

    def remove(self, org_did: str) -> None:
        """Forget a pinned organization (no error if it is not pinned)."""
        bundle = self._by_did.pop(org_did, None)
        if bundle is not None:
            self._by_name.pop(bundle.org_name, None)

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


@dataclass(frozen=True)
class PinResult:
    """What :func:`pin_bundle` did.

    Attributes:
        path: the file written (``peers/<org_name>.json``).
        fingerprint: the pinned bundle's fingerprint.
        previous_fingerprint: the replaced pin's fingerprint ("" for a new peer).
        how: ``"new"``, ``"unchanged"`` (same keys, CA and endpoint),
            ``"rotation"`` (a statement signed by the old key) or ``"override"``.

    """

    path: Path
    fingerprint: str
    previous_fingerprint: str
    how: str


def pin_bundle(
    peers_dir: Path,
    bundle: PeerBundle,
    *,
    own_did: str,
    rotation: RotationStatement | None = None,
    override: tuple[str, str] | None = None,
) -> PinResult:
    """Pin a verified bundle in ``peers_dir`` (the only way a node pins or re-pins a peer).

    A new organization is pinned if it collides with no pinned one. An
    organization already pinned with the same keys, CA and endpoint is
    re-written (a fresh export). Anything else (new organization key, CA,
    log or witness key, or endpoint) needs either ``rotation``, a statement
    signed by the *pinned* organization key naming both fingerprints and the
    new bundle, or ``override = (old_fingerprint, new_fingerprint)``, the
    operator's explicit decision naming both. The file is written atomically
    (temporary file, then rename) as ``peers/<org_name>.json``.

    Raises:
        PeerError: ``SELF_PEER`` (this node's own DID), ``PEER_COLLISION``,
            ``PIN_CHANGE_REFUSED`` (a change with neither a valid statement nor
            a matching override), ``BAD_ROTATION`` (a statement that does not
            verify), ``BAD_BUNDLE`` (a pinned file is invalid).

    """
    if bundle.org_did == own_did:
        raise PeerError("refusing to pin this node's own bundle as a peer", reason="SELF_PEER")
    registry = PeerRegistry.load(peers_dir)
    pinned = registry._by_did.get(bundle.org_did)
    how = "new"
    if pinned is not None:
        old_fp, new_fp = pinned.fingerprint(), bundle.fingerprint()
        if pinned.same_pin(bundle):
            how = "unchanged"
        elif rotation is not None:
            rotation.verify(old=pinned, new=bundle)
            how = "rotation"
        elif override is not None:
            if tuple(override) != (old_fp, new_fp):
                raise PeerError(
                    f"override names {override[0][:32]} -> {override[1][:32]}, but the pin would move "
                    f"{old_fp} -> {new_fp}",
                    reason="PIN_CHANGE_REFUSED",
                    metadata={"peer": bundle.org_did, "pinned": old_fp, "offered": new_fp},
                )
            how = "override"
        else:
            raise PeerError(
                f"{bundle.org_did} is pinned with fingerprint {old_fp} (endpoint {pinned.endpoint}); the "
                f"bundle offers {new_fp} (endpoint {bundle.endpoint}). Re-pinning needs a rotation "
                f"statement signed by the pinned key, or an override naming both fingerprints",
                reason="PIN_CHANGE_REFUSED",
                metadata={"peer": bundle.org_did, "pinned": old_fp, "offered": new_fp},
            )
        registry.remove(bundle.org_did)
    registry.add(bundle)  # PEER_COLLISION against every other pinned organization
    root = peers_dir.resolve()
    target = root / f"{bundle.org_name}.json"
    if target.parent != root:  # org_name is a DNS label; defence in depth
        raise PeerError("bundle org_name is not a file name", reason="BAD_BUNDLE")
    from federation.paths import write_private

    write_private(target, bundle.model_dump_json(indent=2))
    return PinResult(
        path=target,
        fingerprint=bundle.fingerprint(),
        previous_fingerprint=pinned.fingerprint() if pinned is not None else "",
        how=how,
    )
