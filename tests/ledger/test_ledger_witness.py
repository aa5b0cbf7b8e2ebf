"""Cosignatures, tlog-policy quorums, the tlog-witness protocol and split-view evidence."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_support import ORIGIN, make_entry, vectors

from ledger import (
    SIG_MLDSA44,
    Checkpoint,
    CommitState,
    CosignatureSigner,
    CosignatureVerifier,
    EquivocationError,
    InvalidKeyError,
    InvalidSignatureError,
    MalformedPolicyError,
    NoteSigner,
    NoteVerifier,
    QuorumNotMetError,
    SignedCheckpoint,
    TransparencyLog,
    Witness,
    WitnessPolicy,
    compare_checkpoints,
    format_add_checkpoint,
    leaf_hash,
    merkle_root,
    open_checkpoint,
    open_cosignatures,
    verify_receipt,
)
from ledger.hashing import CompactRange
from ledger.proofs import consistency_proof_from

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
COSIG = vectors("formats-note-cosigv1")
DIST = vectors("distributor-readme")
AW = vectors("distributor-witnesses-prod")["AW_WITNESSES"]
LOGS = vectors("omniwitness-logs")
MONKEYS = vectors("witness-witness-test")
C2SP_W = vectors("c2sp-tlog-witness")

# ------------------------------------------------------------------ cosignatures


def test_cosignature_vectors():
    v = CosignatureVerifier.from_vkey(COSIG["COSIG_VKEY_NATIVE"])
    assert v.key_id.hex() == "da77ade7"
    raw = base64.b64decode(COSIG["COSIG_TS_SIG"])
    assert CosignatureVerifier.timestamp_of(raw[4:]) == COSIG["COSIG_TS_UNIX"]


def test_real_armored_witness_cosignatures_verify():
    verifiers = [CosignatureVerifier.from_vkey(v) for v in AW.values()]
    _, cos = open_cosignatures(DIST["AW_FTLOG_CHECKPOINT"], verifiers)
    assert {c.name for c in cos} == {"ArmoredWitness-weathered-rain", "ArmoredWitness-floral-sky"}
    _, cos = open_cosignatures(DIST["PIXEL_CHECKPOINT"], verifiers)
    assert {c.name for c in cos} == {"ArmoredWitness-small-breeze", "ArmoredWitness-autumn-wood"}
    breeze = CosignatureVerifier.from_vkey(AW["ArmoredWitness-small-breeze"])
    assert breeze.key_id.hex() == "9d1ab951"  # 0x04 ID of a key published as 0x01 vkey 7b3ada3a


def test_cosignature_moved_onto_another_body_fails():
    verifiers = [CosignatureVerifier.from_vkey(v) for v in AW.values()]
    note = DIST["AW_FTLOG_CHECKPOINT"].replace("\n59\n", "\n60\n", 1)
    with pytest.raises(InvalidSignatureError):
        open_cosignatures(note, verifiers)


def test_mldsa_vector_key_id_mismatch_is_rejected():
    with pytest.raises(InvalidKeyError) as exc:
        CosignatureVerifier.from_vkey(COSIG["MLDSA_VKEY_FORMATS"])
    assert exc.value.metadata["expected"] == "31236897"


def test_ed25519_covers_extensions_mldsa_does_not():
    a = Checkpoint("log.example", 3, b"\x01" * 32, ("ext-a",)).body()
    b = Checkpoint("log.example", 3, b"\x01" * 32, ("ext-b",)).body()
    ed = CosignatureSigner("w.example/ed", b"\x04" * 32)
    ml = CosignatureSigner("w.example/ml", b"\x06" * 32, sig_type=SIG_MLDSA44)
    assert ml.verifier().sig_type == SIG_MLDSA44 and len(ml.public_key) == 1312
    for signer, survives in ((ed, False), (ml, True)):
        line = signer.cosign(a, now=NOW)
        assert open_cosignatures(a + "\n" + line, [signer.verifier()])[1][0].timestamp == int(NOW.timestamp())
        if survives:
            assert open_cosignatures(b + "\n" + line, [signer.verifier()])[1]
        else:
            with pytest.raises(InvalidSignatureError):
                open_cosignatures(b + "\n" + line, [signer.verifier()])


# ------------------------------------------------------------------ policy


def _witnesses(n):
    return [CosignatureSigner(f"w{i}.example", bytes([0x40 + i]) * 32) for i in range(n)]


def test_policy_parse_groups_and_quorum():
    x, y = (
        _witnesses(3),
        [CosignatureSigner(f"y{i}.example", bytes([0x60 + i]) * 32) for i in range(3)],
    )
    log = NoteSigner("log.example", b"\x01" * 32)
    text = f"""# example with two levels
log {log.vkey}

witness X1 {x[0].vkey}
witness X2 {x[1].vkey}\thttps://x2.example/
witness X3 {x[2].vkey}
group X-witnesses 2 X1 X2 X3
witness Y1 {y[0].vkey}
witness Y2 {y[1].vkey}
witness Y3 {y[2].vkey}
  group Y-witnesses any Y1 Y2 Y3
group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""
    p = WitnessPolicy.parse(text)
    assert p.satisfied_by({"X1", "X3", "Y2"})
    assert not p.satisfied_by({"X1", "Y1", "Y2", "Y3"})
    assert not p.satisfied_by({"X1", "X2", "X3"})
    assert WitnessPolicy.parse(p.to_text()).satisfied_by({"X1", "X2", "Y1"})


@pytest.mark.parametrize(
    "body",
    [
        "quorum W9\n",  # undefined
        "group g 1 W1\nwitness W1 {v0}\nquorum g\n",  # used before definition
        "witness W1 {v0}\ngroup g 2 W1\nquorum g\n",  # k > n
        "witness W1 {v0}\ngroup g 0 W1\nquorum g\n",  # k = 0
        "witness W1 {v0}\ngroup g 1 W1 W1\nquorum g\n",  # member twice
        "witness W1 {v0}\ngroup g any\nquorum g\n",  # empty group
        "witness W1 {v0}\ngroup g any none\nquorum g\n",  # none as member
        "witness W1 {v0}\nwitness W2 {v0}\nquorum W1\n",  # duplicate key
        "witness W1 {v0}\nquorum W1\nquorum W1\n",  # two quorums
        "witness W1 {v0}\n",  # no quorum
        "witnes W1 {v0}\nquorum none\n",  # unknown keyword
        "witness W1 {v0}\x0b\nquorum none\n",  # control character
        "witness none {v0}\nquorum none\n",  # reserved name
        "witness W1 notavkey\nquorum W1\n",
    ],
)
def test_policy_rejects(body):
    v0 = _witnesses(1)[0].vkey
    with pytest.raises(MalformedPolicyError):
        WitnessPolicy.parse(body.format(v0=v0))
    with pytest.raises(MalformedPolicyError):
        WitnessPolicy.k_of_n(1, {})


def test_quorum_none_and_freshness_and_ignored_lines():
    log = NoteSigner("log.example", b"\x01" * 32)
    ws = _witnesses(3)
    body = Checkpoint("log.example", 1, leaf_hash(b"a")).body()
    note = log.sign(body)
    p = WitnessPolicy.k_of_n(
        2, {f"W{i}": w.vkey for i, w in enumerate(ws)}, logs=[log.vkey], max_age=timedelta(hours=1)
    )
    assert WitnessPolicy.parse("quorum none\n").satisfied_by(set())
    fresh = ws[0].cosign(body, now=NOW)
    stale = ws[1].cosign(body, now=NOW - timedelta(hours=2))
    future = ws[2].cosign(body, now=NOW + timedelta(hours=1))
    with pytest.raises(QuorumNotMetError):
        p.verify_checkpoint(note + fresh + stale + future, now=NOW)
    assert p.check(note + fresh + stale + future) == {"W0", "W1", "W2"}  # no clock: all count
    # A witness line carrying the 0x01 key ID (not the 0x04 one) is ignored, as is grease.
    wrong_id = NoteSigner("w1.example", bytes([0x41]) * 32).signature_line(body)
    grease = "\u2014 w2.example " + base64.b64encode(b"\xff" * 76).decode() + "\n"
    with pytest.raises(QuorumNotMetError):
        p.verify_checkpoint(note + fresh + wrong_id + grease, now=NOW)
    signed = p.verify_checkpoint(note + fresh + ws[1].cosign(body, now=NOW), now=NOW)
    assert signed.checkpoint.size == 1
    # Witness cosignatures alone, without the log's signature, are rejected.
    witness_only = body + "\n" + fresh + ws[1].cosign(body, now=NOW)
    with pytest.raises(InvalidSignatureError):
        p.verify_checkpoint(witness_only, now=NOW)


# ------------------------------------------------------------------ witness protocol


@pytest.fixture
def witness(tmp_path):
    w = Witness.open(f"sqlite:///{tmp_path / 'witness.db'}", name="witness.example/w1", seed=b"\x33" * 32)
    w.add_log("monkeys", MONKEYS["MONKEYS_VKEY"], now=NOW)
    yield w
    w.close()


MPROOF = [bytes.fromhex(h) for h in MONKEYS["MONKEYS_PROOF"]]


def _add(w, old, proof, note):
    return w.add_checkpoint(format_add_checkpoint(old, proof, note), now=NOW)


def test_witness_upstream_vector_5_to_8(witness):
    r = _add(witness, 0, [], MONKEYS["MONKEYS_INIT"])
    assert r.status == 200
    r = _add(witness, 5, MPROOF, MONKEYS["MONKEYS_NEXT"])
    assert r.status == 200
    line = r.body.decode()
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    v = CosignatureVerifier.from_vkey(witness.vkey)
    _, cos = open_cosignatures(MONKEYS["MONKEYS_NEXT"] + line, [v])
    assert cos[0].timestamp == int(NOW.timestamp())
    assert witness.latest("monkeys").checkpoint.size == 8


def test_witness_decision_table(witness):
    assert _add(witness, 0, [], MONKEYS["MONKEYS_INIT"]).status == 200
    r = _add(witness, 0, [], MONKEYS["MONKEYS_NEXT"])
    assert (r.status, r.body, r.content_type) == (409, b"5\n", "text/x.tlog.size")
    assert _add(witness, 9, MPROOF, MONKEYS["MONKEYS_NEXT"]).status == 400  # old > size
    assert witness.add_checkpoint(b"garbage", now=NOW).status == 400
    other = NoteSigner("other.example", b"\x05" * 32)
    assert _add(witness, 0, [], other.sign(Checkpoint("other.example", 1, b"\x01" * 32).body())).status == 404
    forged = NoteSigner("monkeys", b"\x05" * 32).sign(MONKEYS["MONKEYS_NEXT"].split("\n\n")[0] + "\n")
    assert _add(witness, 5, MPROOF, forged).status == 403
    sig_line = MONKEYS["MONKEYS_NEXT"].split("\n\n")[1]
    raw = bytearray(base64.b64decode(sig_line.split(" ")[2]))
    raw[20] ^= 1
    corrupted = (
        MONKEYS["MONKEYS_NEXT"].split("\n\n")[0]
        + "\n\n\u2014 monkeys "
        + base64.b64encode(bytes(raw)).decode()
        + "\n"
    )
    assert _add(witness, 5, MPROOF, corrupted).status == 403
    tampered = [MPROOF[0], MPROOF[1][:-1] + b"\x00", *MPROOF[2:]]
    assert _add(witness, 5, tampered, MONKEYS["MONKEYS_NEXT"]).status == 422
    assert _add(witness, 5, MPROOF[:-1], MONKEYS["MONKEYS_NEXT"]).status == 422  # truncated
    assert witness.latest("monkeys").checkpoint.size == 5  # nothing moved
    assert _add(witness, 5, MPROOF, MONKEYS["MONKEYS_NEXT"]).status == 200


def test_witness_422_cases_with_own_log(tmp_path):
    w = Witness.open(f"sqlite:///{tmp_path / 'w.db'}", name="w.example", seed=b"\x34" * 32)
    log = NoteSigner("log.example", b"\x01" * 32)
    w.add_log("log.example", log.vkey)
    leaves = [leaf_hash(bytes([i])) for i in range(8)]
    note5 = log.sign(Checkpoint("log.example", 5, merkle_root(leaves[:5])).body())
    assert _add(w, 0, [b"\x00" * 32], note5).status == 422  # old 0 with a proof
    bad_zero = log.sign("log.example\n0\n" + base64.b64encode(b"\x01" * 32).decode() + "\n")
    assert _add(w, 0, [], bad_zero).status == 422
    assert _add(w, 0, [], note5).status == 200
    # Same size, different root: 409 and the two notes are kept as evidence.
    fork5 = log.sign(Checkpoint("log.example", 5, b"\x09" * 32).body())
    r = _add(w, 5, [], fork5)
    assert (r.status, r.body) == (409, b"5\n")
    ev = w.equivocations()
    assert len(ev) == 1 and ev[0].note_a == note5 and ev[0].note_b == fork5
    err = ev[0].error()
    assert isinstance(err, EquivocationError) and err.reason == "EQUIVOCATION"
    assert w.known_logs() == [("log.example", log.vkey, 5)]
    # A proof valid within a forked history fails against the stored root.
    forked = list(leaves)
    forked[2] = leaf_hash(b"fork")
    rng = CompactRange()
    nodes = {(lv, ix): h for lv, ix, h in rng.extend(forked)}
    proof = consistency_proof_from(5, 8, lambda ks: {k: nodes[k] for k in ks})
    fork8 = log.sign(Checkpoint("log.example", 8, rng.root()).body())
    assert _add(w, 5, proof, fork8).status == 422
    w.close()


def test_witness_state_is_atomic_under_concurrent_requests(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    log = NoteSigner("log.example", b"\x01" * 32)
    leaves = [leaf_hash(bytes([i])) for i in range(64)]
    setup = Witness.open(url, name="w.example", seed=b"\x35" * 32)
    setup.add_log("log.example", log.vkey)
    setup.close()
    notes = [log.sign(Checkpoint("log.example", n, merkle_root(leaves[:n])).body()) for n in range(1, 17)]
    statuses = []
    lock = threading.Lock()

    def go(note):
        w = Witness.open(url, name="w.example", seed=b"\x35" * 32)
        r = w.add_checkpoint(format_add_checkpoint(0, [], note), now=NOW)
        with lock:
            statuses.append(r.status)
        w.close()

    threads = [threading.Thread(target=go, args=(n,)) for n in notes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 15  # exactly one old-0 request can win
    w = Witness.open(url, name="w.example", seed=b"\x35" * 32)
    assert w.latest("log.example").checkpoint.size in range(1, 17)
    w.close()


def test_compare_checkpoints():
    log = NoteSigner("log.example", b"\x01" * 32)
    leaves = [leaf_hash(bytes([i])) for i in range(8)]
    rng = CompactRange()
    nodes = {(lv, ix): h for lv, ix, h in rng.extend(leaves)}
    get = lambda ks: {k: nodes[k] for k in ks}  # noqa: E731

    def signed(n, root=None):
        note = log.sign(Checkpoint("log.example", n, root or merkle_root(leaves[:n])).body())
        return open_checkpoint(note, log.verifier())

    a5, a8 = signed(5), signed(8)
    compare_checkpoints(a5, a8, proof=consistency_proof_from(5, 8, get))
    w = CosignatureSigner("w.example", b"\x44" * 32)
    t1 = SignedCheckpoint(a5.checkpoint, a5.note + w.cosign(a5.checkpoint.body(), now=NOW))
    t2 = SignedCheckpoint(a5.checkpoint, a5.note + w.cosign(a5.checkpoint.body(), now=NOW + timedelta(1)))
    compare_checkpoints(t1, t2)  # same head cosigned at two times: no conflict
    with pytest.raises(EquivocationError) as exc:
        compare_checkpoints(a5, signed(5, b"\x07" * 32))
    assert exc.value.note_a == a5.note
    with pytest.raises(EquivocationError):
        compare_checkpoints(a5, signed(8, b"\x07" * 32), proof=consistency_proof_from(5, 8, get))


# ------------------------------------------------------------------ log + witnesses


def test_log_collects_quorum_and_becomes_witnessed(tmp_path, signer, db_url):
    ws = [
        Witness.open(
            f"sqlite:///{tmp_path / f'w{i}.db'}",
            name=f"peer{i}.example/witness",
            seed=bytes([0x50 + i]) * 32,
        )
        for i in range(3)
    ]
    policy = WitnessPolicy.k_of_n(2, {f"peer{i}": w.vkey for i, w in enumerate(ws)}, logs=[signer.vkey])
    for w in ws:
        w.add_log(ORIGIN, signer.vkey)
    log = TransparencyLog.open(db_url, origin=ORIGIN, signer=signer, witness_policy=policy)
    log.append([make_entry(i) for i in range(5)])
    cp = log.integrate()
    r0 = ws[0].add_checkpoint(log.add_checkpoint_request(0), now=NOW)
    assert r0.status == 200
    log.add_cosignatures(cp, r0.body, now=NOW)
    assert log.get(2).state is CommitState.CHECKPOINTED
    r1 = ws[1].add_checkpoint(log.add_checkpoint_request(0), now=NOW)
    full = log.add_cosignatures(cp, r1.body, now=NOW)
    assert log.get(2).state is CommitState.WITNESSED
    assert policy.verify_checkpoint(full.note, now=NOW).checkpoint == cp.checkpoint
    # Next round: the witness answers 409 with its size, the log retries with it.
    log.append([make_entry(i) for i in range(5, 9)])
    cp2 = log.integrate()
    r = ws[0].add_checkpoint(log.add_checkpoint_request(0), now=NOW)
    assert (r.status, r.body) == (409, b"5\n")
    r = ws[0].add_checkpoint(log.add_checkpoint_request(int(r.body)), now=NOW)
    assert r.status == 200
    log.add_cosignatures(cp2, r.body, now=NOW)
    assert log.get(7).state is CommitState.CHECKPOINTED
    assert log.get(3).state is CommitState.WITNESSED
    # Receipts: the witnessed one verifies under the policy; the latest does not yet.
    rec = log.receipt(3, witnessed=True)
    got = verify_receipt(rec, entry=make_entry(3), log_verifier=signer.verifier(), policy=policy, now=NOW)
    assert got.size == 5
    with pytest.raises(QuorumNotMetError):
        verify_receipt(
            log.receipt(3),
            entry=make_entry(3),
            log_verifier=signer.verifier(),
            policy=policy,
            now=NOW,
        )
    strict = WitnessPolicy.k_of_n(3, {f"peer{i}": w.vkey for i, w in enumerate(ws)})
    with pytest.raises(QuorumNotMetError):
        verify_receipt(rec, entry=make_entry(3), log_verifier=signer.verifier(), policy=strict, now=NOW)
    # A bad cosignature from a known witness is refused.
    name, b64 = r0.body.decode().rstrip("\n").split(" ")[1:]
    raw = bytearray(base64.b64decode(b64))
    raw[30] ^= 1  # inside the Ed25519 signature, key ID intact
    bad = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        log.add_cosignatures(cp, bad, now=NOW)
    # The same line with another key ID is just an unknown key: ignored.
    raw[0] ^= 1
    log.add_cosignatures(cp, f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n", now=NOW)
    for w in ws:
        w.close()
    log.close()


def test_log_detects_its_own_key_signing_a_fork(log, signer):
    policy = WitnessPolicy.k_of_n(1, {"w": _witnesses(1)[0].vkey})
    log.set_witness_policy(policy)
    log.append([make_entry(i) for i in range(3)])
    honest = log.integrate()
    fork = signer.sign(Checkpoint(ORIGIN, 3, b"\x0f" * 32).body())
    with pytest.raises(EquivocationError) as exc:
        log.add_cosignatures(fork, [], now=NOW)
    assert exc.value.note_a == honest.note and exc.value.note_b == fork
    ev = log.equivocations()
    assert len(ev) == 1 and ev[0].size == 3 and ev[0].note_b == fork
    with pytest.raises(InvalidSignatureError):
        log.add_cosignatures(
            NoteSigner(ORIGIN, b"\x0e" * 32).sign(Checkpoint(ORIGIN, 3, b"\x0f" * 32).body()), []
        )
    assert NoteVerifier.from_vkey(signer.vkey).verify(honest.note)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.builds(
            lambda old, proof, tail: format_add_checkpoint(old, proof, tail),
            st.integers(0, 20),
            st.lists(st.binary(min_size=32, max_size=32), max_size=4),
            st.sampled_from([MONKEYS["MONKEYS_INIT"], MONKEYS["MONKEYS_NEXT"], "x\n\n", ""]),
        ),
    )
)
def test_add_checkpoint_is_total(witness, body):
    """Any request body yields a protocol status, never an exception."""
    r = witness.add_checkpoint(body, now=NOW)
    assert r.status in (200, 400, 403, 404, 409, 422)
    if r.status == 409:
        assert r.content_type == "text/x.tlog.size" and r.body.endswith(b"\n")


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_receipt_and_policy_parsing_are_total(data):
    from ledger import LedgerError, Receipt

    for fn, kind in ((Receipt.parse, Receipt), (WitnessPolicy.parse, WitnessPolicy)):
        try:
            parsed = fn(data)
        except LedgerError as exc:  # the only failure allowed: our typed error with a reason
            assert exc.reason
        else:
            assert isinstance(parsed, kind)
