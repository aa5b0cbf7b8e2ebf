"""``policy.decision.jcs_bytes`` is RFC 8785 byte for byte: the fast path equals the rfc8785 package."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.decision import jcs_bytes

_KEYS = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=st.characters(codec="ascii"), max_size=8),
    st.sampled_from(["a", "B", "\u00e9", "\ue000", "\U0001f600", "\x00", "\u2028", "\x7f"]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**54), max_value=2**54),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", '"\\\b\f\n\r\t\x01\x1f', "\u2028\u2029", "/"]),
)
JSONISH = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_KEYS, inner, max_size=4),
    ),
    max_leaves=20,
)


def _reference(value: Any) -> bytes | type[BaseException]:
    try:
        return rfc8785.dumps(value)
    except Exception as exc:  # noqa: BLE001 - the error class is what is compared
        return type(exc)


@settings(max_examples=1500, deadline=None)
@given(JSONISH)
def test_jcs_bytes_equals_rfc8785(value: Any) -> None:
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert jcs_bytes(value) == expected
    else:
        with pytest.raises(expected):
            jcs_bytes(value)


def test_fast_path_cases() -> None:
    doc = {"b": [1, True, None, "x\n\u00e9"], "a": {"z": -(2**53 - 1), "y": ""}}
    assert jcs_bytes(doc) == rfc8785.dumps(doc)
    assert jcs_bytes({"\U0001f600": 1, "\ue000": 2}) == rfc8785.dumps({"\U0001f600": 1, "\ue000": 2})
    with pytest.raises(rfc8785.IntegerDomainError):
        jcs_bytes({"n": 2**53})
