"""The conformance kit's tester status lists reach a node on another machine (issue #11).

``accord interop enroll --tester-listen HOST:PORT --tester-advertise HOST:PORT``:
the tester's bundle names the advertised address (its TLS certificate names
that host) and ``interop run`` serves the status lists on the listen address,
so a node under test that is not on 127.0.0.1 can fetch them.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from federation.errors import ConfigError
from federation.identity import NodeIdentity, init_node
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg
from federation.supervisor import free_port
from interop_tests.enrollment import enroll, ensure_tester
from interop_tests.status_server import start_status_server

pytestmark = pytest.mark.xdist_group("cli")


def test_status_lists_are_served_on_the_listen_address_for_the_advertised_one(tmp_path):
    node = tmp_path / "alpha"
    init_node(node, org_name="alpha", listen=f"127.0.0.1:{free_port()}")
    port = free_port()
    tester_dir = tmp_path / "tester"
    # listen on every interface; the bundle names 127.0.0.2 (another address than the loopback one)
    result = enroll(
        node,
        tester_dir=tester_dir,
        reload=False,
        tester_listen=f"0.0.0.0:{port}",
        tester_advertise=f"127.0.0.2:{port}",
    )
    pinned = json.loads((node / "peers" / "interop.json").read_text())
    assert pinned["endpoint"] == f"127.0.0.2:{port}"
    assert any(i.kind == "peer" for i in result.items)
    alpha = NodeIdentity.load(node)

    async def fetch(host: str) -> dict:
        server = await start_status_server(tester_dir, alpha.tls_pem("ca.pem"))
        assert server is not None
        try:
            creds = grpc.ssl_channel_credentials(
                root_certificates=NodeIdentity.load(tester_dir).tls_pem("ca.pem"),
                private_key=alpha.tls_pem("node.key"),
                certificate_chain=alpha.tls_pem("node.pem"),
            )
            async with grpc.aio.secure_channel(
                f"{host}:{port}", creds, options=[("grpc.ssl_target_name_override", "127.0.0.2")]
            ) as ch:
                r = await pbg.FederationServiceStub(ch).GetStatusList(
                    pb.GetStatusListRequest(purpose="revocation"), timeout=20
                )
            return json.loads(r.credential_json)
        finally:
            await server.stop(None)

    # reached on the advertised address and on another one of the host: bound on the listen address
    for host in ("127.0.0.2", "127.0.0.3"):
        doc = asyncio.run(fetch(host))
        assert doc["issuer"] == "did:web:interop.accord.test"
    # an existing tester made for other addresses is refused in one line (nothing changed)
    with pytest.raises(ConfigError) as ei:
        ensure_tester(tester_dir, listen=f"127.0.0.1:{port}")
    assert "give another --tester directory" in str(ei.value)
