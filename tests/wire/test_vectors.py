"""The published signed-payload vectors (docs/spec/vectors/) hold for this implementation.

The files are read as published (not regenerated), so a change to
:mod:`federation.signing` that moves a byte fails here; a change to the
generator that is not re-published fails ``test_vectors_are_current``.
"""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from credentials import Ed25519KeyPair, did_key_from_public_key, verify_ed25519
from federation import spec_vectors
from federation.errors import FederationError
from federation.pb import federation_pb2 as pb
from federation.signing import open_payload, pae, sign_bytes
from federation.wire import status_code_for

VDIR = spec_vectors.VECTOR_DIR
MESSAGES = {
    "accord.federation.v1.RequestBody": pb.RequestBody,
    "accord.federation.v1.ExchangeEnvelope": pb.ExchangeEnvelope,
    "accord.federation.v1.SessionPossession": pb.SessionPossession,
}


def _load(name: str) -> dict:
    return json.loads((VDIR / name).read_text())


def _keys(doc: dict) -> dict[str, Ed25519KeyPair]:
    out = {}
    for k in doc["keys"]:
        pair = Ed25519KeyPair.from_seed(bytes.fromhex(k["seed_hex"]))
        assert pair.public_key.hex() == k["public_key_hex"]
        assert did_key_from_public_key(pair.public_key) == k["did_key"]
        out[k["name"]] = pair
    return out


def test_vectors_are_current():
    """The committed files are exactly what the generator writes (run --write after a change)."""
    assert spec_vectors.main(["--check"]) == 0
    for name, obj in spec_vectors.build().items():
        assert (VDIR / name).read_text() == spec_vectors.render(obj), name


@pytest.mark.parametrize("v", _load("pae.json")["vectors"], ids=lambda v: v["payload_type"])
def test_pae_vectors(v):
    got = pae(v["payload_type"], bytes.fromhex(v["payload_hex"]))
    assert got.hex() == v["pae_hex"]
    assert got.decode() == v["pae_text"]


def test_dsse_example():
    """The worked example of DSSE protocol.md, independent of the vector files."""
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


POSITIVE = _load("signed-payloads.json")


@pytest.mark.parametrize("v", POSITIVE["vectors"], ids=lambda v: v["name"])
def test_positive_vectors(v):
    key = _keys(POSITIVE)[v["signer"]]
    payload = bytes.fromhex(v["payload_hex"])
    assert pae(v["payload_type"], payload).hex() == v["pae_hex"]
    signed = sign_bytes(key, v["payload_type"], payload)
    assert signed.signature.hex() == v["signature_hex"]  # Ed25519 is deterministic (RFC 8032)
    verify_ed25519(key.public_key, bytes.fromhex(v["signature_hex"]), bytes.fromhex(v["pae_hex"]))
    cls = MESSAGES[v["payload_type"]]
    msg = open_payload(signed, cls, key.public_key, signer=v["signer"], field="vector")
    assert json_format.MessageToDict(msg, preserving_proto_field_name=True) == v["payload_fields"]


def test_envelope_vector_carries_the_request_vector_untouched():
    by_name = {v["name"]: v for v in POSITIVE["vectors"]}
    env = pb.ExchangeEnvelope.FromString(bytes.fromhex(by_name["exchange-envelope"]["payload_hex"]))
    assert env.request.payload.hex() == by_name["request-body"]["payload_hex"]
    assert env.request.signature.hex() == by_name["request-body"]["signature_hex"]


NEGATIVE = _load("negative.json")


def _payload(v: dict) -> bytes:
    if "payload_fill" in v:
        return bytes.fromhex(v["payload_fill"]["byte_hex"]) * v["payload_fill"]["count"]
    return bytes.fromhex(v["payload_hex"])


@pytest.mark.parametrize("v", NEGATIVE["vectors"], ids=lambda v: v["name"])
def test_negative_vectors(v):
    key = _keys(NEGATIVE)[v["trusted_key"]]
    signed = pb.SignedPayload(
        payload_type=v["payload_type"], payload=_payload(v), signature=bytes.fromhex(v["signature_hex"])
    )
    signer = "org" if v["field"] == "envelope" else "agent"
    with pytest.raises(FederationError) as ei:
        open_payload(
            signed, MESSAGES[v["expected_payload_type"]], key.public_key, signer=signer, field=v["field"]
        )
    assert ei.value.reason == v["expected"]["reason"]
    assert status_code_for(ei.value).name == v["expected"]["status"]


def test_every_reason_of_the_receiver_order_has_a_negative_vector():
    reasons = {v["expected"]["reason"] for v in NEGATIVE["vectors"]}
    assert reasons == {
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_VERSION",
        "WRONG_PAYLOAD_TYPE",
        "BAD_AGENT_SIGNATURE",
        "BAD_ORG_SIGNATURE",
        "MALFORMED_PAYLOAD",
        "UNKNOWN_FIELD",
    }
