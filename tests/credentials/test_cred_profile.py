"""Issue #10 class 1: a credential's JSON spelling must mean what its signature covers.

The attack: an eddsa-rdfc-2022 signature covers the RDF meaning, the verifier
reads ``validUntil`` / ``credentialStatus`` by JSON key. A holder re-spells
those keys (an appended inline ``@context``, an absolute IRI as key, …): the
canonical N-Quads do not change, so the proof still verifies, and an expired,
revoked credential was accepted with no expiry and no status. Each test shows
the re-spelling leaves the signed N-Quads unchanged (the attack is real) and
that the document is now refused with a precise reason.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from credentials import (
    CredentialError,
    StaticKeyResolver,
    StatusList,
    StatusListCache,
    agent_credential,
    canonicalize_rdfc,
    create_presentation,
    issue_credential,
    status_entry,
    status_list_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from credentials.loader import bundled_contexts
from tests.credentials.cred_support import NOW, ORG_DID, ORG_VM, SUITES, VERIFIER_DID, sign_unchecked

CRED = "https://www.w3.org/2018/credentials#"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"
LIST_URL = "https://hospital.accord.test/status/revocation/1"
RENAMING_CONTEXT = {
    "expiry": {"@id": CRED + "validUntil", "@type": XSD_DATETIME},
    "standing": {"@id": CRED + "credentialStatus", "@type": "@id"},
}


@pytest.fixture()
def revoked_status(org_key):
    """A status checker under which index 7 of the hospital's revocation list is revoked."""
    bits = StatusList()
    bits.set(7, True)
    listed = issue_credential(
        status_list_credential(
            issuer=ORG_DID,
            credential_id=LIST_URL,
            purpose="revocation",
            status_list=bits,
            valid_from=NOW - timedelta(days=100),
        ),
        key=org_key,
        verification_method=ORG_VM,
        created=NOW - timedelta(days=100),
    )
    return StatusListCache(lambda url: listed, resolve_key=StaticKeyResolver({ORG_VM: org_key.public_key}))


@pytest.fixture()
def expired_revoked(agent_did) -> dict:
    """Unsigned AgentCredential that expired 30 days before NOW and whose status bit is set."""
    return agent_credential(
        issuer=ORG_DID,
        agent_did=agent_did,
        organization=ORG_DID,
        name="triage-agent",
        role="clinician",
        scopes=["patient:read"],
        trust_tier=2,
        valid_from=NOW - timedelta(days=60),
        valid_until=NOW - timedelta(days=30),
        credential_id="urn:uuid:0b0f9c3e-59a1-4b8e-9e6e-3f0d4c1b2a77",
        status=status_entry(list_credential_id=LIST_URL, index=7, purpose="revocation"),
    )


def _inline_rename(doc: dict) -> dict:
    out = copy.deepcopy(doc)
    out["@context"] = list(out["@context"]) + [RENAMING_CONTEXT]
    out["expiry"] = out.pop("validUntil")
    out["standing"] = out.pop("credentialStatus")
    return out


def _iri_keys(doc: dict) -> dict:
    out = copy.deepcopy(doc)
    out[CRED + "validUntil"] = {"@value": out.pop("validUntil"), "@type": XSD_DATETIME}
    out[CRED + "credentialStatus"] = out.pop("credentialStatus")
    return out


def _embedded_context(doc: dict) -> dict:
    # a context embedded in the subject renames the agent's role (JSON: no role at all)
    out = copy.deepcopy(doc)
    subject = out["credentialSubject"]
    subject["@context"] = {"function": {"@id": "https://w3id.org/accord/vocab#role"}}
    subject["function"] = subject.pop("role")
    return out


RESPELLINGS = {
    "inline-context": (_inline_rename, "CONTEXT_NOT_ALLOWED"),
    "absolute-iri-keys": (_iri_keys, "TERM_NOT_ALLOWED"),
    "embedded-context": (_embedded_context, "CONTEXT_NOT_ALLOWED"),
}


def _unsecured(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "proof"}


@pytest.mark.parametrize("respelling", sorted(RESPELLINGS))
def test_respelled_expiry_and_status_sign_the_same_nquads(respelling, expired_revoked):
    """The attack is real: each re-spelling is the same RDF dataset, so an rdfc proof still verifies."""
    respell, _ = RESPELLINGS[respelling]
    assert canonicalize_rdfc(respell(expired_revoked)) == canonicalize_rdfc(expired_revoked)


@pytest.mark.parametrize("respelling", sorted(RESPELLINGS))
def test_respelled_expired_revoked_credential_is_refused(
    respelling, expired_revoked, org_key, resolver, revoked_status
):
    respell, reason = RESPELLINGS[respelling]
    signed = issue_credential(
        expired_revoked, key=org_key, verification_method=ORG_VM, created=NOW - timedelta(days=59)
    )
    for honest_reason, status in (("EXPIRED", None), ("REVOKED", revoked_status)):
        later = NOW if status is None else NOW - timedelta(days=31)  # before expiry: status decides
        with pytest.raises(CredentialError) as info:
            verify_credential(signed, resolve_key=resolver, now=later, status=status)
        assert info.value.reason == honest_reason
    # the holder re-spells the signed credential, keeping the issuer's proof
    forged = dict(respell(_unsecured(signed)), proof=signed["proof"])
    with pytest.raises(CredentialError) as info:
        verify_credential(forged, resolve_key=resolver, now=NOW, status=revoked_status)
    assert info.value.reason == reason


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("respelling", sorted(RESPELLINGS))
def test_respelled_credential_is_refused_at_issue_and_at_verify_both_suites(
    suite, respelling, expired_revoked, org_key, resolver
):
    respell, reason = RESPELLINGS[respelling]
    doc = respell(expired_revoked)
    with pytest.raises(CredentialError) as info:
        issue_credential(doc, key=org_key, verification_method=ORG_VM, cryptosuite=suite)
    assert info.value.reason == reason
    # an issuer outside Accord signed it anyway (the proof is valid for its JSON and its meaning)
    signed = sign_unchecked(doc, org_key, ORG_VM, "assertionMethod", suite)
    with pytest.raises(CredentialError) as info:
        verify_credential(signed, resolve_key=resolver, now=NOW)
    assert info.value.reason == reason


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("respelling", sorted(RESPELLINGS))
def test_presentation_carrying_a_respelled_credential_is_refused(
    suite, respelling, expired_revoked, org_key, agent_key, agent_did, resolver, revoked_status
):
    respell, reason = RESPELLINGS[respelling]
    signed = issue_credential(
        expired_revoked, key=org_key, verification_method=ORG_VM, created=NOW - timedelta(days=59)
    )
    forged = dict(respell(_unsecured(signed)), proof=signed["proof"])
    vp = sign_unchecked(
        {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiablePresentation"],
            "holder": agent_did,
            "verifiableCredential": [forged],
        },
        agent_key,
        verification_method_id(agent_did),
        "authentication",
        suite,
        challenge="c-1",
        domain=VERIFIER_DID,
    )
    resolve = _resolver_for(org_key)
    with pytest.raises(CredentialError) as info:
        verify_presentation(
            vp, challenge="c-1", domain=VERIFIER_DID, resolve_key=resolve, now=NOW, status=revoked_status
        )
    assert info.value.reason == reason
    with pytest.raises(CredentialError) as info:
        create_presentation(
            [forged],
            holder=agent_did,
            key=agent_key,
            verification_method=verification_method_id(agent_did),
            challenge="c-1",
            domain=VERIFIER_DID,
            cryptosuite=suite,
        )
    assert info.value.reason == reason


def test_presentation_keys_are_plain_terms_too(org_key, agent_key, agent_did, unsigned_agent_credential):
    signed = issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM)
    vp = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": agent_did,
        "verifiableCredential": [signed],
        CRED + "holder": {"@id": agent_did},
    }
    vp = sign_unchecked(
        vp,
        agent_key,
        verification_method_id(agent_did),
        "authentication",
        SUITES[0],
        challenge="c",
        domain="d",
    )
    with pytest.raises(CredentialError) as info:
        verify_presentation(vp, challenge="c", domain="d", resolve_key=_resolver_for(org_key), now=NOW)
    assert info.value.reason == "TERM_NOT_ALLOWED"


def _resolver_for(org_key):
    from credentials import did_key_resolver

    return StaticKeyResolver({ORG_VM: org_key.public_key}, fallback=did_key_resolver)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d["@context"].reverse(), "CONTEXT_NOT_ALLOWED"),  # VC 2.0 not first
        (lambda d: d["@context"].append(d["@context"][1]), "CONTEXT_NOT_ALLOWED"),  # twice
        (lambda d: d.__setitem__("@context", []), "CONTEXT_NOT_ALLOWED"),
        (
            lambda d: d["@context"].extend(
                [
                    "https://www.w3.org/ns/credentials/examples/v2",
                    "https://www.w3.org/ns/credentials/undefined-terms/v2",
                ]
            ),
            "CONTEXT_NOT_ALLOWED",  # two @vocab: the order would decide undefined terms
        ),
        (lambda d: d["@context"].append("https://example.com/ctx"), "UNKNOWN_CONTEXT"),
        (lambda d: d["credentialSubject"].__setitem__("@nest", {"role": "x"}), "TERM_NOT_ALLOWED"),
        (lambda d: d.__setitem__("@included", [{"id": "urn:x:1"}]), "TERM_NOT_ALLOWED"),
        (lambda d: d.__setitem__("@reverse", {}), "TERM_NOT_ALLOWED"),
        (lambda d: d.__setitem__("@graph", []), "TERM_NOT_ALLOWED"),
        (lambda d: d.__setitem__("@id", "urn:x:2"), "TERM_NOT_ALLOWED"),
        (lambda d: d["credentialSubject"].__setitem__("cred:x", 1), "TERM_NOT_ALLOWED"),
        (lambda d: d["credentialSubject"].__setitem__("_:b0", 1), "TERM_NOT_ALLOWED"),
        (lambda d: d["type"].append(CRED + "VerifiableCredential"), "TERM_NOT_ALLOWED"),
        (lambda d: d["type"].append("https://w3id.org/accord/vocab#AgentCredential"), "TERM_NOT_ALLOWED"),
    ],
)
def test_profile_refuses_every_other_spelling(mutate, reason, unsigned_agent_credential, org_key):
    mutate(unsigned_agent_credential)
    with pytest.raises(CredentialError) as info:
        issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM)
    assert info.value.reason == reason


def test_value_objects_are_allowed(unsigned_agent_credential, org_key, resolver):
    unsigned_agent_credential["@context"].append("https://www.w3.org/ns/credentials/examples/v2")
    unsigned_agent_credential["credentialSubject"]["motto"] = {"@value": "primum", "@language": "la"}
    signed = issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM)
    assert verify_credential(signed, resolve_key=resolver, now=NOW).subject["motto"]["@language"] == "la"


def _term_definitions() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    iri_terms: dict[str, set[str]] = defaultdict(set)
    aliases: set[tuple[str, str]] = set()

    def walk(ctx: Any) -> None:
        for item in ctx if isinstance(ctx, list) else [ctx]:
            if not isinstance(item, dict):
                continue
            for term, definition in item.items():
                if term.startswith("@"):
                    continue
                iri = definition if isinstance(definition, str) else None
                if isinstance(definition, dict):
                    iri = definition.get("@id")
                    walk(definition.get("@context"))
                if isinstance(iri, str) and iri.startswith("@"):
                    aliases.add((term, iri))
                elif isinstance(iri, str):
                    iri_terms[iri].add(term)

    for raw in bundled_contexts().values():
        walk(json.loads(raw)["@context"])
    return iri_terms, aliases


def test_bundled_contexts_spell_each_iri_with_one_term():
    """The premise of the profile: within the fixed contexts a meaning has one key, keywords two aliases."""
    iri_terms, aliases = _term_definitions()
    assert {iri: terms for iri, terms in iri_terms.items() if len(terms) > 1} == {}
    assert aliases == {("id", "@id"), ("type", "@type")}
    for iri in ("validUntil", "validFrom", "credentialStatus", "issuer", "credentialSubject"):
        assert iri_terms[CRED + iri] == {iri}


def test_every_credential_and_presentation_needs_its_context(unsigned_agent_credential, org_key, agent_did):
    from credentials import check_profile

    signed = issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM)
    bare = {k: v for k, v in signed.items() if k != "@context"}
    vp = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": "VerifiablePresentation"}
    for document in (dict(vp, verifiableCredential=[bare]), {k: v for k, v in vp.items() if k != "@context"}):
        with pytest.raises(CredentialError) as info:
            check_profile(document)
        assert info.value.reason == "CONTEXT_NOT_ALLOWED"
    check_profile(dict(vp, holder=agent_did, verifiableCredential=[signed]))
