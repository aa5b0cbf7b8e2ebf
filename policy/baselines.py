"""Behavioural baselines per agent and per organization pair (issue #15).

A pure, bounded model of what a requester normally does — request rate, field
mix, purposes, denial ratio, reconstruction-audit hits — and of the two
patterns a field-name gate does not see:

* **slow, low-volume probing**: many different fields asked for and not
  released (denied, or trimmed by the MNI gate), spread out in time so that
  no rate limit fires (``slow_probing``);
* **sudden shifts**: a burst well above the key's own rate (``rate_shift``);
  requests whose purposes or fields its history never showed
  (``mix_shift``); repeated audit refusals (``audit_hits``).

:meth:`BehaviourBaselines.observe` takes one :class:`Observation` for each of
its keys (``("agent", did)``, ``("pair", requester_org, provider_org)``) and
returns the :class:`Anomaly` values found, each with the action the node takes
(``lower_trust``, ``tighten_session``, ``suspend_agent``). It holds no clock
(times are passed in) and does no I/O; the node acts (``federation.behaviour``).

State is bounded: at most ``max_keys`` keys (least recently seen dropped
first), at most ``max_events`` events per key, none older than
``window_seconds``; an anomaly of one kind is raised at most once per
``cooldown_seconds`` per key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Anomaly", "BaselineConfig", "BehaviourBaselines", "Observation"]

AnomalyKind = Literal["slow_probing", "rate_shift", "mix_shift", "audit_hits"]
Action = Literal["lower_trust", "tighten_session", "suspend_agent"]
Key = tuple[str, ...]


@dataclass(frozen=True)
class BaselineConfig:
    """Thresholds (the contract's ``baselines`` block, :class:`policy.contract.BaselineLimits`).

    Attributes:
        window_seconds: the history a key keeps (seconds).
        recent_seconds: the "now" part of it a shift is judged on (seconds).
        min_baseline_events: events before ``recent_seconds`` needed to judge a mix shift.
        probe_min_events: events in the window needed to judge probing.
        probe_min_fields: distinct fields asked for and not released that make probing.
        probe_refusal_ratio: share of the window's requests with something refused or trimmed.
        rate_factor: a recent rate this many times the key's own earlier rate is a shift.
        rate_min_recent: and at least this many requests in ``recent_seconds``.
        novelty_ratio: share of recent requests with a purpose or field never seen before.
        novelty_min_recent: recent requests needed to judge novelty.
        audit_hits: audit refusals in the window that raise ``audit_hits``.
        cooldown_seconds: one anomaly of a kind per key per this many seconds.
        max_keys: keys kept (agents and pairs together).
        max_events: events kept per key.
    """

    window_seconds: float = 3600.0
    recent_seconds: float = 60.0
    min_baseline_events: int = 10
    probe_min_events: int = 6
    probe_min_fields: int = 4
    probe_refusal_ratio: float = 0.5
    rate_factor: float = 5.0
    rate_min_recent: int = 20
    novelty_ratio: float = 0.6
    novelty_min_recent: int = 4
    audit_hits: int = 2
    cooldown_seconds: float = 300.0
    max_keys: int = 10_000
    max_events: int = 1024

    def __post_init__(self) -> None:
        if not 0 < self.recent_seconds < self.window_seconds:
            raise ValueError("need 0 < recent_seconds < window_seconds")
        if self.max_keys < 1 or self.max_events < 1:
            raise ValueError("max_keys and max_events must be positive")


@dataclass(frozen=True)
class Observation:
    """One decided request as the baselines see it (names only, never values).

    Attributes:
        at: Unix seconds.
        purpose: the declared purpose.
        fields: field names asked for.
        released: field names released (empty when refused).
        refused: the request was refused (policy, audit, approval denial).
        audit_hit: the reconstruction auditor refused it.
    """

    at: float
    purpose: str
    fields: frozenset[str]
    released: frozenset[str] = frozenset()
    refused: bool = False
    audit_hit: bool = False

    @property
    def probed(self) -> frozenset[str]:
        """Fields asked for and not released."""
        return self.fields - self.released


@dataclass(frozen=True)
class Anomaly:
    """A departure from a key's baseline, with the action to take.

    Attributes:
        kind: ``slow_probing`` | ``rate_shift`` | ``mix_shift`` | ``audit_hits``.
        key: ``("agent", did)`` or ``("pair", requester_org, provider_org)``.
        actions: what the node does (``lower_trust``, ``tighten_session``, ``suspend_agent``).
        evidence: string evidence (counts, ratios; never values).
    """

    kind: AnomalyKind
    key: Key
    actions: tuple[Action, ...]
    evidence: dict[str, str]


@dataclass
class _History:
    events: deque[Observation]
    last_alert: dict[str, float] = field(default_factory=dict)


_ACTIONS: dict[tuple[str, str], tuple[Action, ...]] = {
    ("agent", "slow_probing"): ("suspend_agent", "lower_trust"),
    ("pair", "slow_probing"): ("lower_trust",),
    ("agent", "rate_shift"): ("tighten_session",),
    ("pair", "rate_shift"): ("tighten_session",),
    ("agent", "mix_shift"): ("tighten_session", "lower_trust"),
    ("pair", "mix_shift"): ("lower_trust",),
    ("agent", "audit_hits"): ("suspend_agent", "lower_trust"),
    ("pair", "audit_hits"): ("lower_trust",),
}


class BehaviourBaselines:
    """Per-key behaviour histories and the detectors (module docstring). Thread-safe.

    Args:
        config: the thresholds; :class:`BaselineConfig()` by default.
    """

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = config or BaselineConfig()
        self._keys: OrderedDict[Key, _History] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def events(self, key: Key) -> int:
        """Events kept for ``key``."""
        with self._lock:
            h = self._keys.get(key)
            return 0 if h is None else len(h.events)

    def observe(
        self, keys: Sequence[Key], obs: Observation, *, config: BaselineConfig | None = None
    ) -> list[Anomaly]:
        """Record ``obs`` under each key and return the anomalies it completes.

        Args:
            keys: e.g. ``[("agent", did), ("pair", requester_org, provider_org)]``.
            obs: the decided request.
            config: thresholds for this call (a contract's own), else the instance's.

        Returns:
            Anomalies, at most one per (key, kind) per ``cooldown_seconds``.

        Raises:
            ValueError: a key that is empty or not ``"agent"``/``"pair"``-kinded.
        """
        cfg = config or self.config
        out: list[Anomaly] = []
        with self._lock:
            for key in keys:
                if not key or key[0] not in ("agent", "pair"):
                    raise ValueError(f"bad baseline key {key!r}")
                h = self._keys.get(key)
                if h is None:
                    h = self._keys[key] = _History(events=deque(maxlen=cfg.max_events))
                    while len(self._keys) > cfg.max_keys:
                        self._keys.popitem(last=False)
                self._keys.move_to_end(key)
                while h.events and h.events[0].at <= obs.at - cfg.window_seconds:
                    h.events.popleft()
                h.events.append(obs)
                for kind, evidence in _detect(h.events, obs.at, cfg):
                    last = h.last_alert.get(kind)
                    if last is not None and obs.at - last < cfg.cooldown_seconds:
                        continue
                    h.last_alert[kind] = obs.at
                    out.append(
                        Anomaly(kind=kind, key=key, actions=_ACTIONS[(key[0], kind)], evidence=evidence)
                    )
        return out


def _detect(
    events: deque[Observation], now: float, cfg: BaselineConfig
) -> list[tuple[AnomalyKind, dict[str, str]]]:
    found: list[tuple[AnomalyKind, dict[str, str]]] = []
    n = len(events)
    cut = now - cfg.recent_seconds
    recent = [e for e in events if e.at > cut]
    older = [e for e in events if e.at <= cut]
    # slow probing: many distinct refused fields over the window, whatever the rate
    probed: set[str] = set()
    refusing = 0
    for e in events:
        if e.refused or e.probed:
            refusing += 1
        probed |= e.probed if not e.refused else e.fields
    if (
        n >= cfg.probe_min_events
        and len(probed) >= cfg.probe_min_fields
        and refusing / n >= cfg.probe_refusal_ratio
    ):
        found.append(
            (
                "slow_probing",
                {
                    "events": str(n),
                    "probed_fields": str(len(probed)),
                    "refused_ratio": f"{refusing / n:.2f}",
                    "window_seconds": f"{cfg.window_seconds:g}",
                },
            )
        )
    # rate shift: recent rate against the key's own earlier rate (at least one per window)
    if len(recent) >= cfg.rate_min_recent:
        span = max(cfg.window_seconds - cfg.recent_seconds, 1.0)
        base_rate = max(len(older) / span, 1.0 / cfg.window_seconds)
        rate = len(recent) / cfg.recent_seconds
        if rate >= cfg.rate_factor * base_rate:
            found.append(
                (
                    "rate_shift",
                    {
                        "recent": str(len(recent)),
                        "rate_per_minute": f"{rate * 60:.1f}",
                        "baseline_per_minute": f"{base_rate * 60:.2f}",
                    },
                )
            )
    # mix shift: purposes or fields the key's history never showed
    if len(older) >= cfg.min_baseline_events and len(recent) >= cfg.novelty_min_recent:
        seen_p = {e.purpose for e in older}
        seen_f: set[str] = set().union(*(e.fields for e in older))
        novel = sum(1 for e in recent if e.purpose not in seen_p or not e.fields <= seen_f)
        if novel / len(recent) >= cfg.novelty_ratio:
            found.append(
                ("mix_shift", {"recent": str(len(recent)), "novel": str(novel), "baseline": str(len(older))})
            )
    hits = sum(1 for e in events if e.audit_hit)
    if hits >= cfg.audit_hits:
        found.append(("audit_hits", {"audit_hits": str(hits)}))
    return found
