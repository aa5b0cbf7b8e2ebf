"""The decision cache: keyed on what the policy reads, equal to the engine it caches.

Soundness is the property that matters: two inputs with the same key must get
the same decision. It is checked three ways: over the shared decision table
(every case decided again after the whole table warmed the cache), with
hypothesis over inputs drawn around every threshold the table's contracts
use, and member by member (a change the policy can see changes the key).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_support import HOSPITAL_ID, NOW, PROVIDER, REQUESTER, make_input
from test_policy_decision_table import CASES, build_input, check

from policy import Contract, Decision, DecisionCache, DecisionInput, RegopyEngine, base_policy
from policy.decision_cache import POLICY_READS, decision_key


def _same(cached: Decision, fresh: Decision) -> None:
    """Equal decisions: everything but the random decision id."""
    assert cached.outcome() == fresh.outcome()
    assert cached.engine == fresh.engine


@pytest.fixture(scope="module")
def cache(table_contracts: list[Contract]) -> DecisionCache:
    c = DecisionCache(RegopyEngine(), max_entries=10_000)
    c.load(table_contracts)
    return c


def test_policy_reads_is_what_the_rego_reads() -> None:
    """Every input member the base policy reads is one the key covers (and no other)."""
    src = re.sub(r"#.*", "", base_policy())
    src = src.replace('object.get(input.session, "released_names"', "input.session.released_names")
    read = set(re.findall(r"\binput\.([a-z_]+(?:\.[a-z_]+)?)", src))
    assert read == set(POLICY_READS)


def test_cached_decisions_equal_uncached_over_the_decision_table(
    cache: DecisionCache, regopy_engine: RegopyEngine
) -> None:
    for case in CASES:  # warm: later cases may hit earlier ones' keys
        cache.decide(build_input(case))
    hits_before = cache.stats.cache_hits
    for case in CASES:
        inp = build_input(case)
        cached, fresh = cache.decide(inp), regopy_engine.decide(inp)
        _same(cached, fresh)
        check(cached, case["expect"])
        assert cached.input_digest == inp.digest()
    cacheable = sum(1 for case in CASES if cache.key(build_input(case)) is not None)
    assert cache.stats.cache_hits - hits_before == cacheable
    assert cacheable >= len(CASES) // 2


def test_unknown_contract_or_purpose_is_not_cached(cache: DecisionCache) -> None:
    assert cache.key(make_input(purpose="nope")) is None
    doc = None
    assert decision_key(doc, make_input()) is None


def test_a_hit_is_rebuilt_for_its_own_request(cache: DecisionCache) -> None:
    a = make_input(effective_trust=0.7, requester_agent="did:key:z6MkAgentA")
    b = make_input(effective_trust=0.75, requester_agent="did:key:z6MkAgentB", now=NOW + timedelta(seconds=7))
    assert cache.key(a) == cache.key(b)  # same thresholds crossed, agent not read
    da, db = cache.decide(a), cache.decide(b)
    assert da.decision_id != db.decision_id
    assert db.input_digest == b.digest() != da.input_digest
    assert db.effective_trust == 0.75 and da.effective_trust == 0.7


def test_engine_errors_are_not_cached(table_contracts: list[Contract]) -> None:
    c = DecisionCache(RegopyEngine(policy_source="package accord\n\nimport rego.v1\n\ndecision := 1\n"))
    c.load(table_contracts)
    inp = make_input()
    assert c.decide(inp).reasons == ("ENGINE_ERROR",)
    assert len(c) == 0


def test_load_clears_the_cache(table_contracts: list[Contract]) -> None:
    c = DecisionCache(RegopyEngine())
    c.load(table_contracts)
    c.decide(make_input())
    assert len(c) == 1
    c.load(table_contracts)
    assert len(c) == 0


def test_long_requests_are_not_cached(cache: DecisionCache) -> None:
    """Keys hold request strings: past MAX_KEY_CHARS an input is decided but not remembered."""
    from policy.decision_cache import MAX_KEY_CHARS

    many = tuple(f"patient.f{i:04d}_{'x' * 40}" for i in range(MAX_KEY_CHARS // 40))
    inp = make_input(requested_fields=many)
    assert cache.key(inp) is None
    before = len(cache)
    decided = cache.decide(inp)
    assert decided.input_digest == inp.digest() and "FIELD_NOT_IN_CONTRACT" in decided.reason_codes
    assert len(cache) == before
    assert cache.key(make_input(requested_fields=many[:10])) is not None


def test_bounded(table_contracts: list[Contract]) -> None:
    c = DecisionCache(RegopyEngine(), max_entries=3)
    c.load(table_contracts)
    for fields in (("patient.age",), ("patient.diagnosis",), ("invoice.total",), ("x.y",), ("a.b",)):
        c.decide(make_input(requested_fields=fields))
    assert len(c) == 3
    with pytest.raises(ValueError):
        DecisionCache(RegopyEngine(), max_entries=0)


# ------------------------------------------------------------------ member by member


def _replace(inp: DecisionInput, **changes: Any) -> DecisionInput:
    return dataclasses.replace(inp, **changes)


#: For each member the policy reads: a change the hospital contract makes visible.
CHANGES: dict[str, dict[str, Any]] = {
    "contract_id": {"contract_id": "urn:accord:contract:open-stats"},
    "purpose": {"purpose": "billing"},
    "now_unix": {"now": NOW.replace(year=2027)},  # past valid_until
    "requester_org": {"requester_org": "did:web:other.example"},
    "provider_org": {"provider_org": "did:web:other.example"},
    "agent_claims.org": {"agent_claims": {"org": "did:web:other.example", "scopes": ["data:read"]}},
    "agent_claims.scopes": {"agent_claims": {"org": REQUESTER, "scopes": []}},
    "resource": {"resource": "other"},
    "subject": {},  # the hospital's purpose allows "*": see the clinic case below
    "requested_fields": {"requested_fields": ("patient.age", "patient.zip3")},
    "recent_requests": {"recent_requests": 100},  # the rate limit is 100 per window
    "session.requests": {"session": {"requests": 50}},  # max_requests 50
    "session.fields_released": {"session": {"fields_released": 199}},
    "session.released_names": {"session": {"released_names": ["patient.age"]}},
    "trust_micros": {"effective_trust": 0.49},  # below patient.zip3's min_trust 0.5
    "budget_used_micros": {"budget_used": 0.45},  # leaves less than the optional fields cost
}


@pytest.mark.parametrize("member", sorted(POLICY_READS))
def test_a_change_the_policy_can_see_changes_the_key(member: str, cache: DecisionCache) -> None:
    assert set(CHANGES) == set(POLICY_READS)
    base = make_input(
        requested_fields=("patient.age", "patient.sex"),
        effective_trust=0.7,
        budget_used=0.0,
        session={"requests": 0, "fields_released": 0, "denials": 0},
    )
    if member == "subject":  # a purpose with a subject list
        base = make_input(
            contract_id="urn:accord:contract:clinic-care",
            purpose="emergency",
            requester_org="did:web:insurer-d.example",
            provider_org="did:web:clinic-c.example",
            agent_claims={"org": "did:web:insurer-d.example", "scopes": ["claims:read"]},
            requested_fields=("member.id",),
            resource="claims",
            subject="member-1",
        )
        changed = _replace(base, subject="member-3")
        # the clinic contract has a hook: its key is the whole input
        assert cache.key(base) != cache.key(changed)
        return
    changes = dict(CHANGES[member])
    if member == "requested_fields":
        changes["requested_fields"] = ("patient.age", "patient.sex", "patient.zip3")
    if member == "trust_micros":
        changes["effective_trust"] = 0.49
        base = _replace(base, requested_fields=("patient.age", "patient.zip3"))
    if member == "budget_used_micros":
        base = _replace(base, requested_fields=("patient.age", "patient.zip3", "patient.sex"))
    if "session" in changes:
        changes["session"] = {"requests": 0, "fields_released": 0, "denials": 0, **changes["session"]}
    changed = _replace(base, **changes)
    assert cache.key(base) != cache.key(changed)


# ------------------------------------------------------------------ hypothesis

_HOSPITAL_FIELDS = [
    "patient.age",
    "patient.diagnosis",
    "patient.zip3",
    "patient.sex",
    "patient.name",
    "patient.year_of_birth",
    "invoice.total",
    "other.field",
]
_TRUST = [0.0, 0.19, 0.2, 0.29, 0.3, 0.31, 0.49, 0.5, 0.51, 0.7, 0.79, 0.8, 0.81, 0.89, 0.9, 1.0]
_BUDGET = [0.0, 0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 1.0]
_TIMES = [
    NOW,
    NOW + timedelta(seconds=1),
    NOW.replace(year=2025, month=12, day=31, hour=23, minute=59, second=59),
    NOW.replace(month=1, day=1, hour=0, minute=0, second=0),
    NOW.replace(year=2026, month=12, day=31, hour=23, minute=59, second=59),
    NOW.replace(year=2027, month=1, day=1, hour=0, minute=0, second=0),
]


@st.composite
def hospital_inputs(draw: st.DrawFn) -> DecisionInput:
    fields = draw(st.lists(st.sampled_from(_HOSPITAL_FIELDS), max_size=4, unique=True))
    released = draw(st.lists(st.sampled_from(_HOSPITAL_FIELDS), max_size=3, unique=True))
    return make_input(
        contract_id=draw(st.sampled_from([HOSPITAL_ID, HOSPITAL_ID, "urn:accord:contract:open-stats"])),
        purpose=draw(st.sampled_from(["research", "research", "billing", "publish"])),
        requester_org=draw(st.sampled_from([REQUESTER, REQUESTER, "did:web:other.example"])),
        provider_org=draw(st.sampled_from([PROVIDER, PROVIDER, "did:web:stats.example"])),
        requester_agent=draw(st.sampled_from(["did:key:z6MkA", "did:key:z6MkB"])),
        agent_claims={
            "org": draw(st.sampled_from([REQUESTER, REQUESTER, "did:web:other.example"])),
            "scopes": draw(st.lists(st.sampled_from(["data:read", "x:y"]), unique=True)),
        },
        requested_fields=tuple(fields),
        effective_trust=draw(st.sampled_from(_TRUST)),
        budget_used=draw(st.sampled_from(_BUDGET)),
        session={
            "requests": draw(st.sampled_from([0, 49, 50, 51])),
            "fields_released": draw(st.sampled_from([0, 198, 199, 200])),
            "denials": draw(st.sampled_from([0, 3])),
            "released_names": released,
        },
        recent_requests=draw(st.sampled_from([0, 99, 100, 101])),
        now=draw(st.sampled_from(_TIMES)),
        resource=draw(st.sampled_from(["cohort", "cohort", "stats", "other"])),
        subject=draw(st.sampled_from(["*", "p-1"])),
        context=draw(st.sampled_from([{}, {"consent": True}])),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(hospital_inputs(), min_size=2, max_size=8))
def test_cached_equals_uncached_on_inputs_around_every_threshold(
    table_contracts: list[Contract], regopy_engine: RegopyEngine, inputs: list[DecisionInput]
) -> None:
    c = DecisionCache(RegopyEngine(), max_entries=64)
    c.load(table_contracts)
    for inp in inputs + inputs[::-1]:
        _same(c.decide(inp), regopy_engine.decide(inp))


@st.composite
def hospital_allowed(draw: st.DrawFn) -> DecisionInput:
    """A research request the hospital contract allows, near its trust and budget thresholds."""
    optional = ["patient.zip3", "patient.sex", "patient.year_of_birth", "patient.name"]
    fields = draw(st.lists(st.sampled_from(optional), min_size=1, max_size=3, unique=True))
    return make_input(
        requested_fields=("patient.age", *fields),
        effective_trust=draw(st.sampled_from(_TRUST)),
        budget_used=draw(st.sampled_from(_BUDGET)),
        session={"requests": draw(st.sampled_from([0, 49])), "fields_released": 0, "denials": 0},
        recent_requests=draw(st.sampled_from([0, 99])),
        now=draw(st.sampled_from(_TIMES[:2])),
    )


_MEMBERS = [
    "contract_id",
    "purpose",
    "requester_org",
    "provider_org",
    "requester_agent",
    "agent_claims",
    "requested_fields",
    "effective_trust",
    "budget_used",
    "session",
    "now",
    "resource",
    "subject",
    "recent_requests",
    "context",
]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(hospital_allowed(), hospital_inputs()), st.sampled_from(_MEMBERS), hospital_inputs())
def test_same_key_means_same_decision(
    cache: DecisionCache, regopy_engine: RegopyEngine, a: DecisionInput, member: str, other: DecisionInput
) -> None:
    """Change one member of ``a``: if the key stays the same, the engine's decision must too.

    (The contrapositive of "a change the policy can see changes the key".)
    """
    b = _replace(a, **{member: getattr(other, member)})
    ka, kb = cache.key(a), cache.key(b)
    if ka is None or ka != kb:
        return
    da, db = regopy_engine.decide(a), regopy_engine.decide(b)
    for k in ("allow", "released_fields", "obligations", "reasons", "budget_spent", "max_records"):
        assert getattr(da, k) == getattr(db, k), (member, k)
