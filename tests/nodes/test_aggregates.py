"""Audited aggregate queries between real nodes: answers, reconstruction denials, restarts."""

from __future__ import annotations

import pytest

from federation.client import AgentClient
from federation.demo.run import ledger_rows
from federation.errors import DeniedError, FederationError
from federation.supervisor import NodeProcess
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("aggregates")


@pytest.fixture(scope="module")
def fed2(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("agg"), orgs=("hospital", "relief"), with_interop=False)
    yield f
    f.stop()


async def ask(fed, agent, kind, predicate):
    async with AgentClient.from_wallet(fed.layout.wallets[agent]) as c:
        s = await c.open_session("hospital")
        r = await c.request(
            s,
            contract_id="relief-hospital-triage",
            purpose="surge-planning",
            resource="admissions",
            subject="*",
            fields=[],
            aggregate={"kind": kind, "column": "length_of_stay", "predicate": predicate},
        )
        assert_r_agg_1_shape(r.outcome.payload_json, kind, "length_of_stay")
        return r.records[0]


def assert_r_agg_1_shape(payload_json: bytes, kind: str, column: str) -> None:
    """R-AGG-1: ``payload_json`` is a JSON array of exactly one object with exactly the five members."""
    import json

    doc = json.loads(payload_json)
    assert isinstance(doc, list) and len(doc) == 1, doc
    (answer,) = doc
    assert isinstance(answer, dict), answer
    assert set(answer) == {"kind", "column", "value", "records", "dp_epsilon"}, answer
    assert answer["kind"] == kind and answer["column"] == column, answer
    assert isinstance(answer["value"], (int, float)) and not isinstance(answer["value"], bool), answer
    records = answer["records"]
    assert records is None or (isinstance(records, int) and records >= 0), answer
    assert isinstance(answer["dp_epsilon"], float), answer
    assert answer["records"] is not None or answer["dp_epsilon"] > 0, answer  # null only with DP noise


NOT_BURNS = {"not": {"col": "ward", "op": "==", "val": "burns"}}


def test_statistics_are_answered_and_a_differencing_attack_is_refused(fed2):
    from federation.demo import scenario

    rows = scenario.admissions(__import__("random").Random(7))
    north = [r["length_of_stay"] for r in rows if r["district"] == "north"]
    ans = run(ask(fed2, "relief/triage-coordinator", "sum", {"col": "district", "op": "==", "val": "north"}))
    assert ans["value"] == sum(north) and ans["records"] == len(north)
    total = run(ask(fed2, "relief/triage-coordinator", "sum", {}))
    assert total["value"] == sum(r["length_of_stay"] for r in rows)
    with pytest.raises(DeniedError) as ei:
        run(ask(fed2, "relief/triage-coordinator", "sum", NOT_BURNS))
    assert ei.value.reason == "RECONSTRUCTION_RISK" and ei.value.status == "PERMISSION_DENIED"
    # the denial names no record and no value: only the scope and the query digest
    assert "17" not in str(ei.value) and ei.value.metadata["scope"].startswith("org:")
    # the same attack through a second agent of the same org is pooled under the org scope
    with pytest.raises(DeniedError) as ei2:
        run(ask(fed2, "relief/logistics", "sum", {"col": "ward", "op": "!=", "val": "burns"}))
    assert ei2.value.reason == "RECONSTRUCTION_RISK"
    denials = [e for e in ledger_rows(fed2.layout, "hospital") if e["kind"] == "audit_denial"]
    assert len(denials) == 2
    assert all(e["extra"]["query_digest"] and e["extra"]["scope"].startswith("org:") for e in denials)


def test_bad_predicates_are_invalid_argument_and_write_nothing(fed2):
    before = len(ledger_rows(fed2.layout, "hospital"))
    for pred in (
        {"col": "length_of_stay", "op": ">", "val": 3},  # sensitive column
        {"col": "nope", "op": "==", "val": 1},  # unknown column
        {"col": "district", "op": ">", "val": 4},  # type mismatch
        {"ids": [1, 2]},
    ):  # ids not allowed by the contract
        with pytest.raises(FederationError) as ei:
            run(ask(fed2, "relief/triage-coordinator", "avg", pred))
        assert ei.value.status == "INVALID_ARGUMENT", pred
    assert len(ledger_rows(fed2.layout, "hospital")) == before


def test_audit_history_survives_a_restart(fed2):
    # self-contained: the two answered SUMs the restart must keep (re-asking one is free)
    run(ask(fed2, "relief/triage-coordinator", "sum", {"col": "district", "op": "==", "val": "north"}))
    run(ask(fed2, "relief/triage-coordinator", "sum", {}))
    proc = fed2.procs["hospital"]
    proc.stop()
    fed2.procs["hospital"] = NodeProcess(fed2.layout.orgs["hospital"]).start()
    assert fed2.procs["hospital"].endpoint == proc.endpoint
    with pytest.raises(DeniedError) as ei:
        run(ask(fed2, "relief/logistics", "sum", NOT_BURNS))
    assert ei.value.reason == "RECONSTRUCTION_RISK"
    from federation.cli.dataset import audit_status_rows

    rows = audit_status_rows(fed2.layout.orgs["hospital"])
    org_rows = [r for r in rows if r["scope"].startswith("org:")]
    assert len(org_rows) == 1, rows
    org_row = org_rows[0]
    assert org_row["records"] == 60, rows
    assert org_row["rank"] >= 2, rows  # SUM(north) and SUM(all) survived the restart
    assert org_row["denials"] >= 1, rows


def test_dp_answers_carry_no_exact_count_and_refuse_only_on_budget(fed2):
    """DP mode (issue #10.4 / #18.8): nothing exact leaves the node, in the answer or in the ledger.

    Runs last in this module: it switches the hospital's dataset to DP and restarts the node.
    On the old code the answer carried ``records`` (the exact count), the ledger entry the same
    ``record_count``, the one-record burns ward was refused with RECONSTRUCTION_RISK and an empty
    selection with EMPTY_SELECTION: refusals decided on the exact selection, outside the noise.
    """
    import datetime as dt

    from federation.agents import open_store
    from federation.identity import NodeIdentity

    hospital = fed2.layout.orgs["hospital"]
    fed2.procs["hospital"].stop()  # the operator re-registers the dataset while the node is down
    store = open_store(NodeIdentity.load(hospital))
    ((spec, records),) = [(s, r) for s, r in store.datasets() if s["name"] == "admissions"]
    spec = {**spec, "dp": {"epsilon_total": 1.0, "epsilon_per_query": 0.5, "bounds": [0, 30]}}
    store.put_dataset(
        "admissions", spec, records, id_column=spec["id"], now=dt.datetime.now(dt.UTC), replace=True
    )
    store.engine.dispose()
    fed2.procs["hospital"] = NodeProcess(hospital).start()
    burns = run(ask(fed2, "relief/triage-coordinator", "sum", {"col": "ward", "op": "==", "val": "burns"}))
    nowhere = run(ask(fed2, "relief/logistics", "count", {"col": "district", "op": "==", "val": "nowhere"}))
    for ans in (burns, nowhere):
        assert ans["records"] is None and ans["dp_epsilon"] == 0.5
    disclosures = [e for e in ledger_rows(fed2.layout, "hospital") if e["kind"] == "disclosure"]
    assert [e["record_count"] for e in disclosures[-2:]] == [0, 0]
    # the org's budget (1.0) is spent: the refusal depends on the earlier queries alone
    with pytest.raises(FederationError) as ei:
        run(ask(fed2, "relief/triage-coordinator", "count", {}))
    assert ei.value.reason == "PRIVACY_BUDGET_EXHAUSTED" and ei.value.status == "RESOURCE_EXHAUSTED"
