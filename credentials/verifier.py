"""Issue and verify credentials and presentations (VC Data Model 2.0 + Data Integrity).

Verification of a credential (``verify_credential``), in order:

1. size and structure bounds, ``credentials.limits`` (``DOCUMENT_TOO_LARGE``,
   ``DOCUMENT_TOO_COMPLEX``), before any JSON-LD processing;
2. Accord's JSON-LD profile, ``credentials.profile`` (``CONTEXT_NOT_ALLOWED``,
   ``TERM_NOT_ALLOWED``, ``UNKNOWN_CONTEXT``; both cryptosuites): ``@context``
   is an array of bundled URLs starting with ``https://www.w3.org/ns/credentials/v2``,
   no inline or embedded context, every key a plain term: what is read below by
   JSON key is what the signature covers;
   VC 2.0 shape (§4):
   ``type`` contains ``VerifiableCredential``, an ``issuer`` (URL or object
   with ``id``), a ``credentialSubject`` object;
3. the Data Integrity proof, ``proofPurpose`` ``assertionMethod``;
4. the issuer is the controller of the proof's verification method (the
   part of its DID URL before ``#``) and, if given, in ``trusted_issuers``;
5. for an ``AgentCredential``, the claims' JSON types (``AgentClaims``);
   then the validity period (§4.9) against ``now``;
6. the status (§4.10), if a ``StatusChecker`` is given.

A presentation (``verify_presentation``) has ``type``
``VerifiablePresentation``, a ``holder``, a proof with ``proofPurpose``
``authentication`` whose ``challenge`` and ``domain`` equal the verifier's
and whose key is controlled by the holder, and at least one credential, each
verified as above and each about the holder (``credentialSubject.id``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from credentials.dids import KeyResolver
from credentials.errors import (
    ContextNotAllowedError,
    ExpiredError,
    HolderMismatchError,
    MalformedCredentialError,
    NotYetValidError,
    UntrustedIssuerError,
)
from credentials.interop import InteropWarning, interop_warnings
from credentials.keys import Ed25519KeyPair
from credentials.limits import check_document_limits
from credentials.loader import VC_V2_CONTEXT_URL, DocumentLoader
from credentials.model import (
    AGENT_CREDENTIAL_TYPE,
    AgentClaims,
    VerifiedCredential,
    VerifiedPresentation,
)
from credentials.profile import check_profile
from credentials.proofs import ProofResult, add_proof, format_datetime, parse_datetime, verify_proof

__all__ = [
    "PresentationProof",
    "StatusChecker",
    "create_presentation",
    "issue_credential",
    "verify_credential",
    "verify_presentation",
    "verify_presentation_proof",
]

_ASSERTION = "assertionMethod"
_AUTHENTICATION = "authentication"


@runtime_checkable
class StatusChecker(Protocol):
    """Checks a credential's ``credentialStatus`` (Bitstring Status List v1.0 §3.2)."""

    def check(self, credential: dict[str, Any], *, now: datetime) -> None:
        """Return if the credential is neither revoked nor suspended at ``now``.

        Raises:
            RevokedError: the revocation bit is set.
            SuspendedError: the suspension bit is set.
            StatusUnavailableError: the status list could not be obtained or verified.
            MalformedCredentialError: the status entry is malformed.

        """
        ...


def _check_base(document: Any, required_type: str, loader: DocumentLoader | None) -> None:
    if not isinstance(document, dict):
        raise MalformedCredentialError(f"a {required_type} must be a JSON object")
    check_document_limits(document)
    if "@context" not in document:
        raise ContextNotAllowedError(
            f"the first @context must be {VC_V2_CONTEXT_URL!r}", metadata={"expected": VC_V2_CONTEXT_URL}
        )
    # One spelling per meaning (credentials.profile): every property read below by its JSON
    # key is then what the signature covers, whatever the cryptosuite.
    check_profile(document, loader=loader)
    types = document.get("type")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or required_type not in types:
        raise MalformedCredentialError(
            f"type must include {required_type!r}", metadata={"actual": str(types)[:200]}
        )
    if not all(isinstance(t, str) for t in types):
        raise MalformedCredentialError("type values must be strings")


def _issuer_id(credential: dict[str, Any]) -> str:
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise MalformedCredentialError("issuer must be a URL or an object with an id")
    return issuer


def _subjects(credential: dict[str, Any]) -> list[dict[str, Any]]:
    subject = credential.get("credentialSubject")
    subjects = subject if isinstance(subject, list) else [subject]
    if not subjects or not all(isinstance(s, dict) and s for s in subjects):
        raise MalformedCredentialError("credentialSubject must be a non-empty object")
    return subjects


def issue_credential(
    credential: Mapping[str, Any],
    *,
    key: Ed25519KeyPair,
    verification_method: str,
    cryptosuite: str = "eddsa-rdfc-2022",
    created: datetime | None = None,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """Sign a credential: add a ``DataIntegrityProof`` with ``proofPurpose`` ``assertionMethod``.

    Args:
        credential: the unsigned VC 2.0 credential (not modified).
        key: the issuer's signing key.
        verification_method: DID URL of ``key`` (its DID should be the ``issuer``;
            verifiers require it).
        cryptosuite: ``"eddsa-rdfc-2022"`` (default) or ``"eddsa-jcs-2022"``.
        created: proof creation time (aware); default: now (seconds precision).
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The signed credential (a new dict).

    Warns:
        InteropWarning: values that the JS reference canonicalizes differently
            (e.g. ``1e-7``, whole-number floats); see ``docs/credentials.md``.

    Raises:
        MalformedCredentialError: not a VC 2.0 credential, or it already has a proof.
        DocumentTooLargeError: beyond the size/nesting caps.
        UnknownContextError, UndefinedTermError, RelativeIriError: JSON-LD safe mode.
        UnsupportedCryptosuiteError: unknown ``cryptosuite``.

    """
    _check_base(credential, "VerifiableCredential", loader)  # type: ignore[arg-type]
    _issuer_id(credential)  # type: ignore[arg-type]
    _subjects(credential)  # type: ignore[arg-type]
    if cryptosuite == "eddsa-rdfc-2022":
        for message in interop_warnings(credential):
            warnings.warn(message, InteropWarning, stacklevel=2)
    return add_proof(
        credential,
        key=key,
        verification_method=verification_method,
        proof_purpose=_ASSERTION,
        cryptosuite=cryptosuite,
        created=created,
        loader=loader,
    )


def verify_credential(
    credential: Mapping[str, Any],
    *,
    resolve_key: KeyResolver,
    now: datetime | None = None,
    status: StatusChecker | None = None,
    trusted_issuers: Collection[str] | None = None,
    loader: DocumentLoader | None = None,
) -> VerifiedCredential:
    """Verify a VC 2.0 credential secured with a Data Integrity proof (steps in module doc).

    Args:
        credential: the secured credential (a parsed JSON object).
        resolve_key: maps the proof's verification method to an Ed25519 key.
        now: the verification time (aware); default: the current time.
        status: checks ``credentialStatus``; None skips status checking.
        trusted_issuers: issuer ids accepted; None accepts any issuer that
            controls the signing key; an empty collection accepts none.
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The ``VerifiedCredential``.

    Raises:
        VerificationError: a subclass naming the reason: ``MalformedCredentialError``,
            ``DocumentTooLargeError``, ``UnknownContextError``, ``UndefinedTermError``,
            ``RelativeIriError``, ``UnsupportedCryptosuiteError``,
            ``WrongProofPurposeError``, ``UnknownKeyError``, ``InvalidSignatureError``,
            ``UntrustedIssuerError``, ``NotYetValidError``, ``ExpiredError``,
            ``RevokedError``, ``SuspendedError``, ``StatusUnavailableError``.
        MalformedKeyError: the verification method's key material is malformed.

    """
    _check_base(credential, "VerifiableCredential", loader)  # type: ignore[arg-type]
    credential = dict(credential)
    issuer = _issuer_id(credential)
    subjects = _subjects(credential)
    valid_from = (
        parse_datetime(credential["validFrom"], field="validFrom") if "validFrom" in credential else None
    )
    valid_until = (
        parse_datetime(credential["validUntil"], field="validUntil") if "validUntil" in credential else None
    )
    current = now or datetime.now(UTC)
    if current.tzinfo is None:
        raise MalformedCredentialError("now must be timezone-aware")
    proof = verify_proof(
        credential,
        resolve_key=resolve_key,
        expected_purpose=_ASSERTION,
        now=current,
        loader=loader,
    )
    if proof.controller != issuer:
        raise UntrustedIssuerError(
            "the issuer does not control the proof's verification method",
            metadata={"issuer": issuer[:200], "controller": proof.controller[:200]},
        )
    if trusted_issuers is not None and issuer not in trusted_issuers:
        raise UntrustedIssuerError("issuer is not trusted", metadata={"issuer": issuer[:200]})
    types = credential["type"]
    types = [types] if isinstance(types, str) else types
    agent = None
    if AGENT_CREDENTIAL_TYPE in types:
        if len(subjects) != 1:
            raise MalformedCredentialError("an AgentCredential has exactly one subject")
        agent = AgentClaims.from_subject(subjects[0])
    if valid_from is not None and current < valid_from:
        raise NotYetValidError(
            "credential is not yet valid",
            metadata={"validFrom": credential["validFrom"], "now": format_datetime(current)},
        )
    if valid_until is not None and current >= valid_until:
        raise ExpiredError(
            "credential has expired",
            metadata={"validUntil": credential["validUntil"], "now": format_datetime(current)},
        )
    if status is not None and "credentialStatus" in credential:
        status.check(credential, now=current)
    subject = subjects[0]
    subject_id = subject.get("id") if len(subjects) == 1 else None
    return VerifiedCredential(
        id=credential.get("id") if isinstance(credential.get("id"), str) else None,
        issuer=issuer,
        subject_id=subject_id if isinstance(subject_id, str) else None,
        types=tuple(types),
        subject=copy.deepcopy(subject),
        valid_from=valid_from,
        valid_until=valid_until,
        proof_digest=proof.digest,
        verification_method=proof.verification_method,
        cryptosuite=proof.cryptosuite,
        credential=copy.deepcopy(credential),
        agent=agent,
    )


def create_presentation(
    credentials: Sequence[Mapping[str, Any]],
    *,
    holder: str,
    key: Ed25519KeyPair,
    verification_method: str,
    challenge: str,
    domain: str,
    cryptosuite: str = "eddsa-rdfc-2022",
    created: datetime | None = None,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """Build and sign a VC 2.0 presentation (proofPurpose ``authentication``).

    Args:
        credentials: the signed credentials to present (at least one), embedded as is.
        holder: the holder's DID; the controller of ``verification_method``.
        key: the holder's key.
        verification_method: DID URL of ``key``.
        challenge: the verifier's nonce (bound into the proof).
        domain: the verifier's identity, e.g. the verifier node's DID.
        cryptosuite: ``"eddsa-rdfc-2022"`` (default) or ``"eddsa-jcs-2022"``.
        created: proof creation time (aware); default: now.
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The signed ``VerifiablePresentation``.

    Raises:
        MalformedCredentialError: no credentials, empty challenge/domain/holder.
        DocumentTooLargeError, UnknownContextError, UndefinedTermError,
        RelativeIriError, UnsupportedCryptosuiteError: see ``add_proof``.

    """
    if isinstance(credentials, Mapping) or not credentials:
        raise MalformedCredentialError("a presentation needs at least one credential")
    for label, value in (("holder", holder), ("challenge", challenge), ("domain", domain)):
        if not isinstance(value, str) or not value:
            raise MalformedCredentialError(f"{label} must be a non-empty string")
    presentation = {
        "@context": [VC_V2_CONTEXT_URL],
        "type": ["VerifiablePresentation"],
        "holder": holder,
        "verifiableCredential": [copy.deepcopy(dict(c)) for c in credentials],
    }
    check_document_limits(presentation)
    return add_proof(
        presentation,
        key=key,
        verification_method=verification_method,
        proof_purpose=_AUTHENTICATION,
        cryptosuite=cryptosuite,
        created=created,
        challenge=challenge,
        domain=domain,
        loader=loader,
    )


@dataclass(frozen=True)
class PresentationProof:
    """A presentation whose own proof verified; its credentials not yet verified.

    Attributes:
        holder: the presentation ``holder`` (controller of the proof's key).
        embedded: the ``verifiableCredential`` objects, in document order, as
            given (bounded and in Accord's profile, not verified).
        proof: the verified presentation proof.

    """

    holder: str
    embedded: tuple[Any, ...]
    proof: ProofResult


def verify_presentation_proof(
    presentation: Mapping[str, Any],
    *,
    challenge: str,
    domain: str,
    resolve_key: KeyResolver,
    now: datetime,
    loader: DocumentLoader | None = None,
) -> PresentationProof:
    """The presentation half of :func:`verify_presentation`: bounds, profile, shape, holder proof.

    Checks, in order: the document limits and Accord's JSON-LD profile over
    the whole presentation (embedded credentials included), ``type``
    ``VerifiablePresentation``, a ``holder``, at least one embedded
    credential, and the Data Integrity proof (``proofPurpose``
    ``authentication``, this ``challenge`` and ``domain``) made with a key the
    holder controls. The embedded credentials are returned unverified: the
    caller verifies them (as :func:`verify_presentation` does, each about
    the holder; or as a delegation chain, ``federation.delegation``).

    Args:
        presentation: the signed presentation (parsed JSON object).
        challenge: the nonce this verifier issued; the proof's must be equal.
        domain: this verifier's identity; the proof's must be equal.
        resolve_key: resolves the holder's verification method.
        now: verification time (aware).
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The :class:`PresentationProof`.

    Raises:
        MalformedCredentialError: empty challenge/domain, no holder, no credentials.
        WrongChallengeError, WrongDomainError: proof option mismatch.
        HolderMismatchError: the proof key is not the holder's.
        VerificationError: the limits, the profile or the proof itself.

    """
    if not isinstance(challenge, str) or not challenge or not isinstance(domain, str) or not domain:
        raise MalformedCredentialError("challenge and domain must be non-empty strings")
    _check_base(presentation, "VerifiablePresentation", loader)  # type: ignore[arg-type]
    holder = presentation.get("holder")
    if isinstance(holder, dict):
        holder = holder.get("id")
    if not isinstance(holder, str) or not holder:
        raise MalformedCredentialError("presentation holder must be a non-empty string")
    embedded = presentation.get("verifiableCredential")
    embedded = [embedded] if isinstance(embedded, dict) else embedded
    if not isinstance(embedded, list) or not embedded:
        raise MalformedCredentialError("presentation has no verifiableCredential")
    proof = verify_proof(
        presentation,
        resolve_key=resolve_key,
        expected_purpose=_AUTHENTICATION,
        challenge=challenge,
        domain=domain,
        now=now,
        loader=loader,
    )
    if proof.controller != holder:
        raise HolderMismatchError(
            "the holder does not control the presentation proof's key",
            metadata={"holder": holder[:200], "controller": proof.controller[:200]},
        )
    return PresentationProof(holder=holder, embedded=tuple(embedded), proof=proof)


def verify_presentation(
    presentation: Mapping[str, Any],
    *,
    challenge: str,
    domain: str,
    resolve_key: KeyResolver,
    now: datetime | None = None,
    status: StatusChecker | None = None,
    trusted_issuers: Collection[str] | None = None,
    loader: DocumentLoader | None = None,
) -> VerifiedPresentation:
    """Verify a presentation and every credential in it (see module docstring).

    Args:
        presentation: the signed presentation (parsed JSON object).
        challenge: the nonce this verifier issued; the proof's must be equal.
        domain: this verifier's identity; the proof's must be equal.
        resolve_key: resolves both the holder's and the issuers' verification methods.
        now: verification time (aware); default: the current time.
        status: status checker for the credentials; None skips status checking.
        trusted_issuers: as in ``verify_credential``.
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The ``VerifiedPresentation``.

    Raises:
        WrongChallengeError, WrongDomainError: proof option mismatch.
        HolderMismatchError: the proof key is not the holder's, or a credential's
            subject is not the holder.
        VerificationError: any error of ``verify_credential``, or of the
            presentation's own proof.

    """
    current = now or datetime.now(UTC)
    checked = verify_presentation_proof(
        presentation,
        challenge=challenge,
        domain=domain,
        resolve_key=resolve_key,
        now=current,
        loader=loader,
    )
    holder = checked.holder
    verified: list[VerifiedCredential] = []
    for index, credential in enumerate(checked.embedded):
        result = verify_credential(
            credential,
            resolve_key=resolve_key,
            now=current,
            status=status,
            trusted_issuers=trusted_issuers,
            loader=loader,
        )
        if result.subject_id != holder:
            raise HolderMismatchError(
                "credentialSubject.id is not the presentation holder",
                metadata={
                    "holder": holder[:200],
                    "subject": str(result.subject_id)[:200],
                    "index": str(index),
                },
            )
        verified.append(result)
    return VerifiedPresentation(
        holder=holder,
        credentials=tuple(verified),
        proof_digest=checked.proof.digest,
        verification_method=checked.proof.verification_method,
    )
