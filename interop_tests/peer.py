"""A minimal Accord peer built from the generated stubs only.

It plays organization A in DESIGN.md's exchange against a node under test
(organization B): it dials B over mutual TLS with its own certificate,
asks for a challenge, presents its agent's credential in a VP bound to B's
DID, then sends agent-signed, organization-signed requests. It does not use
``federation``'s node code (not even :mod:`federation.signing`: the DSSE PAE
below is written from docs/spec/accord-v1.md §4), so it checks the protocol,
not the implementation against itself.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from credentials import Ed25519KeyPair, create_presentation, verification_method_id
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg

#: payload types of wire v1 (docs/spec/accord-v1.md §4.2)
REQUEST_BODY = "accord.federation.v1.RequestBody"
EXCHANGE_ENVELOPE = "accord.federation.v1.ExchangeEnvelope"
SESSION_POSSESSION = "accord.federation.v1.SessionPossession"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE: ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (spec §4.1)."""
    t = payload_type.encode()
    return b"".join(
        [b"DSSEv1 ", str(len(t)).encode(), b" ", t, b" ", str(len(payload)).encode(), b" ", payload]
    )


def sign_as(key: Ed25519KeyPair, payload_type: str, payload: bytes) -> pb.SignedPayload:
    """A ``SignedPayload`` of ``payload`` (bytes as given) under ``payload_type``, signed by ``key``."""
    return pb.SignedPayload(
        payload_type=payload_type, payload=payload, signature=key.sign(pae(payload_type, payload))
    )


@dataclass(frozen=True)
class InteropIdentity:
    """The tester organization (a node directory pinned at the target).

    Attributes:
        org_did: tester org DID.
        org_key: tester org Ed25519 key.
        cert_pem / key_pem: tester TLS client certificate and key.
        ca_pem / ca_key_pem: tester CA (to mint extra certificates for negative cases).
        agent: the agent wallet JSON (``agents/tester.json``).

    """

    org_did: str
    org_key: Ed25519KeyPair
    directory: Path
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    ca_key_pem: bytes
    agent: dict[str, Any]

    @classmethod
    def load(cls, directory: Path, *, agent: str = "tester") -> InteropIdentity:
        """Read the tester's node directory."""
        import tomllib

        cfg = tomllib.loads((directory / "node.toml").read_text())
        tls = directory / "tls"
        return cls(
            org_did=cfg["org_did"],
            org_key=Ed25519KeyPair.from_jwk(json.loads((directory / "keys" / "org.jwk").read_text())),
            directory=directory,
            cert_pem=(tls / "node.pem").read_bytes(),
            key_pem=(tls / "node.key").read_bytes(),
            ca_pem=(tls / "ca.pem").read_bytes(),
            ca_key_pem=(tls / "ca.key").read_bytes(),
            agent=json.loads((directory / "agents" / f"{agent}.json").read_text()),
        )

    def other(self, agent: str) -> InteropIdentity:
        """The same organization acting through another of its agents."""
        return InteropIdentity.load(self.directory, agent=agent)

    @property
    def agent_did(self) -> str:  # noqa: D102
        return self.agent["did"]

    @property
    def agent_key(self) -> Ed25519KeyPair:  # noqa: D102
        return Ed25519KeyPair.from_multibase(self.agent["secretKeyMultibase"])


class MinimalPeer:
    """FederationService client acting as a peer node."""

    def __init__(
        self, *, target: str, target_ca_pem: bytes, cert_pem: bytes, key_pem: bytes, timeout: float = 10.0
    ) -> None:
        creds = grpc.ssl_channel_credentials(
            root_certificates=target_ca_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        self.channel = grpc.aio.secure_channel(target, creds)
        self.stub = pbg.FederationServiceStub(self.channel)
        self.timeout = timeout

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()

    async def node_info(self) -> pb.NodeInfo:
        """GetNodeInfo."""
        return await self.stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=self.timeout)

    async def open_session(
        self,
        ident: InteropIdentity,
        *,
        credential: dict[str, Any] | None = None,
        domain: str | None = None,
        challenge: str | None = None,
    ) -> pb.OpenSessionResponse:
        """Challenge + VP; ``credential``/``domain``/``challenge`` override for negative cases."""
        ch = await self.stub.GetChallenge(
            pb.GetChallengeRequest(agent_did=ident.agent_did), timeout=self.timeout
        )
        vp = create_presentation(
            [credential or ident.agent["credential"]],
            holder=ident.agent_did,
            key=ident.agent_key,
            verification_method=verification_method_id(ident.agent_did),
            challenge=challenge or ch.challenge,
            domain=domain or ch.domain,
        )
        return await self.stub.OpenSession(
            pb.OpenSessionRequest(presentation_json=json.dumps(vp).encode()), timeout=self.timeout
        )

    @staticmethod
    def request_body(
        ident: InteropIdentity,
        *,
        provider_org: str,
        contract_id: str,
        purpose: str,
        resource: str,
        subject: str,
        fields: list[str],
        aggregate: dict[str, Any] | None = None,
    ) -> pb.RequestBody:
        """A fresh ``RequestBody`` of ``ident``'s agent (an aggregate query when ``aggregate`` is given)."""
        return pb.RequestBody(
            contract_id=contract_id,
            purpose=purpose,
            resource=resource,
            subject=subject,
            fields=fields,
            provider_org=provider_org,
            agent_did=ident.agent_did,
            nonce=base64.urlsafe_b64encode(secrets.token_bytes(18)).decode(),
            timestamp_ms=int(time.time() * 1000),
            aggregate_json=json.dumps(aggregate) if aggregate is not None else "",
        )

    @staticmethod
    def sign_body(ident: InteropIdentity, body: pb.RequestBody) -> pb.SignedPayload:
        """``body`` signed by ``ident``'s agent (payload type ``accord.federation.v1.RequestBody``)."""
        return sign_as(ident.agent_key, REQUEST_BODY, body.SerializeToString())

    @staticmethod
    def signed_request(ident: InteropIdentity, **body: Any) -> pb.SignedPayload:
        """An agent-signed request; keyword arguments as :meth:`request_body`."""
        return MinimalPeer.sign_body(ident, MinimalPeer.request_body(ident, **body))

    @staticmethod
    def envelope(ident: InteropIdentity, session_id: str, signed: pb.SignedPayload) -> pb.ExchangeEnvelope:
        """The ``ExchangeEnvelope`` ``ident``'s organization signs for one exchange."""
        return pb.ExchangeEnvelope(session_id=session_id, request=signed, requester_org=ident.org_did)

    async def exchange(
        self,
        ident: InteropIdentity,
        session_id: str,
        signed: pb.SignedPayload,
        *,
        org_signature: bytes | None = None,
        envelope: pb.SignedPayload | None = None,
    ) -> pb.ExchangeResponse:
        """Exchange: ``signed`` inside an org-signed ``ExchangeEnvelope``.

        ``org_signature`` replaces the envelope's signature and ``envelope``
        the whole signed envelope (negative cases).
        """
        if envelope is None:
            envelope = sign_as(
                ident.org_key, EXCHANGE_ENVELOPE, self.envelope(ident, session_id, signed).SerializeToString()
            )
        if org_signature is not None:
            envelope = pb.SignedPayload(
                payload_type=envelope.payload_type, payload=envelope.payload, signature=org_signature
            )
        return await self.stub.Exchange(pb.ExchangeRequest(envelope=envelope), timeout=self.timeout)
