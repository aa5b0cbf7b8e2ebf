"""``accord node``: init, start, status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("init")
def init(
    org: Annotated[str, typer.Option("--org", help="Organization name, [a-z0-9-]+.")],
    directory: DirOption = None,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve gRPC on.")] = "127.0.0.1:7400",
    advertise: Annotated[
        str, typer.Option("--advertise", help="HOST:PORT peers dial (default: listen).")
    ] = "",
    database_url: Annotated[
        str, typer.Option("--database-url", help="SQLAlchemy URL.")
    ] = "sqlite:///node.db",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing node.")] = False,
) -> None:
    """Create keys, DID, CA, TLS certificates and node.toml."""
    from federation.identity import init_node

    d = node_dir(directory)
    cfg = init_node(
        d, org_name=org, listen=listen, advertise=advertise, database_url=database_url, force=force
    )
    console.print(f"initialized [bold]{cfg.org_name}[/] ({cfg.org_did}) in {d}, listening on {cfg.listen}")


@app.command("start")
def start(
    directory: DirOption = None,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    """Serve the node (gRPC over mTLS) until SIGINT/SIGTERM."""
    from federation.observability import configure_logging
    from federation.server import run

    configure_logging(json_logs=json_logs)
    asyncio.run(run(node_dir(directory)))


@app.command("status")
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Identity, peers, agents, contracts and ledger size (offline, read-only)."""
    from federation.agents import open_store
    from federation.identity import NodeIdentity, export_bundle
    from federation.peers import PeerRegistry

    ident = NodeIdentity.load(node_dir(directory))
    store = open_store(ident)
    peers = PeerRegistry.load(ident.paths.peers)
    contracts = sorted(p.stem for p in ident.paths.contracts.glob("*.json"))
    from federation.ledger_view import open_ledger_readonly

    lg = open_ledger_readonly(ident)
    info = {
        "org": ident.config.org_name,
        "did": ident.org_did,
        "listen": ident.config.listen,
        "peers": [b.org_did for b in peers],
        "agents": len(store.agents()),
        "contracts": contracts,
        "ledger_size": lg.size(),
        "bundle_fingerprint": export_bundle(ident).fingerprint(),
    }
    if as_json:
        print_json(info)
        return
    t = Table(title=f"node {info['org']}", show_header=False)
    for k, v in info.items():
        t.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    console.print(t)


@app.command("backup")
def backup(
    out: Annotated[
        Path, typer.Option("--out", help="The archive to write (mode 0600: it holds the private keys).")
    ],
    directory: DirOption = None,
) -> None:
    """Consistent online backup of a SQLite node: directory and database snapshot, one 0600 archive."""
    from federation.backup import backup_node

    info = backup_node(node_dir(directory), out)
    console.print(
        f"backed up {info.org_name} ({info.org_did}) to {info.path}: {info.files} files, {info.bytes} bytes, "
        f"ledger size {info.ledger_size}; mode 0600, it holds the node's private keys",
        soft_wrap=True,
    )


@app.command("restore")
def restore(
    archive: Annotated[
        Path, typer.Option("--from", help="An archive written by `node backup`.", exists=True, dir_okay=False)
    ],
    directory: Annotated[
        Path, typer.Option("--dir", help="The new node directory (must not exist, or be empty).")
    ],
) -> None:
    """Restore a backup into a new directory (checked against its manifest); never writes over a node."""
    from federation.backup import restore_node

    info = restore_node(archive, directory)
    console.print(
        f"restored {info.org_name} ({info.org_did}) from {info.created_at} into {directory}: ledger size "
        f"{info.ledger_size}. It is the same organization and log: start it in place of the source, never "
        "beside it; if its ledger is older than what the witnesses cosigned, see docs/operator-guide.md",
        soft_wrap=True,
    )
