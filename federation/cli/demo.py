"""``accord demo``: the three-organization flood-response federation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir", help="Keep the node directories here (hospital, relief, supplier, interop)."
        ),
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option("--keep-running", help="Leave the nodes running after the scenario (Ctrl-C stops)."),
    ] = False,
    agents: Annotated[
        bool,
        typer.Option(
            "--agents",
            help="Also do the triage exchange through an MCP client (accord mcp serve, stdio) and an "
            "A2A client (accord a2a serve) next to the SDK, side by side.",
        ),
    ] = False,
) -> None:
    """Start three real nodes on localhost and run a cross-domain disaster-response scenario."""
    from federation.demo.run import run_demo

    code = run_demo(workdir, keep_running=keep_running, agents=agents)
    raise typer.Exit(code)
