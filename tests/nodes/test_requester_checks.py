"""The requesting node refuses its own agents whose credential is outside its window (issue #10, class 1).

It once checked only the revoked/suspended flags: an agent whose credential had
expired could still open sessions through its own node.
"""

from __future__ import annotations

import datetime as dt

import pytest

from federation.agents import register_agent
from federation.errors import AuthenticationError
from federation.identity import NodeIdentity, init_node
from federation.node import Node


@pytest.fixture
def node_dir(tmp_path):
    d = tmp_path / "relief"
    init_node(d, org_name="relief", listen="127.0.0.1:0", force=True)
    return d


def _node(node_dir) -> Node:
    return Node.open(node_dir)


def test_an_expired_agent_credential_is_refused_by_its_own_node(node_dir):
    ident = NodeIdentity.load(node_dir)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    expired = register_agent(ident, name="old-agent", role="r", scopes=["x:read"], valid_days=30, now=old)
    fresh = register_agent(ident, name="new-agent", role="r", scopes=["x:read"])
    node = _node(node_dir)
    try:
        assert node._local_agent(fresh.did).did == fresh.did
        with pytest.raises(AuthenticationError) as exc:
            node._local_agent(expired.did)
        assert exc.value.reason == "EXPIRED"
    finally:
        node.ledger.close()
        node.witness.close()


def test_a_not_yet_valid_agent_credential_is_refused(node_dir):
    ident = NodeIdentity.load(node_dir)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    early = register_agent(ident, name="early", role="r", scopes=["x:read"], now=future)
    node = _node(node_dir)
    try:
        with pytest.raises(AuthenticationError) as exc:
            node._local_agent(early.did)
        assert exc.value.reason == "NOT_YET_VALID"
    finally:
        node.ledger.close()
        node.witness.close()
