"""The requester suite's provider log (interop_tests/provider.py) against the ledger's own proofs.

The personas' log is written from RFC 9162 in the kit (``checkers.inclusion_path``,
``checkers.consistency_proof``, ``checkers.mth``); the ledger package is an independent
implementation of the same text, so each is checked against the other, and the persisted
log is one history across reopenings.
"""

from __future__ import annotations

import base64

from interop_tests.checkers import (
    inclusion_path,
    mth,
    rfc9162_leaf_hash,
    rfc9162_verify_consistency,
    rfc9162_verify_inclusion,
)
from interop_tests.provider import ProviderLog


def test_inclusion_paths_match_the_ledger_and_verify():
    from ledger.hashing import CompactRange, merkle_root
    from ledger.proofs import inclusion_proof_from

    for n in range(1, 34):
        leaves = [rfc9162_leaf_hash(b"e%d" % i) for i in range(n)]
        assert mth(leaves) == merkle_root(leaves)
        rng = CompactRange()
        nodes = {(lv, ix): h for lv, ix, h in rng.extend(leaves)}
        for m in range(n):
            path = inclusion_path(m, leaves)
            assert path == list(inclusion_proof_from(m, n, lambda ks, nodes=nodes: {k: nodes[k] for k in ks}))
            rfc9162_verify_inclusion(leaf_index=m, tree_size=n, leaf=leaves[m], path=path, root=mth(leaves))


def test_provider_log_persists_one_history_and_proves_consistency(tmp_path):
    from ledger import NoteVerifier, open_checkpoint

    seed = bytes(range(32))
    log = ProviderLog(tmp_path / "log.json", "interop.accord.test/ledger", seed)
    for i in range(5):
        assert log.append(b"entry-%d" % i) == i
    note5 = log.note()
    again = ProviderLog(tmp_path / "log.json", "interop.accord.test/ledger", seed)
    assert again.leaves == log.leaves
    for i in range(5, 9):
        again.append(b"entry-%d" % i)
    verifier = NoteVerifier.from_vkey(again.signer.vkey)
    cp5 = open_checkpoint(note5, verifier, origin="interop.accord.test/ledger").checkpoint
    cp9 = open_checkpoint(again.note(), verifier, origin="interop.accord.test/ledger").checkpoint
    assert cp9.size == 9 and cp9.root == mth(again.leaves)
    rfc9162_verify_consistency(
        size1=5, size2=9, root1=cp5.root, root2=cp9.root, proof=again.consistency(5, 9)
    )
    proof = again.tlog_proof(7)
    assert proof.startswith("c2sp.org/tlog-proof@v1\nindex 7\n")
    hashes = proof.partition("\n\n")[0].split("\n")[2:]
    rfc9162_verify_inclusion(
        leaf_index=7,
        tree_size=9,
        leaf=again.leaves[7],
        path=[base64.b64decode(h) for h in hashes],
        root=cp9.root,
    )
