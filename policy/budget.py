"""Trust-budget accounting: sensitivity units spent per sliding window.

Each contract's ``trust_budget`` allows ``units`` of beyond-MNI sensitivity
per ``window_seconds`` for each requester organization. The node charges
``Decision.budget_spent`` after an allowed disclosure and passes
:meth:`BudgetLedger.spent` as ``DecisionInput.budget_used``. The same
sliding-window sum counts requests for a contract's ``rate_limit``
(charge 1 unit per decision; ``spent`` is then ``recent_requests``).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from policy.contract import TrustBudget
from policy.errors import PolicyError

__all__ = ["BudgetKey", "BudgetLedger", "BudgetStateError"]

#: (contract id, requester org DID)
BudgetKey = tuple[str, str]


class BudgetStateError(PolicyError):
    """A charge, a window or a persisted ledger is malformed."""

    reason = "BUDGET_STATE_INVALID"
    caller_fault = True


def _ts(now: datetime) -> float:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise BudgetStateError("now must be a timezone-aware datetime")
    return now.timestamp()


class BudgetLedger:
    """Sliding-window sums of charges per (contract id, requester org). Thread-safe.

    Args:
        retention_seconds: charges older than this are forgotten (must exceed
            every window it is asked about; default 30 days).
    """

    def __init__(self, *, retention_seconds: float = 30 * 24 * 3600.0) -> None:
        if not retention_seconds > 0:
            raise BudgetStateError("retention_seconds must be > 0")
        self.retention_seconds = float(retention_seconds)
        self._charges: dict[BudgetKey, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def charge(self, key: BudgetKey, units: float, *, now: datetime) -> None:
        """Record ``units`` (≥ 0, finite) spent at ``now``.

        Raises:
            BudgetStateError: negative/non-finite units or naive ``now``.
        """
        if (
            isinstance(units, bool)
            or not isinstance(units, int | float)
            or not (math.isfinite(units) and units >= 0)
        ):
            raise BudgetStateError(f"units must be finite and >= 0, got {units!r}")
        t = _ts(now)
        if units == 0:
            return
        with self._lock:
            q = self._charges.setdefault(key, deque())
            q.append((t, float(units)))
            self._prune(q, t)

    def _prune(self, q: deque[tuple[float, float]], t: float) -> None:
        horizon = t - self.retention_seconds
        while q and q[0][0] <= horizon:
            q.popleft()

    def spent(self, key: BudgetKey, *, window_seconds: float, now: datetime) -> float:
        """Units charged in the window ``(now - window_seconds, now]``.

        Raises:
            BudgetStateError: window not in (0, retention_seconds] or naive ``now``.
        """
        if not 0 < window_seconds <= self.retention_seconds:
            raise BudgetStateError(
                f"window_seconds must be in (0, {self.retention_seconds}], got {window_seconds!r}"
            )
        t = _ts(now)
        lo = t - window_seconds
        with self._lock:
            q = self._charges.get(key)
            if not q:
                return 0.0
            return math.fsum(u for (ts, u) in q if lo < ts <= t)

    def remaining(self, key: BudgetKey, *, budget: TrustBudget, now: datetime) -> float:
        """``budget.units`` minus :meth:`spent` over ``budget.window_seconds``, floored at 0."""
        return max(
            0.0, budget.units - self.spent(key, window_seconds=budget.window_seconds, now=now)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form.

        Shape: ``{"retention_seconds", "charges": [{"contract_id", "requester",
        "at" (Unix seconds), "units"}]}``.
        """
        with self._lock:
            charges = [
                {"contract_id": k[0], "requester": k[1], "at": t, "units": u}
                for k, q in sorted(self._charges.items())
                for (t, u) in q
            ]
        return {"retention_seconds": self.retention_seconds, "charges": charges}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetLedger:
        """Rebuild a ledger from :meth:`to_dict` output.

        Raises:
            BudgetStateError: malformed document.
        """
        try:
            led = cls(retention_seconds=float(d.get("retention_seconds", 30 * 24 * 3600.0)))
            for c in d.get("charges", []):
                units = float(c["units"])
                at = float(c["at"])
                if not (math.isfinite(units) and units >= 0 and math.isfinite(at)):
                    raise ValueError("bad charge")
                led._charges.setdefault(
                    (str(c["contract_id"]), str(c["requester"])), deque()
                ).append((at, units))
            for q in led._charges.values():
                q_sorted = sorted(q)
                q.clear()
                q.extend(q_sorted)
        except BudgetStateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise BudgetStateError(f"malformed budget ledger: {exc}") from None
        return led
