r"""Signed notes (c2sp.org/signed-note): Ed25519 signer (type 0x01) and verifiers.

A note is ``text`` (ending in ``\n``), a blank line, then signature lines
``— <key name> <base64(key ID[4] || signature)>\n`` (U+2014 EM DASH). The text
and the signatures are split at the *last* blank line. Unknown (name, key ID)
pairs are ignored; a failing known signature rejects the whole note.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import InvalidKeyError, InvalidSignatureError, MalformedNoteError

__all__ = [
    "SIG_ED25519",
    "SIG_ECDSA",
    "SIG_COSIGNATURE_V1",
    "MAX_SIGNATURES",
    "MAX_NOTE_BYTES",
    "key_id",
    "check_key_name",
    "NoteSignature",
    "Note",
    "SignatureVerifier",
    "Ed25519SigningKey",
    "NoteSigner",
    "NoteVerifier",
    "parse_note",
    "open_note",
    "b64decode_strict",
]

SIG_ED25519 = 0x01
"""Signature type of Ed25519 note signatures (c2sp.org/signed-note)."""
SIG_ECDSA = 0x02
"""Signature type of ECDSA note signatures (key ID = SHA-256(SPKI DER)[:4])."""
SIG_COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature)."""
MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (the spec requires at least 16; Go caps at 100)."""
MAX_NOTE_BYTES = 1 << 20
"""Largest note accepted, bytes (or characters for text), checked before any parsing.

100 signature lines of the largest supported type (ML-DSA-44 cosignatures,
about 3.3 KB each in base64) plus a checkpoint body fit well below it.
"""

_EM_DASH = "\u2014"
_SPACES = frozenset(
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def b64decode_strict(text: str, *, what: str = "base64") -> bytes:
    """Decode standard base64 (RFC 4648 §4), rejecting anything non-canonical.

    Raises:
        ValueError: If ``text`` is not canonical padded standard base64.

    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError(f"{what} is not canonical base64")
    return raw


def check_key_name(name: str) -> None:
    """Check a signed-note key name: non-empty, no Unicode spaces, no ``+``.

    Raises:
        InvalidKeyError: If the name is not allowed.

    """
    if (
        not isinstance(name, str)
        or not name
        or "+" in name
        or any(c in _SPACES or c.isspace() or ord(c) < 0x20 for c in name)
    ):
        raise InvalidKeyError(f"invalid key name {name!r}", metadata={"name": str(name)})


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """Compute a 4-byte key ID: ``SHA-256(name || 0x0A || type || public key)[:4]``.

    Args:
        name: Key name.
        sig_type: Signature type byte (0x01 Ed25519, 0x04 cosignature/v1 ...).
        public_key: Encoded public key (32 bytes for Ed25519).

    Returns:
        The 4-byte key ID (big-endian uint32).

    """
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteSignature:
    r"""One signature line of a note.

    Attributes:
        name: Key name.
        key_id: 4-byte key ID.
        signature: Signature bytes after the key ID.
        line: The full line, ``"— name base64\n"``.

    """

    name: str
    key_id: bytes
    signature: bytes
    line: str


@dataclass(frozen=True)
class Note:
    """A parsed (not yet verified) signed note.

    Attributes:
        text: The signed text, including its final newline.
        signatures: Every signature line, in order.

    """

    text: str
    signatures: tuple[NoteSignature, ...]


@runtime_checkable
class SignatureVerifier(Protocol):
    """Anything that can check one note signature line for a (name, key ID)."""

    @property
    def name(self) -> str:
        """Key name."""
        ...

    @property
    def key_id(self) -> bytes:
        """4-byte key ID."""
        ...

    def verify_signature(self, text: bytes, signature: bytes) -> bool:
        """Return ``True`` iff ``signature`` (key ID stripped) is valid over ``text``."""
        ...


@functools.lru_cache(maxsize=2048)
def _ed25519_valid(public_key: bytes, text: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, text)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_note(note: str | bytes) -> Note:
    """Parse a signed note without verifying it (c2sp.org/signed-note "Format").

    Args:
        note: The note as text or UTF-8 bytes.

    Returns:
        The text and its signature lines.

    Raises:
        MalformedNoteError: On a note longer than :data:`MAX_NOTE_BYTES`,
            invalid UTF-8, control characters other than newline, no blank-line
            separator, no or too many (> 100) signatures, malformed signature
            lines or names, or a missing final newline.

    """
    if isinstance(note, bytes | bytearray | str) and len(note) > MAX_NOTE_BYTES:
        raise MalformedNoteError(
            f"note is longer than {MAX_NOTE_BYTES}", metadata={"length": len(note), "limit": MAX_NOTE_BYTES}
        )
    if isinstance(note, bytes | bytearray):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("note is not valid UTF-8") from exc
    if not isinstance(note, str):
        raise MalformedNoteError("note must be str or bytes")
    if any(ord(c) < 0x20 and c != "\n" for c in note) or "\x7f" in note:
        raise MalformedNoteError("note contains control characters")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    if not sig_block.endswith("\n"):
        raise MalformedNoteError("signature block does not end in a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(
            f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}",
            metadata={"signatures": len(lines)},
        )
    sigs = []
    for line in lines:
        if not line.startswith(_EM_DASH + " "):
            raise MalformedNoteError("signature line does not start with an em dash and space")
        parts = line[2:].split(" ")
        if len(parts) != 2:
            raise MalformedNoteError("signature line must be '— <name> <base64>'")
        name, b64 = parts
        try:
            check_key_name(name)
            raw = b64decode_strict(b64, what="signature")
        except (InvalidKeyError, ValueError) as exc:
            raise MalformedNoteError(f"malformed signature line: {exc}") from exc
        if len(raw) < 5:
            raise MalformedNoteError("signature shorter than a key ID plus one byte")
        sigs.append(NoteSignature(name, raw[:4], raw[4:], line + "\n"))
    return Note(text, tuple(sigs))


def open_note(note: str | bytes, verifiers: Iterable[SignatureVerifier]) -> tuple[Note, tuple]:
    """Parse a note and verify it against trusted keys (c2sp.org/signed-note "Signatures").

    Signatures whose (name, key ID) match no verifier are ignored. If a matching
    signature fails, the whole note is rejected.

    Args:
        note: The signed note.
        verifiers: Trusted verifiers.

    Returns:
        ``(note, verified)`` where ``verified`` is the tuple of
        ``(verifier, NoteSignature)`` pairs that verified, in note order.

    Raises:
        MalformedNoteError: If the note does not parse.
        InvalidSignatureError: If a trusted key's signature fails, or no trusted
            key signed the note.

    """
    parsed = parse_note(note)
    by_id = {(v.name, bytes(v.key_id)): v for v in verifiers}
    text = parsed.text.encode("utf-8")
    verified = []
    seen = set()
    for sig in parsed.signatures:
        v = by_id.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify_signature(text, sig.signature):
            raise InvalidSignatureError(
                f"signature by {sig.name}+{sig.key_id.hex()} does not verify",
                metadata={"name": sig.name, "key_id": sig.key_id.hex()},
            )
        if (sig.name, sig.key_id) not in seen:
            seen.add((sig.name, sig.key_id))
            verified.append((v, sig))
    if not verified:
        raise InvalidSignatureError(
            "note is not signed by any trusted key",
            metadata={"trusted": ",".join(f"{n}+{k.hex()}" for n, k in by_id)},
        )
    return parsed, tuple(verified)


@runtime_checkable
class Ed25519SigningKey(Protocol):
    """An Ed25519 private key held elsewhere (an HSM, a KMS): it signs, it does not give its seed.

    Attributes:
        public_key: 32-byte Ed25519 public key (RFC 8032).

    """

    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with pure Ed25519 (RFC 8032 §5.1.6); returns the 64-byte signature."""
        ...


def check_signing_key(name: str, key: Ed25519SigningKey) -> bytes:
    """The 32-byte public key of an external Ed25519 signing key named ``name``.

    Raises:
        InvalidKeyError: no ``sign`` method, or ``public_key`` is not a valid Ed25519 key.

    """
    public = getattr(key, "public_key", None)
    if (
        not callable(getattr(key, "sign", None))
        or not isinstance(public, bytes | bytearray)
        or len(public) != 32
    ):
        raise InvalidKeyError(
            "an Ed25519 signing key needs a 32-byte public_key and a sign() method", metadata={"name": name}
        )
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public))
    except ValueError as exc:
        raise InvalidKeyError("not an Ed25519 public key", metadata={"name": name}) from exc
    return bytes(public)


def sign_with_key(name: str, key: Ed25519SigningKey, message: bytes) -> bytes:
    """``key.sign(message)``, refused unless it is 64 bytes (a key store that misbehaves makes no note).

    Raises:
        InvalidSignatureError: the key returned something other than 64 bytes.

    """
    sig = key.sign(message)
    if not isinstance(sig, bytes | bytearray) or len(sig) != 64:
        raise InvalidSignatureError(
            "the signing key returned no 64-byte Ed25519 signature", metadata={"name": name}
        )
    return bytes(sig)


class NoteSigner:
    """An Ed25519 note signer (signature type 0x01, c2sp.org/signed-note).

    The private key is either a seed held in memory or an external
    :class:`Ed25519SigningKey` (e.g. a key in an HSM, which signs with
    ``CKM_EDDSA``); the note format and key ID are the same.

    Args:
        name: Key name (non-empty, no spaces, no ``+``); for a log, its origin.
        seed: 32-byte Ed25519 private key seed (RFC 8032).
        key: instead of ``seed``, a key that signs (its private half stays where it is).

    Raises:
        InvalidKeyError: If the name, seed or key is invalid, or neither / both are given.

    """

    def __init__(self, name: str, seed: bytes | None = None, *, key: Ed25519SigningKey | None = None) -> None:
        check_key_name(name)
        if (seed is None) == (key is None):
            raise InvalidKeyError(
                "give exactly one of an Ed25519 seed or a signing key", metadata={"name": name}
            )
        self._name = name
        self._seed: bytes | None = None
        if key is not None:
            self._public = check_signing_key(name, key)
            self._sign = functools.partial(sign_with_key, name, key)
        else:
            if not isinstance(seed, bytes | bytearray) or len(seed) != 32:
                raise InvalidKeyError("Ed25519 seed must be 32 bytes", metadata={"name": name})
            self._seed = bytes(seed)
            private = Ed25519PrivateKey.from_private_bytes(self._seed)
            self._public = private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self._sign = private.sign
        self._key_id = key_id(name, SIG_ED25519, self._public)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """Create a signer with a fresh random seed."""
        return cls(name, os.urandom(32))

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Load a Go-style private key ``PRIVATE+KEY+<name>+<hex8>+<b64(0x01||seed)>``.

        Raises:
            InvalidKeyError: If the string is malformed or its key ID does not match.

        """
        parts = skey.split("+", 4) if isinstance(skey, str) else []
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise InvalidKeyError("malformed private key string")
        name, hex_id, b64 = parts[2], parts[3], parts[4]
        try:
            raw = b64decode_strict(b64, what="private key")
        except ValueError as exc:
            raise InvalidKeyError(str(exc)) from exc
        if len(raw) != 33 or raw[0] != SIG_ED25519:
            raise InvalidKeyError("private key must be type 0x01 with a 32-byte seed")
        signer = cls(name, raw[1:])
        if hex_id != signer.key_id.hex():
            raise InvalidKeyError(
                "private key ID does not match its key",
                metadata={"expected": signer.key_id.hex(), "got": hex_id},
            )
        return signer

    @property
    def name(self) -> str:
        """Key name."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """4-byte key ID, ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """32-byte Ed25519 public key."""
        return self._public

    @property
    def vkey(self) -> str:
        """Verifier key ``<name>+<hex8 key ID>+<base64(0x01 || pubkey)>``."""
        b64 = base64.b64encode(bytes([SIG_ED25519]) + self._public).decode()
        return f"{self._name}+{self._key_id.hex()}+{b64}"

    @property
    def skey(self) -> str:
        """Go-style private key string; keep it secret.

        Raises:
            InvalidKeyError: the signer holds no seed (its key signs elsewhere, e.g. in an HSM).

        """
        if self._seed is None:
            raise InvalidKeyError(
                "this signer's private key is not exportable", metadata={"name": self._name}
            )
        b64 = base64.b64encode(bytes([SIG_ED25519]) + self._seed).decode()
        return f"PRIVATE+KEY+{self._name}+{self._key_id.hex()}+{b64}"

    def verifier(self) -> NoteVerifier:
        """Return the matching :class:`NoteVerifier`."""
        return NoteVerifier.from_vkey(self.vkey)

    def sign_raw(self, text: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``text`` (no key ID)."""
        return self._sign(text)

    def signature_line(self, text: str) -> str:
        r"""Return the line ``"— <name> <base64(key ID || sig)>\n"`` for ``text``."""
        sig = self._key_id + self._sign(text.encode("utf-8"))
        return f"{_EM_DASH} {self._name} {base64.b64encode(sig).decode()}\n"

    def sign(self, text: str) -> str:
        r"""Sign ``text`` and return the signed note.

        Args:
            text: Note text; must end in ``\n`` and hold no control characters
                other than newline.

        Returns:
            ``text + "\n" + "— <name> <base64>\n"``.

        Raises:
            MalformedNoteError: If ``text`` is not a valid note text.

        """
        if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
            raise MalformedNoteError("note text must end in a newline and hold no control chars")
        return text + "\n" + self.signature_line(text)


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted note verifier parsed from a vkey (type 0x01 Ed25519 or 0x02 ECDSA).

    Attributes:
        name: Key name.
        key_id: 4-byte key ID.
        sig_type: Signature type byte.
        public_key: Encoded public key (32 bytes Ed25519, or SPKI DER for ECDSA).

    """

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex8>+<base64(type || key)>``.

        Raises:
            InvalidKeyError: If the vkey is malformed, of an unsupported type, of the
                wrong key length, or its key ID does not match (c2sp.org/signed-note).

        """
        parts = vkey.split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3:
            raise InvalidKeyError("vkey must be <name>+<hex key ID>+<base64 key>")
        name, hex_id, b64 = parts
        check_key_name(name)
        if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
            raise InvalidKeyError("vkey key ID must be 8 lowercase hex digits")
        try:
            raw = b64decode_strict(b64, what="vkey")
        except ValueError as exc:
            raise InvalidKeyError(str(exc)) from exc
        if not raw:
            raise InvalidKeyError("vkey has no key bytes")
        sig_type, key = raw[0], raw[1:]
        if sig_type == SIG_ED25519:
            if len(key) != 32:
                raise InvalidKeyError("Ed25519 vkey must hold 32 key bytes")
            expected = key_id(name, SIG_ED25519, key)
        elif sig_type == SIG_ECDSA:
            try:
                pub = serialization.load_der_public_key(key)
            except ValueError as exc:
                raise InvalidKeyError("ECDSA vkey is not an SPKI DER key") from exc
            if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name not in (
                "secp256r1",
                "secp384r1",
                "secp521r1",
            ):
                raise InvalidKeyError("ECDSA vkey must be a NIST P-256/384/521 key")
            expected = hashlib.sha256(key).digest()[:4]
        else:
            raise InvalidKeyError(f"unsupported vkey signature type 0x{sig_type:02x}")
        if bytes.fromhex(hex_id) != expected:
            raise InvalidKeyError(
                "vkey key ID does not match its key",
                metadata={"expected": expected.hex(), "got": hex_id},
            )
        return cls(name, expected, sig_type, key)

    @property
    def vkey(self) -> str:
        """The vkey string this verifier was parsed from."""
        b64 = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def verify_signature(self, text: bytes, signature: bytes) -> bool:
        """Return ``True`` iff ``signature`` (after the key ID) is valid over ``text``.

        Ed25519 results are memoized per (key, text, signature): a node verifies
        the same checkpoint note for every receipt of a batch.
        """
        try:
            if self.sig_type == SIG_ED25519:
                if len(signature) != 64:
                    return False
                return _ed25519_valid(self.public_key, bytes(text), bytes(signature))
            else:
                pub = serialization.load_der_public_key(self.public_key)
                assert isinstance(pub, ec.EllipticCurvePublicKey)
                pub.verify(signature, text, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def verify(self, note: str | bytes) -> str:
        """Verify a signed note signed by this key and return its text.

        Args:
            note: The signed note.

        Returns:
            The note text (including its final newline).

        Raises:
            MalformedNoteError: If the note does not parse.
            InvalidSignatureError: If this key did not sign it, or its signature fails.

        """
        parsed, _ = open_note(note, [self])
        return parsed.text
