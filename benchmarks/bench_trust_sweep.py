"""``accord bench trust-sweep``: the Trust-Vulnerability Paradox, reproduced and broken, on real nodes.

Runs the TVP suite (:mod:`interop_tests.tvp`: 19 sub-scenes in 3 macro
scenes) at τ ∈ {0.1, 0.5, 0.9} against one provider node per (agent model,
gate on/off): the MNI gate on (Accord) and off (``skip_gate``: the node
passes through what its agent offers, as ordinary agent frameworks do).
Prints a Rich table per macro scene and overall — task success, attempted
OER, released OER, AD — next to the paper's published OER for the calibrated
backends, a table of Authorization Drift detection for the delegation
scenes, and writes a PNG plot (OER and task success against τ, both
conditions).

``--json`` prints a list of rows ``{"scene", "tau", "gate", "agent_model",
"chains", "task_success", "attempted_oer", "released_oer", "ad"}``
(``scene`` = ``all`` for the overall rows).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from interop_tests.tvp.agents import load_calibration
from interop_tests.tvp.runner import (
    DEFAULT_MODELS,
    TAUS,
    SweepResult,
    TvpFederation,
    provision_tvp,
    run_sweep,
    summarize,
)

MACRO_TITLES = {
    "enterprise": "Enterprise collaboration",
    "archaeology": "Deep-sea archaeology",
    "mars": "Mars colony",
    "all": "All 19 sub-scenes",
}


def _paper(model: str, tau: float) -> str:
    if not model.startswith("stochastic:"):
        return "—"
    cal = load_calibration().get(model.split(":", 1)[1])
    return f"{cal.oer[TAUS.index(tau)]:.2f}" if cal and tau in TAUS else "—"


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def print_tables(rows: list[dict[str, Any]], result: SweepResult, console: Console) -> None:
    """Rich tables: one per macro scene and overall, then delegation drift detection."""
    for scene in ("enterprise", "archaeology", "mars", "all"):
        sel = [r for r in rows if r["scene"] == scene]
        if not sel:
            continue
        t = Table(title=f"{MACRO_TITLES[scene]}: OER and task success against τ")
        for col in (
            "agent model",
            "gate",
            "τ",
            "chains",
            "task success",
            "attempted OER",
            "released OER",
            "AD",
            "paper OER (gate off)",
        ):
            t.add_column(col, justify="right" if col not in ("agent model", "gate") else "left")
        for r in sel:
            t.add_row(
                r["agent_model"].replace("stochastic:", ""),
                r["gate"],
                f"{r['tau']:.1f}",
                str(r["chains"]),
                _fmt(r["task_success"]),
                _fmt(r["attempted_oer"]),
                _fmt(r["released_oer"]),
                _fmt(r["ad"]),
                _paper(r["agent_model"], r["tau"]) if r["gate"] == "off" else "",
            )
        console.print(t)
    if result.drift:
        t = Table(title="Delegation scenes: Authorization Drift detection (all provider nodes)")
        for col in ("scene", "chain", "runs", "drift detected", "reasons"):
            t.add_column(col)
        keys = sorted({(d.scene, d.expands or "") for d in result.drift})
        for scene, expands in keys:
            ds = [d for d in result.drift if d.scene == scene and (d.expands or "") == expands]
            t.add_row(
                scene,
                f"widens {expands}" if expands else "narrows",
                str(len(ds)),
                str(sum(d.drift_detected for d in ds)),
                ",".join(sorted({d.reason or "accepted" for d in ds})),
            )
        console.print(t)


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """PNG: released OER and task success against τ (overall rows), gate on vs off, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    models = sorted({r["agent_model"] for r in rows})
    for model in models:
        for gate, style in (("off", "--"), ("on", "-")):
            sel = sorted(
                (r for r in rows if r["scene"] == "all" and r["agent_model"] == model and r["gate"] == gate),
                key=lambda r: r["tau"],
            )
            if not sel:
                continue
            taus = [r["tau"] for r in sel]
            label = f"{model.replace('stochastic:', '')} gate {gate}"
            ax1.plot(taus, [r["released_oer"] for r in sel], style, marker="o", label=label)
            ax2.plot(taus, [r["task_success"] for r in sel], style, marker="o", label=label)
    cal = load_calibration()
    for c in cal.values():
        ax1.plot(TAUS, c.oer, ":", marker="x", color="grey", alpha=0.7)
        ax1.annotate(
            f"paper: {c.label}",
            (TAUS[-1], c.oer[-1]),
            fontsize=7,
            color="grey",
            xytext=(-110, 4),
            textcoords="offset points",
        )
    ax1.set(
        title="Released OER vs trust τ", xlabel="τ", ylabel="OER (fraction of chains)", ylim=(-0.05, 1.05)
    )
    ax2.set(title="Task success vs trust τ", xlabel="τ", ylabel="task success", ylim=(-0.05, 1.05))
    for ax in (ax1, ax2):
        ax.set_xticks(list(TAUS))
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7, loc="center left")
    ax2.legend(fontsize=7, loc="lower right", title="(conditions may overlap)", title_fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_in_federation(
    work_dir: str | Path | None,
    *,
    prefix: str,
    provision: Callable[[Path], Any],
    sweep: Callable[[Any], Awaitable[Any]],
) -> tuple[Any, Any, float]:
    """Provision a TVP federation, start its nodes, run ``sweep`` on it, stop them.

    Args:
        work_dir: directory for the node directories (default: a temporary
            one named ``prefix…``, removed afterwards).
        prefix: the temporary directory's name prefix.
        provision: ``provision(dir) -> layout`` (the federation's node directories).
        sweep: ``await sweep(layout) -> result``, run while the nodes serve.

    Returns:
        ``(layout, result, start_s)``: ``start_s`` is the seconds the nodes took to start.

    Raises:
        RuntimeError: a node did not start (:class:`TvpFederation`).
    """
    tmp = tempfile.TemporaryDirectory(prefix=prefix) if work_dir is None else None
    root = Path(work_dir) if work_dir is not None else Path(tmp.name)  # type: ignore[union-attr]
    try:
        layout = provision(root / "fed")
        t0 = time.perf_counter()
        with TvpFederation(layout):
            start_s = time.perf_counter() - t0
            result = asyncio.run(sweep(layout))
        return layout, result, start_s
    finally:
        if tmp is not None:
            tmp.cleanup()


def run(
    *,
    chains_per_scene: int = 10,
    json_output: bool = False,
    plot_path: str | Path | None = None,
    models: tuple[str, ...] = DEFAULT_MODELS,
    work_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Provision a TVP federation, start its nodes, sweep, print, plot.

    Args:
        chains_per_scene: interaction chains per (sub-scene, τ, condition).
        json_output: print the rows as JSON instead of tables.
        plot_path: where to write the PNG (default: ``trust_sweep.png`` in the work directory).
        models: provider agent model specs (each gets a gate-on and a gate-off node).
        work_dir: directory for the node directories (default: a temporary one).

    Returns:
        The rows (see the module docstring).
    """
    console = Console(stderr=json_output, width=max(132, Console().width))
    layout, result, start_s = run_in_federation(
        work_dir,
        prefix="accord-tvp-",
        provision=lambda d: provision_tvp(d, models=models),
        sweep=lambda lay: run_sweep(lay, chains_per_scene=chains_per_scene),
    )
    rows = summarize(result.chains)
    png = plot(rows, Path(plot_path) if plot_path else Path.cwd() / "trust_sweep.png")
    if json_output:
        print(json.dumps(rows, indent=2))
    else:
        print_tables(rows, result, console)
        console.print(
            f"{len(result.chains)} chains through {len(layout.conditions)} provider nodes in "
            f"{result.seconds:.1f} s (nodes started in {start_s:.1f} s); plot: {png}"
        )
        console.print(
            f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.platform()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        )
    return rows


if __name__ == "__main__":
    n = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--chains=")), 10)
    run(
        chains_per_scene=n,
        json_output="--json" in sys.argv,
        plot_path=next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--plot=")), None),
    )
