"""The ``accord`` command line (Typer): one module per noun.

Every command catches the packages' base errors once (here) and prints one
line, ``accord: error: <reason>: <message>``, exiting 1; a usage error is one
line ``accord: error: USAGE: ...``, exiting 2.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from federation.cli import agent, bench, contract, dataset, demo, interop, ledger, node, peer

app = typer.Typer(
    name="accord",
    help="Accord: secure cross-organization collaboration between AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"accord {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    """The installed ``accord-federation`` version (PEP 440), or ``"unknown"`` when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accord-federation")
    except PackageNotFoundError:
        return "unknown"


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    """Accord: secure cross-organization collaboration between AI agents."""


app.add_typer(node.app, name="node", help="Create and run a node.")
app.add_typer(peer.app, name="peer", help="Exchange and pin peer bundles.")
app.add_typer(agent.app, name="agent", help="Register, list, revoke and suspend agents.")
app.add_typer(contract.app, name="contract", help="Sign, register and inspect contracts.")
app.add_typer(ledger.app, name="ledger", help="Query and verify the disclosure ledger.")
app.add_typer(dataset.app, name="dataset", help="Datasets for audited aggregate queries.")
app.add_typer(interop.app, name="interop", help="Run the conformance suite against a node.")
app.add_typer(bench.app, name="bench", help="Benchmarks.")
app.command("demo")(demo.demo)
agent.app.command("token")(__import__("federation.cli.agent_token", fromlist=["token"]).token)
app.command("metrics")(__import__("federation.cli.trust", fromlist=["metrics"]).metrics)

for _mod, _name, _help in (
    ("federation.cli.credential", "credential", "Issue and verify W3C verifiable credentials."),
    ("federation.cli.audit", "audit", "Reconstruction-attack auditing."),
    ("federation.cli.trust", "trust", "Effective trust and trust budgets."),
    ("federation.cli.tvp", "tvp", "Trust-Vulnerability Paradox scenario suite."),
    ("federation.cli.mcp", "mcp", "Serve an agent over the Model Context Protocol."),
    ("federation.cli.console", "console", "The operator console in a browser."),
    ("federation.cli.approvals", "approvals", "Human approval of held requests (signed by operators)."),
    ("federation.cli.a2a", "a2a", "The A2A gateway: serve, partners' agent cards."),
):
    _m = __import__(_mod, fromlist=["app"])
    app.add_typer(_m.app, name=_name, help=_help)


def _error_types() -> tuple[type[BaseException], ...]:
    from credentials import CredentialError
    from federation.errors import FederationError
    from ledger import LedgerError
    from policy import PolicyError

    return (FederationError, CredentialError, PolicyError, LedgerError)


def _validation_error() -> type[BaseException]:
    from pydantic import ValidationError

    return ValidationError


def _database_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import DBAPIError, OperationalError

    return (OperationalError, DBAPIError)


def _database_message(exc: BaseException) -> str:
    """One line from a SQLAlchemy error: the driver's first line, never the statement or parameters."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [orig.__class__.__name__])[0]
    return f"{orig.__class__.__name__}: {first[:300]}"


def main() -> None:
    """Console-script entry point."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        typer.echo("accord: aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: one line, exit 2 (no boxed panel)
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        if type(exc).__name__ == "NoArgsIsHelpError":  # `accord node`: the group's help, as before
            typer.echo(getattr(getattr(exc, "ctx", None), "get_help", lambda: message)())
            sys.exit(2)
        typer.echo(f"accord: error: USAGE: {message} (see --help)", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except _error_types() as exc:
        reason = getattr(exc, "reason", "ERROR")
        typer.echo(f"accord: error: {reason}: {exc}", err=True)
        sys.exit(1)
    except _validation_error() as exc:  # a model built from node files or arguments (bundle, config)
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first.get("loc", ())) or exc.title  # type: ignore[attr-defined]
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        typer.echo(f"accord: error: INVALID: {exc.title}: {where}: {msg}", err=True)  # type: ignore[attr-defined]
        sys.exit(1)
    except _database_errors() as exc:  # unreachable database, wrong credentials, missing schema
        typer.echo(f"accord: error: DATABASE_UNAVAILABLE: {_database_message(exc)}", err=True)
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
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
