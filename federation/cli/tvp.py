"""``accord tvp``: the Trust-Vulnerability Paradox suite (scenes, sweep).

The lead mounts :data:`app` as ``accord tvp`` and registers
:func:`trust_sweep` as ``accord bench trust-sweep``.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("scenes")
def scenes(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the 19 TVP sub-scenes: macro scene, motif, A*, bait, delegation."""
    import json

    from rich.console import Console
    from rich.table import Table

    from interop_tests.tvp import load_scenes

    rows = [
        {
            "id": s.id,
            "macro": s.macro,
            "motif": s.motif,
            "a_star": list(s.a_star),
            "bait": list(s.bait),
            "delegation": None
            if s.delegation is None
            else {"hops": s.delegation.hops, "expands": s.delegation.expands},
        }
        for s in load_scenes()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table(title="TVP sub-scenes")
    for col in ("id", "macro", "motif", "A*", "bait", "delegation"):
        t.add_column(col)
    for r in rows:
        d = r["delegation"]
        t.add_row(
            r["id"],
            r["macro"],
            r["motif"],
            ", ".join(r["a_star"]),
            ", ".join(r["bait"]),
            ""
            if d is None
            else f"{d['hops']} hop(s), " + (f"widens {d['expands']}" if d["expands"] else "narrows"),
        )
    Console(emoji=False, markup=False, highlight=False).print(t)


@app.command("sweep")
def trust_sweep(
    chains: Annotated[
        int,
        typer.Option("--chains", min=1, max=200, help="Interaction chains per (sub-scene, τ, condition)."),
    ] = 10,
    plot: Annotated[str, typer.Option("--plot", help="PNG output path.")] = "trust_sweep.png",
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="Provider agent model spec (repeatable); default: two calibrated + adversarial."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    halves: Annotated[
        bool,
        typer.Option(
            "--halves",
            help="Both halves of the paradox instead: task success and OER per τ for no gate, "
            "Accord's gate, repartitioning and a guardian agent, plus approvals per 1,000 requests.",
        ),
    ] = False,
    backend: Annotated[
        str, typer.Option("--backend", help="With --halves: the calibrated backend the agents follow.")
    ] = "llama3-8b-agentscope",
) -> None:
    """Run the TVP suite at τ ∈ {0.1, 0.5, 0.9}, MNI gate on and off, on real local nodes.

    With ``--halves``: the both-halves sweep (``docs/tvp.md`` section 7), its
    table (or ``--json``) and its plot (task success against OER per τ).
    """
    from benchmarks.bench_trust_sweep import run
    from interop_tests.tvp.runner import DEFAULT_MODELS

    if halves:
        from benchmarks.bench_tvp_halves import run as run_halves

        if model:
            typer.echo("error: --model does not apply to --halves (use --backend)", err=True)
            raise typer.Exit(1)
        try:
            run_halves(
                chains_per_scene=chains,
                json_output=as_json,
                plot_path=None if plot == "trust_sweep.png" else plot,
                backend=backend,
            )
        except (RuntimeError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        return
    try:
        run(
            chains_per_scene=chains,
            json_output=as_json,
            plot_path=plot,
            models=tuple(model) if model else DEFAULT_MODELS,
        )
    except (RuntimeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
