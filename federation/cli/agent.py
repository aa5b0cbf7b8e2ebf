"""``accord agent``: register, list, revoke, suspend, reinstate."""

from __future__ import annotations

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


@app.command("register")
def register(
    name: Annotated[str, typer.Option("--name", help="Agent name, [a-z0-9-]+.")],
    role: Annotated[str, typer.Option("--role", help="Role claim, e.g. triage-coordinator.")],
    scope: Annotated[list[str], typer.Option("--scope", help="Scope granted (repeatable).")],
    directory: DirOption = None,
    trust_tier: Annotated[int, typer.Option("--trust-tier", help="Trust tier 0..3.")] = 1,
    valid_days: Annotated[int, typer.Option("--valid-days", help="Credential validity, days.")] = 30,
) -> None:
    """Create the agent's did:key, issue its AgentCredential and write its wallet."""
    from federation.agents import register_agent
    from federation.identity import NodeIdentity

    d = node_dir(directory)
    wallet = register_agent(
        NodeIdentity.load(d), name=name, role=role, scopes=scope, trust_tier=trust_tier, valid_days=valid_days
    )
    console.print(f"registered agent {name} {wallet.did}; wallet agents/{name}.json")
    note = nudge_running_node(d)
    if note:
        console.print(note)


@app.command("list")
def list_agents(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List this organization's agents (offline)."""
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    rows = [
        {
            "name": a.name,
            "did": a.did,
            "role": a.role,
            "scopes": list(a.scopes),
            "trust_tier": a.trust_tier,
            "status_index": a.status_index,
            "status": "revoked" if a.revoked else "suspended" if a.suspended else "active",
        }
        for a in open_store(NodeIdentity.load(node_dir(directory))).agents()
    ]
    if as_json:
        print_json(rows)
        return
    t = Table("name", "did", "role", "scopes", "tier", "status")
    for r in rows:
        t.add_row(
            r["name"],
            r["did"][:32] + "…",
            r["role"],
            ",".join(r["scopes"]),
            str(r["trust_tier"]),
            r["status"],
        )
    console.print(t)


def _set(directory, name: str, **bits: bool) -> None:
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    d = node_dir(directory)
    rec = open_store(NodeIdentity.load(d)).set_status(name, **bits)
    state = "revoked" if rec.revoked else "suspended" if rec.suspended else "active"
    console.print(f"agent {rec.name}: {state} (status list index {rec.status_index})")
    note = nudge_running_node(d)
    if note:
        console.print(note)


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Agent name or DID.")], directory: DirOption = None
) -> None:
    """Set the agent's revocation bit (permanent)."""
    _set(directory, name, revoked=True)


@app.command("suspend")
def suspend(
    name: Annotated[str, typer.Argument(help="Agent name or DID.")], directory: DirOption = None
) -> None:
    """Set the agent's suspension bit."""
    _set(directory, name, suspended=True)


@app.command("reinstate")
def reinstate(
    name: Annotated[str, typer.Argument(help="Agent name or DID.")], directory: DirOption = None
) -> None:
    """Clear the agent's suspension bit (revocation is permanent)."""
    _set(directory, name, suspended=False)
