"""The policy-engine protocol and what both engines share.

Both engines evaluate the same Rego: the Accord base policy
(``policy/rego/accord.rego``, ``package accord``) plus each contract's hook
module, with contracts as data under ``data.accord_contracts``, and answer
the query ``data.accord.decision``. This module turns contracts into that
data (:func:`contract_document`), hashes what is loaded
(:func:`bundle_hash`), and turns a raw Rego answer into a checked
:class:`~policy.decision.Decision` (:func:`decision_from_result`). An answer
that is not exactly the documented shape, or releases a field that was not
requested, becomes a deny with ``ENGINE_ERROR``: a broken engine never allows.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Sequence
from importlib import resources
from typing import Any, Protocol, runtime_checkable

from policy.contract import Contract
from policy.decision import Decision, DecisionInput, jcs_digest
from policy.errors import ContractInvalidError
from policy.micros import MICROS, micros_down, micros_up

__all__ = [
    "BASE_POLICY_PATH",
    "DATA_ROOT",
    "DECISION_QUERY",
    "EngineStats",
    "PolicyEngine",
    "base_policy",
    "bundle_hash",
    "contract_document",
    "contracts_document",
    "decision_from_result",
    "engine_error_decision",
    "new_decision_id",
    "refusal_decision",
]

#: The rule every engine queries.
DECISION_QUERY = "data.accord.decision"
#: Top-level data key holding the contracts.
DATA_ROOT = "accord_contracts"
#: Package-relative location of the base policy.
BASE_POLICY_PATH = "rego/accord.rego"


def base_policy() -> str:
    """Return the source of the Accord base policy (Rego v1)."""
    return resources.files("policy").joinpath(BASE_POLICY_PATH).read_text(encoding="utf-8")


@runtime_checkable
class PolicyEngine(Protocol):
    """What the node needs from a policy engine.

    Attributes:
        name: engine name recorded in decisions (``"regopy"``, ``"opa-rest"``).
        stats: decision and failure counters.
    """

    name: str
    stats: EngineStats

    def load(self, contracts: Sequence[Contract]) -> None:
        """Replace the loaded contracts (atomically: on error the old set stays).

        Raises:
            ContractInvalidError: duplicate contract id or hook name.
            RegoModuleError: a hook module does not compile.
            EngineError: the engine cannot take the policy (e.g. OPA unreachable).
        """
        ...

    def decide(self, inp: DecisionInput) -> Decision:
        """Decide one request.

        Never raises for engine failures: those deny with reason
        ``ENGINE_ERROR`` and increment ``stats.failures``.
        """
        ...


class EngineStats:
    """Thread-safe counters: ``decisions``, ``failures``, ``cache_hits``.

    ``failures`` counts decisions that became ``ENGINE_ERROR`` denials.
    ``last_error`` keeps the message of the latest failure (for logs).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.decisions = 0
        self.failures = 0
        self.cache_hits = 0
        self.last_error = ""

    def count(self, *, failure: str | None = None, cache_hit: bool = False) -> None:
        """Count one decision (and a failure or a cache hit)."""
        with self._lock:
            self.decisions += 1
            if failure is not None:
                self.failures += 1
                self.last_error = failure
            if cache_hit:
                self.cache_hits += 1


def _unix(dt: Any) -> int | None:
    return None if dt is None else math.floor(dt.timestamp())


def contract_document(c: Contract) -> dict[str, Any]:
    """Return the engine form of a contract (JSON values; what Rego reads).

    Shape: ``{"id", "version", "version_hash", "provider", "requester",
    "valid_from_unix", "valid_until_unix", "retired_at_unix"|null,
    "trust_ceiling_micros", "budget_units_micros"|null, "budget_window_seconds"|null,
    "rate_limit": {"requests", "window_seconds"}|null, "session_limits":
    {"max_requests"|null, "max_fields"|null}, "obligations": [...],
    "hook": name|null, "purposes": {name: {"mni": [...], "optional": {field:
    {"sensitivity_micros": int, "min_trust_micros": int}}, "required_scopes": [...],
    "resources": [...], "subjects": [...], "max_records": int|null}}}``. Keys are
    always present (null when unset). Every number is an integer: contract
    terms have at most 6 decimals, so :func:`~policy.decision.to_micros` is exact.
    """
    return {
        "id": c.id,
        "version": c.version,
        "version_hash": c.version_hash,
        "provider": c.parties.provider.org,
        "requester": c.parties.requester.org,
        "valid_from_unix": _unix(c.valid_from),
        "valid_until_unix": _unix(c.valid_until),
        "retired_at_unix": _unix(c.retired_at),
        # against the requester (#18.3): allowances round down, charges and thresholds up
        "trust_ceiling_micros": micros_down(c.trust_ceiling),
        "budget_units_micros": None if c.trust_budget is None else micros_down(c.trust_budget.units),
        "budget_window_seconds": None if c.trust_budget is None else c.trust_budget.window_seconds,
        "rate_limit": None
        if c.rate_limit is None
        else {"requests": c.rate_limit.requests, "window_seconds": c.rate_limit.window_seconds},
        "session_limits": {
            "max_requests": c.session_limits.max_requests,
            "max_fields": c.session_limits.max_fields,
        },
        "obligations": list(c.obligations),
        "hook": c.hook_name,
        "purposes": {
            name: {
                "mni": list(p.mni),
                "optional": {
                    f: {
                        "sensitivity_micros": micros_up(o.sensitivity),
                        "min_trust_micros": micros_up(o.min_trust),
                    }
                    for f, o in p.optional.items()
                },
                "required_scopes": list(p.required_scopes),
                "resources": list(p.resources),
                "subjects": list(p.subjects),
                "max_records": p.max_records,
            }
            for name, p in c.purposes.items()
        },
    }


def contracts_document(contracts: Sequence[Contract]) -> dict[str, Any]:
    """Return ``{contract id: contract_document}`` after checking ids and hooks are unique.

    Raises:
        ContractInvalidError: two contracts share an id or a hook name.
    """
    out: dict[str, Any] = {}
    hooks: dict[str, str] = {}
    for c in contracts:
        if c.id in out:
            raise ContractInvalidError(
                f"contract id {c.id!r} loaded twice", metadata={"contract_id": c.id, "field": "id"}
            )
        h = c.hook_name
        if h is not None:
            if h in hooks:
                raise ContractInvalidError(
                    f"contracts {hooks[h]!r} and {c.id!r} both declare hook package accord.hooks.{h}",
                    metadata={"contract_id": c.id, "field": "rego_module"},
                )
            hooks[h] = c.id
        out[c.id] = contract_document(c)
    return out


def bundle_hash(policy_source: str, contracts: Sequence[Contract]) -> str:
    """Hex SHA-256 (JCS) over the base policy, every hook module and the contract data."""
    return jcs_digest(
        {
            "policy": jcs_digest(policy_source),
            "hooks": {c.id: jcs_digest(c.rego_module) for c in contracts if c.rego_module},
            "data": jcs_digest(contracts_document(contracts)),
        }
    )


def new_decision_id() -> str:
    """A random 128-bit decision id (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def engine_error_decision(
    inp: DecisionInput,
    *,
    contract_hash: str,
    bundle: str,
    engine: str,
    input_digest: str | None = None,
) -> Decision:
    """Build the deny every engine failure becomes (reason ``ENGINE_ERROR``)."""
    return Decision(
        allow=False,
        released_fields=(),
        obligations=(),
        reasons=("ENGINE_ERROR",),
        decision_id=new_decision_id(),
        input_digest=input_digest or inp.digest(),
        contract_hash=contract_hash,
        bundle_hash=bundle,
        engine=engine,
        effective_trust=0.0,
        budget_spent=0.0,
        max_records=None,
    )


def refusal_decision(inp: DecisionInput, reason: str, *, engine: str, bundle: str = "") -> Decision:
    """Build a deny decided without any engine (e.g. ``UNKNOWN_CONTRACT``)."""
    return Decision(
        allow=False,
        released_fields=(),
        obligations=(),
        reasons=(reason,),
        decision_id=new_decision_id(),
        input_digest=inp.digest(),
        contract_hash="",
        bundle_hash=bundle,
        engine=engine,
        effective_trust=0.0,
        budget_spent=0.0,
        max_records=None,
    )


class MalformedResult(ValueError):
    """A Rego answer is not the documented decision shape (internal)."""


def _str_list(v: Any, name: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise MalformedResult(f"{name} is not a list of strings")
    return tuple(v)


def decision_from_result(
    raw: Any,
    inp: DecisionInput,
    *,
    contract_hash: str,
    bundle: str,
    engine: str,
    input_digest: str,
) -> Decision:
    """Check a raw ``data.accord.decision`` value and build the :class:`Decision`.

    Raises:
        MalformedResult: the value is not the documented shape, names another
            contract (``contract_hash``) than the caller looked up, or releases
            a field that was not requested (the caller turns this into ENGINE_ERROR).
    """
    if not isinstance(raw, dict):
        raise MalformedResult(f"decision is {type(raw).__name__}, not an object")
    allow = raw.get("allow")
    if not isinstance(allow, bool):
        raise MalformedResult("allow is not a boolean")
    released = _str_list(raw.get("released_fields"), "released_fields")
    obligations = _str_list(raw.get("obligations"), "obligations")
    reasons = _str_list(raw.get("reasons"), "reasons")
    tau = raw.get("effective_trust_micros")
    spent = raw.get("budget_spent_micros")
    max_records = raw.get("max_records")
    if isinstance(tau, bool) or not isinstance(tau, int) or not 0 <= tau <= MICROS:
        raise MalformedResult("effective_trust_micros is not an int in [0, 1e6]")
    if isinstance(spent, bool) or not isinstance(spent, int) or spent < 0:
        raise MalformedResult("budget_spent_micros is not an int >= 0")
    if max_records is not None and (isinstance(max_records, bool) or not isinstance(max_records, int)):
        raise MalformedResult("max_records is not an int or null")
    if raw.get("contract_hash") != contract_hash:
        raise MalformedResult("the engine decided under another contract than the one looked up")
    if not set(released) <= set(inp.requested_fields):
        raise MalformedResult("released a field that was not requested")
    if not allow and (released or not reasons):
        raise MalformedResult("a deny must release nothing and give reasons")
    return Decision(
        allow=allow,
        released_fields=tuple(sorted(released)),
        obligations=tuple(sorted(obligations)),
        reasons=tuple(sorted(reasons)),
        decision_id=new_decision_id(),
        input_digest=input_digest,
        contract_hash=contract_hash,
        bundle_hash=bundle,
        engine=engine,
        effective_trust=tau / MICROS,
        budget_spent=spent / MICROS,
        max_records=max_records,
    )
