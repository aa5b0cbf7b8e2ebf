"""A decision cache that hits across a session: keyed on what the decision depends on.

:class:`DecisionCache` wraps any :class:`~policy.engine.PolicyEngine` (it is
one itself) and remembers the engine's answers in a bounded LRU. Its key is
not the whole input, which changes with every request (the time, τ, the
agent, the subject), but exactly what the base policy
(``policy/rego/accord.rego``) reads, and the time, trust, budget, rate and
session counters only through the comparisons the *contract* makes with them.
The thresholds come from the contract's engine form
(:func:`policy.engine.contract_document`, the data the Rego reads), never
from assumptions:

* validity: ``now_unix`` against ``valid_from_unix``, ``valid_until_unix``
  and ``retired_at_unix`` (one bit each);
* trust: τ = min(``trust_ceiling_micros``, ``trust_micros``) against each
  optional field's ``min_trust_micros`` (one bit each);
* budget (only when ``budget_units_micros`` is set): the remaining budget,
  capped at the sum of the purpose's optional sensitivities (every release
  prefix costs at most that, so any larger remainder decides the same);
* rate limit (only when set): ``recent_requests >= requests``;
* session limits (only those set): ``session.requests >= max_requests``;
  with ``max_fields``, the released-field counters themselves;
* parties, resource, subject and scopes: the comparisons the policy makes
  (requester, provider and ``agent_claims.org`` against the contract and
  each other; resource and subject against the purpose's lists; which of the
  purpose's ``required_scopes`` the agent holds);
* the requested fields themselves (the notes name them).

Members the base policy does not read (``requester_agent``, ``context``,
the other claims) are not in the key. A contract with a hook module
(``accord.hooks.<name>``) may read any input member, so its key is the whole
canonical input. Unknown contracts and purposes are never cached.

On a hit the decision is rebuilt for this request: a new ``decision_id``,
this input's digest, and τ recomputed as the policy computes it
(``min(ceiling, trust)``, the decision's only pass-through of an input
value). Engine failures (``ENGINE_ERROR``) are never cached. Loading
contracts clears the cache; the key also carries the engine's bundle hash.

:data:`POLICY_READS` lists the input members the base policy reads; a test
checks it against the Rego source, so a policy that starts reading a new
member fails until this key covers it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from policy.contract import Contract
from policy.decision import Decision, DecisionInput
from policy.engine import EngineStats, PolicyEngine, contract_document, new_decision_id
from policy.micros import MICROS

__all__ = ["MAX_KEY_CHARS", "POLICY_READS", "DecisionCache", "decision_key"]

#: Inputs whose key would hold more characters of request strings than this are
#: not cached, so that 4,096 entries stay within a few tens of MiB whatever the
#: requests hold (field lists may be long).
MAX_KEY_CHARS = 8192

#: Input members (dotted paths) the base policy reads; each is covered by :func:`decision_key`.
POLICY_READS: frozenset[str] = frozenset(
    {
        "contract_id",
        "purpose",
        "now_unix",
        "requester_org",
        "provider_org",
        "agent_claims.org",
        "agent_claims.scopes",
        "resource",
        "subject",
        "requested_fields",
        "recent_requests",
        "session.requests",
        "session.fields_released",
        "session.released_names",
        "trust_micros",
        "budget_used_micros",
    }
)


def _at_or_after(now: int, threshold: int | None) -> bool | None:
    """``now >= threshold``; None (a constant) when the contract sets no threshold."""
    return None if threshold is None else now >= threshold


def _tau(doc: Mapping[str, Any], trust_micros: int) -> int:
    """τ in micro-units as the base policy computes it: min(contract ceiling, trust)."""
    ceiling = doc["trust_ceiling_micros"]
    return ceiling if ceiling <= trust_micros else trust_micros


def decision_key(doc: Mapping[str, Any] | None, inp: DecisionInput) -> Hashable | None:
    """The cache key of ``inp`` under the contract ``doc`` (engine form), or None if not cacheable.

    Two inputs with the same key get the same decision from the base policy
    (apart from ``decision_id``, ``input_digest`` and τ, rebuilt per request):
    see the module docstring for what the key holds and why.

    Args:
        doc: :func:`policy.engine.contract_document` of the contract the input
            names (None when no such contract is loaded).
        inp: the checked decision input (τ, budget and counters filled in).

    Returns:
        A hashable key, or None: unknown contract or purpose (never cached).
    """
    if doc is None or doc["id"] != inp.contract_id:
        return None
    if doc["hook"] is not None:  # a hook may read any member: the whole input decides
        whole = json.dumps(inp.to_rego_input(), sort_keys=True, separators=(",", ":"))
        return None if len(whole) > MAX_KEY_CHARS else ("input", whole)
    purpose = doc["purposes"].get(inp.purpose)
    if purpose is None:
        return None
    released_names = tuple(sorted(inp.session.get("released_names", ())))
    size = sum(map(len, inp.requested_fields))
    if doc["session_limits"]["max_fields"] is not None:
        size += sum(map(len, released_names))
    if size > MAX_KEY_CHARS:
        return None
    now = inp.now_unix
    tau = _tau(doc, inp.trust_micros)
    optional = purpose["optional"]
    claims = inp.agent_claims
    scopes = set(claims.get("scopes") or ())
    session = inp.session
    limits = doc["session_limits"]
    budget: int | None = None
    if doc["budget_units_micros"] is not None:
        cap = sum(o["sensitivity_micros"] for o in optional.values())
        budget = min(doc["budget_units_micros"] - inp.budget_used_micros, cap)
    rate = doc["rate_limit"]
    return (
        inp.contract_id,
        inp.purpose,
        (
            _at_or_after(now, doc["valid_from_unix"]),
            _at_or_after(now, doc["valid_until_unix"]),
            _at_or_after(now, doc["retired_at_unix"]),
        ),
        (
            doc["requester"] == inp.requester_org,
            doc["provider"] == inp.provider_org,
            claims.get("org") == inp.requester_org,
        ),
        inp.resource in purpose["resources"],
        "*" in purpose["subjects"] or inp.subject in purpose["subjects"],
        tuple(s in scopes for s in purpose["required_scopes"]),
        tuple(sorted(set(inp.requested_fields))),
        tuple(tau >= o["min_trust_micros"] for _, o in sorted(optional.items())),
        budget,
        None if rate is None else inp.recent_requests >= rate["requests"],
        None if limits["max_requests"] is None else session["requests"] >= limits["max_requests"],
        None if limits["max_fields"] is None else (session["fields_released"], released_names),
    )


class DecisionCache:
    """A :class:`~policy.engine.PolicyEngine` that caches another engine's decisions.

    Args:
        engine: the engine that decides on a miss.
        max_entries: decisions kept (least recently used evicted first; > 0).

    Attributes:
        engine: the wrapped engine.
        stats: the wrapped engine's counters; hits counted in ``cache_hits``.

    Raises:
        ValueError: ``max_entries`` < 1.
    """

    def __init__(self, engine: PolicyEngine, *, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.engine = engine
        self._max = max_entries
        self._docs: dict[str, dict[str, Any]] = {}
        self._cache: OrderedDict[Hashable, Decision] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The wrapped engine's name (recorded in decisions)."""
        return self.engine.name

    @property
    def stats(self) -> EngineStats:
        """The wrapped engine's counters."""
        return self.engine.stats

    @property
    def bundle_hash(self) -> str:
        """The wrapped engine's bundle hash ("" if it has none)."""
        return getattr(self.engine, "bundle_hash", "")

    def __len__(self) -> int:
        return len(self._cache)

    def load(self, contracts: Sequence[Contract]) -> None:
        """Load contracts into the wrapped engine and clear the cache.

        Raises:
            Whatever the engine's ``load`` raises; the previous set and cache stay.
        """
        contracts = list(contracts)
        self.engine.load(contracts)
        docs = {c.id: contract_document(c) for c in contracts}
        with self._lock:
            self._docs = docs
            self._cache.clear()

    def key(self, inp: DecisionInput) -> Hashable | None:
        """The cache key of ``inp`` (see :func:`decision_key`), with the bundle hash."""
        return self._key(self._docs.get(inp.contract_id), inp)

    def _key(self, doc: Mapping[str, Any] | None, inp: DecisionInput) -> Hashable | None:
        k = decision_key(doc, inp)
        return None if k is None else (self.bundle_hash, k)

    def decide(self, inp: DecisionInput) -> Decision:
        """Decide ``inp``: from the cache when an equivalent input was decided, else by the engine."""
        doc = self._docs.get(inp.contract_id)  # one snapshot for the key and the rebuild
        key = self._key(doc, inp)
        if key is not None and doc is not None:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
            if hit is not None:
                self.stats.count(cache_hit=True)
                return self._rebuild(hit, inp, doc)
        decision = self.engine.decide(inp)
        if key is not None and "ENGINE_ERROR" not in decision.reasons:
            with self._lock:
                self._cache[key] = decision
                if len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        return decision

    def _rebuild(self, cached: Decision, inp: DecisionInput, doc: Mapping[str, Any]) -> Decision:
        tau = _tau(doc, inp.trust_micros)
        return dataclasses.replace(
            cached,
            decision_id=new_decision_id(),
            input_digest=inp.digest(),
            effective_trust=tau / MICROS,
        )
