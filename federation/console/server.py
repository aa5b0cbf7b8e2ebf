"""Serving the console: uvicorn, plain HTTP on loopback, TLS with required client certificates elsewhere.

Off loopback the TLS handshake itself demands a client certificate chained to
the node's CA (``ssl.CERT_REQUIRED`` with ``tls/ca.pem`` as the only trust
root): a browser without an operator certificate never gets an HTTP
response. The accepted certificate is handed to the application as the ASGI
TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM), by
:class:`_TlsH11Protocol`, where :mod:`federation.console.auth` maps its SAN URI
to a role.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from federation.console.auth import Role, is_loopback_host

__all__ = ["ConsoleSettings", "serve", "build_server"]


@dataclass(frozen=True)
class ConsoleSettings:
    """How to serve the console.

    Attributes:
        node_dir: the node directory.
        host: bind address (loopback by default).
        port: TCP port (0 = any free port; the chosen one is printed).
        write: grant the write role to loopback requests.
        tls_cert, tls_key: server certificate and key (PEM) for off-loopback serving;
            default the node's ``tls/node.pem``/``node.key`` (SAN localhost, 127.0.0.1
            and the hosts given at ``node init``).
        tls: serve TLS even on loopback (client certificates then required there too).
        approver: operator name registered for approvals (``accord approvals add-operator``)
            whose key signs decisions made in the console, or ``""``.
        approver_key: that operator's Ed25519 private key (PEM).

    Raises:
        ValueError: on construction, ``write`` together with an off-loopback host
            (off loopback the role comes from the certificate only).
    """

    node_dir: Path
    host: str = "127.0.0.1"
    port: int = 8470
    write: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls: bool = False
    approver: str = ""
    approver_key: Path | None = None

    def __post_init__(self) -> None:
        if bool(self.approver) != (self.approver_key is not None):
            raise ValueError("--approver and --approver-key go together")
        if self.write and self.uses_tls:
            raise ValueError(
                "--write grants the write role to plain loopback requests only; over TLS the role comes "
                "from the operator certificate"
            )

    @property
    def uses_tls(self) -> bool:
        """True when the console is served over TLS (always off loopback)."""
        return self.tls or not is_loopback_host(self.host)

    @property
    def loopback_role(self) -> Role:
        """The role of plain-HTTP loopback requests."""
        return "write" if self.write else "read"


class _TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, adding the peer certificate as the ASGI TLS extension."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sslobj = transport.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        if sslobj is None:
            return
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        inner = self.app

        async def with_tls(scope, receive, send):
            if scope["type"] in ("http", "websocket"):
                scope = {
                    **scope,
                    "extensions": {**(scope.get("extensions") or {}), "tls": {"client_cert_chain": chain}},
                }
            await inner(scope, receive, send)

        self.app = with_tls


def build_server(settings: ConsoleSettings) -> Any:
    """A configured ``uvicorn.Server`` for the console (not started).

    Raises:
        federation.errors.ConfigError: the node directory does not load.
    """
    import uvicorn

    from federation.console.app import make_app
    from federation.console.views import ConsoleData
    from federation.identity import NodeIdentity

    ident = NodeIdentity.load(settings.node_dir)
    approver = None
    if settings.approver:
        from federation.approvals import load_operator_key
        from federation.console.actions import Approver

        approver = Approver(settings.approver, load_operator_key(settings.approver_key.read_bytes()))
    app = make_app(ConsoleData(ident), loopback_role=settings.loopback_role, approver=approver)
    kw: dict[str, Any] = {}
    if settings.uses_tls:
        tls = ident.paths.tls
        kw = {
            "ssl_certfile": str(settings.tls_cert or tls / "node.pem"),
            "ssl_keyfile": str(settings.tls_key or tls / "node.key"),
            "ssl_ca_certs": str(tls / "ca.pem"),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=_TlsH11Protocol,
        lifespan="on",
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        limit_concurrency=64,
        h11_max_incomplete_event_size=16 * 1024,
        **kw,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    return uvicorn.Server(config)


def serve(settings: ConsoleSettings, *, on_ready=None) -> None:
    """Run the console until interrupted (blocking).

    Args:
        settings: what to serve.
        on_ready: called with the bound ``(host, port)`` once listening.
    """
    import asyncio

    server = build_server(settings)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started and on_ready is not None:
            sock = server.servers[0].sockets[0]
            on_ready(sock.getsockname()[:2])
        await task

    asyncio.run(main())
