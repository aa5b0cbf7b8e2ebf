"""Predicate grammar: parsing, refusals and evaluation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.errors import PolicyError
from policy.predicates import (
    MAX_PREDICATE_DEPTH,
    All,
    And,
    Compare,
    Dataset,
    DatasetSchema,
    Ids,
    Not,
    PredicateError,
    parse_predicate,
)

SCHEMA = DatasetSchema(
    id_column="id",
    sensitive=("salary",),
    columns={
        "id": "int",
        "salary": "float",
        "age": "int",
        "dept": "str",
        "remote": "bool",
        "score": "float",
    },
)
RECORDS = [
    {"id": 1, "salary": 100.0, "age": 30, "dept": "eng", "remote": True, "score": 1.5},
    {"id": 2, "salary": 200.0, "age": 40, "dept": "eng", "remote": False, "score": 2.5},
    {"id": 3, "salary": 300.0, "age": 50, "dept": "ops", "remote": True, "score": None},
    {"id": 5, "salary": 400.0, "age": 25, "dept": "hr", "remote": False, "score": 0.0},
]
DS = Dataset(SCHEMA, RECORDS)


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ({}, [1, 2, 3, 5]),
        ({"col": "age", "op": ">=", "val": 40}, [2, 3]),
        ({"col": "age", "op": "between", "val": [25, 30]}, [1, 5]),
        ({"col": "dept", "op": "in", "val": ["eng", "hr"]}, [1, 2, 5]),
        ({"col": "dept", "op": "not_in", "val": ["eng"]}, [3, 5]),
        ({"col": "remote", "op": "==", "val": True}, [1, 3]),
        ({"col": "dept", "op": "!=", "val": "eng"}, [3, 5]),
        ({"col": "score", "op": "<", "val": 2}, [1, 5]),  # None matches no comparison
        ({"not": {"col": "score", "op": "<", "val": 2}}, [2, 3]),
        (
            {"and": [{"col": "age", "op": ">", "val": 26}, {"col": "age", "op": "<=", "val": 40}]},
            [1, 2],
        ),
        ({"or": [{"ids": [1]}, {"col": "dept", "op": "==", "val": "hr"}]}, [1, 5]),
        ({"col": "id", "op": "in", "val": [2, 3]}, [2, 3]),
        ({"col": "score", "op": ">", "val": 1}, [1, 2]),  # int literal on a float column
    ],
)
def test_select(pred, expected):
    assert DS.select(DS.parse(pred)) == expected


def test_parse_builds_frozen_tree():
    p = parse_predicate(
        {"and": [{}, {"not": {"ids": [1, 2]}}, {"col": "age", "op": "in", "val": [1, 2]}]}, SCHEMA
    )
    assert p == And((All(), Not(Ids(frozenset({1, 2}))), Compare("age", "in", frozenset({1, 2}))))
    hash(p)


@pytest.mark.parametrize(
    ("pred", "path"),
    [
        ({"col": "salary", "op": ">", "val": 1}, "/col"),  # sensitive
        ({"col": "nope", "op": "==", "val": 1}, "/col"),
        ({"col": "age", "op": "==", "val": "30"}, "/val"),
        ({"col": "age", "op": "==", "val": 1.5}, "/val"),
        ({"col": "age", "op": "==", "val": True}, "/val"),
        ({"col": "remote", "op": "<", "val": True}, "/op"),
        ({"col": "age", "op": "like", "val": 1}, "/op"),
        ({"col": "age", "op": "between", "val": [1]}, "/val"),
        ({"col": "age", "op": "in", "val": 3}, "/val"),
        ({"col": "age", "op": "in", "val": [1, "x"]}, "/val/1"),
        ({"col": "score", "op": "==", "val": float("nan")}, "/val"),
        ({"ids": [1, 4]}, "/ids/1"),  # 4 is not in the dataset
        ({"ids": [1, "2"]}, "/ids/1"),
        ({"ids": 1}, "/ids"),
        ({"and": []}, "/and"),
        ({"and": [{"or": [1]}]}, "/and/0/or/0"),
        ({"col": "age"}, "/"),
        ({"foo": 1}, "/"),
        ([], "/"),
        ({"col": "id", "op": "==", "val": 9}, "/val"),
    ],
)
def test_invalid_predicates(pred, path):
    with pytest.raises(PredicateError) as ei:
        DS.parse(pred)
    e = ei.value
    assert e.reason == "INVALID_PREDICATE" and e.caller_fault
    assert e.metadata["path"] == path
    assert isinstance(e, PolicyError)


def test_ids_refused_when_not_allowed():
    for pred in ({"ids": [1]}, {"col": "id", "op": "==", "val": 1}, {"not": {"ids": [1]}}):
        with pytest.raises(PredicateError):
            DS.parse(pred, allow_ids=False)
    assert DS.select(DS.parse({"col": "age", "op": "<", "val": 35}, allow_ids=False)) == [1, 5]


def test_depth_limit():
    p: dict = {}
    for _ in range(MAX_PREDICATE_DEPTH - 1):
        p = {"not": p}
    DS.parse(p)
    with pytest.raises(PredicateError):
        DS.parse({"not": p})


def test_unbound_schema_accepts_any_id():
    assert parse_predicate({"ids": [99]}, SCHEMA) == Ids(frozenset({99}))


def test_dataset_validation():
    with pytest.raises(PolicyError):
        Dataset(SCHEMA, [{"id": 1}, {"id": 1}])
    with pytest.raises(PolicyError):
        Dataset(SCHEMA, [{"id": "x"}])
    with pytest.raises(PolicyError):
        Dataset(SCHEMA, [{"id": 1, "age": "old"}])
    with pytest.raises(PolicyError):
        Dataset(SCHEMA, [{"id": 1, "zzz": 1}])
    with pytest.raises(PolicyError):
        DatasetSchema("id", ("x",), {"id": "int", "x": "str"})
    with pytest.raises(PolicyError):
        DatasetSchema("id", (), {"id": "int"})
    with pytest.raises(PolicyError):
        DatasetSchema("id", ("s",), {"id": "float", "s": "int"})
    with pytest.raises(PolicyError):
        DatasetSchema("id", ("s",), {"id": "int", "s": "decimal"})
    assert DS.values([1, 3], "salary") == [100.0, 300.0]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(["and", "or", "not", "ids", "col", "op", "val", "x"]), c, max_size=3
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_is_total(obj):
    """Any JSON value parses to a predicate or raises PredicateError, nothing else."""
    try:
        p = DS.parse(obj)
    except PredicateError:
        return
    ids = DS.select(p)
    assert set(ids) <= {1, 2, 3, 5}
    json.dumps(obj)


small_ints = st.integers(-3, 3) | st.sampled_from([2**70, -(2**70)])
leaf_preds = st.one_of(
    st.builds(
        lambda op, v: {"col": "age", "op": op, "val": v},
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        small_ints,
    ),
    st.builds(
        lambda op, v: {"col": "score", "op": op, "val": v},
        st.sampled_from(["==", "!=", "<", ">="]),
        st.floats(-3, 3) | small_ints,
    ),
    st.builds(
        lambda op, v: {"col": "dept", "op": op, "val": v},
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(["a", "b", "c"])),
    ),
    st.builds(lambda v: {"col": "remote", "op": "==", "val": v}, st.booleans()),
    st.builds(lambda lo, hi: {"col": "age", "op": "between", "val": [lo, hi]}, small_ints, small_ints),
    st.builds(lambda ids: {"ids": ids}, st.lists(st.integers(0, 30) | st.just(2**64))),
    st.just({}),
)
tree_preds = st.recursive(
    leaf_preds,
    lambda c: (
        st.builds(lambda ps: {"and": ps}, st.lists(c, min_size=1, max_size=3))
        | st.builds(lambda ps: {"or": ps}, st.lists(c, min_size=1, max_size=3))
        | st.builds(lambda p: {"not": p}, c)
    ),
    max_leaves=6,
)
records = st.lists(
    st.fixed_dictionaries(
        {
            "age": st.none() | small_ints,
            "score": st.none() | st.floats(-3, 3),
            "dept": st.none() | st.sampled_from(["a", "b", "c"]),
            "remote": st.none() | st.booleans(),
        }
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(recs=records, pred=tree_preds)
def test_select_array_matches_select(recs, pred):
    ds = Dataset(SCHEMA, [{"id": 3 * i, "salary": 1.0, **r} for i, r in enumerate(recs)])
    p = parse_predicate(pred, SCHEMA)  # unbound schema: any ids
    assert ds.select_array(p).tolist() == ds.select(p)


def test_select_positions():
    p = DS.parse({"col": "dept", "op": "==", "val": "eng"})
    assert DS.select_positions(p).tolist() == [0, 1]
    assert DS.select_array(p).tolist() == [1, 2]
