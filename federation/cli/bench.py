"""``accord bench``: benchmarks (figures printed, comparisons in the same run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("exchange")
def exchange(
    seconds: Annotated[float, typer.Option("--seconds", help="Measuring time per point, seconds.")] = 4.0,
    concurrency: Annotated[
        list[int] | None, typer.Option("--concurrency", help="Requests in flight (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    replicas: Annotated[
        int,
        typer.Option("--replicas", min=1, max=8, help="Also run the provider as N replicas on PostgreSQL."),
    ] = 1,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, max=10, help="With --replicas: alternations of 1 vs N.")
    ] = 2,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="ACCORD_BENCH_DATABASE_URL",
            help="PostgreSQL URL for --replicas (a schema is created and dropped).",
        ),
    ] = None,
) -> None:
    """Full cross-org exchanges vs a raw gRPC relay with the same hops, TLS and payload."""
    from benchmarks.bench_exchange import run
    from federation.errors import ConfigError

    if replicas > 1 and not (database_url or "").startswith("postgresql"):
        raise ConfigError(
            "--replicas needs --database-url postgresql+psycopg://USER@HOST:PORT/DB "
            "(or ACCORD_BENCH_DATABASE_URL)",
            reason="REPLICAS_NEED_POSTGRESQL",
        )
    run(
        seconds=seconds,
        concurrency=tuple(concurrency or (1, 8, 64)),
        json_output=as_json,
        replicas=replicas,
        database_url=database_url,
        rounds=rounds,
    )


@app.command("hostile")
def hostile(
    seconds: Annotated[float, typer.Option("--seconds", help="Measuring time of each phase, seconds.")] = 8.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Benign requests in flight.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Benign exchange p50/p99 with and without a flood of hostile inputs of every class, same run."""
    from benchmarks.bench_hostile import run

    out = run(seconds=seconds, concurrency=concurrency, json_output=as_json)
    if not out["all_refused"]:
        raise typer.Exit(1)


@app.command("soak")
def soak(
    minutes: Annotated[
        float, typer.Option("--minutes", min=0.01, max=24 * 60, help="How long to keep the load on, minutes.")
    ] = 10.0,
    in_flight: Annotated[
        int, typer.Option("--in-flight", min=1, max=1024, help="Full exchanges in flight.")
    ] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The full exchange for a while: errors, throughput per minute, RSS of each node at start and end.

    Exits 1 when any exchange failed.
    """
    from benchmarks.bench_soak import run

    out = run(minutes=minutes, in_flight=in_flight, json_output=as_json)
    if out["errors"]:
        raise typer.Exit(1)


@app.command("adapters")
def adapters(
    requests: Annotated[
        int, typer.Option("--requests", min=10, max=100_000, help="Requests per path.")
    ] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The request through MCP (stdio) and A2A beside the Python SDK, plus the protocol SDKs' floors."""
    from benchmarks.bench_adapters import run

    run(requests=requests, json_output=as_json)


def _optional(name: str, module: str, doc: str) -> None:
    def cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        mod = __import__(module, fromlist=["run"])
        mod.run(json_output=as_json)

    cmd.__doc__ = doc
    app.command(name)(cmd)


_optional(
    "credentials", "benchmarks.bench_credentials", "Credential issue/verify per second vs the JS reference."
)
_optional("ledger", "benchmarks.bench_ledger", "Ledger appends and proof latency vs raw inserts.")
_optional("policy", "benchmarks.bench_policy", "Policy decisions vs a bare regopy query.")
_optional("audit", "benchmarks.bench_audit", "Reconstruction auditor vs classic baselines.")


@app.command("console")
def console_bench(
    entries: Annotated[
        int, typer.Option("--entries", min=1_000, max=10_000_000, help="Ledger entries to fill.")
    ] = 1_000_000,
    samples: Annotated[int, typer.Option("--samples", min=3, max=10_000, help="Requests per case.")] = 50,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep (and on a later run reuse) the filled node directory here."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ledger explorer page at 1,000,000 entries vs a bare query (agent, since/until, keyset cases)."""
    from benchmarks.bench_console import run

    run(entries=entries, samples=samples, workdir=workdir, json_output=as_json)


_optional(
    "screening", "benchmarks.bench_screening", "Screening precision/recall, throughput, added ms/exchange."
)


def _trust_sweep() -> None:
    from federation.cli.tvp import trust_sweep

    app.command("trust-sweep")(trust_sweep)


_trust_sweep()
