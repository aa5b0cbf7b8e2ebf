"""Agent Cards for exposed agents: skills are contract purposes, signed with the organization key.

A2A specification (v1.0), "Agent Card" and "Agent Card Signing": a card may
carry ``signatures``, each a JWS (RFC 7515) whose payload is the RFC 8785
(JCS) canonical form of the card without ``signatures``, in the flattened
form ``{protected, signature}`` (detached payload). The signing and
verification recipes are a2a-sdk's (:mod:`a2a.utils.signing`); this module
chooses the key and what a valid card means for Accord:

* the key is the organization's Ed25519 key (JWS ``alg`` ``EdDSA``,
  ``kid`` = the organization's verification method, ``<org DID>#key-1``);
* a card is valid only if its ``kid`` is a *pinned* partner's verification
  method (``AGENT_CARD_UNPINNED`` otherwise), its signature verifies with
  that pinned key (``AGENT_CARD_SIGNATURE_INVALID``), and the Accord
  extension in the card names that same organization.

A partner is served one card per exposed agent, listing only the skills
whose purpose a contract in force names with this organization as provider
and the partner as requester (:func:`cards_for_partner`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    AgentInterface,
    AgentProvider,
    AgentSkill,
)
from a2a.utils.signing import SignatureVerificationError, create_agent_card_signer, create_signature_verifier
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf import json_format

from credentials.keys import Ed25519Signer
from federation.a2a.config import ExposedAgent
from federation.errors import AuthenticationError, InvalidRequestError

ACCORD_EXTENSION = "https://accord.test/a2a/ext/accord/v1"
"""URI of the card extension naming the organization and agent behind a card (``params``:
``org`` DID, ``agent`` name; on a gateway's local card also ``partnerCard``, the partner's
signed card as served)."""
PROTOCOL_VERSION = "1.0"
"""The A2A protocol version the gateway speaks (JSON-RPC binding)."""
MAX_CARD_BYTES = 64 * 1024
"""Largest accepted Agent Card, bytes of JSON."""
MAX_CARDS = 64
"""Most cards accepted from one partner (the ``[a2a] expose`` list is bounded alike)."""
JWS_ALG = "EdDSA"
"""JWS algorithm of card signatures (RFC 8037: Ed25519)."""


@dataclass(frozen=True)
class SkillTerms:
    """What a skill (a contract purpose) lets a partner ask for.

    Attributes:
        purpose: the purpose name (= ``AgentSkill.id``).
        contract_id: the contract naming it.
        resources: the purpose's resources.
        fields: MNI fields first, then optional ones (contract field names).
        free_text: the fields among ``fields`` the contract types
            ``free_text: true`` (``content.fields``, docs/content-controls.md).

    """

    purpose: str
    contract_id: str
    resources: tuple[str, ...]
    fields: tuple[str, ...]
    free_text: tuple[str, ...] = ()


def skill_terms(contracts: Iterable[Any], *, provider: str, requester: str) -> dict[str, list[SkillTerms]]:
    """Purposes the contracts give ``requester`` at ``provider``: purpose → terms (one per contract).

    Args:
        contracts: :class:`policy.Contract` values in force at the node.
        provider: the provider organization's DID.
        requester: the requester organization's DID.

    """
    out: dict[str, list[SkillTerms]] = {}
    for c in sorted(contracts, key=lambda c: c.id):
        if c.parties.provider.org != provider or c.parties.requester.org != requester:
            continue
        if getattr(c, "retired_at", None):
            continue
        for name, p in c.purposes.items():
            if p.aggregates is not None and not p.mni:
                continue  # aggregate-only purposes are not record skills
            fields = tuple(dict.fromkeys([*p.mni, *p.optional]))
            content = getattr(c, "content", None)
            free = content.free_text_fields if content is not None else frozenset()
            out.setdefault(name, []).append(
                SkillTerms(
                    purpose=name,
                    contract_id=c.id,
                    resources=tuple(p.resources),
                    fields=fields,
                    free_text=tuple(f for f in fields if f in free),
                )
            )
    return out


def build_card(
    exposed: ExposedAgent,
    *,
    org_name: str,
    org_did: str,
    terms: Mapping[str, list[SkillTerms]],
    url: str,
) -> AgentCard:
    """The unsigned card of ``exposed`` for one partner (skills = purposes both sides agreed).

    Args:
        exposed: the configured agent.
        org_name: this organization's name.
        org_did: this organization's DID.
        terms: :func:`skill_terms` for the partner.
        url: the interface URL written in the card.

    Returns:
        An ``a2a.types.AgentCard``; a skill the configuration names but no
        contract with this partner gives is left out.

    """
    skills = []
    for purpose in exposed.skills:
        for t in terms.get(purpose, []):
            example = {"resource": t.resources[0], "subject": "<record id>", "fields": list(t.fields[:3])}
            skills.append(
                AgentSkill(
                    id=purpose,
                    name=purpose,
                    description=(
                        f"Records under contract {t.contract_id}, purpose {purpose}: one data part "
                        f"{{resource, subject, fields}}; fields from {', '.join(t.fields)}; only the "
                        "fields the contract releases come back"
                    ),
                    tags=[f"contract:{t.contract_id}", *(f"resource:{r}" for r in t.resources)],
                    examples=[json.dumps(example)],
                    input_modes=["application/json"],
                    output_modes=["application/json"],
                )
            )
    return AgentCard(
        name=exposed.agent,
        description=exposed.description or f"{exposed.agent} of {org_name}, through Accord",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION)
        ],
        provider=AgentProvider(organization=org_name, url=f"https://{org_did.removeprefix('did:web:')}/"),
        version="1",
        capabilities=AgentCapabilities(
            streaming=False,
            push_notifications=False,
            extensions=[
                AgentExtension(
                    uri=ACCORD_EXTENSION,
                    description="The organization and agent behind this card (Accord federation)",
                    required=False,
                    params={"org": org_did, "agent": exposed.agent},
                )
            ],
        ),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        skills=skills,
    )


class _SignerKey(Ed25519PrivateKey):
    """A :class:`credentials.Ed25519Signer` as the private-key object PyJWT signs with.

    The a2a-sdk's card signer hands its key to PyJWT, whose EdDSA algorithm
    calls only ``sign``; this lets a key that never leaves its store (a PKCS#11
    token) sign cards. Its private bytes cannot be read.
    """

    def __init__(self, signer: Ed25519Signer) -> None:
        self._signer = signer

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self._signer.public_key)

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise TypeError("the organization key's private bytes are not exportable")

    def private_bytes_raw(self) -> bytes:
        raise TypeError("the organization key's private bytes are not exportable")

    def __copy__(self) -> _SignerKey:
        return self

    def __deepcopy__(self, memo: dict) -> _SignerKey:
        return self


def sign_card(card: AgentCard, *, key: Ed25519Signer, kid: str) -> AgentCard:
    """Append a JWS signature (EdDSA, ``kid``) over the card's JCS form; returns the card.

    Args:
        card: the card (modified in place).
        key: the organization's Ed25519 signer (a key pair in memory, or a
            key held in a PKCS#11 token: only its ``sign`` is used).
        kid: DID URL of the key (``<org DID>#key-1``).

    """
    signer = create_agent_card_signer(_SignerKey(key), {"kid": kid, "alg": JWS_ALG, "typ": "JOSE"})
    return signer(card)


def card_json(card: AgentCard) -> bytes:
    """The card as JSON bytes (protobuf JSON mapping, camelCase), as served."""
    return json_format.MessageToJson(card, indent=None).encode()


def parse_card(data: bytes) -> AgentCard:
    """Parse a card from JSON, bounded.

    Raises:
        InvalidRequestError: ``A2A_MALFORMED_MESSAGE`` — too large (over
            :data:`MAX_CARD_BYTES`), not JSON, or not an AgentCard.

    """
    if len(data) > MAX_CARD_BYTES:
        raise InvalidRequestError(
            f"agent card of {len(data)} bytes exceeds {MAX_CARD_BYTES}", reason="A2A_MALFORMED_MESSAGE"
        )
    try:
        return json_format.Parse(data, AgentCard(), ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"not an A2A AgentCard: {exc}", reason="A2A_MALFORMED_MESSAGE") from exc


def card_org(card: AgentCard) -> tuple[str, str]:
    """(org DID, agent name) named by the card's Accord extension ("", "" when absent)."""
    for ext in card.capabilities.extensions:
        if ext.uri == ACCORD_EXTENSION:
            params = json_format.MessageToDict(ext.params)
            return str(params.get("org", "")), str(params.get("agent", ""))
    return "", ""


def verify_card(card: AgentCard, *, pinned: Mapping[str, tuple[str, bytes]]) -> str:
    """Verify a partner's card against the pinned organizations' keys; returns the signer's org DID.

    Args:
        card: the parsed card.
        pinned: verification method (``<org DID>#key-1``) → (org DID, 32-byte
            Ed25519 public key), from the pinned peer bundles only.

    Raises:
        AuthenticationError: ``AGENT_CARD_UNPINNED`` — no signature's ``kid``
            is a pinned organization's key; ``AGENT_CARD_SIGNATURE_INVALID`` —
            unsigned, the signature does not verify, or the card's Accord
            extension names another organization than the key's.

    """
    if not card.signatures:
        raise AuthenticationError("agent card is not signed", reason="AGENT_CARD_SIGNATURE_INVALID")
    kids = [_kid_of(sig.protected) for sig in card.signatures]
    known = [k for k in kids if k in pinned]
    if not known:
        raise AuthenticationError(
            f"agent card signed by {', '.join(repr(k) for k in kids)}: not a pinned organization's key",
            reason="AGENT_CARD_UNPINNED",
        )
    signer_org: list[str] = []

    def key_for(kid: str | None, _jku: str | None) -> Ed25519PublicKey:
        if kid not in pinned:
            raise SignatureVerificationError("unpinned key")
        signer_org.append(pinned[kid][0])
        return Ed25519PublicKey.from_public_bytes(pinned[kid][1])

    verifier = create_signature_verifier(key_for, [JWS_ALG])
    try:
        verifier(card)
    except (SignatureVerificationError, ValueError) as exc:
        raise AuthenticationError(
            f"agent card signature does not verify: {exc}", reason="AGENT_CARD_SIGNATURE_INVALID"
        ) from exc
    org = signer_org[-1]
    named, _ = card_org(card)
    if named != org:
        raise AuthenticationError(
            f"agent card names organization {named!r} but is signed by {org!r}",
            reason="AGENT_CARD_SIGNATURE_INVALID",
        )
    return org


def _kid_of(protected: str) -> str:
    """The ``kid`` of a JWS protected header (base64url JSON); "" when unreadable."""
    import base64

    try:
        raw = base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return ""
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else ""


def partner_interface_url(org_did: str, agent: str) -> str:
    """The interface URL a partner-facing card names (reached only through the partner's own gateway)."""
    return f"accord:{org_did}/a2a/{agent}"


def cards_for_partner(node: Any, partner_did: str) -> list[bytes]:
    """The signed cards ``node`` serves to the pinned partner ``partner_did`` (``GetAgentCards``).

    An exposed agent with no skill this partner's contracts give is not
    listed. Blocking-free: builds and signs in memory (Ed25519 + JCS, tens
    of microseconds per card).

    Args:
        node: a :class:`federation.node.Node`.
        partner_did: the mTLS-authenticated caller's organization DID.

    Returns:
        JSON bytes of each signed card.

    """
    terms = skill_terms(node.contracts.values(), provider=node.did, requester=partner_did)
    out = []
    for exposed in node.config.a2a.expose:
        card = build_card(
            exposed,
            org_name=node.config.org_name,
            org_did=node.did,
            terms=terms,
            url=partner_interface_url(node.did, exposed.agent),
        )
        if not card.skills:
            continue
        sign_card(card, key=node.identity.org_key, kid=node.identity.verification_method)
        out.append(card_json(card))
    return out
