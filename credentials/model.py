"""Frozen results of verification and the builder of Accord's ``AgentCredential``.

``AgentCredential`` (VC Data Model 2.0 §4, Accord context
``https://w3id.org/accord/credentials/v1``)::

    {
      "@context": ["https://www.w3.org/ns/credentials/v2",
                   "https://w3id.org/accord/credentials/v1"],
      "id": "urn:uuid:…",
      "type": ["VerifiableCredential", "AgentCredential"],
      "issuer": "did:web:hospital.accord.test",
      "validFrom": "2026-01-01T00:00:00Z",
      "validUntil": "2026-02-01T00:00:00Z",
      "credentialSubject": {
        "id": "did:key:z6Mk…",              # the agent
        "organization": "did:web:hospital.accord.test",
        "name": "triage-agent", "role": "clinician",
        "scopes": ["patient:read"], "trustTier": 2
      },
      "credentialStatus": {…}                # optional BitstringStatusListEntry
    }
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credentials.errors import MalformedCredentialError
from credentials.loader import ACCORD_CONTEXT_URL, VC_V2_CONTEXT_URL
from credentials.proofs import format_datetime

__all__ = [
    "AGENT_CREDENTIAL_TYPE",
    "AgentClaims",
    "VerifiedCredential",
    "VerifiedPresentation",
    "agent_credential",
]

#: The ``type`` of Accord agent credentials (defined in Accord's context).
AGENT_CREDENTIAL_TYPE = "AgentCredential"


@dataclass(frozen=True)
class AgentClaims:
    """The typed claims of a verified ``AgentCredential`` (parsed strictly from JSON).

    Under ``eddsa-rdfc-2022`` the signature binds the RDF meaning, not the JSON:
    ``"trustTier": "2"`` and ``"trustTier": 2`` are the same RDF literal (the
    context coerces to ``xsd:integer``), and the order of ``scopes`` (a set) is
    not signed. These types remove that ambiguity: consumers should read
    claims from here, not from the raw ``subject`` dict.

    Attributes:
        agent_did: ``credentialSubject.id``, the agent's DID.
        organization: the agent's organization (its DID).
        name: the agent's display name.
        role: the agent's role.
        scopes: the granted scopes (a set: their JSON order is not signed).
        trust_tier: the trust tier, a non-negative integer.

    """

    agent_did: str
    organization: str
    name: str
    role: str
    scopes: frozenset[str]
    trust_tier: int

    @classmethod
    def from_subject(cls, subject: Any) -> AgentClaims:
        """Parse a ``credentialSubject`` of an ``AgentCredential``.

        Raises:
            MalformedCredentialError: a missing claim or a claim of the wrong JSON
                type (``metadata["field"]`` names it), an empty scope set.

        """
        if not isinstance(subject, Mapping):
            raise MalformedCredentialError("AgentCredential needs one credentialSubject object")
        values: dict[str, str] = {}
        for key in ("id", "organization", "name", "role"):
            value = subject.get(key)
            if not isinstance(value, str) or not value:
                raise MalformedCredentialError(
                    f"credentialSubject.{key} must be a non-empty string",
                    metadata={"field": f"credentialSubject.{key}"},
                )
            values[key] = value
        scopes = subject.get("scopes")
        scopes = [scopes] if isinstance(scopes, str) else scopes
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise MalformedCredentialError(
                "credentialSubject.scopes must be a non-empty list of strings",
                metadata={"field": "credentialSubject.scopes"},
            )
        tier = subject.get("trustTier")
        if isinstance(tier, bool) or not isinstance(tier, int) or tier < 0:
            raise MalformedCredentialError(
                "credentialSubject.trustTier must be a non-negative JSON integer",
                metadata={"field": "credentialSubject.trustTier"},
            )
        return cls(
            agent_did=values["id"],
            organization=values["organization"],
            name=values["name"],
            role=values["role"],
            scopes=frozenset(scopes),
            trust_tier=tier,
        )


@dataclass(frozen=True)
class VerifiedCredential:
    """A credential whose proof, issuer binding, validity period and status were verified.

    Attributes:
        id: the credential ``id`` (None if absent).
        issuer: the issuer's id (a DID or URL).
        subject_id: ``credentialSubject.id`` (None if absent or several subjects).
        types: the credential ``type`` values, in document order.
        subject: ``credentialSubject`` (the first one if it is an array); a copy.
        valid_from: ``validFrom`` (None if absent), timezone-aware.
        valid_until: ``validUntil`` (None if absent), timezone-aware.
        proof_digest: hex SHA-256 of the proof's ``proofValue`` string (UTF-8):
            a stable handle for logging which credential was presented.
        verification_method: the proof's ``verificationMethod``.
        cryptosuite: the proof's cryptosuite.
        credential: the whole verified credential (a copy), for further claims.
        agent: the typed claims if the credential is an ``AgentCredential``, else None.

    """

    id: str | None
    issuer: str
    subject_id: str | None
    types: tuple[str, ...]
    subject: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    proof_digest: str
    verification_method: str = ""
    cryptosuite: str = ""
    credential: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    agent: AgentClaims | None = None


@dataclass(frozen=True)
class VerifiedPresentation:
    """A verified presentation: holder proof, challenge, domain and every credential.

    Attributes:
        holder: the presentation ``holder`` (the controller of its proof key and the
            ``credentialSubject.id`` of every credential in it).
        credentials: the verified credentials, in document order.
        proof_digest: hex SHA-256 of the presentation proof's ``proofValue``.
        verification_method: the presentation proof's ``verificationMethod``.

    """

    holder: str
    credentials: tuple[VerifiedCredential, ...]
    proof_digest: str = ""
    verification_method: str = ""


def agent_credential(
    *,
    issuer: str,
    agent_did: str,
    organization: str,
    name: str,
    role: str,
    scopes: Sequence[str],
    trust_tier: int,
    valid_from: datetime,
    valid_until: datetime,
    credential_id: str,
    status: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build an unsigned Accord ``AgentCredential`` (VC 2.0; shape in the module docstring).

    Args:
        issuer: the issuing organization's DID (``did:web:…``); it must be the
            controller of the key that will sign the credential.
        agent_did: the agent's DID (``did:key:z6Mk…``), the credential subject.
        organization: the agent's organization (its DID is recommended).
        name: the agent's display name.
        role: the agent's role in its organization.
        scopes: the granted scopes; non-empty, distinct non-empty strings.
        trust_tier: a non-negative integer tier.
        valid_from: start of validity (aware datetime; written in UTC, seconds).
        valid_until: end of validity (aware datetime, after ``valid_from``).
        credential_id: the credential id, an absolute IRI (e.g. ``urn:uuid:…``).
        status: optional ``credentialStatus``: a BitstringStatusListEntry, or a list
            of them (e.g. one for revocation and one for suspension; VC DM 2.0 §4.10).

    Returns:
        The unsigned credential, ready for ``issue_credential``.

    Raises:
        MalformedCredentialError: a missing/empty value, empty or duplicate scopes,
            a negative or non-integer tier, naive datetimes, or an empty window.

    """
    for label, value in (
        ("issuer", issuer),
        ("agent_did", agent_did),
        ("organization", organization),
        ("name", name),
        ("role", role),
        ("credential_id", credential_id),
    ):
        if not isinstance(value, str) or not value:
            raise MalformedCredentialError(f"{label} must be a non-empty string")
    if isinstance(scopes, str) or not scopes:
        raise MalformedCredentialError("scopes must be a non-empty list of strings")
    scope_list = list(scopes)
    if any(not isinstance(s, str) or not s for s in scope_list):
        raise MalformedCredentialError("each scope must be a non-empty string")
    if len(set(scope_list)) != len(scope_list):
        raise MalformedCredentialError("scopes must be distinct")
    if isinstance(trust_tier, bool) or not isinstance(trust_tier, int) or trust_tier < 0:
        raise MalformedCredentialError("trust_tier must be a non-negative integer")
    start, end = format_datetime(valid_from), format_datetime(valid_until)
    if valid_until <= valid_from:
        raise MalformedCredentialError("valid_until must be after valid_from")
    credential: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT_URL, ACCORD_CONTEXT_URL],
        "id": credential_id,
        "type": ["VerifiableCredential", AGENT_CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": start,
        "validUntil": end,
        "credentialSubject": {
            "id": agent_did,
            "organization": organization,
            "name": name,
            "role": role,
            "scopes": scope_list,
            "trustTier": trust_tier,
        },
    }
    if status is not None:
        if isinstance(status, Mapping):
            credential["credentialStatus"] = dict(status)
        elif isinstance(status, list | tuple) and status and all(isinstance(e, Mapping) for e in status):
            credential["credentialStatus"] = [dict(e) for e in status]
        else:
            raise MalformedCredentialError("status must be a JSON object or a non-empty list of them")
    return credential
