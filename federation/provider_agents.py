"""Provider-side agent behaviour: what an organization's agent *offers* for a request.

The node asks its provider agent what to hand over for a request, then the
MNI gate decides what crosses. Behaviour is pluggable through
``provider_agent`` in ``node.toml`` (a spec string):

* ``source`` (default): offer the whole records the data source holds — the
  most a careless agent could leak;
* further models are registered in ``MODELS`` by the code that serves the
  node (the TVP suite's entry point ``python -m interop_tests.tvp.node``
  registers its stochastic, adversarial and LLM models before serving); the
  node itself never imports test code.

A provider agent never sees the decision: over-exposure is measured on
what it offered (attempted OER) and on what crossed (released OER).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol


class ProviderAgent(Protocol):
    """What a provider agent does with a request it was asked to serve."""

    name: str

    def offer(
        self,
        *,
        records: list[dict[str, Any]],
        requested: tuple[str, ...],
        mni: frozenset[str],
        tau: float,
        rng: random.Random,
    ) -> list[dict[str, Any]]:
        """Return the records (with whatever fields) the agent hands to the node.

        Args:
            records: the whole records the data source holds for the request.
            requested: field paths the requester asked for.
            mni: the purpose's Minimum Necessary Information A* (field paths).
            tau: effective trust τ of the requester pair, in [0, 1].
            rng: the node's random source for stochastic models.
        """


class SourceAgent:
    """Offers whole records (everything the source has)."""

    name = "source"

    def offer(self, *, records, requested, mni, tau, rng):  # noqa: D102
        return [dict(r) for r in records]


#: spec prefix → factory(argument after the colon, or "")
MODELS: dict[str, Callable[[str], ProviderAgent]] = {"source": lambda _arg: SourceAgent()}


def load_provider_agent(spec: str) -> ProviderAgent:
    """Build the provider agent for a ``node.toml`` spec like ``"source"`` or ``"stochastic:gpt"``.

    Raises:
        ValueError: unknown model name (a model from a suite is known only in a
            process that registered it, see the module docstring).
    """
    name, _, arg = spec.partition(":")
    if name not in MODELS:
        raise ValueError(f"unknown provider agent model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](arg)
