from __future__ import annotations

import hashlib
import json

import pytest

from credentials import ACCORD_CONTEXT_URL, DocumentLoader, UnknownContextError, default_loader
from credentials.loader import bundled_contexts

# Digests from the W3C Recommendations (see credentials/contexts/SOURCE.md).
DIGESTS = {
    "https://www.w3.org/ns/credentials/v2": (
        "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734"
    ),
    "https://w3id.org/security/data-integrity/v2": (
        "67f21e6e33a6c14e5ccfd2fc7865f7474fb71a04af7e94136cb399dfac8ae8f4"
    ),
    "https://w3id.org/security/multikey/v1": (
        "ba2c182de2d92f7e47184bcca8fcf0beaee6d3986c527bf664c195bbc7c58597"
    ),
    "https://www.w3.org/ns/credentials/status/v1": (
        "fda5add353231e6a6884a46b12e6c75464281900cb348284d9c360f62381d9f7"
    ),
    "https://www.w3.org/ns/credentials/examples/v2": (
        "57393fbc69d6efb9b9b5dc9cb6b9880b0944360abfe2eaf459c9e58cf2279d7c"
    ),
    "https://www.w3.org/ns/credentials/undefined-terms/v2": (
        "82dab514ba44eb18f5d1b0f638c5e140c6a556fbfb5089601bdc0fa5eb8b2581"
    ),
    # Accord's own context is frozen too: issued signatures depend on its exact terms.
    "https://w3id.org/accord/credentials/v1": (
        "cc08084702f4fd8e3e259546443656d622960fdb1c65cb76a272da54f8da75d1"
    ),
    "https://w3id.org/citizenship/v4rc1": (
        "5038c7383afd7ab2158f1b997913a8f60978a0abcf96e0b0d08e29f146d2db1e"
    ),
}


@pytest.mark.parametrize(("url", "digest"), sorted(DIGESTS.items()))
def test_bundled_context_is_byte_identical(url, digest):
    assert hashlib.sha256(bundled_contexts()[url]).hexdigest() == digest


def test_accord_context_terms_are_protected():
    ctx = json.loads(bundled_contexts()[ACCORD_CONTEXT_URL])["@context"]
    assert ctx["@protected"] is True and ctx["@version"] == 1.1
    for term in ("AgentCredential", "organization", "role", "scopes", "trustTier"):
        assert ctx[term]["@id"].startswith("https://w3id.org/accord/vocab#")


def test_unknown_url_is_never_fetched():
    with pytest.raises(UnknownContextError) as info:
        default_loader()("https://www.w3.org/2018/credentials/v1")
    assert info.value.reason == "UNKNOWN_CONTEXT"
    assert info.value.metadata["url"] == "https://www.w3.org/2018/credentials/v1"


def test_extra_contexts_and_bundled_only_flag():
    loader = DocumentLoader(
        {"https://example.test/ctx": {"@context": {"a": "https://e.test/a"}}}, include_bundled=False
    )
    assert loader.urls == frozenset({"https://example.test/ctx"})
    assert loader("https://example.test/ctx")["document"]["@context"]["a"] == "https://e.test/a"
