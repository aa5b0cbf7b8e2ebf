"""AdminService: the local operator (client certificate SAN = ``<org DID>#operator`` from the own CA)."""

from __future__ import annotations

from collections.abc import Callable

from federation.errors import AuthenticationError
from federation.node import Node
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from federation.services.base import rpc
from federation.tls import OPERATOR_FRAGMENT, check_chain, san_uri_of_pem
from federation.wire import peer_cert


class AdminServicer(pbg.AdminServiceServicer):
    """Serves the node's operator."""

    def __init__(self, node: Node, node_info, *, on_reload: Callable[[], None] = lambda: None) -> None:
        """``on_reload`` is called after each reload (the server swaps its TLS trust roots)."""
        self.node = node
        self._info = node_info
        self._on_reload = on_reload
        self._ca = node.identity.tls_pem("ca.pem")

    def _operator(self, context) -> None:
        cert = peer_cert(context)
        if cert is None:
            raise AuthenticationError("no client certificate", reason="NO_CLIENT_CERTIFICATE")
        try:
            check_chain(cert, self._ca)
        except Exception as exc:
            raise AuthenticationError("not this node's operator", reason="NOT_OPERATOR") from exc
        if san_uri_of_pem(cert) != self.node.did + OPERATOR_FRAGMENT:
            raise AuthenticationError("not this node's operator", reason="NOT_OPERATOR")

    @rpc
    async def GetStatus(self, request, context):  # noqa: N802, D102
        self._operator(context)
        n = self.node
        cp = await n.writer.run_sync(n.ledger.latest_checkpoint)
        size = await n.writer.run_sync(n.ledger.size)
        return pb.GetStatusResponse(
            node=self._info(),
            peers=[b.org_did for b in n.peers],
            agents=len(n.store.agents()),
            contracts=sorted(n.contracts),
            ledger_size=size,
            checkpoint=cp.note if cp else "",
        )

    @rpc
    async def Reload(self, request, context):  # noqa: N802, D102
        self._operator(context)
        counts = self.node.reload()
        self._on_reload()
        return pb.ReloadResponse(**counts)
