"""Shared constants and helpers of the credentials tests (a uniquely named module)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from credentials.cryptosuites import get_cryptosuite, hash_data
from credentials.keys import multibase_encode_base58btc
from credentials.proofs import format_datetime

VECTORS = Path(__file__).parent / "vectors" / "w3c-vc-di-eddsa"
RDFC = VECTORS / "eddsa-rdfc-2022"
JCS = VECTORS / "eddsa-jcs-2022"

ORG_DID = "did:web:hospital.accord.test"
ORG_VM = ORG_DID + "#key-1"
VERIFIER_DID = "did:web:lab.accord.test"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SUITES = ["eddsa-rdfc-2022", "eddsa-jcs-2022"]


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def sign_unchecked(document: dict, key, vm: str, purpose: str, suite: str, created=None, **opts) -> dict:
    """Sign like a Data Integrity implementation without Accord's profile checks (the attacker's tool)."""
    s = get_cryptosuite(suite)
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": suite,
        "created": format_datetime(created or NOW - timedelta(days=59)),
        "verificationMethod": vm,
        "proofPurpose": purpose,
        **opts,
    }
    options = dict(proof, **{"@context": document["@context"]})
    message = hash_data(s.configure(options), s.transform(copy.deepcopy(document)))
    signed_proof = dict(options if s.proof_has_context else proof)
    signed_proof["proofValue"] = multibase_encode_base58btc(key.sign(message))
    return dict(copy.deepcopy(document), proof=signed_proof)
