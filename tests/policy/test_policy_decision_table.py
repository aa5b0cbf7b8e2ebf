"""The shared decision table, run through both engines with identical results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import yaml
from policy_support import DATA, TABLE_CONTRACTS

from policy import Decision, DecisionInput, PolicyEngine

TABLE = yaml.safe_load((DATA / "decision_table.yaml").read_text(encoding="utf-8"))
CASES = TABLE["cases"]


def build_input(case: dict[str, Any]) -> DecisionInput:
    d: dict[str, Any] = dict(TABLE["defaults"])
    d.update(TABLE["presets"].get(case.get("preset", ""), {}))
    d.update(case["input"])
    d["requested_fields"] = tuple(d["requested_fields"])
    d["now"] = datetime.fromisoformat(str(d["now"]).replace("Z", "+00:00"))
    return DecisionInput(**d)


def check(decision: Decision, expect: dict[str, Any]) -> None:
    assert decision.allow is expect["allow"]
    assert list(decision.released_fields) == expect["released"]
    assert list(decision.reasons) == expect["reasons"]
    if "obligations" in expect:
        assert list(decision.obligations) == expect["obligations"]
    if "budget_spent" in expect:
        assert decision.budget_spent == pytest.approx(expect["budget_spent"], abs=1e-9)
    if "effective_trust" in expect:
        assert decision.effective_trust == pytest.approx(expect["effective_trust"], abs=1e-12)
    if "max_records" in expect:
        assert decision.max_records == expect["max_records"]
    if not decision.allow:
        assert decision.released_fields == () and decision.obligations == ()
        assert decision.budget_spent == 0


def test_table_is_large_and_names_unique() -> None:
    assert TABLE["contracts"] == TABLE_CONTRACTS  # what the engine fixtures load
    names = [c["name"] for c in CASES]
    assert len(names) >= 50
    assert len(set(names)) == len(names)
    assert sum(1 for c in CASES if c["expect"]["allow"]) >= 20
    assert sum(1 for c in CASES if not c["expect"]["allow"]) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_regopy_engine(case: dict[str, Any], regopy_engine: PolicyEngine) -> None:
    inp = build_input(case)
    d = regopy_engine.decide(inp)
    check(d, case["expect"])
    assert d.engine == "regopy"
    assert d.input_digest == inp.digest()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_opa_rest_engine(case: dict[str, Any], opa_engine: PolicyEngine) -> None:
    d = opa_engine.decide(build_input(case))
    check(d, case["expect"])
    assert d.engine == "opa-rest"


def test_engines_agree_on_every_record(
    regopy_engine: PolicyEngine, opa_engine: PolicyEngine
) -> None:
    for case in CASES:
        inp = build_input(case)
        a, b = regopy_engine.decide(inp), opa_engine.decide(inp)
        assert a.outcome() == b.outcome(), case["name"]
    assert regopy_engine.stats.failures == 0
    assert opa_engine.stats.failures == 0
