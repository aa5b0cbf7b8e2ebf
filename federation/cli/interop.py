"""``accord interop``: enroll the conformance kit at a node, run a suite against a node, unenroll."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from federation.cli.common import DirOption, console, node_dir

app = typer.Typer(no_args_is_help=True)

TesterOption = Annotated[
    Path | None,
    typer.Option(
        "--tester",
        "--as",
        help="The kit's tester organization directory (default: $ACCORD_INTEROP_TESTER, else "
        "<app dir>/accord/conformance-tester; created by `interop enroll`).",
        show_default=False,
    ),
]


def _tester(path: Path | None) -> Path:
    from interop_tests.enrollment import default_tester_dir

    return Path(path).resolve() if path else default_tester_dir()


@app.command("enroll")
def enroll(
    directory: DirOption = None,
    tester: TesterOption = None,
    bundle_out: Annotated[
        Path | None,
        typer.Option(
            "--bundle-out", help="Also write the node's peer bundle here (for `interop run --bundle`)."
        ),
    ] = None,
    tester_listen: Annotated[
        str | None,
        typer.Option(
            "--tester-listen",
            help="HOST:PORT where `interop run` serves the tester's status lists (new tester; "
            "default a free 127.0.0.1 port).",
        ),
    ] = None,
    tester_advertise: Annotated[
        str,
        typer.Option(
            "--tester-advertise",
            help="HOST:PORT the node under test dials for them (default: --tester-listen).",
        ),
    ] = "",
) -> None:
    """Pin the kit's tester organization at a node and register what the suites need; print what was added."""
    from interop_tests.enrollment import enroll as do_enroll

    result = do_enroll(
        node_dir(directory),
        tester_dir=_tester(tester),
        bundle_out=bundle_out,
        tester_listen=tester_listen,
        tester_advertise=tester_advertise,
    )
    console.print(f"added to {escape(str(result.node_dir))}:")
    for item in result.items:
        where = item.path or "node database"
        console.print(
            f"  {item.kind} {escape(item.name)} ({escape(where)}): {escape(item.detail)}", soft_wrap=True
        )
    console.print(
        f"tester organization: {escape(str(result.tester_dir))} (no witness key: never counted for quorum)"
    )
    if result.reload_note:
        console.print(escape(result.reload_note))
    console.print(f"node bundle: {escape(str(result.node_bundle))}")
    tester_opt = f" --tester {result.tester_dir}" if tester else ""
    console.print(
        "run: "
        + escape(f"accord interop run --target {result.target} --bundle {result.node_bundle}{tester_opt}")
    )


@app.command("unenroll")
def unenroll(directory: DirOption = None) -> None:
    """Remove everything `interop enroll` added to a node (its manifest lists it); print what was removed."""
    from interop_tests.enrollment import unenroll as do_unenroll

    d = node_dir(directory)
    removed, note = do_unenroll(d)
    for item in removed:
        console.print(f"removed {item.kind} {escape(item.name)} ({escape(item.path or 'node database')})")
    if note:
        console.print(escape(note))


@app.command("run")
def run(
    target: Annotated[str, typer.Option("--target", help="HOST:PORT of the node under test.")],
    bundle: Annotated[Path, typer.Option("--bundle", help="The target's peer bundle (JSON).", exists=True)],
    tester: TesterOption = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report here.")] = None,
    contract: Annotated[
        str | None, typer.Option("--contract", help="Interop contract id (default interop-<target org>).")
    ] = None,
    suite: Annotated[
        str,
        typer.Option(
            "--suite",
            help="conformance (the protocol) or security (the red-team attacks); "
            "with --role requester: requester.",
        ),
    ] = "",
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="provider: the kit asks the node; requester: the kit's organizations serve as "
            "providers and the node asks them, driven by the tester agent `interop enroll` registered.",
        ),
    ] = "provider",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write a JSON report (requirement ids per case) here.")
    ] = None,
    http: Annotated[
        str, typer.Option("--http", help="HOST:PORT of the target's tlog-tiles HTTP endpoint (security).")
    ] = "",
    strict: Annotated[bool, typer.Option("--strict", help="A failed SHOULD case fails the run too.")] = False,
) -> None:
    """Connect as a peer would and run a suite of cases; exit 1 if a MUST case fails."""
    from federation.errors import ConfigError
    from interop_tests.runner import ROLES, run_suite

    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; known: {', '.join(sorted(ROLES))}")
    suite = suite or ROLES[role][0]
    if suite not in ROLES[role]:
        raise ConfigError(f"unknown suite {suite!r}: not one of the {role} role's: {', '.join(ROLES[role])}")
    tester_dir = _tester(tester)
    if not (tester_dir / "node.toml").is_file():
        raise ConfigError(
            f"no tester organization in {tester_dir}: run `accord interop enroll --dir NODE_DIR` first"
        )
    ok = run_suite(
        target=target,
        bundle_path=bundle,
        tester_dir=tester_dir,
        junit_path=junit,
        report_path=report,
        contract_id=contract,
        suite=suite,
        http=http,
        strict=strict,
        json_path=json_out,
    )
    raise typer.Exit(0 if ok else 1)
