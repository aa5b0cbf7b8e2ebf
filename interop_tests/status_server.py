"""The tester organization's status-list endpoint.

A node under test fetches the tester's Bitstring Status List credentials from
the endpoint in the tester's bundle (``GetStatusList``); the runner serves
them there (only that RPC; the rest answer UNIMPLEMENTED) for the duration
of the suite, with the tester's node certificate, trusting the target's CA.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg


class _StatusOnly(pbg.FederationServiceServicer):
    def __init__(self, publisher) -> None:
        self._publisher = publisher

    async def GetStatusList(self, request, context):  # noqa: N802, D102
        if request.purpose not in ("revocation", "suspension"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "purpose")
        doc = self._publisher.credential(request.purpose)
        return pb.GetStatusListResponse(credential_json=json.dumps(doc).encode())


async def start_status_server(tester_dir: Path, target_ca_pem: bytes) -> grpc.aio.Server | None:
    """Serve the tester's status lists on its ``listen`` address (its bundle names ``advertise``).

    Returns None when the address is taken.
    """
    from federation.agents import open_store
    from federation.identity import NodeIdentity
    from federation.statuslists import StatusListPublisher

    ident = NodeIdentity.load(tester_dir)
    publisher = StatusListPublisher(ident, open_store(ident))
    server = grpc.aio.server()
    pbg.add_FederationServiceServicer_to_server(_StatusOnly(publisher), server)
    creds = grpc.ssl_server_credentials(
        [(ident.tls_pem("node.key"), ident.tls_pem("node.pem"))],
        root_certificates=target_ca_pem,
        require_client_auth=True,
    )
    endpoint = ident.config.listen  # bound here; peers dial the bundle's endpoint (advertise, else listen)
    try:
        if server.add_secure_port(endpoint, creds) == 0:
            return None
    except RuntimeError:
        return None
    await server.start()
    return server
