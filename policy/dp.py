"""Optional differential-privacy layer for aggregates (OpenDP Laplace mechanisms).

The reconstruction auditor (:mod:`policy.auditor`) stops *exact*
reconstruction only: many noiseless answers can still pin a value down
approximately (Dinur and Nissim 2003). Where a contract asks for it, the node
answers with :func:`dp_count`, :func:`dp_sum` or :func:`dp_avg` instead, and
charges each answer's ε to a per-scope :class:`PrivacyBudget` (sequential
composition: the ε of answered queries add up). Once a scope's budget is
spent, further queries are denied with ``PRIVACY_BUDGET_EXHAUSTED``.

Neighbouring datasets differ by adding or removing one record (OpenDP's
``symmetric_distance``, d_in = 1). SUM clamps each value to ``bounds`` first,
so its sensitivity is ``max(|lo|, |hi|)``; AVG spends ε/2 on a noisy SUM and
ε/2 on a noisy COUNT and divides. Noise is drawn by OpenDP's own samplers
(it is not Python's ``random``). The OpenDP "contrib" features are enabled on
first use. Requires the ``dp`` extra (``opendp``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from policy.errors import PolicyError

__all__ = [
    "DPAnswer",
    "DPError",
    "PrivacyBudget",
    "PrivacyBudgetExhaustedError",
    "dp_answer",
    "dp_avg",
    "check_dp_parameters",
    "dp_count",
    "dp_sum",
]


class DPError(PolicyError):
    """Invalid DP parameters (reason ``INVALID_DP_PARAMETERS``, caller's fault)."""

    reason = "INVALID_DP_PARAMETERS"
    caller_fault = True


class PrivacyBudgetExhaustedError(PolicyError):
    """The scope's ε budget cannot pay for the query (``PRIVACY_BUDGET_EXHAUSTED``).

    ``metadata`` holds ``scope_key``, ``requested`` and ``remaining`` (decimal strings).
    """

    reason = "PRIVACY_BUDGET_EXHAUSTED"
    caller_fault = True


def _eps(epsilon: float) -> Fraction:
    """Exact decimal value of a positive finite ε (so 10 x 0.1 == 1)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, Fraction)):
        raise DPError(f"epsilon must be a number, got {epsilon!r}")
    if isinstance(epsilon, float) and not math.isfinite(epsilon):
        raise DPError(f"epsilon must be finite, got {epsilon!r}")
    e = Fraction(repr(epsilon)) if isinstance(epsilon, float) else Fraction(epsilon)
    if e <= 0:
        raise DPError(f"epsilon must be > 0, got {epsilon!r}")
    return e


class PrivacyBudget:
    """Per-scope ε accountant (sequential composition), exact and thread-safe.

    Args:
        epsilon_total: the ε each scope key may spend in total (> 0).

    Raises:
        DPError: ``epsilon_total`` is not a positive finite number.

    """

    def __init__(self, epsilon_total: float) -> None:
        self._total = _eps(epsilon_total)
        self._spent: dict[str, Fraction] = {}
        self._lock = threading.Lock()

    @property
    def epsilon_total(self) -> float:
        """The per-scope total ε."""
        return float(self._total)

    def spent(self, scope_key: str) -> float:
        """ε already spent by ``scope_key``."""
        return float(self._spent.get(scope_key, Fraction(0)))

    def remaining(self, scope_key: str) -> float:
        """ε still available to ``scope_key``."""
        return float(self._total - self._spent.get(scope_key, Fraction(0)))

    def can_spend(self, scope_key: str, epsilon: float) -> bool:
        """Return True if ``epsilon`` fits in the remaining budget (charges nothing)."""
        e = _eps(epsilon)
        return self._spent.get(scope_key, Fraction(0)) + e <= self._total

    def spend(self, scope_key: str, epsilon: float) -> None:
        """Charge ``epsilon`` to ``scope_key`` atomically, or refuse.

        Raises:
            PrivacyBudgetExhaustedError: the charge would exceed the total.
            DPError: ``epsilon`` is not a positive finite number.

        """
        e = _eps(epsilon)
        with self._lock:
            cur = self._spent.get(scope_key, Fraction(0))
            if cur + e > self._total:
                raise PrivacyBudgetExhaustedError(
                    f"privacy budget of scope {scope_key!r} exhausted: requested ε={float(e)}, "
                    f"remaining ε={float(self._total - cur)}",
                    metadata={
                        "scope_key": scope_key,
                        "requested": str(float(e)),
                        "remaining": str(float(self._total - cur)),
                    },
                )
            self._spent[scope_key] = cur + e

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: totals and spends as exact ``"p/q"`` fraction strings."""
        with self._lock:
            return {"total": str(self._total), "spent": {k: str(v) for k, v in self._spent.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PrivacyBudget:
        """Rebuild from :meth:`to_state` output.

        Raises:
            DPError: malformed state.

        """
        try:
            b = cls(1)
            b._total = Fraction(state["total"])
            b._spent = {str(k): Fraction(v) for k, v in state["spent"].items()}
        except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as e:
            raise DPError(f"invalid privacy budget state: {e}") from None
        if b._total <= 0 or any(v < 0 for v in b._spent.values()):
            raise DPError("invalid privacy budget state: negative values")
        return b


# --------------------------------------------------------------------------- mechanisms

_init_lock = threading.Lock()
_ready = False


def _dp() -> Any:
    global _ready
    import opendp.prelude as dp

    if not _ready:
        with _init_lock:
            dp.enable_features("contrib")
            _ready = True
    return dp


def _bounds(bounds: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise DPError(f"bounds must be (lo, hi), got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise DPError(f"bounds must be finite with lo < hi, got {bounds!r}")
    return lo, hi


def _floats(values: Sequence[float]) -> list[float]:
    out = [float(v) for v in values]
    if any(not math.isfinite(v) for v in out):
        raise DPError("values must be finite numbers")
    return out


def check_dp_parameters(epsilon_total: Any, epsilon_per_query: Any, bounds: Any) -> None:
    """Check a dataset's DP parameters when it is registered, not when a query arrives.

    Args:
        epsilon_total: ε each scope may spend in total (> 0, finite).
        epsilon_per_query: ε charged per answered query (> 0, finite).
        bounds: ``(lo, hi)`` clamping interval of the sensitive values,
            finite with ``lo < hi``.

    Raises:
        DPError: any parameter is out of range.

    """
    _eps(epsilon_total)
    _eps(epsilon_per_query)
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Sequence) or len(bounds) != 2:
        raise DPError(f"bounds must be [lo, hi], got {bounds!r}")
    _bounds(bounds)


@lru_cache(maxsize=256)
def _sum_meas(lo: float, hi: float, epsilon: float) -> Any:
    dp = _dp()
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()

    def make(scale: float) -> Any:
        return space >> dp.t.then_clamp((lo, hi)) >> dp.t.then_sum() >> dp.m.then_laplace(scale)

    return make(dp.binary_search_param(make, d_in=1, d_out=epsilon))


@lru_cache(maxsize=256)
def _count_meas(epsilon: float) -> Any:
    dp = _dp()
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()

    def make(scale: float) -> Any:
        return space >> dp.t.then_count() >> dp.m.then_laplace(scale)

    return make(dp.binary_search_param(make, d_in=1, d_out=epsilon))


def dp_count(values: Sequence[float], *, epsilon: float) -> int:
    """ε-DP count of ``values`` (discrete Laplace noise, sensitivity 1).

    Args:
        values: the selected records' values (only their number matters).
        epsilon: privacy loss ε > 0 (under add/remove-one neighbours).

    Returns:
        The noisy count (may be negative; clamp for display if needed).

    Raises:
        DPError: bad ε.

    """
    _eps(epsilon)
    return int(_count_meas(float(epsilon))(_floats(values)))


def dp_sum(values: Sequence[float], *, epsilon: float, bounds: Sequence[float]) -> float:
    """ε-DP sum of ``values`` clamped to ``bounds`` (Laplace noise).

    Args:
        values: the selected records' sensitive values (finite).
        epsilon: privacy loss ε > 0.
        bounds: ``(lo, hi)`` clamping interval, lo < hi (units of the column).

    Raises:
        DPError: bad ε, bounds or values.

    """
    _eps(epsilon)
    lo, hi = _bounds(bounds)
    return float(_sum_meas(lo, hi, float(epsilon))(_floats(values)))


def dp_avg(values: Sequence[float], *, epsilon: float, bounds: Sequence[float]) -> float | None:
    """ε-DP mean: a noisy SUM (ε/2) over a noisy COUNT (ε/2), clamped into ``bounds``.

    Returns:
        The noisy mean, or None when the noisy count is below 1.

    Raises:
        DPError: bad ε, bounds or values.

    """
    e = _eps(epsilon)
    lo, hi = _bounds(bounds)
    vals = _floats(values)
    half = float(e / 2)
    s = float(_sum_meas(lo, hi, half)(vals))
    n = int(_count_meas(half)(vals))
    if n < 1:
        return None
    return min(hi, max(lo, s / n))


@dataclass(frozen=True)
class DPAnswer:
    """A DP-protected answer, or a budget denial.

    Attributes:
        allow: False when the budget could not pay.
        reason: ``"OK"`` or ``"PRIVACY_BUDGET_EXHAUSTED"``.
        value: the noisy answer (None when denied, or an AVG over a noisy
            count below 1).
        epsilon: ε charged (0 when denied).
        remaining: ε left for the scope after this query.

    """

    allow: bool
    reason: str
    value: float | int | None
    epsilon: float
    remaining: float


def dp_answer(
    budget: PrivacyBudget,
    scope_key: str,
    kind: str,
    values: Sequence[float],
    *,
    epsilon: float,
    bounds: Sequence[float] | None = None,
) -> DPAnswer:
    """Charge ``epsilon`` to the scope and answer ``kind`` with noise, or deny.

    Args:
        budget: the accountant.
        scope_key: the pooling key (as for the auditor).
        kind: ``"count"``, ``"sum"`` or ``"avg"``.
        values: the selected records' sensitive values.
        epsilon: ε for this query.
        bounds: ``(lo, hi)``, required for ``sum`` and ``avg``.

    Raises:
        DPError: bad kind, ε, bounds or values (checked before any charge).

    """
    if kind not in ("count", "sum", "avg"):
        raise DPError(f"kind must be count, sum or avg, got {kind!r}")
    _eps(epsilon)
    if kind != "count":
        if bounds is None:
            raise DPError(f"{kind} needs bounds")
        _bounds(bounds)
    vals = _floats(values)
    try:
        budget.spend(scope_key, epsilon)
    except PrivacyBudgetExhaustedError:
        return DPAnswer(False, "PRIVACY_BUDGET_EXHAUSTED", None, 0.0, budget.remaining(scope_key))
    if kind == "count":
        value: float | int | None = dp_count(vals, epsilon=epsilon)
    elif kind == "sum":
        value = dp_sum(vals, epsilon=epsilon, bounds=bounds)  # type: ignore[arg-type]
    else:
        value = dp_avg(vals, epsilon=epsilon, bounds=bounds)  # type: ignore[arg-type]
    return DPAnswer(True, "OK", value, float(_eps(epsilon)), budget.remaining(scope_key))
