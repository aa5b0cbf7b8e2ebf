"""k-of-n Shamir sharing of field values (the repartitioning defense of the TVP suite)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interop_tests.tvp.sharing import MAX_VALUE_BYTES, ShareError, combine, parse, split

pytestmark = pytest.mark.xdist_group("tvp")

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None)
@given(VALUES, st.integers(2, 5), st.integers(0, 3))
def test_any_k_shares_reconstruct_the_value(value, k, extra):
    n = k + extra
    shares = split(value, k=k, n=n)
    assert len(shares) == n and len(set(shares)) == n
    for subset in itertools.islice(itertools.combinations(shares, k), 6):
        assert combine(list(subset)) == value
    assert combine(shares) == value  # more than k is fine too


def test_fewer_than_k_shares_are_refused_and_a_share_alone_says_nothing():
    secret = "DE89370400440532013000"
    shares = split(secret, k=3, n=5)
    with pytest.raises(ShareError, match="2 share"):
        combine(shares[:2])
    with pytest.raises(ShareError, match="2 share"):
        combine([shares[0], shares[0], shares[1]])  # one holder twice is one share
    assert all(secret not in s and secret.encode().hex() not in s for s in shares)
    # fresh randomness: splitting again gives other shares of the same value
    assert set(split(secret, k=3, n=5)).isdisjoint(shares)


def test_shares_of_two_values_do_not_mix_into_either():
    a, b = split("alpha-value", k=2, n=3), split("bravo-value", k=2, n=3)
    try:
        got = combine([a[0], b[1]])
    except ShareError:
        return
    assert got not in ("alpha-value", "bravo-value")


@pytest.mark.parametrize(
    "share",
    ["", "sss1:1:2", "sss2:1:2:00", "sss1:x:2:00", "sss1:1:2:zz", "sss1:0:2:" + "00" * 16, "sss1:1:2:00", 7],
)
def test_malformed_shares_are_share_errors(share):
    with pytest.raises(ShareError):
        parse(share)


def test_bounds_on_k_n_and_value_size():
    for k, n in ((1, 3), (4, 3), (2, 17)):
        with pytest.raises(ShareError):
            split("x", k=k, n=n)
    with pytest.raises(ShareError, match="larger"):
        split("x" * MAX_VALUE_BYTES, k=2, n=3)
    with pytest.raises(ShareError):
        combine([])
    with pytest.raises(ShareError, match="different"):
        combine([split("x", k=2, n=3)[0], split("x", k=3, n=3)[1]])
