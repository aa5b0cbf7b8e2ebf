"""``accord interop run``: the conformance suite against any node address."""

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
) -> None:
    """Connect as a peer would and run the conformance cases; exit 1 if any fails."""
    from interop_tests.runner import run_suite

    ok = run_suite(
        target=target, bundle_path=bundle, tester_dir=as_dir, junit_path=junit, contract_id=contract
    )
    raise typer.Exit(0 if ok else 1)
