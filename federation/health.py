"""Liveness and readiness of a running node: the gRPC health service and ``/healthz`` + ``/readyz``.

* **Liveness** (``/healthz``): the event loop answers. Nothing else is
  checked: a live node that is not ready must not be restarted for it.
* **Readiness** (``/readyz`` and ``grpc.health.v1.Health``): every check of
  :func:`readiness` passes:

  - ``database``: ``SELECT 1`` on the node database answers within
    :data:`CHECK_TIMEOUT_SECONDS`;
  - ``ledger_writer``: the ledger writer's task runs and its thread answers
    within :data:`CHECK_TIMEOUT_SECONDS` (a stuck write blocks every receipt);
  - ``witness_quorum``: enough of the configured witnesses are pinned and
    were not failing at their last attempt to meet ``witness_quorum``
    (:func:`federation.witnessing.quorum_problem`). A node configured with no
    witness passes (its checkpoints are simply never WITNESSED).

The gRPC health service (grpc.io "GRPC Health Checking Protocol", package
``grpc.health.v1`` from ``grpcio-health-checking``) runs on the node's port,
over the same mutual TLS as everything else (a probe presents the operator
certificate). The overall service ``""`` and ``accord.federation.v1.FederationService``
are ``SERVING`` when ready, ``NOT_SERVING`` otherwise; :class:`HealthMonitor`
re-evaluates every :data:`MONITOR_INTERVAL_SECONDS`, and on shutdown every
service turns ``NOT_SERVING`` first (``enter_graceful_shutdown``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("accord.health")

CHECK_TIMEOUT_SECONDS = 2.0
"""Longest one readiness check may take, seconds (longer = failed)."""
MONITOR_INTERVAL_SECONDS = 2.0
"""How often :class:`HealthMonitor` re-evaluates readiness, seconds."""
FEDERATION_SERVICE = "accord.federation.v1.FederationService"
"""The fully-qualified gRPC service whose health is reported (besides the overall ``""``)."""


@dataclass(frozen=True)
class Check:
    """The result of one readiness check.

    Attributes:
        name: ``"database"``, ``"ledger_writer"`` or ``"witness_quorum"``.
        ok: whether it passed.
        detail: one line: what was seen (the error when it failed).

    """

    name: str
    ok: bool
    detail: str


async def _timed(coro: Any) -> Any:
    return await asyncio.wait_for(coro, CHECK_TIMEOUT_SECONDS)


async def check_database(node: Any) -> Check:
    """``SELECT 1`` on the node database, off the event loop."""
    try:
        await _timed(asyncio.to_thread(node.store.ping))
    except TimeoutError:
        return Check("database", False, f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # noqa: BLE001 - any database failure is "not ready"
        first = (str(exc).splitlines() or [""])[0][:200]
        return Check("database", False, f"{exc.__class__.__name__}: {first}")
    return Check("database", True, "reachable")


async def check_ledger_writer(node: Any) -> Check:
    """The ledger writer's task is alive and its thread answers."""
    writer = node.writer
    task = getattr(writer, "_task", None)
    if task is None or task.done():
        return Check("ledger_writer", False, "the ledger writer is not running")
    try:
        size = await _timed(writer.run_sync(node.ledger.size))
    except TimeoutError:
        return Check("ledger_writer", False, f"ledger thread busy for more than {CHECK_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # noqa: BLE001
        return Check("ledger_writer", False, f"{exc.__class__.__name__}: {str(exc)[:200]}")
    return Check("ledger_writer", True, f"{size} entries")


def check_witness_quorum(node: Any) -> Check:
    """Enough configured witnesses are usable and not failing to meet the quorum."""
    from federation.witnessing import quorum_problem

    if not node.config.witnesses:
        return Check("witness_quorum", True, "no witnesses configured")
    coordinator = getattr(node, "coordinator", None)
    per = getattr(coordinator, "witness_status", {}) or {}
    failing = {name for name, st in per.items() if st.get("failing")}
    problem = quorum_problem(node, failing)
    if problem:
        return Check("witness_quorum", False, problem)
    return Check(
        "witness_quorum", True, f"quorum {node.config.witness_quorum} of {', '.join(node.config.witnesses)}"
    )


async def readiness(node: Any) -> list[Check]:
    """Run every readiness check (module docstring); the database and writer checks run concurrently."""
    db, writer = await asyncio.gather(check_database(node), check_ledger_writer(node))
    return [db, writer, check_witness_quorum(node)]


def report(checks: list[Check]) -> dict[str, Any]:
    """A readiness result as JSON data: ``{"ready": bool, "checks": {name: {"ok", "detail"}}}``."""
    return {
        "ready": all(c.ok for c in checks),
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }


class HealthMonitor:
    """Keeps the gRPC health service's statuses in step with :func:`readiness`.

    Args:
        node: the running node.
        servicer: a ``grpc_health.v1.health.aio.HealthServicer`` registered on the server.

    """

    def __init__(self, node: Any, servicer: Any) -> None:
        self.node = node
        self.servicer = servicer
        self.last: list[Check] = []
        self._ready: bool | None = None

    async def update(self) -> bool:
        """Evaluate readiness once, set the statuses, log a change; returns whether ready."""
        from grpc_health.v1 import health_pb2

        self.last = await readiness(self.node)
        ready = all(c.ok for c in self.last)
        answer = health_pb2.HealthCheckResponse
        status = answer.SERVING if ready else answer.NOT_SERVING
        for service in ("", FEDERATION_SERVICE):
            await self.servicer.set(service, status)
        if ready != self._ready:
            failed = {c.name: c.detail for c in self.last if not c.ok}
            if ready:
                log.info("node ready")
            else:
                log.warning("node not ready", **failed)
            self._ready = ready
        return ready

    async def run_forever(self, every_seconds: float = MONITOR_INTERVAL_SECONDS) -> None:
        """Call :meth:`update` every ``every_seconds`` seconds until cancelled."""
        while True:
            try:
                await self.update()
            except Exception as exc:  # noqa: BLE001 - keep monitoring
                log.warning("health check error", error=str(exc)[:200])
            await asyncio.sleep(every_seconds)


def add_routes(app: Any, node: Any, *, details: bool = True) -> None:
    """Add ``GET /healthz`` (200 while the loop answers) and ``GET /readyz`` (200 ready, 503 not) to ``app``.

    Both answer JSON. With ``details`` (the loopback metrics port) ``/readyz``
    holds each check's ``ok`` and ``detail``; without (``http_listen``, which
    may be public) only ``{"ready": bool}``: database errors and witness
    names stay private.
    """
    from aiohttp import web

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        body = report(await readiness(node))
        status = 200 if body["ready"] else 503
        return web.json_response(body if details else {"ready": body["ready"]}, status=status)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


async def start_ops_http(node: object, port: int, *, host: str = "127.0.0.1") -> tuple[object, int]:
    """Serve ``/metrics`` (Prometheus text format), ``/healthz`` and ``/readyz`` on ``host:port``.

    Replaces ``prometheus_client.start_http_server`` so that one loopback port
    carries what a supervisor or a Prometheus scrape needs
    (:mod:`federation.health` for the two probes).

    Returns:
        ``(runner, bound port)``; ``await runner.cleanup()`` stops it.

    """
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    add_routes(app, node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    return runner, sock.getsockname()[1]
