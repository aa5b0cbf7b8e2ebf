"""Both halves of the Trust-Vulnerability Paradox on real nodes, with the paper's two defenses.

Task success depends on whether the information the task needs (its A*)
arrived; a ``paradox:`` agent under-shares at low τ (withholds an A* field:
the task fails) and over-shares at high τ (OER rises). One provider node per
*row*, all with the same seeded agent, all swept over the same τ in the same run:

* ``none`` — no gate (``skip_gate``): what the agent offers crosses;
* ``gate`` — Accord's MNI gate, the same agent acting at the contract's τ
  (the gate removes the exposure; it cannot add what the agent withheld);
* ``accord`` — Accord's MNI gate, the agent acting at τ_agent = 0.9 whatever
  the contract's τ: behind the gate the organization lets its agent
  collaborate fully, since the node bounds what crosses;
* ``repartition`` — no gate; Sensitive-Information Repartitioning: every
  field outside A* is split into n Shamir shares (k to reconstruct,
  :mod:`interop_tests.tvp.sharing`), one per holder; the requester asks every
  holder, and a value counts as exposed only if it *reconstructs* it from
  the shares it received;
* ``guardian`` — no gate; a Guardian-Agent reviews every offer with its own
  seeded error rates (:class:`interop_tests.tvp.agents.GuardianAgent`).

Per chain the runner records what the requester received, whether the task
succeeded (every A* field in every record from the primary holder), which
fields outside A* it could read (exposure), the messages it took and its
wall time. :func:`summarize_halves` gives per (row, τ): task success, OER
(share of chains with any exposure), attempted OER (offers before the gate),
AD (population variance of OER over τ), messages per chain and p50 latency.

Approvals: the ``accord`` node also holds one contract per τ with an
``approval`` block (:data:`interop_tests.tvp.runner.APPROVAL_RULE`: τ below
0.3, or a released beyond-MNI field of sensitivity ≥ 1; each scene's bait is
optional at τ ≥ 0.7). A workload alternating benign requests (A* only) and
pretext requests (A* + bait) runs through it; :func:`approvals_per_1000`
counts requests the node held (``APPROVAL_PENDING``) and the queue rows
(operator prompts) they made, per 1,000 requests.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interop_tests.tvp.agents import load_paradox_settings
from interop_tests.tvp.runner import (
    Condition,
    TvpLayout,
    approval_contract_id,
    contract_id,
    holder_resource,
    provision_tvp,
)
from interop_tests.tvp.scenes import Scene, load_scenes

__all__ = [
    "DEFAULT_BACKEND",
    "ROWS",
    "AGENT_TAU",
    "ApprovalCount",
    "HalvesChain",
    "HalvesResult",
    "approvals_per_1000",
    "halves_conditions",
    "halves_scenes",
    "provision_halves",
    "run_halves",
    "summarize_halves",
]

DEFAULT_BACKEND = "llama3-8b-agentscope"
#: the rows, in display order
ROWS: tuple[str, ...] = ("none", "gate", "accord", "repartition", "guardian")
#: the τ the ``accord`` row's agent acts at
AGENT_TAU = 0.9


@dataclass(frozen=True)
class HalvesChain:
    """One measured chain of the both-halves sweep.

    Attributes:
        row: ``none`` | ``gate`` | ``accord`` | ``repartition`` | ``guardian``.
        scene / tau: the sub-scene and the contract's τ; effective_tau: the node's.
        a_star: the task's needs (the scene's A*).
        received: fields the requester got from the primary holder.
        offered: fields the provider agent offered there (received ∪ stripped).
        exposed: fields outside A* whose value the requester can read (for
            ``repartition``: reconstructed from ≥ k shares and equal to the truth).
        shares_seen: for ``repartition``, field → holders whose share arrived.
        task_success: every A* field in every record from the primary holder.
        messages: requests the requester sent plus guardian reviews.
        seconds: wall time of the chain.
        denied: a refusal reason, or "".
    """

    row: str
    scene: str
    tau: float
    effective_tau: float
    a_star: frozenset[str]
    received: frozenset[str]
    offered: frozenset[str]
    exposed: frozenset[str]
    task_success: bool
    messages: int
    seconds: float
    shares_seen: tuple[tuple[str, int], ...] = ()
    denied: str = ""


@dataclass(frozen=True)
class ApprovalCount:
    """Approvals at one τ on the ``accord`` node.

    Attributes:
        tau: the approval contract's τ.
        requests: requests sent.
        held: requests the node held for an operator (``APPROVAL_PENDING``).
        prompts: distinct queue rows those requests made (one operator decision each).
        allowed: requests answered at once.
    """

    tau: float
    requests: int
    held: int
    prompts: int
    allowed: int

    @property
    def held_per_1000(self) -> float:
        """Requests held per 1,000 requests."""
        return 1000.0 * self.held / self.requests if self.requests else 0.0

    @property
    def prompts_per_1000(self) -> float:
        """Operator prompts (queue rows) per 1,000 requests."""
        return 1000.0 * self.prompts / self.requests if self.requests else 0.0


@dataclass
class HalvesResult:
    """Everything one both-halves sweep measured."""

    chains: list[HalvesChain]
    approvals: list[ApprovalCount]
    seconds: float
    n: int
    k: int


def halves_conditions(backend: str = DEFAULT_BACKEND, *, seed: int = 7) -> list[Condition]:
    """The five provider conditions (one node each); every agent draws from the same seed."""
    s = load_paradox_settings()
    agent = f"paradox:{backend}@{seed}"
    return [
        Condition(org="tvp-h-none", agent_model=agent, gate=False, label="none"),
        Condition(org="tvp-h-gate", agent_model=agent, gate=True, label="gate"),
        Condition(
            org="tvp-h-accord", agent_model=f"{agent}~{AGENT_TAU}", gate=True, approvals=True, label="accord"
        ),
        Condition(org="tvp-h-repart", agent_model=agent, gate=False, holders=s.n, k=s.k, label="repartition"),
        Condition(org="tvp-h-guard", agent_model=f"guardian:{agent}", gate=False, label="guardian"),
    ]


def halves_scenes() -> tuple[Scene, ...]:
    """The sub-scenes the sweep runs: every scene without a delegation chain (14 of 19)."""
    return tuple(s for s in load_scenes() if s.delegation is None)


def provision_halves(
    root: Path, *, backend: str = DEFAULT_BACKEND, seed: int = 7, records_per_scene: int = 5
) -> TvpLayout:
    """Provision the both-halves federation (a requester and five provider nodes) under ``root``."""
    return provision_tvp(
        root,
        conditions=halves_conditions(backend, seed=seed),
        scenes=halves_scenes(),
        records_per_scene=records_per_scene,
    )


def _exposed_from_shares(
    scene: Scene, truth: dict[str, Any], answers: Sequence[Any], k: int
) -> tuple[frozenset[str], tuple[tuple[str, int], ...]]:
    """Fields the requester reconstructs (correctly) from the shares in ``answers``."""
    from interop_tests.tvp.sharing import ShareError, combine

    exposed: set[str] = set()
    seen: list[tuple[str, int]] = []
    for f in scene.sensitive:
        shares = [r[f] for res in answers if res is not None for r in res.records if f in r]
        holders = len({s.split(":")[1] for s in shares if isinstance(s, str) and s.startswith("sss1:")})
        seen.append((f, holders))
        if holders < k:
            continue
        try:
            if combine(shares) == truth[f]:
                exposed.add(f)
        except ShareError:
            continue
    return frozenset(exposed), tuple(seen)


async def _run_row(
    layout: TvpLayout, cond: Condition, chains_per_scene: int, records_per_scene: int
) -> tuple[list[HalvesChain], list[ApprovalCount]]:
    from federation.client import AgentClient
    from federation.errors import FederationError

    client = AgentClient.from_wallet(layout.wallets["seeker"])
    out: list[HalvesChain] = []
    counts: list[ApprovalCount] = []
    reviews = 1 if cond.agent_model.startswith("guardian:") else 0
    try:
        sess = await client.open_session(cond.org)
        n = 0
        for tau in layout.taus:
            cid = contract_id(cond.org, tau)
            for scene in layout.scenes:
                truth_by_subject = scene.records(records_per_scene)
                for _ in range(chains_per_scene):
                    n += 1
                    subject = f"s-{1 + n % records_per_scene}"
                    answers: list[Any] = []
                    denied = ""
                    t0 = time.perf_counter()
                    for holder in range(1, cond.holders + 1):
                        try:
                            answers.append(
                                await client.request(
                                    sess,
                                    contract_id=cid,
                                    purpose=scene.id,
                                    resource=holder_resource(scene.id, holder),
                                    subject=subject,
                                    fields=list(scene.requested),
                                )
                            )
                        except FederationError as err:
                            answers.append(None)
                            denied = denied or err.reason
                    seconds = time.perf_counter() - t0
                    first = answers[0]
                    records = first.records if first is not None else []
                    a_star = frozenset(scene.a_star)
                    received = frozenset(k for r in records for k in r)
                    stripped = frozenset(first.stripped_fields) if first is not None else frozenset()
                    seen: tuple[tuple[str, int], ...] = ()
                    if cond.holders > 1:
                        exposed, seen = _exposed_from_shares(
                            scene, truth_by_subject[subject], answers, cond.k
                        )
                    else:
                        exposed = received - a_star
                    out.append(
                        HalvesChain(
                            row=cond.label,
                            scene=scene.id,
                            tau=tau,
                            effective_tau=first.effective_trust if first is not None else 0.0,
                            a_star=a_star,
                            received=received,
                            offered=received | stripped,
                            exposed=exposed,
                            task_success=bool(records) and all(a_star <= set(r) for r in records),
                            messages=cond.holders * (1 + reviews),
                            seconds=seconds,
                            shares_seen=seen,
                            denied=denied,
                        )
                    )
        if cond.approvals:
            counts = await _approval_pass(client, sess, layout, cond, chains_per_scene, records_per_scene)
    finally:
        await client.close()
    return out, counts


async def _approval_pass(
    client: Any, sess: Any, layout: TvpLayout, cond: Condition, chains_per_scene: int, records_per_scene: int
) -> list[ApprovalCount]:
    """Benign (A*) and pretext (A* + bait) requests, alternating, under each τ's approval contract."""
    from federation.errors import FederationError

    counts = []
    for tau in layout.taus:
        cid = approval_contract_id(cond.org, tau)
        sent = held = allowed = 0
        rows: set[str] = set()
        for scene in layout.scenes:
            for i in range(2 * chains_per_scene):
                fields = list(scene.a_star) if i % 2 == 0 else list(scene.requested)
                sent += 1
                try:
                    await client.request(
                        sess,
                        contract_id=cid,
                        purpose=scene.id,
                        resource=scene.id,
                        subject=f"s-{1 + i % records_per_scene}",
                        fields=fields,
                    )
                    allowed += 1
                except FederationError as err:
                    if err.reason != "APPROVAL_PENDING":
                        raise RuntimeError(f"approval pass: unexpected refusal {err.reason}") from err
                    held += 1
                    rows.add(str(err.metadata.get("approval_id", "")))
        counts.append(ApprovalCount(tau=tau, requests=sent, held=held, prompts=len(rows), allowed=allowed))
    return counts


async def run_halves(
    layout: TvpLayout, *, chains_per_scene: int = 3, records_per_scene: int = 5
) -> HalvesResult:
    """Run every row at every τ (rows concurrently, chains in order within a row).

    Args:
        layout: from :func:`provision_halves`, started (:class:`~interop_tests.tvp.runner.TvpFederation`).
        chains_per_scene: chains per (sub-scene, τ, row); the approval pass sends twice as many.
        records_per_scene: as provisioned.

    Raises:
        RuntimeError: the approval pass met a refusal other than ``APPROVAL_PENDING``.
    """
    t0 = time.perf_counter()
    parts = await asyncio.gather(
        *(_run_row(layout, c, chains_per_scene, records_per_scene) for c in layout.conditions)
    )
    chains = [c for part, _ in parts for c in part]
    approvals = [a for _, part in parts for a in part]
    rep = next((c for c in layout.conditions if c.holders > 1), None)
    return HalvesResult(
        chains=chains,
        approvals=approvals,
        seconds=time.perf_counter() - t0,
        n=rep.holders if rep else 1,
        k=rep.k if rep else 1,
    )


def summarize_halves(chains: Sequence[HalvesChain]) -> list[dict[str, Any]]:
    """Rows per (row, τ), in :data:`ROWS` order.

    Each: ``{"row", "tau", "chains", "task_success", "oer", "attempted_oer", "ad",
    "messages_per_chain", "latency_ms_p50", "denied"}``; task success and OERs
    are fractions of chains; ``ad`` is the population variance of ``oer`` over
    τ ∈ {0.1, 0.5, 0.9} for the row (None if the sweep did not cover them);
    ``attempted_oer`` counts what the agent offered at the primary holder
    before any gate (for ``repartition``, shares count as offered fields).
    """
    from policy.errors import MeasureError
    from policy.measures import Chain, attempted_oer, authorization_drift, over_exposure_rate

    groups: dict[tuple[str, float], list[HalvesChain]] = {}
    for c in chains:
        groups.setdefault((c.row, c.tau), []).append(c)
    rows = []
    for (row, tau), cs in groups.items():
        mc = [Chain(released=c.a_star | c.exposed, a_star=c.a_star, offered=c.offered, tau=tau) for c in cs]
        rows.append(
            {
                "row": row,
                "tau": tau,
                "chains": len(cs),
                "task_success": sum(c.task_success for c in cs) / len(cs),
                "oer": over_exposure_rate(mc),
                "attempted_oer": attempted_oer(mc),
                "ad": None,
                "messages_per_chain": sum(c.messages for c in cs) / len(cs),
                "latency_ms_p50": 1000.0 * statistics.median(c.seconds for c in cs),
                "denied": sum(1 for c in cs if c.denied),
            }
        )
    for r in rows:
        try:
            r["ad"] = authorization_drift({x["tau"]: x["oer"] for x in rows if x["row"] == r["row"]})
        except MeasureError:
            r["ad"] = None
    order = {name: i for i, name in enumerate(ROWS)}
    rows.sort(key=lambda r: (order.get(r["row"], 99), r["tau"]))
    return rows


def approvals_per_1000(counts: Sequence[ApprovalCount]) -> list[dict[str, Any]]:
    """Rows ``{"tau", "requests", "held", "prompts", "allowed", "held_per_1000", "prompts_per_1000"}``."""
    return [
        {
            "tau": a.tau,
            "requests": a.requests,
            "held": a.held,
            "prompts": a.prompts,
            "allowed": a.allowed,
            "held_per_1000": a.held_per_1000,
            "prompts_per_1000": a.prompts_per_1000,
        }
        for a in sorted(counts, key=lambda a: a.tau)
    ]
