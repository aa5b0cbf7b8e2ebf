"""The MCP server (`accord mcp serve`) with the real `mcp` client against real node processes."""

from __future__ import annotations

import json

import pytest
from nodes.conftest import run

from agents_mcp.conftest import accord, stdio_session
from federation.demo.run import ledger_rows

pytestmark = pytest.mark.xdist_group("mcp")

TRIAGE_MNI = {"patient_id", "triage_level", "mobility", "shelter"}
TRIAGE = {"partner": "hospital", "purpose": "triage-coordination"}


def _rows(fed, org):
    return ledger_rows(fed.layout, org)


async def _calls(fed, agent, *calls):
    out = []
    async with stdio_session(fed.layout.orgs["relief"], agent) as s:
        for name, args in calls:
            out.append(await s.call_tool(name, args))
    return out


def test_tools_schemas_carry_the_contracts_enums(fed2):
    async def go():
        async with stdio_session(fed2.layout.orgs["relief"], "triage-coordinator") as s:
            return {t.name: t for t in (await s.list_tools()).tools}

    tools = run(go())
    assert set(tools) == {
        "list_partners",
        "request_records",
        "aggregate_query",
        "explain_denial",
        "list_disclosures",
    }
    props = tools["request_records"].input_schema["properties"]
    assert "hospital" in props["partner"]["enum"]
    assert "triage-coordination" in props["purpose"]["enum"]
    assert TRIAGE_MNI <= set(props["fields"]["items"]["enum"])
    assert "diagnosis" not in props["fields"]["items"]["enum"]  # not in any contract purpose
    assert props["fields"]["maxItems"] == 64
    assert tools["aggregate_query"].input_schema["properties"]["purpose"]["enum"] == ["surge-planning"]


def test_request_returns_only_mni_fields_with_a_ledgered_receipt(fed2):
    (r, listed) = run(
        _calls(
            fed2,
            "triage-coordinator",
            ("request_records", {**TRIAGE, "subject": "patient-001"}),
            ("list_disclosures", {"limit": 5}),
        )
    )
    assert not r.is_error, r.content
    body = r.structured_content
    assert body["decision"] == "allow" and body["records"]
    assert all(set(rec) <= TRIAGE_MNI for rec in body["records"])
    assert {"diagnosis", "hiv_status", "name"} <= set(body["stripped_fields"])
    assert body["content_labels"] == []  # no free text in this contract: nothing flagged
    receipt = body["receipt"]
    assert receipt["verified"] is True and receipt["disclosure_id"].startswith("dsc_")
    # both ledgers hold the crossing; the agent sees its own entry with the provider's receipt
    hospital = [e for e in _rows(fed2, "hospital") if e["disclosure_id"] == receipt["disclosure_id"]]
    relief = [e for e in _rows(fed2, "relief") if e["disclosure_id"] == receipt["disclosure_id"]]
    assert [e["kind"] for e in hospital] == ["disclosure"] and [e["kind"] for e in relief] == ["received"]
    mine = [e for e in listed.structured_content["entries"] if e["disclosure_id"] == receipt["disclosure_id"]]
    assert mine and mine[0]["receipt"]["verified"] is True
    assert mine[0]["provider_leaf_hash"] == relief[0]["provider_leaf_hash"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"partner": "nowhere", "purpose": "triage-coordination", "subject": "patient-001"}, "UNKNOWN_PEER"),
        ({"partner": "hospital", "purpose": "marketing", "subject": "patient-001"}, "UNKNOWN_PURPOSE"),
        (
            {**TRIAGE, "subject": "patient-001", "fields": ["patient_id", "diagnosis"]},
            "FIELD_NOT_IN_CONTRACT",
        ),
        ({**TRIAGE, "subject": "patient-001", "resource": "admissions"}, "RESOURCE_NOT_IN_CONTRACT"),
    ],
)
def test_what_the_contract_rules_out_is_refused_and_nothing_crosses(fed2, args, reason):
    before = (len(_rows(fed2, "hospital")), len(_rows(fed2, "relief")))
    (r,) = run(_calls(fed2, "triage-coordinator", ("request_records", args)))
    assert r.is_error
    assert r.structured_content["reason"] == reason
    assert r.structured_content["crossed"] is False
    assert r.content[0].text.startswith(reason + ":")
    assert (len(_rows(fed2, "hospital")), len(_rows(fed2, "relief"))) == before


def test_a_decided_denial_is_a_tool_error_ledgered_on_both_sides(fed2):
    # logistics lacks patients:read: the provider's policy decides, and both ledgers record it
    (r, explained) = run(
        _calls(
            fed2,
            "logistics",
            ("request_records", {**TRIAGE, "subject": "patient-002"}),
            ("explain_denial", {"reason": "MISSING_SCOPE", "partner": "hospital"}),
        )
    )
    assert r.is_error
    err = r.structured_content
    assert err["reason"] == "MISSING_SCOPE" and err["status"] == "PERMISSION_DENIED"
    assert err["crossed"] is True
    dsc = err["metadata"]["disclosure_id"]
    assert [e["kind"] for e in _rows(fed2, "hospital") if e["disclosure_id"] == dsc] == ["denial"]
    assert [e["decision"] for e in _rows(fed2, "relief") if e["disclosure_id"] == dsc] == ["deny"]
    # the explanation names what the agent may use instead: surge-planning (its scope) comes first
    ex = explained.structured_content
    assert ex["reason"] == "MISSING_SCOPE" and ex["meaning"]
    first = ex["allowed_instead"][0]
    assert first["purpose"] == "surge-planning" and first["missing_scopes"] == []
    assert any(
        a["purpose"] == "triage-coordination" and a["missing_scopes"] == ["patients:read"]
        for a in ex["allowed_instead"]
    )


@pytest.mark.parametrize(
    ("args", "what"),
    [
        ({**TRIAGE, "subject": "p" * 10_000}, "subject"),
        ({**TRIAGE, "subject": "patient-001", "fields": ["patient_id"] * 65}, "fields"),
        ({**TRIAGE, "subject": "patient-001", "fields": ["x" * 200]}, "fields"),
        ({**TRIAGE, "subject": "patient-001", "junk": "y" * 20_000}, "arguments"),
    ],
)
def test_oversized_arguments_are_refused_before_any_work(fed2, args, what):
    before = len(_rows(fed2, "hospital"))
    (r,) = run(_calls(fed2, "triage-coordinator", ("request_records", args)))
    assert r.is_error and r.structured_content["reason"] == "ARGUMENT_TOO_LARGE", r.content
    assert r.structured_content["crossed"] is False
    assert len(_rows(fed2, "hospital")) == before


def test_aggregate_query_is_answered_by_the_auditing_provider(fed2):
    (r, bad) = run(
        _calls(
            fed2,
            "triage-coordinator",
            (
                "aggregate_query",
                {
                    "partner": "hospital",
                    "purpose": "surge-planning",
                    "kind": "count",
                    "column": "length_of_stay",
                    "predicate": {},
                },
            ),
            (
                "aggregate_query",
                {"partner": "hospital", "purpose": "surge-planning", "kind": "sum", "column": "diagnosis"},
            ),
        )
    )
    assert not r.is_error, r.content
    ans = r.structured_content["answer"]
    assert ans["kind"] == "count" and ans["value"] > 0
    assert r.structured_content["receipt"]["verified"] is True
    assert bad.is_error and bad.structured_content["reason"] == "AGGREGATE_NOT_ALLOWED"


def test_contracts_are_resources_and_unknown_tools_are_errors(fed2):
    async def go():
        async with stdio_session(fed2.layout.orgs["relief"], "triage-coordinator") as s:
            listed = await s.list_resources()
            doc = await s.read_resource("accord://contracts/relief-hospital-triage")
            unknown = await s.call_tool("drop_tables", {})
            return listed, doc, unknown

    listed, doc, unknown = run(go())
    uris = {str(r.uri) for r in listed.resources}
    assert "accord://contracts/relief-hospital-triage" in uris and "accord://agent" in uris
    contract = json.loads(doc.contents[0].text)
    assert contract["id"] == "relief-hospital-triage" and len(contract["signatures"]) == 2
    assert unknown.is_error and unknown.structured_content["reason"] == "NOT_FOUND"


def test_serve_refuses_an_unknown_agent(fed2):
    p = accord("mcp", "serve", "--dir", str(fed2.layout.orgs["relief"]), "--agent", "../hospital/x")
    assert p.returncode == 1 and "NO_WALLET" in p.stderr


def test_an_oversized_stdio_message_ends_the_session(fed2):
    import subprocess
    import sys

    from agents_mcp.conftest import serve_argv

    p = subprocess.Popen(
        [sys.executable, *serve_argv(fed2.layout.orgs["relief"], "triage-coordinator")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        p.stdin.write(json.dumps(init).encode() + b"\n")
        p.stdin.flush()
        assert json.loads(p.stdout.readline())["id"] == 1  # the server answers normal messages
        huge = (
            b'{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":"' + b"a" * (2 * 1024 * 1024) + b'"}}\n'
        )
        try:
            p.stdin.write(huge)
            p.stdin.flush()
        except BrokenPipeError:
            pass  # the server stopped reading at the bound
        assert p.wait(120) is not None
        assert p.stdout.read() == b""  # no answer to the oversized message
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
