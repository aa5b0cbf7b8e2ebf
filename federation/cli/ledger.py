"""``accord ledger``: query, checkpoint, verify (offline, on the node directory)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)


def _org(value: str | None) -> str | None:
    from federation.config import org_did_for

    if value is None or value.startswith("did:"):
        return value
    return org_did_for(value)


def entry_row(e) -> dict:
    """A stored entry as a flat JSON-able dict."""
    d = json.loads(e.entry.canonical_bytes())
    d["index"] = e.index
    d["leaf_hash"] = e.leaf_hash.hex()
    d["state"] = getattr(e.state, "value", str(e.state))
    return d


@app.command("query")
def query(
    directory: DirOption = None,
    counterpart: Annotated[str | None, typer.Option("--counterpart", help="Counterpart org (name or DID).")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent DID.")] = None,
    contract: Annotated[str | None, typer.Option("--contract", help="Contract id.")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Purpose.")] = None,
    field: Annotated[str | None, typer.Option("--field", help="Field name requested or released.")] = None,
    decision: Annotated[str | None, typer.Option("--decision", help="allow or deny.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="disclosure, received, denial, …")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most entries to print.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Print ledger entries matching the filters (names and digests only, never values)."""
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly
    from ledger import EntryFilter

    ident = NodeIdentity.load(node_dir(directory))
    lg = open_ledger_readonly(ident)
    flt = EntryFilter(counterpart_org=_org(counterpart), agent_did=agent, contract_id=contract,
                      purpose=purpose, field=field, decision=decision, kind=kind, limit=limit)
    rows = [entry_row(e) for e in lg.query(flt)]
    lg.close()
    if as_json:
        print_json(rows)
        return
    t = Table("#", "time", "kind", "counterpart", "contract", "purpose", "decision", "released",
              "stripped", "τ", title=f"ledger of {ident.config.org_name} ({len(rows)} entries)")
    for r in rows:
        counterpart_did = r["requester_org"] if r["provider_org"] == ident.org_did else r["provider_org"]
        t.add_row(str(r["index"]), r["time"][11:19], r["kind"], counterpart_did.split(":")[-1].split(".")[0],
                  r["contract_id"], r["purpose"], r["decision"] + (f" {r['reason']}" if r["decision"] == "deny" else ""),
                  ",".join(r["fields_released"]), ",".join(r["fields_stripped"]),
                  f"{r['effective_trust']:.2f}")
    console.print(t)


@app.command("checkpoint")
def checkpoint(directory: DirOption = None) -> None:
    """Print the latest signed checkpoint (C2SP signed note)."""
    from federation.errors import NotFoundError
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    lg = open_ledger_readonly(NodeIdentity.load(node_dir(directory)))
    cp = lg.latest_checkpoint()
    lg.close()
    if cp is None:
        raise NotFoundError("no checkpoint signed yet", reason="NO_CHECKPOINT")
    typer.echo(cp.note, nl=False)


@app.command("verify")
def verify(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Re-derive every hash from the stored entries and check every checkpoint (exit 1 on mismatch)."""
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    lg = open_ledger_readonly(NodeIdentity.load(node_dir(directory)))
    report = lg.verify()
    lg.close()
    ok = bool(getattr(report, "ok", False))
    if as_json:
        print_json(report.to_dict() if hasattr(report, "to_dict") else {"ok": ok, "report": str(report)})
    else:
        console.print(str(report))
    if not ok:
        raise typer.Exit(1)
