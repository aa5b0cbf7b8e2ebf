from __future__ import annotations

import pytest

from credentials import (
    Ed25519KeyPair,
    InvalidSignatureError,
    MalformedKeyError,
    public_key_from_jwk,
    public_key_from_multibase,
    verify_ed25519,
)
from credentials.keys import multibase_encode_base58btc
from tests.credentials.cred_support import RDFC, load

# RFC 8037 Appendix A.1/A.2 (the Ed25519 key of RFC 8032 §7.1 TEST 1).
RFC8037_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
# RFC 8032 §7.1 TEST 1: empty message signature.
RFC8032_T1_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8037_jwk_import_export_round_trip():
    key = Ed25519KeyPair.from_jwk(RFC8037_JWK)
    assert key.seed.hex() == "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    assert key.to_jwk(include_private=True) == RFC8037_JWK
    assert key.to_jwk() == {k: v for k, v in RFC8037_JWK.items() if k != "d"}
    assert public_key_from_jwk(key.to_jwk()) == key.public_key


def test_rfc8032_test1_signature():
    key = Ed25519KeyPair.from_jwk(RFC8037_JWK)
    assert key.sign(b"") == RFC8032_T1_SIG
    verify_ed25519(key.public_key, RFC8032_T1_SIG, b"")
    with pytest.raises(InvalidSignatureError):
        verify_ed25519(key.public_key, RFC8032_T1_SIG, b"x")


def test_w3c_multikey_pair_round_trip():
    pair = load(RDFC / "keyPair.json")
    key = Ed25519KeyPair.from_multibase(pair["privateKeyMultibase"])
    assert key.public_key_multibase == pair["publicKeyMultibase"]
    assert key.secret_key_multibase == pair["privateKeyMultibase"]
    assert public_key_from_multibase(pair["publicKeyMultibase"]) == key.public_key
    assert key.public_key_multibase.startswith("z6Mk")
    assert key.secret_key_multibase.startswith("z3u2")


def test_generate_gives_distinct_working_keys():
    a, b = Ed25519KeyPair.generate(), Ed25519KeyPair.generate()
    assert a.seed != b.seed and len(a.public_key) == 32
    sig = a.sign(b"m")
    assert len(sig) == 64
    verify_ed25519(a.public_key, sig, b"m")
    with pytest.raises(InvalidSignatureError):
        verify_ed25519(b.public_key, sig, b"m")


def test_seed_is_not_in_repr():
    key = Ed25519KeyPair.from_seed(bytes(32))
    assert bytes(32).hex() not in repr(key) and "seed" not in repr(key)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x6Mk",  # unknown multibase prefix
        "z0OIl",  # characters outside the base58btc alphabet
        multibase_encode_base58btc(b"\x12\x00" + bytes(32)),  # sha2-256 multicodec
        multibase_encode_base58btc(b"\xed\x01" + bytes(31)),  # 31 bytes
        multibase_encode_base58btc(b"\x80\x26" + bytes(32)),  # a secret key, not a public key
    ],
)
def test_bad_public_multikey(value):
    with pytest.raises(MalformedKeyError):
        public_key_from_multibase(value)


def test_secret_multikey_with_public_multicodec_is_refused():
    pub = Ed25519KeyPair.from_seed(bytes(32)).public_key_multibase
    with pytest.raises(MalformedKeyError) as info:
        Ed25519KeyPair.from_multibase(pub)
    assert info.value.reason == "MALFORMED_KEY"
    assert info.value.metadata["expected"] == "8026"


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "d": RFC8037_JWK["d"]},
        {"kty": "OKP", "crv": "X25519", "d": RFC8037_JWK["d"]},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_JWK["x"]},  # no d
        {"kty": "OKP", "crv": "Ed25519", "d": RFC8037_JWK["d"] + "=="},  # padded
        {"kty": "OKP", "crv": "Ed25519", "d": "AAAA"},  # 3 bytes
        {**RFC8037_JWK, "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},  # x not of d
    ],
)
def test_bad_private_jwk(jwk):
    with pytest.raises(MalformedKeyError):
        Ed25519KeyPair.from_jwk(jwk)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "0" * 32])
def test_bad_seed(seed):
    with pytest.raises(MalformedKeyError):
        Ed25519KeyPair.from_seed(seed)


def test_verify_rejects_bad_lengths():
    key = Ed25519KeyPair.from_seed(bytes(32))
    with pytest.raises(MalformedKeyError):
        verify_ed25519(key.public_key[:31], bytes(64), b"")
    with pytest.raises(InvalidSignatureError):
        verify_ed25519(key.public_key, bytes(63), b"")
