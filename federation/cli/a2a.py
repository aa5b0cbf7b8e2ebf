"""``accord a2a``: the A2A gateway (serve) and partners' agent cards (tokens: ``accord agent token``)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("serve")
def serve(
    directory: DirOption = None,
    listen: Annotated[
        str, typer.Option("--listen", help="Loopback HOST:PORT the gateway binds.")
    ] = "127.0.0.1:8765",
) -> None:
    """Serve A2A (JSON-RPC over HTTP) to this organization's agents, on loopback, until SIGINT/SIGTERM.

    Prints ``READY a2a HOST:PORT`` once it listens (the node's ready-line form,
    so :class:`federation.supervisor.NodeProcess` can run it too).
    """
    import os

    from federation.observability import tracing_configured

    if not tracing_configured():
        # a2a-sdk wraps its client and server calls in OpenTelemetry spans (read at import);
        # with no tracer provider set up nothing records them: per-request cost only.
        # OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=true in the environment keeps them.
        os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
    from federation.a2a.gateway import serve as run
    from federation.errors import ConfigError

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen must be HOST:PORT, got {listen!r}", reason="CONFIG_INVALID")

    def ready(url: str) -> None:
        sys.stdout.write(f"READY a2a {url.removeprefix('http://')}\n")
        sys.stdout.flush()

    try:
        import uvloop  # libuv event loop: the gateway adds least latency on it (accord bench adapters)

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(run(node_dir(directory), host=host, port=int(port), on_ready=ready))
    except KeyboardInterrupt:
        pass


@app.command("cards")
def cards(
    partner: Annotated[str, typer.Option("--partner", help="A pinned partner (name or DID).")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch and verify PARTNER's agent cards (over the federation); list agents and usable skills."""
    from federation.a2a.gateway import Gateway

    async def fetch():
        gw = Gateway(node_dir(directory), base_url="http://127.0.0.1:0")
        try:
            return await gw.partner_agents(partner)
        finally:
            await gw.close()

    agents = asyncio.run(fetch())
    rows = [
        {
            "agent": name,
            "org": pa.org_did,
            "skills": {s: [t.contract_id for t in ts] for s, ts in pa.skills.items()},
        }
        for name, pa in sorted(agents.items())
    ]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['agent']}  {r['org']}  skills: {', '.join(sorted(r['skills'])) or '-'}")
