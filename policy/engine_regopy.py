"""Embedded policy engine: rego-cpp through ``regopy``, compiled once per load.

``load`` compiles the base policy, the hook modules and the contract data
into a regopy *bundle* (rego-cpp's compiled form) for the query
``data.accord.decision``; ``decide`` sets the input and runs the bundle. An
optional LRU cache keyed by (contract version hash, canonical input) skips
evaluation for repeated identical inputs; it is cleared on every load.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import regopy

from policy.contract import Contract, hook_calls, hook_functions
from policy.decision import Decision, DecisionInput, jcs_digest
from policy.engine import (
    DATA_ROOT,
    DECISION_QUERY,
    EngineStats,
    MalformedResult,
    base_policy,
    bundle_hash,
    contracts_document,
    decision_from_result,
    engine_error_decision,
)
from policy.errors import EngineError, RegoModuleError

__all__ = ["RegopyEngine", "compile_check"]

_BASE_MODULE = "accord.rego"


def _first_error_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if "errormsg" in line:
            return line.split(":", 1)[-1].rstrip(")")
    return text.splitlines()[0] if text else type(exc).__name__


def _interpreter(
    policy: str, contracts: Sequence[Contract], data: dict[str, Any]
) -> regopy.Interpreter:
    rego = regopy.Interpreter()
    rego.add_module(_BASE_MODULE, policy)
    for c in contracts:
        if c.rego_module is None:
            continue
        try:
            rego.add_module(f"hook_{c.hook_name}.rego", c.rego_module)
        except regopy.RegoError as exc:
            raise RegoModuleError(
                f"contract {c.id}: rego_module does not compile: {_first_error_line(exc)}",
                metadata={"contract_id": c.id, "field": "rego_module"},
            ) from None
    rego.add_data({DATA_ROOT: data})
    return rego


def _build(rego: regopy.Interpreter) -> regopy.Bundle:
    bundle = rego.build(DECISION_QUERY)
    if not bundle.ok():
        raise EngineError("policy bundle failed to build")
    return bundle


def compile_check(contract: Contract) -> None:
    """Check that a contract's hook module compiles together with the base policy.

    Raises:
        RegoModuleError: naming the contract and the first compiler message.
    """
    if contract.rego_module is not None:
        probe = regopy.Interpreter()
        defined = hook_functions(contract.rego_module)
        unknown = sorted(
            n
            for n in hook_calls(contract.rego_module)
            if n not in defined and not probe.is_builtin(n)
        )
        if unknown:
            raise RegoModuleError(
                f"contract {contract.id}: rego_module calls unknown function {unknown[0]}()",
                metadata={"contract_id": contract.id, "field": "rego_module"},
            )
    policy = base_policy()
    data = contracts_document([contract])
    try:
        rego = _interpreter(policy, [contract], data)
        bundle = _build(rego)
        # rego-cpp resolves some names (e.g. unknown functions) only when
        # evaluating: probe once with an input the hook is likely to reach.
        rego.set_input(regopy.Input(_probe_input(contract)))
        out = rego.query_bundle(bundle)
        if not out.ok():
            raise EngineError(str(out).strip()[:200])
    except (regopy.RegoError, EngineError, ValueError) as exc:
        raise RegoModuleError(
            f"contract {contract.id}: rego_module does not compile: {_first_error_line(exc)}",
            metadata={"contract_id": contract.id, "field": "rego_module"},
        ) from None


def _probe_input(c: Contract) -> dict[str, Any]:
    name, purpose = sorted(c.purposes.items())[0]
    return {
        "contract_id": c.id,
        "purpose": name,
        "requester_org": c.parties.requester.org,
        "provider_org": c.parties.provider.org,
        "requester_agent": "did:key:probe",
        "agent_claims": {"org": c.parties.requester.org, "scopes": list(purpose.required_scopes)},
        "requested_fields": list(purpose.mni) + sorted(purpose.optional),
        "effective_trust": c.trust_ceiling,
        "budget_used_micros": 0,
        "session": {"requests": 0, "fields_released": 0, "denials": 0},
        "recent_requests": 0,
        "context": {},
        "now_unix": math.floor(c.valid_from.timestamp()),
    }


class RegopyEngine:
    """The embedded engine (default).

    Args:
        cache_size: decisions kept in the LRU decision cache (0 disables it).
        policy_source: Rego source replacing the base policy (tests, experiments).

    Attributes:
        name: ``"regopy"``.
        stats: :class:`~policy.engine.EngineStats` counters.
    """

    name = "regopy"

    def __init__(self, *, cache_size: int = 0, policy_source: str | None = None) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.stats = EngineStats()
        self._policy = policy_source if policy_source is not None else base_policy()
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, str], tuple[dict[str, Any], str]] = OrderedDict()
        self._lock = threading.Lock()
        self._rego: regopy.Interpreter | None = None
        self._bundle: regopy.Bundle | None = None
        self._hashes: dict[str, str] = {}
        self._bundle_hash = ""

    @property
    def failures(self) -> int:
        """Decisions that became ``ENGINE_ERROR`` denials."""
        return self.stats.failures

    @property
    def bundle_hash(self) -> str:
        """Digest of the loaded policy, hooks and data ("" before load)."""
        return self._bundle_hash

    def load(self, contracts: Sequence[Contract]) -> None:
        """Compile the base policy, hooks and contracts; replaces the previous set.

        Raises:
            ContractInvalidError: duplicate contract id or hook name.
            RegoModuleError: a hook module does not compile (names the contract).
            EngineError: the bundle does not build.
        """
        contracts = list(contracts)
        data = contracts_document(contracts)
        for c in contracts:
            if c.rego_module is not None:
                compile_check(c)
        rego = _interpreter(self._policy, contracts, data)
        try:
            bundle = _build(rego)
        except (regopy.RegoError, EngineError) as exc:
            for c in contracts:  # attribute the failure to a hook if one is to blame
                if c.rego_module is not None:
                    compile_check(c)
            raise EngineError(f"policy does not compile: {_first_error_line(exc)}") from None
        hashes = {c.id: c.version_hash for c in contracts}
        bh = bundle_hash(self._policy, contracts)
        with self._lock:
            self._rego, self._bundle = rego, bundle
            self._hashes, self._bundle_hash = hashes, bh
            self._cache.clear()

    def evaluate_raw(self, rego_input: dict[str, Any]) -> Any:
        """Run the compiled bundle on an input document; returns the raw value.

        This is the bare query (no checking, no caching) the benchmark compares
        against.

        Raises:
            EngineError: nothing loaded, or rego-cpp reports an error.
        """
        with self._lock:
            if self._rego is None or self._bundle is None:
                raise EngineError("no contracts loaded")
            try:
                self._rego.set_input(regopy.Input(rego_input))
                out = self._rego.query_bundle(self._bundle)
            except regopy.RegoError as exc:
                raise EngineError(f"evaluation failed: {_first_error_line(exc)}") from None
            except ValueError:  # regopy cannot parse rego-cpp's output (an error report)
                raise EngineError("evaluation failed: unreadable rego-cpp output") from None
            if not out.ok():
                raise EngineError(f"evaluation failed: {str(out).strip()[:200]}")
            results = out.results
        if not results or not results[0].expressions:
            raise EngineError("decision is undefined")
        return results[0].expressions[0]

    def decide(self, inp: DecisionInput) -> Decision:
        """Decide one request (see :class:`~policy.engine.PolicyEngine`)."""
        rego_input = inp.to_rego_input()
        contract_hash = self._hashes.get(inp.contract_id, "")
        bh = self._bundle_hash
        key: tuple[str, str, str] | None = None
        if self._cache_size:
            key = (bh, contract_hash, json.dumps(rego_input, sort_keys=True, separators=(",", ":")))
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
            if hit is not None:
                raw, digest = hit
                self.stats.count(cache_hit=True)
                return decision_from_result(
                    raw,
                    inp,
                    contract_hash=contract_hash,
                    bundle=bh,
                    engine=self.name,
                    input_digest=digest,
                )
        digest = jcs_digest(rego_input)
        try:
            raw = self.evaluate_raw(rego_input)
            decision = decision_from_result(
                raw,
                inp,
                contract_hash=contract_hash,
                bundle=bh,
                engine=self.name,
                input_digest=digest,
            )
        except (EngineError, MalformedResult) as exc:
            self.stats.count(failure=str(exc))
            return engine_error_decision(
                inp, contract_hash=contract_hash, bundle=bh, engine=self.name, input_digest=digest
            )
        self.stats.count()
        if key is not None:
            with self._lock:
                self._cache[key] = (raw, digest)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return decision
