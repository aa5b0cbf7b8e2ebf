"""Calls from this node to peer nodes (FederationService), over mutual TLS.

One ``grpc.aio`` channel per peer, trusting only that peer's pinned CA and
presenting this node's certificate. Failures become
:class:`federation.errors.FederationError` through :func:`federation.wire.from_rpc_error`.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from federation.domain import ReceivedOutcome, Signed
from federation.negotiation import check_peer_info
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from federation.wire import from_rpc_error, received_outcome_from_pb, signed_to_pb

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 4 << 20),
    ("grpc.keepalive_time_ms", 30_000),
    # a peer that was down comes back quickly: short reconnect backoff
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def client_credentials(*, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> grpc.ChannelCredentials:
    """Channel credentials trusting ``ca_pem`` and presenting ``cert_pem``."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )


class PeerClient:
    """FederationService client for every pinned peer of one node."""

    def __init__(
        self,
        *,
        cert_pem: bytes,
        key_pem: bytes,
        timeout_seconds: float = 10.0,
        extra_endpoints: dict[str, list[str]] | None = None,
    ) -> None:
        """A client presenting ``cert_pem``/``key_pem``; ``timeout_seconds`` per call.

        ``extra_endpoints``: organization name -> the ``HOST:PORT`` to dial for that peer
        instead of its bundle's endpoint (``peer_endpoints`` in ``node.toml``: a peer run
        as several replicas), one channel each, in turn (round robin per call).
        """
        self._cert = cert_pem
        self._key = key_pem
        self._timeout = timeout_seconds
        self._extra = {k: list(v) for k, v in (extra_endpoints or {}).items()}
        self._turn: dict[tuple[str, str, str], int] = {}
        self._channels: dict[tuple[str, str, str], tuple[grpc.aio.Channel, pbg.FederationServiceStub]] = {}
        #: channel keys whose peer passed :meth:`negotiate` (bounded by the pinned peers)
        self._negotiated: set[tuple[str, str, str]] = set()
        #: channels of a replaced certificate, closing with a grace period
        self._closing: set[Any] = set()

    @staticmethod
    def _channel_key(bundle: Any) -> tuple[str, str, str]:
        return (bundle.org_did, bundle.endpoint, bundle.ca_certificate_pem)

    def endpoints(self, bundle: Any) -> list[str]:
        """The addresses of a peer: its configured ``peer_endpoints``, else its bundle's endpoint."""
        return list(self._extra.get(bundle.org_name) or [bundle.endpoint])

    def stub(self, bundle: Any) -> pbg.FederationServiceStub:
        """The stub for a peer's next address in turn (each address's channel created on first use)."""
        addresses = self.endpoints(bundle)
        peer_key = self._channel_key(bundle)
        turn = self._turn.get(peer_key, 0)
        address = addresses[turn % len(addresses)]
        for step in range(len(addresses)):  # skip replicas whose channel is failing (down), if any is not
            candidate = addresses[(turn + step) % len(addresses)]
            known = self._channels.get((bundle.org_did, candidate, bundle.ca_certificate_pem))
            if known is None or known[0].get_state() != grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                address, turn = candidate, turn + step
                break
        self._turn[peer_key] = (turn + 1) % len(addresses)
        key = (bundle.org_did, address, bundle.ca_certificate_pem)
        hit = self._channels.get(key)
        if hit is None:
            creds = client_credentials(
                ca_pem=bundle.ca_certificate_pem.encode(), cert_pem=self._cert, key_pem=self._key
            )
            options = list(CHANNEL_OPTIONS)
            if address != bundle.endpoint:  # the certificate names the bundle's host
                options.append(("grpc.ssl_target_name_override", bundle.endpoint.rpartition(":")[0]))
            channel = grpc.aio.secure_channel(address, creds, options=options)
            hit = (channel, pbg.FederationServiceStub(channel))
            self._channels[key] = hit
        return hit[1]

    async def _call(self, method, request, *, timeout: float | None = None):
        # wait_for_ready: a channel in reconnect backoff waits (up to the
        # deadline) instead of failing at once with UNAVAILABLE
        try:
            return await method(request, timeout=timeout or self._timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def node_info(self, bundle: Any) -> pb.NodeInfo:
        """The peer's ``NodeInfo`` (not cached)."""
        return await self._call(self.stub(bundle).GetNodeInfo, pb.GetNodeInfoRequest())

    async def negotiate(self, bundle: Any) -> None:
        """Check once per channel that the peer speaks a version, suite, algorithm and ledger format of ours.

        Read from the peer's ``NodeInfo`` before its first session
        (docs/spec/accord-v1.md §5, R-NEG-3); a successful check is
        remembered for the channel's lifetime, a refusal is not (the peer
        may be upgraded).

        Raises:
            federation.errors.FederationError: FAILED_PRECONDITION with
                ``UNSUPPORTED_VERSION`` / ``UNSUPPORTED_CRYPTOSUITE`` /
                ``UNSUPPORTED_ALGORITHM`` / ``UNSUPPORTED_LEDGER_FORMAT``, or
                the peer's error.

        """
        key = self._channel_key(bundle)
        if key in self._negotiated:
            return
        check_peer_info(await self.node_info(bundle))
        self._negotiated.add(key)

    async def get_challenge(self, bundle: Any, agent_did: str) -> tuple[str, str, int]:
        """(challenge, domain, expires_at) from the peer, after :meth:`negotiate`."""
        await self.negotiate(bundle)
        r = await self._call(self.stub(bundle).GetChallenge, pb.GetChallengeRequest(agent_did=agent_did))
        return r.challenge, r.domain, r.expires_at

    async def open_session(self, bundle: Any, presentation_json: bytes) -> dict[str, Any]:
        """Forward a VP; returns ``{"session_id", "expires_at", "effective_trust"}``."""
        r = await self._call(
            self.stub(bundle).OpenSession, pb.OpenSessionRequest(presentation_json=presentation_json)
        )
        return {"session_id": r.session_id, "expires_at": r.expires_at, "effective_trust": r.effective_trust}

    async def exchange(self, bundle: Any, envelope: Signed) -> ReceivedOutcome:
        """Send the org-signed ``ExchangeEnvelope``; the peer's ``Outcome`` as a domain value (unchecked).

        Raises:
            federation.errors.FederationError: the peer cannot be spoken with
                (see :meth:`negotiate`) or refused (its reason).

        """
        await self.negotiate(bundle)
        r = await self._call(self.stub(bundle).Exchange, pb.ExchangeRequest(envelope=signed_to_pb(envelope)))
        return received_outcome_from_pb(r.outcome)

    async def get_status_list(self, bundle: Any, purpose: str) -> dict[str, Any]:
        """The peer's signed status list credential (JSON object)."""
        r = await self._call(self.stub(bundle).GetStatusList, pb.GetStatusListRequest(purpose=purpose))
        return json.loads(r.credential_json)

    async def add_checkpoint(self, bundle: Any, body: bytes) -> tuple[int, bytes]:
        """C2SP add-checkpoint at the peer's witness; returns (status, body)."""
        r = await self._call(self.stub(bundle).AddCheckpoint, pb.AddCheckpointRequest(body=body), timeout=3.0)
        return r.status, r.body

    async def witnessed_checkpoint(self, bundle: Any) -> str:
        """The peer's latest witnessed checkpoint note, with cosignatures (``""`` if none).

        Taken from ``QueryEntries`` (limit 1), whose checkpoint is the latest
        witnessed one (the latest one when none is witnessed yet).
        """
        r = await self._call(self.stub(bundle).QueryEntries, pb.QueryEntriesRequest(limit=1))
        return r.signed_checkpoint

    async def consistency_proof(self, bundle: Any, size1: int, size2: int) -> list[bytes]:
        """The peer's RFC 9162 consistency proof between two sizes of its log."""
        r = await self._call(
            self.stub(bundle).GetConsistencyProof, pb.GetConsistencyProofRequest(size1=size1, size2=size2)
        )
        return list(r.hashes)

    async def announce_key_rotation(self, bundle: Any, steps: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        """``AnnounceKeyRotation`` (feature ``accord.key-rotation.v1``): (statement, bundle) JSON steps.

        Returns:
            (fingerprint the peer now pins, its outcome: ``"rotation"`` / ``"unchanged"``).

        Raises:
            federation.errors.FederationError: the peer refused (``BAD_ROTATION``, …) or is unreachable.

        """
        request = pb.AnnounceKeyRotationRequest(
            steps=[pb.KeyRotationStep(statement_json=s, bundle_json=b) for s, b in steps]
        )
        r = await self._call(self.stub(bundle).AnnounceKeyRotation, request)
        return r.fingerprint, r.outcome

    def update_certificate(self, *, cert_pem: bytes, key_pem: bytes) -> None:
        """Present a renewed certificate on new channels (``accord node renew-tls``).

        Channels opened with the old certificate are closed with a grace
        period (calls in flight finish on them), so no exchange fails.
        """
        import asyncio

        self._cert, self._key = cert_pem, key_pem
        old, self._channels = list(self._channels.values()), {}
        self._negotiated.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for channel, _ in old:
            if loop is not None:
                task = loop.create_task(channel.close(grace=30.0))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every channel."""
        for channel, _ in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._negotiated.clear()
