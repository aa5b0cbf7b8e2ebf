"""The ``accord`` command line (Typer): one module per noun.

Every command catches the packages' base errors once (here) and prints one
line, ``accord: error: <reason>: <message>``, exiting 1 (2 for usage errors).
"""

from __future__ import annotations

import os
import sys

import typer

from federation.cli import agent, bench, contract, dataset, demo, interop, ledger, node, peer

app = typer.Typer(
    name="accord",
    help="Accord: secure cross-organization collaboration between AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(node.app, name="node", help="Create and run a node.")
app.add_typer(peer.app, name="peer", help="Exchange and pin peer bundles.")
app.add_typer(agent.app, name="agent", help="Register, list, revoke and suspend agents.")
app.add_typer(contract.app, name="contract", help="Sign, register and inspect contracts.")
app.add_typer(ledger.app, name="ledger", help="Query and verify the disclosure ledger.")
app.add_typer(dataset.app, name="dataset", help="Datasets for audited aggregate queries.")
app.add_typer(interop.app, name="interop", help="Run the conformance suite against a node.")
app.add_typer(bench.app, name="bench", help="Benchmarks.")
app.command("demo")(demo.demo)
app.command("metrics")(__import__("federation.cli.trust", fromlist=["metrics"]).metrics)

for _mod, _name, _help in (
    ("federation.cli.credential", "credential", "Issue and verify W3C verifiable credentials."),
    ("federation.cli.audit", "audit", "Reconstruction-attack auditing."),
    ("federation.cli.trust", "trust", "Effective trust and trust budgets."),
    ("federation.cli.tvp", "tvp", "Trust-Vulnerability Paradox scenario suite."),
):
    _m = __import__(_mod, fromlist=["app"])
    app.add_typer(_m.app, name=_name, help=_help)


def _error_types() -> tuple[type[BaseException], ...]:
    from credentials import CredentialError
    from federation.errors import FederationError
    from ledger import LedgerError
    from policy import PolicyError

    return (FederationError, CredentialError, PolicyError, LedgerError)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except _error_types() as exc:
        reason = getattr(exc, "reason", "ERROR")
        typer.echo(f"accord: error: {reason}: {exc}", err=True)
        sys.exit(1)
    except (OSError, RuntimeError) as exc:
        typer.echo(
            f"accord: error: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            err=True,
        )
        sys.exit(1)
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("ACCORD_DEBUG"):
            raise
        typer.echo(
            f"accord: internal error: {exc.__class__.__name__}: {exc} (set ACCORD_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
