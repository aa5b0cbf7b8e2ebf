"""``accord mcp serve``: one agent of this node as an MCP server (stdio or Streamable HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from federation.cli.common import DirOption, node_dir

app = typer.Typer(no_args_is_help=True)


@app.command("serve")
def serve(
    agent: Annotated[str, typer.Option("--agent", help="The registered agent the server acts as.")],
    directory: DirOption = None,
    http: Annotated[
        str | None,
        typer.Option("--http", help="Serve Streamable HTTP on HOST:PORT (bearer tokens) instead of stdio."),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate for HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM key for HTTPS.")] = None,
    insecure_remote: Annotated[
        bool,
        typer.Option(
            "--insecure-remote",
            help="Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).",
        ),
    ] = False,
) -> None:
    """Serve the Model Context Protocol as agent AGENT (docs/agents.md).

    Over stdio (the default) the MCP client starts this command; with --http the
    endpoint is http://HOST:PORT/mcp and every request needs a token from
    `accord agent token AGENT`.
    """
    from federation.observability import configure_logging

    configure_logging()  # logs to stderr: over stdio, stdout carries only MCP messages
    d = node_dir(directory)
    if http is None:
        from federation.mcp.server import run_loop, serve_stdio

        run_loop(serve_stdio(d, agent))
        return
    from federation.mcp.http import serve_http

    serve_http(d, agent, http, tls_cert=tls_cert, tls_key=tls_key, insecure_remote=insecure_remote)
