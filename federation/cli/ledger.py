"""``accord ledger``: query, checkpoint, verify (offline, on the node directory)."""

from __future__ import annotations

import json
from pathlib import Path
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


def _matches(r: dict, *, counterpart: str | None, agent: str | None) -> bool:
    if counterpart and counterpart not in (r.get("provider_org"), r.get("requester_org")):
        return False
    if not agent:
        return True
    extra = r.get("extra") or {}
    chain = str(extra.get("chain_agents", "")).split(",") if isinstance(extra, dict) else []
    return agent in (r.get("requester_agent"), r.get("provider_agent"), *chain)


def _time(value: str | None):
    import datetime as dt

    from federation.errors import InvalidRequestError

    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(f"not an RFC 3339 time: {value!r}", reason="BAD_TIME") from exc
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


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
    counterpart: Annotated[
        str | None, typer.Option("--counterpart", help="Counterpart org (name or DID).")
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option("--agent", help="Agent DID (also finds delegated requests whose chain holds it)."),
    ] = None,
    contract: Annotated[str | None, typer.Option("--contract", help="Contract id.")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Purpose.")] = None,
    field: Annotated[str | None, typer.Option("--field", help="Field name requested or released.")] = None,
    decision: Annotated[str | None, typer.Option("--decision", help="allow or deny.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="disclosure, received, denial, …")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 time, exclusive.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Most entries to print.")] = 1000,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    federation: Annotated[
        bool,
        typer.Option(
            "--federation",
            help="Also ask every peer for its entries about crossings with us, and verify each "
            "against the peer's cosigned checkpoint (needs the peers running).",
        ),
    ] = False,
) -> None:
    """Print ledger entries matching the filters (names and digests only, never values)."""
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly
    from ledger import EntryFilter

    ident = NodeIdentity.load(node_dir(directory))
    lg = open_ledger_readonly(ident)
    flt = EntryFilter(
        counterpart_org=_org(counterpart),
        agent_did=agent,
        contract_id=contract,
        purpose=purpose,
        field=field,
        decision=decision,
        kind=kind,
        limit=limit,
        since=_time(since),
        until=_time(until),
    )
    rows = [entry_row(e) for e in lg.query(flt)]
    lg.close()
    for r in rows:
        r["source"] = ident.config.org_name
        r["verified"] = "local"
    if federation:
        from federation.federated_query import query_peers

        peer_rows = query_peers(
            ident,
            contract_id=contract,
            purpose=purpose,
            field=field,
            decision=decision,
            kind=kind,
            limit=min(limit, 1000),
        )
        rows += [r for r in peer_rows if _matches(r, counterpart=_org(counterpart), agent=agent)]
    if as_json:
        print_json(rows)
        return
    if as_csv:
        import csv
        import sys

        cols = [
            "index",
            "time",
            "kind",
            "provider_org",
            "requester_org",
            "requester_agent",
            "contract_id",
            "purpose",
            "decision",
            "reason",
            "fields_requested",
            "fields_released",
            "fields_stripped",
            "record_count",
            "effective_trust",
            "leaf_hash",
            "state",
            "source",
            "verified",
        ]
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        for r in rows:
            w.writerow([";".join(r[c]) if isinstance(r[c], list) else r[c] for c in cols])
        return
    t = Table(
        "log",
        "#",
        "time",
        "kind",
        "counterpart",
        "contract",
        "purpose",
        "decision",
        "released",
        "stripped",
        "τ",
        "proof",
        title=f"ledger of {ident.config.org_name} ({len(rows)} entries)",
    )
    for r in rows:
        counterpart_did = r["requester_org"] if r["provider_org"] == ident.org_did else r["provider_org"]
        t.add_row(
            r["source"],
            str(r["index"]),
            r["time"][11:19],
            r["kind"],
            counterpart_did.split(":")[-1].split(".")[0],
            r["contract_id"],
            r["purpose"],
            r["decision"] + (f" {r['reason']}" if r["decision"] == "deny" else ""),
            ",".join(r["fields_released"]),
            ",".join(r["fields_stripped"]),
            f"{r['effective_trust']:.2f}",
            r["verified"],
        )
    console.print(t)
    if any(r["verified"] == "INVALID" for r in rows):
        raise typer.Exit(1)


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
    try:
        report = lg.verify()
    finally:
        lg.close()
    out = verify_report(report)
    if as_json:
        print_json(out)
    else:
        verdict = "ok" if out["ok"] else "FAILED"
        console.print(
            f"ledger verify: {verdict}: {out['entries_checked']} entries re-hashed, "
            f"integrated size {out['integrated_size']}, {out['checkpoints_checked']} checkpoints re-verified"
        )
        for problem in out["problems"]:
            console.print(f"  problem: {problem}")
    if not out["ok"]:
        raise typer.Exit(1)


def verify_report(report) -> dict:
    """A :class:`ledger.FsckReport` as plain JSON data (field names as in the report).

    Returns:
        ``{"ok": bool, "entries_checked": int, "integrated_size": int,
        "checkpoints_checked": int, "first_bad_index": int | None, "problems": [str]}``.

    """
    return {
        "ok": bool(report.ok),
        "entries_checked": int(report.entries_checked),
        "integrated_size": int(report.integrated_size),
        "checkpoints_checked": int(report.checkpoints_checked),
        "first_bad_index": report.first_bad_index,
        "problems": [str(p) for p in report.problems],
    }


def _open(directory):
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    return open_ledger_readonly(NodeIdentity.load(node_dir(directory)))


@app.command("vkey")
def vkey(directory: DirOption = None) -> None:
    """Print the log's C2SP signed-note verifier key."""
    from federation.identity import NodeIdentity

    ident = NodeIdentity.load(node_dir(directory))
    typer.echo(ident.ledger_signer().vkey)


@app.command("prove-inclusion")
def prove_inclusion(
    index: Annotated[int, typer.Option("--index", help="Leaf index.")],
    size: Annotated[
        int | None, typer.Option("--size", help="Tree size (default: latest checkpoint).")
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """RFC 9162 inclusion proof for a leaf (hashes base64)."""
    import base64

    from federation.errors import InvalidRequestError

    lg = _open(directory)
    try:
        cp = lg.latest_checkpoint()
        tree_size = size if size is not None else (cp.checkpoint.size if cp else 0)
        if not 0 <= index < tree_size:
            raise InvalidRequestError(
                f"index {index} not in a tree of size {tree_size}", reason="BAD_PROOF_REQUEST"
            )
        signed = lg.checkpoint(tree_size)
        if signed is None:
            raise InvalidRequestError(f"no signed checkpoint of size {tree_size}", reason="BAD_PROOF_REQUEST")
        hashes = lg.inclusion_proof(index, tree_size)
        entry = lg.get(index)
    finally:
        lg.close()
    out = {
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": base64.b64encode(entry.leaf_hash).decode(),
        "root_hash": base64.b64encode(signed.checkpoint.root).decode(),
        "hashes": [base64.b64encode(h).decode() for h in hashes],
    }
    if as_json:
        print_json(out)
    else:
        for k, v in out.items():
            console.print(f"{k}: {v}")


@app.command("prove-consistency")
def prove_consistency(
    size1: Annotated[int, typer.Option("--from", help="Older tree size.")],
    size2: Annotated[int, typer.Option("--to", help="Newer tree size.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """RFC 9162 consistency proof between two signed tree sizes (hashes base64)."""
    import base64

    from federation.errors import InvalidRequestError

    lg = _open(directory)
    try:
        c1, c2 = lg.checkpoint(size1), lg.checkpoint(size2)
        if c1 is None or c2 is None or not 0 < size1 <= size2:
            raise InvalidRequestError(
                "both sizes must have signed checkpoints and 0 < from <= to", reason="BAD_PROOF_REQUEST"
            )
        hashes = lg.consistency_proof(size1, size2)
    finally:
        lg.close()
    out = {
        "size1": size1,
        "size2": size2,
        "root1": base64.b64encode(c1.checkpoint.root).decode(),
        "root2": base64.b64encode(c2.checkpoint.root).decode(),
        "hashes": [base64.b64encode(h).decode() for h in hashes],
    }
    if as_json:
        print_json(out)
    else:
        for k, v in out.items():
            console.print(f"{k}: {v}")


@app.command("status")
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Sizes, commit-state watermarks, witnessing and equivocation evidence (exit 2 on equivocation)."""
    lg = _open(directory)
    try:
        cp = lg.latest_checkpoint()
        wcp = lg.latest_checkpoint(witnessed=True)
        marks = lg.watermarks()
        equivocations = lg.equivocations()
    finally:
        lg.close()
    from federation.identity import NodeIdentity
    from ledger import Witness

    ident = NodeIdentity.load(node_dir(directory))
    from federation.config import database_url_for

    w = Witness.open(
        database_url_for(ident.paths.root, ident.config),
        signer=ident.witness_signer(),
    )
    try:
        seen = w.equivocations()
    finally:
        w.close()
    witnessing = _witnessing_status(ident)
    checkpointed = cp.checkpoint.size if cp else 0
    witnessed = wcp.checkpoint.size if wcp else 0
    if checkpointed > witnessed and not witnessing.get("problem"):
        failing = {n: st for n, st in witnessing["per_witness"].items() if st.get("last_error")}
        witnessing["problem"] = (
            "; ".join(f"{n}: {st['last_error']}" for n, st in failing.items())
            if failing
            else "the latest checkpoint has not reached the witnesses yet (is the node running?)"
        )
    out = {
        "sequenced": getattr(marks, "sequenced", None),
        "integrated": getattr(marks, "integrated", None),
        "checkpointed": cp.checkpoint.size if cp else 0,
        "witnessed": wcp.checkpoint.size if wcp else 0,
        "checkpoint": cp.note if cp else "",
        "witnessing": witnessing,
        "equivocations": [
            {
                "origin": e.origin,
                "size": e.size,
                "detail": e.detail,
                "note_a": e.note_a,
                "note_b": e.note_b,
                "detected_at": str(e.detected_at),
            }
            for e in [*equivocations, *seen]
        ],
    }
    if as_json:
        print_json(out)
    else:
        for k in ("sequenced", "integrated", "checkpointed", "witnessed"):
            console.print(f"{k:13s} {out[k]}")
        console.print(
            f"witnesses    {', '.join(witnessing['witnesses']) or '(none)'} (quorum {witnessing['quorum']})"
        )
        for name, st in witnessing["per_witness"].items():
            state = f"cosigned size {st['cosigned_size']}" if "cosigned_size" in st else "never cosigned"
            if st.get("last_error"):
                at = f" at {st['last_error_at']}" if st.get("last_error_at") else ""
                state += f"; last error{at}: {st['last_error']}"
            console.print(f"  {name}: {state}")
        if witnessing.get("problem") and out["checkpointed"] > out["witnessed"]:
            console.print(f"not witnessed: {witnessing['problem']}")
        if out["equivocations"]:
            console.print(f"EQUIVOCATION: {len(out['equivocations'])} piece(s) of evidence")
            for e in out["equivocations"]:
                console.print(f"  {e['origin']} size {e['size']}: {e['detail']}")
        else:
            console.print("no equivocation seen")
    if out["equivocations"]:
        raise typer.Exit(2)


def _witnessing_status(ident) -> dict:
    """The witness policy and, per witness, the running node's last result (node state ``witnessing``).

    The policy (witnesses, quorum, unusable witnesses) is read from ``node.toml``
    and the pinned peers; the per-witness results (cosigned size, last error)
    are those the node recorded (:meth:`federation.witnessing.WitnessCoordinator.status`).
    """
    from types import SimpleNamespace

    from federation.agents import open_store
    from federation.peers import PeerRegistry
    from federation.witnessing import WITNESSING_STATE, configured_witnesses, quorum_problem

    node = SimpleNamespace(config=ident.config, peers=PeerRegistry.load(ident.paths.peers))
    saved = open_store(ident).get_state(WITNESSING_STATE) or {}
    per = {name: dict(saved.get("per_witness", {}).get(name, {})) for name in ident.config.witnesses}
    _, unusable = configured_witnesses(node)
    for name, why in unusable.items():
        per[name].update(last_error=why, failing=True)
    failing = {name for name, st in per.items() if st.get("failing")}
    return {
        "witnesses": list(ident.config.witnesses),
        "quorum": ident.config.witness_quorum,
        "problem": quorum_problem(node, failing),
        "per_witness": per,
    }


def plot_growth(dirs: dict[str, Path], out: Path) -> int:
    """Plot cumulative ledger entries over time, one line per node and kind; returns entries plotted."""
    import json as _json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly
    from ledger import EntryFilter

    fig, ax = plt.subplots(figsize=(9, 4.5))
    total = 0
    for name, d in dirs.items():
        lg = open_ledger_readonly(NodeIdentity.load(d))
        try:
            stored = lg.query(EntryFilter(limit=10_000))
            rows = [_json.loads(e.entry.canonical_bytes()) for e in stored]
            times = [e.sequenced_at for e in stored]  # microsecond precision (entry "time" is seconds)
        finally:
            lg.close()
        if not rows:
            continue
        total += len(rows)
        t0 = min(times)
        xs = [(t - t0).total_seconds() for t in times]
        ax.step(sorted(xs), range(1, len(xs) + 1), where="post", label=f"{name} (all)")
        for kind in sorted({r["kind"] for r in rows}):
            kx = sorted(x for x, r in zip(xs, rows, strict=True) if r["kind"] == kind)
            ax.step(kx, range(1, len(kx) + 1), where="post", linestyle=":", label=f"{name}: {kind}")
    ax.set_xlabel("seconds since the node's first entry")
    ax.set_ylabel("ledger entries")
    ax.set_title("Disclosure ledger growth")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return total


@app.command("plot")
def plot(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")],
    directory: DirOption = None,
) -> None:
    """Write a PNG of the ledger's growth over time, by entry kind (offline)."""
    d = node_dir(directory)
    n = plot_growth({d.name: d}, out)
    console.print(f"wrote {out} ({n} entries)")
