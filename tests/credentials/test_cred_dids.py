from __future__ import annotations

import pytest

from credentials import (
    DidDocumentResolver,
    Ed25519KeyPair,
    MalformedKeyError,
    StaticKeyResolver,
    UnknownKeyError,
    did_key_from_public_key,
    did_key_resolver,
    did_web_document,
    resolve_did_key,
    verification_method_id,
)
from credentials.keys import multibase_encode_base58btc
from tests.credentials.cred_support import RDFC, load

W3C_DID = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_did_key_of_w3c_key():
    pair = load(RDFC / "keyPair.json")
    key = Ed25519KeyPair.from_multibase(pair["privateKeyMultibase"])
    assert did_key_from_public_key(key.public_key) == W3C_DID
    vm = verification_method_id(W3C_DID)
    assert vm == W3C_DID + "#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    assert did_key_resolver(vm) == key.public_key


def test_resolve_did_key_document_shape():
    doc = resolve_did_key(W3C_DID)
    vm_id = verification_method_id(W3C_DID)
    assert doc["id"] == W3C_DID
    assert doc["verificationMethod"] == [
        {
            "id": vm_id,
            "type": "Multikey",
            "controller": W3C_DID,
            "publicKeyMultibase": W3C_DID[len("did:key:") :],
        }
    ]
    for rel in (
        "authentication",
        "assertionMethod",
        "capabilityInvocation",
        "capabilityDelegation",
    ):
        assert doc[rel] == [vm_id]


@pytest.mark.parametrize(
    "vm",
    [
        "did:web:example.com#key-1",
        W3C_DID + "#other",
        W3C_DID,  # no fragment
        # P-256 did:key, fragment mismatch
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme#zQ3s",
    ],
)
def test_did_key_resolver_unknown(vm):
    with pytest.raises(UnknownKeyError):
        did_key_resolver(vm)


def test_did_key_with_wrong_multicodec_is_malformed_key():
    p256 = "zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"
    with pytest.raises(MalformedKeyError):
        did_key_resolver(f"did:key:{p256}#{p256}")
    x = multibase_encode_base58btc(b"\xec\x01" + bytes(32))  # x25519-pub
    with pytest.raises(MalformedKeyError) as info:
        resolve_did_key("did:key:" + x)
    assert info.value.metadata == {"expected": "ed01", "actual": "ec01"}


def test_static_resolver_mapping_and_fallback():
    key = Ed25519KeyPair.from_seed(bytes(32))
    resolver = StaticKeyResolver({"did:web:a.accord.test#key-1": key.public_key})
    assert resolver("did:web:a.accord.test#key-1") == key.public_key
    assert resolver(verification_method_id(W3C_DID)) == did_key_resolver(verification_method_id(W3C_DID))
    strict = StaticKeyResolver({}, fallback=None)
    with pytest.raises(UnknownKeyError):
        strict(verification_method_id(W3C_DID))
    with pytest.raises(MalformedKeyError):
        StaticKeyResolver({"x#1": b"short"})


def test_did_web_document_and_resolver():
    key = Ed25519KeyPair.from_seed(bytes(range(32)))
    doc = did_web_document("did:web:hospital.accord.test", key.public_key)
    assert doc["assertionMethod"] == ["did:web:hospital.accord.test#key-1"]
    resolver = DidDocumentResolver({"did:web:hospital.accord.test": doc})
    assert resolver("did:web:hospital.accord.test#key-1") == key.public_key
    with pytest.raises(UnknownKeyError):
        resolver("did:web:hospital.accord.test#key-2")
    with pytest.raises(UnknownKeyError):
        resolver(verification_method_id(W3C_DID))  # no fallback by default


def test_did_document_resolver_relative_ids_jwk_and_foreign_controller():
    key = Ed25519KeyPair.from_seed(bytes(range(32)))
    other = Ed25519KeyPair.from_seed(bytes(range(1, 33)))
    did = "did:web:lab.accord.test%3A8443:org"
    doc = {
        "id": did,
        "verificationMethod": [
            {"id": "#k1", "type": "JsonWebKey", "controller": did, "publicKeyJwk": key.to_jwk()},
            {
                "id": did + "#evil",
                "type": "Multikey",
                "controller": "did:web:evil.test",
                "publicKeyMultibase": other.public_key_multibase,
            },
        ],
    }
    resolver = DidDocumentResolver({did: doc})
    assert resolver(did + "#k1") == key.public_key
    with pytest.raises(UnknownKeyError):
        resolver(did + "#evil")


@pytest.mark.parametrize(
    "documents",
    [
        {"did:web:a.test": {"id": "did:web:b.test"}},
        {
            "did:web:a.test": {
                "id": "did:web:a.test",
                "verificationMethod": [{"id": "#k", "type": "Foo"}],
            }
        },
        {
            "did:web:a.test": {
                "id": "did:web:a.test",
                "verificationMethod": [{"id": "#k", "type": "Multikey", "publicKeyMultibase": "z1"}],
            }
        },
    ],
)
def test_did_document_resolver_refuses_malformed(documents):
    with pytest.raises(MalformedKeyError):
        DidDocumentResolver(documents)


@pytest.mark.parametrize("did", ["did:web:", "did:key:z6Mk", "did:web:exa mple.com", "https://a.test"])
def test_did_web_document_refuses_bad_did(did):
    with pytest.raises(UnknownKeyError):
        did_web_document(did, bytes(32))
