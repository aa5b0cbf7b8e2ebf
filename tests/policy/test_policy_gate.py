from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import GateError, apply_gate
from policy.gate import leaf_paths
from policy.paths import covered_by

RECORD = {
    "patient": {
        "age": 41,
        "diagnosis": "J45",
        "ssn": "123-45-6789",
        "name": {"first": "A", "last": "B"},
    },
    "visits": [{"date": "2026-01-02", "cost": 10}, {"date": "2026-02-03", "cost": 12, "note": "x"}],
    "tags": ["a", "b"],
}


def test_releases_only_named_fields() -> None:
    r = apply_gate(RECORD, ["patient.age", "patient.diagnosis"])
    assert r.payload == {"patient": {"age": 41, "diagnosis": "J45"}}
    assert "patient.ssn" in r.stripped and "visits.cost" in r.stripped
    assert set(r.offered) == set(r.stripped) | {"patient.age", "patient.diagnosis"}


def test_paths_go_through_lists() -> None:
    r = apply_gate(RECORD, ["visits.date"])
    assert r.payload == {"visits": [{"date": "2026-01-02"}, {"date": "2026-02-03"}]}
    assert apply_gate(RECORD, ["visits[].date"]).payload == r.payload


def test_subtree_release_and_scalar_lists() -> None:
    r = apply_gate(RECORD, ["patient.name", "tags"])
    assert r.payload == {"patient": {"name": {"first": "A", "last": "B"}}, "tags": ["a", "b"]}


def test_list_payload_of_records() -> None:
    rows = [{"id": 1, "ssn": "x"}, {"ssn": "y"}, {"id": 3}]
    r = apply_gate(rows, ["id"])
    assert r.payload == [{"id": 1}, {"id": 3}]
    assert r.stripped == ("ssn",)


def test_nothing_released() -> None:
    assert apply_gate(RECORD, []).payload == {}
    assert apply_gate([{"a": 1}], []).payload == []
    assert apply_gate(RECORD, ["nothing.here"]).payload == {}


def test_released_path_naming_a_leaf_parent_does_not_release_siblings() -> None:
    r = apply_gate({"patient": {"age": 1, "agent": 2}}, ["patient.age"])
    assert r.payload == {"patient": {"age": 1}}


def test_scalar_where_object_expected_is_dropped() -> None:
    r = apply_gate({"patient": "opaque string with everything"}, ["patient.age"])
    assert r.payload == {}
    assert r.stripped == ("patient",)


def test_unnameable_keys_are_stripped_unless_inside_released_subtree() -> None:
    src = {"a.b": 1, "a": {"b": 2, "c d": 3}, 7: "int key"}
    r = apply_gate(src, ["a.b"])
    assert r.payload == {"a": {"b": 2}}
    whole = apply_gate(src, ["a"])
    assert whole.payload == {"a": {"b": 2, "c d": 3}}
    assert "?" in whole.stripped


def test_input_is_not_modified_and_output_is_a_copy() -> None:
    src = copy.deepcopy(RECORD)
    r = apply_gate(src, ["patient"])
    r.payload["patient"]["age"] = 0
    assert src == RECORD


def test_bad_paths_and_payloads() -> None:
    with pytest.raises(GateError):
        apply_gate(RECORD, ["patient..age"])
    with pytest.raises(GateError):
        apply_gate(RECORD, ["patient.*"])
    with pytest.raises(TypeError):
        apply_gate("string", ["a"])  # type: ignore[arg-type]


# ------------------------------------------------------------------ property

NAMES = st.sampled_from(["a", "b", "c", "age", "ssn", "name"])
KEYS = st.one_of(NAMES, st.sampled_from(["x.y", "", "c d", "a[]"]), st.integers(0, 3))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(".".join)


def _nameable_leaves(value: Any, prefix: str = "") -> set[str]:
    """Leaf paths computed independently of policy.gate (lists transparent)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            out |= _nameable_leaves(v, p)
        if not value and prefix:
            out.add(prefix)
    elif isinstance(value, list):
        for v in value:
            out |= _nameable_leaves(v, prefix)
        if not value and prefix:
            out.add(prefix)
    elif prefix:
        out.add(prefix)
    return out


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(KEYS, JSON, max_size=5), released=st.lists(PATHS, max_size=4))
def test_gate_never_releases_outside_the_released_set(payload: dict, released: list[str]) -> None:
    result = apply_gate(payload, released)
    rel = frozenset(released)
    for leaf in _nameable_leaves(result.payload):
        # every surviving leaf lies at or below a released path
        assert any(leaf == r or leaf.startswith(r + ".") for r in rel), (leaf, rel)
    # what was stripped was offered, and nothing covered was stripped
    assert set(result.stripped) <= set(result.offered)
    for p in result.stripped:
        assert not covered_by(p, rel)
    # whatever was offered and released survives (gate is not over-eager)
    for p in leaf_paths(payload):
        if "?" not in p and covered_by(p, rel):
            assert p in _nameable_leaves(result.payload)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.lists(st.dictionaries(KEYS, JSON, max_size=4), max_size=4),
    released=st.lists(PATHS, max_size=3),
)
def test_gate_on_record_lists(payload: list, released: list[str]) -> None:
    result = apply_gate(payload, released)
    assert isinstance(result.payload, list)
    for leaf in _nameable_leaves(result.payload):
        assert any(leaf == r or leaf.startswith(r + ".") for r in released)
