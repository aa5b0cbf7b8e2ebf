"""Offline JSON-LD document loader over the bundled contexts (``credentials/contexts/``).

No context is ever fetched from the network: a URL that is not bundled (or
added explicitly by the caller) raises ``UnknownContextError``. The bundled
files are byte-for-byte copies of the W3C documents (provenance and SHA-256
digests in ``contexts/SOURCE.md``), plus Accord's own context served at
``https://w3id.org/accord/credentials/v1``.

Each loader owns a private pyld context cache, so processed contexts (term
definitions) are computed once per loader and never shared with other pyld
users in the process (which may use other loaders for the same URLs).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache

from credentials.errors import UnknownContextError

__all__ = [
    "ACCORD_CONTEXT_URL",
    "BITSTRING_STATUS_LIST_CONTEXT_URL",
    "DATA_INTEGRITY_CONTEXT_URL",
    "MULTIKEY_CONTEXT_URL",
    "VC_V2_CONTEXT_URL",
    "DocumentLoader",
    "bundled_contexts",
    "default_loader",
]

#: VC Data Model 2.0 base context (§4.3).
VC_V2_CONTEXT_URL = "https://www.w3.org/ns/credentials/v2"
#: VC Data Integrity 1.0 context (§2.1.1); its terms are also in the VC 2.0 context.
DATA_INTEGRITY_CONTEXT_URL = "https://w3id.org/security/data-integrity/v2"
#: Multikey context (Controlled Identifiers 1.0).
MULTIKEY_CONTEXT_URL = "https://w3id.org/security/multikey/v1"
#: Bitstring Status List 1.0 context (§2.4); its terms are also in the VC 2.0 context.
BITSTRING_STATUS_LIST_CONTEXT_URL = "https://www.w3.org/ns/credentials/status/v1"
#: Accord's context for AgentCredential claims (``organization``, ``role``, ``scopes``,
#: ``trustTier``), all ``@protected``.
ACCORD_CONTEXT_URL = "https://w3id.org/accord/credentials/v1"


@functools.cache
def _bundled_bytes() -> Mapping[str, bytes]:
    root = resources.files("credentials") / "contexts"
    index = json.loads((root / "index.json").read_bytes())
    return MappingProxyType({url: (root / name).read_bytes() for url, name in index.items()})


def bundled_contexts() -> Mapping[str, bytes]:
    """Return the bundled context documents: context URL -> exact file bytes."""
    return _bundled_bytes()


class DocumentLoader:
    """A static pyld document loader: ``loader(url, options) -> remote document``.

    Args:
        extra: additional context documents, URL -> parsed JSON object (e.g. a
            test-only context). They override bundled ones with the same URL.
        include_bundled: serve the bundled contexts (default True).

    Raises:
        UnknownContextError: (on call) the URL is not served by this loader.

    """

    def __init__(
        self,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        include_bundled: bool = True,
    ) -> None:
        docs: dict[str, Any] = {}
        if include_bundled:
            docs.update({url: json.loads(raw) for url, raw in _bundled_bytes().items()})
        for url, doc in (extra or {}).items():
            docs[url] = json.loads(json.dumps(doc))
        self._documents = docs
        # pyld's processed-context cache private to this loader (see module docstring).
        self.context_cache: LRUCache = LRUCache(maxsize=100)
        # Processed (active) contexts memoized by credentials.canonical, private too.
        self.processed_cache: LRUCache = LRUCache(maxsize=512)
        #: Serializes JSON-LD processing over this loader's caches (threads share a node).
        self.lock = threading.RLock()

    @property
    def urls(self) -> frozenset[str]:
        """The context URLs this loader serves."""
        return frozenset(self._documents)

    def document(self, url: str) -> Any:
        """Return the parsed context document served at ``url``.

        Raises:
            UnknownContextError: the URL is not served.

        """
        try:
            return self._documents[url]
        except (KeyError, TypeError):
            raise UnknownContextError(
                f"JSON-LD context {str(url)[:200]!r} is not bundled (contexts are never fetched)",
                metadata={"url": str(url)[:200]},
            ) from None

    def __call__(self, url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Load ``url`` in pyld's remote-document shape.

        Raises:
            UnknownContextError: the URL is not served.

        """
        # tag "static": pyld then caches the resolved context under the URL for good.
        return {
            "contextUrl": None,
            "documentUrl": url,
            "document": self.document(url),
            "tag": "static",
        }


@functools.cache
def default_loader() -> DocumentLoader:
    """Return the process-wide loader over every bundled context."""
    return DocumentLoader()
