"""Serve a TVP provider node: register the TVP agent models, then serve.

The node (``federation``) knows only the ``source`` provider agent; the TVP
suite plugs its models (:mod:`interop_tests.tvp.agents`: stochastic,
adversarial, LLM) into ``federation.provider_agents.MODELS`` by importing
them in this process before the node opens. Behaviours from
:mod:`interop_tests.misbehaving` (e.g. ``skip_gate`` for the gate-off
condition) combine with it::

    python -m interop_tests.tvp.node --dir D [--behaviour skip_gate]
"""

from __future__ import annotations

import sys
from pathlib import Path

import interop_tests.tvp.agents  # noqa: F401  (registers the TVP provider agent models)
from interop_tests import misbehaving

__all__ = ["tvp_node_process"]


def tvp_node_process(directory: Path, behaviours: list[str] | tuple[str, ...] = ()):
    """A :class:`federation.supervisor.NodeProcess` serving a TVP node directory.

    Not started: call ``.start()``. Raises ValueError for an unknown behaviour.
    """
    from federation.supervisor import NodeProcess

    misbehaving.node_class(behaviours)  # fail fast on a typo
    cmd = [sys.executable, "-m", "interop_tests.tvp.node", "--dir", str(directory)]
    for b in behaviours:
        cmd += ["--behaviour", b]
    return NodeProcess(Path(directory), command=cmd)


if __name__ == "__main__":
    misbehaving.main()
