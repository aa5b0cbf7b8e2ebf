"""Interop with the JS reference (Digital Bazaar vc 7.3.0, data-integrity 2.5.0, ...).

Runs ``interop_tests/js/vc.mjs`` (pinned by its package-lock.json) with Node.js:
Accord-issued credentials must verify there, JS-issued ones here, both
cryptosuites, and tampered ones must fail on both sides. Issuers are did:key
(issuer == controller of the verification method, as @digitalbazaar/vc requires).
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from credentials import (
    CredentialError,
    Ed25519KeyPair,
    agent_credential,
    create_presentation,
    did_key_from_public_key,
    did_key_resolver,
    issue_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from credentials.canonical import escape_literal, rdfc_canonical_nquads
from tests.credentials.cred_support import NOW, SUITES

JS_DIR = Path(__file__).resolve().parents[2] / "interop_tests" / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not on PATH")


@pytest.fixture(scope="module")
def js_ready() -> Path:
    """The JS reference, installed once by ``npm ci`` from its package-lock.json.

    The stamp names the lock file's digest and is written only after ``npm ci``
    returns: ``npm ci`` creates package directories before their files are in
    place, so a directory's presence says nothing (a worker that saw one ran
    Node against a half-extracted tree). Every worker reads the stamp under
    the lock the installing worker holds.
    """
    lock_digest = hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = JS_DIR / "node_modules" / ".accord-npm-ci"
    # pytest-xdist workers may get here together: one installs, the others wait.
    with open(JS_DIR / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == lock_digest):
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not on PATH (needed once to install the JS reference)")
            _npm_ci(npm)
            stamp.write_text(lock_digest)
    return JS_DIR


def _npm_ci(npm: str) -> None:
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=JS_DIR,
        check=True,
        capture_output=True,
        timeout=600,
    )


def js(js_ready: Path, command: str, request: dict) -> dict:
    proc = subprocess.run(
        [NODE, str(js_ready / "vc.mjs"), command],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def issuer_key() -> Ed25519KeyPair:
    return Ed25519KeyPair.from_seed(bytes(range(100, 132)))


@pytest.fixture()
def credential(issuer_key) -> dict:
    did = did_key_from_public_key(issuer_key.public_key)
    unsigned = agent_credential(
        issuer=did,
        agent_did="did:key:z6MkhFwXNFWosLeugvSf4wcL9t3uuRXueGSFTRgSvHhWj5G2",
        organization=did,
        name="interop-agent",
        role="analyst",
        scopes=["lab:read", "lab:order"],
        trust_tier=3,
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=1),
        credential_id="urn:uuid:0e6f3cf4-2b0c-4c41-9a35-8f4f36c3b1f0",
    )
    # Control characters and non-ASCII: RDFC-1.0 escaping must agree with rdf-canonize.
    unsigned["credentialSubject"]["name"] = 'tab\there \b\f\x01\x7f é 😀 "q" \\'
    return unsigned


def _key_request(key: Ed25519KeyPair) -> dict:
    return {
        "publicKeyMultibase": key.public_key_multibase,
        "secretKeyMultibase": key.secret_key_multibase,
    }


@pytest.mark.parametrize("suite", SUITES)
def test_accord_issued_verifies_in_js(js_ready, suite, credential, issuer_key):
    vm = verification_method_id(did_key_from_public_key(issuer_key.public_key))
    signed = issue_credential(
        credential, key=issuer_key, verification_method=vm, cryptosuite=suite, created=NOW
    )
    result = js(js_ready, "verify", {"credential": signed, "now": NOW.isoformat()})
    assert result == {"verified": True, "errors": []}


@pytest.mark.parametrize("suite", SUITES)
def test_js_issued_verifies_in_accord_and_is_byte_identical(js_ready, suite, credential, issuer_key):
    created = "2026-06-01T11:00:00Z"
    result = js(
        js_ready,
        "issue",
        {
            "credential": credential,
            "cryptosuite": suite,
            "created": created,
            "now": NOW.isoformat(),
            **_key_request(issuer_key),
        },
    )
    signed = result["credential"]
    assert signed["proof"]["cryptosuite"] == suite
    verified = verify_credential(signed, resolve_key=did_key_resolver, now=NOW)
    assert verified.subject["name"] == credential["credentialSubject"]["name"]
    # Ed25519 is deterministic: the same inputs give the same proof on both sides.
    vm = verification_method_id(did_key_from_public_key(issuer_key.public_key))
    ours = issue_credential(
        credential,
        key=issuer_key,
        verification_method=vm,
        cryptosuite=suite,
        created=datetime(2026, 6, 1, 11, tzinfo=UTC),
    )
    assert ours == signed


@pytest.mark.parametrize("suite", SUITES)
def test_tampered_fails_on_both_sides(js_ready, suite, credential, issuer_key):
    vm = verification_method_id(did_key_from_public_key(issuer_key.public_key))
    signed = issue_credential(
        credential, key=issuer_key, verification_method=vm, cryptosuite=suite, created=NOW
    )
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["scopes"].append("admin:all")
    js_result = js(js_ready, "verify", {"credential": tampered, "now": NOW.isoformat()})
    assert js_result["verified"] is False
    with pytest.raises(CredentialError) as info:
        verify_credential(tampered, resolve_key=did_key_resolver, now=NOW)
    assert info.value.reason == "INVALID_SIGNATURE"

    js_signed = js(
        js_ready,
        "issue",
        {
            "credential": credential,
            "cryptosuite": suite,
            "now": NOW.isoformat(),
            **_key_request(issuer_key),
        },
    )
    forged = copy.deepcopy(js_signed["credential"])
    forged["credentialSubject"]["trustTier"] = 9
    with pytest.raises(CredentialError) as info:
        verify_credential(forged, resolve_key=did_key_resolver, now=NOW)
    assert info.value.reason == "INVALID_SIGNATURE"
    assert js(js_ready, "verify", {"credential": forged, "now": NOW.isoformat()})["verified"] is False


def test_w3c_vector_with_blank_nodes_verifies_in_js_when_reissued(js_ready, issuer_key):
    # The employ vector has blank nodes and nested contexts: re-issued by Accord with a
    # did:key issuer, the JS reference must accept Accord's RDFC-1.0 canonical form.
    vector = json.loads(
        (
            Path(__file__).parent
            / "vectors"
            / "w3c-vc-di-eddsa"
            / "eddsa-rdfc-2022"
            / "employ"
            / "employmentAuth.json"
        ).read_text()
    )
    did = did_key_from_public_key(issuer_key.public_key)
    vector["issuer"] = did
    signed = issue_credential(
        vector, key=issuer_key, verification_method=verification_method_id(did), created=NOW
    )
    result = js(js_ready, "verify", {"credential": signed, "now": NOW.isoformat()})
    assert result["verified"] is True, result


@pytest.mark.parametrize("suite", SUITES)
def test_presentations_both_ways(js_ready, suite, credential, issuer_key):
    holder = Ed25519KeyPair.from_seed(bytes(range(140, 172)))
    holder_did = did_key_from_public_key(holder.public_key)
    credential["credentialSubject"]["id"] = holder_did
    vm = verification_method_id(did_key_from_public_key(issuer_key.public_key))
    signed = issue_credential(
        credential, key=issuer_key, verification_method=vm, cryptosuite=suite, created=NOW
    )
    domain = "did:web:verifier.accord.test"

    # Accord presents, JS verifies (and refuses another challenge).
    ours = create_presentation(
        [signed],
        holder=holder_did,
        key=holder,
        verification_method=verification_method_id(holder_did),
        challenge="nonce-a",
        domain=domain,
        cryptosuite=suite,
        created=NOW,
    )
    ok = js(
        js_ready,
        "verify-presentation",
        {"presentation": ours, "challenge": "nonce-a", "domain": domain, "now": NOW.isoformat()},
    )
    assert ok == {"verified": True, "errors": []}
    replay = js(
        js_ready,
        "verify-presentation",
        {"presentation": ours, "challenge": "nonce-b", "domain": domain, "now": NOW.isoformat()},
    )
    assert replay["verified"] is False

    # JS presents, Accord verifies (and refuses a tampered one).
    theirs = js(
        js_ready,
        "sign-presentation",
        {
            "credentials": [signed],
            "cryptosuite": suite,
            "challenge": "nonce-c",
            "domain": domain,
            "now": NOW.isoformat(),
            **_key_request(holder),
        },
    )["presentation"]
    result = verify_presentation(
        theirs, challenge="nonce-c", domain=domain, resolve_key=did_key_resolver, now=NOW
    )
    assert result.holder == holder_did and len(result.credentials) == 1
    theirs["holder"] = "did:key:z6MkhFwXNFWosLeugvSf4wcL9t3uuRXueGSFTRgSvHhWj5G2"
    with pytest.raises(CredentialError):
        verify_presentation(theirs, challenge="nonce-c", domain=domain, resolve_key=did_key_resolver, now=NOW)


# ------------------------------------------------------------------ RDFC-1.0 vs rdf-canonize 5

_LITERAL_CHARS = 'ab é\t\n\r\b\f\x00\x01\x1f\x7f"\\'


def _random_dataset(rnd: random.Random) -> list[tuple[str, str, str, str]]:
    nodes = [f"_:b{i}" for i in range(rnd.randint(1, 6))]
    iris = ["<http://example.org/a>", "<http://example.org/b>"]
    quads = []
    for _ in range(rnd.randint(1, 10)):
        subject = rnd.choice(nodes + iris)
        predicate = rnd.choice(["<http://example.org/p>", "<http://example.org/q>"])
        kind = rnd.random()
        if kind < 0.5:
            obj = rnd.choice(nodes + iris)
        else:
            text = "".join(rnd.choice(_LITERAL_CHARS) for _ in range(rnd.randint(0, 4)))
            obj = (
                '"'
                + escape_literal(text)
                + '"'
                + rnd.choice(["", "@en", "^^<http://www.w3.org/2001/XMLSchema#integer>"])
            )
        graph = rnd.choice(["", "", "<http://example.org/g>", *nodes])
        quads.append((subject, predicate, obj, graph))
    return quads


def _nquads(quads) -> str:
    return "".join(f"{s} {p} {o} {g} .\n" if g else f"{s} {p} {o} .\n" for s, p, o, g in quads)


def test_rdfc10_agrees_with_rdf_canonize_on_random_datasets(js_ready):
    rnd = random.Random(20261121)
    datasets = [_random_dataset(rnd) for _ in range(400)]
    result = js(js_ready, "canonize-batch", {"datasets": [_nquads(d) for d in datasets]})
    for quads, expected in zip(datasets, result["canonical"], strict=True):
        assert not isinstance(expected, dict), expected
        assert rdfc_canonical_nquads(quads) == expected, _nquads(quads)


def test_known_divergence_utf16_order(js_ready):
    # rdf-canonize sorts by UTF-16 code units; RDFC-1.0 (and Accord) by code points.
    quads = [
        ("<http://example.org/a>", "<http://example.org/p>", '"\U0001f600"', ""),
        ("<http://example.org/a>", "<http://example.org/p>", '"\ufffd"', ""),
    ]
    ours = rdfc_canonical_nquads(quads)
    theirs = js(js_ready, "canonize-batch", {"datasets": [_nquads(quads)]})["canonical"][0]
    assert ours.splitlines()[0].endswith('"\ufffd" .')  # U+FFFD < U+1F600 as code points
    assert theirs.splitlines()[0].endswith('"\U0001f600" .')  # surrogate 0xD83D < 0xFFFD
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())
