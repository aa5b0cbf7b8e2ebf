"""Steps shared by the EdDSA cryptosuites."""

from __future__ import annotations

import hashlib
from typing import Any

from credentials.errors import MalformedCredentialError, UnsupportedCryptosuiteError

PROOF_TYPE = "DataIntegrityProof"


def hash_data(canonical_proof_config: bytes, canonical_document: bytes) -> bytes:
    """Return SHA-256(proof config) || SHA-256(document), 64 bytes (VC DI EdDSA §3.2.3/§3.3.3)."""
    return hashlib.sha256(canonical_proof_config).digest() + hashlib.sha256(canonical_document).digest()


def check_options(options: Any, name: str) -> None:
    """Check the proof options' ``type`` and ``cryptosuite`` (VC DI EdDSA §3.x.4 step 2).

    Raises:
        MalformedCredentialError: options not an object.
        UnsupportedCryptosuiteError: wrong proof type or cryptosuite.

    """
    if not isinstance(options, dict):
        raise MalformedCredentialError("proof options must be a JSON object")
    if options.get("type") != PROOF_TYPE or options.get("cryptosuite") != name:
        raise UnsupportedCryptosuiteError(
            f"proof must have type {PROOF_TYPE!r} and cryptosuite {name!r}",
            metadata={
                "type": str(options.get("type"))[:100],
                "cryptosuite": str(options.get("cryptosuite"))[:100],
            },
        )
