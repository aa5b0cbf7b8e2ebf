"""Accord's JSON-LD profile: one spelling per meaning, so a JSON key reads what is signed.

The verifier and the node read ``validUntil``, ``credentialStatus``,
``issuer``, ``credentialSubject``, ``holder``, ``type``, ``proof`` … by JSON
key, while an ``eddsa-rdfc-2022`` signature covers the RDF meaning. JSON-LD
lets one meaning be spelled many ways: an inline ``@context`` can define a new
term for ``https://www.w3.org/2018/credentials#validUntil``, a key can be the
absolute IRI itself or a compact IRI, a keyword can be written directly
(``@type``) or through ``@nest``/``@graph``/``@included``/``@reverse``. Each
re-spelling leaves the signed N-Quads unchanged and hides the property from
the JSON reading (an expired, revoked credential then verified with no expiry
and no status). This module refuses every document outside one fixed spelling,
at issue and at verify, for both cryptosuites:

1. **Contexts** (``CONTEXT_NOT_ALLOWED``): ``@context`` is present at the top
   of every credential and presentation, and appears only at the top
   of a document, of its ``proof`` and of each credential embedded in a
   presentation's ``verifiableCredential``; it is a URL or an array of URLs
   (no inline context objects), the first being the VC 2.0 context, each
   served by the (offline) document loader (``UNKNOWN_CONTEXT`` otherwise),
   none twice, and at most one of them setting ``@vocab``. The bundled
   contexts are ``@protected`` and define every IRI by exactly one term
   (``tests/credentials/test_cred_profile.py`` checks it), so a term always
   means the same IRI whatever the order of the URLs.
2. **Keys** (``TERM_NOT_ALLOWED``): every object key is a plain term (no
   ``:``, so no compact or absolute IRI, no blank node) and no key starts with
   ``@`` except ``@context`` (rule 1) and the members of a value object
   (``@value``, ``@language``, ``@direction``). The only keyword aliases of the
   bundled contexts are ``id`` and ``type``, the spellings the verifier reads.
3. **Types** (``TERM_NOT_ALLOWED``): every ``type`` value is a plain term, so a
   type the verifier acts on (``VerifiableCredential``, ``AgentCredential``,
   ``DelegationCredential``, ``BitstringStatusListEntry`` …) cannot be present
   in the RDF and absent from the JSON.

With the term→IRI mapping fixed and every key a term, JSON-LD expansion
(JSON-LD 1.1 Processing Algorithms: Expansion, IRI Expansion) maps each JSON key to exactly
the IRI the verifier assumes; the remaining re-spellings (an array of one
value, a value object, ``null``) change the JSON type of the value, which the
verifier's typed parsing refuses or reads the same as the RDF (``null``
is dropped by both). The check is one linear pass with no JSON-LD processing.
"""

from __future__ import annotations

from typing import Any

from credentials.errors import ContextNotAllowedError, TermNotAllowedError
from credentials.loader import VC_V2_CONTEXT_URL, DocumentLoader, default_loader

__all__ = [
    "VALUE_OBJECT_KEYS",
    "check_context",
    "check_profile",
]

#: Keyword keys allowed in a value object (JSON-LD 1.1 §4.2.1): they spell a literal, not a property.
VALUE_OBJECT_KEYS = frozenset({"@value", "@language", "@direction"})


def _sets_vocab(loader: DocumentLoader, url: str) -> bool:
    context = loader.document(url)
    context = context.get("@context") if isinstance(context, dict) else None
    items = context if isinstance(context, list) else [context]
    return any(isinstance(c, dict) and "@vocab" in c for c in items)


def check_context(
    context: Any, *, loader: DocumentLoader | None = None, where: str = "@context"
) -> list[str]:
    """Check one ``@context`` value against rule 1 of the module docstring.

    Args:
        context: the ``@context`` member's value.
        loader: the document loader whose URLs are allowed (default: bundled contexts).
        where: the member's path, for the error metadata.

    Returns:
        The context URLs, in order.

    Raises:
        ContextNotAllowedError: an inline context object, a non-URL entry, an empty
            array, a first context other than VC 2.0, a duplicate URL, two ``@vocab``
            contexts.
        UnknownContextError: a URL the loader does not serve.

    """
    served = loader or default_loader()
    urls = [context] if isinstance(context, str) else context
    if not isinstance(urls, list) or not urls:
        raise ContextNotAllowedError(
            "@context must be a context URL or a non-empty array of context URLs",
            metadata={"path": where},
        )
    for url in urls:
        if not isinstance(url, str):
            raise ContextNotAllowedError(
                "inline @context objects are not allowed: every context must be a bundled URL",
                metadata={"path": where},
            )
    if urls[0] != VC_V2_CONTEXT_URL:
        raise ContextNotAllowedError(
            f"the first @context must be {VC_V2_CONTEXT_URL!r}",
            metadata={"path": where, "expected": VC_V2_CONTEXT_URL, "actual": urls[0][:200]},
        )
    if len(set(urls)) != len(urls):
        raise ContextNotAllowedError("a context URL appears twice", metadata={"path": where})
    vocab = 0
    for url in urls:
        served.document(url)  # UnknownContextError if not served
        vocab += _sets_vocab(served, url)
    if vocab > 1:
        raise ContextNotAllowedError("two contexts set @vocab", metadata={"path": where})
    return list(urls)


def _term_error(message: str, path: str, key: str) -> TermNotAllowedError:
    return TermNotAllowedError(message, metadata={"path": path[:200], "term": key[:200]})


def _check_type_values(value: Any, path: str) -> None:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and (":" in item or item.startswith("@") or not item):
            raise _term_error("a type must be a plain term of the contexts", path, item)


def check_profile(document: Any, *, loader: DocumentLoader | None = None) -> None:
    """Refuse a document outside Accord's JSON-LD profile (rules in the module docstring).

    ``document`` is the top of a credential, a presentation or a proof's
    options; a presentation's embedded credentials (``verifiableCredential``)
    are checked as tops of their own. One pass, no JSON-LD processing; call it
    after :func:`credentials.limits.check_document_limits` (it relies on the
    depth bound only for its own work being bounded).

    Args:
        document: the parsed JSON document.
        loader: the document loader whose context URLs are allowed.

    Raises:
        ContextNotAllowedError: rule 1 (context) broken.
        UnknownContextError: a context URL is not served.
        TermNotAllowedError: rule 2 (keys) or 3 (types) broken.

    """
    # (value, path, role): role "top" may hold @context, proof and (presentations)
    # verifiableCredential items that are tops too; "proof" may hold @context.
    stack: list[tuple[Any, str, str]] = [(document, "$", "top")]
    while stack:
        value, path, role = stack.pop()
        if isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", role) for i, item in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        if role == "top" and "@context" not in value:
            raise ContextNotAllowedError(
                "a credential or presentation needs an @context (its JSON would have no meaning)",
                metadata={"path": path[:200]},
            )
        is_value_object = "@value" in value
        for key, item in value.items():
            here = f"{path}.{key}"
            if key == "@context":
                if role not in ("top", "proof"):
                    raise ContextNotAllowedError(
                        "@context is allowed only at the top of a credential, presentation or proof",
                        metadata={"path": here[:200]},
                    )
                check_context(item, loader=loader, where=here[:200])
                continue
            if key.startswith("@"):
                if is_value_object and key in VALUE_OBJECT_KEYS:
                    continue
                raise _term_error(f"JSON-LD keyword {key[:50]!r} is not allowed as a key", here, key)
            if ":" in key or not key:
                raise _term_error(
                    f"key {key[:50]!r} is not a plain term (compact or absolute IRI)", here, key
                )
            if key == "type":
                _check_type_values(item, here)
            child_role = "inner"
            if role == "top" and key == "proof":
                child_role = "proof"
            elif role == "top" and key == "verifiableCredential":
                child_role = "top"
            stack.append((item, here, child_role))
