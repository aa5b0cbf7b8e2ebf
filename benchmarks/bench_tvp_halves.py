"""``accord tvp sweep --halves``: both halves of the paradox, Accord's gate and the paper's defenses.

Runs :mod:`interop_tests.tvp.paradox` on real local nodes (a requester and
five provider nodes) at τ ∈ {0.1, 0.5, 0.9} and prints, per row and τ, task
success, OER, attempted OER, AD and the cost (messages per chain, p50
latency), then approvals per 1,000 requests at each τ, and writes a PNG:
task success against OER, one line per row through τ = 0.1 → 0.5 → 0.9.

``--json`` prints ``{"rows": [...], "approvals": [...], "repartitioning": {"n", "k"},
"chains": N, "seconds": S, "machine": {...}}`` (rows as
:func:`interop_tests.tvp.paradox.summarize_halves`, approvals as
:func:`interop_tests.tvp.paradox.approvals_per_1000`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_trust_sweep import run_in_federation
from interop_tests.tvp.paradox import (
    DEFAULT_BACKEND,
    ROWS,
    approvals_per_1000,
    provision_halves,
    run_halves,
    summarize_halves,
)

ROW_TITLES = {
    "none": "no gate",
    "gate": "Accord gate, agent at contract τ",
    "accord": "Accord gate, agent collaborates fully",
    "repartition": "repartitioning (k-of-n shares)",
    "guardian": "guardian agent",
}
_STYLES = {
    "none": ("tab:red", "--", "o"),
    "gate": ("tab:blue", ":", "s"),
    "accord": ("tab:blue", "-", "D"),
    "repartition": ("tab:orange", "-.", "^"),
    "guardian": ("tab:green", "-.", "v"),
}


def _fmt(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def print_tables(report: dict[str, Any], console: Console) -> None:
    """Rich tables: the rows per τ, then approvals per 1,000 requests."""
    n, k = report["repartitioning"]["n"], report["repartitioning"]["k"]
    t = Table(title="Both halves of the paradox: task success and exposure against τ (same run)")
    for col in (
        "row",
        "τ",
        "chains",
        "task success",
        "OER",
        "attempted OER",
        "AD",
        "msgs/chain",
        "p50 ms/chain",
    ):
        t.add_column(col, justify="left" if col == "row" else "right", no_wrap=col == "row")
    for r in report["rows"]:
        title = ROW_TITLES.get(r["row"], r["row"])
        if r["row"] == "repartition":
            title += f" {k}-of-{n}"
        t.add_row(
            title,
            f"{r['tau']:.1f}",
            str(r["chains"]),
            _fmt(r["task_success"]),
            _fmt(r["oer"]),
            _fmt(r["attempted_oer"]),
            _fmt(r["ad"]),
            _fmt(r["messages_per_chain"], 1),
            _fmt(r["latency_ms_p50"], 1),
        )
    console.print(t)
    a = Table(title="Approvals per 1,000 requests (accord node, approval contract; half pretext requests)")
    for col in ("τ", "requests", "held", "held / 1,000", "operator prompts / 1,000", "answered at once"):
        a.add_column(col, justify="right")
    for r in report["approvals"]:
        a.add_row(
            f"{r['tau']:.1f}",
            str(r["requests"]),
            str(r["held"]),
            _fmt(r["held_per_1000"], 0),
            _fmt(r["prompts_per_1000"], 0),
            str(r["allowed"]),
        )
    console.print(a)


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """PNG: task success (y) against OER (x), one line per row through the τ, τ annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for name in ROWS:
        sel = sorted((r for r in rows if r["row"] == name), key=lambda r: r["tau"])
        if not sel:
            continue
        color, style, marker = _STYLES[name]
        xs, ys = [r["oer"] for r in sel], [r["task_success"] for r in sel]
        ax.plot(xs, ys, style, color=color, marker=marker, label=ROW_TITLES[name])
        for i, r in enumerate(sel):
            # the two gate rows sit on OER = 0: their labels go right of the axis, staggered
            offset = {"gate": (8, -12), "accord": (30 + 28 * i, 4)}.get(name, (4, 4))
            ax.annotate(
                f"τ={r['tau']:.1f}",
                (r["oer"], r["task_success"]),
                fontsize=7,
                color=color,
                xytext=offset,
                textcoords="offset points",
            )
    ax.set(
        title="Task success vs Over-Exposure Rate, per trust τ",
        xlabel="OER (share of chains exposing a field outside A*)",
        ylabel="task success (every A* field arrived)",
        xlim=(-0.05, 1.05),
        ylim=(-0.05, 1.08),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(
    *,
    chains_per_scene: int = 10,
    json_output: bool = False,
    plot_path: str | Path | None = None,
    backend: str = DEFAULT_BACKEND,
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Provision, start, sweep, print, plot.

    Args:
        chains_per_scene: chains per (sub-scene, τ, row).
        json_output: print JSON instead of tables.
        plot_path: the PNG (default ``tvp_halves.png`` in the current directory).
        backend: the calibrated backend the agents follow.
        work_dir: node directories (default: a temporary directory).

    Returns:
        The report (see the module docstring).

    Raises:
        RuntimeError: a node did not start, or the approval pass met an unexpected refusal.
        ValueError: unknown backend.
    """
    console = Console(stderr=json_output, width=max(132, Console().width))
    layout, result, start_s = run_in_federation(
        work_dir,
        prefix="accord-tvp-halves-",
        provision=lambda d: provision_halves(d, backend=backend),
        sweep=lambda lay: run_halves(lay, chains_per_scene=chains_per_scene),
    )
    rows = summarize_halves(result.chains)
    png = plot(rows, Path(plot_path) if plot_path else Path.cwd() / "tvp_halves.png")
    report = {
        "rows": rows,
        "approvals": approvals_per_1000(result.approvals),
        "repartitioning": {"n": result.n, "k": result.k},
        "backend": backend,
        "chains": len(result.chains),
        "seconds": round(result.seconds, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_1m": round(os.getloadavg()[0], 2),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
    }
    if json_output:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report, console)
        m = report["machine"]
        console.print(
            f"{len(result.chains)} chains through {len(layout.conditions)} provider nodes in "
            f"{result.seconds:.1f} s (nodes started in {start_s:.1f} s); plot: {png}"
        )
        console.print(
            f"machine: {m['cpus']} CPUs, Python {m['python']}, {m['platform']}; "
            f"load {m['load_1m']}; {m['date']}"
        )
    return report
