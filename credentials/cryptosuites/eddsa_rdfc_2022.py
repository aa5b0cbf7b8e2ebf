"""The ``eddsa-rdfc-2022`` cryptosuite: RDFC-1.0 canonicalization + Ed25519 (VC DI EdDSA §3.3)."""

from __future__ import annotations

from typing import Any

from credentials.canonical import canonicalize_rdfc
from credentials.cryptosuites._common import check_options
from credentials.errors import MalformedCredentialError
from credentials.loader import DocumentLoader

NAME = "eddsa-rdfc-2022"


def transform(document: dict[str, Any], *, loader: DocumentLoader | None = None) -> bytes:
    """Transform (§3.3.2): RDFC-1.0 canonical N-Quads of the unsecured document, UTF-8.

    Raises:
        UnknownContextError, UndefinedTermError, RelativeIriError,
        MalformedCredentialError, DocumentTooLargeError: JSON-LD processing failed.

    """
    return canonicalize_rdfc(document, loader=loader).encode("utf-8")


def configure(options: dict[str, Any], *, loader: DocumentLoader | None = None) -> bytes:
    """Proof configuration (§3.3.4): canonical N-Quads of the proof options, UTF-8.

    Args:
        options: the proof without ``proofValue``, with ``@context`` set to the
            unsecured document's ``@context``.
        loader: JSON-LD document loader (default: bundled contexts).

    Raises:
        UnsupportedCryptosuiteError: type is not DataIntegrityProof or the suite differs.
        MalformedCredentialError: no ``@context``, or JSON-LD processing failed.

    """
    check_options(options, NAME)
    if "@context" not in options:
        raise MalformedCredentialError("eddsa-rdfc-2022 proof configuration needs @context")
    return canonicalize_rdfc(options, loader=loader).encode("utf-8")
