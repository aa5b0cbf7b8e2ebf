"""Registering this organization's agents (offline, on the node directory).

``register_agent`` creates the agent's Ed25519 key and ``did:key``, gives it
an index in the organization's status lists, issues a W3C VC 2.0
``AgentCredential`` signed by the organization key (``eddsa-rdfc-2022``),
mints a TLS client certificate from the organization CA (SAN URI = the
agent DID), records the agent and writes its wallet ``agents/<name>.json``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from credentials import (
    Ed25519KeyPair,
    agent_credential,
    did_key_from_public_key,
    issue_credential,
)
from federation.client import AgentWallet
from federation.config import database_url_for
from federation.errors import InvalidRequestError, NotFoundError
from federation.identity import NodeIdentity
from federation.paths import write_private
from federation.statuslists import StatusListPublisher
from federation.store import AgentRecord, NodeStore, make_engine
from federation.tls import issue_client_certificate

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SCOPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/-]{0,127}$")


def open_store(identity: NodeIdentity) -> NodeStore:
    """The node store of a node directory."""
    return NodeStore(make_engine(database_url_for(identity.paths.root, identity.config)))


def register_agent(
    identity: NodeIdentity,
    *,
    name: str,
    role: str,
    scopes: list[str],
    trust_tier: int = 1,
    valid_days: int = 30,
    with_status: bool = True,
    now: dt.datetime | None = None,
) -> AgentWallet:
    """Register an agent and write its wallet (see the module docstring).

    ``with_status=False`` issues a credential without ``credentialStatus``
    (it cannot be revoked by status list: only for test identities such as
    the interop tester, which runs no node that could publish a list).

    Raises:
        InvalidRequestError: bad name/role/scope, empty scope list, tier out
            of 0..3, or the name is taken (``AGENT_EXISTS``).

    """
    if not NAME_RE.match(name):
        raise InvalidRequestError(f"agent name {name!r} must match {NAME_RE.pattern}", reason="BAD_NAME")
    if not role or len(role) > 100:
        raise InvalidRequestError("role must be 1..100 characters", reason="BAD_ROLE")
    if not scopes:
        raise InvalidRequestError("an agent needs at least one --scope", reason="NO_SCOPES")
    for s in scopes:
        if not SCOPE_RE.match(s):
            raise InvalidRequestError(f"bad scope {s!r}", reason="BAD_SCOPE")
    if not 0 <= trust_tier <= 3:
        raise InvalidRequestError("trust tier must be 0..3", reason="BAD_TRUST_TIER")
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    store = open_store(identity)
    try:
        store.agent(name)
    except NotFoundError:  # only "not registered" lets the registration go on; a database error propagates
        pass
    else:
        raise InvalidRequestError(f"agent {name!r} is already registered", reason="AGENT_EXISTS")
    key = Ed25519KeyPair.generate()
    did = did_key_from_public_key(key.public_key)
    index = store.next_status_index()
    publisher = StatusListPublisher(identity, store)
    unsigned = agent_credential(
        issuer=identity.org_did,
        agent_did=did,
        organization=identity.config.org_name,
        name=name,
        role=role,
        scopes=list(scopes),
        trust_tier=trust_tier,
        valid_from=now,
        valid_until=now + dt.timedelta(days=valid_days),
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        status=publisher.entries_for(index) if with_status else None,
    )
    credential = issue_credential(
        unsigned, key=identity.org_key, verification_method=identity.verification_method, created=now
    )
    cert, tls_key = issue_client_certificate(
        ca_pem=identity.tls_pem("ca.pem"),
        ca_key_pem=identity.tls_pem("ca.key"),
        san=did,
        common_name=f"{identity.config.org_name} agent {name}",
        days=valid_days,
    )
    store.add_agent(
        AgentRecord(
            did=did,
            name=name,
            role=role,
            scopes=tuple(scopes),
            trust_tier=trust_tier,
            status_index=index,
            revoked=False,
            suspended=False,
            credential=credential,
        ),
        now=now,
    )
    cfg = identity.config
    wallet = AgentWallet(
        name=name,
        did=did,
        key=key,
        credential=credential,
        tls_cert_pem=cert,
        tls_key_pem=tls_key,
        ca_pem=identity.tls_pem("ca.pem"),
        node_endpoint=cfg.advertise or cfg.listen,
    )
    write_private(identity.paths.agents / f"{name}.json", wallet.to_json())
    return wallet
