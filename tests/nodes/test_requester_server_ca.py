"""R-TRN-4: a requester trusts only the pinned CA of the peer it calls.

The relief node's own peer client (its node certificate, the hospital's
bundle) calls the running hospital node; with the bundle's CA replaced by
another organization's CA the hospital's genuine server certificate does not
chain to the trust root and the call is abandoned (TLS handshake failure).
"""

from __future__ import annotations

import json

import pytest

from federation.errors import FederationError
from federation.peer_client import PeerClient
from federation.peers import PeerBundle
from federation.tls import mint_tls_material
from nodes.conftest import run

pytestmark = pytest.mark.xdist_group("federation")


def _relief_client(fed, timeout: float) -> PeerClient:
    tls = fed.layout.orgs["relief"] / "tls"
    return PeerClient(
        cert_pem=(tls / "node.pem").read_bytes(),
        key_pem=(tls / "node.key").read_bytes(),
        timeout_seconds=timeout,
    )


def _hospital_bundle(fed, **update) -> PeerBundle:
    b = PeerBundle.model_validate(json.loads(fed.layout.bundle_path("hospital").read_text()))
    return b.model_copy(update=update)


async def _node_info(fed, bundle, timeout: float):
    client = _relief_client(fed, timeout)
    try:
        return await client.node_info(bundle)
    finally:
        await client.close()


def test_pinned_ca_reaches_the_peer(fed):
    """The control: the same client and bundle with the pinned CA get the hospital's NodeInfo."""
    info = run(_node_info(fed, _hospital_bundle(fed), 10.0))
    assert info.org_did == _hospital_bundle(fed).org_did


def _foreign_ca_call(fed) -> FederationError:
    foreign = mint_tls_material(org_name="impostor", org_did=_hospital_bundle(fed).org_did)
    bundle = _hospital_bundle(fed, ca_certificate_pem=foreign.ca_pem.decode())
    with pytest.raises(FederationError) as ei:
        run(_node_info(fed, bundle, 3.0))
    return ei.value


def test_server_certificate_from_another_ca_is_refused(fed):
    """R-TRN-4: a server certificate that does not chain to the pinned CA: the call is abandoned."""
    err = _foreign_ca_call(fed)
    assert err.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), err
    assert err.reason == err.status, err  # no ErrorInfo: the server never answered, the transport failed
