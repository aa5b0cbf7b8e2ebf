"""Registering this organization's agents (offline, on the node directory).

``register_agent`` creates the agent's Ed25519 key and ``did:key``, gives it
an index in the organization's status lists, issues a W3C VC 2.0
``AgentCredential`` signed by the organization key (``eddsa-rdfc-2022``),
mints a TLS client certificate from the organization CA (SAN URI = the
agent DID), records the agent and writes its wallet ``agents/<name>.json``.
``renew_agent`` re-issues the credential of a registered agent (same DID,
same claims, new validity window).
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


MAX_VALID_DAYS = 3650


def credential_valid_until(credential: dict) -> dt.datetime | None:
    """The ``validUntil`` of an AgentCredential as an aware datetime, or None when absent or malformed."""
    raw = credential.get("validUntil") if isinstance(credential, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        t = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def agent_row(agent, *, now: dt.datetime, expiring_within_days: int) -> dict:
    """One registered agent as ``accord agent list --json`` prints it (the console shows the same).

    Args:
        agent: a :class:`federation.store.AgentRecord`.
        now: the time the expiry is judged at (UTC).
        expiring_within_days: an unexpired credential ending within this many days is ``expiring``.

    Returns:
        ``name``, ``did``, ``role``, ``scopes``, ``trust_tier``, ``status_index``, ``status``
        (``active`` | ``suspended`` | ``revoked``), ``valid_until`` (as issued, XSD dateTime, or
        None) and ``expiry`` (``ok`` | ``expiring`` | ``expired``).
    """
    until = credential_valid_until(agent.credential)
    if until is None or until <= now:
        expiry = "expired"
    elif until <= now + dt.timedelta(days=expiring_within_days):
        expiry = "expiring"
    else:
        expiry = "ok"
    return {
        "name": agent.name,
        "did": agent.did,
        "role": agent.role,
        "scopes": list(agent.scopes),
        "trust_tier": agent.trust_tier,
        "status_index": agent.status_index,
        "status": "revoked" if agent.revoked else "suspended" if agent.suspended else "active",
        "valid_until": agent.credential.get("validUntil") if until else None,
        "expiry": expiry,
    }


def renew_agent(
    identity: NodeIdentity,
    name_or_did: str,
    *,
    valid_days: int = 30,
    now: dt.datetime | None = None,
) -> AgentWallet:
    """Issue a fresh AgentCredential for a registered agent and rewrite its wallet.

    The agent keeps its ``did:key`` (the key in its wallet), its claims (role,
    scopes, trust tier) and its status-list index (so a suspension carries
    over); it gets a new credential id, a validity window ``now .. now +
    valid_days`` (VC DM 2.0 §4.9 ``validFrom``/``validUntil``) and a new TLS
    client certificate for the same window. The store is updated first, then
    the wallet is replaced atomically; a running node reads the store (its
    agent cache lives 0.5 s), and the agent process re-reads its wallet.

    Raises:
        NotFoundError: ``UNKNOWN_AGENT`` (not registered) or ``NO_WALLET``
            (``agents/<name>.json`` is missing).
        InvalidRequestError: ``AGENT_REVOKED`` (revocation is permanent),
            ``BAD_VALIDITY`` (days outside 1..3650), ``WALLET_MISMATCH`` (the
            wallet holds another DID).

    """
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InvalidRequestError(f"--days must be 1..{MAX_VALID_DAYS}", reason="BAD_VALIDITY")
    store = open_store(identity)
    rec = store.agent(name_or_did)
    if rec.revoked:
        raise InvalidRequestError(
            f"agent {rec.name!r} is revoked; register a new agent", reason="AGENT_REVOKED"
        )
    wallet_path = identity.paths.agents / f"{rec.name}.json"
    if not wallet_path.is_file():
        raise NotFoundError(f"{wallet_path}: agent wallet missing", reason="NO_WALLET")
    old = AgentWallet.load(wallet_path)
    if old.did != rec.did or did_key_from_public_key(old.key.public_key) != rec.did:
        raise InvalidRequestError(f"{wallet_path}: wallet is not agent {rec.did}", reason="WALLET_MISMATCH")
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    had_status = isinstance(rec.credential, dict) and "credentialStatus" in rec.credential
    publisher = StatusListPublisher(identity, store)
    unsigned = agent_credential(
        issuer=identity.org_did,
        agent_did=rec.did,
        organization=identity.config.org_name,
        name=rec.name,
        role=rec.role,
        scopes=list(rec.scopes),
        trust_tier=rec.trust_tier,
        valid_from=now,
        valid_until=now + dt.timedelta(days=valid_days),
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        status=publisher.entries_for(rec.status_index) if had_status else None,
    )
    credential = issue_credential(
        unsigned, key=identity.org_key, verification_method=identity.verification_method, created=now
    )
    cert, tls_key = issue_client_certificate(
        ca_pem=identity.tls_pem("ca.pem"),
        ca_key_pem=identity.tls_pem("ca.key"),
        san=rec.did,
        common_name=f"{identity.config.org_name} agent {rec.name}",
        days=valid_days,
    )
    store.replace_credential(rec.did, credential)
    wallet = AgentWallet(
        name=rec.name,
        did=rec.did,
        key=old.key,
        credential=credential,
        tls_cert_pem=cert,
        tls_key_pem=tls_key,
        ca_pem=identity.tls_pem("ca.pem"),
        node_endpoint=old.node_endpoint,
    )
    write_private(wallet_path, wallet.to_json())
    return wallet
