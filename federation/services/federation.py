"""FederationService: node-to-node RPCs (caller = a pinned peer, by its client certificate)."""

from __future__ import annotations

import json

import grpc

from federation.errors import InvalidRequestError, PeerError
from federation.negotiation import fill_node_info
from federation.node import Node
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from federation.peers import AuthenticatedPeer
from federation.replicas import shared_call
from federation.services.base import rpc
from federation.wire import outcome_to_pb, peer_cert, signed_from_pb

SOFTWARE = "accord-federation 0.1.0"


class FederationServicer(pbg.FederationServiceServicer):
    """Serves peers; every call first maps the client certificate to a pinned peer."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _peer(self, context: grpc.aio.ServicerContext) -> AuthenticatedPeer:
        cert = peer_cert(context)
        if cert is None:
            raise PeerError("no client certificate", reason="NO_CLIENT_CERTIFICATE")
        return self.node.peers.authenticate(cert)

    @rpc
    async def GetNodeInfo(self, request, context):  # noqa: N802, D102
        self._peer(context)
        return self.node_info()

    def node_info(self) -> pb.NodeInfo:
        """This node's public description."""
        n = self.node
        return fill_node_info(
            pb.NodeInfo(
                org_did=n.did,
                org_name=n.config.org_name,
                endpoint=n.config.advertise or n.config.listen,
                ledger_vkey=n.ledger_signer.vkey,
                ledger_origin=n.ledger_signer.name,
                software=SOFTWARE,
            )
        )

    @rpc
    async def GetChallenge(self, request, context):  # noqa: N802, D102
        peer = self._peer(context)
        self.node.presession.admit(peer.org_did)
        challenge, domain, expires = await shared_call(
            self.node.shared_state, self.node.issue_challenge, peer, request.agent_did
        )
        return pb.GetChallengeResponse(challenge=challenge, domain=domain, expires_at=int(expires))

    @rpc
    async def OpenSession(self, request, context):  # noqa: N802, D102
        peer = self._peer(context)
        self.node.presession.admit(peer.org_did)
        async with self.node.presession.verification_slot(peer.org_did):
            sess, tau = await self.node.open_session(peer, request.presentation_json)
        return pb.OpenSessionResponse(
            session_id=sess.id, expires_at=int(sess.expires_at), effective_trust=tau
        )

    @rpc
    async def Exchange(self, request, context):  # noqa: N802, D102
        peer = self._peer(context)
        if not request.HasField("envelope"):
            raise InvalidRequestError("ExchangeRequest.envelope is required", metadata={"field": "envelope"})
        outcome = await self.node.serve(peer, signed_from_pb(request.envelope))
        return pb.ExchangeResponse(outcome=outcome_to_pb(outcome))

    @rpc
    async def GetCheckpoint(self, request, context):  # noqa: N802, D102
        self._peer(context)
        cp = await self.node.writer.run_sync(self.node.ledger.latest_checkpoint)
        return pb.GetCheckpointResponse(signed_checkpoint=cp.note if cp else "")

    @rpc
    async def GetInclusionProof(self, request, context):  # noqa: N802, D102
        self._peer(context)
        ledger = self.node.ledger

        def prove():
            cp = ledger.latest_checkpoint()
            size = request.tree_size or (cp.checkpoint.size if cp else 0)
            if cp is None or size > cp.checkpoint.size or request.leaf_index >= size:
                raise InvalidRequestError(
                    "leaf_index/tree_size beyond the latest checkpoint", reason="BAD_PROOF_REQUEST"
                )
            return ledger.inclusion_proof(request.leaf_index, size), cp.note

        hashes, note = await self.node.writer.run_sync(prove)
        return pb.ProofResponse(hashes=hashes, signed_checkpoint=note)

    @rpc
    async def GetConsistencyProof(self, request, context):  # noqa: N802, D102
        self._peer(context)
        ledger = self.node.ledger

        def prove():
            cp = ledger.latest_checkpoint()
            if cp is None or not 0 < request.size1 <= request.size2 <= cp.checkpoint.size:
                raise InvalidRequestError(
                    "need 0 < size1 <= size2 <= checkpoint size", reason="BAD_PROOF_REQUEST"
                )
            return ledger.consistency_proof(request.size1, request.size2), cp.note

        hashes, note = await self.node.writer.run_sync(prove)
        return pb.ProofResponse(hashes=hashes, signed_checkpoint=note)

    @rpc
    async def GetStatusList(self, request, context):  # noqa: N802, D102
        self._peer(context)
        if request.purpose not in ("revocation", "suspension"):
            raise InvalidRequestError(
                "purpose must be revocation or suspension", metadata={"field": "purpose"}
            )
        doc = self.node.status.credential(request.purpose)
        return pb.GetStatusListResponse(credential_json=json.dumps(doc).encode())

    @rpc
    async def QueryEntries(self, request, context):  # noqa: N802, D102
        peer = self._peer(context)
        ledger = self.node.ledger
        limit = request.limit or 100
        if not 1 <= limit <= 1000:
            raise InvalidRequestError("limit must be in 1..1000", metadata={"field": "limit"})

        def query():
            from ledger import EntryFilter

            cp = ledger.latest_checkpoint(witnessed=True) or ledger.latest_checkpoint()
            if cp is None:
                return "", []
            size = cp.checkpoint.size
            flt = EntryFilter(
                counterpart_org=peer.org_did,
                contract_id=request.contract_id or None,
                purpose=request.purpose or None,
                field=request.field or None,
                decision=request.decision or None,
                kind=request.kind or None,
                limit=limit,
            )
            out = []
            for e in ledger.query(flt):
                if e.index >= size:
                    continue
                out.append(
                    pb.LoggedEntry(
                        leaf_index=e.index,
                        entry=e.entry.canonical_bytes(),
                        inclusion_proof=ledger.inclusion_proof(e.index, size),
                    )
                )
            return cp.note, out

        note, entries = await self.node.writer.run_sync(query)
        return pb.QueryEntriesResponse(signed_checkpoint=note, entries=entries)

    @rpc
    async def AddCheckpoint(self, request, context):  # noqa: N802, D102
        self._peer(context)
        import datetime as dt

        witness = self.node.witness
        if len(request.body) > 64 * 1024:
            raise InvalidRequestError("add-checkpoint body over 64 KiB", reason="MALFORMED_REQUEST")
        resp = await self.node.writer.run_sync(
            lambda: witness.add_checkpoint(request.body, now=dt.datetime.now(dt.UTC))
        )
        return pb.AddCheckpointResponse(status=resp.status, body=resp.body)

    @rpc
    async def AnnounceKeyRotation(self, request, context):  # noqa: N802
        """Feature ``accord.key-rotation.v1``: follow the caller's key rotation (federation.rotation)."""
        from federation.rotation import accept_announcement

        peer = self._peer(context)
        fingerprint, outcome = await accept_announcement(self.node, peer.org_did, request)
        return pb.AnnounceKeyRotationResponse(fingerprint=fingerprint, outcome=outcome)

    @rpc
    async def GetAgentCards(self, request, context):  # noqa: N802, D102
        peer = self._peer(context)  # pinned partners only
        if not self.node.config.a2a.expose:
            return pb.GetAgentCardsResponse()
        from federation.a2a.cards import cards_for_partner  # a2a-sdk is loaded only when cards are served

        return pb.GetAgentCardsResponse(agent_card_json=cards_for_partner(self.node, peer.org_did))
