"""``accord agent token``: bearer tokens for an agent's local HTTP adapters (``accord mcp serve --http``)."""

from __future__ import annotations

from typing import Annotated

import typer

from federation.cli.common import DirOption, JsonOption, console, err_console, node_dir, print_json


def token(
    name: Annotated[str | None, typer.Argument(help="Agent name (omit with --list or --revoke).")] = None,
    directory: DirOption = None,
    ttl_days: Annotated[float, typer.Option("--ttl-days", help="Validity in days (max 365).")] = 30,
    label: Annotated[str, typer.Option("--label", help="A note kept with the token.")] = "",
    revoke: Annotated[str | None, typer.Option("--revoke", help="Revoke the token with this id.")] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List tokens (ids, agents, expiry; no secrets).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Mint a bearer token for agent NAME (printed once; only its hash is stored), list or revoke tokens."""
    from federation import agent_tokens as at
    from federation.errors import InvalidRequestError

    d = node_dir(directory)
    if revoke:
        rec = at.revoke(d, revoke)
        print_json(rec.public()) if as_json else console.print(f"revoked token {rec.id} of agent {rec.agent}")
        return
    if list_:
        rows = [r.public() for r in at.list_tokens(d, agent=name)]
        if as_json:
            print_json(rows)
        else:
            for r in rows:
                state = f"revoked {r['revoked_at']}" if r["revoked_at"] else f"expires {r['expires_at']}"
                console.print(f"{r['id']}  {r['agent']}  {state}  {r['label']}")
        return
    if not name:
        raise InvalidRequestError("give an agent NAME, --list or --revoke ID", reason="MALFORMED_REQUEST")
    secret, rec = at.mint(d, name, ttl_days=ttl_days, label=label)
    if as_json:
        print_json({**rec.public(), "token": secret})
    else:
        typer.echo(secret)
        err_console.print(f"token {rec.id} for agent {rec.agent}, expires {rec.expires_at} (shown once)")
