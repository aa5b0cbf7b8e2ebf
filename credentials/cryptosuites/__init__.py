"""Data Integrity cryptosuites: ``eddsa-rdfc-2022`` and ``eddsa-jcs-2022`` (VC DI EdDSA §3).

Each cryptosuite module exposes the algorithm steps under their spec names so
that every intermediate value can be checked against the W3C test vectors:
``transform`` (canonical unsecured document, bytes), ``configure`` (canonical
proof configuration, bytes) and, shared, ``hash_data`` (the 64-byte message
that Ed25519 signs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from credentials.cryptosuites import eddsa_jcs_2022, eddsa_rdfc_2022
from credentials.cryptosuites._common import hash_data
from credentials.errors import UnsupportedCryptosuiteError
from credentials.loader import DocumentLoader

__all__ = ["CRYPTOSUITES", "Cryptosuite", "get_cryptosuite", "hash_data"]


class _Step(Protocol):
    def __call__(self, document: dict[str, Any], *, loader: DocumentLoader | None = None) -> bytes: ...


@dataclass(frozen=True)
class Cryptosuite:
    """One Data Integrity cryptosuite (proof type ``DataIntegrityProof``).

    Attributes:
        name: the ``cryptosuite`` value, e.g. ``"eddsa-rdfc-2022"``.
        transform: unsecured document -> canonical bytes (VC DI EdDSA §3.x.2).
        configure: proof options (with ``@context`` where the suite needs it) ->
            canonical proof configuration bytes (§3.x.4).
        proof_has_context: whether the created proof carries ``@context``
            (True for eddsa-jcs-2022, whose proof configuration includes it).

    """

    name: str
    transform: _Step
    configure: _Step
    proof_has_context: bool


CRYPTOSUITES: dict[str, Cryptosuite] = {
    eddsa_rdfc_2022.NAME: Cryptosuite(
        eddsa_rdfc_2022.NAME, eddsa_rdfc_2022.transform, eddsa_rdfc_2022.configure, False
    ),
    eddsa_jcs_2022.NAME: Cryptosuite(
        eddsa_jcs_2022.NAME, eddsa_jcs_2022.transform, eddsa_jcs_2022.configure, True
    ),
}


def get_cryptosuite(name: Any) -> Cryptosuite:
    """Return the cryptosuite called ``name``.

    Raises:
        UnsupportedCryptosuiteError: not ``eddsa-rdfc-2022`` nor ``eddsa-jcs-2022``.

    """
    suite = CRYPTOSUITES.get(name) if isinstance(name, str) else None
    if suite is None:
        raise UnsupportedCryptosuiteError(
            f"unsupported cryptosuite {str(name)[:100]!r}",
            metadata={"cryptosuite": str(name)[:100], "supported": ",".join(CRYPTOSUITES)},
        )
    return suite
