"""Issue #18.3: every conversion to micro-units rounds against the requester (real engine)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from policy_support import DATA, HOSPITAL_ID, NOW, PROVIDER, REQUESTER, make_input

from policy import (
    BudgetLedger,
    Contract,
    ContractInvalidError,
    OptionalField,
    PolicyDecisionPoint,
    RegopyEngine,
    TrustBook,
    TrustBudget,
    TrustConfig,
)
from policy.engine import contract_document
from policy.micros import micros_down, micros_up


def _contract(**changes) -> Contract:
    """The hospital contract with numbers of more than 6 decimals.

    The strict contract format refuses such numbers (docs/contracts.md §1), so
    they are set on a parsed contract without validation: the engine's
    conversion still rounds against the requester (defense in depth).
    """
    doc = yaml.safe_load((DATA / "hospital.yaml").read_text())
    optional = changes.pop("optional", None)
    probe = dict(doc)
    if optional is not None:
        research = {**doc["purposes"]["research"], "optional": optional}
        probe["purposes"] = {**doc["purposes"], "research": research}
    with pytest.raises(ContractInvalidError):  # what an operator would get
        Contract.from_dict({**probe, **changes})
    c = Contract.from_dict(doc)
    update: dict = {}
    if "trust_ceiling" in changes:
        update["trust_ceiling"] = changes["trust_ceiling"]
    if "trust_budget" in changes:
        update["trust_budget"] = TrustBudget.model_construct(**changes["trust_budget"])
    if optional is not None:
        research = c.purposes["research"].model_copy(
            update={"optional": {f: OptionalField.model_construct(**o) for f, o in optional.items()}}
        )
        update["purposes"] = {**c.purposes, "research": research}
    return c.model_copy(update=update)


def _pdp(c: Contract, initial: float) -> PolicyDecisionPoint:
    p = PolicyDecisionPoint(RegopyEngine(), trust=TrustBook(TrustConfig(initial=initial)))
    p.load([c])
    return p


def _ask(p: PolicyDecisionPoint, fields, now=NOW):
    return p.decide(
        contract_id=HOSPITAL_ID,
        purpose="research",
        requester_org=REQUESTER,
        provider_org=PROVIDER,
        requester_agent="did:key:z6Mk",
        agent_claims={"org": REQUESTER, "scopes": ["data:read"]},
        requested_fields=fields,
        session={"requests": 0},
        now=now,
        resource="cohort",
        subject="*",
    )


@pytest.mark.parametrize(
    ("value", "up", "down"),
    [
        (0.0000005, 1, 0),
        (0.7499996, 750000, 749999),
        (0.29, 290000, 290000),  # the decimal the author wrote, not its binary expansion
        (0.1 + 0.2, 300001, 300000),  # 0.30000000000000004 is above 0.3
        (1, 1_000_000, 1_000_000),
        (0.0, 0, 0),
    ],
)
def test_micro_unit_conversions_round_in_the_stated_direction(value, up, down) -> None:
    assert micros_up(value) == up
    assert micros_down(value) == down


def test_rejects_non_numbers() -> None:
    for bad in (float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(ValueError):
            micros_up(bad)


def test_decision_input_rounds_trust_down_and_budget_used_up() -> None:
    inp = make_input(effective_trust=0.7499996, budget_used=0.0000005)
    assert inp.trust_micros == 749_999  # never meets a min_trust of 0.75
    assert inp.budget_used_micros == 1  # half a micro-unit used is a micro-unit used


def test_contract_document_rounds_allowances_down_and_charges_up() -> None:
    c = _contract(
        trust_ceiling=0.7999996,
        trust_budget={"units": 0.4999996, "window_seconds": 3600},
        optional={"patient.zip3": {"sensitivity": 0.0000005, "min_trust": 0.7500004}},
    )
    doc = contract_document(c)
    assert doc["trust_ceiling_micros"] == 799_999
    assert doc["budget_units_micros"] == 499_999
    assert doc["purposes"]["research"]["optional"]["patient.zip3"] == {
        "sensitivity_micros": 1,
        "min_trust_micros": 750_001,
    }


def test_a_half_micro_unit_field_is_not_free() -> None:
    # a budget of one micro-unit pays for exactly one release of a 0.0000005-unit field
    c = _contract(
        trust_budget={"units": 0.000001, "window_seconds": 3600},
        optional={"patient.zip3": {"sensitivity": 0.0000005, "min_trust": 0.1}},
    )
    p = _pdp(c, initial=0.5)
    first = _ask(p, ["patient.age", "patient.zip3"])
    assert first.released_fields == ("patient.age", "patient.zip3")
    assert first.budget_spent == 0.000001
    second = _ask(p, ["patient.age", "patient.zip3"], now=NOW + timedelta(seconds=1))
    assert second.released_fields == ("patient.age",)
    assert "TRUST_BUDGET_EXHAUSTED" in second.reasons


def test_thresholds_a_hair_above_trust_are_not_met() -> None:
    # min_trust 0.7500004 is not met by τ = 0.75
    c = _contract(optional={"patient.zip3": {"sensitivity": 0.1, "min_trust": 0.7500004}})
    assert _ask(_pdp(c, initial=0.75), ["patient.zip3"]).reasons == ("TRUST_TOO_LOW:patient.zip3",)
    # a ceiling a hair below 0.8 does not grant a field at 0.8
    c = _contract(
        trust_ceiling=0.7999996, optional={"patient.zip3": {"sensitivity": 0.1, "min_trust": 0.8}}
    )
    assert _ask(_pdp(c, initial=1.0), ["patient.zip3"]).reasons == ("TRUST_TOO_LOW:patient.zip3",)


def test_budget_ledger_charges_round_up_and_sum_exactly() -> None:
    led = BudgetLedger()
    key = (HOSPITAL_ID, REQUESTER)
    for i in range(10):
        led.charge(key, 0.0000001, now=NOW + timedelta(seconds=i))  # each a tenth of a micro-unit
    assert led.spent_micros(key, window_seconds=60, now=NOW + timedelta(seconds=10)) == 10
    for i in range(3):
        led.charge(key, 0.1, now=NOW + timedelta(seconds=20 + i))
    assert led.spent_micros(key, window_seconds=60, now=NOW + timedelta(seconds=30)) == 300_010
