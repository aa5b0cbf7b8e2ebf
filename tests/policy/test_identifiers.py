"""The one identifier grammar every request member passes (issue 18, class 1)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.identifiers import IDENTIFIER_KINDS, InvalidIdentifierError, check_identifier


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("relief-hospital-triage", "contract"),
        ("triage-coordination", "purpose"),
        ("patients", "resource"),
        ("patient.ssn", "field"),
        ("visits[].date", "field"),
        ("length_of_stay", "column"),
        ("*", "subject"),
        ("P-1001", "subject"),
        ("did:web:hospital.accord.test", "did"),
        ("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "did"),
    ],
)
def test_valid_identifiers_pass_unchanged(value: str, kind: str) -> None:
    assert check_identifier(value, kind) is value


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("triage\x00", "purpose"),  # NUL: the engine and the node would see different strings
        ("tri\u200bage", "purpose"),  # zero-width space
        ("caf\u00e9", "purpose"),  # non-ASCII, NFC or not
        ("cafe\u0301", "purpose"),  # combining mark (not NFC-stable)
        ("", "contract"),
        ("a" * 129, "contract"),
        (" patients", "resource"),
        ("patient..ssn", "field"),
        ("patient.", "field"),
        ("patients;drop", "resource"),
        ("did:web:", "did"),
        ("did:web:x\n", "did"),
        (7, "purpose"),
        (None, "subject"),
        ("**", "subject"),
    ],
)
def test_hostile_identifiers_are_refused(value: object, kind: str) -> None:
    with pytest.raises(InvalidIdentifierError) as exc:
        check_identifier(value, kind, field=kind)
    assert exc.value.reason == "MALFORMED_IDENTIFIER"
    assert exc.value.metadata["kind"] == kind


@given(st.text(max_size=300), st.sampled_from(sorted(IDENTIFIER_KINDS)))
def test_accepted_identifiers_have_no_control_or_non_ascii(value: str, kind: str) -> None:
    try:
        out = check_identifier(value, kind)
    except InvalidIdentifierError:
        return
    assert out == value and value.isascii() and value.isprintable() and " " not in value
