"""federation.signing and federation.negotiation as pure functions (no network)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credentials import Ed25519KeyPair
from federation.errors import FederationError
from federation.negotiation import check_peer_info, fill_node_info
from federation.pb import federation_pb2 as pb
from federation.signing import (
    EXCHANGE_ENVELOPE,
    REQUEST_BODY,
    SESSION_POSSESSION,
    open_payload,
    pae,
    sign_bytes,
    sign_payload,
)

KEY = Ed25519KeyPair.from_seed(bytes(range(32)))
TYPES = st.sampled_from([REQUEST_BODY, EXCHANGE_ENVELOPE, SESSION_POSSESSION]) | st.text(max_size=80)
MESSAGES = st.sampled_from([pb.RequestBody, pb.ExchangeEnvelope, pb.SessionPossession])
REASONS = {
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_VERSION",
    "WRONG_PAYLOAD_TYPE",
    "BAD_AGENT_SIGNATURE",
    "MALFORMED_PAYLOAD",
    "UNKNOWN_FIELD",
}


@settings(max_examples=300)
@given(t1=st.text(max_size=20), b1=st.binary(max_size=20), t2=st.text(max_size=20), b2=st.binary(max_size=20))
def test_pae_is_injective(t1, b1, t2, b2):
    """Two different (type, body) pairs never share a PAE: a signature covers exactly one pair."""
    if (t1, b1) != (t2, b2):
        assert pae(t1, b1) != pae(t2, b2)


@settings(max_examples=300)
@given(payload_type=TYPES, payload=st.binary(max_size=300), sign=st.booleans(), expected=MESSAGES)
def test_open_payload_is_total(payload_type, payload, sign, expected):
    """Any signed payload opens as the expected message or raises a FederationError with a table reason."""
    signed = (
        sign_bytes(KEY, payload_type, payload)
        if sign
        else pb.SignedPayload(payload_type=payload_type, payload=payload, signature=bytes(64))
    )
    try:
        msg = open_payload(signed, expected, KEY.public_key, signer="agent", field="f")
    except FederationError as exc:
        assert exc.reason in REASONS
    else:
        assert isinstance(msg, expected)
        assert signed.payload_type == f"accord.federation.v1.{expected.DESCRIPTOR.name}"


def test_round_trip_keeps_the_bytes():
    body = pb.RequestBody(contract_id="c", fields=["a", "b"], timestamp_ms=1)
    signed = sign_payload(KEY, body)
    assert signed.payload_type == REQUEST_BODY
    assert open_payload(signed, pb.RequestBody, KEY.public_key, signer="agent", field="r") == body


@pytest.mark.parametrize(
    ("field", "values", "reason"),
    [
        ("protocol_versions", [], "UNSUPPORTED_VERSION"),
        ("cryptosuites", ["ecdsa-sd-2023"], "UNSUPPORTED_CRYPTOSUITE"),
        ("signature_algorithms", [], "UNSUPPORTED_ALGORITHM"),
        ("ledger_formats", ["c2sp-tlog-checkpoint", "c2sp-tlog-proof"], "UNSUPPORTED_LEDGER_FORMAT"),
    ],
)
def test_check_peer_info_names_what_is_missing(field, values, reason):
    info = fill_node_info(pb.NodeInfo())
    check_peer_info(info)  # our own NodeInfo is acceptable
    del getattr(info, field)[:]
    getattr(info, field).extend(values)
    with pytest.raises(FederationError) as ei:
        check_peer_info(info)
    assert (ei.value.reason, ei.value.status) == (reason, "FAILED_PRECONDITION")


def test_check_peer_info_reports_the_version_first():
    with pytest.raises(FederationError) as ei:
        check_peer_info(pb.NodeInfo())  # nothing advertised at all
    assert ei.value.reason == "UNSUPPORTED_VERSION"


def test_check_peer_info_reads_a_bounded_prefix():
    info = fill_node_info(pb.NodeInfo())
    del info.protocol_versions[:]
    info.protocol_versions.extend(["accord.federation.v9"] * 64 + ["accord.federation.v1"])
    with pytest.raises(FederationError) as ei:
        check_peer_info(info)
    assert ei.value.reason == "UNSUPPORTED_VERSION"
