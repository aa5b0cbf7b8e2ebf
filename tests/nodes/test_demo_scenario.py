"""The shipped ``federation/demo/scenario.yaml`` validates; a malformed copy is refused in one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from federation.demo import scenario
from federation.demo.run import script
from federation.errors import ConfigError
from policy import Contract

SHIPPED = scenario.SCENARIO_PATH.read_text()


def test_shipped_scenario_validates_and_its_contracts_load():
    sc = scenario.load_scenario()
    before, after = script()
    assert len(before) + len(after) == 41
    assert {s.expect for s in before} == {"allow", "UNKNOWN_CONTRACT", "MISSING_SCOPE", "RECONSTRUCTION_RISK"}
    assert [s.expect for s in after] == ["REVOKED", "REVOKED"] and after[1].new_session
    assert sc.revoke == "relief/field-volunteer"
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    for doc in sc.contract_documents(now):
        c = Contract.from_dict(doc)  # the contract format itself accepts every document
        assert c.valid_from == now - dt.timedelta(days=1) and c.valid_until == now + dt.timedelta(days=90)
    triage = next(d for d in sc.contract_documents(now) if d["id"] == "relief-hospital-triage")
    assert triage["parties"]["provider"]["org"] == "did:web:hospital.accord.test"
    assert triage["trust_budget"] == {"units": 6, "window_seconds": 3600}
    # merge keys: a step that overrides the anchor's fields keeps its own
    assert before[8].fields[-1] == "name" and before[0].fields == before[9].fields


def _refused(tmp_path: Path, text: str) -> str:
    p = tmp_path / "scenario.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        scenario.load_scenario(p)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    assert exc.value.reason == "CONFIG_INVALID"
    return msg


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_step_with_a_bad_expectation_is_refused_naming_file_line_and_field(tmp_path):
    bad = SHIPPED.replace("expect: MISSING_SCOPE", "expect: missing scope")
    msg = _refused(tmp_path, bad)
    assert f":{_line_of(bad, 'expect: missing scope')}: steps.30.expect: " in msg, msg


def test_an_unknown_key_in_a_contract_purpose_is_refused(tmp_path):
    bad = SHIPPED.replace("        max_records: 20", "        max_record: 20")
    msg = _refused(tmp_path, bad)
    assert f":{_line_of(bad, 'max_record: 20')}: contracts.0.purposes.triage-coordination.max_record: " in msg


def test_a_trust_ceiling_out_of_bounds_is_refused(tmp_path):
    bad = SHIPPED.replace("trust_ceiling: 0.9", "trust_ceiling: 1.5")
    assert ": contracts.1.trust_ceiling: " in _refused(tmp_path, bad)


def test_a_step_naming_an_undeclared_agent_is_refused(tmp_path):
    bad = SHIPPED.replace("revoke: relief/field-volunteer", "revoke: relief/nobody")
    msg = _refused(tmp_path, bad)
    assert (
        f":{_line_of(bad, 'revoke: relief/nobody')}: revoke: 'relief/nobody' is not a declared agent" in msg
    )


def test_a_step_under_an_undeclared_contract_must_expect_unknown_contract(tmp_path):
    bad = SHIPPED.replace("     expect: UNKNOWN_CONTRACT}", "     expect: allow}")
    assert ": steps.29: contract 'supplier-hospital-patients' is not declared" in _refused(tmp_path, bad)


def test_a_missing_section_not_yaml_and_an_oversized_file_are_refused(tmp_path):
    assert ": validity: Field required" in _refused(tmp_path, SHIPPED.replace("validity:", "validity_:"))
    assert "not valid YAML" in _refused(tmp_path, SHIPPED + "\nsteps: [\n")
    big = SHIPPED + "#" * (scenario.MAX_SCENARIO_BYTES + 1)
    assert f"larger than {scenario.MAX_SCENARIO_BYTES} bytes" in _refused(tmp_path, big)
