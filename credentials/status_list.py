"""W3C Bitstring Status List v1.0: status lists, entries, and status checking.

* ``StatusList``: the bitstring (§2.1); index 0 is the left-most (most
  significant) bit of the first byte. ``encode`` gives the ``encodedList``
  value (§2.2): GZIP-compressed, then multibase base64url without padding
  (``u`` prefix). The minimum length is 131,072 bits (16 KiB), for herd
  privacy (§6.1).
* ``status_entry`` builds a ``BitstringStatusListEntry`` (§2.1) for a
  credential's ``credentialStatus``; ``status_list_credential`` builds the
  unsigned ``BitstringStatusListCredential`` (§2.2) that publishes the list.
* ``StatusListCache`` is a ``StatusChecker``: it fetches a status list
  credential through an injected function (the node uses gRPC), verifies its
  proof (and that its issuer is the checked credential's issuer), caches it
  for a TTL, and checks the bit (§3.2 "Validate Algorithm").
"""

from __future__ import annotations

import base64
import binascii
import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from credentials.dids import KeyResolver
from credentials.errors import (
    CredentialError,
    MalformedCredentialError,
    RevokedError,
    StatusListError,
    StatusUnavailableError,
    SuspendedError,
)
from credentials.loader import VC_V2_CONTEXT_URL
from credentials.proofs import format_datetime
from credentials.verifier import StatusChecker, verify_credential

__all__ = [
    "MIN_STATUS_LIST_LENGTH",
    "STATUS_PURPOSES",
    "StatusChecker",
    "StatusList",
    "StatusListCache",
    "status_entry",
    "status_list_credential",
]

#: Minimum bitstring length, bits (Bitstring Status List v1.0 §6.1: 16 KiB).
MIN_STATUS_LIST_LENGTH = 131_072
#: Largest decompressed list accepted, bytes (zip-bomb guard): 16 MiB = 134M entries.
MAX_STATUS_LIST_BYTES = 16 * 1024 * 1024
#: Status purposes that Accord checks.
STATUS_PURPOSES = ("revocation", "suspension")

Purpose = Literal["revocation", "suspension"]


class StatusList:
    """A mutable bitstring of credential statuses (one bit per credential).

    Args:
        length: number of entries (bits); a positive multiple of 8, at least
            ``MIN_STATUS_LIST_LENGTH`` unless ``allow_short`` (for tests only).

    Raises:
        StatusListError: invalid length.

    """

    __slots__ = ("_bits",)

    def __init__(self, length: int = MIN_STATUS_LIST_LENGTH, *, allow_short: bool = False) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0 or length % 8:
            raise StatusListError("status list length must be a positive multiple of 8")
        if length < MIN_STATUS_LIST_LENGTH and not allow_short:
            raise StatusListError(
                f"status list length must be at least {MIN_STATUS_LIST_LENGTH} bits",
                metadata={"length": str(length)},
            )
        if length > MAX_STATUS_LIST_BYTES * 8:
            raise StatusListError("status list too long")
        self._bits = bytearray(length // 8)

    @property
    def length(self) -> int:
        """Number of entries (bits)."""
        return len(self._bits) * 8

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.length:
            raise StatusListError(
                f"status list index out of range [0, {self.length})",
                metadata={"index": str(index), "length": str(self.length)},
            )
        return index >> 3, 7 - (index & 7)

    def get(self, index: int) -> bool:
        """Return the status bit at ``index`` (True = revoked/suspended).

        Raises:
            StatusListError: index out of range.

        """
        byte, shift = self._locate(index)
        return bool((self._bits[byte] >> shift) & 1)

    def set(self, index: int, value: bool) -> None:
        """Set the status bit at ``index``.

        Raises:
            StatusListError: index out of range.

        """
        byte, shift = self._locate(index)
        if value:
            self._bits[byte] |= 1 << shift
        else:
            self._bits[byte] &= ~(1 << shift) & 0xFF

    def to_bytes(self) -> bytes:
        """Return the raw bitstring, ``length / 8`` bytes."""
        return bytes(self._bits)

    def encode(self) -> str:
        """Return the ``encodedList`` value: ``"u"`` + base64url(GZIP(bitstring)), no padding.

        GZIP is written with mtime 0, so equal lists encode identically.
        """
        compressed = gzip.compress(bytes(self._bits), compresslevel=6, mtime=0)
        return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, encoded: str, *, min_length: int = MIN_STATUS_LIST_LENGTH) -> StatusList:
        """Decode an ``encodedList`` value (§3.2 steps on expansion).

        Args:
            encoded: ``"u"`` + base64url (no padding) of a GZIP stream.
            min_length: the smallest accepted length, bits.

        Raises:
            StatusListError: not multibase base64url, not GZIP, larger than
                ``MAX_STATUS_LIST_BYTES`` once decompressed, or shorter than ``min_length``.

        """
        if not isinstance(encoded, str) or not encoded.startswith("u") or "=" in encoded:
            raise StatusListError("encodedList must be multibase base64url without padding")
        body = encoded[1:]
        try:
            compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, binascii.Error):
            raise StatusListError("encodedList is not base64url") from None
        inflater = zlib.decompressobj(wbits=31)  # GZIP container only
        try:
            raw = inflater.decompress(compressed, MAX_STATUS_LIST_BYTES + 1)
        except zlib.error:
            raise StatusListError("encodedList is not GZIP data") from None
        if len(raw) > MAX_STATUS_LIST_BYTES or inflater.unconsumed_tail:
            raise StatusListError("status list too large once decompressed")
        if not inflater.eof:
            raise StatusListError("encodedList GZIP stream is truncated")
        if len(raw) * 8 < min_length or not raw:
            raise StatusListError(
                f"status list shorter than {min_length} bits",
                metadata={"length": str(len(raw) * 8)},
            )
        result = cls.__new__(cls)
        result._bits = bytearray(raw)
        return result


def status_entry(*, list_credential_id: str, index: int, purpose: Purpose) -> dict[str, Any]:
    """Build a ``BitstringStatusListEntry`` (§2.1) for ``credentialStatus``.

    Args:
        list_credential_id: URL (id) of the status list credential.
        index: the credential's position in the list (``statusListIndex``,
            written as a decimal string as the spec requires).
        purpose: ``"revocation"`` or ``"suspension"``.

    Raises:
        StatusListError: negative index, unknown purpose, or empty id.

    """
    if purpose not in STATUS_PURPOSES:
        raise StatusListError(f"statusPurpose must be one of {STATUS_PURPOSES}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise StatusListError("statusListIndex must be a non-negative integer")
    if not isinstance(list_credential_id, str) or not list_credential_id:
        raise StatusListError("list_credential_id must be a non-empty string")
    return {
        "id": f"{list_credential_id}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_credential_id,
    }


def status_list_credential(
    *,
    issuer: str,
    credential_id: str,
    purpose: Purpose,
    status_list: StatusList,
    valid_from: datetime,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """Build the unsigned ``BitstringStatusListCredential`` (§2.2) publishing ``status_list``.

    Args:
        issuer: the issuer's DID; must be the issuer of the credentials it covers.
        credential_id: the list credential's id, i.e. the URL entries point to.
        purpose: ``"revocation"`` or ``"suspension"``.
        status_list: the bitstring.
        valid_from: start of validity (aware).
        valid_until: optional end of validity (aware).

    Returns:
        The unsigned credential; sign it with ``issue_credential``.

    Raises:
        StatusListError: unknown purpose.
        MalformedCredentialError: naive datetimes.

    """
    if purpose not in STATUS_PURPOSES:
        raise StatusListError(f"statusPurpose must be one of {STATUS_PURPOSES}")
    credential: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT_URL],
        "id": credential_id,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": format_datetime(valid_from),
        "credentialSubject": {
            "id": f"{credential_id}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": status_list.encode(),
        },
    }
    if valid_until is not None:
        credential["validUntil"] = format_datetime(valid_until)
    return credential


@dataclass(frozen=True)
class _Cached:
    issuer: str
    purpose: str
    bits: StatusList
    expires: float


class StatusListCache:
    """A ``StatusChecker`` that fetches, verifies and caches status list credentials.

    Args:
        fetch: status list credential URL -> the credential (parsed JSON);
            any exception it raises means "unavailable".
        resolve_key: resolves the list credentials' verification methods.
        ttl_seconds: how long a verified list is reused, seconds.
        clock: monotonic clock, seconds (injected for tests).
        min_length: smallest accepted list length, bits.

    Checking fails closed: a list that cannot be fetched or verified raises
    ``StatusUnavailableError``.

    """

    def __init__(
        self,
        fetch: Callable[[str], dict[str, Any]],
        *,
        resolve_key: KeyResolver,
        ttl_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
        min_length: int = MIN_STATUS_LIST_LENGTH,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self._fetch = fetch
        self._resolve_key = resolve_key
        self._ttl = ttl_seconds
        self._clock = clock
        self._min_length = min_length
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def invalidate(self, url: str | None = None) -> None:
        """Drop the cached list for ``url`` (all lists if None)."""
        with self._lock:
            if url is None:
                self._cache.clear()
            else:
                self._cache.pop(url, None)

    def check(self, credential: dict[str, Any], *, now: datetime) -> None:
        """Check every ``BitstringStatusListEntry`` of ``credential`` (§3.2).

        Raises:
            RevokedError: a revocation bit is set.
            SuspendedError: a suspension bit is set.
            StatusUnavailableError: a list could not be fetched or verified, or its
                issuer is not the credential's issuer.
            MalformedCredentialError: a malformed entry, or the index is outside the list.

        """
        entries = credential.get("credentialStatus")
        if entries is None:
            return
        entries = entries if isinstance(entries, list) else [entries]
        issuer = credential.get("issuer")
        issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
        for entry in entries:
            self._check_entry(entry, issuer, credential.get("id"), now)

    def _check_entry(self, entry: Any, issuer: Any, cred_id: Any, now: datetime) -> None:
        if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
            raise MalformedCredentialError("credentialStatus must be a BitstringStatusListEntry")
        purpose = entry.get("statusPurpose")
        if purpose not in STATUS_PURPOSES:
            raise MalformedCredentialError(
                f"unsupported statusPurpose {str(purpose)[:50]!r}",
                metadata={"statusPurpose": str(purpose)[:50]},
            )
        raw_index = entry.get("statusListIndex")
        if not isinstance(raw_index, str) or not raw_index.isdigit() or len(raw_index) > 12:
            raise MalformedCredentialError("statusListIndex must be a decimal string")
        url = entry.get("statusListCredential")
        if not isinstance(url, str) or not url:
            raise MalformedCredentialError("statusListCredential must be a URL")
        cached = self._get(url, now)
        if cached.issuer != issuer:
            raise StatusUnavailableError(
                "status list issuer is not the credential's issuer",
                metadata={"list_issuer": cached.issuer[:200], "issuer": str(issuer)[:200]},
            )
        if cached.purpose != purpose:
            raise StatusUnavailableError(
                "status list purpose does not match the entry",
                metadata={"expected": purpose, "actual": cached.purpose},
            )
        index = int(raw_index)
        if index >= cached.bits.length:
            raise MalformedCredentialError(
                "statusListIndex outside the status list",
                metadata={"index": raw_index, "length": str(cached.bits.length)},
            )
        if cached.bits.get(index):
            meta = {"statusListCredential": url[:200], "index": raw_index}
            if isinstance(cred_id, str):
                meta["credential_id"] = cred_id[:200]
            if purpose == "revocation":
                raise RevokedError("credential is revoked", metadata=meta)
            raise SuspendedError("credential is suspended", metadata=meta)

    def _get(self, url: str, now: datetime) -> _Cached:
        current = self._clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and current < cached.expires:
            return cached
        try:
            document = self._fetch(url)
        except Exception as exc:  # the injected transport may fail in any way
            raise StatusUnavailableError(
                f"status list fetch failed: {type(exc).__name__}",
                metadata={"statusListCredential": url[:200]},
            ) from None
        cached = self._verify_list(url, document, now, current)
        with self._lock:
            self._cache[url] = cached
        return cached

    def _verify_list(self, url: str, document: Any, now: datetime, current: float) -> _Cached:
        try:
            verified = verify_credential(document, resolve_key=self._resolve_key, now=now)
            if "BitstringStatusListCredential" not in verified.types:
                raise MalformedCredentialError("not a BitstringStatusListCredential")
            if verified.id != url:
                raise MalformedCredentialError("status list credential id is not its URL")
            subject = verified.subject
            if subject.get("type") != "BitstringStatusList":
                raise MalformedCredentialError("credentialSubject must be a BitstringStatusList")
            bits = StatusList.decode(subject.get("encodedList"), min_length=self._min_length)
        except CredentialError as exc:
            raise StatusUnavailableError(
                f"status list credential rejected: {exc.reason}",
                metadata={"statusListCredential": url[:200], "cause": exc.reason},
            ) from exc
        return _Cached(
            issuer=verified.issuer,
            purpose=str(subject.get("statusPurpose")),
            bits=bits,
            expires=current + self._ttl,
        )
