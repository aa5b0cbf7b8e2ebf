"""Named reconstruction attacks, and why the pooling scope matters."""

from __future__ import annotations

import random

import pytest

from policy.auditor import Auditor, scope_key
from policy.predicates import Dataset, DatasetSchema

try:  # tests/ is a package (python -m pytest from the repo root)
    from tests.policy.test_audit_oracle import discloses
except ImportError:  # rootdir-less runs put tests/policy on sys.path
    from test_audit_oracle import discloses  # type: ignore[no-redef]

SCHEMA = DatasetSchema(
    "id", ("salary",), {"id": "int", "salary": "int", "age": "int", "dept": "str", "zip": "str"}
)


def people(n: int, seed: int = 0) -> Dataset:
    rng = random.Random(seed)
    recs = [
        {
            "id": i,
            "salary": rng.randint(30, 200) * 1000,
            "age": rng.randint(20, 63),
            "dept": ("eng", "ops", "hr")[i % 3],
            "zip": ("10001", "10002")[i % 2],
        }
        for i in range(n)
    ]
    # the victim: the only 64-year-old in ops with zip 10003
    recs[0].update(age=64, dept="ops", zip="10003")
    return Dataset(SCHEMA, recs)


def run(queries, *, scope: str, coalitions=(), n: int):
    """Audit (org, agent, ids) queries; return (decisions, answered sets, their keys)."""
    auditor = Auditor(range(n))
    decisions, answered, keys = [], [], []
    for org, agent, ids in queries:
        key = scope_key(scope, requester_org=org, agent=agent, coalitions=coalitions)
        d = auditor.audit(key, "sum", frozenset(ids))
        decisions.append(d.allow)
        if d.allow:
            answered.append(frozenset(ids))
            keys.append(key)
        for k in auditor.status():
            assert auditor.disclosed(k) == frozenset()
    for k in set(keys):  # what each scope was told discloses nothing
        assert discloses([s for s, k2 in zip(answered, keys, strict=True) if k2 == k], n) == set()
    return decisions, answered


def differencing(ds: Dataset) -> list[frozenset[int]]:
    everyone = ds.select(ds.parse({}))
    others = ds.select(ds.parse({"not": {"col": "zip", "op": "==", "val": "10003"}}))
    return [frozenset(everyone), frozenset(others)]


def general_tracker(ds: Dataset) -> list[frozenset[int]]:
    """Denning-Denning-Schwartz general tracker T = (zip == "10002").

    value(C) = q(C or T) + q(C or not T) - q(T) - q(not T), every query set large.
    """
    c = {
        "and": [
            {"col": "age", "op": "==", "val": 64},
            {"col": "dept", "op": "==", "val": "ops"},
            {"col": "zip", "op": "==", "val": "10003"},
        ]
    }
    t = {"col": "zip", "op": "==", "val": "10002"}
    # ordered so that splitting round-robin over 2 orgs or 3 agents leaves
    # every single requester's share harmless
    preds = [t, {"or": [c, t]}, {"not": t}, {"or": [c, {"not": t}]}]
    sets = [frozenset(ds.select(ds.parse(p))) for p in preds]
    assert all(len(s) >= 5 for s in sets)  # query-set-size restriction does not help
    return sets


def subset_sum(n: int, m: int, seed: int) -> list[frozenset[int]]:
    """Dinur-Nissim: m random subsets; m >= n answers reconstruct everything."""
    rng = random.Random(seed)
    return [frozenset(i for i in range(n) if rng.random() < 0.5) or frozenset({0, 1}) for _ in range(m)]


N = 12
ATTACKS = {
    "differencing": lambda: differencing(people(N)),
    "general_tracker": lambda: general_tracker(people(N)),
    "subset_sum": lambda: subset_sum(N, 2 * N, seed=3),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_unaudited_would_disclose(name):
    assert discloses(ATTACKS[name](), N), "the workload must be a real attack"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_by_one_agent_is_stopped(name):
    sets = ATTACKS[name]()
    decisions, answered = run([("A", "a1", s) for s in sets], scope="agent", n=N)
    assert not all(decisions)
    assert discloses(answered, N) == set()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_split_across_three_agents(name):
    sets = ATTACKS[name]()
    queries = [("A", f"a{i % 3}", s) for i, s in enumerate(sets)]
    # pooled per organization: stopped
    decisions, answered = run(queries, scope="org", n=N)
    assert not all(decisions) and discloses(answered, N) == set()
    # per agent: each agent's own answers disclose nothing (checked in run) ...
    decisions, answered = run(queries, scope="agent", n=N)
    # ... but the organization, pooling its agents' answers, reconstructs
    if name != "subset_sum":
        assert all(decisions)
    assert discloses(answered, N) != set()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_split_across_two_colluding_orgs(name):
    sets = ATTACKS[name]()
    queries = [(("A", "B")[i % 2], f"x{i}", s) for i, s in enumerate(sets)]
    coalitions = [["A", "B"]]
    decisions, answered = run(queries, scope="coalition", coalitions=coalitions, n=N)
    assert not all(decisions) and discloses(answered, N) == set()
    decisions, answered = run(queries, scope="org", coalitions=coalitions, n=N)
    assert discloses(answered, N) != set()  # org scope misses the collusion
    decisions, answered = run(queries, scope="global", n=N)
    assert not all(decisions) and discloses(answered, N) == set()


def test_subset_sum_reconstruction_stops_short_of_any_record():
    n = 16
    sets = subset_sum(n, 80, seed=11)
    decisions, answered = run([("A", "a", s) for s in sets], scope="org", n=n)
    assert discloses(answered, n) == set()
    assert sum(decisions) >= n // 2  # useful answers were still given
    assert not all(decisions)
