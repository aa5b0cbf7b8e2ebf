"""Agent Cards: signed with the organization key, accepted only from pinned partners (issue #14).

Real keys and a provisioned node directory; the partner's answer to
``GetAgentCards`` is substituted through the gateway's ``_fetch_cards`` seam
to play an organization that serves a card it should not.
"""

from __future__ import annotations

import asyncio

import pytest

from credentials import Ed25519KeyPair
from federation.a2a.cards import (
    SkillTerms,
    build_card,
    card_json,
    parse_card,
    sign_card,
    verify_card,
)
from federation.a2a.config import ExposedAgent
from federation.errors import AuthenticationError, InvalidRequestError

HOSPITAL = "did:web:hospital.accord.test"
TERMS = {"triage": [SkillTerms("triage", "c1", ("patients",), ("patient_id", "triage_level"))]}


def signed_card(key: Ed25519KeyPair, *, org: str = HOSPITAL, kid: str | None = None) -> bytes:
    card = build_card(
        ExposedAgent(agent="desk", skills=["triage"]),
        org_name="hospital",
        org_did=org,
        terms=TERMS,
        url="accord:x",
    )
    sign_card(card, key=key, kid=kid or f"{org}#key-1")
    return card_json(card)


def test_a_card_verifies_with_the_pinned_key_only() -> None:
    key, other = Ed25519KeyPair.generate(), Ed25519KeyPair.generate()
    card = parse_card(signed_card(key))
    assert verify_card(card, pinned={f"{HOSPITAL}#key-1": (HOSPITAL, key.public_key)}) == HOSPITAL
    with pytest.raises(AuthenticationError) as e:  # same kid, another key pinned
        verify_card(card, pinned={f"{HOSPITAL}#key-1": (HOSPITAL, other.public_key)})
    assert e.value.reason == "AGENT_CARD_SIGNATURE_INVALID"
    with pytest.raises(AuthenticationError) as e:  # the signer is no pinned organization
        verify_card(
            card, pinned={"did:web:relief.accord.test#key-1": ("did:web:relief.accord.test", key.public_key)}
        )
    assert e.value.reason == "AGENT_CARD_UNPINNED"


def test_a_changed_card_or_a_card_naming_another_org_does_not_verify() -> None:
    key = Ed25519KeyPair.generate()
    pinned = {f"{HOSPITAL}#key-1": (HOSPITAL, key.public_key)}
    card = parse_card(signed_card(key))
    card.skills[0].tags.append("contract:c2")  # a skill widened after signing
    with pytest.raises(AuthenticationError) as e:
        verify_card(card, pinned=pinned)
    assert e.value.reason == "AGENT_CARD_SIGNATURE_INVALID"
    # hospital's key signing a card that claims to be relief's agent
    claims_relief = parse_card(signed_card(key, org="did:web:relief.accord.test", kid=f"{HOSPITAL}#key-1"))
    with pytest.raises(AuthenticationError) as e:
        verify_card(claims_relief, pinned=pinned)
    assert e.value.reason == "AGENT_CARD_SIGNATURE_INVALID"
    unsigned = parse_card(signed_card(key))
    del unsigned.signatures[:]
    with pytest.raises(AuthenticationError) as e:
        verify_card(unsigned, pinned=pinned)
    assert e.value.reason == "AGENT_CARD_SIGNATURE_INVALID"


def test_malformed_and_oversized_cards_are_refused() -> None:
    for data in (b"{", b'{"name": 7}', b'{"unknownMember": 1}', b"x" * 70_000):
        with pytest.raises(InvalidRequestError) as e:
            parse_card(data)
        assert e.value.reason == "A2A_MALFORMED_MESSAGE"


def test_gateway_refuses_a_card_from_an_unpinned_organization(tmp_path) -> None:
    from federation.a2a.gateway import Gateway
    from federation.demo.setup import provision

    layout = provision(tmp_path, orgs=("hospital", "relief"), with_interop=False)
    stranger = Ed25519KeyPair.generate()  # an organization relief never pinned
    stranger_did = "did:web:stranger.accord.test"
    hospital_key = (
        __import__("federation.identity", fromlist=["NodeIdentity"])
        .NodeIdentity.load(layout.orgs["hospital"])
        .org_key
    )

    class Substituted(Gateway):
        answer: list[bytes] = []

        async def _fetch_cards(self, bundle):
            return list(self.answer)

    gw = Substituted(layout.orgs["relief"], base_url="http://127.0.0.1:1")

    async def fetch(answer: list[bytes]):
        Substituted.answer = answer
        gw._partners.clear()
        return await gw.partner_agents("hospital")

    try:
        with pytest.raises(AuthenticationError) as e:
            asyncio.run(fetch([signed_card(stranger, org=stranger_did)]))
        assert e.value.reason == "AGENT_CARD_UNPINNED"
        # control: the same card signed by the pinned hospital key is accepted
        agents = asyncio.run(fetch([signed_card(hospital_key)]))
        assert set(agents) == {"desk"}
        # a partner that relays another pinned organization's card (relief's own key here) is refused
        relief_key = (
            __import__("federation.identity", fromlist=["NodeIdentity"])
            .NodeIdentity.load(layout.orgs["relief"])
            .org_key
        )
        with pytest.raises(AuthenticationError):
            asyncio.run(fetch([signed_card(relief_key, org="did:web:relief.accord.test")]))
    finally:
        asyncio.run(gw.close())
