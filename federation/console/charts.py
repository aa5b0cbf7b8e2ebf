"""Server-rendered SVG charts for the exposure page (matplotlib, Agg; no JavaScript needed).

Each chart comes with the same numbers as a table on the page (the accessible
alternative); the SVG carries a ``<title>`` for screen readers.
"""

from __future__ import annotations

import io
import threading
from typing import Any

__all__ = ["exposure_svg"]

_LOCK = threading.Lock()  # pyplot's state machine is process-global
_BUCKETS = 24


def _empty(message: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="640" height="60" '
        f'aria-label="{message}"><title>{message}</title>'
        f'<text x="10" y="35" font-size="14">{message}</text></svg>'
    )


def exposure_svg(exposure: dict[str, Any]) -> str:
    """OER before and after the gate per time bucket and partner, plus denials, as one SVG.

    Args:
        exposure: :meth:`federation.console.views.ConsoleData.exposure`.

    Returns:
        An SVG document (UTF-8 text) with a ``<title>``.
    """
    points = exposure["points"]
    denials = exposure["denial_times"]
    if not points and not denials:
        return _empty("No exchanges decided by this node yet")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [p[0] for p in points] + [d[0] for d in denials]
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 1.0)
    width = span / _BUCKETS

    def bucket(t) -> int:
        return min(int((t - t0).total_seconds() / width), _BUCKETS - 1)

    partners = sorted({p[1] for p in points})
    xs = [t0 + (i + 0.5) * (t1 - t0) / _BUCKETS for i in range(_BUCKETS)]
    with _LOCK:
        fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[2, 1])
        for partner in partners:
            n = [0] * _BUCKETS
            before = [0] * _BUCKETS
            after = [0] * _BUCKETS
            for t, who, b, a in points:
                if who != partner:
                    continue
                k = bucket(t)
                n[k] += 1
                before[k] += b
                after[k] += a
            keep = [i for i in range(_BUCKETS) if n[i]]
            line = ax.plot(
                [xs[i] for i in keep],
                [before[i] / n[i] for i in keep],
                linestyle="--",
                marker="o",
                label=f"{partner}: offered (before gate)",
            )[0]
            ax.plot(
                [xs[i] for i in keep],
                [after[i] / n[i] for i in keep],
                linestyle="-",
                marker="s",
                color=line.get_color(),
                label=f"{partner}: released (after gate)",
            )
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("OER")
        ax.set_title("Over-Exposure Rate per partner, before and after the MNI gate")
        if partners:
            ax.legend(fontsize=7)
        for kind, colour in (("denial", "#b35900"), ("audit_denial", "#7a0177")):
            counts = [0] * _BUCKETS
            for t, k in denials:
                if k == kind:
                    counts[bucket(t)] += 1
            bx.bar(
                xs,
                counts,
                width=(t1 - t0) / _BUCKETS * 0.8 if t1 > t0 else 0.001,
                label=kind,
                color=colour,
                alpha=0.8,
            )
        bx.set_ylabel("entries")
        bx.set_title("Denials and audit denials")
        bx.legend(fontsize=7)
        import matplotlib.dates as mdates

        locator = mdates.AutoDateLocator()
        bx.xaxis.set_major_locator(locator)
        bx.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        bx.set_xlabel("time (UTC)")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Title": "Exposure over time", "Date": None})
        plt.close(fig)
    svg = buf.getvalue()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg
