from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import MeasureError, apply_gate
from policy.measures import (
    Chain,
    attempted_oer,
    authorization_drift,
    exposure_by_field,
    oer_by,
    over_exposure_rate,
)

A = frozenset({"patient.age", "patient.diagnosis"})


def chain(released, offered=None, **kw) -> Chain:
    return Chain(
        released=frozenset(released),
        a_star=A,
        offered=None if offered is None else frozenset(offered),
        **kw,
    )


def test_oer_counts_chains_not_fields() -> None:
    chains = [
        chain({"patient.age"}),
        chain({"patient.age", "patient.zip3", "patient.name"}),
        chain(set()),
        chain({"patient.diagnosis", "patient.ssn"}),
    ]
    assert over_exposure_rate(chains) == 0.5
    assert exposure_by_field(chains) == {"patient.name": 1, "patient.ssn": 1, "patient.zip3": 1}


def test_within_a_star_uses_path_coverage() -> None:
    c = Chain(released=frozenset({"patient.age.years"}), a_star=frozenset({"patient.age"}))
    assert over_exposure_rate([c]) == 0.0
    parent = Chain(released=frozenset({"patient"}), a_star=frozenset({"patient.age"}))
    assert over_exposure_rate([parent]) == 1.0


def test_attempted_oer_uses_offered_fields() -> None:
    chains = [
        chain({"patient.age"}, offered={"patient.age", "patient.ssn"}),
        chain({"patient.age"}, offered={"patient.age"}),
    ]
    assert attempted_oer(chains) == 0.5
    assert over_exposure_rate(chains) == 0.0
    with pytest.raises(MeasureError):
        attempted_oer([chain({"patient.age"})])


def test_empty_inputs_are_refused() -> None:
    with pytest.raises(MeasureError):
        over_exposure_rate([])
    with pytest.raises(MeasureError):
        attempted_oer([])


@pytest.mark.parametrize(
    ("oers", "ad"),
    [
        ((0, 0, 1), Fraction(2, 9)),
        ((0, 0, 0), Fraction(0)),
        ((1, 1, 1), Fraction(0)),
        ((0, 0.5, 1), Fraction(1, 6)),
        ((1, 0, 0), Fraction(2, 9)),
        ((0.2, 0.4, 0.9), Fraction(13, 150)),
    ],
)
def test_authorization_drift_vectors(oers, ad) -> None:
    got = authorization_drift(dict(zip((0.1, 0.5, 0.9), oers, strict=True)))
    assert got == pytest.approx(float(ad), abs=1e-15)


def test_ad_needs_the_three_taus() -> None:
    with pytest.raises(MeasureError):
        authorization_drift({0.1: 0.0, 0.5: 1.0})
    with pytest.raises(MeasureError):
        authorization_drift({0.1: 0.0, 0.5: 1.0, 0.9: 1.5})
    assert authorization_drift({0.1: 0, 0.5: 0, 0.9: 1, 0.7: 0.3}) == pytest.approx(2 / 9)


@settings(max_examples=100, deadline=None)
@given(st.tuples(*[st.floats(0, 1)] * 3))
def test_ad_is_bounded_and_shift_free(oers) -> None:
    ad = authorization_drift(dict(zip((0.1, 0.5, 0.9), oers, strict=True)))
    assert 0 <= ad <= 0.25 + 1e-12
    if len(set(oers)) == 1:
        assert ad == pytest.approx(0)


def test_gate_makes_released_oer_zero_while_attempted_oer_is_not() -> None:
    """The design claim: with the gate, released OER is 0 by construction."""
    sources = [
        {"patient": {"age": 40, "diagnosis": "J45", "ssn": "x"}},
        {"patient": {"age": 50, "diagnosis": "E11"}},
        {"patient": {"age": 60, "name": "N", "diagnosis": "I10"}},
    ]
    chains = []
    for src in sources:
        g = apply_gate(src, A)
        chains.append(chain(set(g.offered) - set(g.stripped), offered=set(g.offered)))
    assert over_exposure_rate(chains) == 0.0
    assert attempted_oer(chains) == pytest.approx(2 / 3)


def test_oer_by_tau_feeds_ad() -> None:
    chains = [
        chain({"patient.age"}, tau=0.1),
        chain({"patient.age"}, tau=0.5),
        chain({"patient.age", "patient.zip3"}, tau=0.9),
    ]
    by_tau = oer_by(chains, key=lambda c: c.tau)
    assert by_tau == {0.1: 0.0, 0.5: 0.0, 0.9: 1.0}
    assert authorization_drift(by_tau) == pytest.approx(2 / 9)
