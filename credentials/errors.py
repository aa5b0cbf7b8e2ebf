"""Typed errors of the ``credentials`` package.

Every error carries a stable ``reason`` code (UPPER_SNAKE_CASE, part of the
wire contract: the node maps it to a gRPC status and a
``google.rpc.ErrorInfo`` reason), says whose fault it is (``caller_fault``:
True when the input was bad, False when this package or a dependency it
relies on failed) and carries string evidence in ``metadata`` (identifiers,
expected/actual values; never secret key material). No gRPC here:
``federation`` translates.

Hierarchy::

    CredentialError
    ├── StatusListError             INVALID_STATUS_LIST
    └── VerificationError           VERIFICATION_FAILED  ("does not verify")
        ├── MalformedKeyError       MALFORMED_KEY
        ├── InvalidSignatureError   INVALID_SIGNATURE
        ├── UnknownKeyError         UNKNOWN_KEY
        ├── UnsupportedCryptosuiteError  UNSUPPORTED_CRYPTOSUITE
        ├── WrongProofPurposeError  WRONG_PROOF_PURPOSE
        ├── WrongChallengeError     WRONG_CHALLENGE
        ├── WrongDomainError        WRONG_DOMAIN
        ├── MalformedCredentialError MALFORMED_CREDENTIAL
        │   ├── DocumentTooLargeError DOCUMENT_TOO_LARGE
        │   │   └── DocumentTooComplexError DOCUMENT_TOO_COMPLEX
        │   ├── ContextNotAllowedError CONTEXT_NOT_ALLOWED
        │   ├── TermNotAllowedError  TERM_NOT_ALLOWED
        │   ├── UnknownContextError UNKNOWN_CONTEXT
        │   ├── UndefinedTermError  UNDEFINED_TERM
        │   └── RelativeIriError    RELATIVE_IRI
        ├── ExpiredError            EXPIRED
        ├── NotYetValidError        NOT_YET_VALID
        ├── RevokedError            REVOKED
        ├── SuspendedError          SUSPENDED
        ├── StatusUnavailableError  STATUS_UNAVAILABLE (caller_fault False)
        ├── UntrustedIssuerError    UNTRUSTED_ISSUER
        ├── HolderMismatchError     HOLDER_MISMATCH
        └── VerificationTimeoutError VERIFICATION_TIMEOUT (caller_fault False)

The JSON-LD errors (unknown context, undefined term, relative IRI, too large)
are raised both when issuing and when verifying: a document that cannot be
canonicalized safely would not verify, so it is refused before signing too.
Likewise ``MalformedKeyError`` is a ``VerificationError`` (a did:key with the
wrong multicodec makes a credential fail to verify) even when it is raised by
a key import such as ``Ed25519KeyPair.from_jwk``: one ``except
VerificationError`` covers every refusal of input.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ContextNotAllowedError",
    "CredentialError",
    "DocumentTooComplexError",
    "DocumentTooLargeError",
    "ExpiredError",
    "HolderMismatchError",
    "InvalidSignatureError",
    "MalformedCredentialError",
    "MalformedKeyError",
    "NotYetValidError",
    "RelativeIriError",
    "RevokedError",
    "StatusListError",
    "StatusUnavailableError",
    "SuspendedError",
    "TermNotAllowedError",
    "UndefinedTermError",
    "UnknownContextError",
    "UnknownKeyError",
    "UnsupportedCryptosuiteError",
    "UntrustedIssuerError",
    "VerificationError",
    "VerificationTimeoutError",
    "WrongChallengeError",
    "WrongDomainError",
    "WrongProofPurposeError",
]


class CredentialError(Exception):
    """Base class of every error raised by ``credentials``.

    Attributes:
        reason: stable reason code, e.g. ``"INVALID_SIGNATURE"``.
        caller_fault: True if the caller's input caused it, False if ours.
        metadata: string key/value evidence (never secret key material).

    """

    reason: str = "CREDENTIAL_ERROR"
    caller_fault: bool = True

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}

    @property
    def message(self) -> str:
        """The human-readable message (one line)."""
        return str(self.args[0]) if self.args else ""

    def diagnostics(self) -> str:
        """Return a one-paragraph explanation: reason, message and evidence."""
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.metadata.items()))
        return f"{self.reason}: {self.message}" + (f" ({extra})" if extra else "")


class StatusListError(CredentialError):
    """A Bitstring Status List is malformed or an index is out of range."""

    reason = "INVALID_STATUS_LIST"


class VerificationError(CredentialError):
    """A credential, presentation or proof does not verify."""

    reason = "VERIFICATION_FAILED"


class MalformedKeyError(VerificationError):
    """Key material (Multikey, multibase, JWK, did:key) cannot be decoded."""

    reason = "MALFORMED_KEY"


class InvalidSignatureError(VerificationError):
    """The Ed25519 signature does not match the key and the signed data."""

    reason = "INVALID_SIGNATURE"


class UnknownKeyError(VerificationError):
    """A verification method cannot be resolved to a public key."""

    reason = "UNKNOWN_KEY"


class UnsupportedCryptosuiteError(VerificationError):
    """The proof type or cryptosuite is not one this package implements."""

    reason = "UNSUPPORTED_CRYPTOSUITE"


class WrongProofPurposeError(VerificationError):
    """The proof's ``proofPurpose`` is not the one expected."""

    reason = "WRONG_PROOF_PURPOSE"


class WrongChallengeError(VerificationError):
    """A presentation proof's ``challenge`` differs from the verifier's."""

    reason = "WRONG_CHALLENGE"


class WrongDomainError(VerificationError):
    """A presentation proof's ``domain`` differs from the verifier's."""

    reason = "WRONG_DOMAIN"


class MalformedCredentialError(VerificationError):
    """The document is not a well-formed credential / presentation / proof."""

    reason = "MALFORMED_CREDENTIAL"


class DocumentTooLargeError(MalformedCredentialError):
    """The document exceeds the size (bytes) or JSON nesting-depth cap."""

    reason = "DOCUMENT_TOO_LARGE"


class DocumentTooComplexError(DocumentTooLargeError):
    """The document exceeds a structural bound (``credentials.limits.DocumentLimits``).

    Raised before any JSON-LD processing: too many JSON values, too many
    values for one property (array length), too long a string, too many keys
    in one object, or (after RDF conversion, before canonicalization) too many
    quads. ``metadata["limit"]`` names the bound, ``metadata["max"]`` its value.
    """

    reason = "DOCUMENT_TOO_COMPLEX"


class ContextNotAllowedError(MalformedCredentialError):
    """The ``@context`` is outside Accord's JSON-LD profile (``credentials.profile``).

    An inline context object, an ``@context`` anywhere but at the top of a
    credential, presentation or proof, a duplicate URL, a first context other
    than VC 2.0, or two contexts that both set ``@vocab``: each could give a
    JSON key another meaning than the one the verifier reads it with.
    """

    reason = "CONTEXT_NOT_ALLOWED"


class TermNotAllowedError(MalformedCredentialError):
    """A key or ``type`` value is spelled as a JSON-LD keyword, compact IRI or absolute IRI.

    Under Accord's JSON-LD profile (``credentials.profile``) every property is
    spelled as a plain term of the fixed contexts, so that reading a property
    by its JSON key reads what the signature covers.
    """

    reason = "TERM_NOT_ALLOWED"


class UnknownContextError(MalformedCredentialError):
    """A JSON-LD ``@context`` URL is not bundled (never fetched)."""

    reason = "UNKNOWN_CONTEXT"


class UndefinedTermError(MalformedCredentialError):
    """JSON-LD safe mode: a property or type is not defined by the contexts."""

    reason = "UNDEFINED_TERM"


class RelativeIriError(MalformedCredentialError):
    """JSON-LD safe mode: an ``@id``/``@type`` value is a relative IRI."""

    reason = "RELATIVE_IRI"


class ExpiredError(VerificationError):
    """``now`` is after the credential's ``validUntil``."""

    reason = "EXPIRED"


class NotYetValidError(VerificationError):
    """``now`` is before the credential's ``validFrom``."""

    reason = "NOT_YET_VALID"


class RevokedError(VerificationError):
    """The credential's revocation status bit is set."""

    reason = "REVOKED"


class SuspendedError(VerificationError):
    """The credential's suspension status bit is set."""

    reason = "SUSPENDED"


class StatusUnavailableError(VerificationError):
    """The status list credential could not be fetched or verified (fail closed)."""

    reason = "STATUS_UNAVAILABLE"
    caller_fault = False


class UntrustedIssuerError(VerificationError):
    """The issuer is not in the verifier's trusted set, or is not the key's controller."""

    reason = "UNTRUSTED_ISSUER"


class HolderMismatchError(VerificationError):
    """A presented credential's subject is not the presentation's holder."""

    reason = "HOLDER_MISMATCH"


class VerificationTimeoutError(VerificationError):
    """Verification did not finish within the verifier's deadline (``credentials.pool``).

    The worker doing it was terminated; the input is refused (fail closed).
    ``caller_fault`` is False: the input may be hostile, or the verifier overloaded.
    """

    reason = "VERIFICATION_TIMEOUT"
    caller_fault = False
