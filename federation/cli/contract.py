"""``accord contract``: sign, register, list, show."""

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

FileArg = Annotated[Path, typer.Argument(help="Contract file (YAML or JSON).", exists=True, dir_okay=False)]


@app.command("sign")
def sign(
    file: FileArg,
    directory: DirOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the signed contract here.")] = None,
) -> None:
    """Add this organization's signature (JWS over the version hash)."""
    from federation.identity import NodeIdentity
    from policy import Contract

    ident = NodeIdentity.load(node_dir(directory))
    c = Contract.load(file).sign(
        org=ident.org_did, verification_method=ident.verification_method, signer=ident.org_key.sign
    )
    target = out or file.with_suffix(".json")
    c.dump(target)
    console.print(f"signed {c.id} v{c.version} ({c.version_hash[:16]}…) as {ident.org_did} -> {target}")


@app.command("register")
def register(file: FileArg, directory: DirOption = None) -> None:
    """Validate a contract signed by both parties and load it into the node.

    Checks: this node is a party; both signatures; the hook (parsed and
    compiled); at the provider, every resource, field and column the contract
    names exists here; and the version moves forward (an older version, or
    the same version with other terms, is refused).
    """
    from federation.identity import NodeIdentity
    from federation.node_offline import key_resolver
    from policy import Contract, ContractInvalidError

    d = node_dir(directory)
    ident = NodeIdentity.load(d)
    c = Contract.load(file)
    if ident.org_did not in (c.parties.provider.org, c.parties.requester.org):
        raise ContractInvalidError(
            f"this node ({ident.org_did}) is not a party to {c.id}", reason="NOT_A_PARTY"
        )
    _require_pinned(ident, c)
    c.verify_signatures(key_resolver(ident))
    from policy.engine_regopy import compile_check
    from policy.lifecycle import check_supersedes

    compile_check(c)
    if c.parties.provider.org == ident.org_did:
        # every resource, field and column the contract names must exist here (a typo fails closed)
        from federation.agents import open_store
        from federation.datasource import DataSource
        from policy import check_resources

        src = DataSource.load(ident.paths.data)
        have: dict[str, list[str]] = {r: sorted(src.fields(r)) for r in src.resources()}
        for spec, _ in open_store(ident).datasets():
            have[spec["name"]] = sorted(spec.get("columns", {}))
        check_resources(c, have)
    target = ident.paths.contracts / f"{c.id}.json"
    # a contract version only moves forward (older, or same version with other terms: refused)
    check_supersedes(Contract.load(target) if target.is_file() else None, c)
    c.dump(target)
    console.print(f"registered contract {c.id} v{c.version} hash {c.version_hash}")
    note = nudge_running_node(d)
    if note:
        console.print(note)


def _require_pinned(ident, contract) -> None:
    """Refuse a contract whose other party is not a pinned peer (its key is unknown here).

    Raises:
        PeerError: ``UNKNOWN_PEER``, naming the organization and how to pin it.

    """
    from federation.errors import PeerError
    from federation.peers import PeerRegistry

    pinned = {b.org_did for b in PeerRegistry.load(ident.paths.peers)} | {ident.org_did}
    for role, party in (("provider", contract.parties.provider), ("requester", contract.parties.requester)):
        if party.org not in pinned:
            raise PeerError(
                f"contract {contract.id}: the {role} {party.org} is not a pinned peer of this node "
                f"(pin its bundle first: `accord peer add BUNDLE.json`)",
                metadata={"contract_id": contract.id, "org": party.org, "role": role},
            )


@app.command("lint")
def lint(file: FileArg) -> None:
    """Check a contract file strictly and explain each problem in one line (exit 1 if any)."""
    from policy import lint_contract

    issues = lint_contract(file)
    for issue in issues:
        print(issue)  # one line each, never wrapped
    if issues:
        raise typer.Exit(code=1)
    console.print(f"{file}: ok")


@app.command("list")
def list_contracts(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List registered contracts (offline)."""
    from federation.paths import NodePaths
    from policy import Contract

    rows = []
    for p in sorted(NodePaths(node_dir(directory)).contracts.glob("*.json")):
        c = Contract.load(p)
        rows.append(
            {
                "id": c.id,
                "version": c.version,
                "hash": c.version_hash,
                "provider": c.parties.provider.org,
                "requester": c.parties.requester.org,
                "purposes": sorted(c.purposes),
                "trust_ceiling": c.trust_ceiling,
            }
        )
    if as_json:
        print_json(rows)
        return
    t = Table("id", "v", "provider", "requester", "purposes", "ceiling", "hash")
    for r in rows:
        t.add_row(
            r["id"],
            str(r["version"]),
            r["provider"],
            r["requester"],
            ",".join(r["purposes"]),
            f"{r['trust_ceiling']:.2f}",
            r["hash"][:16],
        )
    console.print(t)


@app.command("show")
def show(
    contract_id: Annotated[str, typer.Argument(help="Contract id.")], directory: DirOption = None
) -> None:
    """Print a registered contract (JSON)."""
    from federation.errors import NotFoundError
    from federation.paths import NodePaths
    from policy import Contract

    p = NodePaths(node_dir(directory)).contracts / f"{contract_id}.json"
    if not p.is_file():
        raise NotFoundError(f"no contract {contract_id!r} registered", reason="UNKNOWN_CONTRACT")
    print_json(Contract.load(p).to_dict())


@app.command("propose")
def propose(
    contract_id: Annotated[str, typer.Option("--id", help="Contract id.")],
    requester: Annotated[str, typer.Option("--requester", help="Requesting org (name or DID).")],
    purpose: Annotated[str, typer.Option("--purpose", help="Purpose name.")],
    mni: Annotated[list[str], typer.Option("--mni", help="MNI field path (repeatable).")],
    resource: Annotated[
        list[str], typer.Option("--resource", help="Resource (data set) the purpose may read (repeatable).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the draft (JSON).")],
    directory: DirOption = None,
    title: Annotated[str, typer.Option("--title", help="Title.")] = "Data-sharing contract",
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Scope the agent must hold.")] = None,
    ceiling: Annotated[float, typer.Option("--trust-ceiling", help="Trust ceiling in [0, 1].")] = 0.8,
    days: Annotated[int, typer.Option("--days", help="Validity, days from now.")] = 90,
    subject: Annotated[
        list[str] | None,
        typer.Option("--subject", help="Record key the purpose may ask for (repeatable; default '*')."),
    ] = None,
) -> None:
    """Write an unsigned draft contract with this node as the provider (edit, then `sign`)."""
    import datetime as dt

    from federation.config import org_did_for
    from federation.identity import NodeIdentity
    from policy import propose_contract

    ident = NodeIdentity.load(node_dir(directory))
    req_did = requester if requester.startswith("did:") else org_did_for(requester)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    c = propose_contract(
        contract_id=contract_id,
        title=title,
        provider=(ident.org_did, ident.config.org_name),
        requester=(req_did, req_did.split(":")[-1].split(".")[0]),
        purposes={
            purpose: {
                "resources": list(resource),
                "subjects": list(subject or ["*"]),
                "mni": list(mni),
                "required_scopes": list(scope or []),
            }
        },
        trust_ceiling=ceiling,
        valid_from=now,
        valid_until=now + dt.timedelta(days=days),
    )
    c.dump(out)
    console.print(f"wrote draft {c.id} v{c.version} ({c.version_hash[:16]}…) to {out}: sign it on both sides")


@app.command("retire")
def retire(
    contract_id: Annotated[str, typer.Argument(help="Contract id.")], directory: DirOption = None
) -> None:
    """Retire a registered contract at this node (requests under it are refused from now on)."""
    import datetime as dt

    from federation.errors import NotFoundError
    from federation.paths import NodePaths
    from policy import Contract

    d = node_dir(directory)
    p = NodePaths(d).contracts / f"{contract_id}.json"
    if not p.is_file():
        raise NotFoundError(f"no contract {contract_id!r} registered", reason="UNKNOWN_CONTRACT")
    Contract.load(p).retire(at=dt.datetime.now(dt.UTC)).dump(p)
    console.print(f"retired {contract_id}")
    note = nudge_running_node(d)
    if note:
        console.print(note)
