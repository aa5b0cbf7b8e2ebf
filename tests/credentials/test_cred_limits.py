"""Issue #10 class 2 (credential side): every input is bounded before JSON-LD processing.

pyld's duplicate-value check is quadratic in the number of values of one
property (measured on the code as it landed: 1 000 / 2 000 / 4 000 distinct
values took 2 / 5 / 23 s; 20 000, under 100 KB of JSON, minutes). These tests
count pyld's work instead of timing it: the bounds refuse a hostile document
before pyld compares a single value.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from pyld import jsonld

from credentials import (
    DEFAULT_LIMITS,
    CredentialError,
    DocumentLimits,
    canonicalize_rdfc,
    check_document_limits,
    create_presentation,
    did_key_resolver,
    issue_credential,
    load_json,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from credentials.limits import check_quad_count
from tests.credentials.cred_support import NOW, ORG_VM, VERIFIER_DID, sign_unchecked

EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"


@pytest.fixture()
def pyld_work(monkeypatch):
    """Counts pyld's value comparisons and RDF conversions (the real methods still run)."""
    counts = {"compare_values": 0, "to_rdf": 0}
    compare = jsonld.JsonLdProcessor.compare_values
    to_rdf = jsonld.JsonLdProcessor.to_rdf

    def counting_compare(v1, v2):
        counts["compare_values"] += 1
        return compare(v1, v2)

    def counting_to_rdf(self, *args, **kwargs):
        counts["to_rdf"] += 1
        return to_rdf(self, *args, **kwargs)

    monkeypatch.setattr(jsonld.JsonLdProcessor, "compare_values", staticmethod(counting_compare))
    monkeypatch.setattr(jsonld.JsonLdProcessor, "to_rdf", counting_to_rdf)
    return counts


def _tags_document(n: int) -> dict:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2", EXAMPLES],
        "id": "urn:x:1",
        "tags": [f"v{i}" for i in range(n)],
    }


def test_pyld_duplicate_check_is_quadratic_in_values_per_property(pyld_work):
    """Why the bound exists: doubling one property's values ~quadruples pyld's comparisons."""
    bound = DocumentLimits(max_array_length=10_000, max_nodes=10_000, max_quads=10_000)
    counts = []
    for n in (100, 200):
        from credentials import canonical

        pyld_work["compare_values"] = 0
        check_document_limits(_tags_document(n), limits=bound)
        dataset = canonical._SafeProcessor(canonical.default_loader().processed_cache).to_rdf(
            _tags_document(n),
            {"base": "", "documentLoader": canonical.default_loader(), "produceGeneralizedRdf": True},
        )
        assert sum(len(t) for t in dataset.values()) == n + 0  # one quad per value
        counts.append(pyld_work["compare_values"])
    assert counts[1] >= 3.5 * counts[0] > 0


def _hostile_presentation(agent_key, agent_did, signed_credential) -> dict:
    """A presentation (<100 KB) whose credential carries 15 000 distinct values for one property."""
    credential = copy.deepcopy(signed_credential)
    credential["@context"] = credential["@context"] + [EXAMPLES]
    credential["credentialSubject"]["tags"] = list(range(15_000))
    vp = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": agent_did,
        "verifiableCredential": [credential],
    }
    return vp


def test_hostile_presentation_is_refused_before_any_jsonld_work(
    pyld_work, unsigned_agent_credential, org_key, agent_key, agent_did
):
    import json

    signed = issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM)
    pyld_work["to_rdf"] = pyld_work["compare_values"] = 0
    vp = _hostile_presentation(agent_key, agent_did, signed)
    vp["proof"] = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "verificationMethod": verification_method_id(agent_did),
        "proofPurpose": "authentication",
        "challenge": "c",
        "domain": VERIFIER_DID,
        "proofValue": "z" + "1" * 86,
    }
    assert len(json.dumps(vp, separators=(",", ":"))) < 100_000
    with pytest.raises(CredentialError) as info:
        verify_presentation(vp, challenge="c", domain=VERIFIER_DID, resolve_key=did_key_resolver, now=NOW)
    assert info.value.reason == "DOCUMENT_TOO_COMPLEX"
    assert info.value.metadata["limit"] == "max_array_length"
    assert pyld_work == {"compare_values": 0, "to_rdf": 0}


def test_hostile_documents_are_refused_at_issue_too(pyld_work, unsigned_agent_credential, org_key):
    unsigned_agent_credential["@context"].append(EXAMPLES)
    unsigned_agent_credential["credentialSubject"]["tags"] = [str(i) for i in range(20_000)]
    for suite in ("eddsa-rdfc-2022", "eddsa-jcs-2022"):
        with pytest.raises(CredentialError) as info:
            issue_credential(
                unsigned_agent_credential, key=org_key, verification_method=ORG_VM, cryptosuite=suite
            )
        assert info.value.reason == "DOCUMENT_TOO_COMPLEX"
    with pytest.raises(CredentialError) as info:
        canonicalize_rdfc(_tags_document(20_000))  # the low-level entry point is bounded too
    assert info.value.reason == "DOCUMENT_TOO_COMPLEX"
    assert pyld_work["to_rdf"] == 0


@pytest.mark.parametrize(
    ("document", "limit"),
    [
        ({"a": list(range(DEFAULT_LIMITS.max_array_length + 1))}, "max_array_length"),
        ({"a": list(range(DEFAULT_LIMITS.max_array_length))}, None),
        ({f"k{i}": i for i in range(DEFAULT_LIMITS.max_object_keys + 1)}, "max_object_keys"),
        ({"a": "x" * (DEFAULT_LIMITS.max_string_chars + 1)}, "max_string_chars"),
        ({"a": [{"b": [{"c": list(range(200))} for _ in range(30)]}]}, "max_nodes"),
    ],
)
def test_each_bound_has_its_reason(document, limit):
    if limit is None:
        check_document_limits(document)  # within every bound
        return
    with pytest.raises(CredentialError) as info:
        check_document_limits(document)
    assert info.value.reason == "DOCUMENT_TOO_COMPLEX" and info.value.metadata["limit"] == limit


def test_size_and_depth_stay_document_too_large():
    deep: list = []
    for _ in range(DEFAULT_LIMITS.max_depth + 1):
        deep = [deep]
    for document in ({k: k * 60_000 for k in "abcde"}, deep):
        with pytest.raises(CredentialError) as info:
            check_document_limits(document, max_bytes=DEFAULT_LIMITS.max_bytes)
        assert info.value.reason == "DOCUMENT_TOO_LARGE"
    with pytest.raises(CredentialError) as info:
        load_json(b"[" * 100_000 + b"]" * 100_000)
    assert info.value.reason == "DOCUMENT_TOO_LARGE"


def test_quad_bound():
    check_quad_count(DEFAULT_LIMITS.max_quads)
    with pytest.raises(CredentialError) as info:
        check_quad_count(DEFAULT_LIMITS.max_quads + 1)
    assert info.value.reason == "DOCUMENT_TOO_COMPLEX" and info.value.metadata["limit"] == "max_quads"


def test_largest_legitimate_documents_fit(unsigned_agent_credential, org_key, agent_key, agent_did, resolver):
    """A status list credential (16 KiB list, random bits) and a 4-credential presentation verify."""
    import os

    from credentials import StatusList, status_list_credential

    bits = StatusList()
    for index in range(0, bits.length, 3):
        bits.set(index, os.urandom(1)[0] & 1 == 1)
    listed = issue_credential(
        status_list_credential(
            issuer="did:web:hospital.accord.test",
            credential_id="https://hospital.accord.test/status/1",
            purpose="revocation",
            status_list=bits,
            valid_from=NOW - timedelta(days=1),
        ),
        key=org_key,
        verification_method=ORG_VM,
    )
    verify_credential(listed, resolve_key=resolver, now=NOW)
    signed = []
    for i in range(4):
        unsigned_agent_credential["id"] = f"urn:uuid:00000000-0000-4000-8000-00000000000{i}"
        signed.append(issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM))
    vp = create_presentation(
        signed,
        holder=agent_did,
        key=agent_key,
        verification_method=verification_method_id(agent_did),
        challenge="c",
        domain=VERIFIER_DID,
    )
    from credentials import StaticKeyResolver

    both = StaticKeyResolver({ORG_VM: org_key.public_key}, fallback=did_key_resolver)
    assert (
        len(
            verify_presentation(vp, challenge="c", domain=VERIFIER_DID, resolve_key=both, now=NOW).credentials
        )
        == 4
    )


def test_delegated_presentation_is_bounded_before_pyld(pyld_work, agent_key, agent_did):
    from federation.delegation import verify_delegated_presentation

    vp = sign_unchecked(
        {
            "@context": ["https://www.w3.org/ns/credentials/v2", EXAMPLES],
            "type": ["VerifiablePresentation"],
            "holder": agent_did,
            "verifiableCredential": [{"tags": [str(i) for i in range(300)]}],
        },
        agent_key,
        verification_method_id(agent_did),
        "authentication",
        "eddsa-jcs-2022",
        challenge="c",
        domain=VERIFIER_DID,
    )
    with pytest.raises(CredentialError) as info:
        verify_delegated_presentation(
            vp,
            challenge="c",
            domain=VERIFIER_DID,
            resolve_key=did_key_resolver,
            now=NOW,
            status=None,
            requester_org="did:web:hospital.accord.test",
        )
    assert info.value.reason == "DOCUMENT_TOO_COMPLEX"
    assert pyld_work["to_rdf"] == 0
