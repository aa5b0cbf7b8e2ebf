"""Ed25519 keys: Multikey (multibase + multicodec) and JWK (RFC 8037) encodings.

Formats:

* Multikey public key (W3C Controlled Identifiers 1.0 §2.2.2 "Multikey",
  VC DI EdDSA §2.1.1): ``"z" + base58btc(0xed 0x01 || 32-byte public key)``,
  always starting with ``z6Mk``.
* Multikey secret key: ``"z" + base58btc(0x80 0x26 || 32-byte seed)``
  (multicodec ``ed25519-priv`` 0x1300, unsigned varint), starting ``z3u2``.
* JWK (RFC 8037 §2): ``{"kty": "OKP", "crv": "Ed25519", "x": b64url(pub)}``
  plus ``"d": b64url(seed)`` for a private key; base64url without padding.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from credentials.errors import InvalidSignatureError, MalformedKeyError

__all__ = [
    "ED25519_PRIV_MULTICODEC",
    "ED25519_PUB_MULTICODEC",
    "Ed25519KeyPair",
    "Ed25519Signer",
    "multibase_decode",
    "multibase_encode_base58btc",
    "public_key_from_jwk",
    "public_key_from_multibase",
    "public_key_multibase",
    "verify_ed25519",
]

#: Multicodec prefix of an Ed25519 public key (0xed as an unsigned varint).
ED25519_PUB_MULTICODEC = b"\xed\x01"
#: Multicodec prefix of an Ed25519 secret key seed (0x1300 as an unsigned varint).
ED25519_PRIV_MULTICODEC = b"\x80\x26"

_KEY_LEN = 32
_SIG_LEN = 64


def multibase_encode_base58btc(data: bytes) -> str:
    """Encode bytes as multibase base58btc (``"z"`` prefix, Bitcoin alphabet)."""
    return "z" + base58.b58encode(data).decode("ascii")


def multibase_decode(value: str) -> bytes:
    """Decode a multibase string; base58btc (``z``) and base64url (``u``) are supported.

    Args:
        value: the multibase string.

    Returns:
        The decoded bytes.

    Raises:
        MalformedKeyError: not a string, unknown prefix, or invalid characters.

    """
    if not isinstance(value, str) or len(value) < 2:
        raise MalformedKeyError("multibase value must be a non-empty string")
    prefix, body = value[0], value[1:]
    try:
        if prefix == "z":
            return base58.b58decode(body.encode("ascii"))
        if prefix == "u":
            if "=" in body:
                raise ValueError("padding not allowed")
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, UnicodeEncodeError, binascii.Error) as exc:
        raise MalformedKeyError("invalid multibase encoding", metadata={"prefix": prefix}) from exc
    raise MalformedKeyError(
        f"unsupported multibase prefix {prefix!r} (expected 'z' or 'u')",
        metadata={"prefix": prefix},
    )


def _decode_multikey(value: str, codec: bytes, what: str) -> bytes:
    raw = multibase_decode(value)
    if value[0] != "z":
        raise MalformedKeyError(f"{what} must be base58btc multibase ('z' prefix)")
    if raw[:2] != codec:
        raise MalformedKeyError(
            f"{what}: wrong multicodec, expected 0x{codec.hex()}, got 0x{raw[:2].hex()}",
            metadata={"expected": codec.hex(), "actual": raw[:2].hex()},
        )
    key = raw[2:]
    if len(key) != _KEY_LEN:
        raise MalformedKeyError(
            f"{what}: expected {_KEY_LEN} key bytes, got {len(key)}",
            metadata={"expected": str(_KEY_LEN), "actual": str(len(key))},
        )
    return key


def public_key_multibase(public_key: bytes) -> str:
    """Encode a 32-byte Ed25519 public key as a Multikey ``publicKeyMultibase`` (``z6Mk…``).

    Raises:
        MalformedKeyError: the key is not 32 bytes.

    """
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != _KEY_LEN:
        raise MalformedKeyError("Ed25519 public key must be 32 bytes")
    return multibase_encode_base58btc(ED25519_PUB_MULTICODEC + bytes(public_key))


def public_key_from_multibase(value: str) -> bytes:
    """Decode a Multikey ``publicKeyMultibase`` to the 32-byte Ed25519 public key.

    Raises:
        MalformedKeyError: bad multibase, multicodec other than 0xed01, or wrong length.

    """
    return _decode_multikey(value, ED25519_PUB_MULTICODEC, "Ed25519 publicKeyMultibase")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or "=" in value:
        raise MalformedKeyError(f"JWK member {name!r} must be unpadded base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error) as exc:
        raise MalformedKeyError(f"JWK member {name!r} is not base64url") from exc


@functools.lru_cache(maxsize=1024)
def _public_key_object(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Verify an Ed25519 signature (RFC 8032 §5.1.7).

    Args:
        public_key: 32-byte Ed25519 public key.
        signature: 64-byte signature.
        message: the signed bytes.

    Raises:
        MalformedKeyError: the public key is not 32 bytes or not a valid point.
        InvalidSignatureError: the signature does not verify.

    """
    if not isinstance(public_key, bytes) or len(public_key) != _KEY_LEN:
        raise MalformedKeyError("Ed25519 public key must be 32 bytes")
    if not isinstance(signature, bytes) or len(signature) != _SIG_LEN:
        raise InvalidSignatureError(
            f"Ed25519 signature must be {_SIG_LEN} bytes",
            metadata={"length": str(len(signature)) if isinstance(signature, bytes) else "?"},
        )
    try:
        key = _public_key_object(public_key)
    except ValueError as exc:
        raise MalformedKeyError("invalid Ed25519 public key") from exc
    try:
        key.verify(signature, message)
    except InvalidSignature as exc:
        raise InvalidSignatureError("Ed25519 signature does not verify") from exc


class Ed25519Signer(Protocol):
    """What signs with an Ed25519 key, wherever the private key is (a key store abstraction).

    :class:`Ed25519KeyPair` holds the seed in memory; a key in an HSM
    (``federation.keystore.Pkcs11Ed25519Key``) signs in the token and refuses
    to give its seed. Signers take either.

    Attributes:
        public_key: 32-byte Ed25519 public key.

    """

    public_key: bytes

    @property
    def public_key_multibase(self) -> str:
        """Multikey ``publicKeyMultibase`` (``z6Mk…``)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (RFC 8032, pure Ed25519); 64 bytes."""
        ...


@dataclass(frozen=True, repr=False)
class Ed25519KeyPair:
    """An Ed25519 key pair (RFC 8032) held as its 32-byte seed.

    Attributes:
        seed: 32-byte private seed (the RFC 8032 "private key").
        public_key: 32-byte public key, derived from the seed.

    """

    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)
    _private: Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != _KEY_LEN:
            raise MalformedKeyError("Ed25519 seed must be 32 bytes")
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        object.__setattr__(self, "_private", private)
        object.__setattr__(
            self,
            "public_key",
            private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )

    def __repr__(self) -> str:
        return f"Ed25519KeyPair(public_key_multibase={self.public_key_multibase!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Pretty printers (IPython, hypothesis) must not print the seed either.
        printer.text(repr(self))

    @classmethod
    def generate(cls) -> Ed25519KeyPair:
        """Generate a new key pair from 32 bytes of OS randomness."""
        return cls(os.urandom(_KEY_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519KeyPair:
        """Build the key pair for a 32-byte seed.

        Raises:
            MalformedKeyError: the seed is not 32 bytes.

        """
        return cls(bytes(seed) if isinstance(seed, bytearray) else seed)

    @classmethod
    def from_multibase(cls, secret_key_multibase: str) -> Ed25519KeyPair:
        """Decode a Multikey ``secretKeyMultibase`` (``z3u2…``, multicodec 0x1300).

        Raises:
            MalformedKeyError: bad multibase, wrong multicodec, or wrong length.

        """
        return cls(
            _decode_multikey(secret_key_multibase, ED25519_PRIV_MULTICODEC, "Ed25519 secretKeyMultibase")
        )

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> Ed25519KeyPair:
        """Import a private OKP/Ed25519 JWK (RFC 8037 §2); ``x``, if present, must match ``d``.

        Raises:
            MalformedKeyError: not an Ed25519 OKP JWK, no ``d``, bad base64url,
                wrong lengths, or ``x`` not the public key of ``d``.

        """
        if not isinstance(jwk, Mapping):
            raise MalformedKeyError("JWK must be a JSON object")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise MalformedKeyError(
                "JWK must have kty 'OKP' and crv 'Ed25519'",
                metadata={"kty": str(jwk.get("kty")), "crv": str(jwk.get("crv"))},
            )
        if "d" not in jwk:
            raise MalformedKeyError("JWK has no private member 'd'")
        seed = _b64url_decode(jwk["d"], "d")
        if len(seed) != _KEY_LEN:
            raise MalformedKeyError("JWK 'd' must decode to 32 bytes")
        pair = cls(seed)
        if "x" in jwk and _b64url_decode(jwk["x"], "x") != pair.public_key:
            raise MalformedKeyError("JWK 'x' is not the public key of 'd'")
        return pair

    @property
    def public_key_multibase(self) -> str:
        """Multikey ``publicKeyMultibase`` of the public key (``z6Mk…``)."""
        return public_key_multibase(self.public_key)

    @property
    def secret_key_multibase(self) -> str:
        """Multikey ``secretKeyMultibase`` of the seed (``z3u2…``). Secret: handle with care."""
        return multibase_encode_base58btc(ED25519_PRIV_MULTICODEC + self.seed)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (RFC 8032 §5.1.6, deterministic); returns 64 bytes."""
        return self._private.sign(message)

    def to_jwk(self, *, include_private: bool = False) -> dict[str, str]:
        """Export as an RFC 8037 OKP JWK; ``d`` (the seed) only if ``include_private``."""
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(self.public_key)}
        if include_private:
            jwk["d"] = _b64url(self.seed)
        return jwk


def public_key_from_jwk(jwk: Mapping[str, Any]) -> bytes:
    """Decode the 32-byte public key of an OKP/Ed25519 JWK (RFC 8037 §2).

    Raises:
        MalformedKeyError: not an Ed25519 OKP JWK or ``x`` is not 32 bytes.

    """
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise MalformedKeyError("JWK must have kty 'OKP' and crv 'Ed25519'")
    x = _b64url_decode(jwk.get("x"), "x")
    if len(x) != _KEY_LEN:
        raise MalformedKeyError("JWK 'x' must decode to 32 bytes")
    return x
