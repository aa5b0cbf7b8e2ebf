"""W3C vc-di-eddsa test vectors: every intermediate value, byte for byte."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from credentials import (
    Ed25519KeyPair,
    add_proof,
    did_key_resolver,
    verify_ed25519,
    verify_proof,
)
from credentials.cryptosuites import eddsa_jcs_2022, eddsa_rdfc_2022, hash_data
from credentials.keys import multibase_decode
from tests.credentials.cred_support import JCS, RDFC, load

CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)

# (folder, unsigned document, file suffix, cryptosuite module)
CASES = [
    pytest.param(RDFC, RDFC / "unsigned.json", "DataInt", eddsa_rdfc_2022, id="rdfc-alumni"),
    pytest.param(
        RDFC / "employ",
        RDFC / "employ" / "employmentAuth.json",
        "DataInt",
        eddsa_rdfc_2022,
        id="rdfc-employ",
    ),
    pytest.param(JCS, RDFC / "unsigned.json", "JCS", eddsa_jcs_2022, id="jcs-alumni"),
]


def _text(path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def key() -> Ed25519KeyPair:
    pair = load(RDFC / "keyPair.json")
    key = Ed25519KeyPair.from_multibase(pair["privateKeyMultibase"])
    assert key.public_key_multibase == pair["publicKeyMultibase"]
    return key


@pytest.mark.parametrize(("folder", "unsigned", "sfx", "suite"), CASES)
def test_canonical_document_and_hash(folder, unsigned, sfx, suite):
    canonical = suite.transform(load(unsigned))
    assert canonical == (folder / f"canonDoc{sfx}.txt").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == _text(folder / f"docHash{sfx}.txt").strip()


@pytest.mark.parametrize(("folder", "unsigned", "sfx", "suite"), CASES)
def test_canonical_proof_config_and_hash(folder, unsigned, sfx, suite):
    canonical = suite.configure(load(folder / f"proofConfig{sfx}.json"))
    assert canonical == (folder / f"proofCanon{sfx}.txt").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == _text(folder / f"proofHash{sfx}.txt").strip()


@pytest.mark.parametrize(("folder", "unsigned", "sfx", "suite"), CASES)
def test_combined_hash_and_signature(folder, unsigned, sfx, suite, key):
    combined = hash_data(
        suite.configure(load(folder / f"proofConfig{sfx}.json")),
        suite.transform(load(unsigned)),
    )
    assert combined.hex() == _text(folder / f"combinedHash{sfx}.txt").strip()
    signature = key.sign(combined)
    assert signature.hex() == _text(folder / f"sigHex{sfx}.txt").strip()
    proof_value = _text(folder / f"sigBTC58{sfx}.txt").strip()
    assert multibase_decode(proof_value) == signature
    verify_ed25519(key.public_key, signature, combined)


@pytest.mark.parametrize(("folder", "unsigned", "sfx", "suite"), CASES)
def test_signing_reproduces_signed_document(folder, unsigned, sfx, suite, key):
    signed_name = "signedJCS.json" if sfx == "JCS" else "signedDataInt.json"
    expected = load(folder / signed_name)
    config = load(folder / f"proofConfig{sfx}.json")
    signed = add_proof(
        load(unsigned),
        key=key,
        verification_method=config["verificationMethod"],
        proof_purpose="assertionMethod",
        cryptosuite=suite.NAME,
        created=CREATED,
    )
    assert signed == expected


@pytest.mark.parametrize(("folder", "unsigned", "sfx", "suite"), CASES)
def test_signed_vector_verifies_as_data_integrity_proof(folder, unsigned, sfx, suite):
    signed_name = "signedJCS.json" if sfx == "JCS" else "signedDataInt.json"
    result = verify_proof(
        load(folder / signed_name), resolve_key=did_key_resolver, expected_purpose="assertionMethod"
    )
    assert result.cryptosuite == suite.NAME
    assert result.created == CREATED
    assert result.proof_value == _text(folder / f"sigBTC58{sfx}.txt").strip()
