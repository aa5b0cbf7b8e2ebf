"""Embedded policy engine: rego-cpp through ``regopy``, compiled once per load.

``load`` compiles the base policy, the hook modules and the contract data
into a regopy *bundle* (rego-cpp's compiled form) for the query
``data.accord.decision``; ``decide`` sets the input and runs the bundle. An
optional LRU cache keyed by (contract version hash, canonical input) skips
evaluation for repeated identical inputs; it is cleared on every load.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import regopy

from policy.contract import NONDETERMINISTIC_BUILTINS, Contract, hook_calls, hook_functions
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

__all__ = ["RegopyEngine", "compile_check", "hook_plan"]

_BASE_MODULE = "accord.rego"


def _first_error_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if "errormsg" in line:
            return line.split(":", 1)[-1].rstrip(")")
    return text.splitlines()[0] if text else type(exc).__name__


def _interpreter(policy: str, contracts: Sequence[Contract], data: dict[str, Any]) -> regopy.Interpreter:
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


#: Compiles a hook alone and prints its plan's rule paths and built-ins (JSON).
#: Run in a fresh interpreter: rego-cpp 1.x corrupts the heap saving a bundle
#: in a process that has loaded numpy (``free(): invalid size``).
_PLAN_SCRIPT = """
import json, pathlib, sys, tempfile
import regopy
src = sys.stdin.read()
try:
    rego = regopy.Interpreter()
    rego.add_module("hook.rego", src)
    bundle = rego.build("data")
    if not bundle.ok():
        raise ValueError("bundle does not build")
    with tempfile.TemporaryDirectory() as d:
        rego.save_bundle(d, bundle)
        plan = json.loads(pathlib.Path(d, "plan.json").read_text(encoding="utf-8"))
except Exception as exc:
    msg = str(exc).strip()
    print(json.dumps({"error": msg.splitlines()[0][:300] if msg else type(exc).__name__}))
    sys.exit(0)
paths = [f["path"][1:] for f in plan.get("funcs", {}).get("funcs", [])
         if len(f.get("path", [])) > 1 and not str(f["path"][1]).startswith("query$")]
builtins = sorted({b["name"] for b in (plan.get("static", {}).get("builtin_funcs") or [])})
print(json.dumps({"paths": paths, "builtins": builtins}))
"""


@functools.lru_cache(maxsize=256)
def hook_plan(source: str) -> tuple[tuple[tuple[str, ...], ...], frozenset[str]]:
    """Compile a hook module alone and read what it defines from the compiled plan.

    rego-cpp compiles the module; its plan (OPA's intermediate
    representation, saved with the bundle) lists every rule the module
    really defines, by data path, and every built-in it calls, so no
    comment or string can disguise a rule. Cached per source.

    Args:
        source: Rego v1 module source.

    Returns:
        ``(rule paths, built-ins)``: each rule as its path below ``data``
        (e.g. ``("accord", "hooks", "consent", "deny")``) and the names of the
        built-ins called (``internal.print`` for ``print``).

    Raises:
        RegoModuleError: the module does not compile (or the compiler fails).
    """
    try:
        out = subprocess.run(
            [sys.executable, "-I", "-c", _PLAN_SCRIPT],
            input=source,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        raise RegoModuleError("rego_module could not be compiled to a plan") from None
    if "error" in result:
        raise RegoModuleError(f"rego_module does not compile: {result['error']}")
    paths = tuple(tuple(str(x) for x in p) for p in result["paths"])
    return paths, frozenset(result["builtins"])


def check_hook_rules(contract: Contract) -> None:
    """Refuse a hook that defines rules outside ``accord.hooks.<name>`` or calls non-deterministic built-ins.

    Raises:
        RegoModuleError: naming the contract and the offending rule or built-in.
    """
    if contract.rego_module is None:
        return
    meta = {"contract_id": contract.id, "field": "rego_module"}
    try:
        paths, builtins = hook_plan(contract.rego_module)
    except RegoModuleError as exc:
        raise RegoModuleError(f"contract {contract.id}: {exc}", metadata=meta) from None
    prefix = ("accord", "hooks", contract.hook_name or "")
    for p in paths:
        if p[:3] != prefix or len(p) < 4:
            raise RegoModuleError(
                f"contract {contract.id}: rego_module defines data.{'.'.join(p)}, outside its package "
                f"accord.hooks.{contract.hook_name} (a hook may not add or shadow base rules)",
                metadata=meta,
            )
    calls = {b.removeprefix("internal.") for b in builtins}
    bad = sorted(calls & NONDETERMINISTIC_BUILTINS)
    if bad:
        raise RegoModuleError(
            f"contract {contract.id}: rego_module calls {bad[0]}(): hooks must be deterministic",
            metadata=meta,
        )


def compile_check(contract: Contract) -> None:
    """Check that a contract's hook module compiles together with the base policy.

    Raises:
        RegoModuleError: naming the contract and the first compiler message.
    """
    check_hook_rules(contract)
    if contract.rego_module is not None:
        probe = regopy.Interpreter()
        defined = hook_functions(contract.rego_module)
        unknown = sorted(
            n for n in hook_calls(contract.rego_module) if n not in defined and not probe.is_builtin(n)
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
    return DecisionInput(
        contract_id=c.id,
        purpose=name,
        requester_org=c.parties.requester.org,
        provider_org=c.parties.provider.org,
        requester_agent="did:key:probe",
        agent_claims={"org": c.parties.requester.org, "scopes": sorted(purpose.required_scopes)},
        requested_fields=tuple(purpose.mni) + tuple(sorted(purpose.optional)) or ("probe",),
        effective_trust=c.trust_ceiling,
        budget_used=0.0,
        session={"requests": 0, "fields_released": 0, "denials": 0},
        now=c.valid_from,
        resource=purpose.resources[0],
        subject=purpose.subjects[0],
    ).to_rego_input()


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
