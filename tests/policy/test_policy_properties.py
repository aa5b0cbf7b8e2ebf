"""Property tests: totality of contract parsing; decision invariants; engine agreement."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_support import DATA, HOSPITAL_ID, PROVIDER, REQUESTER

from policy import Contract, ContractInvalidError, DecisionInput

HOSPITAL_DOC = yaml.safe_load((DATA / "hospital.yaml").read_text())
CONTRACT = Contract.from_dict(HOSPITAL_DOC)
RESEARCH = CONTRACT.purposes["research"]

JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(allow_nan=False),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.sampled_from(sorted(HOSPITAL_DOC) + ["x"]), JSONISH, max_size=8))
def test_from_dict_is_total_on_random_documents(data) -> None:
    try:
        Contract.from_dict(data)
    except ContractInvalidError as exc:
        assert "field" in exc.metadata


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(sorted(HOSPITAL_DOC)), value=JSONISH)
def test_from_dict_is_total_on_one_field_mutations(key, value) -> None:
    try:
        c = Contract.from_dict({**HOSPITAL_DOC, key: value})
    except ContractInvalidError as exc:
        assert exc.metadata["field"].split(".")[0] in (key, "valid_until", "")
    else:
        assert c.version_hash and len(c.version_hash) == 64


@settings(max_examples=60, deadline=None)
@given(blob=st.binary(max_size=200))
def test_load_is_total_on_random_bytes(blob, tmp_path_factory) -> None:
    d = tmp_path_factory.mktemp("c")
    for name in ("c.yaml", "c.json"):
        p = d / name
        p.write_bytes(blob)
        try:
            loaded = Contract.load(p)
        except ContractInvalidError as exc:  # the only failure allowed: our typed error with a reason
            assert exc.reason == "CONTRACT_INVALID"
        else:
            assert isinstance(loaded, Contract)


FIELDS = st.sampled_from(
    [
        "patient.age",
        "patient.diagnosis",
        "patient.zip3",
        "patient.sex",
        "patient.name",
        "patient.year_of_birth",
        "patient.ssn",
        "invoice.total",
        "patient",
    ]
)
INPUTS = st.builds(
    lambda fields, tau, used, purpose, scopes, requests, fr, recent, dt, swap: DecisionInput(
        contract_id=HOSPITAL_ID,
        purpose=purpose,
        requester_org=PROVIDER if swap else REQUESTER,
        provider_org=PROVIDER,
        requester_agent="did:key:z6Mk",
        agent_claims={"org": REQUESTER, "scopes": scopes},
        requested_fields=tuple(fields),
        effective_trust=tau,
        budget_used=used,
        session={"requests": requests, "fields_released": fr, "denials": 0},
        recent_requests=recent,
        now=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=dt),
        resource="cohort",
        subject="*",
    ),
    st.lists(FIELDS, max_size=6),
    st.floats(0, 1),
    st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.3, 0.4, 0.5, 0.7]),
    st.sampled_from(["research", "billing", "nope"]),
    st.sampled_from([[], ["data:read"], ["data:read", "x"]]),
    st.integers(0, 60),
    st.integers(0, 205),
    st.integers(0, 120),
    st.integers(-10, 400 * 86400),
    st.booleans(),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(inp=INPUTS)
def test_decision_invariants(inp, regopy_engine) -> None:
    d = regopy_engine.decide(inp)
    assert "ENGINE_ERROR" not in d.reasons
    assert set(d.released_fields) <= set(inp.requested_fields)
    if not d.allow:
        assert d.released_fields == () and d.budget_spent == 0 and d.reasons
        return
    assert CONTRACT.in_force(inp.now)
    purpose = CONTRACT.purposes[inp.purpose]
    # trust is quantized down to micro-units (policy/decision.py: trust_micros)
    tau = min(round(CONTRACT.trust_ceiling * 1_000_000), inp.trust_micros)
    assert d.effective_trust == tau / 1_000_000
    assert d.effective_trust <= inp.effective_trust
    for f in d.released_fields:
        if f not in purpose.mni:
            assert f in purpose.optional
            assert tau >= round(purpose.optional[f].min_trust * 1_000_000)
    # every requested MNI field is released
    assert {f for f in inp.requested_fields if f in purpose.mni} <= set(d.released_fields)
    spent = sum(purpose.optional[f].sensitivity for f in d.released_fields if f in purpose.optional)
    assert abs(d.budget_spent - spent) < 1e-9
    if spent > 0:
        assert inp.budget_used + spent <= CONTRACT.trust_budget.units + 1e-9


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(inp=INPUTS)
def test_engines_agree_on_random_inputs(inp, regopy_engine, opa_engine) -> None:
    a, b = regopy_engine.decide(inp), opa_engine.decide(inp)
    errors = [e.stats.last_error for e in (regopy_engine, opa_engine) if e.stats.failures]
    assert a.outcome() == b.outcome(), f"{json.dumps(inp.to_rego_input())} engine errors: {errors}"
