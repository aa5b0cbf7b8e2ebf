"""The ``eddsa-jcs-2022`` cryptosuite: RFC 8785 JCS + Ed25519 (VC DI EdDSA §3.2)."""

from __future__ import annotations

from typing import Any

from credentials.canonical import canonicalize_jcs
from credentials.cryptosuites._common import check_options
from credentials.loader import DocumentLoader

NAME = "eddsa-jcs-2022"


def transform(document: dict[str, Any], *, loader: DocumentLoader | None = None) -> bytes:
    """Transform (§3.2.2): return the JCS serialization of the unsecured document.

    ``loader`` is accepted for a uniform signature and unused (no JSON-LD processing).

    Raises:
        MalformedCredentialError: the document cannot be JCS-canonicalized.

    """
    return canonicalize_jcs(document)


def configure(options: dict[str, Any], *, loader: DocumentLoader | None = None) -> bytes:
    """Proof configuration (§3.2.4): the JCS serialization of the proof options.

    Args:
        options: the proof without ``proofValue``; it includes the unsecured
            document's ``@context`` when the document has one.
        loader: unused (uniform signature).

    Raises:
        UnsupportedCryptosuiteError: type is not DataIntegrityProof or the suite differs.
        MalformedCredentialError: the options cannot be JCS-canonicalized.

    """
    check_options(options, NAME)
    return canonicalize_jcs(options)
