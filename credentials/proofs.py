"""Data Integrity proofs: add and verify a ``DataIntegrityProof`` (VC Data Integrity 1.0 §4).

``add_proof`` implements §4.2 "Add Proof" with the cryptosuite's "Create
Proof" (VC DI EdDSA §3.2.1 / §3.3.1); ``verify_proof`` implements §4.4
"Verify Proof" with the cryptosuite's "Verify Proof" (§3.2.2 / §3.3.2):
the signed message is SHA-256(canonical proof configuration) ||
SHA-256(canonical unsecured document), 64 bytes; ``proofValue`` is the
Ed25519 signature in multibase base58btc (``z…``).

Exactly one proof is accepted (an array holding one proof too): proof sets
and proof chains (DI §2.1.2/§2.1.3) are refused, so that "the" signer of a
document (for the issuer and holder checks) is never ambiguous.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credentials.cryptosuites import Cryptosuite, get_cryptosuite, hash_data
from credentials.cryptosuites._common import PROOF_TYPE
from credentials.dids import KeyResolver
from credentials.errors import (
    CredentialError,
    ExpiredError,
    InvalidSignatureError,
    MalformedCredentialError,
    MalformedKeyError,
    UnknownKeyError,
    UnsupportedCryptosuiteError,
    WrongChallengeError,
    WrongDomainError,
    WrongProofPurposeError,
)
from credentials.keys import Ed25519KeyPair, multibase_decode, multibase_encode_base58btc
from credentials.keys import verify_ed25519 as _verify_ed25519
from credentials.limits import check_document_limits
from credentials.loader import DocumentLoader, default_loader
from credentials.profile import check_profile

__all__ = [
    "ProofResult",
    "add_proof",
    "clear_verification_cache",
    "format_datetime",
    "parse_datetime",
    "verify_proof",
]

# XML Schema dateTimeStamp as VC DM 2.0 §4.9 and DI §2.1 require (time zone mandatory).
_DATETIME_RE = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def format_datetime(value: datetime) -> str:
    """Format an aware datetime as an XML Schema dateTimeStamp in UTC, seconds precision.

    Example: ``2026-11-21T05:30:00Z``.

    Raises:
        MalformedCredentialError: ``value`` is naive (no time zone).

    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise MalformedCredentialError("datetimes must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: Any, *, field: str) -> datetime:
    """Parse an XML Schema dateTimeStamp (time zone required) to an aware datetime.

    Args:
        value: the JSON value.
        field: the member name, for the error message.

    Raises:
        MalformedCredentialError: not a string in dateTimeStamp form.

    """
    if not isinstance(value, str) or not _DATETIME_RE.match(value):
        raise MalformedCredentialError(
            f"{field} must be an XML Schema dateTimeStamp, got {str(value)[:60]!r}",
            metadata={"field": field},
        )
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    if "." in text:  # Python accepts at most 6 fractional digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail).group(0)  # type: ignore[union-attr]
        text = head + "." + (digits + "000000")[:6] + tail[len(digits) :]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise MalformedCredentialError(
            f"{field} is not a valid date-time: {value[:60]!r}", metadata={"field": field}
        ) from None


@dataclass(frozen=True)
class ProofResult:
    """A verified proof.

    Attributes:
        verification_method: the proof's ``verificationMethod`` (a DID URL).
        controller: the DID of the verification method (the part before ``#``).
        cryptosuite: ``"eddsa-rdfc-2022"`` or ``"eddsa-jcs-2022"``.
        proof_purpose: e.g. ``"assertionMethod"``.
        created: the proof's ``created`` time, or None.
        proof_value: the multibase ``proofValue``.
        digest: hex SHA-256 of the ``proofValue`` string (UTF-8).

    """

    verification_method: str
    controller: str
    cryptosuite: str
    proof_purpose: str
    created: datetime | None
    proof_value: str
    digest: str


def _controller(verification_method: str) -> str:
    return verification_method.split("#", 1)[0]


def add_proof(
    document: Mapping[str, Any],
    *,
    key: Ed25519KeyPair,
    verification_method: str,
    proof_purpose: str,
    cryptosuite: str = "eddsa-rdfc-2022",
    created: datetime | None = None,
    challenge: str | None = None,
    domain: str | None = None,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """Return a copy of ``document`` with a new ``DataIntegrityProof`` (DI §4.2).

    Args:
        document: the unsecured JSON-LD document (must not already have ``proof``).
        key: the signing key.
        verification_method: DID URL of ``key`` as the verifier will resolve it.
        proof_purpose: ``"assertionMethod"`` (credentials) or ``"authentication"``.
        cryptosuite: ``"eddsa-rdfc-2022"`` (default) or ``"eddsa-jcs-2022"``.
        created: proof creation time (aware datetime); default: now, seconds precision.
        challenge: ``challenge`` proof option (presentations).
        domain: ``domain`` proof option (presentations).
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The secured document (a new dict; the input is not modified).

    Raises:
        MalformedCredentialError: not an object, already has a proof, naive ``created``.
        DocumentTooComplexError: beyond ``credentials.limits.DEFAULT_LIMITS``.
        ContextNotAllowedError, TermNotAllowedError: outside Accord's JSON-LD
            profile (``credentials.profile``).
        UnsupportedCryptosuiteError: unknown ``cryptosuite``.
        UnknownContextError, UndefinedTermError, RelativeIriError,
        DocumentTooLargeError: the document cannot be canonicalized safely.

    """
    if not isinstance(document, Mapping):
        raise MalformedCredentialError("document must be a JSON object")
    if "proof" in document:
        raise MalformedCredentialError("document already has a proof (proof sets not supported)")
    check_document_limits(dict(document))
    check_profile(dict(document), loader=loader)
    suite = get_cryptosuite(cryptosuite)
    if not isinstance(verification_method, str) or not verification_method:
        raise MalformedCredentialError("verification_method must be a non-empty string")
    unsecured = copy.deepcopy(dict(document))
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": suite.name,
        "created": format_datetime(created or datetime.now(UTC)),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        proof["challenge"] = challenge
    if domain is not None:
        proof["domain"] = domain
    options = dict(proof)
    if "@context" in unsecured:
        options["@context"] = unsecured["@context"]
    message = hash_data(suite.configure(options, loader=loader), suite.transform(unsecured, loader=loader))
    signed_proof = options if suite.proof_has_context else proof
    signed_proof = dict(signed_proof)
    signed_proof["proofValue"] = multibase_encode_base58btc(key.sign(message))
    unsecured["proof"] = signed_proof
    return unsecured


def verify_proof(
    document: Mapping[str, Any],
    *,
    resolve_key: KeyResolver,
    expected_purpose: str,
    challenge: str | None = None,
    domain: str | None = None,
    now: datetime | None = None,
    loader: DocumentLoader | None = None,
) -> ProofResult:
    """Verify the Data Integrity proof of a secured document (DI §4.4, VC DI EdDSA §3.x.2).

    Args:
        document: the secured document (``proof``: one object, or an array of one).
        resolve_key: maps the proof's ``verificationMethod`` to a 32-byte key.
        expected_purpose: the required ``proofPurpose``.
        challenge: if given, the proof's ``challenge`` must equal it.
        domain: if given, the proof's ``domain`` must equal it (or contain it,
            when the proof's domain is an array).
        now: the time for the proof's optional ``expires`` (default: now).
        loader: JSON-LD document loader (default: bundled contexts).

    Returns:
        The ``ProofResult``.

    Raises:
        MalformedCredentialError: no proof, several proofs, malformed proof members
            or proofValue.
        DocumentTooLargeError, DocumentTooComplexError: beyond
            ``credentials.limits.DEFAULT_LIMITS`` (checked first, before any JSON-LD work).
        ContextNotAllowedError, TermNotAllowedError: outside Accord's JSON-LD
            profile (``credentials.profile``), checked before any JSON-LD work.
        UnsupportedCryptosuiteError: proof type / cryptosuite not supported.
        WrongProofPurposeError, WrongChallengeError, WrongDomainError: option mismatch.
        ExpiredError: the proof's ``expires`` is in the past.
        UnknownKeyError, MalformedKeyError: the key cannot be resolved.
        InvalidSignatureError: the signature does not verify.
        UnknownContextError, UndefinedTermError, RelativeIriError,
        DocumentTooLargeError: canonicalization refused the document.

    """
    if not isinstance(document, Mapping):
        raise MalformedCredentialError("document must be a JSON object")
    check_document_limits(dict(document))
    check_profile(dict(document), loader=loader)
    proof = document.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if isinstance(proof, list) and len(proof) > 1:
        raise MalformedCredentialError(
            "proof sets are not supported (exactly one proof expected)",
            metadata={"proofs": str(len(proof))},
        )
    if not isinstance(proof, dict):
        raise MalformedCredentialError("document has no proof object")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    return _verify_one(
        unsecured,
        proof,
        resolve_key=resolve_key,
        expected_purpose=expected_purpose,
        challenge=challenge,
        domain=domain,
        now=now,
        loader=loader,
    )


def _verify_one(
    unsecured: dict[str, Any],
    proof: Any,
    *,
    resolve_key: KeyResolver,
    expected_purpose: str,
    challenge: str | None,
    domain: str | None,
    now: datetime | None,
    loader: DocumentLoader | None,
) -> ProofResult:
    if not isinstance(proof, dict):
        raise MalformedCredentialError("proof must be a JSON object")
    if proof.get("type") != PROOF_TYPE:
        raise UnsupportedCryptosuiteError(
            f"unsupported proof type {str(proof.get('type'))[:100]!r}",
            metadata={"type": str(proof.get("type"))[:100]},
        )
    suite: Cryptosuite = get_cryptosuite(proof.get("cryptosuite"))
    if "previousProof" in proof:
        raise MalformedCredentialError("proof chains (previousProof) are not supported")
    purpose = proof.get("proofPurpose")
    if purpose != expected_purpose:
        raise WrongProofPurposeError(
            f"expected proofPurpose {expected_purpose!r}, got {str(purpose)[:100]!r}",
            metadata={"expected": expected_purpose, "actual": str(purpose)[:100]},
        )
    vm = proof.get("verificationMethod")
    if not isinstance(vm, str) or not vm:
        raise MalformedCredentialError("proof.verificationMethod must be a non-empty string")
    proof_value = proof.get("proofValue")
    if not isinstance(proof_value, str) or not proof_value.startswith("z"):
        raise MalformedCredentialError("proof.proofValue must be multibase base58btc ('z…')")
    try:
        signature = multibase_decode(proof_value)
    except MalformedKeyError:
        raise MalformedCredentialError("proof.proofValue is not valid base58btc") from None
    created = parse_datetime(proof["created"], field="proof.created") if "created" in proof else None
    if "expires" in proof:
        expires = parse_datetime(proof["expires"], field="proof.expires")
        current = now or datetime.now(UTC)
        if current >= expires:
            raise ExpiredError(
                "proof has expired",
                metadata={"expires": proof["expires"], "now": format_datetime(current)},
            )
    if challenge is not None and proof.get("challenge") != challenge:
        raise WrongChallengeError(
            "proof challenge does not match",
            metadata={"expected": challenge[:200], "actual": str(proof.get("challenge"))[:200]},
        )
    if domain is not None:
        actual = proof.get("domain")
        ok = actual == domain or (isinstance(actual, list) and domain in actual)
        if not ok:
            raise WrongDomainError(
                "proof domain does not match",
                metadata={"expected": domain[:200], "actual": str(actual)[:200]},
            )
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    document = unsecured
    if "@context" in options:
        # VC DI EdDSA §3.x.2 step 4: the document's @context must start with the proof's.
        doc_ctx = _as_list(unsecured.get("@context"))
        proof_ctx = _as_list(options["@context"])
        if doc_ctx[: len(proof_ctx)] != proof_ctx:
            raise InvalidSignatureError("proof @context is not a prefix of the document @context")
        document = dict(unsecured)
        document["@context"] = options["@context"]
    elif "@context" in unsecured:
        options["@context"] = unsecured["@context"]
    try:
        public_key = resolve_key(vm)
    except CredentialError:
        raise
    except Exception as exc:  # a resolver must raise UnknownKeyError; be total anyway
        raise UnknownKeyError(
            f"key resolver failed: {type(exc).__name__}", metadata={"verification_method": vm[:200]}
        ) from None
    cache_key = _VERIFIED.key(unsecured, proof, public_key, expected_purpose, loader)
    if cache_key is None or not _VERIFIED.hit(cache_key):
        message = hash_data(suite.configure(options, loader=loader), suite.transform(document, loader=loader))
        try:
            _verify_ed25519(public_key, signature, message)
        except InvalidSignatureError as exc:
            exc.metadata.setdefault("verification_method", vm[:200])
            raise
        if cache_key is not None:
            _VERIFIED.add(cache_key)
    return ProofResult(
        verification_method=vm,
        controller=_controller(vm),
        cryptosuite=suite.name,
        proof_purpose=purpose,
        created=created,
        proof_value=proof_value,
        digest=hashlib.sha256(proof_value.encode("utf-8")).hexdigest(),
    )


class _VerifiedProofCache:
    """Remembers proofs that verified, so a credential presented again is not re-canonicalized.

    The key is SHA-256 of the whole secured document serialized with sorted keys
    (JSON-LD expansion does not depend on key order; it does depend on everything
    else, including ``2`` vs ``2.0``, which JCS would conflate), the resolved 32-byte
    public key, the expected proof purpose and the document loader (the contexts).
    Everything the signature check depends on is in the key; only successes are stored; proofs with
    ``expires`` and eddsa-jcs-2022 proofs (already cheap) are not cached. Checks that
    depend on the caller (challenge, domain, issuer, validity, status) run every time.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self._entries: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def key(
        self,
        unsecured: dict[str, Any],
        proof: dict[str, Any],
        public_key: bytes,
        purpose: str,
        loader: DocumentLoader | None,
    ) -> tuple[Any, ...] | None:
        if "expires" in proof or proof.get("cryptosuite") != "eddsa-rdfc-2022":
            return None
        try:
            text = json.dumps([unsecured, proof], sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return None  # not plain JSON: no caching, verify normally
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        return (digest, public_key, purpose, loader or default_loader())

    def hit(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
            return False

    def add(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            self._entries[key] = None
            if len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_VERIFIED = _VerifiedProofCache()


def clear_verification_cache() -> None:
    """Forget every remembered successful proof verification (see ``_VerifiedProofCache``)."""
    _VERIFIED.clear()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
