"""``accord bench soak``: the full exchange for a long while; errors, throughput per minute, memory.

Two node processes (relief → supplier, as in ``accord bench exchange``) and
one agent SDK client in this process keep ``in_flight`` full exchanges going
for ``minutes``: agent signature, session, org signature, replay cache, Rego
decision, MNI gate, the provider's durable ledger append with a receipt, the
requester's "received" entry. Reported:

* ``errors``: failed exchanges (their reason codes, counted); a soak passes with none;
* ``minutes``: per minute of the run (the last one may be partial), the exchanges
  completed, the errors, the throughput (exchanges/s) and, for each full
  minute, the RSS of each process at its end (``rss_kib``);
* ``rss``: per node process (and this client), the resident set size in KiB
  at the start (after the warm-up) and at the end, and the growth, read from
  ``/proc/<pid>/status`` (``VmRSS``);
* the CPU milliseconds per exchange of each process (steadier than
  throughput on a shared machine).

The session is renewed before it expires (a long run outlives one), as any
client would do; a renewal is not an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_exchange import PROCUREMENT, _cpu_seconds
from federation.client import AgentClient
from federation.demo.setup import provision
from federation.errors import FederationError
from federation.supervisor import NodeProcess

RENEW_BEFORE_SECONDS = 60.0
"""A session is replaced this long before it expires."""


def rss_kib(pid: int) -> int | None:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` of ``/proc/<pid>/status``; None elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


async def _soak(layout, *, seconds: float, in_flight: int, pids: dict[str, int]) -> dict[str, Any]:
    """Drive the exchange; returns calls, errors and per-minute buckets, RSS and CPU per process."""
    async with AgentClient.from_wallet(layout.wallets["relief/logistics"]) as agent:
        session = await agent.open_session("supplier")

        async def call() -> None:
            await agent.request(
                session,
                **PROCUREMENT,
            )

        for _ in range(min(20, 4 * in_flight)):  # warm-up: caches, connections, worker processes
            await call()
        rss0 = {name: rss_kib(pid) for name, pid in pids.items()}
        cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        reasons: Counter[str] = Counter()
        buckets: list[dict[str, Any]] = []
        t0 = time.monotonic()
        end = t0 + seconds

        def bucket() -> dict[str, Any]:
            i = int((time.monotonic() - t0) // 60)
            while len(buckets) <= i:
                buckets.append({"minute": len(buckets) + 1, "calls": 0, "errors": 0})
            return buckets[i]

        renewing: asyncio.Lock = asyncio.Lock()

        async def renew() -> None:
            nonlocal session
            async with renewing:
                if session.expires_at - time.time() < RENEW_BEFORE_SECONDS:
                    session = await agent.open_session("supplier")

        async def worker() -> None:
            while time.monotonic() < end:
                if session.expires_at - time.time() < RENEW_BEFORE_SECONDS:
                    await renew()
                try:
                    await call()
                except FederationError as exc:
                    reasons[exc.reason] += 1
                    bucket()["errors"] += 1
                    continue
                except Exception as exc:  # a transport failure: counted under its class name
                    reasons[type(exc).__name__] += 1
                    bucket()["errors"] += 1
                    continue
                bucket()["calls"] += 1

        async def sample() -> None:  # RSS at the end of each full minute
            while True:
                await asyncio.sleep(60.0 - (time.monotonic() - t0) % 60.0)
                if time.monotonic() >= end:
                    return
                i = round((time.monotonic() - t0) / 60.0) - 1  # the minute that just ended
                if 0 <= i < len(buckets):
                    buckets[i]["rss_kib"] = {name: rss_kib(pid) for name, pid in pids.items()}

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        sampler.cancel()
        wall = time.monotonic() - t0
        rss1 = {name: rss_kib(pid) for name, pid in pids.items()}
        cpu1 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    calls = sum(b["calls"] for b in buckets)
    for i, b in enumerate(buckets):
        span = min(60.0, wall - 60.0 * i)
        b["seconds"] = round(span, 3)
        b["throughput"] = b["calls"] / span if span > 0 else 0.0
    rss = {
        name: {
            "start_kib": rss0[name],
            "end_kib": rss1[name],
            "growth_kib": None if rss0[name] is None or rss1[name] is None else rss1[name] - rss0[name],
        }
        for name in pids
    }
    cpu_ms = {
        name: (cpu1[name] - cpu0[name]) * 1e3 / max(1, calls)  # type: ignore[operator]
        for name in pids
        if cpu0[name] is not None and cpu1[name] is not None
    }
    return {
        "seconds": round(wall, 3),
        "calls": calls,
        "errors": sum(reasons.values()),
        "error_reasons": dict(reasons),
        "throughput": calls / wall if wall else 0.0,
        "minutes": buckets,
        "rss": rss,
        "cpu_ms_per_call": cpu_ms,
    }


def run(
    *, minutes: float = 10.0, in_flight: int = 64, json_output: bool = False, console: Console | None = None
) -> dict[str, Any]:
    """Run the soak and print its report; returns it (shape: module docstring).

    Args:
        minutes: how long to keep the load on (after a short warm-up).
        in_flight: exchanges in flight at every moment.
        json_output: print JSON instead of tables.
        console: where tables go.

    """
    console = console or Console(stderr=json_output)
    root = Path(tempfile.mkdtemp(prefix="accord-soak-"))
    layout = provision(root, orgs=("relief", "supplier"), with_interop=False, status_ttl_seconds=60)
    procs = [NodeProcess(layout.orgs[o]).start() for o in ("relief", "supplier")]
    try:
        pids = {"requester node": procs[0].pid, "provider node": procs[1].pid, "agent": os.getpid()}
        console.print(f"soak: {in_flight} full exchanges in flight for {minutes:g} min…")
        load0 = os.getloadavg()
        out = asyncio.run(_soak(layout, seconds=minutes * 60.0, in_flight=in_flight, pids=pids))
        load1 = os.getloadavg()
    finally:
        for p in procs:
            p.stop()
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": {"start": [round(x, 2) for x in load0], "end": [round(x, 2) for x in load1]},
        "in_flight": in_flight,
        **out,
    }
    if json_output:
        print(json.dumps(result, indent=2))
        return result
    t = Table(title=f"soak: {in_flight} in flight, {result['seconds']:.0f} s, {result['calls']} exchanges")
    for col in ("minute", "exchanges", "errors", "exchanges/s"):
        t.add_column(col, justify="right")
    for b in result["minutes"]:
        t.add_row(str(b["minute"]), str(b["calls"]), str(b["errors"]), f"{b['throughput']:.1f}")
    console.print(t)
    m = Table(title="resident memory (KiB)")
    for col in ("process", "start", "end", "growth", "CPU ms/exchange"):
        m.add_column(col, justify="right")
    for name, r in result["rss"].items():
        cpu = result["cpu_ms_per_call"].get(name)
        m.add_row(
            name,
            str(r["start_kib"]),
            str(r["end_kib"]),
            str(r["growth_kib"]),
            "-" if cpu is None else f"{cpu:.2f}",
        )
    console.print(m)
    console.print(
        f"errors: {result['errors']} {result['error_reasons'] or ''}  "
        f"load average {result['load_average']['start']} → {result['load_average']['end']}"
    )
    return result
