"""``accord interop run``: the conformance or the security (red-team) suite against any node address."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("run")
def run(
    target: Annotated[str, typer.Option("--target", help="HOST:PORT of the node under test.")],
    bundle: Annotated[Path, typer.Option("--bundle", help="The target's peer bundle (JSON).", exists=True)],
    as_dir: Annotated[
        Path, typer.Option("--as", help="Node directory of the tester org, pinned at the target.")
    ],
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    contract: Annotated[
        str | None, typer.Option("--contract", help="Interop contract id (default interop-<target org>).")
    ] = None,
    suite: Annotated[
        str, typer.Option("--suite", help="conformance (the protocol) or security (the red-team attacks).")
    ] = "conformance",
    http: Annotated[
        str, typer.Option("--http", help="HOST:PORT of the target's tlog-tiles HTTP endpoint (security).")
    ] = "",
) -> None:
    """Connect as a peer would and run a suite of cases; exit 1 if any fails."""
    from federation.errors import ConfigError
    from interop_tests.runner import SUITES, run_suite

    if suite not in SUITES:
        raise ConfigError(f"unknown suite {suite!r}; known: {', '.join(sorted(SUITES))}")
    ok = run_suite(
        target=target,
        bundle_path=bundle,
        tester_dir=as_dir,
        junit_path=junit,
        contract_id=contract,
        suite=suite,
        http=http,
    )
    raise typer.Exit(0 if ok else 1)
