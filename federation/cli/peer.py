"""``accord peer``: export-bundle, add, list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import (
    DirOption,
    JsonOption,
    console,
    node_dir,
    nudge_running_node,
    print_json,
)

app = typer.Typer(no_args_is_help=True)


@app.command("export-bundle")
def export_bundle_cmd(
    directory: DirOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Override HOST:PORT.")] = None,
) -> None:
    """Print this node's signed peer bundle (JSON)."""
    from federation.identity import NodeIdentity, export_bundle

    bundle = export_bundle(NodeIdentity.load(node_dir(directory)), endpoint=endpoint)
    text = bundle.model_dump_json(indent=2)
    if out:
        out.write_text(text)
        console.print(f"wrote bundle of {bundle.org_did} (fingerprint {bundle.fingerprint()}) to {out}")
    else:
        typer.echo(text)


@app.command("add")
def add(
    bundle_file: Annotated[Path, typer.Argument(help="A peer's bundle (JSON).", exists=True, dir_okay=False)],
    directory: DirOption = None,
) -> None:
    """Verify and pin a peer bundle."""
    from federation.config import load_config
    from federation.errors import PeerError
    from federation.paths import NodePaths
    from federation.peers import PeerBundle

    d = node_dir(directory)
    cfg = load_config(d)
    bundle = PeerBundle.parse(bundle_file.read_bytes())
    if bundle.org_did == cfg.org_did:
        raise PeerError("refusing to pin this node's own bundle as a peer", reason="SELF_PEER")
    target = NodePaths(d).peers / f"{bundle.org_name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(bundle.model_dump_json(indent=2))
    console.print(
        f"pinned {bundle.org_name} ({bundle.org_did}) at {bundle.endpoint}, "
        f"fingerprint {bundle.fingerprint()}"
    )
    note = nudge_running_node(d)
    if note:
        console.print(note)


@app.command("list")
def list_peers(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List pinned peers (offline)."""
    from federation.paths import NodePaths
    from federation.peers import PeerRegistry

    reg = PeerRegistry.load(NodePaths(node_dir(directory)).peers)
    rows = [
        {"org": b.org_name, "did": b.org_did, "endpoint": b.endpoint, "fingerprint": b.fingerprint()}
        for b in reg
    ]
    if as_json:
        print_json(rows)
        return
    t = Table("org", "did", "endpoint", "fingerprint")
    for r in rows:
        t.add_row(*r.values())
    console.print(t)
