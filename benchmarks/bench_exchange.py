"""``accord bench exchange``: full cross-org exchanges vs a raw gRPC relay, same run.

Full exchange: agent SDK → its node (relief) → peer node (supplier) → back,
over mutual TLS, with every check on: agent signature, session, org
signature, replay cache, Rego decision, MNI gate, provider ledger append
and integration with a signed checkpoint and inclusion proof, receipt
verification and the requester's "received" entry. Baseline: the same
two-process hop over mutual TLS with the same request and reply sizes
(:mod:`benchmarks.relay`). Both at 1, 8 and 64 requests in flight, with the
CPU milliseconds each process spends per exchange (steadier than throughput
on a shared machine).

With ``--replicas N`` the provider's database is PostgreSQL (a schema of
its own in ``--database-url``, dropped afterwards) and the full exchange is
measured twice in the same run: the provider as one process, then as N
replicas (``node start --replica I --replicas N``; sessions, replay cache
and budgets shared in the database) with the requester dialling them in
turn (``peer_endpoints``). The CPU of every replica is counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from federation.client import AgentClient
from federation.demo.setup import provision
from federation.supervisor import NodeProcess, free_port

FIELDS = ["sku", "name", "stock", "warehouse"]
#: the benchmarked request: relief's logistics agent asks the supplier for one SKU's MNI fields
PROCUREMENT: dict[str, Any] = {
    "contract_id": "relief-supplier-procurement",
    "purpose": "emergency-procurement",
    "resource": "inventory",
    "subject": "SKU-1001",
    "fields": FIELDS,
}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(call, *, concurrency: int, seconds: float, pids: dict[str, int]) -> dict[str, Any]:
    """Run ``call`` with ``concurrency`` in flight for ``seconds``.

    Returns throughput (calls/s), latency percentiles (ms) and, per process
    in ``pids`` (name → pid), CPU milliseconds per call: on a shared machine
    the CPU cost is steadier than the throughput.
    """
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)

    # warm-up
    for _ in range(min(20, 4 * concurrency)):
        await call()
    cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    cpu1 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    cpu_ms = {
        name: (cpu1[name] - cpu0[name]) * 1e3 / max(1, len(latencies))  # type: ignore[operator]
        for name in pids
        if cpu0[name] is not None and cpu1[name] is not None
    }
    return {
        "cpu_ms_per_call": cpu_ms,
        "calls": len(latencies),
        "errors": errors,
        "throughput": len(latencies) / wall,
        "p50_ms": _percentile(latencies, 0.50) * 1e3,
        "p99_ms": _percentile(latencies, 0.99) * 1e3,
        "mean_ms": statistics.fmean(latencies) * 1e3 if latencies else float("nan"),
    }


def _spawn_relay(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.relay", *args], stdout=subprocess.PIPE, text=True
    )
    out: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                out.append(line.split()[2])
                break

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(20)
    if not out:
        proc.kill()
        raise RuntimeError("relay did not start")
    return proc, out[0]


async def _full(
    layout, *, levels: tuple[int, ...], seconds: float, pids: dict[str, int]
) -> tuple[dict[int, dict], int, int]:
    async with AgentClient.from_wallet(layout.wallets["relief/logistics"]) as agent:
        session = await agent.open_session("supplier")
        sample = agent.sign_request(
            session,
            **PROCUREMENT,
        )
        first = await agent.request(
            session,
            **PROCUREMENT,
        )
        reply_bytes = first.outcome.ByteSize()

        async def call() -> None:
            await agent.request(
                session,
                **PROCUREMENT,
            )

        out = {c: await _load(call, concurrency=c, seconds=seconds, pids=pids) for c in levels}
        return out, sample.ByteSize(), reply_bytes


async def _raw(
    front: str,
    ca: bytes,
    cert: bytes,
    key: bytes,
    request_bytes: int,
    *,
    levels: tuple[int, ...],
    seconds: float,
    pids: dict[str, int],
) -> dict[int, dict]:
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    async with grpc.aio.secure_channel(front, creds) as ch:
        method = ch.unary_unary("/accord.bench.v1.Relay/Call")
        payload = b"r" * request_bytes

        async def call() -> None:
            await method(payload, timeout=10)

        return {c: await _load(call, concurrency=c, seconds=seconds, pids=pids) for c in levels}


def _to_postgresql(layout, org: str, database_url: str) -> tuple[str, Any]:
    """Move ``org``'s node database to a new PostgreSQL schema (agents and datasets copied).

    Returns (the schema's URL, a function that drops the schema).
    """
    import datetime as dt
    import uuid

    import sqlalchemy as sa

    from federation.agents import open_store
    from federation.config import load_config, save_config
    from federation.identity import NodeIdentity

    schema = f"accord_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3D{schema}"
    d = layout.orgs[org]
    old = open_store(NodeIdentity.load(d))
    agents, datasets = old.agents(), old.datasets()
    save_config(d, load_config(d).model_copy(update={"database_url": url}))
    new = open_store(NodeIdentity.load(d))
    now = dt.datetime.now(dt.UTC)
    for a in agents:
        new.add_agent(a, now=now)
    for spec, recs in datasets:
        new.put_dataset(spec["name"], spec, recs, id_column=spec["id"], now=now)
    new.engine.dispose()

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url, drop


def _replica_phase(
    layout, replicas: int, *, levels: tuple[int, ...], seconds: float
) -> tuple[dict[int, dict], int, int]:
    """The full exchange with the supplier as ``replicas`` processes (1 = a single process)."""
    from federation.config import load_config, save_config
    from federation.supervisor import ReplicaSet

    sup, rel = layout.orgs["supplier"], layout.orgs["relief"]
    port = int(load_config(sup).listen.rpartition(":")[2])
    extra = {"supplier": [f"127.0.0.1:{port + i}" for i in range(replicas)]} if replicas > 1 else {}
    save_config(rel, load_config(rel).model_copy(update={"peer_endpoints": extra}))
    provider: Any = ReplicaSet(sup, replicas) if replicas > 1 else NodeProcess(sup)
    requester = NodeProcess(rel)
    try:
        provider.start()
        requester.start()
        ppids = [p.pid for p in provider.procs] if replicas > 1 else [provider.pid]
        pids = {"requester node": requester.pid, "agent": os.getpid()}
        pids.update({f"provider replica {i}": pid for i, pid in enumerate(ppids)})
        return asyncio.run(_full(layout, levels=levels, seconds=seconds, pids=pids))
    finally:
        requester.stop()
        provider.stop()


def run(
    *,
    seconds: float = 4.0,
    concurrency: tuple[int, ...] = (1, 8, 64),
    json_output: bool = False,
    console: Console | None = None,
    replicas: int = 1,
    database_url: str | None = None,
    rounds: int = 2,
) -> dict[str, Any]:
    """Run the measurements and print the comparison; returns the figures.

    Args:
        seconds: measuring time per point (seconds).
        concurrency: requests in flight, one point each.
        json_output: print JSON instead of tables.
        console: where tables go.
        replicas: with N > 1, also measure the provider run as N replicas on
            PostgreSQL, against one process on the same database (same run).
        database_url: PostgreSQL URL for ``replicas`` > 1 (a schema is created
            and dropped in it).
        rounds: with ``replicas`` > 1, how many times the 1-process and the
            N-replica phases are run, alternately.

    Raises:
        ValueError: ``replicas`` > 1 without a PostgreSQL ``database_url``.

    """
    if replicas > 1 and not (database_url or "").startswith("postgresql"):
        raise ValueError(
            "--replicas needs --database-url postgresql+psycopg://… (or ACCORD_BENCH_DATABASE_URL)"
        )
    console = console or Console(stderr=json_output)
    root = Path(tempfile.mkdtemp(prefix="accord-bench-"))
    layout = provision(root, orgs=("relief", "supplier"), with_interop=False, status_ttl_seconds=60)
    scaled: list[tuple[int, dict[int, dict]]] = []  # (replicas, points by in-flight), in run order
    drop = None
    if replicas > 1:
        assert database_url is not None
        _, drop = _to_postgresql(layout, "supplier", database_url)
    procs = [] if replicas > 1 else [NodeProcess(layout.orgs[o]).start() for o in ("relief", "supplier")]
    relays: list[subprocess.Popen[str]] = []
    try:
        if replicas > 1:
            for r in range(rounds):  # alternated: the machine's load drifts between phases
                for n in (1, replicas):
                    console.print(
                        f"round {r + 1}/{rounds}: full exchanges, provider on PostgreSQL as {n} process(es)…"
                    )
                    points, req_bytes, reply_bytes = _replica_phase(
                        layout, n, levels=concurrency, seconds=seconds
                    )
                    scaled.append((n, points))
            full = scaled[0][1]
        else:
            console.print("measuring full exchanges (relief agent → relief node → supplier node)…")
            full_pids = {"requester node": procs[0].pid, "provider node": procs[1].pid, "agent": os.getpid()}
            full, req_bytes, reply_bytes = asyncio.run(
                _full(layout, levels=concurrency, seconds=seconds, pids=full_pids)
            )
        for p in procs:
            p.stop()
        sup, rel = layout.orgs["supplier"], layout.orgs["relief"]
        back, back_ep = _spawn_relay(
            [
                "back",
                "--dir",
                str(sup),
                "--port",
                str(free_port()),
                "--trust",
                str(rel / "tls" / "ca.pem"),
                "--reply-bytes",
                str(reply_bytes),
            ]
        )
        relays.append(back)
        front, front_ep = _spawn_relay(
            [
                "front",
                "--dir",
                str(rel),
                "--port",
                str(free_port()),
                "--upstream",
                back_ep,
                "--upstream-ca",
                str(sup / "tls" / "ca.pem"),
            ]
        )
        relays.append(front)
        console.print("measuring the raw gRPC relay (same hops, mTLS, sizes)…")
        tls = rel / "tls"
        raw = asyncio.run(
            _raw(
                front_ep,
                (tls / "ca.pem").read_bytes(),
                (tls / "operator.pem").read_bytes(),
                (tls / "operator.key").read_bytes(),
                req_bytes,
                levels=concurrency,
                seconds=seconds,
                pids={"front relay": front.pid, "back relay": back.pid, "client": os.getpid()},
            )
        )
    finally:
        for p in procs:
            p.stop()
        for r in relays:
            r.terminate()
            r.wait(5)
        if drop is not None:
            drop()
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "grpc": grpc.__version__,
        },
        "date": time.strftime("%Y-%m-%d"),
        "seconds_per_point": seconds,
        "request_bytes": req_bytes,
        "reply_bytes": reply_bytes,
        "points": [
            {
                "in_flight": c,
                "full": full[c],
                "raw_relay": raw[c],
                "ratio": full[c]["throughput"] / raw[c]["throughput"] if raw[c]["throughput"] else None,
            }
            for c in concurrency
        ],
    }
    if scaled:
        pairs = [(scaled[i][1], scaled[i + 1][1]) for i in range(0, len(scaled), 2)]
        result["replicas"] = {
            "database": "postgresql",
            "counts": [1, replicas],
            "points": [
                {
                    "round": r + 1,
                    "in_flight": c,
                    "replicas_1": one[c],
                    f"replicas_{replicas}": many[c],
                    "gain": many[c]["throughput"] / one[c]["throughput"] if one[c]["throughput"] else None,
                }
                for r, (one, many) in enumerate(pairs)
                for c in concurrency
            ],
        }
    if json_output:
        print(json.dumps(result, indent=2))
    else:
        t = Table(
            title=f"full exchange vs raw gRPC relay ({seconds:.0f} s per point, "
            f"request {req_bytes} B, reply {reply_bytes} B)"
        )
        for col in (
            "in flight",
            "full /s",
            "full p50 ms",
            "full p99 ms",
            "relay /s",
            "relay p50 ms",
            "relay p99 ms",
            "full / relay",
            "full CPU ms/ex",
            "relay CPU ms/ex",
        ):
            t.add_column(col, justify="right")
        for p in result["points"]:
            f, r = p["full"], p["raw_relay"]
            t.add_row(
                str(p["in_flight"]),
                f"{f['throughput']:.0f}",
                f"{f['p50_ms']:.2f}",
                f"{f['p99_ms']:.2f}",
                f"{r['throughput']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{p['ratio']:.2f}" if p["ratio"] is not None else "n/a",
                _cpu_text(f),
                _cpu_text(r),
            )
        console.print(t)
        console.print("CPU ms per exchange, per process:")
        for p in result["points"]:
            f, r = p["full"]["cpu_ms_per_call"], p["raw_relay"]["cpu_ms_per_call"]
            console.print(
                f"  {p['in_flight']:>3} in flight: full "
                + ", ".join(f"{k} {v:.2f}" for k, v in f.items())
                + "; relay "
                + ", ".join(f"{k} {v:.2f}" for k, v in r.items())
            )
    if scaled and not json_output:
        t = Table(title=f"provider as 1 vs {replicas} replicas on PostgreSQL (same run)")
        for col in (
            "round",
            "in flight",
            "1: /s",
            "1: p50 ms",
            f"{replicas}: /s",
            f"{replicas}: p50 ms",
            "gain",
            "1: CPU ms/ex",
            f"{replicas}: CPU ms/ex",
        ):
            t.add_column(col, justify="right")
        for p in result["replicas"]["points"]:
            one, many = p["replicas_1"], p[f"replicas_{replicas}"]
            t.add_row(
                str(p["round"]),
                str(p["in_flight"]),
                f"{one['throughput']:.0f}",
                f"{one['p50_ms']:.2f}",
                f"{many['throughput']:.0f}",
                f"{many['p50_ms']:.2f}",
                f"{p['gain']:.2f}" if p["gain"] is not None else "n/a",
                _cpu_text(one),
                _cpu_text(many),
            )
        console.print(t)
        for p in result["replicas"]["points"]:
            many = p[f"replicas_{replicas}"]["cpu_ms_per_call"]
            console.print(
                f"  round {p['round']}, {p['in_flight']:>3} in flight, {replicas} replicas: "
                + ", ".join(f"{k} {v:.2f}" for k, v in many.items())
            )
    return result


def _cpu_text(point: dict[str, Any]) -> str:
    cpu = point.get("cpu_ms_per_call") or {}
    return f"{sum(cpu.values()):.2f}" if cpu else "n/a"


if __name__ == "__main__":
    run(json_output="--json" in sys.argv)
