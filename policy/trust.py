"""Dynamic trust between organizations, and the effective trust τ.

For a (requester org, provider org) pair, τ = min(contract ceiling, score).
The score starts at ``TrustConfig.initial``, rises by ``verification_boost``
on each successful verification (credential/VP check of the requester),
falls by a penalty on each denial, reconstruction-audit hit or
authorization-drift event, and in between decays exponentially with
``half_life_seconds``: since decay is memoryless, the score at ``now`` is
the score after the last event times 2^(-elapsed / half-life), i.e. trust
fades with the time since the requester last proved itself. Scores are
clamped to [0, ``max_score``].
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from policy.errors import PolicyError

__all__ = ["Pair", "TrustBook", "TrustConfig", "TrustStateError"]

#: (requester org DID, provider org DID)
Pair = tuple[str, str]


class TrustStateError(PolicyError):
    """A persisted trust book or a trust config is malformed."""

    reason = "TRUST_STATE_INVALID"
    caller_fault = True


@dataclass(frozen=True)
class TrustConfig:
    """Trust dynamics (all scores in [0, 1]).

    Attributes:
        initial: score of a pair never seen.
        max_score: upper clamp of the score.
        half_life_seconds: decay half-life, seconds (> 0).
        verification_boost: added on a successful verification.
        denial_penalty: subtracted on a policy denial.
        audit_penalty: subtracted on a reconstruction-audit hit.
        drift_penalty: subtracted on an authorization-drift event.

    Raises:
        TrustStateError: a value is out of range.
    """

    initial: float = 0.5
    max_score: float = 1.0
    half_life_seconds: float = 7 * 24 * 3600.0
    verification_boost: float = 0.05
    denial_penalty: float = 0.05
    audit_penalty: float = 0.2
    drift_penalty: float = 0.3

    def __post_init__(self) -> None:
        for name in (
            "initial",
            "max_score",
            "verification_boost",
            "denial_penalty",
            "audit_penalty",
            "drift_penalty",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise TrustStateError(f"TrustConfig.{name} must be in [0, 1], got {v!r}")
        if self.initial > self.max_score:
            raise TrustStateError("TrustConfig.initial must not exceed max_score")
        hl = self.half_life_seconds
        if (
            isinstance(hl, bool)
            or not isinstance(hl, int | float)
            or not (hl > 0 and math.isfinite(hl))
        ):
            raise TrustStateError(f"TrustConfig.half_life_seconds must be > 0, got {hl!r}")


@dataclass
class _PairState:
    score: float
    updated_at: float | None = None  # Unix seconds of the last event
    last_verified_at: float | None = None
    events: dict[str, int] = field(
        default_factory=lambda: {"verifications": 0, "denials": 0, "audit_hits": 0, "drifts": 0}
    )


def _ts(now: datetime) -> float:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise TrustStateError("now must be a timezone-aware datetime")
    return now.timestamp()


class TrustBook:
    """Per-pair trust scores (thread-safe, in memory; persist with :meth:`to_dict`).

    Args:
        config: the dynamics; defaults to :class:`TrustConfig()`.
    """

    def __init__(self, config: TrustConfig | None = None) -> None:
        self.config = config or TrustConfig()
        self._pairs: dict[Pair, _PairState] = {}
        self._lock = threading.Lock()

    def _decayed(self, st: _PairState, t: float) -> float:
        if st.updated_at is None:
            return st.score
        elapsed = max(0.0, t - st.updated_at)
        return st.score * 2.0 ** (-elapsed / self.config.half_life_seconds)

    def _state(self, pair: Pair) -> _PairState:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise TrustStateError("pair must be (requester_org, provider_org)")
        st = self._pairs.get(pair)
        if st is None:
            st = _PairState(score=self.config.initial)
            self._pairs[pair] = st
        return st

    def score(self, pair: Pair, *, now: datetime) -> float:
        """Return the dynamic score of ``pair`` at ``now`` (decay applied), in [0, max_score]."""
        t = _ts(now)
        with self._lock:
            st = self._pairs.get(pair)
            return self.config.initial if st is None else self._decayed(st, t)

    def effective_trust(self, pair: Pair, *, ceiling: float, now: datetime) -> float:
        """τ = min(ceiling, score at now).

        Args:
            pair: (requester org DID, provider org DID).
            ceiling: the contract's ``trust_ceiling`` in [0, 1].
            now: timezone-aware time.

        Raises:
            TrustStateError: ceiling outside [0, 1] or naive ``now``.
        """
        if (
            isinstance(ceiling, bool)
            or not isinstance(ceiling, int | float)
            or not 0 <= ceiling <= 1
        ):
            raise TrustStateError(f"ceiling must be in [0, 1], got {ceiling!r}")
        return min(float(ceiling), self.score(pair, now=now))

    def _event(self, pair: Pair, now: datetime, delta: float, counter: str) -> float:
        t = _ts(now)
        with self._lock:
            st = self._state(pair)
            s = min(self.config.max_score, max(0.0, self._decayed(st, t) + delta))
            st.score = s
            st.updated_at = max(t, st.updated_at or t)
            st.events[counter] += 1
            if counter == "verifications":
                st.last_verified_at = st.updated_at
            return s

    def record_verification(self, pair: Pair, *, now: datetime) -> float:
        """Record a successful verification of the requester; return the new score."""
        return self._event(pair, now, self.config.verification_boost, "verifications")

    def record_denial(self, pair: Pair, *, now: datetime) -> float:
        """Record a policy denial; return the new score."""
        return self._event(pair, now, -self.config.denial_penalty, "denials")

    def record_audit_hit(self, pair: Pair, *, now: datetime) -> float:
        """Record a reconstruction-audit refusal; return the new score."""
        return self._event(pair, now, -self.config.audit_penalty, "audit_hits")

    def record_drift(self, pair: Pair, *, now: datetime) -> float:
        """Record an authorization-drift event (scope expansion); return the new score."""
        return self._event(pair, now, -self.config.drift_penalty, "drifts")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form.

        Shape: ``{"config": {...}, "pairs": [{"requester", "provider", "score",
        "updated_at", "last_verified_at", "events"}]}`` (times: Unix seconds).
        """
        with self._lock:
            pairs = [
                {
                    "requester": r,
                    "provider": p,
                    "score": st.score,
                    "updated_at": st.updated_at,
                    "last_verified_at": st.last_verified_at,
                    "events": dict(st.events),
                }
                for (r, p), st in sorted(self._pairs.items())
            ]
        return {"config": asdict(self.config), "pairs": pairs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrustBook:
        """Rebuild a book from :meth:`to_dict` output.

        Raises:
            TrustStateError: malformed document.
        """
        try:
            book = cls(TrustConfig(**dict(d.get("config") or {})))
            for item in d.get("pairs", []):
                score = float(item["score"])
                if not 0.0 <= score <= book.config.max_score:
                    raise ValueError("score out of range")
                events = {k: int(v) for k, v in dict(item.get("events") or {}).items()}
                st = _PairState(
                    score=score,
                    updated_at=None
                    if item.get("updated_at") is None
                    else float(item["updated_at"]),
                    last_verified_at=None
                    if item.get("last_verified_at") is None
                    else float(item["last_verified_at"]),
                )
                st.events.update(events)
                book._pairs[(str(item["requester"]), str(item["provider"]))] = st
        except TrustStateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise TrustStateError(f"malformed trust book: {exc}") from None
        return book
