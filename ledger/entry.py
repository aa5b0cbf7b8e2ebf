"""Disclosure entries: the leaf data of the ledger (field names and digests, never values)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ledger.commit import CommitState
from ledger.errors import InvalidEntryError

__all__ = [
    "EntryKind",
    "DisclosureEntry",
    "AppendResult",
    "StoredEntry",
    "MAX_ENTRY_BYTES",
    "parse_rfc3339_utc",
]

MAX_ENTRY_BYTES = 65535
"""Largest canonical entry (bytes): tlog-tiles entry bundles use uint16 length prefixes."""

EntryKind = Literal[
    "disclosure",
    "received",
    "denial",
    "drift",
    "equivocation",
    "audit_denial",
    # issue #15: node-local events (never in a receipt): an operator's approval decision or an
    # expiry, a behavioural anomaly, an onward-sharing refusal, a retention purge, an exposure alert
    "approval",
    "anomaly",
    "onward_refusal",
    "retention_purge",
    "exposure_alert",
    # a console write action (federation.console)
    "operator_action",
]

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$")


def parse_rfc3339_utc(value: str) -> datetime:
    """Parse an RFC 3339 timestamp that must be in UTC (``Z`` or ``+00:00``).

    Raises:
        ValueError: If the string is not RFC 3339 or not UTC.

    """
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    head, _, frac = value.partition(".")
    text = value
    if frac:  # Python accepts at most 6 fractional digits
        digits = re.match(r"\d+", frac).group(0)  # type: ignore[union-attr]
        text = head + "." + digits[:6].ljust(6, "0") + frac[len(digits) :]
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.utcoffset() is None or dt.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ValueError(f"{value!r} is not in UTC")
    return dt


class DisclosureEntry(BaseModel):
    """One ledger entry: who disclosed which field names to whom, under which contract.

    The leaf data is :meth:`canonical_bytes` (RFC 8785 JCS of the model). Values
    are never recorded, only field names, counts and digests.

    Attributes:
        kind: ``disclosure`` | ``received`` | ``denial`` | ``drift`` |
            ``equivocation`` | ``audit_denial``; node-local events (issue #15):
            ``approval`` | ``anomaly`` | ``onward_refusal`` | ``retention_purge`` |
            ``exposure_alert``; ``operator_action`` (a console write action).
        disclosure_id: Idempotency key (non-empty, at most 256 characters).
        time: RFC 3339 timestamp in UTC.
        provider_org: Provider organization DID.
        requester_org: Requester organization DID.
        requester_agent: Requesting agent DID, or ``""``.
        provider_agent: Provider agent DID, or ``""``.
        contract_id: Contract identifier.
        contract_hash: Hex hash of the contract version.
        purpose: Declared purpose.
        fields_requested: Field names requested.
        fields_released: Field names released.
        fields_stripped: Field names stripped by the MNI gate.
        record_count: Number of records released (``>= 0``).
        decision: ``allow`` or ``deny``.
        reason: Reason code, or ``""``.
        decision_hash: Lowercase hex hash of the policy decision (or ``""``).
        request_digest: Lowercase hex SHA-256 of the request (or ``""``).
        response_digest: Lowercase hex SHA-256 of the response (or ``""``).
        effective_trust: Effective trust in ``[0, 1]``.
        provider_leaf_hash: For ``received`` entries, base64 of the provider log's
            32-byte leaf hash; ``""`` otherwise.
        extra: Additional string metadata (never data values).

    Raises:
        pydantic.ValidationError: On construction, if any field is invalid.

    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    kind: EntryKind
    disclosure_id: str = Field(min_length=1, max_length=256)
    time: str
    provider_org: str
    requester_org: str
    requester_agent: str = ""
    provider_agent: str = ""
    contract_id: str
    contract_hash: str
    purpose: str
    fields_requested: tuple[str, ...] = ()
    fields_released: tuple[str, ...] = ()
    fields_stripped: tuple[str, ...] = ()
    record_count: int = Field(default=0, ge=0, le=2**53 - 1)
    decision: Literal["allow", "deny"]
    reason: str = ""
    decision_hash: str = ""
    request_digest: str = ""
    response_digest: str = ""
    effective_trust: float = Field(default=0.0, ge=0.0, le=1.0)
    provider_leaf_hash: str = ""
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _time_utc(cls, v: str) -> str:
        parse_rfc3339_utc(v)
        return v

    @field_validator("contract_hash", "decision_hash")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX.match(v):
            raise ValueError("must be lowercase hex")
        return v

    @field_validator("request_digest", "response_digest")
    @classmethod
    def _sha256(cls, v: str) -> str:
        if v and not _SHA256_HEX.match(v):
            raise ValueError("must be 64 lowercase hex digits (SHA-256) or empty")
        return v

    @field_validator("fields_requested", "fields_released", "fields_stripped")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not name or len(name) > 256:
                raise ValueError("field names must be 1-256 characters")
        return v

    @field_validator("effective_trust")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @model_validator(mode="after")
    def _received_ref(self) -> DisclosureEntry:
        if self.kind == "received":
            try:
                raw = base64.b64decode(self.provider_leaf_hash, validate=True)
            except binascii.Error as exc:
                raise ValueError("provider_leaf_hash must be base64") from exc
            if len(raw) != 32 or base64.b64encode(raw).decode() != self.provider_leaf_hash:
                raise ValueError("provider_leaf_hash must be canonical base64 of 32 bytes")
        elif self.provider_leaf_hash:
            raise ValueError("provider_leaf_hash is only set on 'received' entries")
        return self

    def canonical_bytes(self) -> bytes:
        """Return the leaf data: RFC 8785 (JCS) canonical JSON of the entry, UTF-8 bytes.

        A fast path equivalent to ``rfc8785.dumps(model_dump(mode="json"))`` (checked
        by a property test): member names are ASCII so code-point order is UTF-16
        order; strings use JSON's minimal escaping; the one float goes through
        the RFC 8785 number serialiser. Falls back to ``rfc8785`` when an ``extra``
        key is outside the Basic Multilingual Plane's pre-surrogate range.

        Raises:
            InvalidEntryError: If a string holds a lone surrogate (not UTF-8 encodable).

        """
        extra = self.extra
        trust = self.effective_trust
        if any(max(k, default="\0") >= "\ud800" for k in extra):
            data = rfc8785.dumps(self.model_dump(mode="json"))
        elif 1e-4 <= trust < 1.0:
            # In this range Python's shortest float repr is exactly ECMAScript's
            # Number serialisation (no exponent, no trailing ".0"), so one sorted
            # json.dumps of the field dict is already the JCS text.
            try:
                data = _JSON_SORTED(self.__dict__).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidEntryError("entry holds a string that is not valid Unicode") from exc
        else:
            parts = []
            for name in _SORTED_FIELDS:
                value = getattr(self, name)
                if name == "effective_trust":
                    enc = rfc8785.dumps(value).decode("ascii")
                elif name == "extra":
                    enc = _JSON(dict(sorted(extra.items())))
                else:
                    enc = _JSON(value)
                parts.append(f'"{name}":{enc}')
            try:
                data = ("{" + ",".join(parts) + "}").encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidEntryError("entry holds a string that is not valid Unicode") from exc
        return data

    @classmethod
    def from_canonical_bytes(cls, data: bytes) -> DisclosureEntry:
        """Parse leaf data back into an entry.

        Raises:
            InvalidEntryError: If the bytes are not a valid entry.

        """
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise InvalidEntryError(f"leaf data is not a disclosure entry: {exc}") from exc

    def timestamp(self) -> datetime:
        """Return :attr:`time` as an aware UTC ``datetime``."""
        return parse_rfc3339_utc(self.time)


_SORTED_FIELDS = sorted(DisclosureEntry.model_fields)
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_JSON_SORTED = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True
).encode


@dataclass(frozen=True)
class AppendResult:
    """The outcome of appending one entry.

    Attributes:
        index: Zero-based log index assigned (durably) to the entry.
        leaf_hash: 32-byte RFC 9162 leaf hash of the stored entry.
        duplicate: ``True`` if the ``disclosure_id`` was already logged; index and
            hash are then those of the stored entry.

    """

    index: int
    leaf_hash: bytes
    duplicate: bool


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored in the log.

    Attributes:
        index: Zero-based log index.
        leaf_hash: 32-byte leaf hash.
        entry: The entry.
        sequenced_at: When the index was assigned (aware UTC datetime).
        state: Commit state at the time of the read.

    """

    index: int
    leaf_hash: bytes
    entry: DisclosureEntry
    sequenced_at: datetime
    state: CommitState
