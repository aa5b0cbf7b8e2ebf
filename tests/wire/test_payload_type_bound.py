"""R-SIG-3: a payload type longer than 128 bytes (UTF-8) is refused and its echo is cut.

The negative vector ``type-too-long`` (docs/spec/vectors/negative.json) pins the
status and reason for every implementation; these tests pin the Python
receiver's byte count and the length of the ``metadata.payload_type`` echo.
"""

from __future__ import annotations

import pytest

from federation.errors import FederationError
from federation.pb import federation_pb2 as pb
from federation.signing import MAX_PAYLOAD_TYPE_BYTES, REQUEST_BODY, check_payload_type


def _refusal(payload_type: str) -> FederationError:
    with pytest.raises(FederationError) as ei:
        check_payload_type(pb.SignedPayload(payload_type=payload_type), pb.RequestBody, field="request")
    return ei.value


def test_a_long_type_with_an_unspoken_version_is_wrong_payload_type_not_unsupported_version():
    t = REQUEST_BODY.replace(".v1.", ".v2.") + "X" * 300
    err = _refusal(t)
    assert err.reason == "WRONG_PAYLOAD_TYPE"
    assert err.metadata["payload_type"] == t[:MAX_PAYLOAD_TYPE_BYTES]


def test_the_bound_counts_utf8_bytes_and_the_echo_is_cut():
    t = "accord.federation.v1.Requést"  # not the form either way; the echo is the string itself
    assert _refusal(t).metadata["payload_type"] == t
    t = "é" * 100  # 100 characters, 200 bytes: refused without matching the grammar
    err = _refusal(t)
    assert err.reason == "WRONG_PAYLOAD_TYPE"
    assert err.metadata["payload_type"] == t[:MAX_PAYLOAD_TYPE_BYTES]
