"""Shared CLI pieces: the ``--dir`` option, output helpers, the admin nudge."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from federation.config import resolve_node_dir

# User data (DIDs, names, purposes, reasons) is printed literally: no Rich markup,
# no emoji codes (``did:key:`` would become ``did🔑``), no highlighting.
console = Console(emoji=False, markup=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, emoji=False, markup=False, highlight=False)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Node directory (default: $ACCORD_NODE_DIR, else the current directory).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def node_dir(path: Path | None, *, must_exist: bool = True) -> Path:
    """Resolve the node directory option.

    Args:
        path: the ``--dir`` value (None: ``$ACCORD_NODE_DIR``, else the cwd).
        must_exist: refuse a directory without a valid ``node.toml`` (every command but ``node init``).

    Raises:
        ConfigError: ``must_exist`` and the directory holds no node, or its ``node.toml`` is invalid.

    """
    from federation.config import CONFIG_NAME, load_config
    from federation.errors import ConfigError

    d = resolve_node_dir(path)
    if must_exist:
        if not (d / CONFIG_NAME).is_file():
            raise ConfigError(
                f"{d} is not a node directory ({CONFIG_NAME} not found; "
                "run `accord node init` or pass --dir)",
                metadata={"path": str(d)},
            )
        load_config(d)  # the configuration is validated whole before any command acts
    return d


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
