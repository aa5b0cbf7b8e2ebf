"""Behavioural baselines (issue #15): probing, shifts, bounds, cooldown (pure model)."""

from __future__ import annotations

import pytest

from policy.baselines import BaselineConfig, BehaviourBaselines, Observation

AGENT = ("agent", "did:key:z6Mkprobe")
MNI = frozenset({"patient_id", "triage_level"})


def ob(at, fields=MNI, released=None, purpose="triage", refused=False, audit_hit=False):
    return Observation(
        at=at,
        purpose=purpose,
        fields=frozenset(fields),
        released=frozenset(fields if released is None else released),
        refused=refused,
        audit_hit=audit_hit,
    )


def test_slow_probing_is_found_whatever_the_rate_and_benign_traffic_is_not():
    b = BehaviourBaselines()
    # one request every 5 minutes, each asking one more field the gate strips: no rate limit sees it
    found = []
    for i, f in enumerate(["diagnosis", "hiv_status", "insurance_id", "name", "phone", "address"]):
        found += b.observe([AGENT], ob(i * 300.0, MNI | {f}, released=MNI))
    kinds = [a.kind for a in found]
    assert kinds == ["slow_probing"]
    assert found[0].actions == ("suspend_agent", "lower_trust")
    assert found[0].evidence["probed_fields"] == "6"
    benign = BehaviourBaselines()
    assert not any(benign.observe([AGENT], ob(i * 300.0)) for i in range(50))


def test_a_burst_above_the_keys_own_rate_is_a_rate_shift():
    b = BehaviourBaselines(BaselineConfig(rate_min_recent=10))
    for i in range(10):  # one request every 6 minutes for an hour
        assert not b.observe([AGENT], ob(i * 360.0))
    t = 3600.0
    hits = [a for k in range(10) for a in b.observe([AGENT], ob(t + k))]
    assert [a.kind for a in hits] == ["rate_shift"] and hits[0].actions == ("tighten_session",)


def test_new_purposes_and_fields_after_a_baseline_are_a_mix_shift():
    b = BehaviourBaselines(BaselineConfig(min_baseline_events=10, novelty_min_recent=4))
    for i in range(12):
        assert not b.observe([("pair", "did:web:a", "did:web:b")], ob(i * 200.0))
    out = []
    for k in range(4):
        out += b.observe(
            [("pair", "did:web:a", "did:web:b")], ob(3000.0 + k, {"billing_code"}, purpose="billing")
        )
    assert [a.kind for a in out] == ["mix_shift"] and out[0].actions == ("lower_trust",)


def test_audit_hits_and_the_cooldown():
    b = BehaviourBaselines(BaselineConfig(cooldown_seconds=100.0))
    assert not b.observe([AGENT], ob(0.0, refused=True, audit_hit=True, released=()))
    first = b.observe([AGENT], ob(1.0, refused=True, audit_hit=True, released=()))
    assert [a.kind for a in first] == ["audit_hits"]
    assert not [
        a
        for a in b.observe([AGENT], ob(2.0, refused=True, audit_hit=True, released=()))
        if a.kind == "audit_hits"
    ]
    assert [
        a.kind
        for a in b.observe([AGENT], ob(150.0, refused=True, audit_hit=True, released=()))
        if a.kind == "audit_hits"
    ]


def test_state_is_bounded():
    b = BehaviourBaselines(BaselineConfig(max_keys=5, max_events=8))
    for i in range(100):
        b.observe([("agent", f"did:key:{i}")], ob(float(i)))
    assert len(b) == 5
    for i in range(100):
        b.observe([AGENT], ob(float(i)))
    assert b.events(AGENT) == 8
    b.observe([AGENT], ob(10_000.0))  # everything older than the window is dropped
    assert b.events(AGENT) == 1
    with pytest.raises(ValueError):
        b.observe([("org", "x")], ob(0.0))
    with pytest.raises(ValueError):
        BaselineConfig(recent_seconds=10.0, window_seconds=5.0)
