r"""Witness cosignatures (c2sp.org/tlog-cosignature): Ed25519 ``cosignature/v1`` and ML-DSA-44.

Ed25519 (signature type 0x04): the signature is ``timestamp u64 BE || ed25519[64]``
over ``"cosignature/v1\ntime <ts>\n" || <checkpoint body>`` (extension lines
included). ML-DSA-44 (type 0x06): ``timestamp u64 || ml-dsa-44[2420]`` over the
``subtree/v1`` structure (origin, 0, size, root; extension lines not covered).
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.checkpoint import Checkpoint
from ledger.errors import InvalidKeyError, InvalidSignatureError, LedgerError
from ledger.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Ed25519SigningKey,
    b64decode_strict,
    check_key_name,
    check_signing_key,
    key_id,
    parse_note,
    sign_with_key,
)

__all__ = [
    "SIG_MLDSA44",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosigned_message",
    "subtree_message",
    "open_cosignatures",
]

SIG_MLDSA44 = 0x06
"""Signature type of ML-DSA-44 subtree/checkpoint cosignatures."""

_MAX_TS = (1 << 63) - 1
_EM_DASH = "\u2014"


def cosigned_message(body: str, timestamp: int) -> bytes:
    """Return the Ed25519 ``cosignature/v1`` signed message for a checkpoint body.

    Args:
        body: The whole checkpoint note text (with extension lines, final newline).
        timestamp: POSIX seconds, ``0 <= timestamp < 2^63``.

    """
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode("utf-8")


def subtree_message(name: str, timestamp: int, checkpoint: Checkpoint) -> bytes:
    """Return the ML-DSA-44 ``subtree/v1`` signed message (TLS encoding) for a checkpoint."""
    n, o = name.encode(), checkpoint.origin.encode()
    if not 1 <= len(n) <= 255 or not 1 <= len(o) <= 255:
        raise InvalidKeyError("cosigner name and origin must be 1-255 bytes for ML-DSA-44")
    return (
        b"subtree/v1\n\x00"
        + bytes([len(n)])
        + n
        + struct.pack(">Q", timestamp)
        + bytes([len(o)])
        + o
        + struct.pack(">QQ", 0, checkpoint.size)
        + checkpoint.root
    )


def _ts(now: datetime | int) -> int:
    ts = now if isinstance(now, int) else int(now.timestamp())
    if not 0 <= ts <= _MAX_TS:
        raise ValueError("cosignature timestamp must be in [0, 2^63)")
    return ts


class CosignatureSigner:
    """A witness's cosigning key: Ed25519 ``cosignature/v1`` (default) or ML-DSA-44.

    Args:
        name: Cosigner name (schema-less URL recommended; no spaces, no ``+``).
        seed: 32-byte private seed (Ed25519 RFC 8032 seed, or ML-DSA-44 ξ seed).
        sig_type: :data:`~ledger.note.SIG_COSIGNATURE_V1` (0x04) or :data:`SIG_MLDSA44`.
        key: instead of ``seed``, an Ed25519 key that signs where it is (an HSM);
            ``cosignature/v1`` only.

    Raises:
        InvalidKeyError: On a bad name, seed length, key or type; neither or both
            of ``seed`` and ``key``.

    """

    def __init__(
        self,
        name: str,
        seed: bytes | None = None,
        *,
        sig_type: int = SIG_COSIGNATURE_V1,
        key: Ed25519SigningKey | None = None,
    ) -> None:
        check_key_name(name)
        if (seed is None) == (key is None):
            raise InvalidKeyError("give exactly one of a cosigner seed or a signing key")
        if key is not None and sig_type != SIG_COSIGNATURE_V1:
            raise InvalidKeyError("an external signing key cosigns with cosignature/v1 (Ed25519) only")
        if seed is not None and (not isinstance(seed, bytes | bytearray) or len(seed) != 32):
            raise InvalidKeyError("cosigner seed must be 32 bytes")
        self._name = name
        self._type = sig_type
        if key is not None:
            self._public = check_signing_key(name, key)
            self._ed_sign = functools.partial(sign_with_key, name, key)
        elif sig_type == SIG_COSIGNATURE_V1:
            private = Ed25519PrivateKey.from_private_bytes(bytes(seed))
            self._ed_sign = private.sign
            self._public = private.public_key().public_bytes_raw()
        elif sig_type == SIG_MLDSA44:
            self._ml = mldsa.MLDSA44PrivateKey.from_seed_bytes(bytes(seed))
            self._public = self._ml.public_key().public_bytes_raw()
        else:
            raise InvalidKeyError(f"unsupported cosignature type 0x{sig_type:02x}")
        self._key_id = key_id(name, sig_type, self._public)

    @property
    def name(self) -> str:
        """Cosigner name."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """4-byte key ID computed with the cosignature type byte."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """Public key bytes (32 for Ed25519, 1312 for ML-DSA-44)."""
        return self._public

    @property
    def vkey(self) -> str:
        """Verifier key ``<name>+<hex8>+<base64(type || pubkey)>``."""
        b64 = base64.b64encode(bytes([self._type]) + self._public).decode()
        return f"{self._name}+{self._key_id.hex()}+{b64}"

    def verifier(self) -> CosignatureVerifier:
        """Return the matching :class:`CosignatureVerifier`."""
        return CosignatureVerifier.from_vkey(self.vkey)

    def cosign(self, body: str, *, now: datetime | int) -> str:
        r"""Cosign a checkpoint body and return the note signature line.

        Args:
            body: Checkpoint note text (origin, size, root, extensions; final newline).
            now: Cosigning time (aware datetime or POSIX seconds).

        Returns:
            ``"— <name> <base64(key ID || timestamp || signature)>\\n"``.

        """
        ts = _ts(now)
        if self._type == SIG_COSIGNATURE_V1:
            sig = self._ed_sign(cosigned_message(body, ts))
        else:
            sig = self._ml.sign(subtree_message(self._name, ts, Checkpoint.parse(body)))
        raw = self._key_id + struct.pack(">Q", ts) + sig
        return f"{_EM_DASH} {self._name} {base64.b64encode(raw).decode()}\n"


@dataclass(frozen=True)
class CosignatureVerifier:
    """A trusted witness key for cosignatures.

    Accepts vkeys of type 0x04 (Ed25519 cosignature), 0x06 (ML-DSA-44) and 0x01
    (an Ed25519 key published as a note vkey, as the witness network does); for
    0x01 the cosignature key ID is recomputed with type byte 0x04.

    Attributes:
        name: Cosigner name.
        key_id: 4-byte key ID that cosignature lines carry.
        sig_type: 0x04 or 0x06.
        public_key: Public key bytes.

    """

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse a witness vkey.

        Raises:
            InvalidKeyError: If malformed, of another type, of the wrong length, or
                if its key ID does not match its key.

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
        sizes = {SIG_ED25519: 32, SIG_COSIGNATURE_V1: 32, SIG_MLDSA44: 1312}
        if sig_type not in sizes:
            raise InvalidKeyError(f"type 0x{sig_type:02x} is not a cosignature key type")
        if len(key) != sizes[sig_type]:
            raise InvalidKeyError(f"type 0x{sig_type:02x} keys are {sizes[sig_type]} bytes")
        if bytes.fromhex(hex_id) != key_id(name, sig_type, key):
            raise InvalidKeyError(
                "vkey key ID does not match its key",
                metadata={"expected": key_id(name, sig_type, key).hex(), "got": hex_id},
            )
        cosig_type = SIG_COSIGNATURE_V1 if sig_type == SIG_ED25519 else sig_type
        return cls(name, key_id(name, cosig_type, key), cosig_type, key)

    @property
    def vkey(self) -> str:
        """The vkey with the cosignature type byte."""
        b64 = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    @staticmethod
    def timestamp_of(signature: bytes) -> int:
        """Return the timestamp (POSIX seconds) in a cosignature (key ID already stripped)."""
        if len(signature) < 8:
            raise ValueError("cosignature shorter than its timestamp")
        return struct.unpack(">Q", signature[:8])[0]

    def verify_signature(self, text: bytes, signature: bytes) -> bool:
        """Return ``True`` iff ``signature`` (``ts || sig``) is a valid cosignature of ``text``."""
        want = 64 if self.sig_type == SIG_COSIGNATURE_V1 else 2420
        if len(signature) != 8 + want:
            return False
        ts = self.timestamp_of(signature)
        if ts > _MAX_TS:
            return False
        try:
            if self.sig_type == SIG_COSIGNATURE_V1:
                body = text.decode("utf-8")
                Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                    signature[8:], cosigned_message(body, ts)
                )
            else:
                cp = Checkpoint.parse(text.decode("utf-8"))
                msg = subtree_message(self.name, ts, cp)
                mldsa.MLDSA44PublicKey.from_public_bytes(self.public_key).verify(signature[8:], msg)
        except (InvalidSignature, ValueError, UnicodeDecodeError, LedgerError):
            return False
        return True


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature.

    Attributes:
        name: Cosigner name.
        key_id: 4-byte key ID.
        timestamp: POSIX seconds the witness put in the cosignature.
        line: The full signature line, ending in a newline.

    """

    name: str
    key_id: bytes
    timestamp: int
    line: str


def open_cosignatures(
    note: str | bytes, verifiers: Iterable[CosignatureVerifier]
) -> tuple[str, tuple[Cosignature, ...]]:
    """Verify the cosignature lines of a note from trusted witnesses.

    Lines of unknown (name, key ID) pairs, including the log's own signature, are
    ignored; a known witness's failing line rejects the note.

    Args:
        note: The (co)signed checkpoint note.
        verifiers: Trusted witness keys.

    Returns:
        ``(note text, verified cosignatures)``; possibly no cosignatures.

    Raises:
        MalformedNoteError: If the note does not parse.
        InvalidSignatureError: If a trusted witness's cosignature fails.

    """
    parsed = parse_note(note)
    by_id = {(v.name, v.key_id): v for v in verifiers}
    text = parsed.text.encode("utf-8")
    out: dict[tuple[str, bytes], Cosignature] = {}
    for sig in parsed.signatures:
        v = by_id.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify_signature(text, sig.signature):
            raise InvalidSignatureError(
                f"cosignature by {sig.name}+{sig.key_id.hex()} does not verify",
                metadata={"name": sig.name, "key_id": sig.key_id.hex()},
            )
        cos = Cosignature(sig.name, sig.key_id, v.timestamp_of(sig.signature), sig.line)
        prev = out.get((sig.name, sig.key_id))
        if prev is None or prev.timestamp < cos.timestamp:
            out[(sig.name, sig.key_id)] = cos
    return parsed.text, tuple(out.values())
