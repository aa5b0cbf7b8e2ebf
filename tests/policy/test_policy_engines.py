from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from policy_opa_stub import OpaStub
from policy_support import DATA, make_input

from policy import (
    Contract,
    ContractInvalidError,
    Decision,
    DecisionInputError,
    DecisionLog,
    EngineError,
    InvalidIdentifierError,
    OpaRestEngine,
    PolicyEngine,
    RegoModuleError,
    RegopyEngine,
    base_policy,
    compile_check,
)

OK_INPUT = dict(requested_fields=("patient.age", "patient.zip3"))


@pytest.fixture()
def stub() -> Iterator[OpaStub]:
    s = OpaStub().start()
    yield s
    s.stop()


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _assert_engine_error(e: PolicyEngine, before: int) -> None:
    d = e.decide(make_input(**OK_INPUT))
    assert d.allow is False
    assert d.reasons == ("ENGINE_ERROR",)
    assert d.released_fields == ()
    assert e.stats.failures == before + 1


def test_both_engines_satisfy_the_protocol(regopy_engine, opa_engine) -> None:
    assert isinstance(regopy_engine, PolicyEngine)
    assert isinstance(opa_engine, PolicyEngine)
    assert regopy_engine.bundle_hash == opa_engine.bundle_hash != ""


# ------------------------------------------------------------------ regopy failures


def test_regopy_decide_before_load_denies() -> None:
    e = RegopyEngine()
    _assert_engine_error(e, 0)
    assert "no contracts loaded" in e.stats.last_error


@pytest.mark.parametrize(
    "source",
    [
        'package accord\nimport rego.v1\ndecision := "allow"\n',
        'package accord\nimport rego.v1\ndecision := {"allow": true}\n',
        "package accord\nimport rego.v1\nother := 1\n",
        (
            'package accord\nimport rego.v1\ndecision := {"allow": true, "released_fields": '
            '["secret.ssn"], "obligations": [], "reasons": [], "effective_trust_micros": 500000, '
            '"budget_spent_micros": 0, "max_records": null}\n'
        ),
        (
            'package accord\nimport rego.v1\ndecision := {"allow": false, "released_fields": '
            '[], "obligations": [], "reasons": [], "effective_trust_micros": 500000, '
            '"budget_spent_micros": 0, "max_records": null}\n'
        ),
    ],
    ids=["not-an-object", "missing-keys", "undefined", "releases-unrequested", "silent-deny"],
)
def test_regopy_malformed_policy_answers_deny(source: str, hospital: Contract) -> None:
    e = RegopyEngine(policy_source=source)
    e.load([hospital])
    _assert_engine_error(e, 0)


def test_hook_that_does_not_compile_names_the_contract(hospital: Contract) -> None:
    d = Contract.load(DATA / "clinic.yaml").to_dict()
    d["rego_module"] = "package accord.hooks.broken\nimport rego.v1\ndeny contains x if {\n"
    broken = Contract.from_dict(d)
    with pytest.raises(RegoModuleError) as ei:
        compile_check(broken)
    assert ei.value.metadata["contract_id"] == broken.id
    e = RegopyEngine()
    e.load([hospital])
    with pytest.raises(RegoModuleError) as ei2:
        e.load([hospital, broken])
    assert ei2.value.reason == "REGO_MODULE_INVALID"
    assert "urn:accord:contract:clinic-care" in str(ei2.value)
    # the previous set stays loaded
    assert e.decide(make_input()).allow is True


def test_hook_with_unknown_function_does_not_compile() -> None:
    d = Contract.load(DATA / "clinic.yaml").to_dict()
    d["rego_module"] = (
        "package accord.hooks.bad\nimport rego.v1\n"
        'deny contains "X" if { no_such_builtin(input.x) }\n'
    )
    with pytest.raises(RegoModuleError):
        compile_check(Contract.from_dict(d))


def test_valid_hook_compiles() -> None:
    compile_check(Contract.load(DATA / "clinic.yaml"))


def test_duplicate_contract_ids_and_hooks_refused(hospital: Contract) -> None:
    e = RegopyEngine()
    with pytest.raises(ContractInvalidError, match="loaded twice"):
        e.load([hospital, hospital])
    clinic = Contract.load(DATA / "clinic.yaml")
    twin = Contract.from_dict(dict(clinic.to_dict(), id="urn:accord:contract:clinic-twin"))
    with pytest.raises(ContractInvalidError, match="hook package"):
        e.load([clinic, twin])


def test_decision_input_is_parsed() -> None:
    with pytest.raises(InvalidIdentifierError):
        make_input(requested_fields=("patient..age",))
    with pytest.raises(DecisionInputError):
        make_input(requested_fields="patient.age")
    with pytest.raises(DecisionInputError):
        make_input(effective_trust=1.5)
    with pytest.raises(DecisionInputError):
        make_input(budget_used=-1)
    with pytest.raises(DecisionInputError):
        make_input(now=datetime(2026, 6, 1))
    with pytest.raises(DecisionInputError):
        make_input(session={"requests": -1})
    with pytest.raises(DecisionInputError):
        make_input(agent_claims={"x": object()})
    inp = make_input(requested_fields=("b.c", "a", "b[].c"))
    assert inp.requested_fields == ("b.c", "a")
    with pytest.raises(TypeError):
        inp.agent_claims["scopes"] = []  # type: ignore[index]


# ------------------------------------------------------------------ cache


def test_decision_cache_hits_and_is_cleared_on_load(table_contracts) -> None:
    e = RegopyEngine(cache_size=2)
    e.load(table_contracts)
    a = e.decide(make_input(**OK_INPUT))
    b = e.decide(make_input(**OK_INPUT))
    assert e.stats.cache_hits == 1
    assert a.outcome() == b.outcome()
    assert a.decision_id != b.decision_id
    e.decide(make_input(budget_used=0.1))
    e.decide(make_input(budget_used=0.2))  # evicts the first entry (LRU, size 2)
    e.decide(make_input(**OK_INPUT))
    assert e.stats.cache_hits == 1
    e.decide(make_input(budget_used=0.2))
    assert e.stats.cache_hits == 2
    e.load(table_contracts[:1])
    e.decide(make_input(budget_used=0.2))
    assert e.stats.cache_hits == 2
    assert e.stats.decisions == 7


def test_cache_key_covers_every_input_field(table_contracts) -> None:
    e = RegopyEngine(cache_size=100)
    e.load(table_contracts)
    allowed = e.decide(make_input())
    assert allowed.allow
    denied = e.decide(make_input(agent_claims={"org": "did:web:lab-b.example", "scopes": []}))
    assert not denied.allow
    assert e.stats.cache_hits == 0


def test_engine_is_thread_safe(regopy_engine: RegopyEngine) -> None:
    inputs = [make_input(budget_used=i / 100) for i in range(40)]
    expected = [regopy_engine.decide(i).outcome() for i in inputs]
    got: dict[int, dict] = {}

    def work(k: int) -> None:
        for n, i in enumerate(inputs):
            if n % 4 == k:
                got[n] = regopy_engine.decide(i).outcome()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[n] for n in range(len(inputs))] == expected


# ------------------------------------------------------------------ OPA REST failures


def test_opa_unreachable_denies_and_counts(hospital: Contract) -> None:
    e = OpaRestEngine(f"http://127.0.0.1:{_free_port()}", timeout_seconds=0.5)
    with pytest.raises(EngineError) as ei:
        e.load([hospital])
    assert ei.value.caller_fault is False
    _assert_engine_error(e, 0)


@pytest.mark.parametrize("mode", ["garbage", "500", "undefined", "wrong-shape", "allow-everything"])
def test_opa_bad_answers_deny(mode: str, stub: OpaStub, hospital: Contract) -> None:
    e = OpaRestEngine(stub.url, timeout_seconds=2.0)
    e.load([hospital])
    assert e.decide(make_input(**OK_INPUT)).allow is True
    stub.mode = mode
    _assert_engine_error(e, 0)
    e.close()


def test_opa_timeout_denies(stub: OpaStub, hospital: Contract) -> None:
    # generous enough that the load itself never times out on a busy CI machine
    e = OpaRestEngine(stub.url, timeout_seconds=1.0)
    e.load([hospital])
    stub.mode, stub.delay = "slow", 3.0
    _assert_engine_error(e, 0)
    e.close()


def test_opa_went_away_after_load(hospital: Contract) -> None:
    s = OpaStub().start()
    e = OpaRestEngine(s.url, timeout_seconds=2.0)
    e.load([hospital])
    s.stop()
    _assert_engine_error(e, 0)


def test_opa_load_uploads_routes_and_removes_stale_hooks(stub: OpaStub, hospital: Contract) -> None:
    clinic = Contract.load(DATA / "clinic.yaml")
    e = OpaRestEngine(stub.url)
    e.load([hospital, clinic])
    assert set(stub.modules) == {"accord", "accord_hook_clinic_hours"}
    assert stub.modules["accord"] == base_policy()
    assert set(stub.data["accord_contracts"]) == {hospital.id, clinic.id}
    assert ("PUT", "/v1/data/accord_contracts") in stub.requests
    e.load([hospital])
    assert set(stub.modules) == {"accord"}
    assert ("DELETE", "/v1/policies/accord_hook_clinic_hours") in stub.requests
    d = e.decide(make_input())
    assert d.allow and ("POST", "/v1/data/accord/decision") in stub.requests
    e.close()


def test_opa_rejects_broken_hook(stub: OpaStub, hospital: Contract) -> None:
    d = Contract.load(DATA / "clinic.yaml").to_dict()
    d["rego_module"] = "package accord.hooks.broken\nimport rego.v1\ndeny contains x if {\n"
    e = OpaRestEngine(stub.url)
    with pytest.raises(RegoModuleError) as ei:
        e.load([hospital, Contract.from_dict(d)])
    assert ei.value.metadata["contract_id"] == "urn:accord:contract:clinic-care"
    _assert_engine_error(e, 0)  # a failed load leaves the engine unloaded: deny
    e.close()


@pytest.mark.parametrize(
    "url", ["ftp://opa:8181", "http://", "http://opa:8181/v1/data", "opa:8181"]
)
def test_opa_url_is_validated(url: str) -> None:
    with pytest.raises(ValueError):
        OpaRestEngine(url)


# ------------------------------------------------------------------ records


def test_decision_digest_is_jcs_of_the_record(regopy_engine: RegopyEngine) -> None:
    import hashlib

    import rfc8785

    d = regopy_engine.decide(make_input(**OK_INPUT))
    assert d.digest() == hashlib.sha256(rfc8785.dumps(d.to_dict())).hexdigest()
    other = dataclasses.replace(d, released_fields=("patient.age",))
    assert other.digest() != d.digest()
    assert d.reason_codes == ()
    n = regopy_engine.decide(make_input(requested_fields=("a.b", "c.d")))
    assert n.reason_codes == ("FIELD_NOT_IN_CONTRACT",)


def test_decision_log_exports_jsonl(regopy_engine: RegopyEngine, tmp_path) -> None:
    log = DecisionLog()
    inputs = [make_input(**OK_INPUT), make_input(purpose="nope")]
    for i in inputs:
        log.append(i, regopy_engine.decide(i))
    assert len(log) == 2
    n = log.export_jsonl(tmp_path / "d.jsonl")
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert n == len(lines) == 2
    recs = [json.loads(x) for x in lines]
    assert recs[0]["decision"]["allow"] is True
    assert recs[1]["decision"]["reasons"] == ["UNKNOWN_PURPOSE"]
    assert recs[0]["input"] == inputs[0].to_rego_input()
    assert recs[0]["decided_at"] == "2026-06-01T12:00:00Z"
    for r in recs:
        assert (
            Decision(
                **{
                    **r["decision"],
                    **{
                        k: tuple(r["decision"][k])
                        for k in ("released_fields", "obligations", "reasons")
                    },
                }
            ).digest()
            == r["decision_digest"]
        )


def test_contract_now_uses_whole_seconds(regopy_engine: RegopyEngine) -> None:
    just_before = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert regopy_engine.decide(make_input(now=just_before)).allow
    assert make_input(now=just_before).to_rego_input()["now_unix"] == 1798761599


def test_decision_input_refuses_numbers_outside_i_json() -> None:
    with pytest.raises(DecisionInputError):
        make_input(agent_claims={"big": 2**60})
    with pytest.raises(DecisionInputError):
        make_input(context={"x": 1e400})
    with pytest.raises(DecisionInputError):
        make_input(session={"requests": 2**60})
    with pytest.raises(DecisionInputError):
        make_input(recent_requests=2**60)
    with pytest.raises(DecisionInputError):
        make_input(budget_used=float("nan"))


def test_trust_is_quantized_down_and_budget_up() -> None:
    assert make_input(effective_trust=0.57).trust_micros == 570000
    assert make_input(effective_trust=0.4999999).trust_micros == 499999
    assert make_input(effective_trust=1.0).trust_micros == 1_000_000
    assert make_input(budget_used=0.3).budget_used_micros == 300000
    assert make_input(budget_used=0.0000001).budget_used_micros == 1
