"""``accord agent``: register, list, renew, revoke, suspend, reinstate."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

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
def list_agents(
    directory: DirOption = None,
    as_json: JsonOption = False,
    expiring_within: Annotated[
        int, typer.Option("--expiring-within", min=0, help="Flag credentials expiring within this many days.")
    ] = 7,
) -> None:
    """List this organization's agents with their credential expiry (offline).

    ``expiry`` (JSON) is ``expired`` (validUntil passed or missing), ``expiring``
    (within ``--expiring-within`` days) or ``ok``.
    """
    import datetime as dt

    from federation.agents import agent_row, open_store
    from federation.identity import NodeIdentity

    now = dt.datetime.now(dt.UTC)
    ident = NodeIdentity.load(node_dir(directory))
    rows = [agent_row(a, now=now, expiring_within_days=expiring_within) for a in open_store(ident).agents()]
    if as_json:
        print_json(rows)
        return
    # the DID column wraps first on a narrow terminal: role, status and expiry stay readable
    t = Table(
        Column("name", no_wrap=True),
        Column("did", overflow="fold"),
        Column("role", no_wrap=True),
        "scopes",
        "tier",
        "status",
        Column("expires", no_wrap=True),
    )
    for r in rows:
        day = r["valid_until"][:10] if r["valid_until"] else "-"
        flag = {"ok": day, "expiring": f"{day} soon", "expired": "expired"}[r["expiry"]]
        t.add_row(
            r["name"],
            r["did"][:32] + "…",
            r["role"],
            ",".join(r["scopes"]),
            str(r["trust_tier"]),
            r["status"],
            Text(flag, style="" if r["expiry"] == "ok" else "bold red"),
        )
    console.print(t)


@app.command("renew")
def renew(
    name: Annotated[str, typer.Argument(help="Agent name or DID.")],
    directory: DirOption = None,
    days: Annotated[
        int, typer.Option("--days", help="New credential validity from now, days (1..3650).")
    ] = 30,
) -> None:
    """Issue a fresh AgentCredential (same DID and claims, new validity) and rewrite the agent's wallet."""
    from federation.agents import renew_agent
    from federation.identity import NodeIdentity

    d = node_dir(directory)
    wallet = renew_agent(NodeIdentity.load(d), name, valid_days=days)
    console.print(
        f"renewed agent {wallet.name} {wallet.did}: valid until {wallet.credential['validUntil']}; "
        f"wallet agents/{wallet.name}.json"
    )
    note = nudge_running_node(d)
    if note:
        console.print(note)


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
