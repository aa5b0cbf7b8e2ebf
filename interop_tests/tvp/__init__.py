"""The Trust-Vulnerability Paradox (TVP) scenario suite, run through real Accord nodes.

* :mod:`interop_tests.tvp.scenes` — the 19 sub-scenes (``scenes.yaml``) as typed data;
* :mod:`interop_tests.tvp.agents` — provider agent models (stochastic, adversarial, LLM);
* :mod:`interop_tests.tvp.runner` — provisioning, the sweep over τ × gate × model, metrics.

See ``docs/tvp.md``.
"""

from interop_tests.tvp.scenes import MACROS, MOTIFS, Delegation, Scene, load_scenes

__all__ = ["MACROS", "MOTIFS", "Delegation", "Scene", "load_scenes"]
