"""Bad input: each refusal reason at verify time, caps, mutations and totality."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credentials import (
    CredentialError,
    DocumentTooLargeError,
    MalformedCredentialError,
    RelativeIriError,
    UndefinedTermError,
    UnknownContextError,
    create_presentation,
    issue_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from tests.credentials.cred_support import NOW, ORG_VM, SUITES, VERIFIER_DID

SUITE_PARAMS = pytest.mark.parametrize("suite", SUITES)


def _sign(credential, key, suite="eddsa-rdfc-2022"):
    return issue_credential(
        credential,
        key=key,
        verification_method=ORG_VM,
        cryptosuite=suite,
        created=NOW - timedelta(hours=1),
    )


def _reason(credential, resolver) -> str:
    with pytest.raises(CredentialError) as info:
        verify_credential(credential, resolve_key=resolver, now=NOW)
    return info.value.reason


# ------------------------------------------------------------------ issue-time refusals


def test_issue_refuses_undefined_term(unsigned_agent_credential, org_key):
    unsigned_agent_credential["credentialSubject"]["clearance"] = "top-secret"
    with pytest.raises(UndefinedTermError):
        _sign(unsigned_agent_credential, org_key)


def test_issue_refuses_relative_iri(unsigned_agent_credential, org_key):
    unsigned_agent_credential["id"] = "credentials/17"
    with pytest.raises(RelativeIriError):
        _sign(unsigned_agent_credential, org_key)


def test_issue_refuses_unknown_context(unsigned_agent_credential, org_key):
    unsigned_agent_credential["@context"].append("https://schema.org/")
    with pytest.raises(UnknownContextError):
        _sign(unsigned_agent_credential, org_key)


def test_issue_refuses_vc_v1_and_missing_context(unsigned_agent_credential, org_key):
    v1 = copy.deepcopy(unsigned_agent_credential)
    v1["@context"][0] = "https://www.w3.org/2018/credentials/v1"
    with pytest.raises(MalformedCredentialError):
        _sign(v1, org_key)
    del unsigned_agent_credential["@context"]
    with pytest.raises(MalformedCredentialError):
        _sign(unsigned_agent_credential, org_key)


def test_issue_refuses_existing_proof(unsigned_agent_credential, org_key):
    with pytest.raises(MalformedCredentialError):
        _sign(_sign(unsigned_agent_credential, org_key), org_key)


def test_issue_warns_on_jsonld_number_divergence(unsigned_agent_credential, org_key):
    from credentials import InteropWarning

    # the examples context sets @vocab, so "weight" is a defined (vocab-mapped) term
    unsigned_agent_credential["@context"].append("https://www.w3.org/ns/credentials/examples/v2")
    unsigned_agent_credential["credentialSubject"]["weight"] = 1e-7
    with pytest.warns(InteropWarning, match="1e-07") as caught:
        signed = _sign(unsigned_agent_credential, org_key)
    # a warning, not a refusal: the credential is issued, with the value as given
    assert signed["credentialSubject"]["weight"] == 1e-7
    assert signed["proof"]["proofValue"]
    assert any(issubclass(w.category, InteropWarning) for w in caught)


# ------------------------------------------------------------------ verify-time refusals


def test_verify_undefined_term_added_after_signing(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["credentialSubject"]["extra"] = "not signed"
    assert _reason(signed, resolver) == "UNDEFINED_TERM"


def test_verify_relative_iri(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["credentialSubject"]["id"] = "agents/7"
    assert _reason(signed, resolver) == "RELATIVE_IRI"


def test_verify_unknown_context(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    signed["@context"][1] = "https://w3id.org/accord/credentials/v2"
    assert _reason(signed, resolver) == "UNKNOWN_CONTEXT"


@SUITE_PARAMS
def test_verify_missing_context(suite, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    del signed["@context"]
    assert _reason(signed, resolver) == "CONTEXT_NOT_ALLOWED"  # a MalformedCredentialError


@SUITE_PARAMS
def test_verify_oversized(suite, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    signed["credentialSubject"]["name"] = "x" * (256 * 1024)
    assert _reason(signed, resolver) == "DOCUMENT_TOO_LARGE"


@SUITE_PARAMS
def test_verify_deeply_nested(suite, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    nested: dict = {}
    for _ in range(200):
        nested = {"a": nested}
    signed["credentialSubject"]["role"] = nested
    assert _reason(signed, resolver) == "DOCUMENT_TOO_LARGE"


def test_verify_malformed_dates(unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    for bad in ("2026-13-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00", 5):
        mutated = copy.deepcopy(signed)
        mutated["validUntil"] = bad
        assert _reason(mutated, resolver) == "MALFORMED_CREDENTIAL"


def test_verify_presentation_without_credentials(agent_key, agent_did, resolver):
    with pytest.raises(MalformedCredentialError):
        create_presentation(
            [],
            holder=agent_did,
            key=agent_key,
            verification_method=verification_method_id(agent_did),
            challenge="c",
            domain=VERIFIER_DID,
        )


def test_verify_presentation_oversized(unsigned_agent_credential, org_key, agent_key, agent_did, resolver):
    signed = _sign(unsigned_agent_credential, org_key)
    vp = create_presentation(
        [signed],
        holder=agent_did,
        key=agent_key,
        verification_method=verification_method_id(agent_did),
        challenge="c",
        domain=VERIFIER_DID,
        created=NOW,
    )
    vp["verifiableCredential"] = [signed] * 200
    with pytest.raises(DocumentTooLargeError):
        verify_presentation(vp, challenge="c", domain=VERIFIER_DID, resolve_key=resolver, now=NOW)


# ------------------------------------------------------------------ mutations never verify


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _mutate(document, path, kind):
    doc = copy.deepcopy(document)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    value = parent[key]
    if kind == "delete":
        if isinstance(parent, list) and len(parent) == 1:
            return None  # ["x"] -> [] vs "x": covered by other mutations
        del parent[key]
    elif kind == "add" and isinstance(value, dict):
        value["zz"] = "added"
    elif kind == "change" and isinstance(value, str):
        parent[key] = value + "x" if value else "x"
    elif kind == "change" and isinstance(value, int) and not isinstance(value, bool):
        parent[key] = value + 1
    else:
        return None
    return doc


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_mutations_never_verify(suite, data, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    paths = [p for p in _paths(signed) if p]
    path = data.draw(st.sampled_from(paths))
    kind = data.draw(st.sampled_from(["delete", "add", "change"]))
    if suite == "eddsa-jcs-2022" and path == ("proof", "@context") and kind == "delete":
        # Not a mutation of signed content: VC DI EdDSA §3.3.5 (JCS proof configuration)
        # copies the document's @context into the proof configuration when the proof has none.
        return
    mutated = _mutate(signed, path, kind)
    if mutated is None or mutated == signed:
        return
    with pytest.raises(CredentialError):
        verify_credential(mutated, resolve_key=resolver, now=NOW)


# ------------------------------------------------------------------ totality

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "@context",
                    "type",
                    "id",
                    "issuer",
                    "credentialSubject",
                    "proof",
                    "validFrom",
                    "@id",
                    "@type",
                    "@value",
                    "@list",
                    "@graph",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    value=st.one_of(
        _json,
        st.fixed_dictionaries(
            {
                "@context": st.just(["https://www.w3.org/ns/credentials/v2"]),
                "type": st.just(["VerifiableCredential"]),
                "issuer": st.just("did:web:a.test"),
                "credentialSubject": _json,
                "proof": _json,
            },
            optional={"id": _json, "validFrom": _json, "extra": _json},
        ),
    )
)
def test_any_json_verifies_or_raises_a_credential_error(value, resolver):
    try:
        verify_credential(value, resolve_key=resolver, now=NOW)
    except CredentialError:
        pass
    else:  # pragma: no cover - nothing random carries a valid signature
        pytest.fail("random input verified")


def test_interop_warnings_only_for_js_integer_lookalikes():
    from credentials import interop_warnings

    assert len(interop_warnings({"a": 1e-7, "b": [5e-10]})) == 2
    assert interop_warnings({"a": 2.0, "b": 1e21, "c": 1.5e-7, "d": 0.5, "e": 3}) == []
    assert len(interop_warnings({"s": "\U0001f600 \ue000"})) == 1


@SUITE_PARAMS
def test_unknown_context_refused_for_both_suites(suite, unsigned_agent_credential, org_key, resolver):
    signed = _sign(unsigned_agent_credential, org_key, suite)
    signed["@context"].append("https://example.com/other-context")
    assert _reason(signed, resolver) == "UNKNOWN_CONTEXT"


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_load_json_is_total(raw):
    from credentials import load_json

    try:
        load_json(raw)
    except CredentialError as exc:
        assert exc.reason in {"MALFORMED_CREDENTIAL", "DOCUMENT_TOO_LARGE"}
