"""Decision-point hardening (issue #18 classes 1, 3, 4, 5, 7, 9; issue #10 class 3).

Each test names the attack class it closes; each fails on the code as it
landed before the hardening wave.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from policy_support import DATA, HOSPITAL_ID, NOW, PROVIDER, REQUESTER, load_contract, make_input

from policy import (
    Contract,
    ContractInvalidError,
    DecisionInputError,
    InvalidIdentifierError,
    OpaRestEngine,
    PolicyDecisionPoint,
    RegoModuleError,
    RegopyEngine,
    check_resources,
    check_supersedes,
    lint_contract,
    policy_input_schema,
    session_claims,
)
from policy.contract import contract_schema
from policy.decision import to_micros
from policy.engine import MalformedResult, decision_from_result
from policy.engine_regopy import check_hook_rules, hook_plan

SCHEMAS = Path(__file__).resolve().parents[2] / "policy" / "schemas"
AGENT = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def raw_doc() -> dict[str, Any]:
    return yaml.safe_load((DATA / "hospital.yaml").read_text())


def ask(p: PolicyDecisionPoint, **kw: Any):
    args: dict[str, Any] = dict(
        contract_id=HOSPITAL_ID,
        purpose="research",
        requester_org=REQUESTER,
        provider_org=PROVIDER,
        requester_agent=AGENT,
        agent_claims={"org": REQUESTER, "scopes": ["data:read"]},
        requested_fields=["patient.age"],
        session={},
        now=NOW,
        resource="cohort",
        subject="*",
    )
    args.update(kw)
    return p.decide(**args)


# ------------------------------------------------------------------ #18.1 identifiers


HOSTILE = [
    HOSPITAL_ID + "\x00",
    HOSPITAL_ID + "\x00evil",
    "urn:accord:contract:hospital\u2010research",  # a Unicode hyphen
    HOSPITAL_ID + "\n",
    " " + HOSPITAL_ID,
    "",
    "x" * 500,
]


@pytest.fixture(params=["regopy", "opa"])
def any_pdp(request, opa_stub) -> PolicyDecisionPoint:
    if request.param == "regopy":
        engine: Any = RegopyEngine()
    else:
        engine = OpaRestEngine(opa_stub.url, timeout_seconds=5.0)
    p = PolicyDecisionPoint(engine)
    p.load([load_contract("hospital.yaml")])
    return p


@pytest.mark.parametrize("bad", HOSTILE, ids=[repr(h)[:30] for h in HOSTILE])
def test_hostile_contract_id_is_refused_before_any_engine_runs(
    any_pdp: PolicyDecisionPoint, bad: str
) -> None:
    """#18.1: a control character (NUL among them) never reaches an engine or the bookkeeping."""
    with pytest.raises(InvalidIdentifierError) as ei:
        ask(any_pdp, contract_id=bad)
    assert ei.value.reason == "MALFORMED_IDENTIFIER"
    assert any_pdp.engine.stats.decisions == 0
    assert len(any_pdp.log) == 0
    assert any_pdp._locks == {}


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("purpose", "research\x00"),
        ("resource", "cohort\x00x"),
        ("subject", "rec\x001"),
        ("requester_org", REQUESTER + "\x00"),
        ("requester_agent", AGENT + "\u200b"),
        ("requested_fields", ["patient.age\x00"]),
    ],
)
def test_every_identifier_is_checked_by_the_decision_point(any_pdp, member: str, value: Any) -> None:
    """#18.1: defense in depth: the decision point checks every identifier with the wire's grammar."""
    with pytest.raises(InvalidIdentifierError):
        ask(any_pdp, **{member: value})
    assert any_pdp.engine.stats.decisions == 0


def test_unknown_contract_is_refused_without_an_engine_and_without_state(any_pdp) -> None:
    """#18.1: no contract, no limits, no answer: refused before any engine, nothing keyed by the id."""
    for i in range(50):
        d = ask(any_pdp, contract_id=f"urn:accord:contract:nope-{i}")
        assert not d.allow and d.reasons == ("UNKNOWN_CONTRACT",) and d.contract_hash == ""
    assert any_pdp.engine.stats.decisions == 0
    assert any_pdp._locks == {}  # no lock per attacker-chosen id
    d = ask(any_pdp)
    assert d.allow and d.contract_hash == any_pdp.contract(HOSPITAL_ID).version_hash


def test_both_engines_agree_on_hostile_strings(regopy_engine, opa_engine) -> None:
    """#18.1: the same refusal from both engines' decision points, for every hostile string."""
    outcomes = []
    for engine in (regopy_engine, opa_engine):
        before = engine.stats.decisions
        p = PolicyDecisionPoint(engine)
        row = []
        for bad in HOSTILE:
            try:
                ask(p, contract_id=bad)
                row.append("decided")
            except InvalidIdentifierError as exc:
                row.append(exc.reason)
        outcomes.append(row)
        assert engine.stats.decisions == before
    assert outcomes[0] == outcomes[1] == ["MALFORMED_IDENTIFIER"] * len(HOSTILE)


def test_a_decision_under_another_contract_is_an_engine_error(regopy_engine) -> None:
    """#18.1: the engine says which contract it decided under; a mismatch is never an allow."""
    inp = make_input()
    raw = regopy_engine.evaluate_raw(inp.to_rego_input())
    good = load_contract("hospital.yaml").version_hash
    assert raw["contract_hash"] == good
    d = decision_from_result(raw, inp, contract_hash=good, bundle="b", engine="t", input_digest="d")
    assert d.allow
    with pytest.raises(MalformedResult):
        decision_from_result(raw, inp, contract_hash="", bundle="b", engine="t", input_digest="d")


# ------------------------------------------------------------------ #18.3 numbers


def test_micro_units_are_exact_and_round_against_the_requester() -> None:
    """#18.3: one conversion rule: exact for terms, floor for what the requester has, ceil for its use."""
    assert to_micros(0.7) == 700_000 and to_micros(0.75) == 750_000 and to_micros(1) == 1_000_000
    with pytest.raises(ValueError):
        to_micros(0.7499996)
    assert to_micros(0.7499996, rounding="floor") == 749_999
    assert to_micros(0.4999999999999, rounding="floor") == 499_999
    assert to_micros(0.3000000000001, rounding="ceil") == 300_001
    assert make_input(effective_trust=0.7499999999).trust_micros == 749_999
    assert make_input(budget_used=0.1000000001).budget_used_micros == 100_001


def test_no_float_reaches_the_engine() -> None:
    """#18.3: rego-cpp reads 0.7499996 as 0.75; the input carries integers only."""
    inp = make_input(effective_trust=0.7499996)
    doc = inp.to_rego_input()

    def floats(v: Any) -> list[Any]:
        if isinstance(v, float):
            return [v]
        if isinstance(v, dict):
            return [f for x in v.values() for f in floats(x)]
        if isinstance(v, list):
            return [f for x in v for f in floats(x)]
        return []

    assert floats(doc) == []
    assert doc["trust_micros"] == 749_999
    with pytest.raises(DecisionInputError):
        make_input(context={"score": 0.7499996})


def test_hook_cannot_see_a_rounded_trust(regopy_engine) -> None:
    """#18.3: a hook comparing trust compares the exact integer the base policy compares."""
    hooked = Contract.from_dict(
        {
            **raw_doc(),
            "id": "urn:accord:contract:hooked",
            "rego_module": (
                "package accord.hooks.tau\nimport rego.v1\n"
                'deny contains "LOW" if input.trust_micros < 750000\n'
            ),
        }
    )
    e = RegopyEngine()
    e.load([hooked])
    d = e.decide(make_input(contract_id=hooked.id, effective_trust=0.7499996))
    assert d.reasons == ("LOW",)


# ------------------------------------------------------------------ #18.4 policy input


def test_direct_and_delegated_claims_normalize_to_one_shape() -> None:
    """#18.4: one claims shape for direct and delegated sessions."""
    direct = session_claims(
        {"organization": REQUESTER, "name": "Ana", "role": "analyst", "scopes": ["b", "a"], "trust_tier": 2},
        org=REQUESTER,
    )
    delegated = session_claims(
        {
            "id": AGENT,
            "organization": REQUESTER,
            "name": "Ana",
            "role": "analyst",
            "scopes": ["a"],
            "trustTier": 2,
            "delegatedBy": "did:key:z6Mkroot",
            "delegationDepth": 1,
        },
        org=REQUESTER,
    )
    assert set(direct) == set(delegated)
    assert (
        direct["scopes"] == ["a", "b"] and direct["delegation_depth"] == 0 and direct["delegated_by"] is None
    )
    assert delegated["trust_tier"] == 2 and delegated["delegated_by"] == "did:key:z6Mkroot"
    with pytest.raises(DecisionInputError):
        session_claims({"scopes": ["a"], "is_admin": True}, org=REQUESTER)
    with pytest.raises(DecisionInputError):
        session_claims({"scopes": "data:read"}, org=REQUESTER)  # a string where a list belongs


def test_the_decision_point_refuses_raw_credential_claims(any_pdp) -> None:
    """#18.4: raw ``credentialSubject`` names (trustTier, delegatedBy) are not the policy's shape."""
    raw = {"org": REQUESTER, "scopes": ["data:read"], "trustTier": 2, "delegatedBy": "did:key:z6Mkroot"}
    with pytest.raises(DecisionInputError) as ei:
        ask(any_pdp, agent_claims=raw)
    assert ei.value.metadata["field"].startswith("agent_claims")
    with pytest.raises(DecisionInputError):
        ask(any_pdp, agent_claims={"org": REQUESTER, "scopes": "data:read"})
    assert any_pdp.engine.stats.decisions == 0


def test_published_schemas_are_current() -> None:
    """#18.4/#18.5: the JSON Schemas in policy/schemas are what the code validates."""
    for where in (SCHEMAS, SCHEMAS.parents[1] / "docs" / "schemas"):
        assert json.loads((where / "policy-input.v1.json").read_text()) == policy_input_schema()
        assert json.loads((where / "contract.v2.json").read_text()) == contract_schema()
    assert set(policy_input_schema()["required"]) >= {"input_version", "resource", "subject", "agent_claims"}


# ------------------------------------------------------------------ #18.5 strict documents


def test_duplicate_yaml_key_is_an_error_with_line(tmp_path) -> None:
    """#18.5: a later min_trust no longer silently overrides an earlier, stricter one."""
    text = (
        (DATA / "hospital.yaml")
        .read_text()
        .replace(
            "patient.name: {sensitivity: 1.0, min_trust: 0.9}",
            "patient.name: {sensitivity: 1.0, min_trust: 0.9, min_trust: 0.1}",
        )
    )
    p = tmp_path / "dup.yaml"
    p.write_text(text)
    with pytest.raises(ContractInvalidError) as ei:
        Contract.load(p)
    line = next(i + 1 for i, x in enumerate(text.splitlines()) if "min_trust: 0.1" in x)
    assert ei.value.metadata["line"] == str(line)
    assert "duplicate key 'min_trust'" in str(ei.value) and f"dup.yaml:{line}" in str(ei.value)


def test_duplicate_json_key_is_an_error(tmp_path) -> None:
    """#18.5: JSON too (json.loads keeps the last value silently)."""
    doc = json.dumps(Contract.from_dict(raw_doc()).to_dict(), indent=1)
    doc = doc.replace('"trust_ceiling": 0.8', '"trust_ceiling": 0.1,\n "trust_ceiling": 0.8')
    p = tmp_path / "dup.json"
    p.write_text(doc)
    with pytest.raises(ContractInvalidError, match="duplicate key 'trust_ceiling'"):
        Contract.load(p)


def test_lint_explains_every_error_in_one_line_with_file_and_line(tmp_path) -> None:
    """#18.5: ``accord contract lint`` lists each problem: file, line, key, one line."""
    doc = raw_doc()
    doc["purposes"]["research"]["optional"]["patient.zip3"]["min_trust"] = "0.5"
    doc["purposes"]["research"]["aggregates"] = {"dataset": "cohort", "kinds": ["count"], "colums": ["age"]}
    doc["rate_limit"]["requests"] = True
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    issues = lint_contract(p)
    keys = {i.key for i in issues}
    assert "purposes.research.optional.patient.zip3.min_trust" in keys
    assert "purposes.research.aggregates.colums" in keys
    assert "purposes.research.aggregates.columns" in keys
    assert "rate_limit.requests" in keys
    lines = p.read_text().splitlines()
    for i in issues:
        assert "\n" not in str(i) and str(i).startswith(f"{p}:{i.line}: ")
        assert 1 <= i.line <= len(lines)
    colums = next(i for i in issues if i.key.endswith("colums"))
    assert "colums" in lines[colums.line - 1]
    assert lint_contract(DATA / "hospital.yaml") == []


def test_names_are_checked_against_the_providers_resources() -> None:
    """#18.5: a misspelled data set or column is refused at registration, not ignored."""
    doc = raw_doc()
    doc["purposes"]["stats"] = {
        "resources": ["admissions"],
        "subjects": ["*"],
        "required_scopes": [],
        "aggregates": {"dataset": "admissions", "kinds": ["count"], "columns": ["lenght_of_stay"]},
    }
    c = Contract.from_dict(doc)
    have = {
        "cohort": [
            "patient.age",
            "patient.diagnosis",
            "patient.zip3",
            "patient.sex",
            "patient.name",
            "patient.year_of_birth",
            "invoice.total",
        ],
        "admissions": ["ward", "length_of_stay"],
    }
    with pytest.raises(ContractInvalidError) as ei:
        check_resources(c, have)
    assert ei.value.metadata["missing"] == "lenght_of_stay"
    with pytest.raises(ContractInvalidError) as ei:
        check_resources(c, {k: v for k, v in have.items() if k != "admissions"})
    assert ei.value.metadata["missing"] == "admissions"
    have["admissions"] = ["ward", "lenght_of_stay"]
    check_resources(c, have)


# ------------------------------------------------------------------ #18.7 / #10.3 paths


def test_parent_path_listed_weaker_than_a_child_is_refused() -> None:
    """#18.7/#10.3: MNI ``patient`` with optional ``patient.ssn`` at high trust cannot be registered."""
    doc = raw_doc()
    doc["purposes"]["research"]["mni"] = ["patient"]
    doc["purposes"]["research"]["optional"] = {"patient.ssn": {"sensitivity": 1, "min_trust": 0.9}}
    with pytest.raises(ContractInvalidError, match="without its trust and budget checks"):
        Contract.from_dict(doc)
    doc["purposes"]["research"]["mni"] = ["visits"]
    doc["purposes"]["research"]["optional"] = {"visits[].diagnosis": {"sensitivity": 1, "min_trust": 0.9}}
    with pytest.raises(ContractInvalidError):
        Contract.from_dict(doc)
    # a parent at least as strict as its children is fine
    doc["purposes"]["research"]["mni"] = ["patient.age"]
    doc["purposes"]["research"]["optional"] = {
        "visits": {"sensitivity": 2, "min_trust": 0.9},
        "visits[].diagnosis": {"sensitivity": 1, "min_trust": 0.5},
        "visits.date": {"sensitivity": 1, "min_trust": 0.9},
    }
    Contract.from_dict(doc)


# ------------------------------------------------------------------ #10.3 resources, versions


def test_contract_versions_only_move_forward() -> None:
    """#10.3: re-registering an older version, or other terms under the same version, is refused."""
    v1 = Contract.from_dict(raw_doc())
    v2 = Contract.from_dict({**raw_doc(), "version": 2, "title": "Second terms"})
    check_supersedes(None, v1)
    check_supersedes(v1, v2)
    check_supersedes(v2, v2)  # idempotent
    with pytest.raises(ContractInvalidError) as ei:
        check_supersedes(v2, v1)
    assert ei.value.reason == "CONTRACT_VERSION_NOT_NEWER"
    with pytest.raises(ContractInvalidError):
        check_supersedes(v1, Contract.from_dict({**raw_doc(), "title": "Same version, other terms"}))
    with pytest.raises(ContractInvalidError):
        check_supersedes(v1.retire(at=NOW), v1)  # would un-retire
    assert v2.in_force(NOW + timedelta(seconds=1))


def test_resource_and_subject_reach_the_engine_and_are_enforced(any_pdp) -> None:
    """#10.3: the provider no longer reads whatever resource the request names."""
    assert ask(any_pdp).allow
    d = ask(any_pdp, resource="payroll")
    assert not d.allow and d.reasons == ("RESOURCE_NOT_IN_CONTRACT",)
    rec = any_pdp.log._records[-1]
    assert rec["input"]["resource"] == "payroll" and rec["input"]["subject"] == "*"


# ------------------------------------------------------------------ #18.9 hooks


EVIL_HOOKS = [
    # the issue's case: base package with a comment, the hook package only inside a raw string
    "package accord # base\nimport rego.v1\nnote := `\npackage accord.hooks.x\n`\nallow if true\n",
    # the base package, with the hook package named in a comment
    "package accord # package accord.hooks.x\nimport rego.v1\nallow if input.contract_id\n",
    # the base package, with the hook package named inside a string
    'package accord\nimport rego.v1\nnote := "\npackage accord.hooks.x\n"\nallow if input.contract_id\n',
    # a raw string
    "package accord\nimport rego.v1\nnote := `\npackage accord.hooks.x`\nallow if true\n",
    # imports the base package
    "package accord.hooks.x\nimport rego.v1\nimport data.accord\nwide if accord.allow\n",
    # a second package clause
    "package accord.hooks.x\nimport rego.v1\npackage accord\nallow if true\n",
]


@pytest.mark.parametrize("src", EVIL_HOOKS)
def test_hook_package_is_parsed_not_searched(src: str) -> None:
    """#18.9: a module that really declares the base package is refused, whatever its text contains."""
    with pytest.raises(ContractInvalidError) as ei:
        Contract.from_dict({**raw_doc(), "rego_module": src})
    assert ei.value.metadata["field"] == "rego_module"


def test_compiled_plan_shows_every_rule_a_hook_defines() -> None:
    """#18.9: the rules are read from the compiled module; one outside the package is refused."""
    paths, builtins = hook_plan(
        "package accord\nimport rego.v1\nallow if input.x\nhooks.x.deny contains 1 if false\n"
    )
    assert ("accord", "allow") in paths
    good = Contract.from_dict(
        {**raw_doc(), "rego_module": 'package accord.hooks.x\nimport rego.v1\ndeny contains "A" if input.x\n'}
    )
    check_hook_rules(good)
    # a hook that escaped the header check (built without validation) is still refused at load
    evil = good.model_copy(update={"rego_module": "package accord\nimport rego.v1\nallow if true\n"})
    with pytest.raises(RegoModuleError, match="outside its package"):
        check_hook_rules(evil)
    with pytest.raises(RegoModuleError):
        RegopyEngine().load([evil])
    clock = good.model_copy(
        update={
            "rego_module": 'package accord.hooks.x\nimport rego.v1\ndeny contains "A" if time.now_ns() > 0\n'
        }
    )
    with pytest.raises(RegoModuleError, match="deterministic"):
        check_hook_rules(clock)


def test_opa_engine_refuses_a_base_package_hook_too(opa_stub) -> None:
    """#18.9: the OPA engine applies the same parsed check before uploading anything."""
    good = Contract.from_dict(
        {**raw_doc(), "rego_module": 'package accord.hooks.x\nimport rego.v1\ndeny contains "A" if input.x\n'}
    )
    evil = good.model_copy(update={"rego_module": "package accord\nimport rego.v1\nallow if true\n"})
    e = OpaRestEngine(opa_stub.url, timeout_seconds=5.0)
    with pytest.raises(RegoModuleError):
        e.load([evil])
    e.close()
