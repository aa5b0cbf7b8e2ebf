"""Issue #10.2: bookkeeping keyed by outside strings stays bounded and never resets a budget."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from policy_support import DATA, HOSPITAL_ID, NOW, PROVIDER, REQUESTER

from policy import BudgetLedger, Contract, PolicyDecisionPoint, RegopyEngine
from policy.budget import BudgetKeysExhaustedError

KEY = (HOSPITAL_ID, REQUESTER)


def test_unknown_contract_ids_leave_no_rate_budget_or_lock_state() -> None:
    p = PolicyDecisionPoint(RegopyEngine())
    p.load([Contract.load(DATA / "hospital.yaml")])
    for i in range(300):
        d = p.decide(
            contract_id=f"urn:attacker:{i}",
            purpose="research",
            requester_org=REQUESTER,
            provider_org=PROVIDER,
            requester_agent="did:key:z6Mk",
            agent_claims={"org": REQUESTER, "scopes": ["data:read"]},
            requested_fields=["patient.age"],
            session={"requests": 0},
            now=NOW + timedelta(milliseconds=i),
            resource="cohort",
            subject="*",
        )
        assert d.reasons == ("UNKNOWN_CONTRACT",)
    assert "urn:attacker" not in json.dumps(p.requests.to_dict())
    assert "urn:attacker" not in json.dumps(p.budgets.to_dict())
    assert not any(k[0].startswith("urn:attacker") for k in p._locks)


def test_a_full_ledger_refuses_new_keys_rather_than_reset_a_spent_budget() -> None:
    led = BudgetLedger(max_keys=3)
    keys = [(f"c{i}", REQUESTER) for i in range(3)]
    for k in keys:
        led.charge(k, 0.5, now=NOW)
        assert led.spent(k, window_seconds=3600, now=NOW) == 0.5  # window asked: horizon 1 h
    with pytest.raises(BudgetKeysExhaustedError) as ei:
        led.admit(("c-new", REQUESTER), now=NOW + timedelta(minutes=1))
    assert ei.value.reason == "BUDGET_KEYS_EXHAUSTED"
    with pytest.raises(BudgetKeysExhaustedError):
        led.charge(("c-new", REQUESTER), 0.1, now=NOW + timedelta(minutes=1))
    # every spent budget is intact
    for k in keys:
        assert led.spent(k, window_seconds=3600, now=NOW + timedelta(minutes=1)) == 0.5
    # once a key's charges have left every window it was asked about, its place can be taken
    later = NOW + timedelta(hours=1, seconds=2)
    led.admit(("c-new", REQUESTER), now=later)
    assert len(led) == 3


def test_slots_per_key_are_bounded_and_never_undercount() -> None:
    led = BudgetLedger(max_slots_per_key=64)
    rng = random.Random(7)
    charges = []
    t = NOW
    led.spent(KEY, window_seconds=3600, now=t)
    for _ in range(5000):
        t = t + timedelta(seconds=rng.uniform(0, 2))
        units = rng.choice([0.1, 0.000001, 0.25])
        led.charge(KEY, units, now=t)
        charges.append((t, units))
        assert len(led.to_dict()["keys"][0]["charges"]) <= 64
    for probe in (t, t + timedelta(minutes=30)):
        true = sum(u for (ts, u) in charges if ts > probe - timedelta(hours=1))
        got = led.spent(KEY, window_seconds=3600, now=probe)
        assert got >= true - 1e-9  # coarser slots only keep charges longer
        assert got <= true * 1.1 + 1  # ... by at most a few slots' worth


def test_expired_windows_are_dropped() -> None:
    led = BudgetLedger()
    for i in range(50):
        k = (f"c{i}", REQUESTER)
        led.charge(k, 1, now=NOW)
        led.spent(k, window_seconds=60, now=NOW)
    assert len(led) == 50
    assert led.prune(now=NOW + timedelta(seconds=61)) == 50
    assert len(led) == 0
