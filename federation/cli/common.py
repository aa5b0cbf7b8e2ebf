"""Shared CLI pieces: the ``--dir`` option, output helpers, the admin nudge."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from federation.config import resolve_node_dir

console = Console()
err_console = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Node directory (default: $ACCORD_NODE_DIR, else the current directory).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def node_dir(path: Path | None) -> Path:
    """Resolve the node directory option."""
    return resolve_node_dir(path)


def print_json(obj: Any) -> None:
    """Print JSON to stdout (no Rich markup)."""
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def nudge_running_node(directory: Path) -> str | None:
    """Ask a running node (if any) to reload its directory; returns a note or None.

    Uses the AdminService with the operator certificate. Silent when no node runs.
    """
    from federation.admin_client import reload_running_node

    try:
        counts = asyncio.run(reload_running_node(directory))
    except Exception as exc:  # the node may be stopped; the change is on disk
        return f"note: running node not reloaded ({exc.__class__.__name__}); restart it to apply"
    if counts is None:
        return None
    return f"running node reloaded: {counts}"
