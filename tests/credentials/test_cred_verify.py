"""Issue and verify credentials and presentations; one test per refusal reason."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from credentials import (
    ACCORD_CONTEXT_URL,
    CredentialError,
    Ed25519KeyPair,
    StaticKeyResolver,
    VerificationError,
    create_presentation,
    did_key_from_public_key,
    did_key_resolver,
    issue_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from tests.credentials.cred_support import NOW, ORG_DID, ORG_VM, RDFC, SUITES, VERIFIER_DID, load


def _sign(credential, key, suite="eddsa-rdfc-2022", vm=ORG_VM):
    return issue_credential(
        credential,
        key=key,
        verification_method=vm,
        cryptosuite=suite,
        created=NOW - timedelta(hours=1),
    )


def _reason(fn, *args, **kwargs) -> str:
    with pytest.raises(VerificationError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, CredentialError)
    return info.value.reason


@pytest.mark.parametrize("suite", SUITES)
def test_agent_credential_round_trip(suite, unsigned_agent_credential, org_key, resolver, agent_did):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    assert signed["proof"]["cryptosuite"] == suite
    assert signed["proof"]["proofPurpose"] == "assertionMethod"
    assert "proof" not in unsigned_agent_credential  # input untouched
    verified = verify_credential(signed, resolve_key=resolver, now=NOW, trusted_issuers={ORG_DID})
    assert verified.issuer == ORG_DID
    assert verified.subject_id == agent_did
    assert verified.types == ("VerifiableCredential", "AgentCredential")
    assert verified.subject["scopes"] == ["patient:read", "lab:order"]
    assert verified.subject["trustTier"] == 2
    assert verified.valid_until == NOW + timedelta(days=30)
    assert len(verified.proof_digest) == 64
    assert verified.cryptosuite == suite


def test_agent_credential_uses_accord_context(unsigned_agent_credential):
    assert unsigned_agent_credential["@context"][1] == ACCORD_CONTEXT_URL


@pytest.mark.parametrize("suite", SUITES)
def test_presentation_round_trip(suite, unsigned_agent_credential, org_key, agent_key, agent_did, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    vp = create_presentation(
        [signed],
        holder=agent_did,
        key=agent_key,
        verification_method=verification_method_id(agent_did),
        challenge="nonce-1",
        domain=VERIFIER_DID,
        cryptosuite=suite,
        created=NOW,
    )
    assert vp["proof"]["proofPurpose"] == "authentication"
    result = verify_presentation(vp, challenge="nonce-1", domain=VERIFIER_DID, resolve_key=resolver, now=NOW)
    assert result.holder == agent_did
    assert [c.subject_id for c in result.credentials] == [agent_did]
    assert (
        _reason(
            verify_presentation,
            vp,
            challenge="nonce-2",
            domain=VERIFIER_DID,
            resolve_key=resolver,
            now=NOW,
        )
        == "WRONG_CHALLENGE"
    )
    assert (
        _reason(
            verify_presentation,
            vp,
            challenge="nonce-1",
            domain="did:web:x.accord.test",
            resolve_key=resolver,
            now=NOW,
        )
        == "WRONG_DOMAIN"
    )
    tampered = copy.deepcopy(vp)
    tampered["proof"]["challenge"] = "nonce-2"
    assert (
        _reason(
            verify_presentation,
            tampered,
            challenge="nonce-2",
            domain=VERIFIER_DID,
            resolve_key=resolver,
            now=NOW,
        )
        == "INVALID_SIGNATURE"
    )


def test_presentation_holder_binding(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    thief = Ed25519KeyPair.from_seed(bytes([7]) * 32)
    thief_did = did_key_from_public_key(thief.public_key)
    vp = create_presentation(
        [signed],
        holder=thief_did,
        key=thief,
        verification_method=verification_method_id(thief_did),
        challenge="c",
        domain=VERIFIER_DID,
        created=NOW,
    )
    assert (
        _reason(
            verify_presentation,
            vp,
            challenge="c",
            domain=VERIFIER_DID,
            resolve_key=resolver,
            now=NOW,
        )
        == "HOLDER_MISMATCH"
    )


def test_presentation_proof_by_key_not_of_holder(unsigned_agent_credential, org_key, agent_did, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    other = Ed25519KeyPair.from_seed(bytes([9]) * 32)
    other_did = did_key_from_public_key(other.public_key)
    vp = create_presentation(
        [signed],
        holder=agent_did,
        key=other,
        verification_method=verification_method_id(other_did),
        challenge="c",
        domain=VERIFIER_DID,
        created=NOW,
    )
    assert (
        _reason(
            verify_presentation,
            vp,
            challenge="c",
            domain=VERIFIER_DID,
            resolve_key=resolver,
            now=NOW,
        )
        == "HOLDER_MISMATCH"
    )


@pytest.mark.parametrize("suite", SUITES)
def test_tampered_claim(suite, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    signed["credentialSubject"]["trustTier"] = 3
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == "INVALID_SIGNATURE"


@pytest.mark.parametrize("suite", SUITES)
def test_scope_added(suite, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    signed["credentialSubject"]["scopes"].append("admin")
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == "INVALID_SIGNATURE"


def test_proof_by_another_key(unsigned_agent_credential, resolver):
    rogue = Ed25519KeyPair.from_seed(bytes([1]) * 32)
    signed = _sign(unsigned_agent_credential, rogue)
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == "INVALID_SIGNATURE"


def test_issuer_must_control_key(unsigned_agent_credential, org_key):
    # Signed with a did:key the resolver knows, but the issuer is the org's did:web.
    did = did_key_from_public_key(org_key.public_key)
    signed = _sign(unsigned_agent_credential, org_key, vm=verification_method_id(did))
    assert _reason(verify_credential, signed, resolve_key=did_key_resolver, now=NOW) == ("UNTRUSTED_ISSUER")


def test_untrusted_issuer(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    assert (
        _reason(
            verify_credential,
            signed,
            resolve_key=resolver,
            now=NOW,
            trusted_issuers={"did:web:other.accord.test"},
        )
        == "UNTRUSTED_ISSUER"
    )
    assert (
        _reason(verify_credential, signed, resolve_key=resolver, now=NOW, trusted_issuers=())
        == "UNTRUSTED_ISSUER"
    )


def test_unknown_key(unsigned_agent_credential, org_key):
    signed = _sign(unsigned_agent_credential, org_key)
    assert _reason(verify_credential, signed, resolve_key=StaticKeyResolver({}), now=NOW) == "UNKNOWN_KEY"


def test_validity_window(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW + timedelta(days=30)) == "EXPIRED"
    assert (
        _reason(verify_credential, signed, resolve_key=resolver, now=NOW - timedelta(days=1, seconds=1))
        == "NOT_YET_VALID"
    )
    verify_credential(signed, resolve_key=resolver, now=NOW - timedelta(days=1))
    verify_credential(signed, resolve_key=resolver, now=NOW + timedelta(days=30, seconds=-1))


def test_wrong_proof_purpose(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["proof"]["proofPurpose"] = "authentication"
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == ("WRONG_PROOF_PURPOSE")


@pytest.mark.parametrize("suite_value", ["eddsa-2022", "ecdsa-rdfc-2019", None, 5])
def test_unsupported_cryptosuite(suite_value, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["proof"]["cryptosuite"] = suite_value
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == ("UNSUPPORTED_CRYPTOSUITE")


def test_wrong_cryptosuite_label_between_eddsa_suites(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, "eddsa-rdfc-2022")
    signed["proof"]["cryptosuite"] = "eddsa-jcs-2022"
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == "INVALID_SIGNATURE"


def test_unknown_proof_type(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["proof"]["type"] = "Ed25519Signature2020"
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == ("UNSUPPORTED_CRYPTOSUITE")


@pytest.mark.parametrize("proof_value", ["", "u" + "A" * 86, "z0OOO", "zzzz", 42])
def test_malformed_proof_value(proof_value, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["proof"]["proofValue"] = proof_value
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) in {
        "MALFORMED_CREDENTIAL",
        "INVALID_SIGNATURE",
    }


def test_missing_proof(unsigned_agent_credential, resolver):
    assert (
        _reason(verify_credential, unsigned_agent_credential, resolve_key=resolver, now=NOW)
        == "MALFORMED_CREDENTIAL"
    )


def test_w3c_vector_issuer_is_not_key_controller():
    # The W3C vector's issuer (https://vc.example/issuers/5678) does not control the did:key.
    signed = load(RDFC / "signedDataInt.json")
    assert _reason(verify_credential, signed, resolve_key=did_key_resolver) == "UNTRUSTED_ISSUER"


def test_accepts_object_issuer_and_returns_copies(unsigned_agent_credential, org_key, resolver):
    unsigned_agent_credential["issuer"] = {"id": ORG_DID, "name": "Hospital"}
    signed = _sign(unsigned_agent_credential, org_key)
    verified = verify_credential(signed, resolve_key=resolver, now=NOW)
    assert verified.issuer == ORG_DID
    verified.subject["role"] = "changed"
    assert signed["credentialSubject"]["role"] == "clinician"


def test_proof_sets_are_refused(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["proof"] = [signed["proof"]]
    verify_credential(signed, resolve_key=resolver, now=NOW)  # an array of one is fine
    signed["proof"] = [signed["proof"][0], dict(signed["proof"][0])]
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW) == ("MALFORMED_CREDENTIAL")


def test_concurrent_verification_from_threads(unsigned_agent_credential, org_key, resolver):
    from concurrent.futures import ThreadPoolExecutor

    from credentials import DocumentLoader

    loader = DocumentLoader()  # cold caches, filled concurrently
    signed = [
        issue_credential(
            {**unsigned_agent_credential, "id": f"urn:uuid:0000-{i}"},
            key=org_key,
            verification_method=ORG_VM,
            cryptosuite=SUITES[i % 2],
        )
        for i in range(8)
    ]

    def check(i):
        return verify_credential(signed[i % 8], resolve_key=resolver, now=NOW, loader=loader).id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(check, range(64)))
    assert ids == [f"urn:uuid:0000-{i % 8}" for i in range(64)]


def test_did_key_with_wrong_multicodec_in_a_credential(unsigned_agent_credential, org_key):
    from credentials.keys import multibase_encode_base58btc

    x25519 = multibase_encode_base58btc(b"\xec\x01" + org_key.public_key)
    did = "did:key:" + x25519
    unsigned_agent_credential["issuer"] = did
    signed = _sign(unsigned_agent_credential, org_key, vm=f"{did}#{x25519}")
    assert _reason(verify_credential, signed, resolve_key=did_key_resolver, now=NOW) == ("MALFORMED_KEY")


def test_agent_claims_are_typed(unsigned_agent_credential, org_key, resolver, agent_did):
    verified = verify_credential(_sign(unsigned_agent_credential, org_key), resolve_key=resolver, now=NOW)
    assert verified.agent is not None
    assert verified.agent.agent_did == agent_did
    assert verified.agent.scopes == frozenset({"patient:read", "lab:order"})
    assert verified.agent.trust_tier == 2 and verified.agent.role == "clinician"


def test_regression_rdfc_binds_rdf_not_json_types(unsigned_agent_credential, org_key, resolver):
    # "trustTier": "2" is the same RDF literal as 2 (the context coerces to xsd:integer),
    # so the eddsa-rdfc-2022 signature still verifies; the typed claims refuse it.
    signed = _sign(unsigned_agent_credential, org_key)
    signed["credentialSubject"]["trustTier"] = "2"
    with pytest.raises(VerificationError) as info:
        verify_credential(signed, resolve_key=resolver, now=NOW)
    assert info.value.reason == "MALFORMED_CREDENTIAL"
    assert info.value.metadata["field"] == "credentialSubject.trustTier"
    # Reordering a set is not a change of meaning: it verifies, and the claims are equal.
    reordered = _sign(unsigned_agent_credential, org_key)
    reordered["credentialSubject"]["scopes"].reverse()
    result = verify_credential(reordered, resolve_key=resolver, now=NOW)
    assert result.agent.scopes == frozenset({"patient:read", "lab:order"})


def test_non_agent_credentials_have_no_agent_claims(org_key, resolver, agent_did):
    plain = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "issuer": ORG_DID,
        "credentialSubject": {"id": agent_did},
    }
    assert verify_credential(_sign(plain, org_key), resolve_key=resolver, now=NOW).agent is None


def test_regression_issue_and_present_do_not_alias_the_input(
    unsigned_agent_credential, org_key, agent_key, agent_did
):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["credentialSubject"]["scopes"].append("mutated")
    assert unsigned_agent_credential["credentialSubject"]["scopes"] == ["patient:read", "lab:order"]
    vp = create_presentation(
        [signed],
        holder=agent_did,
        key=agent_key,
        verification_method=verification_method_id(agent_did),
        challenge="c",
        domain=VERIFIER_DID,
    )
    vp["verifiableCredential"][0]["credentialSubject"]["role"] = "x"
    assert signed["credentialSubject"]["role"] == "clinician"


def test_verification_cache_is_keyed_on_the_exact_document(org_key, resolver, agent_did):
    from credentials.proofs import _VERIFIED, clear_verification_cache

    clear_verification_cache()
    unsigned = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://www.w3.org/ns/credentials/examples/v2",
        ],
        "type": ["VerifiableCredential"],
        "issuer": ORG_DID,
        "credentialSubject": {"id": agent_did, "score": 2},
    }
    signed = _sign(unsigned, org_key)
    verify_credential(signed, resolve_key=resolver, now=NOW)
    assert len(_VERIFIED._entries) == 1
    verify_credential(copy.deepcopy(signed), resolve_key=resolver, now=NOW)  # a hit
    assert len(_VERIFIED._entries) == 1
    altered = copy.deepcopy(signed)
    altered["credentialSubject"]["score"] = 3
    assert _reason(verify_credential, altered, resolve_key=resolver, now=NOW) == ("INVALID_SIGNATURE")
    # 2.0 is another JSON document (a new cache entry) with the same RDF literal
    # ("2"^^xsd:integer, JSON-LD 1.1 API §8.6), so its signature genuinely verifies.
    altered["credentialSubject"]["score"] = 2.0
    verify_credential(altered, resolve_key=resolver, now=NOW)
    assert len(_VERIFIED._entries) == 2


def test_verification_cache_keeps_caller_checks(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    verify_credential(signed, resolve_key=resolver, now=NOW)
    # A remembered proof never bypasses the checks that depend on the caller.
    assert _reason(verify_credential, signed, resolve_key=resolver, now=NOW + timedelta(days=31)) == "EXPIRED"
    assert (
        _reason(
            verify_credential,
            signed,
            resolve_key=resolver,
            now=NOW,
            trusted_issuers={"did:web:x.accord.test"},
        )
        == "UNTRUSTED_ISSUER"
    )
    other = StaticKeyResolver({ORG_VM: Ed25519KeyPair.from_seed(bytes([3]) * 32).public_key})
    assert _reason(verify_credential, signed, resolve_key=other, now=NOW) == "INVALID_SIGNATURE"
