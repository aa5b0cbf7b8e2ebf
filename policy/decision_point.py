"""Policy Decision Point: one call from a request to a recorded decision.

Composes an engine with the state a decision needs and changes: the trust
book (τ), the trust-budget ledger, the request counter for rate limits and
the decision log. For each request, under a lock per (contract, requester
org) so that concurrent requests cannot both spend the same budget:

1. τ = min(contract ceiling, trust score) from the :class:`TrustBook`;
2. budget used and requests in the rate-limit window from the ledgers;
3. the engine decides;
4. the request is counted; an allow charges ``budget_spent``; a policy deny
   (not an ``ENGINE_ERROR``) lowers the pair's trust;
5. the decision is appended to the :class:`DecisionLog`.

Named after XACML's PDP; the node is the enforcement point (it applies
:func:`policy.apply_gate` to the released fields).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from policy.budget import BudgetLedger
from policy.contract import Contract
from policy.decision import Decision, DecisionInput, DecisionLog
from policy.engine import PolicyEngine, refusal_decision
from policy.errors import UnknownContractError
from policy.trust import TrustBook

__all__ = ["PolicyDecisionPoint"]


class PolicyDecisionPoint:
    """Decide requests and keep trust, budget, rate and log state consistent.

    Args:
        engine: a loaded-or-not :class:`~policy.engine.PolicyEngine`.
        trust: trust book (default: a new one with default config).
        budgets: trust-budget ledger (default: new).
        requests: request counter for rate limits (default: new).
        log: decision log (default: new).
        shared_keys: for a node run as several processes (replicas): called
            with a (contract id, requester org) key, returns a context manager
            that holds a lock the processes share and yields the key's ledger
            rows ``{"budgets": row | None, "requests": row | None}``, writing back
            what is left in it on exit. The ledgers' rows for the key are loaded
            from it before deciding and stored into it after charging, so a
            budget or rate limit is spent once across the replicas. Only used
            for contracts with a trust budget or a rate limit. None: one process.
    """

    def __init__(
        self,
        engine: PolicyEngine,
        *,
        trust: TrustBook | None = None,
        budgets: BudgetLedger | None = None,
        requests: BudgetLedger | None = None,
        log: DecisionLog | None = None,
        shared_keys: Callable[[tuple[str, str]], AbstractContextManager[dict[str, Any]]] | None = None,
    ) -> None:
        self.engine = engine
        self._shared_keys = shared_keys
        self.trust = trust if trust is not None else TrustBook()
        self.budgets = budgets if budgets is not None else BudgetLedger()
        self.requests = requests if requests is not None else BudgetLedger()
        self.log = log if log is not None else DecisionLog()
        self._contracts: dict[str, Contract] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, contracts: Sequence[Contract]) -> None:
        """Load contracts into the engine and remember them by id.

        Raises:
            Whatever :meth:`PolicyEngine.load` raises; the previous set stays.
        """
        contracts = list(contracts)
        self.engine.load(contracts)
        self._contracts = {c.id: c for c in contracts}

    def contract(self, contract_id: str) -> Contract:
        """Return a loaded contract.

        Raises:
            UnknownContractError: no contract with this id is loaded.
        """
        try:
            return self._contracts[contract_id]
        except KeyError:
            raise UnknownContractError(
                f"no contract {contract_id!r} is registered",
                metadata={"contract_id": contract_id},
            ) from None

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
            return lock

    def decide(
        self,
        *,
        contract_id: str,
        purpose: str,
        requester_org: str,
        provider_org: str,
        requester_agent: str,
        agent_claims: Mapping[str, Any],
        requested_fields: Sequence[str],
        session: Mapping[str, int],
        now: datetime,
        resource: str,
        subject: str,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Decide one request and update trust, budget, rate counter and log.

        Every identifier is checked (:func:`policy.identifiers.check_identifier`)
        before anything is looked up, so the string the node's bookkeeping
        keys on is the string the engine reads. A request whose contract is
        not loaded is refused here, before any engine runs (``UNKNOWN_CONTRACT``):
        no engine call, no rate counter or lock keyed by the unknown id.

        Args:
            contract_id: contract invoked by the request.
            purpose: purpose name.
            requester_org: authenticated requesting organization DID.
            provider_org: this node's organization DID.
            requester_agent: requesting agent DID.
            agent_claims: the normalized claims (:class:`policy.input.AgentClaims`;
                build them with :func:`policy.input.session_claims`).
            requested_fields: field paths asked for.
            session: ``requests``, ``fields_released``, ``denials`` so far.
            now: timezone-aware decision time.
            resource: the resource (data set) the request reads.
            subject: the record key asked for, or ``"*"``.
            context: request context for contract hooks.

        Returns:
            The :class:`Decision` (an unknown contract is a deny with
            ``UNKNOWN_CONTRACT``, not an exception).

        Raises:
            InvalidIdentifierError: ``MALFORMED_IDENTIFIER``, before any lookup.
            DecisionInputError: other malformed request values (claims not in
                the normalized shape, a float in the context...).
        """
        inp = DecisionInput(
            contract_id=contract_id,
            purpose=purpose,
            requester_org=requester_org,
            provider_org=provider_org,
            requester_agent=requester_agent,
            agent_claims=agent_claims,
            requested_fields=tuple(requested_fields),
            effective_trust=0.0,
            budget_used=0.0,
            session=session,
            now=now,
            resource=resource,
            subject=subject,
            context=context or {},
        )
        pair = (inp.requester_org, inp.provider_org)
        c = self._contracts.get(inp.contract_id)
        if c is None:
            decision = refusal_decision(
                inp,
                "UNKNOWN_CONTRACT",
                engine=self.engine.name,
                bundle=getattr(self.engine, "bundle_hash", ""),
            )
            self.trust.record_denial(pair, now=now)
            self.log.append(inp, decision)
            return decision
        key = (c.id, inp.requester_org)
        # only registered contracts get state (#10.2): the id is the requester's string
        self.budgets.admit(key, now=now)
        self.requests.admit(key, now=now)
        shared = self._shared_keys is not None and (c.trust_budget is not None or c.rate_limit is not None)
        with self._lock(key), self._shared_keys(key) if shared else nullcontext() as rows:  # type: ignore[misc]
            if rows is not None:  # the replicas' common rows for this key (under their shared lock)
                self.budgets.set_key_row(key, rows.get("budgets"))
                self.requests.set_key_row(key, rows.get("requests"))
            tau = self.trust.effective_trust(pair, ceiling=c.trust_ceiling, now=now)
            used = (
                self.budgets.spent(key, window_seconds=c.trust_budget.window_seconds, now=now)
                if c.trust_budget is not None
                else 0.0
            )
            recent = (
                math.ceil(self.requests.spent(key, window_seconds=c.rate_limit.window_seconds, now=now))
                if c.rate_limit is not None
                else 0
            )
            inp = inp.with_state(effective_trust=tau, budget_used=used, recent_requests=recent)
            decision = self.engine.decide(inp)
            self.requests.charge(key, 1, now=now)
            if decision.allow and decision.budget_spent > 0:
                self.budgets.charge(key, decision.budget_spent, now=now)
            elif not decision.allow and "ENGINE_ERROR" not in decision.reasons:
                self.trust.record_denial(pair, now=now)
            if rows is not None:
                rows["budgets"] = self.budgets.key_row(key)
                rows["requests"] = self.requests.key_row(key)
        self.log.append(inp, decision)
        return decision
