"""Ledger entries are built in one place (federation/entries.py): the builders, and that nobody else builds.

Fast: no processes, no database.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path
from types import SimpleNamespace

from federation import entries
from federation.domain import ReceivedOutcome, ReceivedReceipt, Request
from ledger import DisclosureEntry, leaf_hash

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.UTC)
A, B = "did:web:a.example", "did:web:b.example"
AGENT = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def _request(**kw) -> Request:
    base = dict(
        contract_id="c1",
        purpose="triage",
        resource="patients",
        subject="rec-1",
        fields=("name", "region"),
        provider_org=B,
        agent_did=AGENT,
        nonce="n" * 16,
        timestamp_ms=0,
        signed_bytes=b"signed body",
        agent_signature=b"\0" * 64,
    )
    base.update(kw)
    return Request(**base)


def _base(request: Request) -> dict:
    return entries.provider_base(
        provider_org=B,
        requester_org=A,
        request=request,
        contract_hash="ab" * 32,
        decision_hash="cd" * 32,
        effective_trust=0.5,
        now=NOW,
        fields_requested=list(request.fields),
    )


def test_no_module_but_entries_builds_a_ledger_entry():
    builders = []
    for path in sorted((ROOT / "federation").rglob("*.py")):
        if path.name != "entries.py" and re.search(r"\bDisclosureEntry\(", path.read_text()):
            builders.append(str(path.relative_to(ROOT)))
    assert builders == []


def test_provider_ids_derive_from_the_signed_bytes():
    req = _request()
    base = _base(req)
    digest = hashlib.sha256(b"signed body").hexdigest()
    assert base["disclosure_id"] == "dsc_" + digest[:32] and base["request_digest"] == digest
    assert base["time"] == "2026-12-04T12:00:00Z"


def test_a_reconstruction_refusal_is_an_audit_denial():
    base = _base(_request())
    assert entries.denial(base, reason="RECONSTRUCTION_RISK").kind == "audit_denial"
    plain = entries.denial(base, reason="MISSING_SCOPE", extra={"dataset": "d"})
    assert plain.kind == "denial" and plain.decision == "deny" and plain.extra == {"dataset": "d"}
    assert plain.fields_released == () and plain.record_count == 0


def test_a_disclosure_names_what_crossed():
    e = entries.disclosure(
        _base(_request()),
        released=("name",),
        stripped=["ssn"],
        record_count=1,
        reason="",
        response_digest="0" * 64,
    )
    assert (e.kind, e.decision, e.fields_released, e.fields_stripped) == (
        "disclosure",
        "allow",
        ("name",),
        ("ssn",),
    )
    assert DisclosureEntry.from_canonical_bytes(e.canonical_bytes()) == e


def test_drift_names_the_last_agent_of_the_chain_and_bounds_evidence():
    e = entries.drift(
        provider_org=B,
        requester_org=A,
        chain=["did:key:root", AGENT],
        reason="AUTHORIZATION_DRIFT",
        metadata={"why": "x" * 500},
        now=NOW,
    )
    assert e.kind == "drift" and e.requester_agent == AGENT and len(e.extra["why"]) == entries.MAX_EXTRA_CHARS


def test_received_entries_reference_the_providers_leaf():
    req = _request()
    provider_entry = b'{"kind":"disclosure"}'
    base = entries.received_base(
        provider_org=B, requester_org=A, request=req, provider_entry=provider_entry, now=NOW
    )
    assert base["provider_leaf_hash"] == base64.b64encode(leaf_hash(provider_entry)).decode()
    outcome = ReceivedOutcome(
        disclosure_id="dsc_1",
        decision="allow",
        released_fields=("name",),
        stripped_fields=(),
        payload_json=b"[]",
        record_count=1,
        reasons=(),
        obligations=(),
        effective_trust=0.5,
        decision_hash="cd" * 32,
        receipt=ReceivedReceipt(tlog_proof="", entry=provider_entry, leaf_index=0, leaf_hash=b""),
    )
    ok = entries.received_outcome(base, outcome, contract_hash="", verified=True, response_digest="0" * 64)
    bad = entries.received_outcome(base, outcome, contract_hash="", verified=False, response_digest="0" * 64)
    assert ok.disclosure_id == "dsc_1" and ok.reason == "" and bad.reason == "RECEIPT_INVALID"
    refused = entries.received_refusal(base, reason="RECEIPT_MISMATCH", metadata={"mismatch": "entry"})
    assert refused.disclosure_id.startswith("rcv_") and refused.decision == "deny"
    assert refused.extra == {"mismatch": "entry"}


def test_equivocation_keeps_digests_of_both_notes():
    ev = SimpleNamespace(origin="b.example/log", size=7, detail="two roots", note_a="A\n", note_b="B\n")
    e = entries.equivocation(log_owner=B, this_org=A, evidence=ev, now=NOW)
    assert e.kind == "equivocation" and e.reason == "EQUIVOCATION"
    assert e.extra["note_a_sha256"] == hashlib.sha256(b"A\n").hexdigest()
    assert e.extra["size"] == "7"
