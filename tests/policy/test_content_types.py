"""Typed field values in contracts: declarations refused precisely, values checked (issue #15)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from policy import Contract, ContractInvalidError
from policy.contract import FieldType
from policy.gate import check_values, strip_slots

HOSPITAL = Path(__file__).parent / "data" / "hospital.yaml"


def _doc(content):
    import yaml

    d = yaml.safe_load(HOSPITAL.read_text())
    d.pop("signatures", None)
    if content is not None:
        d["content"] = content
    return d


def test_a_contract_without_content_keeps_its_version_hash():
    plain = Contract.from_dict(_doc(None))
    assert "content" not in plain.terms()
    typed = Contract.from_dict(_doc({"fields": {"patient.age": {"type": "integer", "minimum": 0}}}))
    assert typed.version_hash != plain.version_hash, "type declarations are inside the signed terms"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "enum"}, "type enum needs 'values'"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum 5 is greater than maximum 1"),
        ({"type": "integer", "pattern": "a"}, "'pattern' applies to type string only"),
        ({"type": "string", "pattern": "(a)\\1"}, "not a valid RE2 expression"),
        ({"type": "string", "pattern": "(?=a)b"}, "not a valid RE2 expression"),
        ({"type": "string", "pattern": "a" * 300}, "longer than 256 characters"),
        ({"type": "boolean", "free_text": True}, "'free_text' applies to type string only"),
        ({"type": "enum", "values": ["a", "a"]}, "duplicate value"),
        ({"type": "date"}, "Input should be"),
    ],
)
def test_malformed_type_declarations_are_refused_with_the_reason(spec, message):
    with pytest.raises(ContractInvalidError) as err:
        Contract.from_dict(_doc({"fields": {"patient.age": spec}}))
    assert message in str(err.value)
    assert err.value.metadata["field"].startswith("content.fields")


def test_a_typed_field_no_purpose_names_is_refused():
    with pytest.raises(ContractInvalidError, match="no purpose lists"):
        Contract.from_dict(_doc({"fields": {"billing.secret": {"type": "string"}}}))


def test_a_catastrophic_pattern_runs_in_linear_time():
    spec = FieldType(type="string", pattern="(a+)+$", max_length=100_000)
    t = time.perf_counter()
    check = check_values({"x": "a" * 50_000 + "b"}, {"x": spec})
    assert time.perf_counter() - t < 1.0, "RE2 never backtracks"
    assert check.violations[0].reason == "VALUE_PATTERN_MISMATCH"


def test_values_are_checked_and_violations_stripped():
    fields = {
        "age": FieldType(type="integer", minimum=0, maximum=120),
        "sex": FieldType(type="enum", values=["F", "M", "X"]),
        "code": FieldType(type="string"),
        "notes": FieldType(type="string", free_text=True, max_length=50),
        "ok": FieldType(type="boolean"),
    }
    records = [
        {"age": 130, "sex": "F", "code": "two words", "notes": "fine text here", "ok": 1},
        {"age": True, "sex": "Q", "code": "A1", "notes": "x" * 51, "ok": True},
        {"age": 40, "sex": "M", "code": "B2", "notes": "short", "ok": False, "other": "kept"},
    ]
    c = check_values(records, fields)
    assert [(v.field, v.reason) for v in c.violations] == [
        ("age", "VALUE_OUT_OF_RANGE"),
        ("code", "VALUE_NOT_A_TOKEN"),
        ("ok", "VALUE_TYPE_MISMATCH"),
        ("age", "VALUE_TYPE_MISMATCH"),
        ("sex", "VALUE_NOT_IN_ENUM"),
        ("notes", "VALUE_TOO_LONG"),
    ]
    assert c.payload[2] == records[2]
    assert [f.text for f in c.free_text] == ["fine text here", "short"]
    stripped = strip_slots(c.payload, fields, [c.free_text[0].slot])
    assert "notes" not in stripped[0] and stripped[2]["notes"] == "short"
