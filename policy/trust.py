"""Dynamic trust between organizations, and the effective trust τ.

For a (requester org, provider org) pair, τ = min(contract ``trust_ceiling``, score).
The update rule is the operator's, and nothing the requester can repeat on
its own raises the score (issue #18.2):

- **Baseline.** Each pair has a baseline *b*: the one the operator set for it
  (``accord trust set``, :meth:`TrustBook.set_baseline`), else
  ``TrustConfig.initial``. The score never exceeds *b* (nor ``max_score``).
- **Penalties.** A policy denial, a reconstruction-audit hit and an
  authorization-drift event add ``denial_penalty``, ``audit_penalty`` and
  ``drift_penalty`` to the pair's outstanding penalty *p* (capped at *b*). The
  score is ``b − p``.
- **Recovery.** Only time and the operator lower *p*: it halves every
  ``half_life_seconds`` (*p(t) = p · 2^(−Δt / half-life)*, so the score
  climbs back toward *b*, never above), and is treated as 0 once below
  ``1e-9``. An operator ``set`` sets *b* and clears *p*.
- **Verifications do not raise trust.** A successful credential check when a
  session opens is counted (``events.verifications``, ``last_verified_at``)
  but moves no score: a requester that opens a thousand sessions has the same
  τ as one that opened one, and cannot wash out the penalty its refusals earned.
  The contract's ``trust_ceiling`` caps τ on top (the Trust-Vulnerability
  Paradox paper's trust ceiling: trust extended is vulnerability accepted).

Every change of the score made by an event is appended, with its cause, the
score before (recovery included) and after, to a bounded per-pair history
(``TrustConfig.history_size`` entries). Between two entries the score moves
only by the recovery above.

State stays bounded: at most ``TrustConfig.max_pairs`` pairs are tracked. A
new pair past the cap first evicts a pair that has nothing to lose (no
operator baseline, no outstanding penalty: its score equals that of a pair
never seen); if none can go, untracked pairs score 0 (fail closed) rather than
forget a penalty. The node keys pairs by authenticated, pinned peer DIDs.

A node run as several processes (replicas) shares the book through its
database (:meth:`TrustBook.share`): every read of a pair re-reads the pair's
row first, and every event changes the row under a lock the processes share
(read, apply, write back in one transaction), so a penalty earned at one
replica lowers τ at every other at its next request.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from policy.errors import PolicyError

__all__ = ["Pair", "TrustBook", "TrustConfig", "TrustStateError"]

#: (requester org DID, provider org DID)
Pair = tuple[str, str]

#: A decayed penalty below this is over (recovery is complete).
_PENALTY_EPSILON = 1e-9
#: Operator reasons are kept to this many characters.
_MAX_REASON = 200
#: Config keys of the earlier trust model, accepted and ignored when loading.
_LEGACY_CONFIG_KEYS = frozenset({"verification_boost"})
_EVENT_COUNTERS = (
    "verifications",
    "denials",
    "audit_hits",
    "drifts",
    "operator_sets",
    "anomalies",
    "exposures",
)


class TrustStateError(PolicyError):
    """A persisted trust book, a trust config or an operator trust setting is malformed."""

    reason = "TRUST_STATE_INVALID"
    caller_fault = True


def _unit(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
        raise TrustStateError(f"{name} must be in [0, 1], got {v!r}")
    return float(v)


@dataclass(frozen=True)
class TrustConfig:
    """The operator's trust update rule (scores in [0, 1]).

    Attributes:
        initial: baseline of a pair the operator has not set (default 0.5).
        max_score: upper clamp of every score and baseline.
        half_life_seconds: penalty recovery half-life, seconds (> 0).
        denial_penalty: added to the outstanding penalty on a policy denial.
        audit_penalty: added on a reconstruction-audit hit.
        drift_penalty: added on an authorization-drift event.
        history_size: score changes kept per pair (1..10000).
        max_pairs: pairs tracked at most (1..1000000).

    Raises:
        TrustStateError: a value is out of range.
    """

    initial: float = 0.5
    max_score: float = 1.0
    half_life_seconds: float = 7 * 24 * 3600.0
    denial_penalty: float = 0.05
    audit_penalty: float = 0.2
    drift_penalty: float = 0.3
    history_size: int = 64
    max_pairs: int = 10_000

    def __post_init__(self) -> None:
        for name in ("initial", "max_score", "denial_penalty", "audit_penalty", "drift_penalty"):
            _unit(f"TrustConfig.{name}", getattr(self, name))
        if self.initial > self.max_score:
            raise TrustStateError("TrustConfig.initial must not exceed max_score")
        hl = self.half_life_seconds
        if isinstance(hl, bool) or not isinstance(hl, int | float) or not (hl > 0 and math.isfinite(hl)):
            raise TrustStateError(f"TrustConfig.half_life_seconds must be > 0, got {hl!r}")
        for name, hi in (("history_size", 10_000), ("max_pairs", 1_000_000)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise TrustStateError(f"TrustConfig.{name} must be an int in [1, {hi}], got {v!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrustConfig:
        """Build from :func:`dataclasses.asdict` output (earlier models' keys ignored).

        Raises:
            TrustStateError: unknown key or a value out of range.
        """
        try:
            return cls(**{k: v for k, v in dict(d).items() if k not in _LEGACY_CONFIG_KEYS})
        except TypeError as exc:
            raise TrustStateError(f"malformed trust config: {exc}") from None


@dataclass
class _PairState:
    baseline: float | None = None  # None: TrustConfig.initial
    penalty: float = 0.0  # outstanding at updated_at
    updated_at: float | None = None  # Unix seconds of the last penalty or operator change
    last_verified_at: float | None = None
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_EVENT_COUNTERS, 0))
    history: deque[dict[str, Any]] = field(default_factory=deque)
    #: issue #15: a ceiling below the contract's, lowered by exposure alerts (None: none)
    ceiling_cap: float | None = None


def _ts(now: datetime) -> float:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise TrustStateError("now must be a timezone-aware datetime")
    return now.timestamp()


def _check_pair(pair: Any) -> Pair:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) and p for p in pair)):
        raise TrustStateError("pair must be (requester_org, provider_org)")
    return pair


class TrustBook:
    """Per-pair trust under the operator's rule (module docstring). Thread-safe, in memory.

    Persist with :meth:`to_dict` (whole book) or :meth:`take_dirty` (only the
    pairs changed since the last call, one row each).

    Args:
        config: the rule; defaults to :class:`TrustConfig()`.
    """

    def __init__(self, config: TrustConfig | None = None) -> None:
        self.config = config or TrustConfig()
        self._pairs: dict[Pair, _PairState] = {}
        self._dirty: set[Pair] = set()
        self._lock = threading.Lock()
        self._read_row: Callable[[Pair], Mapping[str, Any] | None] | None = None
        self._locked_row: Callable[[Pair], AbstractContextManager[dict[str, Any]]] | None = None

    # ------------------------------------------------------------ shared by replicas

    def share(
        self,
        read_row: Callable[[Pair], Mapping[str, Any] | None],
        locked_row: Callable[[Pair], AbstractContextManager[dict[str, Any]]],
    ) -> None:
        """Keep the pairs in a store several processes share (read-through, write-through).

        Args:
            read_row: returns a pair's current row (:meth:`take_dirty` shape) or None;
                called before every read of the pair.
            locked_row: returns a context manager that holds a lock the
                processes share for the pair and yields ``{"row": row | None}``;
                whatever is left under ``"row"`` is written back on exit. Every
                event runs inside it: the row is loaded, the event applied, the
                new row stored. Changes written this way are not reported by
                :meth:`take_dirty` (they are persisted already).

        Raises (later, from the reads and events): whatever the callables raise
        (the store is unreachable); nothing is changed then.
        """
        self._read_row = read_row
        self._locked_row = locked_row

    def _replace(self, pair: Pair, row: Mapping[str, Any] | None) -> None:
        """Put the stored row of ``pair`` in place of this process's copy (under ``_lock``)."""
        if row is None:
            self._pairs.pop(pair, None)
            return
        try:
            self._load_row(row)
        except TrustStateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise TrustStateError(f"malformed trust row: {exc}") from None

    def _sync(self, pair: Pair) -> None:
        """Shared book: re-read the pair's row (no-op for a book of one process)."""
        if self._read_row is not None:
            row = self._read_row(pair)
            with self._lock:
                self._replace(pair, row)

    @contextmanager
    def _writing(self, pair: Pair) -> Iterator[None]:
        """Shared book: run an event on the pair's stored row under the shared lock, store the result."""
        if self._locked_row is None:
            yield
            return
        with self._locked_row(pair) as cell:
            with self._lock:
                self._replace(pair, cell.get("row"))
            yield
            with self._lock:
                st = self._pairs.get(pair)
                cell["row"] = None if st is None else self._row(pair, st)
                self._dirty.discard(pair)

    # ------------------------------------------------------------ the rule

    def _baseline(self, st: _PairState) -> float:
        b = self.config.initial if st.baseline is None else st.baseline
        return min(b, self.config.max_score)

    def _penalty(self, st: _PairState, t: float) -> float:
        if st.penalty <= 0.0:
            return 0.0
        elapsed = 0.0 if st.updated_at is None else max(0.0, t - st.updated_at)
        p = st.penalty * 2.0 ** (-elapsed / self.config.half_life_seconds)
        return 0.0 if p < _PENALTY_EPSILON else p

    def _score(self, st: _PairState, t: float) -> float:
        return max(0.0, self._baseline(st) - self._penalty(st, t))

    def _untracked_score(self, t: float) -> float:
        # a pair never seen scores the default baseline, unless the book is full and
        # holds nothing it could drop for it: then it fails closed
        if len(self._pairs) < self.config.max_pairs or self._evictable(t) is not None:
            return min(self.config.initial, self.config.max_score)
        return 0.0

    def _evictable(self, t: float) -> Pair | None:
        best: tuple[float, Pair] | None = None
        for p, st in self._pairs.items():
            if st.baseline is None and st.ceiling_cap is None and self._penalty(st, t) == 0.0:
                key = st.updated_at or 0.0
                if best is None or key < best[0]:
                    best = (key, p)
        return None if best is None else best[1]

    def _state(self, pair: Pair, t: float, *, force: bool = False) -> _PairState | None:
        st = self._pairs.get(pair)
        if st is not None:
            return st
        if len(self._pairs) >= self.config.max_pairs and not force:
            victim = self._evictable(t)
            if victim is None:
                return None
            del self._pairs[victim]
            self._dirty.add(victim)
        st = self._pairs[pair] = _PairState()
        return st

    def _log(self, st: _PairState, entry: dict[str, Any]) -> None:
        st.history.append(entry)
        while len(st.history) > self.config.history_size:
            st.history.popleft()

    # ------------------------------------------------------------ reading

    def score(self, pair: Pair, *, now: datetime) -> float:
        """Return the score of ``pair`` at ``now`` (recovery applied), in [0, baseline]."""
        t = _ts(now)
        self._sync(pair)
        with self._lock:
            st = self._pairs.get(pair)
            return self._untracked_score(t) if st is None else self._score(st, t)

    def baseline(self, pair: Pair) -> float:
        """Return the pair's baseline (operator-set, else ``TrustConfig.initial``)."""
        self._sync(pair)
        with self._lock:
            st = self._pairs.get(pair)
            return min(self.config.initial, self.config.max_score) if st is None else self._baseline(st)

    def effective_trust(self, pair: Pair, *, ceiling: float, now: datetime) -> float:
        """τ = min(ceiling, score at now).

        Args:
            pair: (requester org DID, provider org DID).
            ceiling: the contract's ``trust_ceiling`` in [0, 1].
            now: timezone-aware time.

        Raises:
            TrustStateError: ceiling outside [0, 1] or naive ``now``.
        """
        if isinstance(ceiling, bool) or not isinstance(ceiling, int | float) or not 0 <= ceiling <= 1:
            raise TrustStateError(f"ceiling must be in [0, 1], got {ceiling!r}")
        t = _ts(now)
        self._sync(pair)  # one read of the shared row (replicas)
        with self._lock:
            st = self._pairs.get(pair)
            cap = None if st is None else st.ceiling_cap
            score = self._untracked_score(t) if st is None else self._score(st, t)
        if cap is not None:
            ceiling = min(float(ceiling), cap)
        return min(float(ceiling), score)

    def ceiling_cap(self, pair: Pair) -> float | None:
        """The pair's lowered trust ceiling (exposure alerts), or None when the contract's applies."""
        self._sync(pair)
        with self._lock:
            st = self._pairs.get(pair)
            return None if st is None else st.ceiling_cap

    def history(self, pair: Pair) -> list[dict[str, Any]]:
        """Return the pair's recorded score changes, oldest first.

        Each entry: ``{"at": Unix seconds, "cause": "denial" | "audit_hit" | "drift"
        | "anomaly" | "exposure" | "operator", "old": score before, "new": score after, "reason": str}``
        (``reason`` is the operator's text, empty for the other causes).
        """
        self._sync(pair)
        with self._lock:
            st = self._pairs.get(pair)
            return [] if st is None else [dict(e) for e in st.history]

    def pairs(self) -> list[Pair]:
        """Return the tracked pairs, sorted."""
        with self._lock:
            return sorted(self._pairs)

    # ------------------------------------------------------------ events

    def _penalize(self, pair: Pair, now: datetime, amount: float, counter: str) -> float:
        t = _ts(now)
        _check_pair(pair)
        with self._writing(pair), self._lock:
            st = self._state(pair, t)
            if st is None:  # book full: untracked pairs already score 0
                return 0.0
            old = self._score(st, t)
            b = self._baseline(st)
            st.penalty = min(b, self._penalty(st, t) + amount)
            st.updated_at = max(t, st.updated_at if st.updated_at is not None else t)
            st.events[counter] += 1
            new = self._score(st, t)
            if new != old:
                self._log(
                    st,
                    {
                        "at": t,
                        "cause": "anomaly" if counter == "anomalies" else counter.rstrip("s"),
                        "old": old,
                        "new": new,
                        "reason": "",
                    },
                )
            self._dirty.add(pair)
            return new

    def record_verification(self, pair: Pair, *, now: datetime) -> float:
        """Count a successful verification of the requester; return the (unchanged) score."""
        t = _ts(now)
        _check_pair(pair)
        with self._writing(pair), self._lock:
            st = self._state(pair, t)
            if st is None:
                return 0.0
            st.events["verifications"] += 1
            st.last_verified_at = max(t, st.last_verified_at or t)
            self._dirty.add(pair)
            return self._score(st, t)

    def record_denial(self, pair: Pair, *, now: datetime) -> float:
        """Add ``denial_penalty`` (a policy denial); return the new score."""
        return self._penalize(pair, now, self.config.denial_penalty, "denials")

    def record_audit_hit(self, pair: Pair, *, now: datetime) -> float:
        """Add ``audit_penalty`` (a reconstruction-audit refusal); return the new score."""
        return self._penalize(pair, now, self.config.audit_penalty, "audit_hits")

    def record_drift(self, pair: Pair, *, now: datetime) -> float:
        """Add ``drift_penalty`` (an authorization-drift event); return the new score."""
        return self._penalize(pair, now, self.config.drift_penalty, "drifts")

    def set_baseline(self, pair: Pair, value: float, *, reason: str, now: datetime) -> float:
        """Operator action: set the pair's baseline to ``value`` and clear its penalty.

        The score becomes ``min(value, max_score)``; the change is recorded with
        cause ``"operator"`` and ``reason``. Operator-set pairs are kept past
        ``max_pairs`` (the operator bounds them).

        Args:
            pair: (requester org DID, provider org DID).
            value: the new baseline in [0, 1].
            reason: why (non-empty; the first 200 characters are kept).
            now: timezone-aware time of the change.

        Returns:
            The new score.

        Raises:
            TrustStateError: value outside [0, 1], empty reason, bad pair or naive ``now``.
        """
        t = _ts(now)
        _check_pair(pair)
        v = _unit("trust value", value)
        if not isinstance(reason, str) or not reason.strip():
            raise TrustStateError("an operator trust change needs a reason")
        with self._writing(pair), self._lock:
            st = self._state(pair, t, force=True)
            assert st is not None
            old = self._score(st, t)
            st.baseline = v
            st.penalty = 0.0
            st.ceiling_cap = None  # the operator re-establishes the pair: exposure caps are lifted
            st.updated_at = max(t, st.updated_at if st.updated_at is not None else t)
            st.events["operator_sets"] += 1
            new = self._score(st, t)
            note = reason.strip()[:_MAX_REASON]
            self._log(st, {"at": t, "cause": "operator", "old": old, "new": new, "reason": note})
            self._dirty.add(pair)
            return new

    def record_anomaly(self, pair: Pair, amount: float, *, now: datetime) -> float:
        """Add ``amount`` in [0, 1] of penalty for a behavioural anomaly (issue #15); return the new score.

        Raises:
            TrustStateError: amount outside [0, 1], bad pair or naive ``now``.
        """
        return self._penalize(pair, now, _unit("anomaly penalty", amount), "anomalies")

    def lower_ceiling(self, pair: Pair, step: float, *, ceiling: float, now: datetime) -> float:
        """Lower the pair's trust ceiling by ``step`` below ``min(ceiling, current cap)`` (exposure).

        The cap is kept until an operator sets the pair's baseline
        (:meth:`set_baseline`); the change is in the history with cause ``"exposure"``.

        Args:
            pair: (requester org DID, provider org DID).
            step: how much to lower it, in [0, 1].
            ceiling: the contract's ``trust_ceiling``.
            now: timezone-aware time.

        Returns:
            The new cap, in [0, 1].

        Raises:
            TrustStateError: step or ceiling outside [0, 1], bad pair or naive ``now``.
        """
        t = _ts(now)
        _check_pair(pair)
        step = _unit("ceiling step", step)
        ceiling = _unit("ceiling", ceiling)
        with self._writing(pair), self._lock:
            st = self._state(pair, t, force=True)
            assert st is not None
            old = min(ceiling, st.ceiling_cap) if st.ceiling_cap is not None else ceiling
            st.ceiling_cap = max(0.0, round(old - step, 6))
            st.events["exposures"] += 1
            self._log(
                st,
                {
                    "at": t,
                    "cause": "exposure",
                    "old": old,
                    "new": st.ceiling_cap,
                    "reason": "ceiling lowered",
                },
            )
            self._dirty.add(pair)
            return st.ceiling_cap

    # ------------------------------------------------------------ persistence

    def _row(self, pair: Pair, st: _PairState) -> dict[str, Any]:
        return {
            "requester": pair[0],
            "provider": pair[1],
            "baseline": st.baseline,
            "penalty": st.penalty,
            "updated_at": st.updated_at,
            "last_verified_at": st.last_verified_at,
            "events": dict(st.events),
            "history": [dict(e) for e in st.history],
            "ceiling_cap": st.ceiling_cap,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the whole book.

        Shape: ``{"config": {...}, "pairs": [{"requester", "provider", "baseline"
        (null: config.initial), "penalty" (outstanding at updated_at),
        "updated_at", "last_verified_at", "events": {counter: int}, "history":
        [...]}]}`` (times: Unix seconds).
        """
        with self._lock:
            pairs = [self._row(p, st) for p, st in sorted(self._pairs.items())]
        return {"config": asdict(self.config), "pairs": pairs}

    def take_dirty(self) -> dict[Pair, dict[str, Any] | None]:
        """Return the rows of the pairs changed since the last call and forget them.

        A pair mapped to None was evicted (delete its row). If persisting the
        rows fails, hand them back with :meth:`mark_dirty`.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            return {p: (self._row(p, self._pairs[p]) if p in self._pairs else None) for p in dirty}

    def mark_dirty(self, pairs: Iterable[Pair]) -> None:
        """Mark ``pairs`` changed again (after a failed write of :meth:`take_dirty` rows)."""
        with self._lock:
            self._dirty.update(pairs)

    def _load_row(self, item: Mapping[str, Any]) -> None:
        pair = _check_pair((item["requester"], item["provider"]))
        st = _PairState()
        if "score" in item and "penalty" not in item:
            # earlier model: a score that decayed toward 0 and that sessions raised.
            # Keep only what it says against the requester: a score below the baseline
            # is an outstanding penalty; anything above is dropped.
            score = _unit("score", item["score"])
            if score > self.config.max_score:
                raise ValueError("score above max_score")
            st.penalty = max(0.0, min(self.config.initial, self.config.max_score) - score)
        else:
            st.baseline = None if item.get("baseline") is None else _unit("baseline", item["baseline"])
            st.penalty = _unit("penalty", item.get("penalty", 0.0))
        for name in ("updated_at", "last_verified_at"):
            v = item.get(name)
            if v is not None:
                v = float(v)
                if not math.isfinite(v):
                    raise ValueError(f"{name} is not finite")
            setattr(st, name, v)
        if item.get("ceiling_cap") is not None:
            st.ceiling_cap = _unit("ceiling_cap", item["ceiling_cap"])
        for k, v in dict(item.get("events") or {}).items():
            if k in st.events:
                st.events[k] = int(v)
        for e in list(item.get("history") or [])[-self.config.history_size :]:
            st.history.append(
                {
                    "at": float(e["at"]),
                    "cause": str(e["cause"]),
                    "old": float(e["old"]),
                    "new": float(e["new"]),
                    "reason": str(e.get("reason", ""))[:_MAX_REASON],
                }
            )
        self._pairs[pair] = st

    @classmethod
    def from_rows(cls, config: Mapping[str, Any] | None, rows: Iterable[Mapping[str, Any]]) -> TrustBook:
        """Rebuild a book from a config and pair rows (:meth:`take_dirty` / :meth:`to_dict` rows).

        Rows of the earlier model (``score`` instead of ``penalty``) are accepted:
        a score below the baseline becomes an outstanding penalty, a score above
        it is dropped. Rows past ``max_pairs`` are dropped, keeping the lowest
        scores (never the requester's favour).

        Raises:
            TrustStateError: malformed config or row.
        """
        try:
            book = cls(TrustConfig.from_dict(config or {}))
            for item in rows:
                book._load_row(item)
        except TrustStateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise TrustStateError(f"malformed trust book: {exc}") from None
        if len(book._pairs) > book.config.max_pairs:
            t = _now_ts()
            ranked = sorted(
                book._pairs.items(), key=lambda kv: (kv[1].baseline is None, -book._penalty(kv[1], t))
            )
            book._pairs = dict(ranked[: book.config.max_pairs])
        return book

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrustBook:
        """Rebuild a book from :meth:`to_dict` output (or the earlier model's).

        Raises:
            TrustStateError: malformed document.
        """
        try:
            pairs = d.get("pairs", [])
            if not isinstance(pairs, list):
                raise TrustStateError("pairs must be a list")
            return cls.from_rows(d.get("config") or {}, pairs)
        except AttributeError as exc:
            raise TrustStateError(f"malformed trust book: {exc}") from None


def _now_ts() -> float:
    import time

    return time.time()
