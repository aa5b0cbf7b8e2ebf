"""``accord mcp serve --http HOST:PORT``: the MCP server over Streamable HTTP with agent bearer tokens.

The endpoint is ``http(s)://HOST:PORT/mcp`` (MCP Streamable HTTP transport).
Every request carries ``Authorization: Bearer <token>`` (RFC 6750), a token
minted by ``accord agent token NAME`` for *this* agent
(:mod:`federation.agent_tokens`); a missing, malformed, unknown, expired or
revoked token, or another agent's, is answered 401 by the SDK's bearer
middleware, with Accord's reason code added by :class:`UnauthorizedReason`:
``TOKEN_MISSING``, ``TOKEN_INVALID``, ``TOKEN_EXPIRED`` or ``TOKEN_REVOKED``
in the ``WWW-Authenticate: Bearer`` challenge's ``error_description`` (RFC 6750
§3) and as ``reason`` in the JSON body. The server publishes OAuth Protected
Resource Metadata (RFC 9728) naming itself as the authorization server, as the
MCP authorization specification expects of a resource server (a 401 carries a
``WWW-Authenticate`` challenge with ``resource_metadata``).

Binding policy: a loopback host (``127.0.0.0/8``, ``::1``, ``localhost``) is
the default and gets the SDK's DNS-rebinding protection (Host/Origin checks).
Any other host is refused (``INSECURE_BIND``) unless TLS is configured
(``--tls-cert``/``--tls-key``), or the operator says ``--insecure-remote``
(for a TLS-terminating proxy in front): bearer tokens must not cross a
network in clear.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import structlog

from federation.agent_tokens import TokenBook
from federation.errors import ConfigError, FederationError, InvalidRequestError

log = structlog.get_logger("accord.mcp")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port).

    Raises:
        InvalidRequestError: ``MALFORMED_REQUEST``.

    """
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or len(listen) > 300:
        raise InvalidRequestError(f"--http wants HOST:PORT, got {listen[:80]!r}", reason="MALFORMED_REQUEST")
    return host.strip("[]"), int(port)


def check_bind(host: str, *, tls: bool, insecure_remote: bool) -> None:
    """Apply the binding policy of the module docstring.

    Raises:
        ConfigError: ``INSECURE_BIND``: a non-loopback host without TLS or ``--insecure-remote``.

    """
    if is_loopback(host) or tls or insecure_remote:
        return
    raise ConfigError(
        f"refusing to serve bearer tokens in clear on {host}: give --tls-cert/--tls-key, "
        "or --insecure-remote behind a TLS-terminating proxy",
        reason="INSECURE_BIND",
    )


class AgentTokenVerifier:
    """``mcp.server.auth.provider.TokenVerifier`` over :class:`federation.agent_tokens.TokenBook`."""

    def __init__(self, node_dir: Path, agent: str, resource: str) -> None:
        self.book = TokenBook(node_dir, agent=agent)
        self.agent = agent
        self.resource = resource

    async def verify_token(self, token: str) -> Any:  # noqa: D102
        from mcp.server.auth.provider import AccessToken

        try:
            rec = self.book.verify(token)
        except FederationError as exc:
            log.info("bearer token refused", reason=exc.reason, agent=self.agent)
            return None
        return AccessToken(
            token=token,
            client_id=f"agent-token:{rec.id}",
            scopes=["accord:agent"],
            subject=rec.agent,
            resource=self.resource,
        )


MISSING_TOKEN_REASON = "TOKEN_MISSING"
"""The reason of a request without an ``Authorization: Bearer`` header."""

_ERROR_DESCRIPTION = re.compile(r'error_description="[^"]*"')
_DESCRIPTION_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # RFC 6750 §3: NQSCHAR only


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of an ASGI request's headers, ``None`` when there is no Bearer ``Authorization``."""
    for name, value in headers:
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:]
            return None
    return None


class UnauthorizedReason:
    """ASGI middleware: Accord's reason code in the SDK bearer middleware's 401 answers.

    The MCP SDK answers every refused token with the same 401 (``error="invalid_token"``,
    ``error_description="Authentication required"``). This middleware passes every
    other response through untouched; for a 401 it works out why the token was
    refused (:meth:`federation.agent_tokens.TokenBook.verify`, only on this path)
    and answers the same 401 with

    - the challenge's ``error_description`` replaced by ``"<REASON>: <message>"``
      (RFC 6750 §3; ``error`` and ``resource_metadata`` kept), and
    - the JSON body ``{"error", "error_description", "reason"}``.

    Reasons: ``TOKEN_MISSING`` (no Bearer header), ``TOKEN_INVALID`` (malformed,
    unknown, wrong secret, another agent's, too long), ``TOKEN_EXPIRED``,
    ``TOKEN_REVOKED``. The last two are said only to a caller who holds the
    token's whole secret (the secret is checked first), so the reason tells a
    guesser nothing a plain 401 would not.
    """

    def __init__(self, app: Any, book: TokenBook) -> None:
        self.app = app
        self.book = book

    def reason(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        """``(reason, message)`` for a request the bearer middleware refused."""
        token = bearer_token(headers)
        if token is None:
            return MISSING_TOKEN_REASON, "send Authorization: Bearer <token from accord agent token>"
        try:
            self.book.verify(token.strip())
        except FederationError as exc:
            return exc.reason, str(exc)
        return "TOKEN_INVALID", "the token is not accepted for this resource"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] | None = None
        answered = False

        async def send_reasoned(message: dict[str, Any]) -> None:
            nonlocal held, answered
            if answered:  # the rest of a refused answer's body: ours was sent whole
                return
            if message["type"] == "http.response.start" and message["status"] == 401:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            reason, text = self.reason(scope["headers"])
            description = _DESCRIPTION_UNSAFE.sub("?", f"{reason}: {text}")[:300]
            headers = []
            for name, value in held["headers"]:
                if name.lower() == b"content-length":
                    continue
                if name.lower() == b"www-authenticate":
                    value = _ERROR_DESCRIPTION.sub(
                        f'error_description="{description}"', value.decode("latin-1")
                    ).encode("latin-1")
                headers.append((name, value))
            try:
                error = json.loads(message.get("body") or b"{}").get("error", "invalid_token")
            except (ValueError, AttributeError):
                error = "invalid_token"
            body = json.dumps({"error": error, "error_description": description, "reason": reason}).encode()
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            answered = True

        await self.app(scope, receive, send_reasoned)


def build_app(node_dir: Path, agent: str, *, host: str, port: int, scheme: str = "http") -> tuple[Any, Any]:
    """The Starlette app serving ``/mcp`` for ``agent`` and its adapter (close it after serving)."""
    from mcp.server.auth.settings import AuthSettings

    from federation.mcp.server import AgentAdapter, build_server

    adapter = AgentAdapter(node_dir, agent)
    server = build_server(adapter)
    shown = f"[{host}]" if ":" in host else host
    base = f"{scheme}://{shown}:{port}"
    resource = f"{base}/mcp"
    verifier = AgentTokenVerifier(node_dir, agent, resource)
    app = server.streamable_http_app(
        host=host,
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=resource,
            required_scopes=["accord:agent"],
            validate_token_resource=True,
        ),
        token_verifier=verifier,
    )
    return UnauthorizedReason(app, verifier.book), adapter


def serve_http(
    node_dir: Path,
    agent: str,
    listen: str,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    insecure_remote: bool = False,
    ready: Any = None,
) -> None:
    """Serve until interrupted (uvicorn); prints ``READY mcp <url>`` to stdout when listening.

    Raises:
        ConfigError: ``INSECURE_BIND`` (see :func:`check_bind`); ``CONFIG_INVALID``
            when only one of ``tls_cert``/``tls_key`` is given.

    """
    import asyncio

    import uvicorn

    from federation.mcp.server import run_loop

    host, port = parse_listen(listen)
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("give both --tls-cert and --tls-key", reason="CONFIG_INVALID")
    tls = tls_cert is not None
    check_bind(host, tls=tls, insecure_remote=insecure_remote)
    app, adapter = build_app(node_dir, agent, host=host, port=port, scheme="https" if tls else "http")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        limit_concurrency=64,
        timeout_keep_alive=15,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        async def announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.02)
            shown = f"[{host}]" if ":" in host else host
            print(f"READY mcp {'https' if tls else 'http'}://{shown}:{port}/mcp", flush=True)

        try:
            await asyncio.gather(server.serve(), announce())
        finally:
            await adapter.close()

    run_loop(main())
