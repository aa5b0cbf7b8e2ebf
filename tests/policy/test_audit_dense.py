"""Dense engine (explicit id sets): decisions agree with exact elimination over Q.

The dense engine works modulo a 23-bit prime with a random pool of null-space
vectors (``policy.audit_dense``). Its claim is one-sided exactness: it never
allows a query after which the rational row space of the answered sets holds
a unit vector, whatever the prime and the pool; chance only adds refusals
(negligible here). It answers a query the history implies only when it
repeats an answered set. The references below are independent: plain
Gaussian elimination over fractions on small instances, python-flint's
``fmpq_mat`` on larger ones.
"""

from __future__ import annotations

import json
import random

import flint
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.audit_dense import ACTIVE, K_MIN, LOG_MAX, DenseScope, dense_prime
from policy.auditor import Auditor

try:  # tests/ is a package (python -m pytest from the repo root)
    from tests.policy.test_audit_oracle import discloses
except ImportError:  # rootdir-less runs put tests/policy on sys.path
    from test_audit_oracle import discloses  # type: ignore[no-redef]


def _rank_q(sets: list[frozenset[int]], n: int) -> int:
    if not sets:
        return 0
    m = flint.fmpq_mat(len(sets), n)
    for i, s in enumerate(sets):
        for j in s:
            m[i, j] = 1
    return m.rank()


def _implied(history: list[frozenset[int]], q: frozenset[int], n: int) -> bool:
    return _rank_q([*history, q], n) == _rank_q(history, n)


def _determined(sets: list[frozenset[int]], n: int) -> set[int]:
    """Records whose unit vector lies in the rational row space (fmpq_mat rref)."""
    if not sets:
        return set()
    m = flint.fmpq_mat(len(sets), n)
    for i, s in enumerate(sets):
        for j in s:
            m[i, j] = 1
    rref, rank = m.rref()
    out = set()
    for i in range(rank):
        nz = [j for j in range(n) if rref[i, j] != 0]
        if len(nz) == 1:
            out.add(nz[0])
    return out


def _expected(history: list[frozenset[int]], q: frozenset[int], n: int) -> tuple[bool, str]:
    """The dense engine's rule, stated over Q."""
    if not q:
        return False, "EMPTY_SELECTION"
    if _implied(history, q, n):
        return (True, "OK") if q in history else (False, "RECONSTRUCTION_RISK")
    if discloses([*history, q], n):
        return False, "RECONSTRUCTION_RISK"
    return True, "OK"


def _scope(n: int, columns: int = 96) -> DenseScope:
    return DenseScope(n, columns, dense_prime(), random.getrandbits(64))


def _arr(q: frozenset[int]) -> np.ndarray:
    return np.fromiter(sorted(q), dtype=np.int64, count=len(q))


@st.composite
def attack_sequences(draw, n: int):
    """Random sets mixed with the classic attacks built from earlier queries.

    Differencing ({0..k} then {0..k-1}), unions and differences of earlier
    sets (trackers), complements, and "all but one" of an earlier set.
    """
    out: list[frozenset[int]] = []
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["random", "prefix", "union", "diff", "complement", "drop_one", "repeat"]))
        if op == "random" or not out:
            q = draw(st.frozensets(st.integers(0, n - 1), min_size=0, max_size=n))
        elif op == "prefix":
            k = draw(st.integers(1, n))
            q = frozenset(range(k))
        else:
            a = draw(st.sampled_from(out))
            b = draw(st.sampled_from(out))
            if op == "union":
                q = a | b
            elif op == "diff":
                q = a - b
            elif op == "complement":
                q = frozenset(range(n)) - a
            elif op == "drop_one":
                q = a - {draw(st.sampled_from(sorted(a)))} if a else a
            else:
                q = a
        out.append(q)
    return out


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 9))
def test_dense_decisions_match_exact_rational_elimination(data, n):
    qs = data.draw(attack_sequences(n))
    s = _scope(n)
    history: list[frozenset[int]] = []
    for q in qs:
        plan = s.plan(_arr(q))
        assert (plan.allow, plan.reason) == _expected(history, q, n), (history, q)
        if plan.allow:
            s.apply(plan)
            history.append(q)
        assert s.rank == _rank_q(history, n)
        assert set(s.disclosed_ids().tolist()) == set() == _determined(history, n)


def test_differencing_and_tracker_are_refused():
    n = 50
    s = _scope(n)
    for q in (frozenset(range(30)), frozenset(range(10, 50))):
        p = s.plan(_arr(q))
        assert p.allow
        s.apply(p)
    # {0..29} and {0..28}: record 29
    assert s.plan(_arr(frozenset(range(29)))).reason == "RECONSTRUCTION_RISK"
    # with {0..49} answered too, {10..29} = {0..29} + {10..49} - {0..49} is
    # implied (not a repeat: refused), and {1..9} would isolate record 0 through
    # {0..9} = {0..49} - {10..49} (a linear combination, not a difference of two)
    p = s.plan(_arr(frozenset(range(50))))
    assert p.allow
    s.apply(p)
    assert s.plan(_arr(frozenset(range(10, 30)))).reason == "RECONSTRUCTION_RISK"
    assert s.plan(_arr(frozenset(range(1, 10)))).reason == "RECONSTRUCTION_RISK"
    assert s.plan(_arr(frozenset(range(1, 11)))).allow
    # an answered set again: implied and certified, answered
    assert s.plan(_arr(frozenset(range(30)))).allow


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(LOG_MAX + 4, LOG_MAX + 40))
def test_pool_stays_in_the_null_space_across_refreshes(seed, n):
    # many refills (each projects reserve vectors through the logs) and at least
    # one full log (LOG_MAX pivots) being applied to the reserve a slice at a
    # time: every active vector must stay orthogonal to every answered row,
    # exactly mod p, and so must the slices of the reserve already done
    rng = np.random.default_rng(seed)
    s = DenseScope(n, 2 * LOG_MAX + ACTIVE, dense_prime(), int(rng.integers(2**62)))
    answered: list[frozenset[int]] = []
    slices_checked = 0
    for _ in range(2 * n):
        q = frozenset(np.flatnonzero(rng.random(n) < 0.5).tolist())
        plan = s.plan(_arr(q))
        if plan.allow:
            s.apply(plan)
            answered.append(q)
        b = np.zeros((len(s.rows), n), dtype=np.int64)
        for i, r in enumerate(s.rows):
            b[i, r] = 1
        assert not ((b @ s.active) % s.p).any()
        assert s.active.shape[1] >= K_MIN or not s.reserve.shape[0]
        if plan.allow and plan.grows and s.old.m:
            # rows [0, done) are through the old log: orthogonal to every row
            # answered before the current log started
            slices_checked += s.done > 0
            before = b[: len(s.rows) - s.log.m]
            res = np.mod(s.reserve[: s.done], s.p).astype(np.int64)
            assert not ((before @ res.T) % s.p).any()
    assert slices_checked >= 1
    assert s.rank == _rank_q(answered, n) <= n
    assert not (_determined(answered, n))


def test_auditor_moves_id_set_scopes_to_the_dense_engine_and_stays_exact():
    n = 120
    rng = random.Random(3)
    a = Auditor(range(n), dense_switch_entries=200)
    answered: list[frozenset[int]] = []
    for _ in range(40):
        q = frozenset(i for i in range(n) if rng.random() < 0.5)
        d = a.audit("org:A", "sum", q)
        if d.allow:
            answered.append(q)
    assert isinstance(a._scopes["org:A"], DenseScope)
    assert a.status()["org:A"].rank == _rank_q(answered, n) == len(answered)
    assert not _determined(answered, n)
    # differencing against an answered set, then one record alone
    base = sorted(answered[-1])
    d = a.check("org:A", "sum", frozenset(base[1:]))
    assert (d.allow, d.reason) == (False, "RECONSTRUCTION_RISK")
    assert not a.check("org:A", "avg", frozenset({base[0]})).allow
    assert a.check("org:A", "sum", answered[0]).allow  # a repeat
    assert a.check("org:A", "count", frozenset({base[0]})).allow
    # restart: the state replays to the same counters and decisions
    b = Auditor.from_state(json.loads(json.dumps(a.to_state())))
    assert b.status() == a.status()
    for _ in range(10):
        q = frozenset(i for i in range(n) if rng.random() < 0.5)
        da, db = a.audit("org:A", "sum", q), b.audit("org:A", "sum", q)
        assert (da.allow, da.reason, da.rank_after) == (db.allow, db.reason, db.rank_after)


def test_dense_pool_cap_fails_closed_but_answers_repeats():
    n = 100
    rng = random.Random(8)
    # 40 pool vectors: about 40 - K_MIN rank increases, then AUDIT_CAPACITY
    a = Auditor(range(n), max_entries=40 * n, dense_switch_entries=100)
    answered, reasons = [], set()
    for _ in range(60):
        q = frozenset(i for i in range(n) if rng.random() < 0.5)
        d = a.audit("s", "sum", q)
        reasons.add(d.reason)
        if d.allow:
            answered.append(q)
    assert isinstance(a._scopes["s"], DenseScope)
    assert "AUDIT_CAPACITY" in reasons and len(answered) < 40
    assert a.audit("s", "sum", answered[3]).allow
    assert not _determined(answered, n)


def test_merge_into_dense_reports_what_the_pooled_rows_determine():
    n = 100
    rng = random.Random(4)
    a = Auditor(range(n), dense_switch_entries=100)
    sets = [frozenset(i for i in range(n) if rng.random() < 0.5) for _ in range(12)]
    for q in sets:
        assert a.audit("org:A", "sum", q).allow
    assert isinstance(a._scopes["org:A"], DenseScope)
    victim = sorted(sets[0])
    assert a.audit("org:B", "sum", frozenset(victim[1:])).allow  # B alone: harmless
    leaked = a.merge_scopes("coalition:AB", ["org:A", "org:B"])
    assert leaked == frozenset({victim[0]}) == frozenset(_determined([*sets, frozenset(victim[1:])], n))
    st_ = a.status()["coalition:AB"]
    assert st_.history == 13 and st_.rank == 13
    # known leaks do not block everything after: a fresh harmless set is answered,
    # a new leak is not
    fresh = frozenset(i for i in range(n) if rng.random() < 0.5)
    assert a.check("coalition:AB", "sum", fresh).allow
    other = sorted(sets[1] - {victim[0]})
    assert not a.check("coalition:AB", "sum", frozenset(other[1:]) | (sets[1] & {victim[0]})).allow


@pytest.mark.parametrize("bad", ["x:AAAA", "b:!!!", "i:" + "A" * 3])
def test_malformed_dense_state_is_refused(bad):
    from policy.auditor import AuditStateError

    n = 60
    rng = random.Random(1)
    a = Auditor(range(n), dense_switch_entries=50)
    for _ in range(12):
        a.audit("s", "sum", frozenset(i for i in range(n) if rng.random() < 0.5))
    state = json.loads(json.dumps(a.to_state()))
    assert state["scopes"]["s"]["engine"] == "dense"
    state["scopes"]["s"]["rows"][0] = bad
    with pytest.raises(AuditStateError):
        Auditor.from_state(state)


def test_sparse_scope_restarted_before_the_switch_still_moves_and_stays_exact():
    n = 90
    rng = random.Random(11)
    a = Auditor(range(n), dense_switch_entries=300)
    sets = [frozenset(i for i in range(n) if rng.random() < 0.5) for _ in range(30)]
    answered = []
    for q in sets[:4]:
        assert a.audit("s", "sum", q).allow
        answered.append(q)
    assert not isinstance(a._scopes["s"], DenseScope)
    b = Auditor.from_state(json.loads(json.dumps(a.to_state())))  # the kept rows survive
    for q in sets[4:]:
        if b.audit("s", "sum", q).allow:
            answered.append(q)
    assert isinstance(b._scopes["s"], DenseScope)
    assert b.status()["s"].rank == _rank_q(answered, n) == len(answered)
    assert not _determined(answered, n)
    victim = sorted(answered[0])
    assert not b.check("s", "sum", frozenset(victim[1:])).allow


def test_version_1_state_loads_and_stays_sparse():
    a = Auditor(range(50))
    rng = random.Random(2)
    for _ in range(5):
        a.audit("s", "sum", frozenset(i for i in range(50) if rng.random() < 0.5))
    state = json.loads(json.dumps(a.to_state()))
    state["version"] = 1
    for key in ("dense_prime", "dense_switch_entries"):
        del state[key]
    for scope in state["scopes"].values():
        del scope["orig"]
    b = Auditor.from_state(state)
    assert b.status() == a.status()
    assert b._scopes["s"].orig is None  # without its rows, the scope cannot be rebuilt densely


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(2, 9))
def test_auditor_switching_engines_matches_exact_elimination(data, n):
    # dense_switch_entries=0: the scope moves to the dense engine as soon as
    # most of its cells are single records; before, the sparse rule (implied
    # queries answered), after, the dense rule (implied only as a repeat of a
    # set that raised the rank)
    qs = data.draw(attack_sequences(n))
    a = Auditor(range(n), dense_switch_entries=0)
    history: list[frozenset[int]] = []
    raised: list[frozenset[int]] = []
    for q in qs:
        dense = isinstance(a._scopes.get("s"), DenseScope)
        d = a.check("s", data.draw(st.sampled_from(["sum", "avg"])), q)
        if not q:
            expected = (False, "EMPTY_SELECTION")
        elif dense:
            expected = (
                _expected(raised, q, n)
                if not _implied(history, q, n)
                else ((True, "OK") if q in raised else (False, "RECONSTRUCTION_RISK"))
            )
        else:
            leaks = discloses([*history, q], n)
            expected = (False, "RECONSTRUCTION_RISK") if leaks else (True, "OK")
        assert (d.allow, d.reason) == expected, (dense, history, q)
        if d.allow:
            if not _implied(history, q, n):
                raised.append(q)
            a.commit("s", "sum", q)
            history.append(q)
        assert a.disclosed("s") == frozenset()
    assert a.status().get("s") is None or a.status()["s"].rank == _rank_q(history, n)


def test_a_plan_checked_before_the_dimension_grew_is_not_applied():
    # open universe: a later check with a larger id grows the dense scope's
    # dimension; committing the earlier check must recompute its plan
    rng = random.Random(6)
    a = Auditor(dense_switch_entries=0)
    for _ in range(6):
        a.audit("s", "sum", frozenset(i for i in range(20) if rng.random() < 0.5))
    s = a._scopes["s"]
    assert isinstance(s, DenseScope)
    q = frozenset(i for i in range(20) if rng.random() < 0.5)
    assert a.check("s", "sum", q).allow
    assert not a.check("s", "sum", frozenset({500})).allow  # denied (keeps the cache), grows to 501
    a.commit("s", "sum", q)
    assert s.active.shape[0] == s.n == 501
    assert a.audit("s", "sum", frozenset({5, 499, 500})).allow


def test_dense_pools_are_bounded_in_number_and_other_scopes_stay_sparse_and_exact():
    # each dense pool is allocated up front: a requester with many agents must
    # not turn a few queries per agent into many pools
    n = 80
    rng = random.Random(12)
    a = Auditor(range(n), dense_switch_entries=100, max_dense_scopes=1)
    answered: dict[str, list[frozenset[int]]] = {"agent:a": [], "agent:b": []}
    for _ in range(25):
        for key, hist in answered.items():
            q = frozenset(i for i in range(n) if rng.random() < 0.5)
            if a.audit(key, "sum", q).allow:
                hist.append(q)
    kinds = {k: isinstance(a._scopes[k], DenseScope) for k in answered}
    assert sorted(kinds.values()) == [False, True]
    for key, hist in answered.items():
        assert a.status()[key].rank == _rank_q(hist, n) and not _determined(hist, n)
    assert Auditor.from_state(json.loads(json.dumps(a.to_state()))).status() == a.status()
