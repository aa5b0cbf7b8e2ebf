"""R-SES-3: a presentation whose credential is not an AgentCredential is refused.

The tester organization of the interop kit (a real, pinned peer of the demo
federation's hospital) re-issues its agent's credential with its own
organization key: once unchanged (the control: a session opens), once without
the ``AgentCredential`` type. The provider must answer the second with
``UNAUTHENTICATED`` / ``WRONG_CREDENTIAL_TYPE`` although every proof verifies.
"""

from __future__ import annotations

import copy
import datetime as dt
import json

import grpc
import pytest

from credentials import issue_credential
from interop_tests.peer import InteropIdentity, MinimalPeer
from nodes.conftest import run

pytestmark = pytest.mark.xdist_group("federation")


def _reissued(ident: InteropIdentity, types: list[str]) -> dict:
    cred = copy.deepcopy(ident.agent["credential"])
    cred.pop("proof")
    cred.pop("credentialStatus", None)  # no status list to fetch: the type is what is under test
    cred["type"] = types
    return issue_credential(
        cred,
        key=ident.org_key,
        verification_method=f"{ident.org_did}#key-1",
        created=dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1),
    )


async def _open(fed, credential: dict):
    ident = InteropIdentity.load(fed.layout.orgs["interop"])
    bundle = json.loads(fed.layout.bundle_path("hospital").read_text())
    peer = MinimalPeer(
        target=fed.endpoint("hospital"),
        target_ca_pem=bundle["ca_certificate_pem"].encode(),
        cert_pem=ident.cert_pem,
        key_pem=ident.key_pem,
    )
    try:
        return await peer.open_session(ident, credential=credential)
    finally:
        await peer.close()


def test_reissued_agent_credential_opens_a_session(fed):
    """The control: the re-issued credential with its AgentCredential type is accepted."""
    ident = InteropIdentity.load(fed.layout.orgs["interop"])
    sess = run(_open(fed, _reissued(ident, ["VerifiableCredential", "AgentCredential"])))
    assert sess.session_id


def test_credential_that_is_not_an_agent_credential_is_refused(fed):
    """R-SES-3: UNAUTHENTICATED / WRONG_CREDENTIAL_TYPE for a valid credential of another type."""
    from federation.errors import FederationError
    from federation.wire import from_rpc_error

    ident = InteropIdentity.load(fed.layout.orgs["interop"])
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        run(_open(fed, _reissued(ident, ["VerifiableCredential"])))
    err = from_rpc_error(ei.value)
    assert isinstance(err, FederationError)
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.reason == "WRONG_CREDENTIAL_TYPE", err
