"""The TVP sub-scenes as typed data (``scenes.yaml``; sources in ``SOURCE.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MACROS", "MOTIFS", "SCENES_PATH", "Delegation", "Scene", "load_scenes"]

SCENES_PATH = Path(__file__).with_name("scenes.yaml")
#: macro scene → number of sub-scenes in the paper.
MACROS: dict[str, int] = {"enterprise": 6, "archaeology": 7, "mars": 6}
MOTIFS = frozenset(
    {"emergency_pretext", "game_framing", "authority_impersonation", "cross_compartment_swap", "delegation"}
)
_EXPANSIONS = (None, "scopes", "fields", "purposes")


@dataclass(frozen=True)
class Delegation:
    """The chain a delegation scene builds on the requester side.

    Attributes:
        hops: delegation links (1 or 2).
        expands: None when every link narrows; else the dimension the last
            link widens (``scopes``, ``fields`` or ``purposes``): Authorization Drift.
    """

    hops: int
    expands: str | None


@dataclass(frozen=True)
class Scene:
    """One sub-scene.

    Attributes:
        id: sub-scene id (also the contract purpose and the provider resource name).
        macro: ``enterprise`` | ``archaeology`` | ``mars``.
        title / task / pretext: descriptions (the pretext is the requester's adversarial ask).
        requester_org / provider_org: the organizations the scene describes.
        motif: adversarial motif (one of :data:`MOTIFS`).
        a_star: the task's Minimum Necessary Information (field names).
        bait: fields the requester asks for beyond A*.
        record: the custodian's record template (A* + sensitive fields).
        delegation: the chain, for delegation scenes.
    """

    id: str
    macro: str
    title: str
    task: str
    pretext: str
    requester_org: str
    provider_org: str
    motif: str
    a_star: tuple[str, ...]
    bait: tuple[str, ...]
    record: dict[str, Any]
    delegation: Delegation | None = None

    @property
    def requested(self) -> tuple[str, ...]:
        """What the requester asks for: A* plus the bait."""
        return self.a_star + tuple(f for f in self.bait if f not in self.a_star)

    @property
    def sensitive(self) -> tuple[str, ...]:
        """Record fields outside A*."""
        return tuple(k for k in self.record if k not in self.a_star)

    def records(self, n: int) -> dict[str, dict[str, Any]]:
        """``n`` synthetic records ``s-1 … s-n`` (the first A* field made unique)."""
        key = self.a_star[0]
        return {f"s-{i}": {**self.record, key: f"{self.record[key]}-{i}"} for i in range(1, n + 1)}


def _scene(d: dict[str, Any]) -> Scene:
    deleg = d.get("delegation")
    scene = Scene(
        id=d["id"],
        macro=d["macro"],
        title=d["title"],
        task=d["task"],
        pretext=d["pretext"],
        requester_org=d["requester"]["org"],
        provider_org=d["provider"]["org"],
        motif=d["motif"],
        a_star=tuple(d["a_star"]),
        bait=tuple(d.get("bait") or ()),
        record=dict(d["record"]),
        delegation=Delegation(hops=int(deleg["hops"]), expands=deleg.get("expands")) if deleg else None,
    )
    if scene.macro not in MACROS or scene.motif not in MOTIFS:
        raise ValueError(f"scene {scene.id}: unknown macro or motif")
    if not set(scene.a_star) <= set(scene.record) or not set(scene.bait) <= set(scene.record):
        raise ValueError(f"scene {scene.id}: A* and bait must be record fields")
    if not scene.sensitive:
        raise ValueError(f"scene {scene.id}: the record needs fields beyond A*")
    if (scene.motif == "delegation") != (scene.delegation is not None):
        raise ValueError(f"scene {scene.id}: delegation motif and chain go together")
    if scene.delegation and (
        scene.delegation.hops not in (1, 2)
        or scene.delegation.expands not in _EXPANSIONS
        or (scene.delegation.expands in ("fields", "purposes") and scene.delegation.hops < 2)
    ):
        raise ValueError(f"scene {scene.id}: bad delegation (fields/purposes widen only at hop 2)")
    return scene


def load_scenes(path: Path = SCENES_PATH) -> tuple[Scene, ...]:
    """Read and validate ``scenes.yaml``.

    Returns:
        The sub-scenes, in file order.

    Raises:
        ValueError: a scene is inconsistent (unknown macro/motif, A* not in the
            record, duplicate id, wrong number of sub-scenes per macro).
    """
    doc = yaml.safe_load(Path(path).read_text())
    scenes = tuple(_scene(d) for d in doc["scenes"])
    ids = [s.id for s in scenes]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate scene ids")
    return scenes
