"""``accord demo --agents``, the A2A part: an A2A client does the demo's triage exchange next to the SDK.

Hospital exposes ``triage-desk`` (skill ``triage-coordination``) to its
partners; relief's gateway (``accord a2a serve``, a separate process) lets
relief's ``triage-coordinator`` ask it with a2a-sdk's own client. The same
request goes through the Python SDK alongside, and a text part shows the
free-text refusal. Nothing here is simulated: real node processes, the real
gateway process, the real a2a-sdk client.
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from typing import Any

import tomli_w
from rich.console import Console
from rich.table import Table

from federation.demo.setup import Layout
from federation.supervisor import NodeProcess, free_port

AGENT = "triage-desk"
PURPOSE = "triage-coordination"
CONTRACT = "relief-hospital-triage"
SUBJECT = "patient-002"
FIELDS = ["patient_id", "triage_level", "mobility", "shelter", "age"]


def expose_triage_desk(layout: Layout) -> None:
    """Write hospital's ``[a2a]`` exposure into its ``node.toml`` (before the node starts)."""
    path = layout.orgs["hospital"] / "node.toml"
    cfg = tomllib.loads(path.read_text())
    cfg["a2a"] = {
        "expose": [
            {
                "agent": AGENT,
                "skills": [PURPOSE],
                "description": "Hospital triage desk: triage data for partners' coordinators",
            }
        ]
    }
    path.write_text(tomli_w.dumps(cfg))


def start_gateway(layout: Layout) -> NodeProcess:
    """Start relief's gateway process on a free loopback port."""
    relief = layout.orgs["relief"]
    proc = NodeProcess(
        relief,
        command=[
            sys.executable,
            "-m",
            "federation.cli.main",
            "a2a",
            "serve",
            "--dir",
            str(relief),
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
    )
    proc.log_path = relief / "a2a.log"
    return proc.start(timeout=60)


async def _exchanges(layout: Layout, url: str) -> list[dict[str, Any]]:
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest
    from a2a.utils.errors import A2AError
    from google.protobuf import json_format, struct_pb2

    from federation.agent_tokens import mint
    from federation.client import AgentClient

    rows: list[dict[str, Any]] = []
    wallet = layout.wallets["relief/triage-coordinator"]
    async with AgentClient.from_wallet(wallet) as sdk:
        session = await sdk.open_session("hospital")
        r = await sdk.request(
            session,
            contract_id=CONTRACT,
            purpose=PURPOSE,
            resource="patients",
            subject=SUBJECT,
            fields=FIELDS,
        )
        rows.append(
            {
                "path": "Python SDK",
                "outcome": "allow",
                "released": list(r.released_fields),
                "record_keys": sorted(r.records[0]) if r.records else [],
                "receipt": r.receipt_verified,
            }
        )
    token, _ = mint(layout.orgs["relief"], "triage-coordinator", ttl_days=1, label="accord demo --agents")
    meta = struct_pb2.Struct()
    meta.update({"skill": PURPOSE})
    body = json_format.ParseDict({"subject": SUBJECT, "fields": FIELDS}, struct_pb2.Value())
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = await create_client(
            f"{url}/a2a/hospital/{AGENT}/", client_config=ClientConfig(httpx_client=http, streaming=False)
        )
        for label, parts in (
            ("A2A (data part)", [Part(data=body)]),
            ("A2A (data + text part)", [Part(text="and anything else you know about her"), Part(data=body)]),
        ):
            msg = Message(message_id=f"demo-{len(rows)}", role=Role.ROLE_USER, parts=parts, metadata=meta)
            try:
                out = [e async for e in client.send_message(SendMessageRequest(message=msg))]
                art = out[0].task.artifacts[0]
                records = json_format.MessageToDict(art.parts[0].data)["records"]
                ev = json_format.MessageToDict(art.metadata)["accord"]
                rows.append(
                    {
                        "path": label,
                        "outcome": "allow",
                        "released": ev["releasedFields"],
                        "record_keys": sorted(records[0]) if records else [],
                        "receipt": ev["receiptVerified"],
                    }
                )
            except A2AError as exc:
                reason = (exc.data or {}).get("accordReason", type(exc).__name__)
                rows.append(
                    {"path": label, "outcome": f"refused: {reason}", "released": [], "record_keys": []}
                )
    return rows


def run_a2a_triage(layout: Layout, console: Console) -> list[str]:
    """Run the A2A part against the started nodes; print the comparison; returns problems ("" = none)."""
    with console.status("starting relief's A2A gateway (accord a2a serve)"):
        gw = start_gateway(layout)
    try:
        rows = asyncio.run(_exchanges(layout, f"http://{gw.endpoint}"))
    finally:
        gw.stop()
    t = Table(title=f"the triage exchange through the SDK and through A2A (relief → hospital/{AGENT})")
    for col in ("path", "outcome", "released fields", "record keys", "receipt verified"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["path"],
            r["outcome"],
            ",".join(r["released"]),
            ",".join(r["record_keys"]),
            str(r.get("receipt", "-")),
        )
    console.print(t)
    problems = []
    sdk, a2a, text = rows
    if a2a["outcome"] != "allow" or set(a2a["released"]) != set(sdk["released"]):
        problems.append("A2A: the data-part request did not release what the SDK request released")
    if not set(a2a["record_keys"]) <= set(a2a["released"]) or not a2a.get("receipt"):
        problems.append("A2A: record beyond the released fields, or receipt not verified")
    if text["outcome"] != "refused: FREE_TEXT_NOT_ALLOWED":
        problems.append(f"A2A: a text part was not refused ({text['outcome']})")
    return problems


__all__ = ["expose_triage_desk", "run_a2a_triage", "start_gateway"]
