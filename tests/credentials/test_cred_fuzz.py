"""Property and fuzz tests: hostile presentations and credentials (issue #10 classes 1 and 2).

For any mutation of a signed presentation, or any generated credential:
verification never crashes (only a ``CredentialError`` with a stable reason),
stays within a per-input time bound (hypothesis ``deadline``), and whatever
does verify reads, by JSON key, exactly what was signed.
"""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credentials import (
    CredentialError,
    StaticKeyResolver,
    create_presentation,
    did_key_resolver,
    issue_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from tests.credentials.cred_support import NOW, ORG_DID, ORG_VM, SUITES, VERIFIER_DID

REASON = re.compile(r"^[A-Z][A-Z0-9_]+$")
# Per input: generous for a loaded 2-core machine, far below pyld's quadratic blow-up (minutes).
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

KEYS = [
    "@context",
    "@id",
    "@type",
    "@value",
    "@graph",
    "@nest",
    "@included",
    "@reverse",
    "id",
    "type",
    "validUntil",
    "validFrom",
    "credentialStatus",
    "issuer",
    "holder",
    "credentialSubject",
    "verifiableCredential",
    "proof",
    "expiry",
    "https://www.w3.org/2018/credentials#validUntil",
    "cred:validUntil",
    "_:b0",
    "x",
]
INLINE_CONTEXT = {"expiry": {"@id": "https://www.w3.org/2018/credentials#validUntil"}}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=16)
    | st.sampled_from(
        [
            "https://www.w3.org/ns/credentials/v2",
            "https://w3id.org/accord/credentials/v1",
            "2099-01-01T00:00:00Z",
            "did:key:z6MkhFwXNFWosLeugvSf4wcL9t3uuRXueGSFTRgSvHhWj5G2",
            "VerifiableCredential",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4)
        | st.just(INLINE_CONTEXT)
    ),
    max_leaves=20,
)
big_arrays = st.builds(
    lambda n, s: [f"{s}{i}" for i in range(n)], st.integers(200, 3000), st.text(max_size=3)
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(doc: dict, data: st.DataObject) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        kind = data.draw(st.sampled_from(["set", "add", "delete", "wrap", "big", "rename", "context"]))
        target = parent[path[-1]] if path else doc
        if kind == "set" and path:
            parent[path[-1]] = data.draw(json_values)
        elif kind == "add" and isinstance(target, dict):
            target[data.draw(st.sampled_from(KEYS))] = data.draw(json_values)
        elif kind == "delete" and path and isinstance(parent, dict):
            del parent[path[-1]]
        elif kind == "wrap" and path:
            parent[path[-1]] = [target]
        elif kind == "big" and isinstance(target, dict):
            target[data.draw(st.sampled_from(KEYS))] = data.draw(big_arrays)
        elif kind == "rename" and path and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS))] = parent.pop(path[-1])
        elif kind == "context" and isinstance(target, dict):
            context = target.get("@context")
            target["@context"] = (context if isinstance(context, list) else [context]) + [
                copy.deepcopy(INLINE_CONTEXT)
            ]
    return doc


@pytest.fixture(scope="module")
def resolve(org_key):
    return StaticKeyResolver({ORG_VM: org_key.public_key}, fallback=did_key_resolver)


@pytest.fixture(scope="module")
def presentations(org_key, agent_key, agent_did):
    from credentials import agent_credential

    unsigned = agent_credential(
        issuer=ORG_DID,
        agent_did=agent_did,
        organization=ORG_DID,
        name="triage-agent",
        role="clinician",
        scopes=["patient:read"],
        trust_tier=2,
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=30),
        credential_id="urn:uuid:6f1c2a4e-1b7d-4a63-9a54-1f0b5d7f2c12",
    )
    out = {}
    for suite in SUITES:
        signed = issue_credential(unsigned, key=org_key, verification_method=ORG_VM, cryptosuite=suite)
        out[suite] = create_presentation(
            [signed],
            holder=agent_did,
            key=agent_key,
            verification_method=verification_method_id(agent_did),
            challenge="c-1",
            domain=VERIFIER_DID,
            cryptosuite=suite,
        )
    return out


@pytest.mark.parametrize("suite", SUITES)
@FUZZ
@given(data=st.data())
def test_mutated_presentations_refuse_with_a_reason_or_read_what_was_signed(
    suite, data, presentations, resolve
):
    original = presentations[suite]
    mutated = _mutate(original, data)
    try:
        result = verify_presentation(
            mutated, challenge="c-1", domain=VERIFIER_DID, resolve_key=resolve, now=NOW
        )
    except CredentialError as exc:
        assert REASON.match(exc.reason), exc.reason
        return
    # it verified: the JSON reading is the signed one (class 1)
    signed_vc = original["verifiableCredential"][0]
    vc = result.credentials[0]
    assert result.holder == original["holder"]
    assert (vc.issuer, vc.subject_id, vc.id) == (
        signed_vc["issuer"],
        signed_vc["credentialSubject"]["id"],
        signed_vc["id"],
    )
    assert vc.valid_until is not None and vc.valid_until.isoformat().startswith(signed_vc["validUntil"][:19])
    assert vc.agent is not None and vc.agent.scopes == frozenset(signed_vc["credentialSubject"]["scopes"])


credential_shapes = st.fixed_dictionaries(
    {
        "@context": st.sampled_from(
            [
                ["https://www.w3.org/ns/credentials/v2"],
                ["https://www.w3.org/ns/credentials/v2", "https://w3id.org/accord/credentials/v1"],
                ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"],
                ["https://www.w3.org/ns/credentials/v2", INLINE_CONTEXT],
            ]
        ).map(copy.deepcopy),
        "type": st.just(["VerifiableCredential"]),
        "issuer": st.just(ORG_DID),
        "credentialSubject": st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4).map(
            lambda d: {**d, "id": "did:example:subject"}
        ),
    },
    optional={
        "validUntil": st.sampled_from(["2099-01-01T00:00:00Z", "2020-01-01T00:00:00Z", 5, None]),
        "expiry": st.just("2020-01-01T00:00:00Z"),
        "x": json_values,
        "@id": st.just("urn:x:1"),
    },
)


@pytest.mark.parametrize("suite", SUITES)
@FUZZ
@given(doc=credential_shapes)
def test_generated_credentials_issue_and_verify_consistently(suite, doc, org_key, resolve):
    try:
        signed = issue_credential(doc, key=org_key, verification_method=ORG_VM, cryptosuite=suite)
    except CredentialError as exc:
        assert REASON.match(exc.reason), exc.reason
        return
    try:
        result = verify_credential(signed, resolve_key=resolve, now=NOW)
    except CredentialError as exc:
        assert exc.reason in {"EXPIRED", "MALFORMED_CREDENTIAL"}, exc.reason
        return
    assert result.issuer == ORG_DID
    assert ("validUntil" in doc) == (result.valid_until is not None)
    assert "expiry" not in doc or not any(isinstance(c, dict) for c in doc["@context"])
