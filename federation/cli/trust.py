"""``accord trust show|set`` and ``accord metrics``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def show(
    directory: DirOption = None,
    as_json: JsonOption = False,
    history: Annotated[
        bool, typer.Option("--history", help="Also print each pair's recorded trust changes.")
    ] = False,
) -> None:
    """τ, ceiling, score, baseline and trust budget per (requester, contract) where this node provides.

    Reads the state the running node persists every few seconds (offline).
    Operator changes queued with ``accord trust set`` and not yet applied by
    the node are shown applied, and listed under ``pending``.
    """
    from federation.agents import open_store
    from federation.identity import NodeIdentity
    from federation.store import TRUST_SET_PREFIX, PolicyStateStore
    from policy import Contract

    ident = NodeIdentity.load(node_dir(directory))
    pss = PolicyStateStore(open_store(ident))
    ps = pss.load()
    now = dt.datetime.now(dt.UTC)
    pending = [
        {k: v for k, v in cmd.items() if k in ("requester", "value", "reason", "at")}
        for _, cmd in sorted(pss.get_rows(TRUST_SET_PREFIX).items())
    ]
    pss.apply_trust_sets(ps.trust, now=now)
    trust, budgets = ps.trust, ps.budgets
    rows = []
    from federation.node_offline import key_resolver
    from policy import PolicyError

    resolver = key_resolver(ident)
    for path in sorted(ident.paths.contracts.glob("*.json")):
        try:
            c = Contract.load(path)
            c.verify_signatures(resolver)
        except PolicyError:  # not in force: `accord contract list` shows it
            continue
        if c.parties.provider.org != ident.org_did:
            continue
        pair = (c.parties.requester.org, ident.org_did)
        row = {
            "requester": c.parties.requester.org,
            "contract": c.id,
            "ceiling": c.trust_ceiling,
            "score": trust.score(pair, now=now),
            "baseline": trust.baseline(pair),
            "tau": trust.effective_trust(pair, ceiling=c.trust_ceiling, now=now),
            "history": trust.history(pair),
            "pending": [p for p in pending if p["requester"] == c.parties.requester.org],
            "budget_units": c.trust_budget.units if c.trust_budget else None,
            "budget_window_seconds": c.trust_budget.window_seconds if c.trust_budget else None,
            "budget_spent": budgets.spent(
                (c.id, c.parties.requester.org), window_seconds=c.trust_budget.window_seconds, now=now
            )
            if c.trust_budget
            else None,
        }
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    t = Table(
        "requester",
        "contract",
        "τ",
        "ceiling",
        "score",
        "baseline",
        "budget spent / units (window)",
        title=f"trust at {ident.config.org_name}",
    )
    for r in rows:
        budget = (
            f"{r['budget_spent']:.6g} / {r['budget_units']:.6g} ({r['budget_window_seconds']} s)"
            if r["budget_units"] is not None
            else "—"
        )
        t.add_row(
            r["requester"],
            r["contract"],
            f"{r['tau']:.6f}",
            f"{r['ceiling']:.6g}",
            f"{r['score']:.6f}",
            f"{r['baseline']:.6g}" + (" (pending)" if r["pending"] else ""),
            budget,
        )
    console.print(t)
    if history:
        seen: set[str] = set()
        for r in rows:
            if r["requester"] in seen:
                continue
            seen.add(r["requester"])
            h = Table("time", "cause", "old", "new", "reason", title=f"trust changes of {r['requester']}")
            for e in r["history"]:
                at = dt.datetime.fromtimestamp(e["at"], tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                h.add_row(at, e["cause"], f"{e['old']:.6f}", f"{e['new']:.6f}", e["reason"])
            console.print(h)


@app.command("set")
def set_trust(
    requester: Annotated[str, typer.Option("--requester", help="Requester org: pinned peer DID or name.")],
    value: Annotated[float, typer.Option("--value", help="New baseline trust in [0, 1]; clears penalties.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the pair's trust history).")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the baseline trust of a (requester, this node) pair, with a reason.

    The change is queued in the node database; the running node applies it
    within seconds (or at its next start) and records it in the pair's trust
    history with cause ``operator``. Raises CONFIG errors for an unknown peer.
    """
    from federation.agents import open_store
    from federation.errors import ConfigError, PeerError
    from federation.identity import NodeIdentity
    from federation.peers import PeerRegistry
    from federation.store import PolicyStateStore
    from policy import TrustStateError

    ident = NodeIdentity.load(node_dir(directory))
    try:
        org = PeerRegistry.load(ident.paths.peers).get(requester).org_did
    except PeerError as exc:
        raise ConfigError(f"{requester!r} is not a pinned peer", reason="UNKNOWN_PEER") from exc
    now = dt.datetime.now(dt.UTC)
    try:
        key = PolicyStateStore(open_store(ident)).request_trust_set(
            org, ident.org_did, value, reason=reason, now=now
        )
    except TrustStateError as exc:
        raise ConfigError(str(exc), reason=exc.reason) from exc
    out = {"requester": org, "provider": ident.org_did, "value": value, "reason": reason.strip()}
    out["queued"] = key
    if as_json:
        print_json(out)
        return
    console.print(f"queued: trust baseline of {org} at {ident.config.org_name} := {value} ({reason.strip()})")


def metrics(
    directory: DirOption = None,
    as_json: JsonOption = False,
    all_series: Annotated[bool, typer.Option("--all", help="Include Python/process series.")] = False,
) -> None:
    """Scrape the running node's Prometheus endpoint and show Accord's series (OER, denials, …)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from federation.config import load_config
    from federation.errors import ConfigError

    cfg = load_config(node_dir(directory))
    if not cfg.metrics_port:
        raise ConfigError("metrics are off: set metrics_port in node.toml", reason="METRICS_DISABLED")
    try:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{cfg.metrics_port}/metrics", timeout=5).read().decode()
        )
    except OSError as exc:
        raise ConfigError(
            f"node not reachable on metrics port {cfg.metrics_port}: {exc}", reason="NODE_NOT_RUNNING"
        ) from exc
    rows = []
    for fam in text_string_to_metric_families(text):
        if not all_series and not fam.name.startswith("accord_"):
            continue
        for sample in fam.samples:
            if sample.name.endswith("_created"):
                continue
            rows.append({"name": sample.name, "labels": dict(sample.labels), "value": sample.value})
    if as_json:
        print_json(rows)
        return
    t = Table("series", "labels", "value", title=f"metrics of {cfg.org_name}")
    for r in rows:
        t.add_row(r["name"], ",".join(f"{k}={v}" for k, v in r["labels"].items()), f"{r['value']:g}")
    console.print(t)
