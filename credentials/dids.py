"""DIDs and key resolvers: ``did:key`` (Ed25519 Multikey) and pinned ``did:web`` documents.

* ``did:key`` (W3C CCG did:key Method v0.7, §3.1 "Ed25519"): the DID is
  ``did:key:`` + the Multikey ``publicKeyMultibase`` (``z6Mk…``); its only
  verification method is ``did:key:z6Mk…#z6Mk…``. The DID document is built
  locally, never fetched.
* ``did:web`` (W3C CCG did:web Method): organization DIDs such as
  ``did:web:hospital.accord.test``. Accord never resolves them over HTTPS:
  a node pins each peer's DID document from its signed peer bundle and
  resolves verification methods from that (``DidDocumentResolver``).

A *key resolver* maps a verification method id (a DID URL) to a 32-byte
Ed25519 public key and raises ``UnknownKeyError`` when it cannot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from credentials.errors import MalformedKeyError, UnknownKeyError
from credentials.keys import public_key_from_jwk, public_key_from_multibase, public_key_multibase

__all__ = [
    "DID_V1_CONTEXT",
    "DidDocumentResolver",
    "KeyResolver",
    "StaticKeyResolver",
    "did_key_from_public_key",
    "did_key_resolver",
    "did_web_document",
    "public_key_from_did_key",
    "resolve_did_key",
    "verification_method_id",
]

#: JSON-LD context of DID documents (DID Core 1.0 §4.1).
DID_V1_CONTEXT = "https://www.w3.org/ns/did/v1"
_MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
_DID_KEY_PREFIX = "did:key:"
# did:web method-specific id: a host (optionally with %3A port) then ':'-separated path segments.
_DID_WEB_RE = re.compile(r"^did:web:[A-Za-z0-9.-]+(%3[Aa][0-9]+)?(:[A-Za-z0-9._~%-]+)*$")


@runtime_checkable
class KeyResolver(Protocol):
    """Maps a verification method id (DID URL) to a 32-byte Ed25519 public key."""

    def __call__(self, verification_method: str) -> bytes:
        """Return the 32-byte Ed25519 public key of ``verification_method``.

        Raises:
            UnknownKeyError: the verification method is not known to this resolver.
            MalformedKeyError: it is known but its key material is malformed.

        """
        ...


def did_key_from_public_key(public_key: bytes) -> str:
    """Return the ``did:key`` DID (``did:key:z6Mk…``) of a 32-byte Ed25519 public key.

    Raises:
        MalformedKeyError: the key is not 32 bytes.

    """
    return _DID_KEY_PREFIX + public_key_multibase(public_key)


def public_key_from_did_key(did: str) -> bytes:
    """Return the 32-byte Ed25519 public key of a ``did:key`` DID (no fragment).

    Raises:
        UnknownKeyError: not a ``did:key`` DID.
        MalformedKeyError: bad multibase, multicodec other than 0xed01, wrong length.

    """
    if not isinstance(did, str) or not did.startswith(_DID_KEY_PREFIX):
        raise UnknownKeyError("not a did:key DID", metadata={"did": str(did)[:200]})
    return public_key_from_multibase(did[len(_DID_KEY_PREFIX) :])


def verification_method_id(did_key: str) -> str:
    """Return the verification method id of a ``did:key`` DID: ``did:key:z6Mk…#z6Mk…``.

    Raises:
        UnknownKeyError: not a ``did:key`` DID.
        MalformedKeyError: the DID does not encode an Ed25519 key.

    """
    public_key_from_did_key(did_key)
    return f"{did_key}#{did_key[len(_DID_KEY_PREFIX) :]}"


def resolve_did_key(did: str) -> dict[str, Any]:
    """Build the DID document of a ``did:key`` DID (did:key Method v0.7 §3.1.1).

    Args:
        did: ``did:key:z6Mk…`` (a fragment, if present, is ignored).

    Returns:
        The DID document: one ``Multikey`` verification method, referenced from
        ``authentication``, ``assertionMethod``, ``capabilityInvocation`` and
        ``capabilityDelegation``.

    Raises:
        UnknownKeyError: not a ``did:key`` DID.
        MalformedKeyError: the DID does not encode an Ed25519 key.

    """
    did = did.split("#", 1)[0] if isinstance(did, str) else did
    public_key = public_key_from_did_key(did)
    vm_id = verification_method_id(did)
    return {
        "@context": [DID_V1_CONTEXT, _MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [
            {
                "id": vm_id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": public_key_multibase(public_key),
            }
        ],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }


def did_key_resolver(verification_method: str) -> bytes:
    """Resolve a ``did:key`` verification method (``did:key:z6Mk…#z6Mk…``) to its public key.

    The fragment must equal the method-specific identifier (did:key v0.7 §3.1.1).

    Raises:
        UnknownKeyError: not a ``did:key`` DID URL, or a fragment that names
            no verification method of the DID.
        MalformedKeyError: the DID does not encode an Ed25519 key.

    """
    if not isinstance(verification_method, str) or not verification_method.startswith(_DID_KEY_PREFIX):
        raise UnknownKeyError(
            "not a did:key verification method",
            metadata={"verification_method": str(verification_method)[:200]},
        )
    did, _, fragment = verification_method.partition("#")
    if fragment != did[len(_DID_KEY_PREFIX) :]:
        raise UnknownKeyError(
            "did:key verification method fragment must equal the method-specific id",
            metadata={"verification_method": verification_method[:200]},
        )
    return public_key_from_did_key(did)


class StaticKeyResolver:
    """A key resolver over a fixed mapping, with an optional fallback resolver.

    Args:
        mapping: verification method id -> 32-byte Ed25519 public key.
        fallback: consulted for ids not in ``mapping`` (default: ``did_key_resolver``);
            None to resolve only the mapping.

    Raises:
        MalformedKeyError: (constructor) a mapped key is not 32 bytes.

    """

    def __init__(
        self,
        mapping: Mapping[str, bytes],
        fallback: KeyResolver | None = did_key_resolver,
    ) -> None:
        for vm, key in mapping.items():
            if not isinstance(key, bytes) or len(key) != 32:
                raise MalformedKeyError(
                    "Ed25519 public key must be 32 bytes", metadata={"verification_method": vm}
                )
        self._mapping = dict(mapping)
        self._fallback = fallback

    def __call__(self, verification_method: str) -> bytes:
        """Return the key of ``verification_method``; raises ``UnknownKeyError`` if unknown."""
        key = self._mapping.get(verification_method)
        if key is not None:
            return key
        if self._fallback is not None:
            return self._fallback(verification_method)
        raise UnknownKeyError(
            "unknown verification method",
            metadata={"verification_method": str(verification_method)[:200]},
        )


def did_web_document(did: str, public_key: bytes, *, key_id: str = "key-1") -> dict[str, Any]:
    """Build a ``did:web`` DID document with one Ed25519 Multikey verification method.

    Args:
        did: a ``did:web`` DID, e.g. ``did:web:hospital.accord.test``.
        public_key: 32-byte Ed25519 public key.
        key_id: fragment of the verification method (``<did>#<key_id>``).

    Returns:
        The DID document; the method is listed under ``assertionMethod`` and
        ``authentication``.

    Raises:
        UnknownKeyError: ``did`` is not a syntactically valid ``did:web`` DID.
        MalformedKeyError: the key is not 32 bytes.

    """
    if not isinstance(did, str) or not _DID_WEB_RE.match(did):
        raise UnknownKeyError("not a did:web DID", metadata={"did": str(did)[:200]})
    vm_id = f"{did}#{key_id}"
    return {
        "@context": [DID_V1_CONTEXT, _MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [
            {
                "id": vm_id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": public_key_multibase(public_key),
            }
        ],
        "assertionMethod": [vm_id],
        "authentication": [vm_id],
    }


class DidDocumentResolver:
    """A key resolver over pinned DID documents (e.g. peers' ``did:web`` documents).

    Verification methods are read from each document's ``verificationMethod``
    (and embedded methods in ``assertionMethod``/``authentication``); relative
    ids (``#key-1``) are resolved against the document ``id``. Supported types:
    ``Multikey`` (``publicKeyMultibase``) and ``JsonWebKey``/``JsonWebKey2020``
    (``publicKeyJwk``, OKP Ed25519). A method whose ``controller`` is not the
    document's DID is ignored.

    Args:
        documents: DID -> DID document.
        fallback: consulted for ids not found (default None: no fallback).

    Raises:
        MalformedKeyError: (constructor) a document is not an object, its ``id``
            differs from its key, or a method's key material is malformed.

    """

    def __init__(
        self,
        documents: Mapping[str, Mapping[str, Any]],
        fallback: KeyResolver | None = None,
    ) -> None:
        keys: dict[str, bytes] = {}
        for did, doc in documents.items():
            if not isinstance(doc, Mapping) or doc.get("id") != did:
                raise MalformedKeyError("DID document id does not match its DID", metadata={"did": did})
            methods: list[Any] = list(doc.get("verificationMethod") or [])
            for rel in ("assertionMethod", "authentication"):
                methods.extend(m for m in (doc.get(rel) or []) if isinstance(m, Mapping))
            for method in methods:
                if not isinstance(method, Mapping) or not isinstance(method.get("id"), str):
                    raise MalformedKeyError("malformed verification method", metadata={"did": did})
                vm_id = method["id"]
                if vm_id.startswith("#"):
                    vm_id = did + vm_id
                if method.get("controller", did) != did:
                    continue
                keys[vm_id] = _method_public_key(method, did)
        self._keys = keys
        self._fallback = fallback

    def __call__(self, verification_method: str) -> bytes:
        """Return the key of ``verification_method``; raises ``UnknownKeyError`` if unknown."""
        key = self._keys.get(verification_method)
        if key is not None:
            return key
        if self._fallback is not None:
            return self._fallback(verification_method)
        raise UnknownKeyError(
            "verification method not in any pinned DID document",
            metadata={"verification_method": str(verification_method)[:200]},
        )


def _method_public_key(method: Mapping[str, Any], did: str) -> bytes:
    kind = method.get("type")
    if kind == "Multikey" or "publicKeyMultibase" in method:
        return public_key_from_multibase(method.get("publicKeyMultibase"))  # type: ignore[arg-type]
    if kind in ("JsonWebKey", "JsonWebKey2020") or "publicKeyJwk" in method:
        return public_key_from_jwk(method.get("publicKeyJwk"))  # type: ignore[arg-type]
    raise MalformedKeyError("unsupported verification method type", metadata={"did": did, "type": str(kind)})
