"""Over-Exposure Rate (OER) and Authorization Drift (AD).

Definitions follow the Trust–Vulnerability Paradox paper (Xu et al.,
arXiv:2510.18563): an *interaction chain* over-exposes when its released
output carries any field beyond the task's Minimum Necessary Information
A*; OER is the fraction of chains that over-expose; AD is the population
variance of OER across the trust levels τ ∈ {0.1, 0.5, 0.9}, equal weights
(how much authorization moves with trust; 0 when trust does not change what
is released).

A field is *within* A* when it equals an A* path or lies below one
(``patient.age`` is within A* = {``patient``}); field paths follow
:mod:`policy.paths`. Pure functions; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from policy.errors import MeasureError
from policy.paths import canonical_paths, covered_by

__all__ = [
    "AD_TAUS",
    "Chain",
    "attempted_oer",
    "authorization_drift",
    "beyond_mni",
    "exposure_by_field",
    "oer_by",
    "over_exposure_rate",
]

#: The trust levels AD is computed over (the paper's sweep).
AD_TAUS: tuple[float, ...] = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Chain:
    """One interaction chain, as the gate saw it.

    Attributes:
        released: field paths released to the requester.
        a_star: the purpose's MNI field paths (A*).
        offered: field paths the source offered before the gate, or None if
            not observed.
        pair: (requester org, provider org), for grouping; optional.
        tau: effective trust of the chain, for grouping; optional.

    Raises:
        GateError: a path does not follow the field-path grammar.
    """

    released: frozenset[str]
    a_star: frozenset[str]
    offered: frozenset[str] | None = None
    pair: tuple[str, str] | None = None
    tau: float | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "released", canonical_paths(self.released))
        object.__setattr__(self, "a_star", canonical_paths(self.a_star))
        if self.offered is not None:
            object.__setattr__(self, "offered", canonical_paths(self.offered))


def beyond_mni(fields: Iterable[str], a_star: frozenset[str]) -> frozenset[str]:
    """Return the fields of ``fields`` that are not within ``a_star``."""
    return frozenset(f for f in fields if not covered_by(f, a_star))


def _rate(flags: list[bool], what: str) -> float:
    if not flags:
        raise MeasureError(f"{what} of no chains is undefined", metadata={"measure": what})
    return sum(flags) / len(flags)


def over_exposure_rate(chains: Iterable[Chain]) -> float:
    """Return the OER: fraction of chains whose *released* fields go beyond A*, in [0, 1].

    Raises:
        MeasureError: no chains (the rate would be vacuous).
    """
    return _rate([bool(beyond_mni(c.released, c.a_star)) for c in chains], "OER")


def attempted_oer(chains: Iterable[Chain]) -> float:
    """Return the attempted OER: the OER over what sources *offered* before the gate.

    Raises:
        MeasureError: no chains, or a chain has no ``offered`` set.
    """
    flags = []
    for c in chains:
        if c.offered is None:
            raise MeasureError(
                "attempted OER needs the offered fields of every chain",
                metadata={"measure": "attempted_OER"},
            )
        flags.append(bool(beyond_mni(c.offered, c.a_star)))
    return _rate(flags, "attempted_OER")


def oer_by(chains: Iterable[Chain], key: Callable[[Chain], Hashable]) -> dict[Hashable, float]:
    """Return the OER per group (e.g. ``key=lambda c: c.pair`` or ``lambda c: c.tau``)."""
    groups: dict[Hashable, list[Chain]] = {}
    for c in chains:
        groups.setdefault(key(c), []).append(c)
    return {k: over_exposure_rate(v) for k, v in groups.items()}


def exposure_by_field(chains: Iterable[Chain]) -> dict[str, int]:
    """Count, per field beyond A*, the chains that released it."""
    counts: dict[str, int] = {}
    for c in chains:
        for f in beyond_mni(c.released, c.a_star):
            counts[f] = counts.get(f, 0) + 1
    return dict(sorted(counts.items()))


def authorization_drift(oer_by_tau: Mapping[float, float]) -> float:
    """Return AD: the population variance of OER over τ ∈ {0.1, 0.5, 0.9}, equal weights.

    Args:
        oer_by_tau: OER (in [0, 1]) measured at each τ of :data:`AD_TAUS`;
            other τ keys are ignored.

    Returns:
        The variance, in [0, 0.25]; e.g. OERs (0, 0, 1) give 2/9.

    Raises:
        MeasureError: a τ of :data:`AD_TAUS` is missing or an OER is outside [0, 1].
    """
    values = []
    for tau in AD_TAUS:
        match = [v for k, v in oer_by_tau.items() if math.isclose(k, tau, abs_tol=1e-9)]
        if len(match) != 1:
            raise MeasureError(
                f"AD needs exactly one OER at tau={tau}",
                metadata={"measure": "AD", "tau": str(tau)},
            )
        v = match[0]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            raise MeasureError(
                f"OER at tau={tau} must be in [0, 1], got {v!r}",
                metadata={"measure": "AD", "tau": str(tau)},
            )
        values.append(float(v))
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / len(values)
