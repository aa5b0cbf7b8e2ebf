from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import (
    BudgetLedger,
    BudgetStateError,
    TrustBook,
    TrustBudget,
    TrustConfig,
    TrustStateError,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)
PAIR = ("did:web:lab-b.example", "did:web:hospital-a.example")
DAY = 86400.0


def test_unknown_pair_has_initial_score_capped_by_ceiling() -> None:
    book = TrustBook(TrustConfig(initial=0.5))
    assert book.score(PAIR, now=T0) == 0.5
    assert book.effective_trust(PAIR, ceiling=0.3, now=T0) == 0.3
    assert book.effective_trust(PAIR, ceiling=0.9, now=T0) == 0.5


def test_verifications_never_raise_and_penalties_recover_by_half_life() -> None:
    book = TrustBook(TrustConfig(initial=0.5, denial_penalty=0.2, half_life_seconds=DAY))
    assert book.record_verification(PAIR, now=T0) == 0.5
    assert book.record_denial(PAIR, now=T0) == pytest.approx(0.3)
    # the penalty halves per half-life: the score climbs back toward the baseline, never above
    assert book.score(PAIR, now=T0 + timedelta(days=1)) == pytest.approx(0.4)
    assert book.score(PAIR, now=T0 + timedelta(days=2)) == pytest.approx(0.45)
    assert book.score(PAIR, now=T0 + timedelta(days=60)) == 0.5
    # re-verifying does not speed the recovery up
    assert book.record_verification(PAIR, now=T0 + timedelta(days=1)) == pytest.approx(0.4)
    assert book.to_dict()["pairs"][0]["events"]["verifications"] == 2


def test_penalties_and_clamping() -> None:
    cfg = TrustConfig(initial=0.5, denial_penalty=0.1, audit_penalty=0.2, drift_penalty=0.3)
    book = TrustBook(cfg)
    assert book.record_denial(PAIR, now=T0) == pytest.approx(0.4)
    assert book.record_audit_hit(PAIR, now=T0) == pytest.approx(0.2)
    assert book.record_drift(PAIR, now=T0) == 0.0
    for _ in range(30):
        book.record_verification(PAIR, now=T0)
    assert book.score(PAIR, now=T0) == 0.0
    # the penalty is capped at the baseline: recovery starts at once
    assert book.score(PAIR, now=T0 + timedelta(days=7)) == pytest.approx(0.25)


def test_pairs_are_directional() -> None:
    book = TrustBook()
    book.record_drift(PAIR, now=T0)
    assert book.score((PAIR[1], PAIR[0]), now=T0) == book.config.initial


def test_clock_going_backwards_does_not_raise_trust() -> None:
    book = TrustBook(TrustConfig(half_life_seconds=DAY))
    book.record_denial(PAIR, now=T0)
    s = book.score(PAIR, now=T0)
    assert book.score(PAIR, now=T0 - timedelta(days=3)) == pytest.approx(s)


def test_round_trip_through_json() -> None:
    book = TrustBook(TrustConfig(half_life_seconds=DAY))
    book.record_verification(PAIR, now=T0)
    book.record_denial(("did:web:x.example", PAIR[1]), now=T0)
    d = json.loads(json.dumps(book.to_dict()))
    again = TrustBook.from_dict(d)
    later = T0 + timedelta(hours=5)
    assert again.score(PAIR, now=later) == pytest.approx(book.score(PAIR, now=later))
    assert again.to_dict() == book.to_dict()
    assert d["pairs"][0]["events"]["verifications"] == 1
    assert d["pairs"][1]["events"]["denials"] == 1


@pytest.mark.parametrize(
    "doc",
    [
        {"config": {"initial": 2}},
        {"config": {"half_life_seconds": 0}},
        {"pairs": [{"requester": "a", "provider": "b", "score": 7}]},
        {"pairs": [{"requester": "a"}]},
        {"pairs": "nope"},
    ],
)
def test_malformed_trust_state(doc: dict) -> None:
    with pytest.raises(TrustStateError):
        TrustBook.from_dict(doc)


def test_trust_rejects_bad_arguments() -> None:
    book = TrustBook()
    with pytest.raises(TrustStateError):
        book.effective_trust(PAIR, ceiling=1.2, now=T0)
    with pytest.raises(TrustStateError):
        book.score(PAIR, now=datetime(2026, 1, 1))
    with pytest.raises(TrustStateError):
        book.record_denial(("only-one",), now=T0)  # type: ignore[arg-type]


EVENTS = st.lists(
    st.tuples(st.sampled_from(["verify", "deny", "audit", "drift", "wait"]), st.floats(0, 5 * DAY)),
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(events=EVENTS, ceiling=st.floats(0, 1))
def test_trust_stays_in_range_and_moves_the_right_way(events, ceiling) -> None:
    book = TrustBook(TrustConfig(half_life_seconds=DAY))
    now = T0
    for kind, dt in events:
        now = now + timedelta(seconds=dt)
        before = book.score(PAIR, now=now)
        if kind == "verify":
            after = book.record_verification(PAIR, now=now)
            assert after == before  # nothing the requester repeats raises trust
        elif kind == "wait":
            after = book.score(PAIR, now=now + timedelta(seconds=dt))
            assert before - 1e-12 <= after <= book.config.initial  # time only recovers, up to the baseline
        else:
            fn = {
                "deny": book.record_denial,
                "audit": book.record_audit_hit,
                "drift": book.record_drift,
            }[kind]
            after = fn(PAIR, now=now)
            assert after <= before + 1e-12
        assert 0.0 <= after <= book.config.initial
        assert book.effective_trust(PAIR, ceiling=ceiling, now=now) <= ceiling


# ------------------------------------------------------------------ budget

KEY = ("urn:accord:contract:hospital-research", "did:web:lab-b.example")
BUDGET = TrustBudget(units=1.0, window_seconds=3600)


def test_sliding_window_sum() -> None:
    led = BudgetLedger()
    led.charge(KEY, 0.3, now=T0)
    led.charge(KEY, 0.5, now=T0 + timedelta(minutes=30))
    assert led.spent(KEY, window_seconds=3600, now=T0 + timedelta(minutes=59)) == pytest.approx(0.8)
    assert led.remaining(KEY, budget=BUDGET, now=T0 + timedelta(minutes=59)) == pytest.approx(0.2)
    # the first charge leaves the window exactly one window later
    assert led.spent(KEY, window_seconds=3600, now=T0 + timedelta(hours=1)) == pytest.approx(0.5)
    assert led.remaining(KEY, budget=BUDGET, now=T0 + timedelta(hours=2)) == 1.0
    assert led.spent(("other", "org"), window_seconds=60, now=T0) == 0.0


def test_remaining_floors_at_zero_and_zero_charges_are_ignored() -> None:
    led = BudgetLedger()
    led.charge(KEY, 3.0, now=T0)
    led.charge(KEY, 0, now=T0)
    assert led.remaining(KEY, budget=BUDGET, now=T0) == 0.0
    assert len(led.to_dict()["keys"][0]["charges"]) == 1


def test_charges_stamped_in_the_future_still_count() -> None:
    # the clock went back: a charge is never forgiven for it (it counts, against the requester)
    led = BudgetLedger()
    led.charge(KEY, 0.4, now=T0 + timedelta(minutes=10))
    assert led.spent(KEY, window_seconds=3600, now=T0) == pytest.approx(0.4)


def test_retention_prunes_old_charges() -> None:
    led = BudgetLedger(retention_seconds=7200)
    led.charge(KEY, 0.4, now=T0)
    led.charge(KEY, 0.1, now=T0 + timedelta(hours=3))
    assert len(led.to_dict()["keys"][0]["charges"]) == 1
    with pytest.raises(BudgetStateError):
        led.spent(KEY, window_seconds=10_000, now=T0)


def test_budget_round_trip_and_errors() -> None:
    led = BudgetLedger()
    led.charge(KEY, 0.25, now=T0)
    led.charge(KEY, 0.5, now=T0 + timedelta(seconds=1))
    again = BudgetLedger.from_dict(json.loads(json.dumps(led.to_dict())))
    assert again.spent(KEY, window_seconds=60, now=T0 + timedelta(seconds=2)) == pytest.approx(0.75)
    for bad in (-1, float("nan"), float("inf"), True):
        with pytest.raises(BudgetStateError):
            led.charge(KEY, bad, now=T0)
    with pytest.raises(BudgetStateError):
        led.charge(KEY, 1, now=datetime(2026, 1, 1))
    with pytest.raises(BudgetStateError):
        BudgetLedger.from_dict(
            {"charges": [{"contract_id": "c", "requester": "r", "at": 0, "units": -1}]}
        )


def test_request_counting_for_rate_limits() -> None:
    led = BudgetLedger()
    for i in range(5):
        led.charge(KEY, 1, now=T0 + timedelta(seconds=10 * i))
    assert int(led.spent(KEY, window_seconds=30, now=T0 + timedelta(seconds=40))) == 3
