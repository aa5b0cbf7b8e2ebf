"""The pure core of an exchange (federation/exchange.py): plan → outcome / refusal, with no node."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import grpc

from federation import entries, exchange
from federation.domain import Request
from federation.errors import DeniedError, NotFoundError
from federation.wire import status_code_for
from ledger import DisclosureEntry

NOW = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.UTC)


@dataclass
class FakeDecision:
    allow: bool
    reason_codes: tuple[str, ...] = ()
    obligations: tuple[str, ...] = ("delete-after-24h",)
    effective_trust: float = 0.5

    def digest(self) -> str:
        return "cd" * 32


@dataclass(frozen=True)
class FakeReceipt:
    def to_text(self) -> str:
        return "tlog-proof text"


@dataclass
class FakeWritten:
    index: int = 41
    leaf_hash: bytes = b"\1" * 32
    receipt: FakeReceipt = FakeReceipt()


def _base():
    req = Request(
        contract_id="c1",
        purpose="triage",
        resource="patients",
        subject="rec-1",
        fields=("name", "ssn"),
        provider_org="did:web:b",
        agent_did="did:key:z6Mk",
        nonce="n" * 16,
        timestamp_ms=0,
        signed_bytes=b"body",
        agent_signature=b"\0" * 64,
    )
    return entries.provider_base(
        provider_org="did:web:b",
        requester_org="did:web:a",
        request=req,
        contract_hash="",
        decision_hash="cd" * 32,
        effective_trust=0.5,
        now=NOW,
        fields_requested=list(req.fields),
    )


def test_a_release_is_planned_then_answered_with_its_receipt():
    payload = [{"name": "Ada"}]
    plan = exchange.plan_disclosure(
        _base(), payload=payload, released=("name",), stripped=("ssn", "ssn"), record_count=1, reasons=()
    )
    assert plan.allow and plan.entry.kind == "disclosure" and plan.entry.fields_stripped == ("ssn",)
    assert plan.entry.response_digest == exchange.response_digest(payload)
    out = exchange.outcome(plan, FakeDecision(allow=True), FakeWritten())
    assert (out.disclosure_id, out.released_fields, out.stripped_fields) == (
        plan.entry.disclosure_id,
        ("name",),
        ("ssn",),
    )
    assert out.leaf_index == 41 and out.entry == plan.entry.canonical_bytes()
    assert out.obligations == ("delete-after-24h",) and out.payload == payload


def test_a_refusal_carries_the_logged_entry_and_receipt():
    plan = exchange.plan_refusal(_base(), reason="MISSING_SCOPE", reasons=("MISSING_SCOPE", "PARTY_MISMATCH"))
    err = exchange.refusal(plan, org_name="hospital", decision_hash="cd" * 32, written=FakeWritten())
    assert isinstance(err, DeniedError) and err.reason == "MISSING_SCOPE"
    assert status_code_for(err) == grpc.StatusCode.PERMISSION_DENIED
    assert err.metadata["reasons"] == "MISSING_SCOPE,PARTY_MISMATCH" and err.metadata["leaf_index"] == "41"
    logged = DisclosureEntry.from_canonical_bytes(base64.b64decode(err.metadata["entry_b64"]))
    assert logged == plan.entry and logged.kind == "denial"


def test_an_unknown_subject_is_not_found_and_an_audit_refusal_an_audit_denial():
    plan = exchange.plan_refusal(_base(), reason="UNKNOWN_SUBJECT", reasons=())
    err = exchange.refusal(plan, org_name="hospital", decision_hash="", written=FakeWritten())
    assert isinstance(err, NotFoundError) and status_code_for(err) == grpc.StatusCode.NOT_FOUND
    plan = exchange.plan_refusal(
        _base(), reason="RECONSTRUCTION_RISK", reasons=("RECONSTRUCTION_RISK",), extra={"scope": "agent:x"}
    )
    err = exchange.refusal(plan, org_name="hospital", decision_hash="", written=FakeWritten())
    assert plan.entry.kind == "audit_denial" and err.metadata["scope"] == "agent:x"


def test_a_denied_decision_names_its_first_reason():
    assert exchange.deny_reason(FakeDecision(allow=False, reason_codes=("A", "B"))) == "A"
    assert exchange.deny_reason(FakeDecision(allow=False)) == "POLICY_DENIED"
