"""``accord bench a2a``: one request through the A2A gateway next to the same request through the SDK, same run.

Two node processes (hospital exposes ``triage-desk`` for
``triage-coordination``; relief asks) and relief's gateway process
(``accord a2a serve``). The same agent (relief's ``triage-coordinator``)
asks for the same record and fields, alternately:

* **SDK**: :class:`federation.client.AgentClient` → relief's node → hospital's
  node (one session opened before measuring);
* **A2A**: a2a-sdk's client (card resolved and its signature verified before
  measuring) → JSON-RPC ``SendMessage`` over loopback HTTP → the gateway → the
  same SDK path.

Calls alternate one by one, so both paths see the same machine load; the
figure that matters is the A2A path's added milliseconds at p50 (target:
at most 2 ms). Sequential (one in flight): the added latency, not throughput.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

PURPOSE = "triage-coordination"
CONTRACT = "relief-hospital-triage"
FIELDS = ["patient_id", "triage_level", "mobility", "shelter"]
MAX_ROUNDS = 220
"""Most measured rounds: the demo contract's rate limit is 500 requests a minute for both paths together."""


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup(root: Path) -> tuple[dict[str, Any], Any]:
    """Provision hospital + relief with ``triage-desk`` exposed; start both nodes and relief's gateway.

    Returns:
        ({"relief": dir, "hospital": dir, "url": gateway base URL, "wallet": path}, stop()).

    """
    from federation.demo.setup import provision
    from federation.supervisor import NodeProcess, free_port

    layout = provision(root, orgs=("hospital", "relief"), with_interop=False)
    cfg_path = layout.orgs["hospital"] / "node.toml"
    cfg = tomllib.loads(cfg_path.read_text())
    cfg["a2a"] = {"expose": [{"agent": "triage-desk", "skills": [PURPOSE]}]}
    cfg_path.write_text(tomli_w.dumps(cfg))
    procs = [NodeProcess(layout.orgs[o]).start() for o in ("hospital", "relief")]
    port = free_port()
    gw = NodeProcess(
        layout.orgs["relief"],
        command=[
            sys.executable,
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
    gw.log_path = layout.orgs["relief"] / "a2a.log"
    procs.append(gw.start(timeout=60))

    def stop() -> None:
        for p in reversed(procs):
            p.stop()

    info = {
        "relief": layout.orgs["relief"],
        "hospital": layout.orgs["hospital"],
        "url": f"http://{gw.endpoint}",
        "wallet": layout.wallets["relief/triage-coordinator"],
        "pids": {"gateway": gw.pid, "relief node": procs[1].pid, "hospital node": procs[0].pid},
    }
    return info, stop


async def measure(info: dict[str, Any], *, rounds: int, warmup: int = 10) -> dict[str, Any]:
    """Alternate SDK and A2A calls; returns latencies (ms) per path and the added p50."""
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest
    from google.protobuf import json_format, struct_pb2

    from federation.a2a.auth import GatewayTokens
    from federation.client import AgentClient

    token = GatewayTokens(info["relief"]).mint("triage-coordinator")
    body = {"subject": "patient-001", "fields": FIELDS}
    meta = struct_pb2.Struct()
    meta.update({"skill": PURPOSE})
    sdk_ms: list[float] = []
    a2a_ms: list[float] = []
    cpu = {"sdk": 0.0, "a2a": 0.0}  # this (client) process's CPU seconds per path
    async with (
        AgentClient.from_wallet(info["wallet"]) as agent,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
    ):
        session = await agent.open_session("hospital")
        client = await create_client(
            f"{info['url']}/a2a/hospital/triage-desk/",
            client_config=ClientConfig(httpx_client=http, streaming=False),
        )

        async def sdk() -> None:
            r = await agent.request(
                session,
                contract_id=CONTRACT,
                purpose=PURPOSE,
                resource="patients",
                subject="patient-001",
                fields=FIELDS,
            )
            assert r.records and r.receipt_verified

        async def a2a(i: int) -> None:
            msg = Message(
                message_id=f"bench-{i}",
                role=Role.ROLE_USER,
                parts=[Part(data=json_format.ParseDict(body, struct_pb2.Value()))],
                metadata=meta,
            )
            out = [r async for r in client.send_message(SendMessageRequest(message=msg))]
            assert out and out[0].task.artifacts

        for i in range(warmup):
            await sdk()
            await a2a(-i - 1)
        gw0 = _cpu_seconds(info["pids"]["gateway"])
        for i in range(rounds):
            first_sdk = i % 2 == 0  # alternate which path goes first
            for path in ("sdk", "a2a") if first_sdk else ("a2a", "sdk"):
                c0, t0 = time.process_time(), time.perf_counter()
                await (sdk() if path == "sdk" else a2a(i))
                (sdk_ms if path == "sdk" else a2a_ms).append((time.perf_counter() - t0) * 1000)
                cpu[path] += time.process_time() - c0
        gw_cpu = _cpu_seconds(info["pids"]["gateway"]) - gw0
    return {
        "rounds": rounds,
        "sdk": {
            "p50_ms": _pct(sdk_ms, 0.5),
            "p99_ms": _pct(sdk_ms, 0.99),
            "mean_ms": statistics.fmean(sdk_ms),
        },
        "a2a": {
            "p50_ms": _pct(a2a_ms, 0.5),
            "p99_ms": _pct(a2a_ms, 0.99),
            "mean_ms": statistics.fmean(a2a_ms),
        },
        "added_p50_ms": _pct(a2a_ms, 0.5) - _pct(sdk_ms, 0.5),
        "cpu_ms_per_call": {
            "client_sdk": cpu["sdk"] * 1000 / rounds,
            "client_a2a": cpu["a2a"] * 1000 / rounds,
            "gateway": gw_cpu * 1000 / rounds,
        },
        "target_added_p50_ms": 2.0,
    }


def run(*, json_output: bool = False, rounds: int = 200) -> dict[str, Any]:
    """Set up, measure, print the comparison (table or JSON); returns the figures."""
    from rich.console import Console
    from rich.table import Table

    rounds = max(10, min(rounds, MAX_ROUNDS))
    with tempfile.TemporaryDirectory(prefix="accord-bench-a2a-") as tmp:
        info, stop = setup(Path(tmp))
        try:
            out = asyncio.run(measure(info, rounds=rounds))
        finally:
            stop()
    if json_output:
        print(json.dumps(out, indent=2))
        return out
    t = Table(title=f"one triage request, SDK vs A2A gateway ({rounds} alternating rounds, one in flight)")
    for col in ("path", "p50 ms", "p99 ms", "mean ms"):
        t.add_column(col)
    for name, key in (("Python SDK", "sdk"), ("A2A gateway (a2a-sdk client)", "a2a")):
        r = out[key]
        t.add_row(name, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['mean_ms']:.2f}")
    Console().print(t)
    c = out["cpu_ms_per_call"]
    Console().print(
        f"CPU ms per call: client {c['client_sdk']:.2f} (SDK) vs {c['client_a2a']:.2f} (a2a-sdk client); "
        f"gateway process {c['gateway']:.2f}"
    )
    Console().print(
        f"A2A adds {out['added_p50_ms']:.2f} ms at p50 (target ≤ {out['target_added_p50_ms']:.0f} ms)"
    )
    return out
