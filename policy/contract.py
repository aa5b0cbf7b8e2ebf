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
from typing import Annotated, Any, Literal

import rfc8785
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from policy.decision import to_micros
from policy.errors import (
    ContractInvalidError,
    ContractSignatureError,
    ContractUnsignedError,
    PolicyError,
    UnknownPurposeError,
)
from policy.identifiers import check_identifier, is_identifier
from policy.paths import NAME_RE, canonical_path, is_valid_path

__all__ = [
    "AGGREGATE_KINDS",
    "Aggregates",
    "Contract",
    "ContractIssue",
    "check_resources",
    "contract_schema",
    "lint_contract",
    "load_document",
    "parse_hook_header",
    "ContentControls",
    "ContractSignature",
    "FieldType",
    "MAX_PATTERN_CHARS",
    "OptionalField",
    "ScreeningPolicy",
    "compile_pattern",
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

_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+\-]\d{2}:\d{2})$")
_SCOPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$")
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
#: What a hook may import: the Rego v1 keywords, its input, and the contract data.
HOOK_IMPORTS_ALLOWED = ("rego.v1", "future.keywords", "input", "data.accord_contracts")

_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t\r]+)|(?P<nl>\n)|(?P<comment>#[^\n]*)"
    r'|(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)'
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>[0-9][0-9.eE+\-]*)|(?P<punct>:=|==|!=|<=|>=|\S)"
)


def _rego_tokens(source: str) -> list[tuple[str, str, int]]:
    """Split Rego source into ``(kind, text, line)`` tokens, comments and blanks dropped.

    Strings (``"…"`` with escapes, raw `` `…` ``) are single tokens, so text
    inside a string or a comment is never read as code.

    Raises:
        ValueError: an unterminated string.
    """
    out: list[tuple[str, str, int]] = []
    line, pos = 1, 0
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if m is None or (m.lastgroup == "punct" and m.group() in ('"', "`")):
            raise ValueError(f"unterminated string at line {line}")
        kind, text = m.lastgroup or "", m.group()
        if kind not in ("ws", "comment", "nl"):
            out.append((kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return out


def _ref_at(tokens: list[tuple[str, str, int]], i: int) -> tuple[str, int]:
    """Read a Rego reference (``a.b["c"]``) starting at token ``i``, on one line."""
    if i >= len(tokens) or tokens[i][0] != "name":
        raise ValueError("expected a reference")
    line = tokens[i][2]
    parts = [tokens[i][1]]
    i += 1
    while i + 1 < len(tokens) and tokens[i][2] == line:
        if tokens[i][1] == "." and tokens[i + 1][0] == "name":
            parts.append(tokens[i + 1][1])
            i += 2
        elif (
            tokens[i][1] == "["
            and tokens[i + 1][0] == "str"
            and i + 2 < len(tokens)
            and tokens[i + 2][1] == "]"
        ):
            parts.append(json.loads(tokens[i + 1][1]))
            i += 3
        else:
            break
    return ".".join(parts), i


def parse_hook_header(source: str) -> tuple[str, list[str]]:
    """Parse a Rego module's package clause and imports (from tokens, not a text search).

    The package clause must be the module's first statement (Rego v1); each
    ``import`` keyword starts an import of the reference that follows it.
    Text inside strings and comments is never read as a clause. Which rules
    the module really defines is checked on the compiled module
    (:func:`policy.engine_regopy.hook_plan`).

    Args:
        source: Rego v1 module source.

    Returns:
        ``(package, imports)``, e.g. ``("accord.hooks.consent", ["rego.v1"])``.

    Raises:
        ValueError: no package clause first, two package clauses, or a
            malformed import or string.
    """
    tokens = _rego_tokens(source)
    if not tokens or tokens[0][1] != "package":
        raise ValueError("a Rego module must start with its package clause")
    package, i = _ref_at(tokens, 1)
    imports: list[str] = []
    for j in range(i, len(tokens)):
        if tokens[j][0] == "name" and tokens[j][1] == "package":
            raise ValueError("a Rego module has exactly one package clause")
        if tokens[j][0] == "name" and tokens[j][1] == "import":
            ref, _ = _ref_at(tokens, j + 1)
            imports.append(ref)
    return package, imports


def _import_allowed(ref: str) -> bool:
    return any(ref == a or ref.startswith(a + ".") for a in HOOK_IMPORTS_ALLOWED)


def hook_calls(source: str) -> set[str]:
    """Return the names called as functions in Rego ``source`` (best-effort lexing).

    Strings and comments are skipped; ``data.…`` references and keywords are
    not calls. (The authoritative list of built-ins a hook uses comes from
    its compiled plan: :func:`policy.engine_regopy.hook_plan`.)
    """
    text = _COMMENT_RE.sub("", _STRING_RE.sub('""', source))
    return {n for n in _CALL_RE.findall(text) if n not in _KEYWORDS and not n.startswith(("data.", "input."))}


def hook_functions(source: str) -> set[str]:
    """Return the names of functions a Rego module defines (heads at column 0)."""
    text = _COMMENT_RE.sub("", _STRING_RE.sub('""', source))
    return set(re.findall(r"(?m)^([A-Za-z_]\w*)\s*\(", text))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, str_strip_whitespace=False)


def _rfc3339(v: Any) -> Any:
    """Accept a timezone-aware datetime (YAML) or an RFC 3339 date-time string (JSON)."""
    if isinstance(v, str):
        if not _RFC3339_RE.match(v):
            raise ValueError(f"expected an RFC 3339 date-time like 2026-01-01T00:00:00Z, got {v[:40]!r}")
        return datetime.fromisoformat(v.replace("z", "Z").replace("Z", "+00:00"))
    return v


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


def _micro_exact(v: float) -> float:
    """Contract numbers are exact in micro-units: at most 6 decimal places."""
    to_micros(v)
    return v


Micro = Annotated[float, AfterValidator(_micro_exact)]


def _identifier(kind: str) -> Any:
    def check(v: str) -> str:
        try:
            return check_identifier(v, kind)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(check)


def _distinct(name: str) -> Any:
    def check(v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate {name}")
        return v

    return AfterValidator(check)


Did = Annotated[str, _identifier("did")]
ResourceId = Annotated[str, _identifier("resource")]
SubjectPattern = Annotated[str, _identifier("subject")]
ColumnId = Annotated[str, _identifier("column")]


class PartyRef(_Frozen):
    """One party of a contract.

    Attributes:
        org: the organization DID (``did:web:…`` in Accord).
        name: a human-readable organization name.
    """

    org: Did
    name: str = Field(min_length=1, max_length=200)


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
        sensitivity: trust-budget units this field costs per release (≥ 0,
            at most 6 decimals).
        min_trust: lowest effective trust τ ∈ [0, 1] at which it may be
            released (at most 6 decimals; compared as integer micro-units).
    """

    sensitivity: Micro = Field(ge=0.0, le=1_000_000.0)
    min_trust: Micro = Field(ge=0.0, le=1.0)


#: Aggregate kinds the provider answers (``federation.datasets``).
AGGREGATE_KINDS = ("count", "sum", "avg")


class Aggregates(_Frozen):
    """Which aggregate queries a purpose may ask (read by the node and the auditor).

    Attributes:
        dataset: the one data set (resource) aggregates may read.
        kinds: allowed kinds, a non-empty subset of ``count``, ``sum``, ``avg``.
        columns: the sensitive columns that may be aggregated (non-empty).
        allow_ids: whether predicates may name explicit record ids (default false).
    """

    dataset: ResourceId
    kinds: Annotated[list[Literal["count", "sum", "avg"]], _distinct("aggregate kind")] = Field(min_length=1)
    columns: Annotated[list[ColumnId], _distinct("column")] = Field(min_length=1, max_length=256)
    allow_ids: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        """Read a key like the mapping this section used to be (``federation.datasets`` reads it so).

        Every key is always present (no default can widen), so ``default`` is
        only returned for names that are not keys of the section.
        """
        return getattr(self, key) if key in type(self).model_fields else default

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def check_dataset(self, columns: Collection[str], *, where: str = "aggregates") -> None:
        """Check every column exists in the data set's columns.

        Raises:
            ValueError: naming the first unknown column.
        """
        for c in self.columns:
            if c not in columns:
                raise ValueError(f"{where}: data set {self.dataset!r} has no column {c!r}")


class Purpose(_Frozen):
    """What the requester may obtain for one declared purpose.

    Attributes:
        resources: the resources (data sets) requests under this purpose may
            read; anything else is refused (``RESOURCE_NOT_IN_CONTRACT``).
        subjects: the record keys they may ask for: ``"*"`` (any) or exact
            keys, no globs (``SUBJECT_NOT_IN_CONTRACT`` otherwise).
        required_scopes: scopes the requesting agent's credential must hold
            (write ``[]`` for none: the key is required).
        mni: the Minimum Necessary Information A*: field paths always released
            when the request is allowed and asks for them.
        optional: beyond-MNI field paths → release conditions.
        aggregates: allowed aggregate queries, or None.
        max_records: most records one response may carry, or None.
    """

    resources: Annotated[list[ResourceId], _distinct("resource")] = Field(min_length=1, max_length=256)
    subjects: Annotated[list[SubjectPattern], _distinct("subject")] = Field(min_length=1, max_length=1024)
    required_scopes: list[str] = Field(max_length=256)
    mni: list[str] = Field(default_factory=list, max_length=1024)
    optional: dict[str, OptionalField] = Field(default_factory=dict, max_length=1024)
    aggregates: Aggregates | None = None
    max_records: int | None = Field(default=None, ge=1, le=_MAX_COUNT)

    @field_validator("mni")
    @classmethod
    def _mni_paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not is_valid_path(p) or not is_identifier(p, "field"):
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
            if not is_valid_path(p) or not is_identifier(p, "field"):
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
        if len(set(v)) != len(v):
            raise ValueError("duplicate scope")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Purpose:
        overlap = sorted(set(self.mni) & set(self.optional))
        if overlap:
            raise ValueError(f"field {overlap[0]!r} is both MNI and optional")
        if not self.mni and not self.optional and not self.aggregates:
            raise ValueError("a purpose must release something (mni, optional or aggregates)")
        if self.aggregates is not None and self.aggregates.dataset not in self.resources:
            raise ValueError(
                f"aggregates.dataset {self.aggregates.dataset!r} is not one of the purpose's resources"
            )
        self._check_nesting()
        return self

    def _check_nesting(self) -> None:
        """Refuse a path listed under weaker conditions than one of its descendants.

        Asking for a path releases everything below it, so a listed path must
        be at least as strict as every listed descendant: an MNI path may only
        have MNI descendants; an optional path needs ``min_trust`` ≥ each
        descendant's and ``sensitivity`` ≥ the sum of its optional
        descendants' (what asking for each of them would cost).
        """
        listed: dict[str, OptionalField | None] = {p: None for p in self.mni}
        listed.update(self.optional)
        for p, spec in sorted(listed.items()):
            below = sorted(d for d in listed if d.startswith(p + "."))
            if not below:
                continue
            cost = 0
            for d in below:
                dspec = listed[d]
                if dspec is None:
                    continue  # an MNI descendant: no condition to bypass
                if spec is None:
                    raise ValueError(
                        f"{p!r} is MNI but its descendant {d!r} is optional: asking for {p!r} "
                        f"would release {d!r} without its trust and budget checks"
                    )
                if to_micros(spec.min_trust) < to_micros(dspec.min_trust):
                    raise ValueError(
                        f"{p!r} needs min_trust {spec.min_trust} but its descendant {d!r} needs "
                        f"{dspec.min_trust}: a path may not be weaker than what lies below it"
                    )
                cost += to_micros(dspec.sensitivity)
            if spec is not None and to_micros(spec.sensitivity) < cost:
                raise ValueError(
                    f"{p!r} costs less (sensitivity {spec.sensitivity}) than its optional "
                    "descendants together: a path may not be cheaper than what lies below it"
                )


#: Longest ``pattern`` a contract may declare, characters (patterns are hostile input).
MAX_PATTERN_CHARS = 256
#: Most memory RE2 may use to compile one contract pattern, bytes.
PATTERN_MAX_MEM = 1 << 20
#: Longest value a string field may declare (``max_length``), characters.
MAX_VALUE_CHARS = 1_000_000
_ENUM_VALUE = (
    Annotated[str, Field(min_length=1, max_length=256)] | Annotated[int, Field(ge=-(2**53), le=2**53)]
)


def compile_pattern(pattern: str) -> Any:
    """Compile a contract's value pattern with RE2 (linear time: no catastrophic backtracking).

    Patterns come from the other party and are hostile: they are bounded to
    :data:`MAX_PATTERN_CHARS` and compiled by RE2 (``google-re2``), which has
    no backreferences or look-around and matches in time linear in the value,
    within :data:`PATTERN_MAX_MEM` bytes.

    Args:
        pattern: an RE2 regular expression (matched against the whole value).

    Returns:
        The compiled ``re2`` pattern.

    Raises:
        ValueError: too long, or not a valid RE2 pattern (the message names why).
    """
    import re2

    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern is longer than {MAX_PATTERN_CHARS} characters ({len(pattern)})")
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = PATTERN_MAX_MEM
    try:
        return re2.compile(pattern, opts)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(exc)
        raise ValueError(f"pattern {pattern[:60]!r} is not a valid RE2 expression: {detail}") from None


class FieldType(_Frozen):
    """The declared type and constraints of one field's values (``content.fields.<path>``).

    Both parties sign it (it is inside the contract's terms). The provider
    checks every released value against it before the value leaves
    (:func:`policy.gate.check_values`).

    Attributes:
        type: ``string``, ``integer``, ``number``, ``boolean`` or ``enum``.
        values: for ``enum``: the allowed values (strings or integers, 1..256, distinct).
        minimum / maximum: for ``integer``/``number``: inclusive bounds.
        pattern: for ``string``: an RE2 expression the whole value must match
            (at most :data:`MAX_PATTERN_CHARS` characters).
        max_length: for ``string``: most characters a value may have.
        free_text: for ``string``: whether prose is allowed. ``false`` (the
            default) admits a single token (no whitespace or control
            characters, at most 256 characters); ``true`` admits prose, which
            is screened for personal data and prompt injection at the boundary
            (:mod:`policy.screening`).
    """

    type: Literal["string", "integer", "number", "boolean", "enum"]
    values: list[_ENUM_VALUE] | None = Field(default=None, min_length=1, max_length=256)
    minimum: int | float | None = None
    maximum: int | float | None = None
    pattern: str | None = Field(default=None, min_length=1)
    max_length: int | None = Field(default=None, ge=1, le=MAX_VALUE_CHARS)
    free_text: bool = False

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            compile_pattern(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FieldType:
        t = self.type
        if t == "enum":
            if self.values is None:
                raise ValueError("type enum needs 'values' (the allowed values)")
            keys = [(type(x).__name__, x) for x in self.values]
            if len(set(keys)) != len(keys):
                raise ValueError("duplicate value in 'values'")
        elif self.values is not None:
            raise ValueError(f"'values' applies to type enum only, not {t}")
        numeric = t in ("integer", "number")
        for name in ("minimum", "maximum"):
            v = getattr(self, name)
            if v is None:
                continue
            if not numeric:
                raise ValueError(f"{name!r} applies to types integer and number only, not {t}")
            if isinstance(v, bool) or abs(v) > 2**53:
                raise ValueError(f"{name!r} must be a number within ±2^53")
            if t == "integer" and not isinstance(v, int):
                raise ValueError(f"{name!r} of an integer field must be an integer")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is greater than maximum {self.maximum}")
        if t != "string":
            for name in ("pattern", "max_length"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name!r} applies to type string only, not {t}")
            if self.free_text:
                raise ValueError(f"'free_text' applies to type string only, not {t}")
        return self

    @functools.cached_property
    def compiled(self) -> Any:
        """The compiled RE2 pattern, or None."""
        return compile_pattern(self.pattern) if self.pattern is not None else None


class ScreeningPolicy(_Frozen):
    """What the boundary does with screened free text (``content.screening``).

    Attributes:
        personal_data: provider side, a released free-text value in which
            personal data was found: ``strip`` the field (default), ``deny``
            the request, or ``allow`` it (recorded in the entry either way).
        injection: provider side, a released free-text value that looks like
            a prompt injection: ``strip`` (default) or ``deny``.
        received: requester side, incoming free text flagged by screening:
            ``label`` it for the agents (default) or ``quarantine`` it (the
            agent gets the record without the flagged fields).
    """

    personal_data: Literal["strip", "deny", "allow"] = "strip"
    injection: Literal["strip", "deny"] = "strip"
    received: Literal["label", "quarantine"] = "label"


class ContentControls(_Frozen):
    """Value-level controls of a contract (``content``): typed fields and free-text screening.

    A contract without ``content`` behaves as before: values are not typed
    and not screened (and its version hash is unchanged, since defaults are
    omitted from the signed terms).

    Attributes:
        fields: field path → :class:`FieldType` (each path one the contract
            names under some purpose's ``mni`` or ``optional``, or below one).
        on_violation: a released value that breaks its type: ``strip`` the
            field (default) or ``deny`` the request. Either way the ledger
            entry records the field and the reason.
        screening: what screening verdicts lead to.
    """

    fields: dict[str, FieldType] = Field(default_factory=dict, max_length=1024)
    on_violation: Literal["strip", "deny"] = "strip"
    screening: ScreeningPolicy = Field(default_factory=ScreeningPolicy)

    @field_validator("fields")
    @classmethod
    def _paths(cls, v: dict[str, FieldType]) -> dict[str, FieldType]:
        out: dict[str, FieldType] = {}
        for p, spec in v.items():
            if not is_valid_path(p) or not is_identifier(p, "field"):
                raise ValueError(f"invalid field path {p!r} (expected e.g. 'patient.age')")
            c = canonical_path(p)
            if c in out:
                raise ValueError(f"duplicate typed field {c!r}")
            out[c] = spec
        return out

    @property
    def free_text_fields(self) -> frozenset[str]:
        """Paths declared ``free_text: true``."""
        return frozenset(p for p, t in self.fields.items() if t.free_text)


class TrustBudget(_Frozen):
    """Beyond-MNI disclosure allowance: sensitivity units per sliding window."""

    units: Micro = Field(gt=0.0, le=1_000_000.0)
    window_seconds: int = Field(gt=0, le=_MAX_WINDOW)


class RateLimit(_Frozen):
    """At most ``requests`` decisions per ``window_seconds`` per requester org."""

    requests: int = Field(gt=0, le=_MAX_COUNT)
    window_seconds: int = Field(gt=0, le=_MAX_WINDOW)


class SessionLimits(_Frozen):
    """Per-session caps: requests decided and fields released (null: no cap, written out)."""

    max_requests: int | None = Field(gt=0, le=_MAX_COUNT)
    max_fields: int | None = Field(gt=0, le=_MAX_COUNT)


# ---------------------------------------------------------------- issue #15 (next/approvals):
# human approval, onward flow and retention, exposure tolerance. Optional blocks: a contract
# without them hashes as before (``to_dict`` omits defaults).


class ApprovalRule(_Frozen):
    """When an allowed request must wait for an operator's approval (any condition met).

    Attributes:
        fields: the request needs approval if any of these field paths would be released.
        min_sensitivity: ... if the released beyond-MNI fields' summed ``sensitivity`` is at least this.
        below_trust: ... if the effective trust τ is below this, in [0, 1].
        budget_fraction: ... if the trust budget spent in the window, this request included,
            reaches this fraction of ``trust_budget.units``, in (0, 1].
        purposes: ... if the request's purpose is one of these.
    """

    fields: Annotated[list[str], _distinct("approval field")] = Field(default_factory=list, max_length=256)
    min_sensitivity: Micro | None = Field(default=None, gt=0.0, le=1_000_000.0)
    below_trust: Micro | None = Field(default=None, gt=0.0, le=1.0)
    budget_fraction: Micro | None = Field(default=None, gt=0.0, le=1.0)
    purposes: Annotated[list[str], _distinct("approval purpose")] = Field(
        default_factory=list, max_length=256
    )

    @model_validator(mode="after")
    def _not_vacuous(self) -> ApprovalRule:
        if not (self.fields or self.purposes) and all(
            v is None for v in (self.min_sensitivity, self.below_trust, self.budget_fraction)
        ):
            raise ValueError("an approval rule needs at least one condition")
        for f in self.fields:
            if not is_valid_path(f):
                raise ValueError(f"invalid field path {f!r} in approval.fields")
        return self


class ApprovalPolicy(_Frozen):
    """Human approval of some requests (docs/content-controls.md, "Human approval").

    Attributes:
        require: the conditions (:class:`ApprovalRule`).
        expires_seconds: a pending request not decided within this many seconds expires (denied).
        grant_seconds: how long an approval covers requests of the same shape (batching).
    """

    require: ApprovalRule
    expires_seconds: int = Field(default=3600, gt=0, le=7 * 24 * 3600)
    grant_seconds: int = Field(default=3600, gt=0, le=30 * 24 * 3600)


class OnwardFlow(_Frozen):
    """What the requester's node may do with data received under this contract.

    Attributes:
        allowed: the data may be passed on to a third organization.
        orgs: when ``allowed``, only to these organizations (empty: any pinned peer).
        retention_seconds: the requester's node purges what it received after this
            many seconds (None: no limit set by the contract).
    """

    allowed: bool = False
    orgs: Annotated[list[Did], _distinct("onward organization")] = Field(default_factory=list, max_length=64)
    retention_seconds: int | None = Field(default=None, gt=0, le=_MAX_WINDOW)


class ExposureTolerance(_Frozen):
    """The highest attempted over-exposure rate (before the gate) tolerated per window.

    Attributes:
        max_attempted_oer: largest share of released disclosures whose source
            offered a field beyond the purpose's MNI, in [0, 1].
        window_seconds: the sliding window.
        min_disclosures: the rate is judged only once this many disclosures are in the window.
        ceiling_step: how much the pair's trust ceiling drops each time it is exceeded.
    """

    max_attempted_oer: Micro = Field(ge=0.0, le=1.0)
    window_seconds: int = Field(default=3600, gt=0, le=_MAX_WINDOW)
    min_disclosures: int = Field(default=10, gt=0, le=1_000_000)
    ceiling_step: Micro = Field(default=0.1, gt=0.0, le=1.0)


class BaselineLimits(_Frozen):
    """Behavioural baselines and throttling for the pair (:mod:`policy.baselines`).

    Attributes:
        window_seconds: history kept per agent and per pair.
        recent_seconds: the part of it a sudden shift is judged on.
        probe_min_events: requests in the window before probing is judged.
        probe_min_fields: distinct fields asked for and not released that make probing.
        rate_factor: a recent rate this many times the key's own earlier rate is a shift.
        rate_min_recent: and at least this many requests in ``recent_seconds``.
        novelty_ratio: share of recent requests with a purpose or field never seen before.
        suspend_seconds: how long a probing agent is refused (``AGENT_SUSPENDED_ANOMALY``).
        session_requests: the request cap a tightened session gets (``SESSION_THROTTLED``).
        trust_penalty: τ penalty per anomaly, in [0, 1] (recovers with the trust half-life).
    """

    window_seconds: int = Field(default=3600, gt=1, le=30 * 24 * 3600)
    recent_seconds: int = Field(default=60, gt=0, le=24 * 3600)
    probe_min_events: int = Field(default=6, gt=0, le=100_000)
    probe_min_fields: int = Field(default=4, gt=0, le=10_000)
    rate_factor: Micro = Field(default=5.0, gt=1.0, le=1_000_000.0)
    rate_min_recent: int = Field(default=20, gt=0, le=1_000_000)
    novelty_ratio: Micro = Field(default=0.6, gt=0.0, le=1.0)
    suspend_seconds: int = Field(default=900, gt=0, le=30 * 24 * 3600)
    session_requests: int = Field(default=10, gt=0, le=1_000_000)
    trust_penalty: Micro = Field(default=0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _windows(self) -> BaselineLimits:
        if self.recent_seconds >= self.window_seconds:
            raise ValueError("recent_seconds must be shorter than window_seconds")
        return self


class ContractSignature(_Frozen):
    """One party's detached JWS over the contract's version hash.

    Attributes:
        org: the signing organization DID (must be a party).
        verification_method: DID URL of the Ed25519 key (``<org>#<fragment>``).
        jws: compact JWS with detached payload (``<header>..<signature>``).
    """

    org: str = Field(max_length=256)
    verification_method: str = Field(max_length=512)
    jws: str = Field(max_length=1024)


def _utc(v: datetime, field: str) -> datetime:
    if v.tzinfo is None or v.utcoffset() is None:
        raise ValueError(f"{field} needs a timezone (write e.g. 2026-01-01T00:00:00Z)")
    return v.astimezone(UTC)


class Contract(_Frozen):
    """A signed data-sharing contract (frozen; build with :meth:`load`/:meth:`from_dict`).

    Attributes:
        id: contract identifier (:mod:`policy.identifiers` kind ``contract``).
        version: positive integer, bumped on every change of terms.
        title: human-readable title.
        parties: provider and requester organizations.
        purposes: purpose name → :class:`Purpose`.
        trust_ceiling: the highest effective trust τ this contract grants, in [0, 1].
        trust_budget: beyond-MNI budget, or None for no budget limit (the key
            is required: write ``null`` for none).
        valid_from: start of validity (timezone-aware, stored as UTC).
        valid_until: end of validity, exclusive.
        rate_limit: decision rate per requester org, or None (required key).
        obligations: obligation codes attached to every allowed decision.
        session_limits: per-session caps (required key).
        delegation_orgs: further organizations (DIDs) whose agents may root a
            delegation chain presented by the requester's agents (cross-org
            delegation); empty = only the requester's own agents.
        rego_module: optional Rego v1 source of a contract hook
            (``package accord.hooks.<name>``; see ``docs/contracts.md``).
        content: typed values and free-text screening (:class:`ContentControls`),
            or None (values untyped, unscreened: the behaviour of contracts
            written before it).
        retired_at: node-local retirement time (not covered by the hash).
        signatures: the parties' signatures (not covered by the hash).
        approval: requests that wait for an operator (:class:`ApprovalPolicy`), or None.
        onward: onward sharing and retention at the requester (:class:`OnwardFlow`), or None
            (no onward sharing, no retention limit).
        exposure_tolerance: the attempted-OER limit per window (:class:`ExposureTolerance`), or None.
        baselines: behavioural baselines and throttling for the pair (:class:`BaselineLimits`), or None.
    """

    id: Annotated[str, _identifier("contract")]
    version: int = Field(ge=1, le=_MAX_COUNT)
    title: str = Field(min_length=1, max_length=500)
    parties: Parties
    purposes: dict[str, Purpose] = Field(max_length=256)
    trust_ceiling: Micro = Field(ge=0.0, le=1.0)
    trust_budget: TrustBudget | None
    valid_from: Timestamp
    valid_until: Timestamp
    rate_limit: RateLimit | None
    session_limits: SessionLimits
    obligations: list[str] = Field(default_factory=list, max_length=64)
    rego_module: str | None = None
    delegation_orgs: Annotated[list[Did], _distinct("organization in delegation_orgs")] = Field(
        default_factory=list, max_length=64
    )
    content: ContentControls | None = None
    retired_at: Timestamp | None = None
    signatures: list[ContractSignature] = Field(default_factory=list, max_length=8)
    # issue #15 (next/approvals): optional, omitted from the terms when absent
    approval: ApprovalPolicy | None = None
    onward: OnwardFlow | None = None
    exposure_tolerance: ExposureTolerance | None = None
    baselines: BaselineLimits | None = None

    @field_validator("purposes")
    @classmethod
    def _purposes(cls, v: dict[str, Purpose]) -> dict[str, Purpose]:
        if not v:
            raise ValueError("a contract needs at least one purpose")
        for name in v:
            if not NAME_RE.match(name) or not is_identifier(name, "purpose"):
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
            raise ValueError(f"{info.field_name} must be whole seconds (policy time is Unix seconds)")
        return _utc(v, info.field_name)

    @field_validator("rego_module")
    @classmethod
    def _hook_package(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if len(v) > 65_536:
            raise ValueError("rego_module is larger than 64 KiB")
        package, imports = parse_hook_header(v)
        if not package.startswith(HOOK_PACKAGE_PREFIX):
            raise ValueError(f"rego_module must declare 'package accord.hooks.<name>', declares {package!r}")
        name = package[len(HOOK_PACKAGE_PREFIX) :]
        if not NAME_RE.match(name) or "-" in name:
            raise ValueError(f"invalid hook package name {name!r}")
        for ref in imports:
            if not _import_allowed(ref):
                raise ValueError(
                    f"rego_module imports {ref}: a hook may import only " + ", ".join(HOOK_IMPORTS_ALLOWED)
                )
        for call in hook_calls(v):
            if call in NONDETERMINISTIC_BUILTINS:
                raise ValueError(
                    f"rego_module calls {call}(): hooks must be deterministic "
                    "(read the time from input.now_unix)"
                )
        return v

    @model_validator(mode="after")
    def _typed_fields_named(self) -> Contract:
        """Every typed field lies at, above or below a field some purpose names."""
        if self.content is None:
            return self
        named = {p for pur in self.purposes.values() for p in (*pur.mni, *pur.optional)}
        for f in self.content.fields:
            if not any(n == f or n.startswith(f + ".") or f.startswith(n + ".") for n in named):
                raise ValueError(f"content.fields names {f!r}, which no purpose lists under mni or optional")
        return self

    @field_validator("valid_until")
    @classmethod
    def _window(cls, v: datetime, info: Any) -> datetime:
        start = info.data.get("valid_from")
        if start is not None and v <= start:
            raise ValueError("valid_until must be after valid_from")
        return v

    # ------------------------------------------------------------ loading

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "",
        lines: Mapping[tuple[str, ...], int] | None = None,
    ) -> Contract:
        """Parse and validate a contract document, strictly.

        Unknown keys, wrong types (no coercion: ``"0.5"`` is not a number,
        ``"false"`` not a boolean), numbers with more than 6 decimals and
        missing required keys are errors; no missing key widens what is
        allowed.

        Args:
            data: the contract as a JSON/YAML mapping.
            source: the file it came from, for messages.
            lines: key path → line number (from :func:`load_document`).

        Returns:
            The frozen contract.

        Raises:
            ContractInvalidError: naming the first offending key path in
                ``metadata["field"]`` (and ``path``/``line`` when known), and the
                error count in ``metadata["errors"]``.
        """
        issues = _issues(cls, data, source=source, lines=lines or {})
        if isinstance(issues, Contract):
            return issues
        first = issues[0]
        cid = data.get("id") if isinstance(data, Mapping) and isinstance(data.get("id"), str) else ""
        meta = {"field": first.key, "contract_id": cid[:200], "errors": str(len(issues))}
        if source:
            meta["path"] = source
        if first.line:
            meta["line"] = str(first.line)
        raise ContractInvalidError(f"contract {cid[:200] or '?'} invalid: {first}", metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract from a ``.yaml``/``.yml`` or ``.json`` file, strictly.

        A duplicated key anywhere in the document is an error (YAML and JSON).

        Raises:
            ContractInvalidError: unreadable file, bad or duplicate-key YAML/JSON,
                or an invalid contract (with the file and line in the message).
        """
        data, text = _read_document(path)
        try:
            return cls.from_dict(data, source=str(path))
        except ContractInvalidError:
            pass  # again, with the line of every key (computed only for invalid files)
        return cls.from_dict(data, source=str(path), lines=_line_map(text))

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
        return parse_hook_header(self.rego_module)[0][len(HOOK_PACKAGE_PREFIX) :]

    # ------------------------------------------------------------ signing

    def sign(
        self,
        *,
        org: str,
        verification_method: str,
        seed: bytes | None = None,
        signer: Callable[[bytes], bytes] | None = None,
    ) -> Contract:
        """Return a copy carrying ``org``'s detached JWS over the version hash.

        An earlier signature by the same org is replaced.

        Args:
            org: signing organization DID; must be a party.
            verification_method: DID URL ``<org>#<fragment>`` naming the key.
            seed: 32-byte Ed25519 private key seed (RFC 8032), or
            signer: a function returning the 64-byte Ed25519 signature of its
                argument (a key held in an HSM: the seed never leaves it).
                Exactly one of ``seed`` and ``signer``.

        Returns:
            A new :class:`Contract`.

        Raises:
            ContractSignatureError: ``org`` is not a party, the method does not
                belong to ``org``, or ``seed`` is not 32 bytes.
        """
        self._check_signer(org, verification_method)
        if signer is None and (not isinstance(seed, bytes | bytearray) or len(seed) != 32):
            raise ContractSignatureError("Ed25519 seed must be 32 bytes", metadata={"org": org})
        if signer is not None and seed is not None:
            raise ContractSignatureError("give a seed or a signer, not both", metadata={"org": org})
        header = dict(_JWS_HEADER, kid=verification_method)
        h64 = _b64u(rfc8785.dumps(header))
        signing_input = h64 + "." + _b64u(self.version_hash.encode("ascii"))
        if signer is not None:
            sig = signer(signing_input.encode("ascii"))
        else:
            sig = Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(signing_input.encode("ascii"))
        new = ContractSignature(org=org, verification_method=verification_method, jws=f"{h64}..{_b64u(sig)}")
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
                    f"contract {self.id} v{self.version} lacks the {role}'s signature ({party.org})",
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
                f"JWS alg must be EdDSA, got {header.get('alg') if isinstance(header, dict) else None!r}",
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
            Ed25519PublicKey.from_public_bytes(bytes(raw)).verify(sig, signing_input.encode("ascii"))
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
                f"contract {self.id} has no purpose {name!r} (has: {', '.join(sorted(self.purposes))})",
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
                    if not any(a == f or a.startswith(f + ".") or f.startswith(a + ".") for a in avail):
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


# ------------------------------------------------------------------ strict documents


class ContractIssue:
    """One problem found in a contract document (what ``accord contract lint`` prints).

    Attributes:
        source: the file ("" when not from a file).
        line: 1-based line of the offending key (0 when unknown).
        key: dotted key path (``purposes.research.optional.patient.age.min_trust``).
        message: one-line explanation.
    """

    def __init__(self, source: str, line: int, key: str, message: str) -> None:
        self.source, self.line, self.key, self.message = source, line, key, message

    def __str__(self) -> str:
        where = (
            f"{self.source}:{self.line}: "
            if self.source and self.line
            else (f"{self.source}: " if self.source else (f"line {self.line}: " if self.line else ""))
        )
        return f"{where}{self.key or '<root>'}: {self.message}"

    def __repr__(self) -> str:
        return f"ContractIssue({str(self)!r})"


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """YAML SafeLoader that refuses duplicate keys (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _DuplicateKeyError("<<", key_node.start_mark.line + 1)
            key = self.construct_object(key_node, deep=True)
            try:
                hashable = key in seen
            except TypeError:
                hashable = False
            if hashable:
                raise _DuplicateKeyError(str(key), key_node.start_mark.line + 1)
            try:
                seen.add(key)
            except TypeError:
                pass
        return super().construct_mapping(node, deep=deep)


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Key path → 1-based line of the key, from the YAML node tree (JSON is YAML flow)."""
    out: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = (*path, str(k.value))
                out.setdefault(p, k.start_mark.line + 1)
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = (*path, str(i))
                out.setdefault(p, v.start_mark.line + 1)
                walk(v, p)

    if root is not None:
        walk(root, ())
    return out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k, 0)
        out[k] = v
    return out


_MAX_DOCUMENT_BYTES = 1 << 20


def _read_document(path: str | Path) -> tuple[Any, str]:
    """Read and parse a contract file strictly; returns ``(data, text)`` (see :func:`load_document`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ContractInvalidError(
            f"cannot read contract {p}: {exc.strerror}", metadata={"path": str(p), "field": ""}
        ) from None
    if len(raw) > _MAX_DOCUMENT_BYTES:
        raise ContractInvalidError(
            f"contract {p} is larger than 1 MiB", metadata={"path": str(p), "field": ""}
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractInvalidError(
            f"contract {p} is not UTF-8 text", metadata={"path": str(p), "field": ""}
        ) from None
    is_json = p.suffix == ".json"
    try:
        if is_json:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKeyError as exc:
        line = exc.line or _find_key_line(text, exc.key)
        raise ContractInvalidError(
            f"{p}:{line}: duplicate key {exc.key!r} (a later value would silently override an earlier one)",
            metadata={"path": str(p), "field": exc.key, "line": str(line)},
        ) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ContractInvalidError(
            f"contract {p} is not valid {'JSON' if is_json else 'YAML'}: {str(exc).splitlines()[0]}",
            metadata={"path": str(p), "field": ""},
        ) from None
    return data, text


def load_document(path: str | Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Read a contract file (YAML or JSON) strictly, with the line of every key.

    Args:
        path: ``.json`` files are JSON, anything else YAML (safe loader).

    Returns:
        ``(data, lines)``: the parsed document and key path → line number.

    Raises:
        ContractInvalidError: unreadable, larger than 1 MiB, not UTF-8, not
            valid YAML/JSON, or a key duplicated within one mapping (naming
            the file, line and key).
    """
    data, text = _read_document(path)
    return data, _line_map(text)


def _find_key_line(text: str, key: str) -> int:
    """Line of the second occurrence of ``"key":`` (JSON duplicate keys), 0 if not found."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if f'"{key}"' in line]
    return hits[1] if len(hits) > 1 else (hits[0] if hits else 0)


def _issues(
    cls: type[Contract], data: Any, *, source: str, lines: Mapping[tuple[str, ...], int]
) -> Contract | list[ContractIssue]:
    if not isinstance(data, Mapping):
        return [ContractIssue(source, 0, "", f"a contract must be a mapping, got {type(data).__name__}")]
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            # pydantic appends the union branch / validator name to some locations
            loc = tuple(p for p in loc if not p.startswith(("function-", "nullable[", "json-or-python")))
            line = 0
            for n in range(len(loc), 0, -1):
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (not part of the contract format; check its spelling)"
            elif err["type"] == "missing":
                msg = "required key is missing (write it out: a missing key never widens what is allowed)"
            out.append(ContractIssue(source, line, ".".join(loc), msg))
        return out


def lint_contract(path: str | Path) -> list[ContractIssue]:
    """Return every problem of a contract file (empty list: the contract is valid).

    Checks what :meth:`Contract.load` checks (duplicate keys, unknown keys,
    types, required keys, path nesting, hook header), listing *all* errors,
    each with its line.
    """
    try:
        data, lines = load_document(path)
    except ContractInvalidError as exc:
        return [ContractIssue("", 0, exc.metadata.get("field", ""), str(exc))]
    result = _issues(Contract, data, source=str(path), lines=lines)
    return [] if isinstance(result, Contract) else result


def contract_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of the contract document format, version 2.

    Published as ``policy/schemas/contract.v2.json``. The schema states the
    keys and types; the invariants checked in code (identifier grammars,
    path nesting, the hook's package, 6-decimal numbers) are listed in
    ``docs/contracts.md``.
    """
    schema = Contract.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://w3id.org/accord/schemas/contract.v2.json"
    return schema


def check_resources(contract: Contract, resources: Mapping[str, Collection[str]]) -> None:
    """Check every name a contract uses against the provider's registered resources.

    Args:
        contract: the contract (the node is its provider).
        resources: resource (data set) name → its field paths or column names,
            e.g. ``{"patients": ["patient_id", "age"], "admissions": ["ward", "cost"]}``.

    Raises:
        ContractInvalidError: a purpose names a resource the provider does not
            have, a field (mni/optional) found in none of the purpose's
            resources, or an aggregate column its data set lacks
            (``metadata["field"]`` = the key path, ``metadata["missing"]`` = the name).
    """
    for pname, purpose in sorted(contract.purposes.items()):
        for r in purpose.resources:
            if r not in resources:
                raise ContractInvalidError(
                    f"contract {contract.id}: purpose {pname!r} names resource {r!r}, "
                    f"which the provider does not have (has: {', '.join(sorted(resources))[:200]})",
                    metadata={
                        "contract_id": contract.id,
                        "field": f"purposes.{pname}.resources",
                        "missing": r,
                    },
                )
        avail = {canonical_path(f) for r in purpose.resources for f in resources[r] if is_valid_path(f)}
        for kind, fields in (("mni", purpose.mni), ("optional", sorted(purpose.optional))):
            for f in fields:
                if not any(a == f or a.startswith(f + ".") or f.startswith(a + ".") for a in avail):
                    raise ContractInvalidError(
                        f"contract {contract.id}: purpose {pname!r} {kind} field {f!r} is in none "
                        f"of its resources ({', '.join(purpose.resources)})",
                        metadata={
                            "contract_id": contract.id,
                            "field": f"purposes.{pname}.{kind}",
                            "missing": f,
                        },
                    )
        if purpose.aggregates is not None:
            cols = set(resources[purpose.aggregates.dataset])
            for c in purpose.aggregates.columns:
                if c not in cols:
                    raise ContractInvalidError(
                        f"contract {contract.id}: purpose {pname!r} aggregates column {c!r} is not a "
                        f"column of {purpose.aggregates.dataset!r}",
                        metadata={
                            "contract_id": contract.id,
                            "field": f"purposes.{pname}.aggregates.columns",
                            "missing": c,
                        },
                    )
