"""``accord trust show`` and ``accord metrics``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def show(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """τ, ceiling, dynamic score and trust budget per (requester, contract) where this node provides.

    Reads the state the running node persists every few seconds (offline).
    """
    from federation.agents import open_store
    from federation.identity import NodeIdentity
    from policy import BudgetLedger, Contract, TrustBook

    ident = NodeIdentity.load(node_dir(directory))
    store = open_store(ident)
    trust = TrustBook.from_dict(store.get_state("trust") or {})
    budgets = BudgetLedger.from_dict(store.get_state("budgets") or {})
    now = dt.datetime.now(dt.UTC)
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
            "tau": trust.effective_trust(pair, ceiling=c.trust_ceiling, now=now),
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
        "budget spent / units (window)",
        title=f"trust at {ident.config.org_name}",
    )
    for r in rows:
        budget = (
            f"{r['budget_spent']:.1f} / {r['budget_units']:.1f} ({r['budget_window_seconds']} s)"
            if r["budget_units"] is not None
            else "—"
        )
        t.add_row(
            r["requester"],
            r["contract"],
            f"{r['tau']:.3f}",
            f"{r['ceiling']:.2f}",
            f"{r['score']:.3f}",
            budget,
        )
    console.print(t)


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
