"""AgentService: an organization's own agents (client certificate from the own CA, SAN = agent DID)."""

from __future__ import annotations

from federation.errors import AuthenticationError, InvalidRequestError
from federation.node import Node
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from federation.services.base import rpc
from federation.tls import check_chain, san_uri_of_pem
from federation.wire import peer_cert, received_outcome_to_pb, signed_from_pb


class AgentServicer(pbg.AgentServiceServicer):
    """Serves this organization's agents."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._ca = node.identity.tls_pem("ca.pem")

    def _agent(self, context, claimed: str | None) -> str:
        """The calling agent's DID from its client certificate (must equal ``claimed`` when given)."""
        cert = peer_cert(context)
        if cert is None:
            raise AuthenticationError("no client certificate", reason="NO_CLIENT_CERTIFICATE")
        try:
            check_chain(cert, self._ca)
        except Exception as exc:
            raise AuthenticationError(
                "client certificate is not from this organization's CA", reason="NOT_AN_AGENT"
            ) from exc
        did = san_uri_of_pem(cert)
        if claimed is not None and did != claimed:
            raise AuthenticationError("client certificate is for another agent", reason="AGENT_MISMATCH")
        return did

    @rpc
    async def BeginSession(self, request, context):  # noqa: N802, D102
        self._agent(context, request.agent_did)
        r = await self.node.begin_session(request.agent_did, request.peer)
        return pb.BeginSessionResponse(**r)

    @rpc
    async def OpenSession(self, request, context):  # noqa: N802, D102
        self._agent(context, request.agent_did)
        if not request.HasField("possession"):
            raise InvalidRequestError(
                "AgentOpenSessionRequest.possession is required", metadata={"field": "possession"}
            )
        r = await self.node.open_agent_session(
            agent_did=request.agent_did,
            peer_org=request.peer_org,
            possession=signed_from_pb(request.possession),
            presentation_json=request.presentation_json,
        )
        return pb.AgentOpenSessionResponse(
            session_id=r["session_id"], expires_at=r["expires_at"], effective_trust=r["effective_trust"]
        )

    @rpc
    async def SendRequest(self, request, context):  # noqa: N802, D102
        caller = self._agent(context, None)
        if not request.HasField("request"):
            raise InvalidRequestError("SendRequestRequest.request is required", metadata={"field": "request"})
        outcome, index, ok = await self.node.forward(
            request.session_id, signed_from_pb(request.request), caller_agent=caller
        )
        return pb.SendRequestResponse(
            outcome=received_outcome_to_pb(outcome),
            received_leaf_index=index,
            receipt_verified=ok,
            content_labels=[
                pb.ContentLabel(record=r, field=f, verdict=v, findings=list(fs), quarantined=q)
                for r, f, v, fs, q in outcome.content_labels
            ],
        )
