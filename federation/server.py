"""The node's gRPC server: grpc.aio over TLS with required client certificates.

Trust roots for client certificates = this organization's CA (its agents
and operator) + the CA of every pinned peer; they are swapped without a
restart when the registry changes (``grpc.dynamic_ssl_server_credentials``
asks for the configuration before each new handshake). TLS 1.3 is what
gRPC's BoringSSL negotiates between Accord nodes (docs/threat-model.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from pathlib import Path

import grpc
import structlog

from federation.identity import NodeIdentity
from federation.node import Node
from federation.pb import federation_pb2_grpc as pbg
from federation.peer_client import PeerClient
from federation.services import AdminServicer, AgentServicer, FederationServicer

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


def open_node(node_dir: Path, *, node_cls: type[Node] = Node) -> Node:
    """Open the node in ``node_dir`` with a :class:`PeerClient` presenting its node certificate.

    Raises:
        ConfigError: the directory is not a valid node directory.

    """
    identity = NodeIdentity.load(node_dir)
    peer_client = PeerClient(cert_pem=identity.tls_pem("node.pem"), key_pem=identity.tls_pem("node.key"))
    return node_cls(identity, peer_client=peer_client)


async def start_server(node: Node) -> tuple[grpc.aio.Server, int]:
    """Start serving ``node`` (opened with a peer client, see :func:`open_node`); returns (server, port).

    Raises:
        ValueError: ``node`` has no peer client.
        OSError: the listen address cannot be bound.

    """
    if node.peer_client is None:
        raise ValueError("a serving node needs a peer client: open it with federation.server.open_node")
    trust = DynamicTrust(node)
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
    port = server.add_secure_port(node.config.listen, creds)
    if port == 0:
        raise OSError(f"cannot bind {node.config.listen}")
    node.writer.start()
    await server.start()
    return server, port


async def _persist_loop(node: Node, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            node.drain_decision_log()
            await asyncio.to_thread(node.persist_state, drain_log=False)  # database work off the loop
        except Exception as exc:  # keep serving; retried next turn
            log.warning("persisting state failed", error=str(exc))


async def run(node_dir: Path, *, node_cls: type[Node] = Node) -> None:
    """Open the node in ``node_dir``, serve until SIGINT/SIGTERM, then stop cleanly.

    Writes ``node.pid`` (``{"pid", "port"}``) once serving and prints one
    ``READY <org> <host:port>`` line on stdout (for supervisors and tests).
    ``node_cls`` is the :class:`Node` class to open (test code passes a
    subclass with substituted parts, see ``interop_tests.misbehaving``).
    """
    node = open_node(node_dir, node_cls=node_cls)
    if not await node.verifier.wait_ready():  # presentations are never verified on the event loop
        log.warning("verifier workers did not start in time; they are started again at first use")
    server, port = await start_server(node)
    host = node.config.listen.rpartition(":")[0]
    pidfile = node.paths.pidfile
    pidfile.write_text(json.dumps({"pid": os.getpid(), "port": port, "host": host}))
    if node.config.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(node.config.metrics_port, addr="127.0.0.1")
    http_runner = None
    if node.config.http_listen:
        from federation.http_tiles import start_http

        http_runner, http_port = await start_http(node, node.config.http_listen)
        info = json.loads(pidfile.read_text())
        info["http_port"] = http_port
        pidfile.write_text(json.dumps(info))
        log.info("tlog-tiles over HTTP", port=http_port)
    print(f"READY {node.config.org_name} {host}:{port}", flush=True)
    log.info("node serving", org=node.config.org_name, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    persister = asyncio.create_task(_persist_loop(node))
    from federation.witnessing import WitnessCoordinator

    coordinator = WitnessCoordinator(node)
    witnessing = asyncio.create_task(coordinator.run_forever(node.config.witness_interval_seconds))
    await stop.wait()
    persister.cancel()
    witnessing.cancel()
    if http_runner is not None:
        await http_runner.cleanup()
    await server.stop(grace=2.0)
    await node.peer_client.close()
    await node.close()
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    log.info("node stopped", org=node.config.org_name)
