r"""The policy input: the one document every Rego rule receives, defined once.

:class:`PolicyInput` is version ``POLICY_INPUT_VERSION`` of the ``input``
document both engines evaluate. It is built in one place
(:meth:`policy.decision.DecisionInput.to_rego_input`) for direct and delegated
sessions alike and validated against this model before any evaluation; its
JSON Schema is published as ``policy/schemas/policy-input.v1.json`` and in
``docs/contracts.md`` (:func:`policy_input_schema` regenerates it).

Two rules keep the two engines (OPA, arbitrary precision; rego-cpp, doubles
printed with six significant digits and strings passed through a C API that
stops at NUL and does not decode escapes) reading the *same* document:

* every number is an integer below 2**53 (trust and budget in micro-units,
  times in Unix seconds): no float ever crosses into an engine;
* every string is an identifier of its kind (:mod:`policy.identifiers`) or
  plain text from :data:`TEXT_PATTERN` (printable ASCII without ``"`` and
  ``\\``): nothing needs an escape, so nothing can be read two ways.

Agent claims have one normalized shape (:class:`AgentClaims`); build it with
:func:`session_claims` from a direct session's claims or a delegated
session's ``DelegatedAuthority.claims``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from policy.errors import DecisionInputError
from policy.identifiers import check_identifier

__all__ = [
    "POLICY_INPUT_VERSION",
    "TEXT_PATTERN",
    "AgentClaims",
    "PolicyInput",
    "policy_input_schema",
    "session_claims",
    "validate_policy_input",
]

#: Version of the policy input document (``input.input_version``).
POLICY_INPUT_VERSION: Final = 1
#: Free text allowed in the policy input: printable ASCII without ``"`` and ``\``.
TEXT_PATTERN: Final = r"^[\x20\x21\x23-\x5b\x5d-\x7e]{0,256}$"
_TEXT_RE = re.compile(TEXT_PATTERN)
#: Scopes and roles: the contract's scope grammar.
SCOPE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$"
_MAX_INT = 2**53 - 1
_MAX_CONTEXT_BYTES = 16_384


def _ident(kind: str) -> Any:
    def check(v: str) -> str:
        try:
            return check_identifier(v, kind)
        except Exception as exc:  # InvalidIdentifierError -> pydantic error with the location
            raise ValueError(str(exc)) from None

    return AfterValidator(check)


Did = Annotated[str, _ident("did")]
Text = Annotated[str, Field(min_length=1, pattern=TEXT_PATTERN)]
Scope = Annotated[str, Field(pattern=SCOPE_PATTERN)]
SafeInt = Annotated[int, Field(ge=0, le=_MAX_INT)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AgentClaims(_Strict):
    """The normalized claims of the requesting agent (``input.agent_claims``).

    Attributes:
        org: the authenticated requesting organization DID (the mTLS peer).
        organization: the ``organization`` claim of the agent's credential
            (a name or a DID; plain text), or None.
        role: the agent's role (plain text), or None.
        scopes: the granted scopes, sorted and distinct (a delegated session:
            the delegated scopes).
        trust_tier: the credential's trust tier (integer ≥ 0), or None.
        delegated_by: the root agent DID of a delegation chain, None for a
            direct session.
        delegation_depth: links in the delegation chain (0 = direct session).
    """

    org: Did
    scopes: list[Scope] = Field(max_length=256)
    organization: Text | None = None
    role: Text | None = None
    trust_tier: SafeInt | None = None
    delegated_by: Did | None = None
    delegation_depth: Annotated[int, Field(ge=0, le=64)] = 0


def _json_value(v: Any, depth: int = 0) -> None:
    """Check a context value: integers, booleans, null, safe text, lists and objects of those."""
    if depth > 8:
        raise ValueError("nested more than 8 levels")
    if v is None or isinstance(v, bool):
        return
    if isinstance(v, int):
        if not -_MAX_INT <= v <= _MAX_INT:
            raise ValueError("integers must be below 2**53 in magnitude")
        return
    if isinstance(v, float):
        raise ValueError("numbers must be integers (no floats reach the policy engine)")
    if isinstance(v, str):
        if not _TEXT_RE.match(v):
            raise ValueError("strings must be printable ASCII without '\"' and '\\' (≤ 256)")
        return
    if isinstance(v, list):
        for x in v:
            _json_value(x, depth + 1)
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str) or not _TEXT_RE.match(k):
                raise ValueError("object keys must be safe text")
            _json_value(x, depth + 1)
        return
    raise ValueError(f"{type(v).__name__} is not a JSON value")


def _context(v: dict[str, Any]) -> dict[str, Any]:
    _json_value(v)
    if len(json.dumps(v)) > _MAX_CONTEXT_BYTES:
        raise ValueError(f"context larger than {_MAX_CONTEXT_BYTES} bytes")
    return v


class SessionState(_Strict):
    """The requester's session so far (``input.session``).

    Attributes:
        requests: requests decided before this one.
        fields_released: distinct fields released so far.
        denials: denials so far.
        released_names: the distinct field paths released so far, sorted (optional).
    """

    requests: SafeInt = 0
    fields_released: SafeInt = 0
    denials: SafeInt = 0
    released_names: list[Annotated[str, _ident("field")]] | None = Field(default=None, max_length=10_000)


class PolicyInput(_Strict):
    """The Rego ``input`` document, version 1 (see the module docstring).

    Attributes:
        input_version: always :data:`POLICY_INPUT_VERSION`.
        contract_id, purpose, resource, subject: what the request invokes
            (identifiers of their kinds).
        requester_org, provider_org, requester_agent: DIDs.
        agent_claims: :class:`AgentClaims`.
        requested_fields: canonical field paths, distinct, request order.
        trust_micros: effective trust τ in micro-units (floor), in [0, 1e6].
        budget_used_micros: trust budget spent in the window, micro-units (ceiling).
        session: :class:`SessionState`.
        recent_requests: decisions in the rate-limit window before this one.
        context: request context for hooks (integers, booleans, null, safe text).
        now_unix: decision time, whole Unix seconds.
    """

    input_version: Annotated[int, Field(ge=POLICY_INPUT_VERSION, le=POLICY_INPUT_VERSION)]
    contract_id: Annotated[str, _ident("contract")]
    purpose: Annotated[str, _ident("purpose")]
    resource: Annotated[str, _ident("resource")]
    subject: Annotated[str, _ident("subject")]
    requester_org: Did
    provider_org: Did
    requester_agent: Did
    agent_claims: AgentClaims
    requested_fields: list[Annotated[str, _ident("field")]] = Field(max_length=1024)
    trust_micros: Annotated[int, Field(ge=0, le=1_000_000)]
    budget_used_micros: SafeInt
    session: SessionState
    recent_requests: SafeInt
    context: Annotated[dict[str, Any], AfterValidator(_context)]
    now_unix: SafeInt


def validate_policy_input(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a policy input document against :class:`PolicyInput`.

    Args:
        doc: the candidate ``input`` document (JSON values).

    Returns:
        The same document as a plain dict (unchanged).

    Raises:
        DecisionInputError: ``DECISION_INPUT_INVALID`` naming the first
            offending member in ``metadata["field"]``.
    """
    try:
        PolicyInput.model_validate(dict(doc))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise DecisionInputError(
            f"policy input invalid at {loc or '<root>'}: {err['msg'].removeprefix('Value error, ')}",
            metadata={"field": loc},
        ) from None
    return dict(doc)


@cache
def policy_input_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of the policy input, version 1."""
    schema = PolicyInput.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://w3id.org/accord/schemas/policy-input.v1.json"
    return schema


def session_claims(claims: Mapping[str, Any], *, org: str) -> dict[str, Any]:
    """Normalize a session's claims into the one :class:`AgentClaims` shape.

    Accepts exactly two source shapes and nothing else:

    * a direct session's claims (``federation.node.Node.open_session``):
      ``{"organization", "name", "role", "scopes", "trust_tier"}``;
    * a delegated session's ``DelegatedAuthority.claims`` (the root
      ``credentialSubject`` plus the chain): ``{"id", "organization", "name",
      "role", "scopes", "trustTier", "delegatedBy", "delegationDepth"}``.

    ``name`` and ``id`` are dropped (the agent DID is ``requester_agent``).

    Args:
        claims: the session's claims.
        org: the authenticated requesting organization DID.

    Returns:
        The normalized claims (a dict with every :class:`AgentClaims` key).

    Raises:
        DecisionInputError: unknown keys, or a value of the wrong type or grammar.
    """
    c = dict(claims)
    delegated = "delegatedBy" in c or "delegationDepth" in c or "trustTier" in c
    if delegated:
        known = {
            "id",
            "organization",
            "name",
            "role",
            "scopes",
            "trustTier",
            "delegatedBy",
            "delegationDepth",
        }
        mapping = {
            "trustTier": "trust_tier",
            "delegatedBy": "delegated_by",
            "delegationDepth": "delegation_depth",
        }
    else:
        known = {"organization", "name", "role", "scopes", "trust_tier"}
        mapping = {}
    extra = sorted(set(c) - known)
    if extra:
        raise DecisionInputError(
            f"agent claims have unknown keys {extra[:5]}", metadata={"field": "agent_claims"}
        )
    out: dict[str, Any] = {"org": org}
    for k, v in c.items():
        if k in ("id", "name"):
            continue
        out[mapping.get(k, k)] = v
    scopes = out.get("scopes")
    if isinstance(scopes, list | tuple | set | frozenset) and all(isinstance(s, str) for s in scopes):
        out["scopes"] = sorted(set(scopes))
    try:
        return AgentClaims.model_validate(out).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise DecisionInputError(
            f"agent claims invalid at {loc}: {err['msg'].removeprefix('Value error, ')}",
            metadata={"field": f"agent_claims.{loc}"},
        ) from None
