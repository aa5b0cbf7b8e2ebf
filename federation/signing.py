"""Signed payloads: signatures over bytes as sent (Accord wire v1, docs/spec/accord-v1.md §4).

Every signed protocol object travels as a :class:`SignedPayload
<federation.pb.federation_pb2.SignedPayload>`: the exact bytes that were
signed (``payload``), their type (``payload_type``) and an Ed25519
signature (RFC 8032, pure) over the DSSE v1 Pre-Authentication Encoding
(secure-systems-lab/dsse ``protocol.md``)::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

The payload type names the protocol version and the message
(``accord.federation.v1.RequestBody``), so a signature made for one message
type or version never verifies as another. A receiver verifies the bytes it
received, then parses them; nothing on a signature path is re-serialized.

:func:`open_payload` is the one receiver: bound → type/version → signature
→ parse → unknown fields, each failure a typed error with the reason and
gRPC status of the spec's error table (requirements R-SIG-1 … R-SIG-9).
"""

from __future__ import annotations

import re
from typing import Literal, TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from credentials import CredentialError, Ed25519KeyPair, verify_ed25519
from federation.errors import AuthenticationError, InvalidRequestError
from federation.pb import federation_pb2 as pb

M = TypeVar("M", bound=Message)

#: The protocol family; a payload type is ``f"{FAMILY}.v{N}.{Name}"``.
FAMILY = "accord.federation"
#: The protocol version this implementation speaks (in every payload type).
VERSION = "v1"
#: Versions this node accepts in payload types.
SUPPORTED_VERSIONS: tuple[str, ...] = (VERSION,)

REQUEST_BODY = f"{FAMILY}.{VERSION}.RequestBody"
EXCHANGE_ENVELOPE = f"{FAMILY}.{VERSION}.ExchangeEnvelope"
SESSION_POSSESSION = f"{FAMILY}.{VERSION}.SessionPossession"

#: Largest payload accepted per payload message (bytes, before any other work).
MAX_PAYLOAD_BYTES: dict[str, int] = {
    "RequestBody": 64 * 1024,
    "ExchangeEnvelope": 80 * 1024,
    "SessionPossession": 2 * 1024,
}
#: Longest payload_type accepted (bytes).
MAX_PAYLOAD_TYPE_BYTES = 128

_TYPE_RE = re.compile(r"accord\.federation\.(v[1-9][0-9]{0,5})\.([A-Z][A-Za-z0-9]{0,63})")

Signer = Literal["org", "agent"]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding of ``(payload_type, payload)``.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with SP = 0x20 and
    LEN the ASCII decimal byte length without leading zeros; ``type`` is
    UTF-8 encoded (secure-systems-lab/dsse protocol.md, "Signature
    definition").

    Args:
        payload_type: the payload type, e.g. ``"accord.federation.v1.RequestBody"``.
        payload: the payload bytes, exactly as sent.

    Returns:
        The bytes that are signed.

    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def payload_type_of(message: Message | type[Message]) -> str:
    """The v1 payload type of a message (class or instance), e.g. ``accord.federation.v1.RequestBody``."""
    return f"{FAMILY}.{VERSION}.{message.DESCRIPTOR.name}"


def sign_bytes(key: Ed25519KeyPair, payload_type: str, payload: bytes) -> pb.SignedPayload:
    """A :class:`SignedPayload` over ``payload`` as given (Ed25519 over :func:`pae`)."""
    return pb.SignedPayload(
        payload_type=payload_type, payload=payload, signature=key.sign(pae(payload_type, payload))
    )


def sign_payload(key: Ed25519KeyPair, message: Message) -> pb.SignedPayload:
    """Serialize ``message`` once and sign those bytes under its v1 payload type.

    Any valid protobuf encoding may be signed: the receiver verifies the
    bytes it receives and never re-serializes them.

    Args:
        key: the signer's Ed25519 key (agent did:key or organization key).
        message: a ``RequestBody``, ``ExchangeEnvelope`` or ``SessionPossession``.

    Returns:
        The signed payload to put on the wire.

    """
    return sign_bytes(key, payload_type_of(message), message.SerializeToString())


def _reject_unknown_fields(message: Message, path: str) -> None:
    """Raise ``UNKNOWN_FIELD`` if ``message`` or a nested message carries a field it does not define."""
    unknown = UnknownFieldSet(message)
    if len(unknown):
        raise InvalidRequestError(
            f"{path} carries field number {unknown[0].field_number}, unknown in this version",
            reason="UNKNOWN_FIELD",
            metadata={"field": path, "field_number": str(unknown[0].field_number)},
        )
    for fd, value in message.ListFields():
        if fd.message_type is None:
            continue
        if fd.is_repeated:
            for i, item in enumerate(value):
                _reject_unknown_fields(item, f"{path}.{fd.name}[{i}]")
        else:
            _reject_unknown_fields(value, f"{path}.{fd.name}")


def check_payload_type(signed: pb.SignedPayload, expected: type[Message], *, field: str) -> None:
    """Step 2 of :func:`open_payload`: the payload type's form, version and message name.

    Raises:
        InvalidRequestError: ``WRONG_PAYLOAD_TYPE`` (INVALID_ARGUMENT) when the
            type is malformed or names another message;
            ``UNSUPPORTED_VERSION`` (FAILED_PRECONDITION) when it names a
            version this node does not speak.

    """
    t = signed.payload_type
    m = _TYPE_RE.fullmatch(t) if len(t.encode("utf-8")) <= MAX_PAYLOAD_TYPE_BYTES else None
    shown = t[:MAX_PAYLOAD_TYPE_BYTES]
    if m is None:
        raise InvalidRequestError(
            f"{field}.payload_type {shown!r} is not accord.federation.vN.Name",
            reason="WRONG_PAYLOAD_TYPE",
            metadata={"field": field, "payload_type": shown},
        )
    version, name = m.groups()
    if version not in SUPPORTED_VERSIONS:
        raise InvalidRequestError(
            f"{field}.payload_type {shown!r}: protocol version {version} is not spoken here "
            f"(supported: {', '.join(SUPPORTED_VERSIONS)})",
            reason="UNSUPPORTED_VERSION",
            status="FAILED_PRECONDITION",
            metadata={"field": field, "payload_type": shown, "supported": ",".join(SUPPORTED_VERSIONS)},
        )
    if name != expected.DESCRIPTOR.name:
        raise InvalidRequestError(
            f"{field}.payload_type {shown!r}: expected {payload_type_of(expected)}",
            reason="WRONG_PAYLOAD_TYPE",
            metadata={"field": field, "payload_type": shown, "expected": payload_type_of(expected)},
        )


def open_payload(
    signed: pb.SignedPayload,
    expected: type[M],
    public_key: bytes,
    *,
    signer: Signer,
    field: str,
) -> M:
    """Verify a signed payload and parse it, in the receiver order of the spec (§4.4).

    1. bound: ``len(payload)`` ≤ :data:`MAX_PAYLOAD_BYTES` of ``expected``;
    2. type: ``payload_type`` is ``accord.federation.v1.<expected name>``;
    3. signature: Ed25519 by ``public_key`` over ``PAE(payload_type, payload)``;
    4. parse: ``payload`` parses as ``expected``, with no field unknown to it
       (also in nested messages).

    Args:
        signed: the ``SignedPayload`` as received.
        expected: the message class this field carries (e.g. ``pb.RequestBody``).
        public_key: the 32-byte Ed25519 key the receiver already trusts for
            this signer (pinned peer bundle, or the session agent's did:key).
        signer: ``"org"`` or ``"agent"`` (selects the signature failure reason).
        field: the request member, for error metadata (e.g. ``"envelope"``).

    Returns:
        The parsed message; its bytes are ``signed.payload``, unchanged.

    Raises:
        InvalidRequestError: ``PAYLOAD_TOO_LARGE``, ``WRONG_PAYLOAD_TYPE``,
            ``MALFORMED_PAYLOAD``, ``UNKNOWN_FIELD`` (INVALID_ARGUMENT) or
            ``UNSUPPORTED_VERSION`` (FAILED_PRECONDITION).
        AuthenticationError: ``BAD_ORG_SIGNATURE`` / ``BAD_AGENT_SIGNATURE``
            (UNAUTHENTICATED).

    """
    limit = MAX_PAYLOAD_BYTES[expected.DESCRIPTOR.name]
    if len(signed.payload) > limit:
        raise InvalidRequestError(
            f"{field}.payload is {len(signed.payload)} bytes, over {limit}",
            reason="PAYLOAD_TOO_LARGE",
            metadata={"field": field, "limit": str(limit)},
        )
    check_payload_type(signed, expected, field=field)
    try:
        verify_ed25519(public_key, signed.signature, pae(signed.payload_type, signed.payload))
    except CredentialError as exc:
        raise AuthenticationError(
            f"{'organization' if signer == 'org' else 'agent'} signature over {field} does not verify",
            reason="BAD_ORG_SIGNATURE" if signer == "org" else "BAD_AGENT_SIGNATURE",
            metadata={"field": field},
        ) from exc
    message = expected()
    try:
        message.ParseFromString(signed.payload)
    except DecodeError as exc:
        raise InvalidRequestError(
            f"{field}.payload does not parse as {expected.DESCRIPTOR.full_name}",
            reason="MALFORMED_PAYLOAD",
            metadata={"field": field},
        ) from exc
    _reject_unknown_fields(message, field)
    return message
