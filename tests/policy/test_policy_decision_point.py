from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from policy_support import DATA, HOSPITAL_ID, NOW, PROVIDER, REQUESTER

from policy import (
    Contract,
    PolicyDecisionPoint,
    RegopyEngine,
    TrustBook,
    TrustConfig,
    UnknownContractError,
)

CLAIMS = {"org": REQUESTER, "scopes": ["data:read"]}
PAIR = (REQUESTER, PROVIDER)


def pdp(**kw) -> PolicyDecisionPoint:
    p = PolicyDecisionPoint(RegopyEngine(), **kw)
    p.load([Contract.load(DATA / "hospital.yaml")])
    return p


def ask(p: PolicyDecisionPoint, fields, now=NOW, **kw):
    args = dict(
        contract_id=HOSPITAL_ID,
        purpose="research",
        requester_org=REQUESTER,
        provider_org=PROVIDER,
        requester_agent="did:key:z6Mk",
        agent_claims=CLAIMS,
        requested_fields=fields,
        session={"requests": 0},
        now=now,
        resource="cohort",
        subject="*",
    )
    args.update(kw)
    return p.decide(**args)


def test_budget_is_spent_across_requests_then_only_mni_flows() -> None:
    p = pdp(trust=TrustBook(TrustConfig(initial=0.7)))
    fields = ["patient.age", "patient.zip3"]  # zip3 costs 0.2 of a 0.5 budget
    got = [ask(p, fields, now=NOW + timedelta(seconds=i)).released_fields for i in range(3)]
    assert got == [("patient.age", "patient.zip3")] * 2 + [("patient.age",)]
    assert p.budgets.spent(
        (HOSPITAL_ID, REQUESTER), window_seconds=3600, now=NOW + timedelta(seconds=3)
    ) == pytest.approx(0.4)
    # one window later the budget is back
    later = ask(p, fields, now=NOW + timedelta(hours=1, seconds=1))
    assert later.released_fields == ("patient.age", "patient.zip3")
    assert len(p.log) == 4


def test_trust_comes_from_the_book_capped_by_the_contract() -> None:
    p = pdp(trust=TrustBook(TrustConfig(initial=0.95)))
    d = ask(p, ["patient.name"])
    assert d.effective_trust == 0.8
    low = pdp(trust=TrustBook(TrustConfig(initial=0.4)))
    assert ask(low, ["patient.zip3"]).reasons == ("TRUST_TOO_LOW:patient.zip3",)


def test_denials_lower_trust_and_rate_limit_counts_requests() -> None:
    p = pdp()
    before = p.trust.score(PAIR, now=NOW)
    d = ask(p, ["patient.age"], agent_claims={"org": REQUESTER, "scopes": []})
    assert d.reasons == ("MISSING_SCOPE",)
    assert p.trust.score(PAIR, now=NOW) < before
    for i in range(99):
        assert ask(p, ["patient.age"], now=NOW + timedelta(milliseconds=10 * i)).allow
    # 100 requests in the last 60 s (the denied one counts too): rate limited
    assert ask(p, ["patient.age"], now=NOW + timedelta(seconds=2)).reasons == ("RATE_LIMITED",)
    assert ask(p, ["patient.age"], now=NOW + timedelta(seconds=61)).allow


def test_unknown_contract_is_a_deny_and_lookup_raises() -> None:
    p = pdp()
    assert ask(p, ["a"], contract_id="urn:x").reasons == ("UNKNOWN_CONTRACT",)
    with pytest.raises(UnknownContractError):
        p.contract("urn:x")
    assert p.contract(HOSPITAL_ID).id == HOSPITAL_ID


def test_concurrent_requests_never_overspend_the_budget() -> None:
    p = pdp(trust=TrustBook(TrustConfig(initial=0.7)))
    results = []

    def work() -> None:
        for _ in range(5):
            results.append(ask(p, ["patient.zip3", "patient.sex"]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = sum(d.budget_spent for d in results)
    assert spent <= 0.5 + 1e-9
    assert spent == pytest.approx(0.5)  # 0.3, then 0.1 (sex only), then 0.1: exactly full


def test_a_decision_recorded_while_the_log_is_drained_is_kept(tmp_path) -> None:
    """The node drains the log from its persist loop while worker threads decide.

    A thread that took the log before a drain and appends after it must still
    land in the next drain (the node once swapped in a fresh log object: that
    record went to the discarded one and never reached ``decisions.jsonl``).
    """
    from types import SimpleNamespace

    from policy_support import make_input

    from federation.node import Node

    p = pdp()
    decision = ask(p, ["patient.age"])
    node = SimpleNamespace(pdp=p, paths=SimpleNamespace(root=tmp_path))
    held = p.log  # a worker thread's reference, taken before the drain
    assert Node.drain_decision_log(node) == 1
    held.append(make_input(), decision)  # ... used after it
    assert Node.drain_decision_log(node) == 1
    lines = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert len(lines) == 2 and len(p.log) == 0
