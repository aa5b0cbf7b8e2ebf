"""The node's ledger as others see it: HTTP tiles, CLI proofs, crash safety of acknowledged entries."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from federation.client import AgentClient
from federation.supervisor import NodeProcess
from interop_tests.checkers import (
    parse_checkpoint,
    rfc9162_leaf_hash,
    rfc9162_verify_inclusion,
    verify_signed_note,
)
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("ledger-node")
TRIAGE = ["patient_id", "triage_level", "mobility", "shelter"]


@pytest.fixture(scope="module")
def fed3(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("lg"), orgs=("hospital", "relief"), with_interop=False, http=True)
    yield f
    f.stop()


async def exchanges(fed, n, acked=None, subjects=None):
    async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
        s = await c.open_session("hospital")
        for i in range(n):
            r = await c.request(
                s,
                contract_id="relief-hospital-triage",
                purpose="triage-coordination",
                resource="patients",
                subject=f"patient-{i % 12 + 1:03d}",
                fields=TRIAGE,
            )
            if acked is not None:
                acked.append(r.disclosure_id)


def _mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_http_tiles_reproduce_the_signed_root(fed3):
    run(exchanges(fed3, 5))
    info = json.loads((fed3.layout.orgs["hospital"] / "node.pid").read_text())
    base = f"http://127.0.0.1:{info['http_port']}"
    bundle = json.loads(fed3.layout.bundle_path("hospital").read_text())
    note = urllib.request.urlopen(f"{base}/checkpoint", timeout=10).read().decode()
    cp = parse_checkpoint(verify_signed_note(note, bundle["ledger_vkey"]))
    assert cp.size >= 5
    n = cp.size
    suffix = f".p/{n}" if n < 256 else ""
    # entry contents are not public: the bundle is refused over HTTP (issue #10 class 6) ...
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/tile/entries/000{suffix}", timeout=10)
    assert refused.value.code == 403
    assert b"did:web:" not in refused.value.read()
    # ... the node's operator reads them from its own database
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    own = open_ledger_readonly(NodeIdentity.load(fed3.layout.orgs["hospital"]))
    try:
        entries = [own.get(i).entry.canonical_bytes() for i in range(n)]
    finally:
        own.close()
    tile = urllib.request.urlopen(f"{base}/tile/0/000{suffix}", timeout=10).read()
    leaves = [tile[i : i + 32] for i in range(0, len(tile), 32)]
    assert leaves == [rfc9162_leaf_hash(e) for e in entries]
    assert _mth(leaves) == cp.root
    # values never reach the log: entries hold names and digests
    assert all(b"triage_level" in e or b"denial" in e for e in entries)


def test_cli_inclusion_proof_verifies_independently(fed3):
    run(exchanges(fed3, 3))
    d = fed3.layout.orgs["hospital"]
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "ledger",
            "prove-inclusion",
            "--index",
            "1",
            "--dir",
            str(d),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    proof = json.loads(p.stdout)
    rfc9162_verify_inclusion(
        leaf_index=1,
        tree_size=proof["tree_size"],
        leaf=base64.b64decode(proof["leaf_hash"]),
        path=[base64.b64decode(h) for h in proof["hashes"]],
        root=base64.b64decode(proof["root_hash"]),
    )


def test_kill_9_loses_no_acknowledged_entry(fed3):
    acked: list[str] = []

    async def load():
        try:
            await exchanges(fed3, 400, acked)
        except Exception:
            pass  # the provider died under us

    async def killer():
        while len(acked) < 25:
            await asyncio.sleep(0.01)
        fed3.procs["hospital"].kill()

    async def both():
        await asyncio.gather(load(), killer())

    run(both())
    assert len(acked) >= 25
    fed3.procs["hospital"] = NodeProcess(fed3.layout.orgs["hospital"]).start()
    d = fed3.layout.orgs["hospital"]
    v = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "ledger", "verify", "--dir", str(d)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert v.returncode == 0, v.stdout + v.stderr
    q = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "ledger",
            "query",
            "--dir",
            str(d),
            "--json",
            "--limit",
            "10000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert q.returncode == 0, q.stderr
    logged = {r["disclosure_id"] for r in json.loads(q.stdout)}
    missing = [a for a in acked if a not in logged]
    assert not missing, f"{len(missing)} acknowledged disclosures lost"


def test_http_add_checkpoint_speaks_c2sp_tlog_witness(fed3):
    """A peer's checkpoint POSTed to /add-checkpoint: 409 with the size, then 200 with a cosignature line."""
    import urllib.error

    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    run(exchanges(fed3, 2))
    info = json.loads((fed3.layout.orgs["hospital"] / "node.pid").read_text())
    url = f"http://127.0.0.1:{info['http_port']}/add-checkpoint"
    from federation.supervisor import wait_until

    relief_log = open_ledger_readonly(NodeIdentity.load(fed3.layout.orgs["relief"]))
    try:
        # relief's "received" entries are checkpointed by its witnessing rounds (every 0.5 s here)
        def checkpointed() -> bool:
            c = relief_log.latest_checkpoint()
            return c is not None and c.checkpoint.size > 0

        assert wait_until(checkpointed, timeout=10)
        cp = relief_log.latest_checkpoint()

        def post(body: bytes) -> tuple[int, bytes, str]:
            req = urllib.request.Request(url, data=body, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                return e.code, e.read(), e.headers.get("Content-Type", "")

        # a claimed old size the witness does not hold: 409 and the size it holds
        status, body, ctype = post(
            relief_log.add_checkpoint_request(cp.checkpoint.size, size=cp.checkpoint.size)
        )
        held = cp.checkpoint.size
        if status == 409:
            assert ctype.startswith("text/x.tlog.size")
            held = int(body.decode().strip())
            status, body, _ = post(relief_log.add_checkpoint_request(held, size=cp.checkpoint.size))
        assert status == 200, body
        assert body.decode().startswith("\u2014 hospital.accord.test/witness ")
        # garbage is a 400, not a crash
        assert post(b"not a checkpoint")[0] == 400
    finally:
        relief_log.close()


# ------------------------------------------------------------------ receipts bound to the exchange (#10.5)


@pytest.fixture(scope="module")
def provider_only(tmp_path_factory):
    """Hospital and supplier as processes; relief (the requester) runs in the test, in-process."""
    f = start(tmp_path_factory.mktemp("rcpt"), orgs=("hospital", "supplier"), with_interop=False)
    yield f
    f.stop()


class TamperingLink:
    """The requester's link to the provider, with the provider's answers rewritten by ``tamper``.

    Stands for a dishonest provider (or whoever holds its keys): the real
    provider answers, then ``tamper(outcome, n)`` rewrites the n-th outcome
    before the requester node sees it. Everything else goes to the real client.
    """

    def __init__(self, real, tamper):
        self.real = real
        self.tamper = tamper
        self.outcomes = []

    def __getattr__(self, name):
        return getattr(self.real, name)

    async def exchange(self, bundle, envelope):
        from federation.wire import received_outcome_from_pb, received_outcome_to_pb

        # the tampering works on the protobuf message, as a dishonest provider would send it
        out = received_outcome_to_pb(await self.real.exchange(bundle, envelope))
        self.outcomes.append(out.__deepcopy__())
        return received_outcome_from_pb(self.tamper(out, len(self.outcomes) - 1))


class RefusalTamperingLink(TamperingLink):
    """Like :class:`TamperingLink`, for the provider's decided refusals: ``tamper(err, n)`` rewrites them."""

    async def exchange(self, bundle, envelope):
        from federation.errors import DeniedError, NotFoundError

        try:
            return await self.real.exchange(bundle, envelope)
        except (DeniedError, NotFoundError) as err:
            self.outcomes.append(dict(err.metadata))
            raise self.tamper(err, len(self.outcomes) - 1) from None


async def _in_process_requester(
    layout, tamper, body, *, agent="relief/triage-coordinator", link=TamperingLink
):
    from federation.node import now_utc
    from federation.server import open_node, start_server

    node = open_node(layout.orgs["relief"])
    node.store.put_state("peer_logs", {}, now=now_utc())  # each test starts with a fresh view of its peers
    server, _ = await start_server(node)
    real = node.peer_client
    node.peer_client = link(real, tamper)
    try:
        async with AgentClient.from_wallet(layout.wallets[agent]) as c:
            s = await c.open_session("hospital")

            async def ask(i=0):
                return await c.request(
                    s,
                    contract_id="relief-hospital-triage",
                    purpose="triage-coordination",
                    resource="patients",
                    subject=f"patient-{i % 12 + 1:03d}",
                    fields=TRIAGE,
                )

            return await body(node, ask)
    finally:
        await server.stop(0)
        await real.close()
        await node.close()


def _received(node, reason):
    from ledger import EntryFilter

    return [
        e.entry
        for e in node.ledger.query(EntryFilter(kind="received", limit=10000))
        if e.entry.reason == reason
    ]


def test_receipt_for_another_entry_of_the_providers_log_is_refused(provider_only):
    """The provider answers with a valid receipt for an earlier entry: RECEIPT_MISMATCH, recorded."""
    from federation.errors import FederationError

    def tamper(out, n):
        if n == 1:  # the second answer carries the first exchange's (valid) receipt
            out.receipt.CopyFrom(link.outcomes[0].receipt)
        return out

    link = None

    async def body(node, ask):
        nonlocal link
        link = node.peer_client
        first = await ask(0)
        assert first.receipt_verified
        with pytest.raises(FederationError) as refused:
            await ask(1)
        assert refused.value.reason == "RECEIPT_MISMATCH"
        assert "disclosure_id" in refused.value.metadata["mismatch"]
        assert "request_digest" in refused.value.metadata["mismatch"]
        rows = _received(node, "RECEIPT_MISMATCH")
        assert len(rows) == 1 and rows[0].decision == "deny"
        book = node._receipt_book
        assert book.evidence[-1]["reason"] == "RECEIPT_MISMATCH"

    run(_in_process_requester(provider_only.layout, tamper, body))


def test_payload_other_than_the_logged_one_is_refused(provider_only):
    """The provider logs one response and sends another: the response digest does not match."""
    from federation.errors import FederationError

    def tamper(out, n):
        records = json.loads(out.payload_json)
        records[0]["diagnosis"] = "beyond the contract"
        out.payload_json = json.dumps(records, sort_keys=True, separators=(",", ":")).encode()
        return out

    async def body(node, ask):
        with pytest.raises(FederationError) as refused:
            await ask(2)
        assert refused.value.reason == "RECEIPT_MISMATCH"
        assert refused.value.metadata["mismatch"] == "response_digest"

    run(_in_process_requester(provider_only.layout, tamper, body))


def test_payload_respelled_from_the_logged_bytes_is_refused(provider_only):
    """The same JSON value with other spacing is not the payload whose digest was logged.

    The requester hashes ``payload_json`` as received (spec: response_digest); a
    requester that re-serialized before hashing accepted this.
    """
    from federation.errors import FederationError

    def tamper(out, n):
        records = json.loads(out.payload_json)
        out.payload_json = json.dumps(records, sort_keys=True, indent=1).encode()
        return out

    async def body(node, ask):
        with pytest.raises(FederationError) as refused:
            await ask(2)
        assert refused.value.reason == "RECEIPT_MISMATCH"
        assert refused.value.metadata["mismatch"] == "response_digest"

    run(_in_process_requester(provider_only.layout, tamper, body))


def test_outcome_of_unreasonable_size_is_refused(provider_only):
    from federation.errors import FederationError

    def tamper(out, n):
        out.stripped_fields.extend(f"f{i}" for i in range(5000))
        return out

    async def body(node, ask):
        with pytest.raises(FederationError) as refused:
            await ask(3)
        assert refused.value.reason == "OUTCOME_TOO_LARGE"
        assert refused.value.metadata["field"] == "stripped_fields"

    run(_in_process_requester(provider_only.layout, tamper, body))


def _forged_receipt(layout, entry_bytes, size, index):
    """A receipt signed with the provider's real log key for a tree of ``size`` leaves of its choosing."""
    import os

    from federation.identity import NodeIdentity, ledger_origin
    from ledger import Checkpoint, Receipt, leaf_hash
    from ledger.hashing import CompactRange
    from ledger.proofs import inclusion_proof_from

    ident = NodeIdentity.load(layout.orgs["hospital"])
    origin = ledger_origin(ident.config.org_name)
    signer = ident.ledger_signer()
    leaves = [leaf_hash(os.urandom(16)) for _ in range(size)]
    leaves[index] = leaf_hash(entry_bytes)
    rng = CompactRange()
    nodes = {(lv, ix): h for lv, ix, h in rng.extend(leaves)}
    proof = inclusion_proof_from(index, size, lambda ks: {k: nodes[k] for k in ks})
    note = signer.sign(Checkpoint(origin, size, rng.root()).body())
    return Receipt(index, tuple(proof), note).to_text()


def test_provider_showing_two_roots_at_one_size_is_caught(provider_only):
    """A receipt whose checkpoint (validly signed) contradicts an earlier one: PEER_LOG_INCONSISTENT."""
    from federation.errors import FederationError
    from ledger import Receipt

    layout = provider_only.layout

    def tamper(out, n):
        if n == 1:
            first = Receipt.parse(link.outcomes[0].receipt.tlog_proof)
            size = int(first.checkpoint_note.split("\n")[1])
            out.receipt.tlog_proof = _forged_receipt(layout, out.receipt.entry, size, size - 1)
            out.receipt.leaf_index = size - 1
        return out

    link = None

    async def body(node, ask):
        nonlocal link
        link = node.peer_client
        await ask(4)
        with pytest.raises(FederationError) as refused:
            await ask(5)
        assert refused.value.reason == "PEER_LOG_INCONSISTENT"
        ev = node.ledger.equivocations()
        assert ev and ev[-1].origin == "hospital.accord.test/ledger"
        assert ev[-1].note_a == Receipt.parse(link.outcomes[0].receipt.tlog_proof).checkpoint_note
        with pytest.raises(FederationError) as again:  # a provider caught forking stays refused
            await ask(6)
        assert again.value.reason == "PEER_LOG_INCONSISTENT"

    run(_in_process_requester(layout, tamper, body))


def test_honest_receipts_settle_against_a_witnessed_checkpoint(provider_only):
    """Pending receipts settle once the provider's witnessed checkpoint covers them."""
    from federation.receipts import receipt_book
    from federation.witnessing import WitnessCoordinator

    async def body(node, ask):
        for i in range(4):
            assert (await ask(i)).receipt_verified
        book = receipt_book(node)
        origin = "hospital.accord.test/ledger"
        assert book.pending(origin)
        coord = WitnessCoordinator(node)
        for _ in range(60):  # the provider's witnessing rounds run every 0.5 s here
            await coord.round()
            if not book.pending(origin):
                break
            await asyncio.sleep(0.25)
        assert not book.pending(origin), coord.failures
        assert book.verified(origin)[0] >= 4
        assert node.store.get_state("peer_logs")["logs"][origin]["settled"] >= 1

    run(_in_process_requester(provider_only.layout, lambda out, n: out, body))


def test_unverifiable_outcome_with_malformed_members_is_recorded_not_crashing(provider_only):
    """A receipt that does not verify and an outcome whose members form no entry: RECEIPT_INVALID."""

    def tamper(out, n):
        out.receipt.tlog_proof = "not a tlog-proof"
        out.decision = "maybe"
        out.effective_trust = 7.0
        return out

    async def body(node, ask):
        r = await ask(7)
        assert r.receipt_verified is False
        rows = _received(node, "RECEIPT_INVALID")
        assert rows and rows[-1].decision == "deny" and rows[-1].disclosure_id.startswith("rcv_")

    run(_in_process_requester(provider_only.layout, tamper, body))


def _denial_with_entry_b64(layout, rewrite):
    """A MISSING_SCOPE denial (relief/logistics has no triage scope) whose ``entry_b64`` is rewritten."""
    from federation.errors import FederationError

    def tamper(err, n):
        err.metadata["entry_b64"] = rewrite(err.metadata["entry_b64"])
        return err

    async def body(node, ask):
        with pytest.raises(FederationError) as ei:
            await ask(2)
        return ei.value, _received(node, ei.value.reason)

    return run(
        _in_process_requester(layout, tamper, body, agent="relief/logistics", link=RefusalTamperingLink)
    )


def test_denial_with_its_entry_b64_untouched_is_passed_on_verified(provider_only):
    """The control for the next test: the denial, not rewritten, is MISSING_SCOPE with a verified receipt."""
    err, rows = _denial_with_entry_b64(provider_only.layout, lambda b: b)
    assert err.reason == "MISSING_SCOPE" and err.status == "PERMISSION_DENIED"
    assert err.metadata["receipt_verified"] == "true"
    assert rows and rows[-1].decision == "deny"


@pytest.mark.parametrize(
    "rewrite",
    [
        # the true entry with one character outside the alphabet: a lax decoder drops it and verifies
        lambda b: b[:8] + "!" + b[8:],
        lambda b: b[:8] + "\n" + b[8:],
        lambda b: b[:-4] + "*" * 4,
        lambda b: b + "A",  # bad padding
    ],
    ids=["bang-inside", "newline-inside", "stars", "bad-padding"],
)
def test_denial_whose_entry_b64_is_not_base64_is_refused(provider_only, rewrite):
    """R-RCP-7: ``entry_b64`` is decoded strictly; anything else is RECEIPT_MISMATCH, ``mismatch = entry``."""
    err, rows = _denial_with_entry_b64(provider_only.layout, rewrite)
    assert err.reason == "RECEIPT_MISMATCH" and err.status == "FAILED_PRECONDITION", err
    assert err.metadata["mismatch"] == "entry"
    assert err.metadata["provider_reason"] == "MISSING_SCOPE"
    assert rows and rows[-1].decision == "deny" and rows[-1].extra["provider_reason"] == "MISSING_SCOPE"
