"""R-WIT-1..3: which cosignatures a requester counts for a provider's log, and how many it needs.

Real Ed25519 note signatures and C2SP cosignatures; the policy is the one the
requester node builds (:func:`federation.receipts.peer_log_policy`) from its
configuration and pinned bundles, and the checkpoint goes through
:meth:`federation.receipts.PeerLogBook.settle`, the step that settles receipts.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from federation.receipts import PeerLogBook, peer_log_policy
from ledger import (
    Checkpoint,
    CosignatureSigner,
    NoteSigner,
    NoteVerifier,
    QuorumNotMetError,
    leaf_hash,
)
from ledger.policy import DEFAULT_MAX_FUTURE_SKEW

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ORIGIN = "hospital.accord.test/ledger"


def _witness(org: str, seed: int) -> CosignatureSigner:
    return CosignatureSigner(f"{org}.accord.test/witness", bytes([seed]) * 32)


LOG = NoteSigner(ORIGIN, b"\x01" * 32)
W = {org: _witness(org, 0x40 + i) for i, org in enumerate(("relief", "hospital", "supplier", "insurer"))}
BODY = Checkpoint(ORIGIN, 3, leaf_hash(b"x")).body()


def _bundle(org: str, *, witness: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        org_name=org,
        org_did=f"did:web:{org}.accord.test",
        witness_vkey=W[org].vkey if witness else "",
        ledger_vkey=LOG.vkey if org == "hospital" else "",
    )


def _requester(*, witnesses, quorum, peers):
    """The parts of a relief node that :func:`peer_log_policy` reads (configuration and pinned bundles)."""
    return SimpleNamespace(
        config=SimpleNamespace(org_name="relief", witnesses=tuple(witnesses), witness_quorum=quorum),
        peers=list(peers),
        witness=SimpleNamespace(vkey=W["relief"].vkey),
    )


def _settle(policy, note: str, now: datetime = NOW) -> int:
    async def prove(a, b):  # pragma: no cover - no pending receipt, nothing to prove
        raise AssertionError("no proof expected")

    return asyncio.run(
        PeerLogBook().settle(
            ORIGIN,
            witnessed_note=note,
            verifier=NoteVerifier.from_vkey(LOG.vkey),
            policy=policy,
            prove=prove,
            now=now,
        )
    )


def _cosigned(*orgs: str, at: datetime = NOW) -> str:
    return LOG.sign(BODY) + "".join(W[o].cosign(BODY, now=at) for o in orgs)


PROVIDER = _bundle("hospital")


def test_the_providers_own_witness_is_never_counted_even_when_named():
    """R-WIT-1: relief names hospital as a witness; hospital's cosignature of its own log is ignored."""
    node = _requester(witnesses=("hospital", "supplier"), quorum=1, peers=[PROVIDER, _bundle("supplier")])
    policy = peer_log_policy(node, PROVIDER)
    assert set(policy.witnesses) == {"relief", "supplier"}
    with pytest.raises(QuorumNotMetError):
        _settle(policy, _cosigned("hospital"))
    assert _settle(policy, _cosigned("hospital", "supplier")) == 0  # met by supplier (no receipt pending)
    assert set(policy.check(_cosigned("hospital", "supplier"), now=NOW)) == {"supplier"}


def test_only_own_and_named_witnesses_with_a_key_are_counted():
    """R-WIT-1: a pinned peer not named in ``witnesses``, or named without a witness key, is not counted."""
    node = _requester(
        witnesses=("supplier",),
        quorum=2,
        peers=[PROVIDER, _bundle("supplier", witness=False), _bundle("insurer")],
    )
    policy = peer_log_policy(node, PROVIDER)
    assert set(policy.witnesses) == {"relief"}
    assert set(policy.check(_cosigned("relief", "insurer", "supplier"), now=NOW)) == {"relief"}


def test_quorum_is_capped_at_the_number_of_counted_witnesses():
    """R-WIT-2: k = max(1, min(witness_quorum, n)); with quorum 5 and n = 2 both are needed, not 5."""
    node = _requester(witnesses=("supplier", "insurer"), quorum=5, peers=[PROVIDER, _bundle("supplier")])
    policy = peer_log_policy(node, PROVIDER)  # insurer is named but not pinned: n = 2 (relief, supplier)
    assert set(policy.witnesses) == {"relief", "supplier"}
    assert _settle(policy, _cosigned("relief", "supplier")) == 0
    for one in ("relief", "supplier"):
        with pytest.raises(QuorumNotMetError):
            _settle(policy, _cosigned(one))


def test_quorum_below_n_needs_only_k():
    """R-WIT-2: quorum 1 of n = 3 is met by any one counted witness."""
    node = _requester(
        witnesses=("supplier", "insurer"), quorum=1, peers=[PROVIDER, _bundle("supplier"), _bundle("insurer")]
    )
    policy = peer_log_policy(node, PROVIDER)
    assert set(policy.witnesses) == {"relief", "supplier", "insurer"}
    for one in ("relief", "supplier", "insurer"):
        assert _settle(policy, _cosigned(one)) == 0
    with pytest.raises(QuorumNotMetError):
        _settle(policy, _cosigned("hospital"))


@pytest.mark.parametrize(
    ("ahead", "counted"),
    [(0, True), (299, True), (300, True), (301, False), (3600, False), (-86400 * 365, True)],
)
def test_future_skew_boundary_is_300_seconds(ahead, counted):
    """R-WIT-3: up to 300 s ahead of the requester's clock counts, 301 s does not; no age bound."""
    assert DEFAULT_MAX_FUTURE_SKEW == timedelta(seconds=300)
    node = _requester(witnesses=(), quorum=1, peers=[PROVIDER])
    policy = peer_log_policy(node, PROVIDER)
    note = _cosigned("relief", at=NOW + timedelta(seconds=ahead))
    if counted:
        assert _settle(policy, note, now=NOW) == 0
    else:
        with pytest.raises(QuorumNotMetError):
            _settle(policy, note, now=NOW)
    # the same note, a second later on the requester's clock, is counted once it is within 300 s
    if ahead == 301:
        assert _settle(policy, note, now=NOW + timedelta(seconds=1)) == 0
