"""The Python agent SDK: an agent talks to its own node (AgentService).

An agent's wallet (``agents/<name>.json`` in its node directory, written by
``accord agent register``) holds its Ed25519 key, its ``did:key``, its signed
AgentCredential and a TLS client certificate from its organization's CA.

    async with AgentClient.from_wallet(path) as agent:
        session = await agent.open_session("hospital")
        result = await agent.request(session, contract_id=..., purpose=..., resource=...,
                                     subject=..., fields=[...])

The session handshake presents the credential once (a VP bound to the
provider's DID and challenge); each request is then a ``SignedPayload``: the
serialized ``RequestBody`` and the agent's Ed25519 signature over its DSSE
PAE (docs/spec/accord-v1.md §4), forwarded untouched by the own node.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from credentials import Ed25519KeyPair, create_presentation, verification_method_id
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from federation.signing import sign_payload
from federation.wire import from_rpc_error


@dataclass(frozen=True)
class AgentWallet:
    """What an agent holds.

    Attributes:
        name: agent name within its organization.
        did: the agent's ``did:key``.
        key: its Ed25519 key pair.
        credential: the signed AgentCredential (JSON object).
        tls_cert_pem / tls_key_pem: client certificate (SAN URI = did) and key.
        ca_pem: the organization CA (to authenticate the own node).
        node_endpoint: ``HOST:PORT`` of the own node.

    """

    name: str
    did: str
    key: Ed25519KeyPair
    credential: dict[str, Any]
    tls_cert_pem: bytes
    tls_key_pem: bytes
    ca_pem: bytes
    node_endpoint: str

    def to_json(self) -> str:
        """Serialize (contains the private key: store with mode 0600)."""
        return json.dumps(
            {
                "name": self.name,
                "did": self.did,
                "secretKeyMultibase": self.key.secret_key_multibase,
                "credential": self.credential,
                "tls_cert_pem": self.tls_cert_pem.decode(),
                "tls_key_pem": self.tls_key_pem.decode(),
                "ca_pem": self.ca_pem.decode(),
                "node_endpoint": self.node_endpoint,
            },
            indent=2,
        )

    @classmethod
    def load(cls, path: Path) -> AgentWallet:
        """Read a wallet file."""
        d = json.loads(Path(path).read_text())
        return cls(
            name=d["name"],
            did=d["did"],
            key=Ed25519KeyPair.from_multibase(d["secretKeyMultibase"]),
            credential=d["credential"],
            tls_cert_pem=d["tls_cert_pem"].encode(),
            tls_key_pem=d["tls_key_pem"].encode(),
            ca_pem=d["ca_pem"].encode(),
            node_endpoint=d["node_endpoint"],
        )


@dataclass(frozen=True)
class AgentSession:
    """An open session with one peer organization.

    Attributes:
        session_id: id to quote in requests.
        peer_org: the provider organization DID.
        expires_at: unix time, seconds.
        effective_trust: τ the provider computed at open time.

    """

    session_id: str
    peer_org: str
    expires_at: int
    effective_trust: float


@dataclass(frozen=True)
class Result:
    """The answer to one request.

    Attributes:
        decision: ``"allow"``.
        records: the released records (list of JSON objects).
        released_fields / stripped_fields: the gate's output.
        reasons / obligations: from the decision.
        disclosure_id: the ledger id at the provider.
        receipt_verified: the provider's receipt verified at the own node.
        received_leaf_index: the own node's "received" entry index.
        effective_trust: τ used for the decision.
        outcome: the raw protobuf ``Outcome``.
        content_labels: ``ContentLabel`` messages for free text the own node's
            screening flagged (treat those values as untrusted data, never as instructions).

    """

    decision: str
    records: list[dict[str, Any]]
    released_fields: tuple[str, ...]
    stripped_fields: tuple[str, ...]
    reasons: tuple[str, ...]
    obligations: tuple[str, ...]
    disclosure_id: str
    receipt_verified: bool
    received_leaf_index: int
    effective_trust: float
    outcome: Any
    content_labels: tuple[Any, ...] = ()


class AgentClient:
    """Async client of the own node's AgentService (see the module docstring)."""

    def __init__(
        self, wallet: AgentWallet, *, endpoint: str | None = None, timeout_seconds: float = 15.0
    ) -> None:
        self.wallet = wallet
        creds = grpc.ssl_channel_credentials(
            root_certificates=wallet.ca_pem,
            private_key=wallet.tls_key_pem,
            certificate_chain=wallet.tls_cert_pem,
        )
        self._channel = grpc.aio.secure_channel(endpoint or wallet.node_endpoint, creds)
        self._stub = pbg.AgentServiceStub(self._channel)
        self._timeout = timeout_seconds

    @classmethod
    def from_wallet(cls, path: Path | str, *, endpoint: str | None = None) -> AgentClient:
        """Client for the wallet file at ``path``."""
        return cls(AgentWallet.load(Path(path)), endpoint=endpoint)

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def open_session(
        self, peer: str, present: Callable[[str, str], dict[str, Any]] | None = None
    ) -> AgentSession:
        """Open a session with ``peer`` (org DID or name): one VP, verified once.

        ``present(challenge, domain)`` builds the VP; by default it presents the
        agent's own AgentCredential.

        Raises:
            federation.errors.FederationError: refused (reason from the node or peer).

        """
        w = self.wallet

        def own_credential(challenge: str, domain: str) -> dict[str, Any]:
            return create_presentation(
                [w.credential],
                holder=w.did,
                key=w.key,
                verification_method=verification_method_id(w.did),
                challenge=challenge,
                domain=domain,
            )

        return await self.open_session_with(peer, present or own_credential)

    async def open_session_with(
        self, peer: str, present: Callable[[str, str], dict[str, Any]]
    ) -> AgentSession:
        """Open a session whose VP is built by ``present(challenge, domain)``.

        Used for delegated sessions (the VP then carries a delegation chain).

        Raises:
            federation.errors.FederationError: refused (reason from the node or peer).
        """
        w = self.wallet
        begin = await self._call(self._stub.BeginSession, pb.BeginSessionRequest(agent_did=w.did, peer=peer))
        vp = present(begin.peer_challenge, begin.peer_domain)
        resp = await self._call(
            self._stub.OpenSession,
            pb.AgentOpenSessionRequest(
                agent_did=w.did,
                peer_org=begin.peer_org,
                possession=sign_payload(
                    w.key,
                    pb.SessionPossession(
                        agent_did=w.did, challenge=begin.local_challenge, peer_org=begin.peer_org
                    ),
                ),
                presentation_json=json.dumps(vp).encode(),
            ),
        )
        return AgentSession(
            session_id=resp.session_id,
            peer_org=begin.peer_org,
            expires_at=resp.expires_at,
            effective_trust=resp.effective_trust,
        )

    def sign_request(
        self,
        session: AgentSession,
        *,
        contract_id: str,
        purpose: str,
        resource: str,
        subject: str,
        fields: list[str],
        aggregate: dict | None = None,
    ) -> pb.SignedPayload:
        """Build a ``RequestBody`` and sign its bytes (``accord.federation.v1.RequestBody`` payload)."""
        body = pb.RequestBody(
            contract_id=contract_id,
            purpose=purpose,
            resource=resource,
            subject=subject,
            fields=fields,
            provider_org=session.peer_org,
            agent_did=self.wallet.did,
            nonce=base64.urlsafe_b64encode(secrets.token_bytes(18)).decode(),
            timestamp_ms=int(time.time() * 1000),
            aggregate_json=json.dumps(aggregate) if aggregate is not None else "",
        )
        return sign_payload(self.wallet.key, body)

    async def request(
        self,
        session: AgentSession,
        *,
        contract_id: str,
        purpose: str,
        resource: str,
        subject: str,
        fields: list[str],
        aggregate: dict | None = None,
    ) -> Result:
        """Send one request in ``session``.

        Raises:
            federation.errors.DeniedError: the provider's policy denied (logged on both sides).
            federation.errors.FederationError: any other refusal, with its reason.

        """
        signed = self.sign_request(
            session,
            contract_id=contract_id,
            purpose=purpose,
            resource=resource,
            subject=subject,
            fields=fields,
            aggregate=aggregate,
        )
        r = await self._call(
            self._stub.SendRequest, pb.SendRequestRequest(session_id=session.session_id, request=signed)
        )
        o = r.outcome
        records = json.loads(o.payload_json) if o.payload_json else []
        return Result(
            decision=o.decision,
            records=records,
            released_fields=tuple(o.released_fields),
            stripped_fields=tuple(o.stripped_fields),
            reasons=tuple(o.reasons),
            obligations=tuple(o.obligations),
            disclosure_id=o.disclosure_id,
            receipt_verified=r.receipt_verified,
            received_leaf_index=r.received_leaf_index,
            effective_trust=o.effective_trust,
            outcome=o,
            content_labels=tuple(r.content_labels),
        )
