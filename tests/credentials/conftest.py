from __future__ import annotations

from datetime import timedelta

import pytest

from credentials import (
    Ed25519KeyPair,
    StaticKeyResolver,
    agent_credential,
    did_key_from_public_key,
)
from tests.credentials.cred_support import NOW, ORG_DID, ORG_VM


@pytest.fixture(scope="session")
def org_key() -> Ed25519KeyPair:
    return Ed25519KeyPair.from_seed(bytes(range(32)))


@pytest.fixture(scope="session")
def agent_key() -> Ed25519KeyPair:
    return Ed25519KeyPair.from_seed(bytes(range(32, 64)))


@pytest.fixture(scope="session")
def agent_did(agent_key) -> str:
    return did_key_from_public_key(agent_key.public_key)


@pytest.fixture(scope="session")
def resolver(org_key) -> StaticKeyResolver:
    return StaticKeyResolver({ORG_VM: org_key.public_key})


@pytest.fixture()
def unsigned_agent_credential(agent_did) -> dict:
    return agent_credential(
        issuer=ORG_DID,
        agent_did=agent_did,
        organization=ORG_DID,
        name="triage-agent",
        role="clinician",
        scopes=["patient:read", "lab:order"],
        trust_tier=2,
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=30),
        credential_id="urn:uuid:6f1c2a4e-1b7d-4a63-9a54-1f0b5d7f2c11",
    )
