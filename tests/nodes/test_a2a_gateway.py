"""The A2A gateway with the real a2a-sdk client against real node processes (issue #14).

Two organizations' nodes (hospital exposes ``triage-desk`` for the
``triage-coordination`` purpose; relief's agents call it), relief's gateway
(``accord a2a serve``) as a third process; the client is a2a-sdk's own
(``a2a.client.create_client``: card resolution, signature verification,
JSON-RPC ``SendMessage``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from a2a.client import ClientConfig, create_client
from a2a.types import GetTaskRequest, Message, Part, Role, SendMessageRequest
from a2a.utils.errors import (
    A2AError,
    ContentTypeNotSupportedError,
    InvalidParamsError,
    UnsupportedOperationError,
)
from a2a.utils.signing import create_signature_verifier
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import json_format, struct_pb2

from federation.supervisor import NodeProcess, free_port
from tests.nodes.conftest import Fed, start

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("a2a")]  # one federation per module, one worker

PURPOSE = "triage-coordination"
CONTRACT = "relief-hospital-triage"
MNI = ["patient_id", "triage_level", "mobility", "shelter"]


class Gateway:
    """relief's gateway process and what a test needs to call it."""

    def __init__(self, fed: Fed, proc: NodeProcess, url: str) -> None:
        self.fed = fed
        self.proc = proc
        self.url = url
        self.relief = fed.layout.orgs["relief"]
        self.hospital = fed.layout.orgs["hospital"]

    def token(self, agent: str) -> str:
        from federation.agent_tokens import mint

        return mint(self.relief, agent, ttl_days=1)[0]

    def agent_url(self, agent: str = "triage-desk", partner: str = "hospital") -> str:
        return f"{self.url}/a2a/{partner}/{agent}/"


def own_org_verifier(node_dir: Path):
    """a2a-sdk signature verifier trusting only the local organization's key (from its bundle)."""
    from credentials import public_key_from_multibase

    bundle = json.loads((node_dir / "bundle.json").read_text())
    key = Ed25519PublicKey.from_public_bytes(public_key_from_multibase(bundle["public_key_multibase"]))

    def key_for(kid, _jku):
        assert kid == bundle["verification_method"], kid
        return key

    return create_signature_verifier(key_for, ["EdDSA"])


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Gateway:
    root = tmp_path_factory.mktemp("a2a")
    from federation.demo.setup import provision

    layout = provision(root, orgs=("hospital", "relief"), with_interop=False)
    cfg_path = layout.orgs["hospital"] / "node.toml"
    cfg = tomllib.loads(cfg_path.read_text())
    cfg["a2a"] = {
        "expose": [
            {
                "agent": "triage-desk",
                "skills": [PURPOSE, "not-in-any-contract"],
                "description": "Triage desk",
            },
            {"agent": "bed-desk", "skills": ["no-contract-with-relief"]},
        ],
    }
    cfg_path.write_text(tomli_w.dumps(cfg))
    relief_cfg = layout.orgs["relief"] / "node.toml"  # the gateway's own bounds
    cfg = tomllib.loads(relief_cfg.read_text())
    cfg["a2a"] = {"max_part_bytes": 4096}
    relief_cfg.write_text(tomli_w.dumps(cfg))
    procs = {org: NodeProcess(layout.orgs[org]).start() for org in ("hospital", "relief")}
    fed = Fed(layout, procs)
    port = free_port()
    proc = NodeProcess(
        layout.orgs["relief"],
        command=[
            __import__("sys").executable,
            "-m",
            "federation.cli.main",
            "a2a",
            "serve",
            "--dir",
            str(layout.orgs["relief"]),
            "--listen",
            f"127.0.0.1:{port}",
        ],
    )
    proc.log_path = layout.orgs["relief"] / "a2a.log"
    try:
        proc.start(timeout=60)
    except Exception:
        fed.stop()
        raise
    yield Gateway(fed, proc, f"http://{proc.endpoint}")
    proc.stop()
    fed.stop()


def data_message(body: dict, *, skill: str | None = PURPOSE, text: str | None = None) -> Message:
    parts = [Part(data=json_format.ParseDict(body, struct_pb2.Value()))]
    if text is not None:
        parts.insert(0, Part(text=text))
    meta = struct_pb2.Struct()
    if skill is not None:
        meta.update({"skill": skill})
    return Message(
        message_id=base64.b16encode(__import__("os").urandom(8)).decode(),
        role=Role.ROLE_USER,
        parts=parts,
        metadata=meta,
    )


async def call(gw: Gateway, token: str, message: Message, *, agent: str = "triage-desk"):
    """Resolve the card (signature checked with relief's own key), send one message; returns (task, client)."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = await create_client(
            gw.agent_url(agent),
            client_config=ClientConfig(httpx_client=http, streaming=False),
            signature_verifier=own_org_verifier(gw.relief),
        )
        out = [r async for r in client.send_message(SendMessageRequest(message=message))]
        assert len(out) == 1 and out[0].HasField("task"), out
        task = out[0].task
        again = await client.get_task(GetTaskRequest(id=task.id))
        assert again.id == task.id
        return task


def ledger_rows(node_dir: Path) -> list[dict]:
    from federation.cli.main import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["ledger", "query", "--dir", str(node_dir), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_triage_request_over_a2a_releases_mni_and_is_ledgered_on_both_sides(gw: Gateway) -> None:
    token = gw.token("triage-coordinator")
    before_h, before_r = len(ledger_rows(gw.hospital)), len(ledger_rows(gw.relief))
    msg = data_message({"subject": "patient-001", "fields": [*MNI, "age"]})
    task = asyncio.run(call(gw, token, msg))
    assert task.status.state == 3  # TASK_STATE_COMPLETED
    (art,) = task.artifacts
    records = json_format.MessageToDict(art.parts[0].data)["records"]
    assert len(records) == 1 and records[0]["patient_id"] == "patient-001"
    # what the hospital's data source holds beyond the released set never reaches the A2A caller
    assert {"name", "diagnosis", "hiv_status", "insurance_id", "blood_type"}.isdisjoint(records[0])
    evidence = json_format.MessageToDict(art.metadata)["accord"]
    assert set(records[0]) <= set(evidence["releasedFields"])
    assert set(MNI) <= set(evidence["releasedFields"])
    assert evidence["receiptVerified"] is True and evidence["disclosureId"]
    hosp = ledger_rows(gw.hospital)[before_h:]
    rel = ledger_rows(gw.relief)[before_r:]
    assert any(e.get("disclosure_id") == evidence["disclosureId"] for e in map(_entry, hosp)), hosp
    assert any(evidence["disclosureId"] in json.dumps(e) for e in rel), rel


def _entry(row: dict) -> dict:
    return row.get("entry", row)


def test_card_is_signed_lists_only_contract_skills_and_verifies_against_pinned_key(gw: Gateway) -> None:
    from federation.a2a.cards import card_org, parse_card, verify_card

    token = gw.token("triage-coordinator")
    r = httpx.get(
        f"{gw.agent_url()}.well-known/agent-card.json",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    local = parse_card(r.content)
    assert [s.id for s in local.skills] == [PURPOSE]  # "not-in-any-contract" is not offered
    assert local.supported_interfaces[0].url == gw.agent_url()
    own_org_verifier(gw.relief)(local)  # signed by relief's org key
    ext = next(e for e in local.capabilities.extensions if e.uri.endswith("/accord/v1"))
    partner = parse_card(json.dumps(json_format.MessageToDict(ext.params)["partnerCard"]).encode())
    hospital = json.loads((gw.hospital / "bundle.json").read_text())
    from credentials import public_key_from_multibase

    pinned = {
        hospital["verification_method"]: (
            hospital["org_did"],
            public_key_from_multibase(hospital["public_key_multibase"]),
        )
    }
    assert verify_card(partner, pinned=pinned) == hospital["org_did"]
    assert card_org(partner) == (hospital["org_did"], "triage-desk")
    # an agent exposed only for purposes no contract with relief names is not served to relief
    r = httpx.get(
        f"{gw.agent_url('bed-desk')}.well-known/agent-card.json",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 404 and r.json()["reason"] == "A2A_UNKNOWN_AGENT"
    r = httpx.get(
        f"{gw.agent_url()}.well-known/agent-card.json", headers={"Authorization": "Bearer nope"}, timeout=30
    )
    assert r.status_code == 401 and r.json()["reason"] == "TOKEN_INVALID"
    r = httpx.get(f"{gw.agent_url()}.well-known/agent-card.json", timeout=30)
    assert r.status_code == 401 and r.json()["reason"] == "TOKEN_MISSING"


def refused(gw: Gateway, token: str, message: Message, *, agent: str = "triage-desk") -> A2AError:
    with pytest.raises(A2AError) as info:
        asyncio.run(call(gw, token, message, agent=agent))
    return info.value


def test_bad_input_gets_a2a_errors_with_accord_reasons_and_nothing_crosses(gw: Gateway) -> None:
    token = gw.token("triage-coordinator")
    before = len(ledger_rows(gw.hospital))
    ok = {"subject": "patient-001", "fields": MNI}
    cases = [
        (
            data_message(ok, text="also tell me everything about her"),
            ContentTypeNotSupportedError,
            "FREE_TEXT_NOT_ALLOWED",
        ),
        (data_message(ok, skill="bed-planning"), InvalidParamsError, "A2A_UNKNOWN_SKILL"),
        (
            data_message({**ok, "fields": ["patient_id", "hiv_status"]}),
            UnsupportedOperationError,
            "FIELD_NOT_IN_CONTRACT",
        ),
        (data_message({**ok, "extra": 1}), InvalidParamsError, "A2A_MALFORMED_MESSAGE"),
        (
            data_message({"subject": "patient-001", "fields": "triage_level"}),
            InvalidParamsError,
            "A2A_MALFORMED_MESSAGE",
        ),
        (data_message({**ok, "subject": "x" * 5000}), InvalidParamsError, "A2A_PART_TOO_LARGE"),
    ]
    many = data_message(ok)
    many.parts.extend([many.parts[0]] * 8)  # 9 parts, 8 accepted
    two = data_message(ok)
    two.parts.append(two.parts[0])
    file_part = data_message(ok)
    file_part.parts.append(Part(raw=b"%PDF-1.7", media_type="application/pdf"))
    cases += [
        (many, InvalidParamsError, "A2A_TOO_MANY_PARTS"),
        (two, InvalidParamsError, "A2A_MALFORMED_MESSAGE"),
        (file_part, ContentTypeNotSupportedError, "A2A_PART_UNSUPPORTED"),
    ]
    for message, cls, reason in cases:
        err = refused(gw, token, message)
        assert isinstance(err, cls), (reason, err)
        assert err.data["accordReason"] == reason, err.data
    assert len(ledger_rows(gw.hospital)) == before  # refused at the gateway: nothing crossed, no decision


def test_unknown_partner_agent_and_token_are_refused(gw: Gateway) -> None:
    token = gw.token("triage-coordinator")
    msg = data_message({"subject": "patient-001", "fields": MNI})

    async def post(url: str, bearer: str) -> dict:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {"message": json_format.MessageToDict(msg)},
        }
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(
                url, json=body, headers={"Authorization": f"Bearer {bearer}", "A2A-Version": "1.0"}
            )
            return r.json()

    def reason(doc: dict) -> str:
        return doc["error"]["data"][0]["metadata"]["accordReason"]

    assert reason(asyncio.run(post(gw.agent_url("nobody"), token))) == "A2A_UNKNOWN_AGENT"
    assert reason(asyncio.run(post(gw.agent_url(partner="supplier"), token))) == "UNKNOWN_PEER"
    assert reason(asyncio.run(post(gw.agent_url(), "acc_000000000000.forged"))) == "TOKEN_INVALID"
    malformed = asyncio.run(
        _raw(gw.agent_url(), token, b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":7}}')
    )
    assert malformed["error"]["code"] == -32602  # the SDK's own parse of a malformed A2A message
    big = httpx.post(
        gw.agent_url(), content=b"{" + b" " * 2_000_000 + b"}", headers={"Authorization": f"Bearer {token}"}
    )
    assert big.status_code == 413  # refused by its declared length, before the body is read


async def _raw(url: str, token: str, body: bytes) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            url,
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "A2A-Version": "1.0",
            },
        )
        return r.json()


def test_policy_denial_is_ledgered_at_both_nodes_and_comes_back_with_its_receipt(gw: Gateway) -> None:
    # the logistics agent lacks the purpose's scope (patients:read): the hospital's policy denies, logs the
    # denial with a receipt, and the reason comes back as an A2A error
    token = gw.token("logistics")
    before_h, before_r = len(ledger_rows(gw.hospital)), len(ledger_rows(gw.relief))
    err = refused(gw, token, data_message({"subject": "patient-001", "fields": MNI}))
    assert isinstance(err, UnsupportedOperationError), err
    assert err.data["accordStatus"] == "PERMISSION_DENIED", err.data
    assert err.data["disclosure_id"] and err.data["tlog_proof"], err.data
    hosp = [_entry(r) for r in ledger_rows(gw.hospital)[before_h:]]
    assert any(e.get("disclosure_id") == err.data["disclosure_id"] for e in hosp), hosp
    rel = ledger_rows(gw.relief)[before_r:]  # relief checked the refusal's receipt and logged it as received
    assert err.data["received_leaf_index"] and any(err.data["disclosure_id"] in json.dumps(r) for r in rel), (
        rel
    )


def test_demo_agents_mcp_and_a2a_clients_next_to_the_sdk(gw: Gateway) -> None:
    """``accord demo --agents``' part: the real mcp client (stdio) and a2a-sdk client beside the SDK."""
    import io

    from rich.console import Console

    from federation.demo.agents import ASKS, run_agents_triage

    before_h, before_r = len(ledger_rows(gw.hospital)), len(ledger_rows(gw.relief))
    out = io.StringIO()
    results, problems = run_agents_triage(gw.fed.layout, Console(file=out, width=220))
    assert problems == [], problems
    mni, wide, text = ASKS
    sdk, mcp, a2a = results["Python SDK"], results["MCP (stdio)"], results["A2A"]
    for way in (sdk, mcp, a2a):  # the same MNI answer through each way in, each its own disclosure
        assert way[mni]["outcome"] == "allow" and set(way[mni]["released"]) == set(MNI), way[mni]
        assert way[mni]["records"] and all(set(r) <= set(MNI) for r in way[mni]["records"])
        assert way[mni]["receipt"] is True
    assert len({w[mni]["disclosure_id"] for w in (sdk, mcp, a2a)}) == 3
    # over-broad: the provider's gate strips diagnosis for the SDK; both adapters refuse before crossing
    assert sdk[wide]["outcome"] == "allow" and "diagnosis" in sdk[wide]["stripped"]
    for way in (mcp, a2a):
        assert way[wide] == {
            **way[wide],
            "outcome": "refused",
            "reason": "FIELD_NOT_IN_CONTRACT",
            "crossed": False,
        }
    assert a2a[text]["reason"] == "FREE_TEXT_NOT_ALLOWED" and not a2a[text]["crossed"]
    # ledgers: the hospital decided exactly the four asks that crossed (three MNI, the SDK's over-broad one)
    hosp = [_entry(r) for r in ledger_rows(gw.hospital)[before_h:]]
    crossed = [w[mni]["disclosure_id"] for w in (sdk, mcp, a2a)] + [sdk[wide]["disclosure_id"]]
    assert sorted(e["disclosure_id"] for e in hosp if e.get("disclosure_id")) == sorted(crossed), hosp
    received = [e for e in map(_entry, ledger_rows(gw.relief)[before_r:]) if e.get("kind") == "received"]
    assert sorted(e["disclosure_id"] for e in received) == sorted(crossed)  # receipts checked at relief
    shown = out.getvalue()
    for word in ("MCP (stdio)", "A2A", "Python SDK", "FIELD_NOT_IN_CONTRACT", "FREE_TEXT_NOT_ALLOWED"):
        assert word in shown


def test_a_contract_removed_or_restored_while_the_gateway_runs_is_seen_within_seconds(gw: Gateway) -> None:
    """The gateway re-reads changed contract files (at most once a second) instead of only at start."""
    token = gw.token("triage-coordinator")
    msg = {"subject": "patient-001", "fields": MNI}
    asyncio.run(call(gw, token, data_message(msg)))  # served now (and the partner's card is cached)
    path = gw.relief / "contracts" / f"{CONTRACT}.json"
    held = path.read_bytes()

    def reason_now() -> str:
        try:
            asyncio.run(call(gw, token, data_message(msg)))
        except A2AError as exc:
            return exc.data["accordReason"]
        return "served"

    def wait_for(expected: str) -> None:
        deadline = time.monotonic() + 30
        seen = reason_now()
        while seen != expected and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = reason_now()
        assert seen == expected

    path.unlink()
    try:
        # relief no longer holds a contract giving the skill: refused at the gateway, nothing crosses
        wait_for("A2A_UNKNOWN_SKILL")
    finally:
        path.write_bytes(held)
    wait_for("served")
