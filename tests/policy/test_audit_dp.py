"""DP layer: Laplace answers are unbiased with the right spread; budgets are exact."""

from __future__ import annotations

import math
import statistics
import threading

import pytest

pytest.importorskip("opendp")

from policy.dp import (  # noqa: E402
    DPError,
    PrivacyBudget,
    PrivacyBudgetExhaustedError,
    dp_answer,
    dp_avg,
    dp_count,
    dp_sum,
)

VALUES = [float(v) for v in range(10, 110)]  # 100 values, sum 5950, mean 59.5
DRAWS = 400


def test_dp_sum_is_unbiased_with_laplace_spread():
    eps, bounds = 1.0, (0.0, 200.0)
    draws = [dp_sum(VALUES, epsilon=eps, bounds=bounds) for _ in range(DRAWS)]
    scale = 200.0 / eps  # sensitivity max(|lo|,|hi|) / eps
    # mean of DRAWS Laplace(b) has sd b*sqrt(2/DRAWS) ~ 14; allow 5 sd
    assert abs(statistics.fmean(draws) - 5950.0) < 5 * scale * math.sqrt(2 / DRAWS)
    sd = statistics.pstdev(draws)
    assert 0.7 * scale * math.sqrt(2) < sd < 1.3 * scale * math.sqrt(2)


def test_dp_sum_clamps_to_bounds():
    draws = [dp_sum([1000.0] * 10, epsilon=5.0, bounds=(0.0, 10.0)) for _ in range(200)]
    assert abs(statistics.fmean(draws) - 100.0) < 5


def test_dp_count_and_avg():
    counts = [dp_count(VALUES, epsilon=1.0) for _ in range(DRAWS)]
    assert all(isinstance(c, int) for c in counts)
    assert abs(statistics.fmean(counts) - 100) < 0.5
    avgs = [dp_avg(VALUES, epsilon=4.0, bounds=(0.0, 200.0)) for _ in range(DRAWS)]
    assert all(a is not None and 0.0 <= a <= 200.0 for a in avgs)
    assert abs(statistics.median(avgs) - 59.5) < 3


def test_budget_enforcement_is_exact():
    b = PrivacyBudget(1.0)
    for _ in range(10):
        b.spend("s", 0.1)  # 10 x 0.1 == 1 exactly (decimal accounting)
    assert b.remaining("s") == 0.0
    with pytest.raises(PrivacyBudgetExhaustedError) as ei:
        b.spend("s", 1e-9)
    assert ei.value.reason == "PRIVACY_BUDGET_EXHAUSTED" and ei.value.metadata["scope_key"] == "s"
    b.spend("other", 1.0)  # scopes are separate
    b2 = PrivacyBudget.from_state(b.to_state())
    assert b2.remaining("s") == 0.0 and not b2.can_spend("s", 0.01) and b2.can_spend("x", 1.0)


def test_dp_answer_denies_when_spent_and_charges_only_answers():
    b = PrivacyBudget(1.0)
    answers = [dp_answer(b, "k", "sum", VALUES, epsilon=0.3, bounds=(0, 200)) for _ in range(4)]
    assert [a.allow for a in answers] == [True, True, True, False]
    assert answers[-1].reason == "PRIVACY_BUDGET_EXHAUSTED" and answers[-1].value is None
    assert math.isclose(b.spent("k"), 0.9)
    assert dp_answer(b, "k", "count", VALUES, epsilon=0.1).allow
    assert not dp_answer(b, "k", "count", VALUES, epsilon=0.1).allow
    with pytest.raises(DPError):
        dp_answer(b, "k2", "sum", VALUES, epsilon=0.1)  # no bounds: refused before charging
    assert b.spent("k2") == 0.0


def test_concurrent_spending_never_overdraws():
    b = PrivacyBudget(5.0)
    ok = []

    def worker():
        for _ in range(50):
            try:
                b.spend("s", 0.25)
                ok.append(1)
            except PrivacyBudgetExhaustedError:
                pass

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(ok) == 20 and b.remaining("s") == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: dp_sum(VALUES, epsilon=0, bounds=(0, 1)),
        lambda: dp_sum(VALUES, epsilon=float("inf"), bounds=(0, 1)),
        lambda: dp_sum(VALUES, epsilon=1, bounds=(1, 1)),
        lambda: dp_sum(VALUES, epsilon=1, bounds=(0, float("nan"))),
        lambda: dp_sum([float("nan")], epsilon=1, bounds=(0, 1)),
        lambda: dp_count(VALUES, epsilon=-1),
        lambda: PrivacyBudget(0),
        lambda: PrivacyBudget.from_state({"total": "x"}),
        lambda: dp_answer(PrivacyBudget(1), "k", "median", VALUES, epsilon=1),
    ],
)
def test_bad_parameters(call):
    with pytest.raises(DPError) as ei:
        call()
    assert ei.value.caller_fault
