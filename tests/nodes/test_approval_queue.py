"""The approval queue on SQLite and PostgreSQL (issue #15): the rule, batching, signatures, caps, expiry."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa

from federation.approvals import (
    ApprovalError,
    ApprovalQueue,
    assess,
    generate_operator_key,
    load_operator_key,
)
from federation.errors import InvalidRequestError
from federation.store import NodeStore, make_engine
from policy import Contract

NOW = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
NODE = "did:web:hospital.example"
REQ = "did:web:relief.example"
PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield NodeStore(make_engine(f"sqlite:///{tmp_path / 'node.db'}"))
        return
    if not PG_URL:
        pytest.skip("needs ACCORD_TEST_DATABASE_URL")
    schema = f"accord_apr_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield NodeStore(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def contract(**approval) -> Contract:
    return Contract.from_dict(
        {
            "id": "c1",
            "version": 1,
            "title": "t",
            "parties": {"provider": {"org": NODE, "name": "h"}, "requester": {"org": REQ, "name": "r"}},
            "purposes": {
                "triage": {
                    "resources": ["patients"],
                    "subjects": ["*"],
                    "mni": ["patient_id"],
                    "optional": {
                        "age": {"sensitivity": 1, "min_trust": 0.5},
                        "dx": {"sensitivity": 3, "min_trust": 0.5},
                    },
                    "required_scopes": [],
                }
            },
            "trust_ceiling": 0.9,
            "trust_budget": {"units": 10, "window_seconds": 3600},
            "rate_limit": None,
            "session_limits": {"max_requests": None, "max_fields": None},
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": "2027-01-01T00:00:00Z",
            "approval": {"require": approval, "expires_seconds": 600, "grant_seconds": 900},
        }
    )


def test_the_rule_and_its_one_line_reason():
    c = contract(min_sensitivity=3, below_trust=0.6, budget_fraction=0.8)
    assert assess(c, purpose="triage", released=["patient_id", "age"], tau=0.7, budget_used=1) is None
    a = assess(c, purpose="triage", released=["patient_id", "dx"], tau=0.7, budget_used=1)
    assert a.rule == "min_sensitivity:3" and "dx (sensitivity 3) beyond MNI" in a.reason
    low = assess(c, purpose="triage", released=["patient_id"], tau=0.4, budget_used=9)
    assert low.rule == "below_trust:0.6;budget_fraction:0.8" and "τ 0.40 < 0.6" in low.reason
    assert "budget 90% used" in low.reason
    riskier = assess(c, purpose="triage", released=["patient_id", "dx", "age"], tau=0.4, budget_used=9)
    assert riskier.risk > low.risk
    from policy import PolicyError

    with pytest.raises(PolicyError):  # no vacuous rule
        contract()


def _hold(q, c, shape, now=NOW, subject="p1"):
    found = assess(c, purpose="triage", released=["patient_id", "age"], tau=0.5, budget_used=1)
    with pytest.raises(ApprovalError) as ei:
        q.hold(
            shape=shape,
            contract=c,
            requester_org=REQ,
            agent="did:key:a",
            purpose="triage",
            resource="patients",
            subject=subject,
            fields=["patient_id", "age"],
            assessment=found,
            now=now,
        )
    assert ei.value.reason == "APPROVAL_PENDING"
    return ei.value.metadata["approval_id"]


def test_queue_lifecycle(store):
    q = ApprovalQueue(store, org_did=NODE)
    c = contract(fields=["age"])
    pem, pub = generate_operator_key()
    q.add_operator("alice", pub, now=NOW)
    with pytest.raises(InvalidRequestError):
        q.add_operator("alice", pub, now=NOW)
    with pytest.raises(ApprovalError) as ei:
        q.add_operator("bob", "not-a-key", now=NOW)
    assert ei.value.reason == "BAD_OPERATOR_KEY"
    key = load_operator_key(pem)
    assert q.precheck("s1", now=NOW, agent="did:key:a", subject="p1") is None
    aid = _hold(q, c, "s1")
    with pytest.raises(ApprovalError) as ei:  # batched
        q.precheck("s1", now=NOW, agent="did:key:b", subject="p2")
    assert ei.value.reason == "APPROVAL_PENDING" and ei.value.metadata["batched"] == "2"
    assert [r["id"] for r in q.pending(now=NOW)] == [aid]
    assert q.show(aid)["agents"] == ["did:key:a", "did:key:b"]
    other = load_operator_key(generate_operator_key()[0])
    with pytest.raises(ApprovalError) as ei:
        q.decide([aid], approve=True, operator="alice", key=other, now=NOW)
    assert ei.value.reason == "NOT_AN_OPERATOR"
    with pytest.raises(ApprovalError) as ei:
        q.decide([aid, aid], approve=True, operator="alice", key=key, now=NOW)
    assert ei.value.reason == "BAD_APPROVAL_BATCH"
    q.decide([aid], approve=True, operator="alice", key=key, note="ok", now=NOW)
    with pytest.raises(ApprovalError) as ei:
        q.decide([aid], approve=True, operator="alice", key=key, now=NOW)
    assert ei.value.reason == "APPROVAL_NOT_PENDING"
    row = q.precheck("s1", now=NOW + dt.timedelta(seconds=60), agent="did:key:a", subject="p3")
    assert row is not None and row["id"] == aid
    # the grant ends: the shape needs a new decision
    assert q.precheck("s1", now=NOW + dt.timedelta(seconds=901), agent="did:key:a", subject="p1") is None
    settled = q.settle(now=NOW)
    assert [(r["id"], r["status"]) for r in settled] == [(aid, "approved")]
    q.mark_ledgered(settled[0], now=NOW)
    assert q.settle(now=NOW) == []
    # a revoked operator's decisions no longer verify
    assert q.rows.revoke_operator("alice")
    with pytest.raises(ApprovalError) as ei:
        q.precheck("s1", now=NOW + dt.timedelta(seconds=60), agent="did:key:a", subject="p1")
    assert ei.value.reason == "APPROVAL_SIGNATURE_INVALID"
    assert q.show(aid)["status"] == "invalid"


def test_expiry_and_the_hourly_cap_count_a_batch_once(store):
    q = ApprovalQueue(store, org_did=NODE)
    c = contract(fields=["age"])
    pem, pub = generate_operator_key()
    q.add_operator("alice", pub, now=NOW)
    key = load_operator_key(pem)
    q.configure(max_prompts_per_operator_hour=2, now=NOW)
    ids = [_hold(q, c, f"s{i}") for i in range(4)]
    q.decide(ids[:2], approve=False, operator="alice", key=key, now=NOW)  # one prompt
    assert q.remaining_prompts("alice", now=NOW) == 1
    q.decide([ids[2]], approve=True, operator="alice", key=key, now=NOW)
    with pytest.raises(ApprovalError) as ei:
        q.decide([ids[3]], approve=True, operator="alice", key=key, now=NOW)
    assert (ei.value.reason, ei.value.status) == ("APPROVER_CAP_REACHED", "RESOURCE_EXHAUSTED")
    assert q.remaining_prompts("alice", now=NOW + dt.timedelta(hours=1, seconds=1)) == 2
    with pytest.raises(ApprovalError) as ei:
        q.precheck("s0", now=NOW, agent="did:key:a", subject="p1")
    assert (ei.value.reason, ei.value.status) == ("APPROVAL_DENIED", "PERMISSION_DENIED")
    later = NOW + dt.timedelta(seconds=601)
    with pytest.raises(ApprovalError) as ei:
        q.decide([ids[3]], approve=True, operator="alice", key=key, now=later)
    assert ei.value.reason in ("APPROVAL_NOT_PENDING", "APPROVER_CAP_REACHED")
    statuses = {r["id"]: r["status"] for r in q.settle(now=later)}
    assert statuses[ids[3]] == "expired" and statuses[ids[0]] == "denied"
    with pytest.raises(ApprovalError) as ei:
        q.precheck("s3", now=later, agent="did:key:a", subject="p1")
    assert ei.value.reason == "APPROVAL_EXPIRED"
    assert q.precheck("s3", now=later, agent="did:key:a", subject="p1") is None  # reported once
    with pytest.raises(ApprovalError) as ei:
        q.show("apr_unknown")
    assert (ei.value.reason, ei.value.status) == ("UNKNOWN_APPROVAL", "NOT_FOUND")
