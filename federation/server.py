"""The node's gRPC server: grpc.aio over TLS with required client certificates.

Trust roots for client certificates = this organization's CA (its agents
and operator) + the CA of every pinned peer; they are swapped without a
restart when the registry changes (``grpc.dynamic_ssl_server_credentials``
asks for the configuration before each new handshake). TLS 1.3 is what
gRPC's BoringSSL negotiates between Accord nodes (docs/threat-model.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import grpc
import structlog

from federation.identity import NodeIdentity
from federation.node import Node
from federation.pb import federation_pb2_grpc as pbg
from federation.peer_client import PeerClient
from federation.services import AdminServicer, AgentServicer, FederationServicer
from federation.wire import WirePayloads

log = structlog.get_logger("accord.server")

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 1 << 20),
    ("grpc.max_send_message_length", 4 << 20),
    ("grpc.so_reuseport", 0),
]


class DynamicTrust:
    """Server certificate configuration that follows the peer registry."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._lock = threading.Lock()
        self._dirty = False
        self.initial = self._config()

    def _config(self) -> grpc.ServerCertificateConfiguration:
        ident = self._node.identity
        roots = ident.tls_pem("ca.pem") + self._node.peers.ca_bundle_pem()
        return grpc.ssl_server_certificate_configuration(
            [(ident.tls_pem("node.key"), ident.tls_pem("node.pem"))],
            root_certificates=roots,
        )

    def mark_dirty(self) -> None:
        """The registry changed: the next handshake uses new roots."""
        with self._lock:
            self._dirty = True

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake (C-core thread)."""
        with self._lock:
            if not self._dirty:
                return None
            self._dirty = False
        return self._config()


def open_node(node_dir: Path, *, node_cls: type[Node] = Node, replica: Any = None) -> Node:
    """Open the node in ``node_dir`` with a :class:`PeerClient` presenting its node certificate.

    The node opens signed payloads with :class:`federation.wire.WirePayloads`.

    ``replica``: a :class:`federation.replicas.ReplicaRole` (default: the single process).

    Raises:
        ConfigError: the directory is not a valid node directory.

    """
    identity = NodeIdentity.load(node_dir)
    peer_client = PeerClient(
        cert_pem=identity.tls_pem("node.pem"),
        key_pem=identity.tls_pem("node.key"),
        extra_endpoints=identity.config.peer_endpoints,
    )
    if replica is None:
        return node_cls(identity, peer_client=peer_client, payloads=WirePayloads())
    return node_cls(identity, peer_client=peer_client, payloads=WirePayloads(), replica=replica)


async def start_server(node: Node, *, health_servicer: Any = None) -> tuple[grpc.aio.Server, int]:
    """Start serving ``node`` (opened with a peer client, see :func:`open_node`); returns (server, port).

    ``health_servicer``: the ``grpc.health.v1`` servicer to serve (a fresh one if not given).

    Raises:
        ValueError: ``node`` has no peer client.
        AddressInUseError: the listen address cannot be bound.

    """
    if node.peer_client is None:
        raise ValueError("a serving node needs a peer client: open it with federation.server.open_node")
    trust = DynamicTrust(node)
    node.tls_trust = trust  # SIGHUP swaps the served certificate too (see _serve)
    creds = grpc.dynamic_ssl_server_credentials(
        trust.initial, trust.fetch, require_client_authentication=True
    )
    server = grpc.aio.server(options=SERVER_OPTIONS)
    fed = FederationServicer(node)
    pbg.add_FederationServiceServicer_to_server(fed, server)
    pbg.add_AgentServiceServicer_to_server(AgentServicer(node), server)
    pbg.add_AdminServiceServicer_to_server(
        AdminServicer(node, fed.node_info, on_reload=trust.mark_dirty), server
    )
    # the standard health service (grpc.health.v1), statuses set by federation.health.HealthMonitor
    from grpc_health.v1 import health, health_pb2_grpc

    if health_servicer is None:
        health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_secure_port(node.config.listen, creds)
    except RuntimeError:  # gRPC raises a bare RuntimeError when it cannot bind
        port = 0
    if port == 0:
        from federation.lifecycle import AddressInUseError

        raise AddressInUseError(f"listen = {node.config.listen!r} in node.toml: cannot bind (in use?)")
    node.writer.start()
    await server.start()
    return server, port


def _reload_on_hangup(node: Node) -> None:
    """SIGHUP: reload the node directory (peers, contracts, keys, TLS certificates), as ``Reload`` does."""
    try:
        counts = node.reload()
        node.tls_trust.mark_dirty()  # type: ignore[attr-defined]
        log.info("reloaded on SIGHUP", **counts)
    except Exception as exc:  # keep serving with what is loaded
        log.error("reload on SIGHUP failed", error=str(exc)[:300])


async def _persist_loop(node: Node, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            node.drain_decision_log()
            await asyncio.to_thread(node.persist_state, drain_log=False)  # database work off the loop
        except Exception as exc:  # keep serving; retried next turn
            log.warning("persisting state failed", error=str(exc))


async def run(
    node_dir: Path, *, node_cls: type[Node] = Node, json_ready: bool = False, replica: Any = None
) -> None:
    """Open the node in ``node_dir``, serve until SIGINT/SIGTERM, then stop cleanly.

    Takes the instance lock ``node.pid`` first (:class:`federation.lifecycle.PidFile`:
    a second node on the directory is refused in one line), checks that the
    configured addresses are free (one line naming the ``node.toml`` key
    otherwise), writes ``{"pid", "host", "port"[, "http_port", "metrics_port"]}``
    into it once serving and prints one ``READY <org> <host:port>`` line on
    stdout (a JSON object ``{"event": "READY", "org", "endpoint"}`` with
    ``json_ready``, so that ``--json-logs`` output is JSON throughout).
    ``node_cls`` is the :class:`Node` class to open (test code passes a
    subclass with substituted parts, see ``interop_tests.misbehaving``).
    ``replica`` (a :class:`federation.replicas.ReplicaRole`) runs this process
    as one of several replicas of the node: its own lock file
    (``node-replica-<i>.pid`` beyond replica 0) and ports (configured + index).
    """
    from federation.config import load_config
    from federation.lifecycle import PidFile, check_bindable
    from federation.paths import NodePaths
    from federation.replicas import ReplicaRole

    role = replica or ReplicaRole()
    pidfile = PidFile.acquire(NodePaths(node_dir).root / role.pidfile_name())
    try:
        config = load_config(node_dir)
        if role.index:
            config = config.model_copy(
                update={
                    "listen": role.shift(config.listen),
                    "http_listen": role.shift(config.http_listen),
                    "metrics_port": config.metrics_port + role.index if config.metrics_port else 0,
                }
            )
        _require_current_schema(node_dir, config)
        check_bindable(config.listen, setting="listen")
        if config.http_listen:
            check_bindable(config.http_listen, setting="http_listen")
        if config.metrics_port:
            check_bindable(f"127.0.0.1:{config.metrics_port}", setting="metrics_port")
        await _serve(node_dir, node_cls=node_cls, pidfile=pidfile, json_ready=json_ready, replica=replica)
    finally:
        pidfile.release()


def _require_current_schema(node_dir: Path, config) -> None:
    """Refuse a database from a newer version; with ``auto_migrate = false`` also one that is behind."""
    from federation.config import database_url_for
    from federation.schema_upgrade import require_current
    from federation.store import make_engine

    engine = make_engine(database_url_for(node_dir, config))
    try:
        require_current(engine, allow_behind=config.auto_migrate)
    finally:
        engine.dispose()


async def _serve(
    node_dir: Path, *, node_cls: type[Node], pidfile, json_ready: bool, replica: Any = None
) -> None:
    from grpc_health.v1 import health

    from federation import upkeep
    from federation.health import HealthMonitor
    from federation.observability import LEDGER_SIZE

    node = open_node(node_dir, node_cls=node_cls, replica=replica)
    health_servicer = health.aio.HealthServicer()
    LEDGER_SIZE.set(await asyncio.to_thread(node.ledger.size))  # not 0 until the next exchange
    if not await node.verifier.wait_ready():  # presentations are never verified on the event loop
        log.warning("verifier workers did not start in time; they are started again at first use")
    try:
        server, port = await start_server(node, health_servicer=health_servicer)
    except BaseException:
        await node.close()
        raise
    host = node.config.listen.rpartition(":")[0]
    pidfile.update(port=port, host=host)
    coordinator = node.coordinator
    runners = []
    if node.config.metrics_port:
        from federation.health import start_ops_http

        runner, mport = await start_ops_http(node, node.config.metrics_port)
        runners.append(runner)
        pidfile.update(metrics_port=mport)
    if node.config.http_listen:
        from federation.http_tiles import start_http

        http_runner, http_port = await start_http(node, node.config.http_listen)
        runners.append(http_runner)
        pidfile.update(http_port=http_port)
        log.info("tlog-tiles over HTTP", port=http_port)
    monitor = HealthMonitor(node, health_servicer)
    await monitor.update()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # before READY: a supervisor may reload (SIGHUP) as soon as it reads it, and SIGHUP's
    # default action would end the process
    loop.add_signal_handler(signal.SIGHUP, _reload_on_hangup, node)
    if json_ready:
        print(
            json.dumps({"event": "READY", "org": node.config.org_name, "endpoint": f"{host}:{port}"}),
            flush=True,
        )
    else:
        print(f"READY {node.config.org_name} {host}:{port}", flush=True)
    log.info("node serving", org=node.config.org_name, port=port, pid=os.getpid())
    if node.lease is not None:  # replicas: the periodic once-per-node duties follow the integrator lease
        await asyncio.to_thread(node.lease.renew)
    from federation.renewal import renewal_loop
    from federation.rotation import announce_loop

    tasks = [
        *([asyncio.create_task(node.lease.run_forever())] if node.lease is not None else []),
        asyncio.create_task(_persist_loop(node)),
        asyncio.create_task(coordinator.run_forever(node.config.witness_interval_seconds, lease=node.lease)),
        asyncio.create_task(announce_loop(node, max(node.config.witness_interval_seconds, 10.0))),
        asyncio.create_task(renewal_loop(node)),
        asyncio.create_task(monitor.run_forever()),
        asyncio.create_task(upkeep.run_forever(node)),  # approvals, retention (issue #15)
    ]
    await stop.wait()
    log.info("node stopping", org=node.config.org_name)
    await health_servicer.enter_graceful_shutdown()
    for t in tasks:
        t.cancel()
    for r in runners:
        await r.cleanup()
    await server.stop(grace=2.0)
    await node.peer_client.close()
    await node.close()
    log.info("node stopped", org=node.config.org_name)
