"""Behavioural throttling at the provider (issue #15; the model is :mod:`policy.baselines`).

For a contract with a ``baselines`` block (:class:`policy.contract.BaselineLimits`)
the provider feeds every decided record or aggregate request of the pair to
:class:`policy.BehaviourBaselines`, under two keys: the requesting agent and
the (requester org, provider org) pair. An anomaly is acted on at once:

* ``lower_trust``: the pair's τ takes ``trust_penalty`` (recovering with the
  trust half-life, :class:`policy.TrustBook`);
* ``tighten_session``: the agent's session may decide at most
  ``session_requests`` more requests (then ``SESSION_THROTTLED``);
* ``suspend_agent``: the agent's sessions here are terminated and its new
  requests refused for ``suspend_seconds`` (``AGENT_SUSPENDED_ANOMALY``);

and raised as an alert: the ``accord_behaviour_anomalies_total`` counter, a
structured ``behaviour anomaly`` log line, and an ``anomaly`` ledger entry
(names and counts, never values).

State is bounded: the baselines' own bounds, and at most
:data:`MAX_SUSPENDED` suspended agents (the oldest suspension dropped first).
With replicas, suspensions are also shared rows (every replica refuses a
suspended agent); the baselines' counters stay per replica.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import structlog
from prometheus_client import Counter

from federation.errors import FederationError
from policy.baselines import Anomaly, BaselineConfig, BehaviourBaselines, Observation

__all__ = ["MAX_SUSPENDED", "ThrottledError", "admit", "exposure", "observe"]

log = structlog.get_logger("accord.behaviour")

#: most agents held suspended at once (bounded state keyed by outside strings)
MAX_SUSPENDED = 10_000

ANOMALIES = Counter(
    "accord_behaviour_anomalies_total",
    "Behavioural anomalies raised (slow probing, sudden shifts, audit hits)",
    ["kind", "scope"],
)
THROTTLED = Counter(
    "accord_behaviour_throttled_total", "Requests refused by behavioural throttling", ["reason"]
)


class ThrottledError(FederationError):
    """A request refused by behavioural throttling.

    Reasons: ``SESSION_THROTTLED`` (RESOURCE_EXHAUSTED), ``AGENT_SUSPENDED_ANOMALY``
    (PERMISSION_DENIED); ``metadata`` carries ``until`` or ``cap``.
    """

    reason = "SESSION_THROTTLED"
    status = "RESOURCE_EXHAUSTED"
    caller_fault = True


def _state(node: Any) -> tuple[BehaviourBaselines, OrderedDict[str, float]]:
    st = getattr(node, "_behaviour", None)
    if st is None:
        st = node._behaviour = (BehaviourBaselines(), OrderedDict())
    return st


def _suspend_locally(suspended: OrderedDict[str, float], agent: str, until: float) -> None:
    suspended[agent] = until
    suspended.move_to_end(agent)
    while len(suspended) > MAX_SUSPENDED:
        suspended.popitem(last=False)


def config_for(limits: Any) -> BaselineConfig:
    """The :class:`policy.baselines.BaselineConfig` of a contract's ``baselines`` block."""
    return BaselineConfig(
        window_seconds=float(limits.window_seconds),
        recent_seconds=float(limits.recent_seconds),
        probe_min_events=limits.probe_min_events,
        probe_min_fields=limits.probe_min_fields,
        rate_factor=float(limits.rate_factor),
        rate_min_recent=limits.rate_min_recent,
        novelty_ratio=float(limits.novelty_ratio),
        cooldown_seconds=float(min(limits.suspend_seconds, limits.window_seconds)),
    )


async def admit(node: Any, sess: Any, request: Any, contract: Any, now: Any) -> None:
    """Refuse a suspended agent or a throttled session before anything is decided.

    With replicas (``node.shared_state``), a suspension made by any replica
    counts: it is read from the shared rows (in a worker thread) when this
    replica holds none for the agent.

    Raises:
        ThrottledError: ``AGENT_SUSPENDED_ANOMALY`` or ``SESSION_THROTTLED``.
    """
    if contract is None or getattr(contract, "baselines", None) is None:
        return
    _, suspended = _state(node)
    until = suspended.get(request.agent_did)
    t = now.timestamp()
    shared = getattr(node, "shared_state", None)
    if until is None and shared is not None:
        from federation.replicas import shared_call

        until = await shared_call(shared, shared.agent_suspended_until, request.agent_did, now=t)
        if until is not None:
            _suspend_locally(suspended, request.agent_did, until)
    if until is not None:
        if t < until:
            THROTTLED.labels(reason="AGENT_SUSPENDED_ANOMALY").inc()
            raise ThrottledError(
                "the agent is suspended here after a behavioural anomaly",
                reason="AGENT_SUSPENDED_ANOMALY",
                metadata={"until_unix": f"{until:.0f}"},
            )
        del suspended[request.agent_did]
    if sess.throttle_cap is not None and sess.requests >= sess.throttle_cap:
        THROTTLED.labels(reason="SESSION_THROTTLED").inc()
        raise ThrottledError(
            f"the session was throttled to {sess.throttle_cap} requests after a behavioural anomaly",
            reason="SESSION_THROTTLED",
            metadata={"cap": str(sess.throttle_cap)},
        )


async def observe(
    node: Any,
    *,
    peer_org: str,
    sess: Any,
    request: Any,
    contract: Any,
    fields: tuple[str, ...],
    released: tuple[str, ...],
    refused: bool,
    audit_hit: bool,
    now: Any,
) -> list[Anomaly]:
    """Feed one decided request to the baselines and act on what they find; returns the anomalies."""
    limits = getattr(contract, "baselines", None) if contract is not None else None
    if limits is None:
        return []
    baselines, _ = _state(node)
    obs = Observation(
        at=now.timestamp(),
        purpose=request.purpose,
        fields=frozenset(fields),
        released=frozenset(released),
        refused=refused,
        audit_hit=audit_hit,
    )
    found = baselines.observe(
        [("agent", request.agent_did), ("pair", peer_org, node.did)], obs, config=config_for(limits)
    )
    for anomaly in found:
        await _act(
            node, peer_org=peer_org, sess=sess, request=request, contract=contract, anomaly=anomaly, now=now
        )
    return found


async def _act(
    node: Any, *, peer_org: str, sess: Any, request: Any, contract: Any, anomaly: Anomaly, now: Any
) -> None:
    from federation import entries

    limits = contract.baselines
    pair = (peer_org, node.did)
    taken: list[str] = []
    if "lower_trust" in anomaly.actions and limits.trust_penalty > 0:
        node.trust.record_anomaly(pair, limits.trust_penalty, now=now)
        taken.append("lower_trust")
    if "tighten_session" in anomaly.actions:
        cap = sess.requests + limits.session_requests
        sess.throttle_cap = cap if sess.throttle_cap is None else min(sess.throttle_cap, cap)
        taken.append("tighten_session")
    if "suspend_agent" in anomaly.actions:
        _, suspended = _state(node)
        until = now.timestamp() + limits.suspend_seconds
        _suspend_locally(suspended, request.agent_did, until)
        shared = getattr(node, "shared_state", None)
        if shared is not None:  # every replica refuses the agent, not only this one
            from federation.replicas import shared_call

            await shared_call(shared, shared.suspend_agent, request.agent_did, until=until)
        node.sessions.terminate_agent(request.agent_did)
        taken.append("suspend_agent")
    scope = anomaly.key[0]
    ANOMALIES.labels(kind=anomaly.kind, scope=scope).inc()
    log.warning(
        "behaviour anomaly",
        kind=anomaly.kind,
        scope=scope,
        agent=request.agent_did,
        requester=peer_org,
        contract=contract.id,
        actions=",".join(taken),
        **anomaly.evidence,
    )
    entry = entries.node_event(
        kind="anomaly",
        prefix="anm_",
        provider_org=node.did,
        requester_org=peer_org,
        agent=request.agent_did,
        contract_id=contract.id,
        contract_hash=contract.version_hash,
        purpose=request.purpose,
        reason=anomaly.kind.upper(),
        effective_trust=node.trust.effective_trust(pair, ceiling=contract.trust_ceiling, now=now),
        now=now,
        extra={"scope": scope, "actions": ",".join(taken), **anomaly.evidence},
    )
    await node.writer.write(entry, receipt=False)


# ---------------------------------------------------------------- exposure tolerance

EXPOSURE_ALERTS = Counter(
    "accord_exposure_alerts_total",
    "Attempted-OER windows over a contract's max_attempted_oer (the pair's trust ceiling was lowered)",
    ["contract"],
)
#: most (pair, contract) windows tracked at once
MAX_EXPOSURE_KEYS = 10_000
#: most disclosures remembered per window
MAX_EXPOSURE_EVENTS = 100_000


async def exposure(
    node: Any, *, peer_org: str, request: Any, contract: Any, offered: Any, now: Any
) -> float | None:
    """Count one released disclosure toward the contract's attempted OER; act when it is exceeded.

    Attempted OER is the share of the window's released disclosures whose
    source offered a field beyond the purpose's MNI (before the gate). Once
    ``min_disclosures`` are in the window and the share exceeds
    ``max_attempted_oer``, the pair's trust ceiling is lowered by
    ``ceiling_step`` (:meth:`policy.TrustBook.lower_ceiling`), an
    ``exposure_alert`` entry is written, the counter and a log line raised,
    and the window starts again.

    Returns:
        The new ceiling when an alert was raised, else None.
    """
    tol = getattr(contract, "exposure_tolerance", None) if contract is not None else None
    if tol is None:
        return None
    from collections import deque

    from federation import entries

    windows: OrderedDict[tuple[str, str], deque[tuple[float, bool]]] = (
        getattr(node, "_exposure", None) or OrderedDict()
    )
    node._exposure = windows
    spec = contract.purposes.get(request.purpose)
    mni = set(spec.mni) if spec is not None else set()
    beyond = bool(set(offered) - mni)
    key = (peer_org, contract.id)
    w = windows.get(key)
    if w is None:
        w = windows[key] = deque(maxlen=MAX_EXPOSURE_EVENTS)
        while len(windows) > MAX_EXPOSURE_KEYS:
            windows.popitem(last=False)
    windows.move_to_end(key)
    t = now.timestamp()
    w.append((t, beyond))
    while w and w[0][0] <= t - tol.window_seconds:
        w.popleft()
    n = len(w)
    rate = sum(1 for _, b in w if b) / n
    if n < tol.min_disclosures or rate <= tol.max_attempted_oer:
        return None
    w.clear()
    pair = (peer_org, node.did)
    cap = node.trust.lower_ceiling(pair, tol.ceiling_step, ceiling=contract.trust_ceiling, now=now)
    EXPOSURE_ALERTS.labels(contract=contract.id).inc()
    log.warning(
        "exposure tolerance exceeded",
        contract=contract.id,
        requester=peer_org,
        attempted_oer=round(rate, 4),
        max_attempted_oer=tol.max_attempted_oer,
        disclosures=n,
        ceiling=cap,
    )
    entry = entries.node_event(
        kind="exposure_alert",
        prefix="exp_",
        provider_org=node.did,
        requester_org=peer_org,
        agent=request.agent_did,
        contract_id=contract.id,
        contract_hash=contract.version_hash,
        purpose=request.purpose,
        reason="EXPOSURE_TOLERANCE_EXCEEDED",
        effective_trust=cap,
        now=now,
        extra={
            "attempted_oer": f"{rate:.4f}",
            "max_attempted_oer": f"{tol.max_attempted_oer:g}",
            "disclosures": str(n),
            "window_seconds": str(tol.window_seconds),
            "ceiling": f"{cap:g}",
        },
    )
    await node.writer.write(entry, receipt=False)
    return cap
