"""Test vectors for the signed payloads of Accord wire v1 (docs/spec/vectors/).

Generates, byte for byte, the published vectors of docs/spec/accord-v1.md §4:

* ``pae.json``: PAE inputs and their bytes;
* ``signed-payloads.json``: keys (Ed25519 seeds), payload types, payload
  fields and bytes, PAE bytes and signatures, for every payload type;
* ``negative.json``: signed payloads a receiver must refuse, with the
  field that carries them, the key it trusts, and the gRPC status and
  ErrorInfo reason it must answer.

Everything is derived from fixed seeds and fixed field values (Ed25519 is
deterministic), so the output never changes unless the protocol does::

    python -m federation.spec_vectors --write   # regenerate docs/spec/vectors/
    python -m federation.spec_vectors --check   # exit 1 if the committed files differ

Encoding in the JSON files: byte strings are lowercase hex (``*_hex``);
``payload_fields`` is the protobuf JSON mapping of the parsed payload
(proto field names; int64 as a decimal string; bytes as base64), for
checking the parse only: the bytes in ``payload_hex`` are what is signed.
A payload too large to print is given as ``payload_fill``
(``{"byte_hex": ..., "count": ...}``: that byte repeated).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from credentials import Ed25519KeyPair, did_key_from_public_key
from federation.pb import federation_pb2 as pb
from federation.signing import (
    EXCHANGE_ENVELOPE,
    MAX_PAYLOAD_BYTES,
    REQUEST_BODY,
    SESSION_POSSESSION,
    pae,
    sign_bytes,
    sign_payload,
)

#: where the vectors are published, relative to the repository root
VECTOR_DIR = Path(__file__).resolve().parent.parent / "docs" / "spec" / "vectors"

PROVIDER = "did:web:hospital.accord.test"
REQUESTER = "did:web:relief.accord.test"


def seed(label: str) -> bytes:
    """The 32-byte Ed25519 seed of a vector key: SHA-256 of ``"accord-vector/" + label``."""
    return hashlib.sha256(b"accord-vector/" + label.encode()).digest()


def _keys() -> dict[str, Ed25519KeyPair]:
    return {name: Ed25519KeyPair.from_seed(seed(name)) for name in ("agent", "org", "other-agent")}


def _fields(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _key_json(keys: dict[str, Ed25519KeyPair], name: str) -> dict[str, str]:
    k = keys[name]
    return {
        "name": name,
        "seed_hex": k.seed.hex(),
        "public_key_hex": k.public_key.hex(),
        "did_key": did_key_from_public_key(k.public_key),
    }


def _messages(keys: dict[str, Ed25519KeyPair]) -> tuple[pb.RequestBody, pb.SessionPossession]:
    agent_did = did_key_from_public_key(keys["agent"].public_key)
    body = pb.RequestBody(
        contract_id="relief-hospital-triage",
        purpose="triage-coordination",
        resource="patients",
        subject="p-1001",
        fields=["triage_level", "age"],
        provider_org=PROVIDER,
        agent_did=agent_did,
        nonce="bm9uY2Utdi0xLXZlY3Rvci0x",
        timestamp_ms=1764806400000,
    )
    possession = pb.SessionPossession(
        agent_did=agent_did, challenge="ch_0123456789abcdef0123456789abcdef", peer_org=PROVIDER
    )
    return body, possession


def _positive(name: str, signer: str, message, signed: pb.SignedPayload, note: str) -> dict[str, Any]:
    return {
        "name": name,
        "note": note,
        "signer": signer,
        "payload_type": signed.payload_type,
        "payload_fields": _fields(message),
        "payload_hex": signed.payload.hex(),
        "pae_hex": pae(signed.payload_type, signed.payload).hex(),
        "signature_hex": signed.signature.hex(),
    }


def _negative(
    name: str,
    note: str,
    *,
    field: str,
    expected_type: str,
    trusted_key: str,
    signed: pb.SignedPayload,
    status: str,
    reason: str,
    fill: tuple[str, int] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "note": note,
        "field": field,
        "expected_payload_type": expected_type,
        "trusted_key": trusted_key,
        "payload_type": signed.payload_type,
    }
    if fill is not None:
        out["payload_fill"] = {"byte_hex": fill[0], "count": fill[1]}
    else:
        out["payload_hex"] = signed.payload.hex()
    out["signature_hex"] = signed.signature.hex()
    out["expected"] = {"status": status, "reason": reason}
    return out


def build() -> dict[str, dict[str, Any]]:
    """The vector files, as ``{file name: JSON object}``."""
    keys = _keys()
    body, possession = _messages(keys)
    s_body = sign_payload(keys["agent"], body)
    s_poss = sign_payload(keys["agent"], possession)
    envelope = pb.ExchangeEnvelope(session_id="ses_0123456789abcdef", request=s_body, requester_org=REQUESTER)
    s_env = sign_payload(keys["org"], envelope)

    pae_vectors = [
        {
            "payload_type": t,
            "payload_hex": p.hex(),
            "pae_hex": pae(t, p).hex(),
            "pae_text": pae(t, p).decode(),
        }
        for t, p in (
            ("http://example.com/HelloWorld", b"hello world"),  # DSSE protocol.md's own example
            (REQUEST_BODY, b""),
            (SESSION_POSSESSION, b"\x0a\x01a"),
        )
    ]

    positive = [
        _positive(
            "request-body",
            "agent",
            body,
            s_body,
            "an agent's request (SendRequestRequest.request, ExchangeEnvelope.request)",
        ),
        _positive(
            "exchange-envelope",
            "org",
            envelope,
            s_env,
            "the requesting organization's envelope around request-body (ExchangeRequest.envelope)",
        ),
        _positive(
            "session-possession",
            "agent",
            possession,
            s_poss,
            "an agent's proof of key possession to its own node (AgentOpenSessionRequest.possession)",
        ),
    ]

    a, o, other = keys["agent"], keys["org"], keys["other-agent"]
    body_bytes = s_body.payload
    v2_type = REQUEST_BODY.replace(".v1.", ".v2.")
    flipped = bytearray(s_body.signature)
    flipped[0] ^= 0x01
    unknown_field = body_bytes + b"\xf8\x06\x01"  # field 111, varint 1
    bad_utf8 = b"\x0a\x02\xff\xfe"  # RequestBody.contract_id = invalid UTF-8
    # append field 111 inside the nested SignedPayload (field 2 of ExchangeEnvelope)
    inner = s_body.SerializeToString() + b"\xf8\x06\x01"
    nested_bytes = (
        pb.ExchangeEnvelope(session_id="ses_0123456789abcdef").SerializeToString()
        + b"\x12"
        + _varint(len(inner))
        + inner
        + pb.ExchangeEnvelope(requester_org=REQUESTER).SerializeToString()
    )
    too_large = MAX_PAYLOAD_BYTES["RequestBody"] + 1
    long_type = v2_type + "X" * (200 - len(v2_type))  # R-SIG-3: over MAX_PAYLOAD_TYPE_BYTES

    R, E, P = "request", "envelope", "possession"  # noqa: N806
    INV, UNAUTH, PRE = "INVALID_ARGUMENT", "UNAUTHENTICATED", "FAILED_PRECONDITION"  # noqa: N806
    negative = [
        _negative(
            "too-large",
            "a RequestBody payload one byte over 64 KiB (bound before anything else)",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=pb.SignedPayload(
                payload_type=REQUEST_BODY, payload=b"\x00" * too_large, signature=bytes(64)
            ),
            status=INV,
            reason="PAYLOAD_TOO_LARGE",
            fill=("00", too_large),
        ),
        _negative(
            "other-version",
            "a correctly signed RequestBody under accord.federation.v2: a version this node does not speak",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(a, v2_type, body_bytes),
            status=PRE,
            reason="UNSUPPORTED_VERSION",
        ),
        _negative(
            "other-version-bad-signature",
            "the version is checked before the signature",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=pb.SignedPayload(payload_type=v2_type, payload=body_bytes, signature=bytes(64)),
            status=PRE,
            reason="UNSUPPORTED_VERSION",
        ),
        _negative(
            "malformed-type",
            "a payload type without the accord.federation.vN.Name form",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(a, "application/vnd.accord+protobuf", body_bytes),
            status=INV,
            reason="WRONG_PAYLOAD_TYPE",
        ),
        _negative(
            "type-too-long",
            "a correctly signed RequestBody whose payload type starts like a v2 type but is 200 bytes "
            "long: over 128 bytes it is not of the form (WRONG_PAYLOAD_TYPE), whatever its prefix says "
            "(not UNSUPPORTED_VERSION)",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(a, long_type, body_bytes),
            status=INV,
            reason="WRONG_PAYLOAD_TYPE",
        ),
        _negative(
            "request-as-envelope",
            "the agent's signed RequestBody presented where an ExchangeEnvelope is expected",
            field=E,
            expected_type=EXCHANGE_ENVELOPE,
            trusted_key="org",
            signed=s_body,
            status=INV,
            reason="WRONG_PAYLOAD_TYPE",
        ),
        _negative(
            "possession-relabeled-as-request",
            "a SessionPossession signature (agent key) relabeled as a RequestBody: PAE binds the type, "
            "so the signature fails",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=pb.SignedPayload(
                payload_type=REQUEST_BODY, payload=s_poss.payload, signature=s_poss.signature
            ),
            status=UNAUTH,
            reason="BAD_AGENT_SIGNATURE",
        ),
        _negative(
            "request-relabeled-as-envelope",
            "a RequestBody signed by the organization key, relabeled as an ExchangeEnvelope",
            field=E,
            expected_type=EXCHANGE_ENVELOPE,
            trusted_key="org",
            signed=(
                lambda s: pb.SignedPayload(
                    payload_type=EXCHANGE_ENVELOPE, payload=s.payload, signature=s.signature
                )
            )(sign_bytes(o, REQUEST_BODY, body_bytes)),
            status=UNAUTH,
            reason="BAD_ORG_SIGNATURE",
        ),
        _negative(
            "flipped-signature-bit",
            "request-body with the lowest bit of the signature's first byte flipped",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=pb.SignedPayload(payload_type=REQUEST_BODY, payload=body_bytes, signature=bytes(flipped)),
            status=UNAUTH,
            reason="BAD_AGENT_SIGNATURE",
        ),
        _negative(
            "short-signature",
            "a 63-byte signature",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=pb.SignedPayload(
                payload_type=REQUEST_BODY, payload=body_bytes, signature=s_body.signature[:63]
            ),
            status=UNAUTH,
            reason="BAD_AGENT_SIGNATURE",
        ),
        _negative(
            "other-agent-key",
            "request-body signed by another agent's key than the session's",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(other, REQUEST_BODY, body_bytes),
            status=UNAUTH,
            reason="BAD_AGENT_SIGNATURE",
        ),
        _negative(
            "envelope-by-agent-key",
            "exchange-envelope bytes signed by the agent key instead of the organization key",
            field=E,
            expected_type=EXCHANGE_ENVELOPE,
            trusted_key="org",
            signed=sign_bytes(a, EXCHANGE_ENVELOPE, s_env.payload),
            status=UNAUTH,
            reason="BAD_ORG_SIGNATURE",
        ),
        _negative(
            "unparseable-payload",
            "correctly signed bytes that are not a protobuf message (truncated varint)",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(a, REQUEST_BODY, b"\xff\xff\xff"),
            status=INV,
            reason="MALFORMED_PAYLOAD",
        ),
        _negative(
            "unparseable-bad-signature",
            "the signature is checked before the payload is parsed",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=pb.SignedPayload(payload_type=REQUEST_BODY, payload=b"\xff\xff\xff", signature=bytes(64)),
            status=UNAUTH,
            reason="BAD_AGENT_SIGNATURE",
        ),
        _negative(
            "invalid-utf8-string",
            "correctly signed RequestBody whose contract_id is not UTF-8",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(a, REQUEST_BODY, bad_utf8),
            status=INV,
            reason="MALFORMED_PAYLOAD",
        ),
        _negative(
            "unknown-field",
            "correctly signed request-body plus field 111 (varint 1), unknown in v1",
            field=R,
            expected_type=REQUEST_BODY,
            trusted_key="agent",
            signed=sign_bytes(a, REQUEST_BODY, unknown_field),
            status=INV,
            reason="UNKNOWN_FIELD",
        ),
        _negative(
            "nested-unknown-field",
            "correctly signed ExchangeEnvelope whose nested SignedPayload carries field 111",
            field=E,
            expected_type=EXCHANGE_ENVELOPE,
            trusted_key="org",
            signed=sign_bytes(o, EXCHANGE_ENVELOPE, nested_bytes),
            status=INV,
            reason="UNKNOWN_FIELD",
        ),
        _negative(
            "possession-too-large",
            "a SessionPossession payload over 2 KiB",
            field=P,
            expected_type=SESSION_POSSESSION,
            trusted_key="agent",
            signed=sign_bytes(a, SESSION_POSSESSION, b"\x12\x80\x10" + b"a" * 2048),
            status=INV,
            reason="PAYLOAD_TOO_LARGE",
        ),
    ]
    keys_json = [_key_json(keys, n) for n in ("agent", "org", "other-agent")]
    header = {
        "spec": "docs/spec/accord-v1.md section 4",
        "generator": "python -m federation.spec_vectors --write",
    }
    return {
        "pae.json": {**header, "vectors": pae_vectors},
        "signed-payloads.json": {**header, "keys": keys_json, "vectors": positive},
        "negative.json": {**header, "keys": keys_json, "vectors": negative},
    }


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def render(obj: dict[str, Any]) -> str:
    """The published text of one vector file (2-space indented JSON, newline at the end)."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check docs/spec/vectors/; returns the exit status (1 = the committed files differ)."""
    parser = argparse.ArgumentParser(prog="python -m federation.spec_vectors", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the vector files")
    mode.add_argument("--check", action="store_true", help="fail if the committed files differ")
    parser.add_argument("--dir", type=Path, default=VECTOR_DIR, help="vector directory")
    args = parser.parse_args(argv)
    stale = []
    for name, obj in build().items():
        path = args.dir / name
        text = render(obj)
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    if stale:
        print(f"vectors differ from the generator: {', '.join(stale)} (run --write)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
