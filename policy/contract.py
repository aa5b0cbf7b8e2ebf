"""Data-sharing contracts: the signed agreement a policy engine enforces.

A contract binds a *provider* organization and a *requester* organization
to named purposes. Each purpose lists the Minimum Necessary Information
(MNI, the paper's A*) and optional fields that trust and the trust budget
may unlock. Both parties sign the contract's *version hash*: the SHA-256 of
the RFC 8785 (JCS) canonical JSON of the contract without ``signatures``
and without the node-local ``retired_at`` status. Signatures are detached
compact JWS (RFC 7515 Appendix F) with ``alg`` ``EdDSA`` over Ed25519
(RFC 8037).

The file format (YAML or JSON) is documented in ``docs/contracts.md``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from policy.errors import (
    ContractInvalidError,
    ContractSignatureError,
    ContractUnsignedError,
    UnknownPurposeError,
)
from policy.paths import NAME_RE, canonical_path, is_valid_path

__all__ = [
    "Contract",
    "ContractSignature",
    "OptionalField",
    "Parties",
    "PartyRef",
    "Purpose",
    "RateLimit",
    "SessionLimits",
    "TrustBudget",
    "HOOK_PACKAGE_PREFIX",
]

#: Per-contract Rego modules must declare ``package accord.hooks.<name>``.
HOOK_PACKAGE_PREFIX = "accord.hooks."

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}$")
_DID_RE = re.compile(r"^did:[a-z0-9]+:[A-Za-z0-9._:%\-]+$")
_SCOPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$")
_PACKAGE_RE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_.]*)\s*$", re.MULTILINE)
#: Bounds that keep every number exact in JSON (RFC 8785 / I-JSON) and Rego.
_MAX_COUNT = 1_000_000_000
_MAX_WINDOW = 10 * 366 * 24 * 3600

_JWS_HEADER = {"alg": "EdDSA", "typ": "accord-contract+jws"}

#: Built-ins a hook may not call: their results depend on more than input
#: and data, so the two engines (and the decision cache) could disagree.
NONDETERMINISTIC_BUILTINS = frozenset(
    {
        "http.send",
        "time.now_ns",
        "rand.intn",
        "uuid.rfc4122",
        "uuid.parse",
        "opa.runtime",
        "net.lookup_ip_addr",
        "trace",
        "print",
    }
)
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_COMMENT_RE = re.compile(r"#[^\n]*")
_CALL_RE = re.compile(r"(?<![\w.])([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*\(")
_KEYWORDS = frozenset({"if", "not", "some", "every", "in", "contains", "else", "with", "as"})


def hook_calls(source: str) -> set[str]:
    """Return the names called as functions in Rego ``source`` (best-effort lexing).

    Strings and comments are skipped; ``data.…`` references and keywords are
    not calls.
    """
    text = _COMMENT_RE.sub("", _STRING_RE.sub('""', source))
    return {
        n
        for n in _CALL_RE.findall(text)
        if n not in _KEYWORDS and not n.startswith(("data.", "input."))
    }


def hook_functions(source: str) -> set[str]:
    """Return the names of functions a Rego module defines (heads at column 0)."""
    text = _COMMENT_RE.sub("", _STRING_RE.sub('""', source))
    return set(re.findall(r"(?m)^([A-Za-z_]\w*)\s*\(", text))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class PartyRef(_Frozen):
    """One party of a contract.

    Attributes:
        org: the organization DID (``did:web:…`` in Accord).
        name: a human-readable organization name.
    """

    org: str
    name: str = Field(min_length=1, max_length=200)

    @field_validator("org")
    @classmethod
    def _org_is_did(cls, v: str) -> str:
        if not _DID_RE.match(v):
            raise ValueError(f"expected an organization DID like 'did:web:example.org', got {v!r}")
        return v


class Parties(_Frozen):
    """The two parties: who provides data and who requests it."""

    provider: PartyRef
    requester: PartyRef

    @model_validator(mode="after")
    def _distinct(self) -> Parties:
        if self.provider.org == self.requester.org:
            raise ValueError("provider and requester must be different organizations")
        return self


class OptionalField(_Frozen):
    """A beyond-MNI field a purpose may release.

    Attributes:
        sensitivity: trust-budget units this field costs per release (≥ 0).
        min_trust: lowest effective trust τ ∈ [0, 1] at which it may be released.
    """

    sensitivity: float = Field(ge=0.0, le=1_000_000.0)
    min_trust: float = Field(ge=0.0, le=1.0)


class Purpose(_Frozen):
    """What the requester may obtain for one declared purpose.

    Attributes:
        mni: the Minimum Necessary Information A*: field paths always released
            when the request is allowed and asks for them.
        optional: beyond-MNI field paths → release conditions.
        required_scopes: scopes the requesting agent's credential must hold.
        aggregates: allowed aggregate kinds/columns (opaque here; read by the
            reconstruction auditor), or None.
        max_records: most records one response may carry, or None.
    """

    mni: list[str] = Field(default_factory=list)
    optional: dict[str, OptionalField] = Field(default_factory=dict)
    required_scopes: list[str] = Field(default_factory=list)
    aggregates: dict[str, Any] | None = None
    max_records: int | None = Field(default=None, ge=1, le=_MAX_COUNT)

    @field_validator("mni")
    @classmethod
    def _mni_paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not is_valid_path(p):
                raise ValueError(f"invalid field path {p!r} (expected e.g. 'patient.age')")
        canon = [canonical_path(p) for p in v]
        if len(set(canon)) != len(canon):
            raise ValueError("duplicate field path in mni")
        return canon

    @field_validator("optional")
    @classmethod
    def _optional_paths(cls, v: dict[str, OptionalField]) -> dict[str, OptionalField]:
        out: dict[str, OptionalField] = {}
        for p, spec in v.items():
            if not is_valid_path(p):
                raise ValueError(f"invalid field path {p!r} (expected e.g. 'patient.age')")
            c = canonical_path(p)
            if c in out:
                raise ValueError(f"duplicate optional field {c!r}")
            out[c] = spec
        return out

    @field_validator("required_scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        for s in v:
            if not _SCOPE_RE.match(s):
                raise ValueError(f"invalid scope {s!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Purpose:
        overlap = sorted(set(self.mni) & set(self.optional))
        if overlap:
            raise ValueError(f"field {overlap[0]!r} is both MNI and optional")
        if not self.mni and not self.optional and not self.aggregates:
            raise ValueError("a purpose must release something (mni, optional or aggregates)")
        return self


class TrustBudget(_Frozen):
    """Beyond-MNI disclosure allowance: sensitivity units per sliding window."""

    units: float = Field(gt=0.0, le=1_000_000.0)
    window_seconds: int = Field(gt=0, le=_MAX_WINDOW)


class RateLimit(_Frozen):
    """At most ``requests`` decisions per ``window_seconds`` per requester org."""

    requests: int = Field(gt=0, le=_MAX_COUNT)
    window_seconds: int = Field(gt=0, le=_MAX_WINDOW)


class SessionLimits(_Frozen):
    """Per-session caps: requests decided and fields released."""

    max_requests: int | None = Field(default=None, gt=0, le=_MAX_COUNT)
    max_fields: int | None = Field(default=None, gt=0, le=_MAX_COUNT)


class ContractSignature(_Frozen):
    """One party's detached JWS over the contract's version hash.

    Attributes:
        org: the signing organization DID (must be a party).
        verification_method: DID URL of the Ed25519 key (``<org>#<fragment>``).
        jws: compact JWS with detached payload (``<header>..<signature>``).
    """

    org: str
    verification_method: str
    jws: str


def _utc(v: datetime, field: str) -> datetime:
    if v.tzinfo is None or v.utcoffset() is None:
        raise ValueError(f"{field} needs a timezone (write e.g. 2026-01-01T00:00:00Z)")
    return v.astimezone(UTC)


class Contract(_Frozen):
    """A signed data-sharing contract (frozen; build with :meth:`load`/:meth:`from_dict`).

    Attributes:
        id: contract identifier, ``[A-Za-z0-9._:-]``, ≤ 200 chars.
        version: positive integer, bumped on every change of terms.
        title: human-readable title.
        parties: provider and requester organizations.
        purposes: purpose name → :class:`Purpose`.
        trust_ceiling: the highest effective trust τ this contract grants, in [0, 1].
        trust_budget: beyond-MNI budget, or None for no budget limit.
        valid_from: start of validity (timezone-aware, stored as UTC).
        valid_until: end of validity, exclusive.
        rate_limit: decision rate per requester org, or None.
        obligations: obligation codes attached to every allowed decision.
        session_limits: per-session caps.
        delegation_orgs: further organizations (DIDs) whose agents may root a
            delegation chain presented by the requester's agents (cross-org
            delegation); empty = only the requester's own agents.
        rego_module: optional Rego v1 source of a contract hook
            (``package accord.hooks.<name>``; see ``docs/contracts.md``).
        retired_at: node-local retirement time (not covered by the hash).
        signatures: the parties' signatures (not covered by the hash).
    """

    id: str
    version: int = Field(ge=1, le=_MAX_COUNT)
    title: str = Field(min_length=1, max_length=500)
    parties: Parties
    purposes: dict[str, Purpose]
    trust_ceiling: float = Field(ge=0.0, le=1.0)
    trust_budget: TrustBudget | None = None
    valid_from: datetime
    valid_until: datetime
    rate_limit: RateLimit | None = None
    obligations: list[str] = Field(default_factory=list)
    session_limits: SessionLimits = Field(default_factory=SessionLimits)
    rego_module: str | None = None
    delegation_orgs: list[str] = Field(default_factory=list)
    retired_at: datetime | None = None
    signatures: list[ContractSignature] = Field(default_factory=list)

    @field_validator("delegation_orgs")
    @classmethod
    def _delegation_orgs(cls, v: list[str]) -> list[str]:
        for org in v:
            if not _DID_RE.match(org):
                raise ValueError(f"delegation_orgs: expected organization DIDs, got {org!r}")
        if len(set(v)) != len(v):
            raise ValueError("delegation_orgs: duplicate organization")
        return v

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"invalid contract id {v!r} (letters, digits, '._:-', ≤ 200)")
        return v

    @field_validator("purposes")
    @classmethod
    def _purposes(cls, v: dict[str, Purpose]) -> dict[str, Purpose]:
        if not v:
            raise ValueError("a contract needs at least one purpose")
        for name in v:
            if not NAME_RE.match(name):
                raise ValueError(f"invalid purpose name {name!r}")
        return v

    @field_validator("obligations")
    @classmethod
    def _obligations(cls, v: list[str]) -> list[str]:
        for o in v:
            if not _SCOPE_RE.match(o):
                raise ValueError(f"invalid obligation code {o!r}")
        if len(set(v)) != len(v):
            raise ValueError("duplicate obligation")
        return v

    @field_validator("valid_from", "valid_until", "retired_at")
    @classmethod
    def _aware(cls, v: datetime | None, info: Any) -> datetime | None:
        if v is None:
            return None
        if v.microsecond:
            raise ValueError(
                f"{info.field_name} must be whole seconds (policy time is Unix seconds)"
            )
        return _utc(v, info.field_name)

    @field_validator("rego_module")
    @classmethod
    def _hook_package(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = _PACKAGE_RE.search(v)
        if not m or not m.group(1).startswith(HOOK_PACKAGE_PREFIX):
            raise ValueError("rego_module must declare 'package accord.hooks.<name>'")
        name = m.group(1)[len(HOOK_PACKAGE_PREFIX) :]
        if not NAME_RE.match(name) or "-" in name:
            raise ValueError(f"invalid hook package name {name!r}")
        for call in hook_calls(v):
            if call in NONDETERMINISTIC_BUILTINS:
                raise ValueError(
                    f"rego_module calls {call}(): hooks must be deterministic "
                    "(read the time from input.now_unix)"
                )
        return v

    @field_validator("valid_until")
    @classmethod
    def _window(cls, v: datetime, info: Any) -> datetime:
        start = info.data.get("valid_from")
        if start is not None and v <= start:
            raise ValueError("valid_until must be after valid_from")
        return v

    # ------------------------------------------------------------ loading

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contract:
        """Parse and validate a contract document.

        Args:
            data: the contract as a JSON/YAML mapping.

        Returns:
            The frozen contract.

        Raises:
            ContractInvalidError: naming the first offending field path in
                ``metadata["field"]``.
        """
        if not isinstance(data, Mapping):
            raise ContractInvalidError(
                f"contract must be a mapping, got {type(data).__name__}",
                metadata={"field": ""},
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            cid = data.get("id") if isinstance(data.get("id"), str) else ""
            raise ContractInvalidError(
                f"contract {cid or '?'} invalid at {loc or '<root>'}: {msg}",
                metadata={"field": loc, "contract_id": cid, "errors": str(len(exc.errors()))},
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract from a ``.yaml``/``.yml`` or ``.json`` file.

        Raises:
            ContractInvalidError: unreadable file, bad YAML/JSON, or invalid contract.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContractInvalidError(
                f"cannot read contract {p}: {exc.strerror}", metadata={"path": str(p)}
            ) from None
        except UnicodeDecodeError:
            raise ContractInvalidError(
                f"contract {p} is not UTF-8 text", metadata={"path": str(p), "field": ""}
            ) from None
        try:
            data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ContractInvalidError(
                f"contract {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: "
                f"{str(exc).splitlines()[0]}",
                metadata={"path": str(p), "field": ""},
            ) from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (defaults omitted, times RFC 3339 UTC)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def dump(self, path: str | Path) -> None:
        """Write the contract as YAML (``.yaml``/``.yml``) or JSON (otherwise)."""
        p = Path(path)
        d = self.to_dict()
        if p.suffix in (".yaml", ".yml"):
            p.write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), encoding="utf-8")
        else:
            p.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # ------------------------------------------------------------ hashing

    def terms(self) -> dict[str, Any]:
        """Return the signed terms: the JSON form without signatures and retirement."""
        d = self.to_dict()
        d.pop("signatures", None)
        d.pop("retired_at", None)
        return d

    @functools.cached_property
    def version_hash(self) -> str:
        """Hex SHA-256 of the RFC 8785 JCS encoding of :meth:`terms` (64 chars).

        Computed once per instance (the model is frozen). ``model_copy`` keeps the
        cached value, so it is only used for fields outside the terms
        (``signatures``, ``retired_at``).
        """
        return hashlib.sha256(rfc8785.dumps(self.terms())).hexdigest()

    @property
    def hook_name(self) -> str | None:
        """The ``<name>`` of the module's ``package accord.hooks.<name>``, or None."""
        if self.rego_module is None:
            return None
        m = _PACKAGE_RE.search(self.rego_module)
        assert m is not None  # validated
        return m.group(1)[len(HOOK_PACKAGE_PREFIX) :]

    # ------------------------------------------------------------ signing

    def sign(self, *, org: str, verification_method: str, seed: bytes) -> Contract:
        """Return a copy carrying ``org``'s detached JWS over the version hash.

        An earlier signature by the same org is replaced.

        Args:
            org: signing organization DID; must be a party.
            verification_method: DID URL ``<org>#<fragment>`` naming the key.
            seed: 32-byte Ed25519 private key seed (RFC 8032).

        Returns:
            A new :class:`Contract`.

        Raises:
            ContractSignatureError: ``org`` is not a party, the method does not
                belong to ``org``, or ``seed`` is not 32 bytes.
        """
        self._check_signer(org, verification_method)
        if not isinstance(seed, bytes | bytearray) or len(seed) != 32:
            raise ContractSignatureError("Ed25519 seed must be 32 bytes", metadata={"org": org})
        header = dict(_JWS_HEADER, kid=verification_method)
        h64 = _b64u(rfc8785.dumps(header))
        signing_input = h64 + "." + _b64u(self.version_hash.encode("ascii"))
        sig = Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(signing_input.encode("ascii"))
        new = ContractSignature(
            org=org, verification_method=verification_method, jws=f"{h64}..{_b64u(sig)}"
        )
        sigs = [s for s in self.signatures if s.org != org] + [new]
        return self.model_copy(update={"signatures": sigs})

    def verify_signatures(self, resolve_key: Callable[[str], bytes]) -> None:
        """Check that both parties signed this exact version.

        Args:
            resolve_key: verification-method DID URL → 32-byte raw Ed25519
                public key; may raise ``KeyError``/``LookupError`` when unknown.

        Raises:
            ContractUnsignedError: a party's signature is missing.
            ContractSignatureError: a signature is malformed, by a non-party,
                under an unknown key, or does not verify.
        """
        seen: set[str] = set()
        for s in self.signatures:
            self._check_signer(s.org, s.verification_method)
            if s.org in seen:
                raise ContractSignatureError(
                    f"two signatures by {s.org}", metadata={"org": s.org, "contract_id": self.id}
                )
            seen.add(s.org)
            self._verify_one(s, resolve_key)
        for role, party in (
            ("provider", self.parties.provider),
            ("requester", self.parties.requester),
        ):
            if party.org not in seen:
                raise ContractUnsignedError(
                    f"contract {self.id} v{self.version} lacks the {role}'s signature "
                    f"({party.org})",
                    metadata={"contract_id": self.id, "org": party.org, "role": role},
                )

    def _check_signer(self, org: str, verification_method: str) -> None:
        parties = {self.parties.provider.org, self.parties.requester.org}
        if org not in parties:
            raise ContractSignatureError(
                f"{org} is not a party of contract {self.id}",
                metadata={"org": org, "contract_id": self.id},
            )
        if verification_method.split("#", 1)[0] != org or "#" not in verification_method:
            raise ContractSignatureError(
                f"verification method {verification_method!r} does not belong to {org}",
                metadata={"org": org, "verification_method": verification_method},
            )

    def _verify_one(self, s: ContractSignature, resolve_key: Callable[[str], bytes]) -> None:
        meta = {"org": s.org, "contract_id": self.id, "verification_method": s.verification_method}
        parts = s.jws.split(".")
        if len(parts) != 3 or parts[1] != "":
            raise ContractSignatureError(
                "JWS must be compact with a detached payload (<header>..<signature>)", metadata=meta
            )
        try:
            header = json.loads(_b64u_decode(parts[0]))
            sig = _b64u_decode(parts[2])
        except (ValueError, TypeError):
            raise ContractSignatureError("JWS is not valid base64url/JSON", metadata=meta) from None
        if not isinstance(header, dict) or header.get("alg") != "EdDSA":
            raise ContractSignatureError(
                "JWS alg must be EdDSA, got "
                f"{header.get('alg') if isinstance(header, dict) else None!r}",
                metadata=meta,
            )
        if header.get("kid") != s.verification_method:
            raise ContractSignatureError(
                f"JWS kid {header.get('kid')!r} != verification method {s.verification_method!r}",
                metadata=meta,
            )
        if set(header) - {"alg", "kid", "typ"} or "crit" in header:
            raise ContractSignatureError("JWS header has unsupported parameters", metadata=meta)
        try:
            raw = resolve_key(s.verification_method)
        except LookupError:
            raise ContractSignatureError(
                f"unknown verification method {s.verification_method}", metadata=meta
            ) from None
        if not isinstance(raw, bytes | bytearray) or len(raw) != 32:
            raise ContractSignatureError("resolved key is not 32 bytes", metadata=meta)
        signing_input = parts[0] + "." + _b64u(self.version_hash.encode("ascii"))
        try:
            Ed25519PublicKey.from_public_bytes(bytes(raw)).verify(
                sig, signing_input.encode("ascii")
            )
        except InvalidSignature:
            raise ContractSignatureError(
                f"signature by {s.org} does not verify over version hash {self.version_hash[:16]}…",
                metadata=meta,
            ) from None

    # ------------------------------------------------------------ queries

    def in_force(self, now: datetime) -> bool:
        """Return True if ``valid_from <= now < valid_until`` and not retired at ``now``.

        Raises:
            ValueError: ``now`` is naive.
        """
        n = _utc(now, "now")
        if self.retired_at is not None and n >= self.retired_at:
            return False
        return self.valid_from <= n < self.valid_until

    def purpose(self, name: str) -> Purpose:
        """Return the named purpose.

        Raises:
            UnknownPurposeError: the contract has no such purpose.
        """
        try:
            return self.purposes[name]
        except KeyError:
            raise UnknownPurposeError(
                f"contract {self.id} has no purpose {name!r} "
                f"(has: {', '.join(sorted(self.purposes))})",
                metadata={"contract_id": self.id, "purpose": name},
            ) from None

    def check_fields(self, available: Collection[str]) -> None:
        """Check every field the contract names exists in a dataset schema.

        A contract field is satisfied when it equals an available path or is a
        prefix of one (``patient`` is satisfied by ``patient.age``), or lies
        below one (``patient.age`` is satisfied by ``patient``).

        Args:
            available: field paths the provider's dataset offers.

        Raises:
            ContractInvalidError: naming the first missing field
                (``metadata["field"]`` = ``purposes.<p>.mni`` or ``…optional``).
        """
        avail = {canonical_path(a) for a in available}
        for pname, purpose in sorted(self.purposes.items()):
            for kind, fields in (("mni", purpose.mni), ("optional", sorted(purpose.optional))):
                for f in fields:
                    if not any(
                        a == f or a.startswith(f + ".") or f.startswith(a + ".") for a in avail
                    ):
                        raise ContractInvalidError(
                            f"contract {self.id}: purpose {pname!r} {kind} field {f!r} "
                            "is not in the dataset schema",
                            metadata={
                                "contract_id": self.id,
                                "field": f"purposes.{pname}.{kind}",
                                "missing": f,
                            },
                        )

    def retire(self, *, at: datetime) -> Contract:
        """Return a copy retired from ``at`` (floored to the second) on.

        Retirement is node-local status, outside the version hash: the
        parties' signatures stay valid, and the engines deny with
        ``CONTRACT_NOT_IN_FORCE`` from then on.

        Raises:
            ContractInvalidError: ``at`` is naive.
        """
        try:
            when = _utc(at, "retired_at")
        except ValueError as exc:
            raise ContractInvalidError(str(exc), metadata={"field": "retired_at"}) from None
        return self.model_copy(update={"retired_at": when.replace(microsecond=0)})


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def _b64u_decode(s: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_\-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
