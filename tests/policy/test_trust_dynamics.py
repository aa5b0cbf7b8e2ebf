"""Issue #18.2: trust moves only as the operator's rule says (policy level, with the real PDP)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from policy_support import DATA, HOSPITAL_ID, NOW, PROVIDER, REQUESTER

from policy import Contract, PolicyDecisionPoint, RegopyEngine, TrustBook, TrustConfig, TrustStateError

PAIR = (REQUESTER, PROVIDER)
DAY = 86400.0


def _pdp(book: TrustBook) -> PolicyDecisionPoint:
    p = PolicyDecisionPoint(RegopyEngine(), trust=book)
    p.load([Contract.load(DATA / "hospital.yaml")])
    return p


def _ask_zip3(p: PolicyDecisionPoint, now=NOW):
    return p.decide(
        contract_id=HOSPITAL_ID,
        purpose="research",
        requester_org=REQUESTER,
        provider_org=PROVIDER,
        requester_agent="did:key:z6Mk",
        agent_claims={"org": REQUESTER, "scopes": ["data:read"]},
        requested_fields=["patient.age", "patient.zip3"],  # zip3: min_trust 0.5
        session={"requests": 0},
        now=now,
        resource="cohort",
        subject="*",
    )


def test_opening_sessions_does_not_raise_trust_to_a_high_trust_field() -> None:
    # the node calls record_verification once per session it opens
    book = TrustBook(TrustConfig(initial=0.4))
    p = _pdp(book)
    assert _ask_zip3(p).reasons == ("TRUST_TOO_LOW:patient.zip3",)
    for i in range(50):
        book.record_verification(PAIR, now=NOW + timedelta(seconds=i))
    d = _ask_zip3(p, now=NOW + timedelta(seconds=60))
    assert "patient.zip3" not in d.released_fields
    assert d.effective_trust == pytest.approx(0.4)
    assert book.score(PAIR, now=NOW + timedelta(days=30)) == pytest.approx(0.4)


def test_verifications_do_not_wash_out_a_penalty() -> None:
    book = TrustBook(TrustConfig(initial=0.6, drift_penalty=0.3, half_life_seconds=DAY))
    assert book.record_drift(PAIR, now=NOW) == pytest.approx(0.3)
    for i in range(100):
        book.record_verification(PAIR, now=NOW + timedelta(seconds=i))
    # only the recovery of 100 s out of a one-day half-life
    assert book.score(PAIR, now=NOW + timedelta(seconds=100)) < 0.301
    assert book.score(PAIR, now=NOW + timedelta(days=1)) == pytest.approx(0.45)


def test_every_change_is_recorded_with_its_cause_and_the_history_is_bounded() -> None:
    book = TrustBook(TrustConfig(initial=0.5, denial_penalty=0.01, history_size=5))
    book.record_audit_hit(PAIR, now=NOW)
    book.record_verification(PAIR, now=NOW)  # no change of score: not a history entry
    h = book.history(PAIR)
    assert [(e["cause"], e["old"], e["new"]) for e in h] == [("audit_hit", 0.5, pytest.approx(0.3))]
    for i in range(20):
        book.record_denial(PAIR, now=NOW + timedelta(seconds=i + 1))
    h = book.history(PAIR)
    assert len(h) == 5 and {e["cause"] for e in h} == {"denial"}
    assert all(e["new"] < e["old"] for e in h)
    # a penalty that changes nothing (score already 0) is counted but not logged
    low = TrustBook(TrustConfig(initial=0.1, drift_penalty=0.3))
    low.record_drift(PAIR, now=NOW)
    low.record_drift(PAIR, now=NOW)
    assert len(low.history(PAIR)) == 1
    assert low.to_dict()["pairs"][0]["events"]["drifts"] == 2


def test_operator_sets_the_baseline_with_a_reason() -> None:
    book = TrustBook(TrustConfig(initial=0.5))
    book.record_drift(PAIR, now=NOW)
    assert book.set_baseline(PAIR, 0.75, reason="reviewed incident #4", now=NOW + timedelta(hours=1)) == 0.75
    last = book.history(PAIR)[-1]
    assert last["cause"] == "operator" and last["reason"] == "reviewed incident #4"
    assert last["new"] == 0.75 and last["old"] < 0.5
    assert book.baseline(PAIR) == 0.75
    # penalties now recover toward the operator's baseline, never above it
    book.record_denial(PAIR, now=NOW + timedelta(hours=2))
    assert book.score(PAIR, now=NOW + timedelta(days=400)) == 0.75
    for bad in (1.5, -0.1, True):
        with pytest.raises(TrustStateError):
            book.set_baseline(PAIR, bad, reason="x", now=NOW)
    with pytest.raises(TrustStateError):
        book.set_baseline(PAIR, 0.5, reason="  ", now=NOW)


def test_state_is_bounded_and_a_full_book_fails_closed() -> None:
    book = TrustBook(TrustConfig(initial=0.5, max_pairs=2))
    a, b, c = (
        ("did:web:a.example", PROVIDER),
        ("did:web:b.example", PROVIDER),
        ("did:web:c.example", PROVIDER),
    )
    book.record_denial(a, now=NOW)
    book.record_verification(b, now=NOW)  # nothing to lose: may be evicted
    book.record_denial(c, now=NOW)  # takes b's place
    assert set(book.pairs()) == {a, c}
    # both tracked pairs carry penalties: an untracked pair (b again, or a new one) scores 0
    assert book.score(b, now=NOW) == 0.0
    d = ("did:web:d.example", PROVIDER)
    assert book.score(d, now=NOW) == 0.0
    assert book.record_verification(d, now=NOW) == 0.0
    assert set(book.pairs()) == {a, c}
    # the penalized pairs keep their penalties
    assert book.score(a, now=NOW) < 0.5 and book.score(c, now=NOW) < 0.5


def test_incremental_rows_only_for_changed_pairs_and_round_trip() -> None:
    book = TrustBook(TrustConfig(initial=0.5, half_life_seconds=DAY))
    other = ("did:web:x.example", PROVIDER)
    book.record_denial(PAIR, now=NOW)
    book.record_verification(other, now=NOW)
    first = book.take_dirty()
    assert set(first) == {PAIR, other}
    assert book.take_dirty() == {}
    book.record_drift(PAIR, now=NOW + timedelta(seconds=1))
    second = book.take_dirty()
    assert set(second) == {PAIR}
    rows = json.loads(json.dumps([second[PAIR], first[other]]))
    again = TrustBook.from_rows(json.loads(json.dumps(book.to_dict()["config"])), rows)
    later = NOW + timedelta(hours=7)
    assert again.score(PAIR, now=later) == pytest.approx(book.score(PAIR, now=later))
    assert again.history(PAIR) == book.history(PAIR)


def test_earlier_model_state_keeps_penalties_and_drops_session_gains() -> None:
    legacy = {
        "config": {"initial": 0.5, "verification_boost": 0.05},
        "pairs": [
            {"requester": "did:web:up.example", "provider": PROVIDER, "score": 0.95, "updated_at": 0},
            {
                "requester": "did:web:down.example",
                "provider": PROVIDER,
                "score": 0.2,
                "updated_at": NOW.timestamp(),
            },
        ],
    }
    book = TrustBook.from_dict(legacy)
    assert book.score(("did:web:up.example", PROVIDER), now=NOW) == 0.5
    assert book.score(("did:web:down.example", PROVIDER), now=NOW) == pytest.approx(0.2)
