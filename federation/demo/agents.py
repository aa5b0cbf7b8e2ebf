"""``accord demo --agents``: the triage exchange through the Python SDK, an MCP client and an A2A client.

Relief's ``triage-coordinator`` asks the hospital for one patient's triage
data three ways, side by side:

- **Python SDK**: :class:`federation.client.AgentClient` with the agent's wallet;
- **MCP**: the official ``mcp`` client library (``ClientSession`` over
  stdio) driving ``accord mcp serve --dir relief --agent triage-coordinator``,
  a separate process, tool ``request_records``;
- **A2A**: a2a-sdk's client talking to relief's gateway (``accord a2a serve``,
  a separate process) to the hospital's exposed ``triage-desk`` (skill
  ``triage-coordination``), with a per-agent bearer token.

Each way in makes the same three asks: the purpose's MNI fields (released
the same way everywhere, each a separate ledgered exchange with a verified
receipt); an over-broad ask adding ``diagnosis`` (the SDK sends it and the
hospital's MNI gate strips it; the adapters refuse it before anything
crosses, ``FIELD_NOT_IN_CONTRACT``, since the contract's field names are
theirs to check); and free text in the request (only A2A has a channel for
it, a text part: ``FREE_TEXT_NOT_ALLOWED``). Nothing is simulated: real node
processes, real adapter processes, the real client libraries.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from rich.table import Table

from federation.demo.setup import Layout
from federation.supervisor import NodeProcess, free_port

AGENT = "triage-coordinator"
"""Relief's agent making every ask."""
DESK = "triage-desk"
"""The hospital's agent exposed over A2A."""
PURPOSE = "triage-coordination"
CONTRACT = "relief-hospital-triage"
SUBJECT = "patient-002"
MNI = ["patient_id", "triage_level", "mobility", "shelter"]
"""The purpose's minimum necessary fields (``scenario.yaml``)."""
OVER_BROAD = [*MNI, "diagnosis"]
"""An ask beyond the contract: ``diagnosis`` is no field of the contract."""
FREE_TEXT = "and anything else you know about her"

WAYS = ("Python SDK", "MCP (stdio)", "A2A")
ASKS = ("MNI fields", "over-broad (+diagnosis)", "free text in the request")


def expose_triage_desk(layout: Layout) -> None:
    """Write hospital's ``[a2a]`` exposure into its ``node.toml`` (before the node starts)."""
    path = layout.orgs["hospital"] / "node.toml"
    cfg = tomllib.loads(path.read_text())
    cfg["a2a"] = {
        "expose": [
            {
                "agent": DESK,
                "skills": [PURPOSE],
                "description": "Hospital triage desk: triage data for partners' coordinators",
            }
        ]
    }
    path.write_text(tomli_w.dumps(cfg))


def start_gateway(layout: Layout, *, timeout: float = 60.0) -> NodeProcess:
    """Start relief's gateway process (``accord a2a serve``) on a free loopback port.

    Its log goes to ``relief/a2a.log``. Raises ``RuntimeError`` when it is not
    ready within ``timeout`` seconds (:meth:`NodeProcess.start`).
    """
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
    return proc.start(timeout=timeout)


def _allowed(records: list[Any], released: list[str], stripped: list[str], receipt: bool, dsc: str) -> dict:
    return {
        "outcome": "allow",
        "records": records,
        "released": list(released),
        "stripped": list(stripped),
        "receipt": bool(receipt),
        "disclosure_id": dsc,
        "crossed": True,
    }


def _refused(reason: str, *, crossed: bool) -> dict:
    return {"outcome": "refused", "reason": reason, "crossed": crossed, "records": [], "released": []}


async def _sdk(layout: Layout) -> dict[str, dict]:
    from federation.client import AgentClient
    from federation.errors import FederationError

    out: dict[str, dict] = {}
    async with AgentClient.from_wallet(layout.wallets[f"relief/{AGENT}"]) as sdk:
        session = await sdk.open_session("hospital")
        for ask, fields in ((ASKS[0], MNI), (ASKS[1], OVER_BROAD)):
            try:
                r = await sdk.request(
                    session,
                    contract_id=CONTRACT,
                    purpose=PURPOSE,
                    resource="patients",
                    subject=SUBJECT,
                    fields=fields,
                )
                out[ask] = _allowed(
                    r.records, r.released_fields, r.stripped_fields, r.receipt_verified, r.disclosure_id
                )
            except FederationError as exc:
                out[ask] = _refused(exc.reason, crossed="disclosure_id" in exc.metadata)
    out[ASKS[2]] = {"outcome": "n/a", "note": "a request carries field names only"}
    return out


def mcp_server_params(node_dir: Path, agent: str) -> Any:
    """Stdio parameters (``mcp.client.stdio.StdioServerParameters``) that start ``accord mcp serve``.

    It serves ``agent`` of ``node_dir`` and runs this interpreter (``sys.executable``) with this
    process's environment.
    """
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "federation.cli.main", "mcp", "serve", "--dir", str(node_dir), "--agent", agent],
        env=dict(os.environ),
    )


async def _mcp(layout: Layout) -> dict[str, dict]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import stdio_client

    params = mcp_server_params(layout.orgs["relief"], AGENT)
    out: dict[str, dict] = {}
    log = layout.orgs["relief"] / "mcp.log"  # the server's stderr (its log lines), not the demo's console
    with log.open("a") as errlog:
        async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            await _mcp_asks(s, out)
    out[ASKS[2]] = {"outcome": "n/a", "note": "request_records takes field names only"}
    return out


async def _mcp_asks(s: Any, out: dict[str, dict]) -> None:
    """The MNI and over-broad asks through MCP session ``s`` (tool ``request_records``)."""
    for ask, fields in ((ASKS[0], MNI), (ASKS[1], OVER_BROAD)):
        res = await s.call_tool(
            "request_records",
            {"partner": "hospital", "purpose": PURPOSE, "subject": SUBJECT, "fields": fields},
        )
        body = res.structured_content or {}
        if res.is_error:
            out[ask] = _refused(str(body.get("reason", "?")), crossed=bool(body.get("crossed")))
        else:
            rc = body.get("receipt", {})
            out[ask] = _allowed(
                body.get("records", []),
                body.get("released_fields", []),
                body.get("stripped_fields", []),
                rc.get("verified", False),
                rc.get("disclosure_id", ""),
            )


async def _a2a(layout: Layout, url: str) -> dict[str, dict]:
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest
    from a2a.utils.errors import A2AError
    from google.protobuf import json_format, struct_pb2

    from federation.agent_tokens import mint

    token, _ = mint(layout.orgs["relief"], AGENT, ttl_days=1, label="accord demo --agents")
    meta = struct_pb2.Struct()
    meta.update({"skill": PURPOSE})

    def data(fields: list[str]) -> Part:
        return Part(data=json_format.ParseDict({"subject": SUBJECT, "fields": fields}, struct_pb2.Value()))

    out: dict[str, dict] = {}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = await create_client(
            f"{url}/a2a/hospital/{DESK}/", client_config=ClientConfig(httpx_client=http, streaming=False)
        )
        for i, (ask, parts) in enumerate(
            (
                (ASKS[0], [data(MNI)]),
                (ASKS[1], [data(OVER_BROAD)]),
                (ASKS[2], [Part(text=FREE_TEXT), data(MNI)]),
            )
        ):
            msg = Message(message_id=f"demo-{i}", role=Role.ROLE_USER, parts=parts, metadata=meta)
            try:
                events = [e async for e in client.send_message(SendMessageRequest(message=msg))]
                art = events[0].task.artifacts[0]
                ev = json_format.MessageToDict(art.metadata)["accord"]
                out[ask] = _allowed(
                    json_format.MessageToDict(art.parts[0].data)["records"],
                    ev["releasedFields"],
                    ev.get("strippedFields", []),
                    ev["receiptVerified"],
                    ev["disclosureId"],
                )
            except A2AError as exc:
                data_ = exc.data or {}
                out[ask] = _refused(
                    str(data_.get("accordReason", type(exc).__name__)), crossed="disclosure_id" in data_
                )
    return out


def _same(value: Any) -> Any:
    """JSON values compared across encodings (A2A carries numbers as doubles)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_same(v) for v in value]
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items()}
    return value


def _cell(r: dict) -> str:
    if r["outcome"] == "n/a":
        return f"[dim]— ({r['note']})[/]"
    if r["outcome"] == "refused":
        where = (
            "decided and ledgered by the hospital" if r["crossed"] else "nothing crossed, nothing ledgered"
        )
        return f"[yellow]refused[/] {r['reason']}\n{where}"
    lines = [f"[green]allow[/] released: {', '.join(r['released'])}"]
    if r["stripped"]:
        lines.append(f"stripped by the gate: {', '.join(r['stripped'])}")
    keys = sorted({k for rec in r["records"] for k in rec})
    lines.append(f"record keys: {', '.join(keys)}")
    lines.append(f"receipt verified: {r['receipt']} ({r['disclosure_id'][:16]}…)")
    return "\n".join(lines)


def check(results: dict[str, dict[str, dict]]) -> list[str]:
    """What must hold across the ways in (empty list: all of it)."""
    problems = []
    sdk, mcp, a2a = (results[w] for w in WAYS)
    base = sdk[ASKS[0]]
    if base["outcome"] != "allow" or set(base["released"]) != set(MNI):
        problems.append(f"SDK: the MNI ask did not release exactly the MNI fields ({base})")
    for way in WAYS:
        r = results[way][ASKS[0]]
        if r["outcome"] != "allow":
            problems.append(f"{way}: the MNI ask was refused ({r.get('reason')})")
            continue
        if set(r["released"]) != set(base["released"]) or _same(r["records"]) != _same(base["records"]):
            problems.append(f"{way}: the MNI ask did not get what the SDK got")
        if not all(set(rec) <= set(r["released"]) for rec in r["records"]) or not r["receipt"]:
            problems.append(f"{way}: a record beyond the released fields, or the receipt not verified")
    ids = [results[w][ASKS[0]].get("disclosure_id") for w in WAYS]
    if len(set(ids)) != len(ids) or not all(ids):
        problems.append(f"the three MNI asks are not three ledgered disclosures ({ids})")
    wide = sdk[ASKS[1]]
    if wide["outcome"] != "allow" or "diagnosis" not in wide["stripped"] or "diagnosis" in wide["released"]:
        problems.append(f"SDK: the hospital's gate did not strip diagnosis ({wide})")
    for way, ask, reason in (
        ("MCP (stdio)", ASKS[1], "FIELD_NOT_IN_CONTRACT"),
        ("A2A", ASKS[1], "FIELD_NOT_IN_CONTRACT"),
        ("A2A", ASKS[2], "FREE_TEXT_NOT_ALLOWED"),
    ):
        r = results[way][ask]
        if r["outcome"] != "refused" or r["reason"] != reason or r["crossed"]:
            problems.append(f"{way}: {ask} was not refused with {reason} before crossing ({r})")
    return problems


async def _all(layout: Layout, gateway_url: str) -> dict[str, dict[str, dict]]:
    return {
        WAYS[0]: await _sdk(layout),
        WAYS[1]: await _mcp(layout),
        WAYS[2]: await _a2a(layout, gateway_url),
    }


def run_agents_triage(layout: Layout, console: Console) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """Run the three ways in against the started nodes and print them side by side.

    Needs hospital and relief running, hospital with :func:`expose_triage_desk`
    applied before it started. Starts (and stops) relief's A2A gateway; the MCP
    server is started by the MCP client itself, over stdio.

    Returns:
        ``(results, problems)``: ``results[way][ask]`` (``outcome``: ``allow`` /
        ``refused`` / ``n/a``, ``released``, ``stripped``, ``records``,
        ``receipt``, ``disclosure_id``, ``reason``, ``crossed``); ``problems``
        as :func:`check` (empty: every expectation held).

    """
    with console.status("starting relief's A2A gateway (accord a2a serve)"):
        gw = start_gateway(layout)
    try:
        results = asyncio.run(_all(layout, f"http://{gw.endpoint}"))
    finally:
        gw.stop()
    t = Table(
        title=f"relief's {AGENT} asks the hospital for {SUBJECT}'s triage data, three ways in",
        show_lines=True,
    )
    t.add_column("ask")
    for way, client in zip(
        WAYS,
        ("AgentClient (wallet)", "mcp ClientSession → accord mcp serve", "a2a-sdk client → accord a2a serve"),
        strict=True,
    ):
        t.add_column(f"{way}\n[dim]{client}[/]")
    for ask in ASKS:
        t.add_row(ask, *(_cell(results[w][ask]) for w in WAYS))
    console.print(t)
    return results, check(results)


__all__ = ["check", "expose_triage_desk", "run_agents_triage", "start_gateway"]
