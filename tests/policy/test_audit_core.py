"""Auditor core: decisions checked against an independent exact rational elimination."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.auditor import (
    AuditCommitRefusedError,
    Auditor,
    AuditStateError,
    InvalidQueryKindError,
    InvalidScopeError,
    UnknownRecordError,
    random_prime,
    scope_key,
)
from policy.errors import PolicyError

try:  # tests/ is a package (python -m pytest from the repo root)
    from tests.policy.test_audit_oracle import discloses, rational_rank
except ImportError:  # rootdir-less runs put tests/policy on sys.path
    from test_audit_oracle import discloses, rational_rank  # type: ignore[no-redef]

queries = st.lists(
    st.tuples(
        st.sampled_from(["sum", "avg", "count"]),
        st.frozensets(st.integers(0, 7), min_size=0, max_size=8),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 8), qs=queries, seed=st.integers(0, 2**32))
def test_decisions_match_exact_rational_elimination(n, qs, seed):
    auditor = Auditor(range(n))
    history: list[frozenset[int]] = []
    for kind, q in qs:
        q = frozenset(i for i in q if i < n)
        d = auditor.check("s", kind, q)
        if not q:
            assert (d.allow, d.reason) == (False, "EMPTY_SELECTION")
            continue
        if kind == "count":
            assert d.allow and d.rank_after == d.rank_before
            auditor.commit("s", kind, q)
            continue
        leaks = discloses([*history, q], n)
        assert d.allow == (not leaks), (history, q, leaks)
        assert (
            d.rank_before == rational_rank([[Fraction(int(i in h)) for i in range(n)] for h in history])
            if history
            else d.rank_before == 0
        )
        if d.allow:
            auditor.commit("s", kind, q)
            history.append(q)
            assert d.rank_after == auditor.status()["s"].rank
        else:
            assert d.reason == "RECONSTRUCTION_RISK"
            with pytest.raises(AuditCommitRefusedError):
                auditor.commit("s", kind, q)
        assert auditor.disclosed("s") == frozenset()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 8), qs=queries)
def test_small_prime_agrees_with_rationals_on_small_instances(n, qs):
    # a 32-bit prime cannot divide the tiny minors of <= 8x8 0/1 matrices
    # (Hadamard: |det| <= 8^4 < 2^31), so decisions must be identical.
    small = Auditor(range(n), prime=4294967291)
    big = Auditor(range(n))
    for kind, q in qs:
        q = frozenset(i for i in q if i < n)
        assert small.audit("k", kind, q) == big.audit("k", kind, q)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), qs=queries, cut=st.integers(0, 8))
def test_state_round_trip_preserves_decisions(n, qs, cut):
    a = Auditor(range(n))
    for kind, q in qs[:cut]:
        a.audit("x", kind, frozenset(i for i in q if i < n))
    b = Auditor.from_state(json.loads(json.dumps(a.to_state())))
    assert b.status() == a.status()
    for kind, q in qs[cut:]:
        q = frozenset(i for i in q if i < n)
        assert a.audit("x", kind, q) == b.audit("x", kind, q)


# ----------------------------------------------------------------- unit behaviour


def test_differencing_attack_is_stopped():
    a = Auditor(range(100))
    assert a.audit("s", "sum", frozenset(range(100))).allow
    d = a.audit("s", "sum", frozenset(range(1, 100)))
    assert (d.allow, d.reason) == (False, "RECONSTRUCTION_RISK")
    # denied queries do not enter the history
    assert a.status()["s"].history == 1 and a.status()["s"].denials == 1


def test_avg_counts_as_sum_and_singleton_is_denied():
    a = Auditor(range(5))
    assert not a.audit("s", "avg", frozenset({3})).allow
    assert not a.audit("s", "sum", frozenset({3})).allow
    assert a.audit("s", "count", frozenset({3})).allow


def test_count_is_recorded_but_never_enters_the_matrix():
    a = Auditor(range(4))
    for _ in range(3):
        assert a.audit("s", "count", frozenset({1})).allow
    st_ = a.status()["s"]
    assert (st_.counts, st_.history, st_.rank) == (3, 0, 0)


def test_check_does_not_commit_and_commit_after_check_uses_same_decision():
    a = Auditor(range(10))
    q = frozenset(range(10))
    assert a.check("s", "sum", q).allow
    assert a.status()["s"].history == 0
    a.commit("s", "sum", q)
    assert a.status()["s"].history == 1
    # a stale check: the second commit would now disclose
    q1, q2 = frozenset(range(1, 10)), frozenset(range(2, 10))
    assert a.check("s", "sum", q2).allow
    a.commit("s", "sum", q2)
    assert not a.check("s", "sum", q1).allow
    with pytest.raises(AuditCommitRefusedError) as ei:
        a.commit("s", "sum", q1)
    assert ei.value.metadata["decision_reason"] == "RECONSTRUCTION_RISK"


def test_empty_selection_denied():
    a = Auditor(range(3))
    for kind in ("count", "sum", "avg"):
        d = a.check("s", kind, frozenset())
        assert (d.allow, d.reason) == (False, "EMPTY_SELECTION")


def test_add_records_keeps_state_valid_and_unknown_ids_are_refused():
    a = Auditor(range(4))
    assert a.audit("s", "sum", frozenset(range(4))).allow
    with pytest.raises(UnknownRecordError) as ei:
        a.check("s", "sum", frozenset({4}))
    assert ei.value.reason == "UNKNOWN_RECORD" and not ei.value.caller_fault
    a.add_records([4, 5])
    # SUM(0..5) then SUM(0..4) would isolate record 5
    assert a.audit("s", "sum", frozenset(range(6))).allow
    assert not a.check("s", "sum", frozenset(range(5))).allow
    assert not a.check("s", "sum", frozenset({4, 5, 0, 1, 2, 3}) - {5}).allow


def test_open_universe_and_selection_types_agree():
    closed = Auditor(range(50))
    opened = Auditor()
    rng = random.Random(7)
    for _ in range(40):
        q = frozenset(rng.sample(range(50), rng.randint(1, 50)))
        forms = [q, sorted(q), np.array(sorted(q), dtype=np.int32), list(q) + list(q)]
        d1 = closed.audit("s", "sum", q)
        d2 = opened.audit("s", "sum", forms[rng.randrange(len(forms))])
        assert d1 == d2


def test_bad_inputs_raise_typed_errors():
    a = Auditor(range(3))
    with pytest.raises(InvalidQueryKindError) as ei:
        a.check("s", "median", frozenset({1}))
    assert ei.value.caller_fault and ei.value.reason == "INVALID_QUERY_KIND"
    for bad in (frozenset({-1}), [1.5], ["a"], np.array([[1]]), [True]):
        with pytest.raises(UnknownRecordError):
            a.check("s", "sum", bad)
    with pytest.raises(AuditStateError):
        Auditor.from_state({"version": 99})
    with pytest.raises(AuditStateError):
        Auditor.from_state({"version": 1, "prime": "f", "scopes": {}})
    st_ = a.to_state()
    st_["scopes"] = {
        "s": {
            "atom_of": "",
            "size": "",
            "w": ["1"],
            "proj": [],
            "rows": {},
            "history": 0,
            "counts": 0,
            "denials": 0,
        }
    }
    with pytest.raises(AuditStateError):
        Auditor.from_state(st_)
    with pytest.raises(ValueError):
        Auditor(prime=15)
    assert issubclass(AuditStateError, PolicyError)


def test_random_prime_is_prime_of_requested_size():
    import flint

    p = random_prime()
    assert p.bit_length() == 127 and flint.fmpz(p).is_prime()
    assert random_prime() != p


def test_scope_keys():
    k = scope_key("agent", requester_org="A", agent="a1")
    assert k != scope_key("agent", requester_org="A", agent="a2")
    assert scope_key("org", requester_org="A", agent="a1") == scope_key("org", requester_org="A", agent="a2")
    co = [["A", "B"], ["B", "C"], ["D", "E"]]
    ka = scope_key("coalition", requester_org="A", coalitions=co)
    assert ka == scope_key("coalition", requester_org="C", coalitions=co)  # transitive
    assert ka != scope_key("coalition", requester_org="D", coalitions=co)
    assert scope_key("coalition", requester_org="Z", coalitions=co) != ka
    assert scope_key("global", requester_org="A") == scope_key("global", requester_org="Q")
    # names containing separators cannot collide
    assert scope_key("agent", requester_org="A:x", agent="y") != scope_key(
        "agent", requester_org="A", agent="x:y"
    )
    with pytest.raises(InvalidScopeError):
        scope_key("planet", requester_org="A")
    with pytest.raises(InvalidScopeError):
        scope_key("agent", requester_org="A")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 8), qa=queries, qb=queries)
def test_merge_scopes_pools_histories_exactly(n, qa, qb):
    a = Auditor(range(n))
    answered: list[frozenset[int]] = []
    for key, qs in (("org:A", qa), ("org:B", qb)):
        for kind, q in qs:
            q = frozenset(i for i in q if i < n)
            if a.audit(key, kind, q).allow and kind != "count":
                answered.append(q)
    leaked = a.merge_scopes("coalition:AB", ["org:A", "org:B", "org:missing"])
    assert leaked == discloses(answered, n)
    st_ = a.status()["coalition:AB"]
    assert st_.history == len(answered)
    for key, scope in a._scopes.items():  # the entry counter tracks the basis exactly
        assert a.status()[key].entries == sum(len(r) for r in scope.rows.values())
    rows = [[Fraction(int(i in h)) for i in range(n)] for h in answered]
    assert st_.rank == (rational_rank(rows) if rows else 0)
    # the merged scope now refuses anything that adds a disclosure
    for i in range(n):
        d = a.check("coalition:AB", "sum", frozenset({i}))
        assert d.allow == (i in leaked)


def test_merge_after_collusion_is_declared():
    a = Auditor(range(10))
    assert a.audit("org:A", "sum", frozenset(range(10))).allow
    assert a.audit("org:B", "sum", frozenset(range(1, 10))).allow  # separate scopes
    assert a.merge_scopes("coalition:AB", ["org:A", "org:B"]) == frozenset({0})
    assert a.status()["org:A"].history == 1  # sources untouched


def test_work_cap_fails_closed_but_still_answers_implied_queries():
    rng = random.Random(5)
    a = Auditor(range(200), max_entries=500)
    answered = []
    reasons = set()
    for _ in range(40):
        q = frozenset(i for i in range(200) if rng.random() < 0.5)
        d = a.audit("s", "sum", q)
        reasons.add(d.reason)
        if d.allow:
            answered.append(q)
    assert "AUDIT_CAPACITY" in reasons
    st_ = a.status()["s"]
    assert st_.entries > 500 and st_.history == len(answered)
    # an already-implied query (a repeat) is still answered, cheaply
    assert a.audit("s", "sum", answered[0]).allow
    b = Auditor.from_state(json.loads(json.dumps(a.to_state())))
    assert b.check("s", "sum", frozenset(range(100))).reason == "AUDIT_CAPACITY"
    assert b.status()["s"].entries == st_.entries


def test_concurrent_audits_keep_the_guarantee():
    import threading

    n = 12
    a = Auditor(range(n), max_entries=None)
    rng = random.Random(9)
    work = [frozenset(i for i in range(n) if rng.random() < 0.5) or frozenset({0, 1}) for _ in range(120)]
    answered: list[frozenset[int]] = []
    lock = threading.Lock()

    def worker(chunk):
        for q in chunk:
            if a.audit("org:A", "sum", q).allow:
                with lock:
                    answered.append(q)

    ts = [threading.Thread(target=worker, args=(work[i::4],)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert discloses(answered, n) == set()
    assert a.status()["org:A"].history == len(answered)
    assert Auditor.from_state(a.to_state()).to_state()["max_entries"] is None


def test_internal_invariants_hold_after_audits_and_merges():
    """White-box: the fast-path functional, column index and cell sizes stay exact."""
    rng = random.Random(3)
    for _ in range(60):
        n = rng.randint(2, 14)
        a = Auditor(range(n), prime=4294967291)
        for _ in range(rng.randint(1, 20)):
            q = frozenset(i for i in range(n) if rng.random() < 0.5)
            if q:
                a.audit("s", "sum", q)
            if rng.random() < 0.3:
                a.merge_scopes("m", ["s"])
        for s in a._scopes.values():
            p = s.p
            for c in range(s.n_atoms):
                if c in s.rows:
                    assert s.proj[c] == (-sum(v * s.w[f] for f, v in s.rows[c].items())) % p
                else:
                    assert s.proj[c] == s.w[c]
            cols: dict[int, set[int]] = {}
            for c, r in s.rows.items():
                for f in r:
                    cols.setdefault(f, set()).add(c)
            assert cols == s.cols
            assert int(s.size[: s.n_atoms].sum()) == int((s.atom_of >= 0).sum())
            assert s.nnz == sum(len(r) for r in s.rows.values())
