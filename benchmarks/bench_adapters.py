"""``accord bench adapters``: one request through each agent adapter next to the Python SDK, same run.

Two real node processes (relief requests, supplier provides, over mTLS) serve
the same MNI request (``relief-supplier-procurement`` / ``emergency-procurement``,
no rate limit) through every path in :data:`PATHS`, round-robin, one at a time,
so each path sees the same machine load:

- ``sdk``: :class:`federation.client.AgentClient` in this process (the baseline,
  always first);
- ``mcp-stdio``: the official ``mcp`` client calling ``request_records`` on
  ``accord mcp serve`` (a child process over stdio), which makes the same SDK
  call to the same node;
- ``a2a``: a2a-sdk's client sending ``SendMessage`` (one data part) to the
  supplier's exposed ``stock-desk`` through relief's A2A gateway
  (``accord a2a serve``, a child process on loopback HTTP), which makes the
  same SDK call to the same node.

Each row gives p50/p99 latency (ms) and what the path adds over the SDK at
p50 and p99 (target: ≤ 2 ms added at p50).

Diagnostic rows (:data:`DIAGNOSTICS`, same round-robin) decompose the cost:

- ``mcp-inproc``: the MCP server in this process through the SDK's in-memory
  transport (no pipe, no second process);
- ``mcp-floor`` / ``a2a-floor``: the protocol SDK alone — the same client
  against a server process answering a canned result of the same shape, no
  Accord work at all (:mod:`benchmarks.adapter_floor`). An adapter makes the
  SDK path's own call *on top of* that round trip, so a floor row's p50 is
  the least that adapter can add over the ``sdk`` row: where it exceeds
  2 ms, the target cannot be met with that protocol SDK on that machine.

Hook for more adapters: append an :class:`AdapterPath` to :data:`PATHS`;
its ``open(layout)`` is an async context manager yielding an
``async call(subject) -> None`` that performs the request once and raises on
any refusal.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from federation.client import AgentClient
from federation.demo.agents import mcp_server_params, start_gateway
from federation.demo.setup import Layout, provision
from federation.supervisor import NodeProcess

AGENT = "logistics"
CONTRACT = "relief-supplier-procurement"
PURPOSE = "emergency-procurement"
PARTNER = "supplier"
FIELDS = ["sku", "name", "stock", "warehouse"]
SUBJECT = "SKU-1001"

Call = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class AdapterPath:
    """One way for an agent to make the request.

    Attributes:
        name: row label (``sdk``, ``mcp-stdio``, ``a2a``, ...).
        open: ``open(layout)`` → async context manager yielding ``call(subject)``.

    """

    name: str
    open: Callable[[Layout], AbstractAsyncContextManager[Call]]


@asynccontextmanager
async def _sdk(layout: Layout) -> AsyncIterator[Call]:
    async with AgentClient.from_wallet(layout.wallets[f"relief/{AGENT}"]) as agent:
        session = await agent.open_session(PARTNER)

        async def call(subject: str) -> None:
            r = await agent.request(
                session,
                contract_id=CONTRACT,
                purpose=PURPOSE,
                resource="inventory",
                subject=subject,
                fields=FIELDS,
            )
            if r.decision != "allow":
                raise RuntimeError(r.decision)

        yield call


@asynccontextmanager
async def _mcp_stdio(layout: Layout, *, args: list[str] | None = None) -> AsyncIterator[Call]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = (
        StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))
        if args
        else mcp_server_params(layout.orgs["relief"], AGENT)
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()

        async def call(subject: str) -> None:
            res = await s.call_tool(
                "request_records",
                {"partner": PARTNER, "purpose": PURPOSE, "subject": subject, "fields": FIELDS},
            )
            if res.is_error:
                raise RuntimeError(res.content[0].text if res.content else "tool error")

        yield call


@asynccontextmanager
async def _mcp_in_process(layout: Layout) -> AsyncIterator[Call]:
    """Diagnostic row: the same tool call with the MCP server in this process (no pipe, no process hop)."""
    from mcp.client.client import Client

    from federation.mcp.server import AgentAdapter, build_server

    adapter = AgentAdapter(layout.orgs["relief"], AGENT)
    try:
        async with Client(build_server(adapter)) as c:

            async def call(subject: str) -> None:
                res = await c.call_tool(
                    "request_records",
                    {"partner": PARTNER, "purpose": PURPOSE, "subject": subject, "fields": FIELDS},
                )
                if res.is_error:
                    raise RuntimeError(res.content[0].text if res.content else "tool error")

            yield call
    finally:
        await adapter.close()


@asynccontextmanager
async def _mcp_floor(layout: Layout) -> AsyncIterator[Call]:
    """Diagnostic row: the same client and call against the MCP SDK alone (``adapter_floor``)."""
    async with _mcp_stdio(layout, args=["-m", "benchmarks.adapter_floor", "mcp"]) as call:
        yield call


@asynccontextmanager
async def _a2a_floor(layout: Layout) -> AsyncIterator[Call]:
    """Diagnostic row: the same a2a-sdk client and message against a2a-sdk alone (``adapter_floor``)."""
    from benchmarks.adapter_floor import floor_card
    from federation.supervisor import free_port

    relief = layout.orgs["relief"]
    srv = NodeProcess(
        relief,
        command=[
            sys.executable,
            "-m",
            "benchmarks.adapter_floor",
            "a2a",
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
    )
    srv.log_path = relief / "a2a-floor.log"
    await asyncio.to_thread(srv.start, timeout=60)
    try:
        card = floor_card(f"http://{srv.endpoint}/a2a/{PARTNER}/{A2A_AGENT}/")
        async with _a2a_client(card, token="floor") as call:
            yield call
    finally:
        srv.stop()


A2A_AGENT = "stock-desk"
"""The supplier's agent exposed over A2A for the benchmark (skill: :data:`PURPOSE`)."""


def _expose_a2a(layout: Layout) -> None:
    """Expose :data:`A2A_AGENT` in the supplier's ``node.toml`` (before the node starts)."""
    import tomllib

    import tomli_w

    path = layout.orgs[PARTNER] / "node.toml"
    cfg = tomllib.loads(path.read_text())
    cfg["a2a"] = {"expose": [{"agent": A2A_AGENT, "skills": [PURPOSE]}]}
    path.write_text(tomli_w.dumps(cfg))


@asynccontextmanager
async def _a2a(layout: Layout) -> AsyncIterator[Call]:
    from federation.agent_tokens import mint

    relief = layout.orgs["relief"]
    gw = await asyncio.to_thread(start_gateway, layout)
    token, _ = mint(relief, AGENT, ttl_days=1, label="accord bench adapters")
    try:
        async with _a2a_client(f"http://{gw.endpoint}/a2a/{PARTNER}/{A2A_AGENT}/", token=token) as call:
            yield call
    finally:
        gw.stop()


@asynccontextmanager
async def _a2a_client(agent: Any, *, token: str) -> AsyncIterator[Call]:
    """a2a-sdk's client for ``agent`` (a URL whose card it fetches, or a card): ``call`` sends one message."""
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest
    from google.protobuf import json_format, struct_pb2

    meta = struct_pb2.Struct()
    meta.update({"skill": PURPOSE})
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = await create_client(agent, client_config=ClientConfig(httpx_client=http, streaming=False))
        n = 0

        async def call(subject: str) -> None:
            nonlocal n
            n += 1
            body = json_format.ParseDict({"subject": subject, "fields": FIELDS}, struct_pb2.Value())
            msg = Message(
                message_id=f"bench-{n}", role=Role.ROLE_USER, parts=[Part(data=body)], metadata=meta
            )
            out = [e async for e in client.send_message(SendMessageRequest(message=msg))]
            if not out or not out[0].task.artifacts:
                raise RuntimeError(f"no records: {out}")

        yield call


#: the paths measured, baseline (the SDK) first; other adapters append here
PATHS: list[AdapterPath] = [
    AdapterPath("sdk", _sdk),
    AdapterPath("mcp-stdio", _mcp_stdio),
    AdapterPath("a2a", _a2a),
]

#: rows that decompose an adapter's cost (not ways in): printed after the paths
DIAGNOSTICS: list[AdapterPath] = [
    AdapterPath("mcp-inproc (diag.)", _mcp_in_process),
    AdapterPath("mcp-floor (diag.)", _mcp_floor),
    AdapterPath("a2a-floor (diag.)", _a2a_floor),
]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> set[int]:
    """Pids of this process's direct children (Linux ``/proc``)."""
    me = os.getpid()
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == me:
                    out.add(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def _measure(
    layout: Layout, paths: list[AdapterPath], *, requests: int, warmup: int
) -> dict[str, list[float]]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        calls = []
        for p in paths:
            before = _children()
            call = await stack.enter_async_context(p.open(layout))
            calls.append((p.name, call, sorted(_children() - before)))  # the adapter's own processes
        for _ in range(warmup):
            for _, call, _ in calls:
                await call(SUBJECT)
        lat: dict[str, list[float]] = {name: [] for name, _, _ in calls}
        cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name, _, _ in calls}  # [this process, adapter's]
        # no refresh thread: it would wake up in this process while a request is timed
        with Progress(transient=True, auto_refresh=False) as progress:
            task = progress.add_task("round-robin requests", total=requests)
            for _ in range(requests):
                for name, call, pids in calls:
                    a0 = sum(_cpu_seconds(p) for p in pids)  # /proc read outside the timed span
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    await call(SUBJECT)
                    lat[name].append((time.perf_counter() - t0) * 1000)
                    cpu[name][0] += time.process_time() - c0
                    cpu[name][1] += sum(_cpu_seconds(p) for p in pids) - a0
                progress.advance(task)
                progress.refresh()
        for name in cpu:
            cpu[name] = [1000 * v / requests for v in cpu[name]]
        return {"latency": lat, "cpu": cpu}


def run(*, requests: int = 300, warmup: int = 20, json_output: bool = False) -> dict[str, Any]:
    """Measure every path in :data:`PATHS`; print a table (or JSON) and return the figures."""
    root = Path(tempfile.mkdtemp(prefix="accord-bench-adapters-"))
    layout = provision(root, orgs=("relief", "supplier"), with_interop=False, status_ttl_seconds=60)
    _expose_a2a(layout)
    procs = [NodeProcess(layout.orgs[o]).start() for o in ("relief", "supplier")]
    try:
        measured = asyncio.run(_measure(layout, PATHS + DIAGNOSTICS, requests=requests, warmup=warmup))
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(root, ignore_errors=True)  # two node directories, ledgers, logs
    lat, cpu = measured["latency"], measured["cpu"]
    base = PATHS[0].name
    b50, b99 = _pct(lat[base], 0.5), _pct(lat[base], 0.99)
    base_cpu = sum(cpu[base])
    rows = []
    for name, values in lat.items():
        p50, p99 = _pct(values, 0.5), _pct(values, 0.99)
        rows.append(
            {
                "path": name,
                "requests": len(values),
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "added_p50_ms": round(p50 - b50, 3),
                "added_p99_ms": round(p99 - b99, 3),
                "client_cpu_ms": round(cpu[name][0], 3),
                "adapter_cpu_ms": round(cpu[name][1], 3),
                "added_cpu_ms": round(sum(cpu[name]) - base_cpu, 3),
            }
        )
    by_path = {r["path"]: r for r in rows}
    floors = {}
    for path, floor in (("mcp-stdio", "mcp-floor (diag.)"), ("a2a", "a2a-floor (diag.)")):
        if path in by_path and floor in by_path:
            added, bare = by_path[path]["added_p50_ms"], by_path[floor]["p50_ms"]
            floors[path] = {
                "added_p50_ms": added,
                "sdk_alone_p50_ms": bare,
                "adapter_own_p50_ms": round(added - bare, 3),
                "target_reachable": bare <= 2.0,
            }
    out = {
        "benchmark": "adapters",
        "baseline": base,
        "target_added_p50_ms": 2.0,
        "rows": rows,
        "floors": floors,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg": os.getloadavg(),
        },
    }
    if json_output:
        print(json.dumps(out, indent=2))
        return out
    t = Table(
        "path",
        "n",
        "p50 ms",
        "p99 ms",
        "+p50",
        "+p99",
        "client CPU ms",
        "adapter CPU ms",
        "+CPU ms",
        title=f"one request per path, round-robin; + = added over {base} in this run",
    )
    for r in rows:
        t.add_row(
            r["path"],
            str(r["requests"]),
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['added_p50_ms']:+.2f}",
            f"{r['added_p99_ms']:+.2f}",
            f"{r['client_cpu_ms']:.2f}",
            f"{r['adapter_cpu_ms']:.2f}",
            f"{r['added_cpu_ms']:+.2f}",
        )
    c = Console()
    if not c.is_terminal:  # a log file or a pipe: keep the rows whole
        c = Console(width=150)
    c.print(t)
    for path, f in floors.items():
        c.print(
            f"{path}: adds {f['added_p50_ms']:+.2f} ms at p50; its protocol SDK alone (floor row) takes "
            f"{f['sdk_alone_p50_ms']:.2f} ms, so the adapter's own share is {f['adapter_own_p50_ms']:+.2f} ms"
            + ("" if f["target_reachable"] else " (the SDK alone is over the 2 ms target)")
        )
    c.print(f"target: ≤ 2 ms added at p50; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return out
