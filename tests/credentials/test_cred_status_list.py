"""Bitstring Status List v1.0: encoding, entries, and the verifying cache."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credentials import (
    Ed25519KeyPair,
    RevokedError,
    StaticKeyResolver,
    StatusChecker,
    StatusList,
    StatusListCache,
    StatusListError,
    StatusUnavailableError,
    SuspendedError,
    create_presentation,
    issue_credential,
    status_entry,
    status_list_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from tests.credentials.cred_support import NOW, ORG_DID, ORG_VM

SPEC_EMPTY = (
    (Path(__file__).parent / "vectors" / "bitstring-status-list" / "empty-16KiB-encodedList.txt")
    .read_text()
    .strip()
)
LIST_URL = "https://hospital.accord.test/status/revocation/1"
SUSP_URL = "https://hospital.accord.test/status/suspension/1"


def test_spec_example_decodes_and_is_reproduced():
    decoded = StatusList.decode(SPEC_EMPTY)
    assert decoded.length == 131_072
    assert decoded.to_bytes() == bytes(16_384)
    assert StatusList().encode() == SPEC_EMPTY


def test_bit_order_is_msb_first():
    status = StatusList()
    status.set(0, True)
    status.set(9, True)
    raw = status.to_bytes()
    assert raw[0] == 0b1000_0000 and raw[1] == 0b0100_0000
    status.set(0, False)
    assert status.to_bytes()[0] == 0 and status.get(9) and not status.get(0)


@settings(max_examples=30, deadline=None)
@given(st.sets(st.integers(0, 131_071), max_size=40))
def test_encode_decode_round_trip(indices):
    status = StatusList()
    for i in indices:
        status.set(i, True)
    decoded = StatusList.decode(status.encode())
    assert {i for i in indices if decoded.get(i)} == indices
    assert sum(bin(b).count("1") for b in decoded.to_bytes()) == len(indices)


@pytest.mark.parametrize("index", [-1, 131_072, True, 1.0])
def test_index_out_of_range(index):
    with pytest.raises(StatusListError):
        StatusList().get(index)


@pytest.mark.parametrize("length", [0, 7, 1000, 8 * 1000])
def test_invalid_lengths(length):
    with pytest.raises(StatusListError):
        StatusList(length)


@pytest.mark.parametrize(
    "encoded",
    [
        SPEC_EMPTY[1:],  # no multibase prefix
        "z" + SPEC_EMPTY[1:],
        SPEC_EMPTY + "==",
        "u!!!!",
        "uAAAA",  # not gzip
        SPEC_EMPTY[:30],  # truncated gzip
        StatusList(8, allow_short=True).encode(),  # shorter than the 16 KiB minimum
    ],
)
def test_decode_refuses(encoded):
    with pytest.raises(StatusListError):
        StatusList.decode(encoded)


def test_decode_refuses_a_gzip_bomb():
    import base64
    import gzip

    bomb = gzip.compress(bytes(17 * 1024 * 1024), mtime=0)
    encoded = "u" + base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    with pytest.raises(StatusListError):
        StatusList.decode(encoded)


def test_status_entry_shape():
    assert status_entry(list_credential_id=LIST_URL, index=94567, purpose="revocation") == {
        "id": LIST_URL + "#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": LIST_URL,
    }
    with pytest.raises(StatusListError):
        status_entry(list_credential_id=LIST_URL, index=-1, purpose="revocation")
    with pytest.raises(StatusListError):
        status_entry(list_credential_id=LIST_URL, index=1, purpose="message")


class _Publisher:
    """The issuer side: signed status list credentials served by URL, counting fetches."""

    def __init__(self, key: Ed25519KeyPair):
        self.key = key
        self.lists = {LIST_URL: StatusList(), SUSP_URL: StatusList()}
        self.fetches = 0
        self.fail = False

    def fetch(self, url: str) -> dict:
        self.fetches += 1
        if self.fail:
            raise ConnectionError("peer unreachable")
        purpose = "revocation" if url == LIST_URL else "suspension"
        unsigned = status_list_credential(
            issuer=ORG_DID,
            credential_id=url,
            purpose=purpose,
            status_list=self.lists[url],
            valid_from=NOW - timedelta(days=1),
        )
        return issue_credential(
            unsigned, key=self.key, verification_method=ORG_VM, created=NOW - timedelta(hours=1)
        )


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def with_status(unsigned_agent_credential):
    unsigned_agent_credential["credentialStatus"] = [
        status_entry(list_credential_id=LIST_URL, index=42, purpose="revocation"),
        status_entry(list_credential_id=SUSP_URL, index=42, purpose="suspension"),
    ]
    return unsigned_agent_credential


def _signed(cred, key):
    return issue_credential(cred, key=key, verification_method=ORG_VM, created=NOW - timedelta(hours=1))


def test_status_list_credential_signs_and_verifies(org_key, resolver):
    unsigned = status_list_credential(
        issuer=ORG_DID,
        credential_id=LIST_URL,
        purpose="revocation",
        status_list=StatusList(),
        valid_from=NOW,
        valid_until=NOW + timedelta(days=1),
    )
    assert unsigned["credentialSubject"]["encodedList"] == SPEC_EMPTY
    signed = issue_credential(unsigned, key=org_key, verification_method=ORG_VM)
    verified = verify_credential(signed, resolve_key=resolver, now=NOW)
    assert "BitstringStatusListCredential" in verified.types


def test_revocation_suspension_and_ttl(with_status, org_key, resolver):
    publisher, clock = _Publisher(org_key), _Clock()
    cache = StatusListCache(publisher.fetch, resolve_key=resolver, ttl_seconds=300, clock=clock)
    assert isinstance(cache, StatusChecker)
    signed = _signed(with_status, org_key)
    verify_credential(signed, resolve_key=resolver, now=NOW, status=cache)
    assert publisher.fetches == 2
    verify_credential(signed, resolve_key=resolver, now=NOW, status=cache)
    assert publisher.fetches == 2  # cached
    publisher.lists[LIST_URL].set(42, True)
    verify_credential(signed, resolve_key=resolver, now=NOW, status=cache)  # still cached
    clock.t += 301
    with pytest.raises(RevokedError) as info:
        verify_credential(signed, resolve_key=resolver, now=NOW, status=cache)
    assert info.value.reason == "REVOKED" and info.value.metadata["index"] == "42"
    publisher.lists[LIST_URL].set(42, False)
    publisher.lists[SUSP_URL].set(42, True)
    cache.invalidate()
    with pytest.raises(SuspendedError):
        verify_credential(signed, resolve_key=resolver, now=NOW, status=cache)


def test_revoked_credential_in_presentation(with_status, org_key, agent_key, agent_did, resolver):
    publisher = _Publisher(org_key)
    publisher.lists[LIST_URL].set(42, True)
    cache = StatusListCache(publisher.fetch, resolve_key=resolver)
    vp = create_presentation(
        [_signed(with_status, org_key)],
        holder=agent_did,
        key=agent_key,
        verification_method=verification_method_id(agent_did),
        challenge="c",
        domain="did:web:lab.accord.test",
        created=NOW,
    )
    with pytest.raises(RevokedError):
        verify_presentation(
            vp,
            challenge="c",
            domain="did:web:lab.accord.test",
            resolve_key=resolver,
            now=NOW,
            status=cache,
        )


def test_fetch_failure_fails_closed(with_status, org_key, resolver):
    publisher = _Publisher(org_key)
    publisher.fail = True
    cache = StatusListCache(publisher.fetch, resolve_key=resolver)
    with pytest.raises(StatusUnavailableError) as info:
        verify_credential(_signed(with_status, org_key), resolve_key=resolver, now=NOW, status=cache)
    assert info.value.caller_fault is False


def test_list_signed_by_another_issuer_is_refused(with_status, org_key):
    rogue = Ed25519KeyPair.from_seed(bytes([5]) * 32)
    rogue_did = "did:web:rogue.accord.test"
    resolver = StaticKeyResolver({ORG_VM: org_key.public_key, rogue_did + "#key-1": rogue.public_key})

    def fetch(url):
        unsigned = status_list_credential(
            issuer=rogue_did,
            credential_id=url,
            purpose="revocation",
            status_list=StatusList(),
            valid_from=NOW - timedelta(days=1),
        )
        return issue_credential(unsigned, key=rogue, verification_method=rogue_did + "#key-1")

    with_status["credentialStatus"] = with_status["credentialStatus"][0]
    cache = StatusListCache(fetch, resolve_key=resolver)
    with pytest.raises(StatusUnavailableError) as info:
        verify_credential(_signed(with_status, org_key), resolve_key=resolver, now=NOW, status=cache)
    assert "issuer" in info.value.message


def test_tampered_list_is_refused(with_status, org_key, resolver):
    publisher = _Publisher(org_key)

    def fetch(url):
        doc = publisher.fetch(url)
        flipped = StatusList()
        flipped.set(7, True)
        doc["credentialSubject"]["encodedList"] = flipped.encode()
        return doc

    cache = StatusListCache(fetch, resolve_key=resolver)
    with pytest.raises(StatusUnavailableError) as info:
        verify_credential(_signed(with_status, org_key), resolve_key=resolver, now=NOW, status=cache)
    assert info.value.metadata["cause"] == "INVALID_SIGNATURE"


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "StatusList2021Entry"},
        {
            "type": "BitstringStatusListEntry",
            "statusPurpose": "message",
            "statusListIndex": "1",
            "statusListCredential": LIST_URL,
        },
        {
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": 1,
            "statusListCredential": LIST_URL,
        },
        {
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": "-1",
            "statusListCredential": LIST_URL,
        },
        {
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": "999999999",
            "statusListCredential": LIST_URL,
        },
    ],
)
def test_malformed_entries(entry, org_key, resolver):
    cache = StatusListCache(_Publisher(org_key).fetch, resolve_key=resolver)
    credential = {"issuer": ORG_DID, "credentialStatus": entry}
    with pytest.raises(Exception) as info:
        cache.check(credential, now=NOW)
    assert info.value.reason == "MALFORMED_CREDENTIAL"
