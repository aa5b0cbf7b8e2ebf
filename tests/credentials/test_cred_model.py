from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from credentials import (
    MalformedCredentialError,
    agent_credential,
    status_entry,
)
from tests.credentials.cred_support import NOW, ORG_DID

LIST = "https://hospital.accord.test/status/revocation"


def _build(**overrides):
    args = dict(
        issuer=ORG_DID,
        agent_did="did:key:z6MkhFwXNFWosLeugvSf4wcL9t3uuRXueGSFTRgSvHhWj5G2",
        organization=ORG_DID,
        name="a",
        role="r",
        scopes=["s:read"],
        trust_tier=0,
        valid_from=NOW,
        valid_until=NOW + timedelta(hours=1),
        credential_id="urn:uuid:1",
    )
    args.update(overrides)
    return agent_credential(**args)


def test_shape_and_utc_seconds():
    from datetime import timezone

    cet = timezone(timedelta(hours=1))
    cred = _build(valid_from=datetime(2026, 6, 1, 13, 0, 0, 999, tzinfo=cet))
    assert cred["validFrom"] == "2026-06-01T12:00:00Z"
    assert cred["type"] == ["VerifiableCredential", "AgentCredential"]
    assert "credentialStatus" not in cred


def test_status_single_and_list():
    one = status_entry(list_credential_id=LIST, index=3, purpose="revocation")
    two = status_entry(
        list_credential_id=LIST.replace("revocation", "suspension"), index=3, purpose="suspension"
    )
    assert _build(status=one)["credentialStatus"] == one
    assert _build(status=[one, two])["credentialStatus"] == [one, two]
    with pytest.raises(MalformedCredentialError):
        _build(status=[])
    with pytest.raises(MalformedCredentialError):
        _build(status="revoked")


@pytest.mark.parametrize(
    "overrides",
    [
        {"scopes": []},
        {"scopes": "s:read"},
        {"scopes": ["a", "a"]},
        {"scopes": ["a", ""]},
        {"trust_tier": -1},
        {"trust_tier": True},
        {"trust_tier": 1.5},
        {"name": ""},
        {"issuer": None},
        {"valid_until": NOW},
        {"valid_from": datetime(2026, 1, 1)},  # naive
    ],
)
def test_refuses_bad_values(overrides):
    with pytest.raises(MalformedCredentialError):
        _build(**overrides)
