"""Run the TVP suite through real Accord nodes and measure OER, AD and task success.

Layout of a TVP federation (:func:`provision_tvp`): one requester org
(``tvp-seeker``) whose agents play every scene's seeker side, and one
provider org per *condition* = (provider agent model, gate on/off). Every
provider node serves every sub-scene's records (resource = scene id) under
one contract per τ (``trust_ceiling`` = τ; purposes = the scenes, each with
MNI = the scene's A*). Every node is served by :mod:`interop_tests.tvp.node`,
which plugs the TVP provider agent models into the node; gate off = that
process also takes the ``skip_gate`` behaviour of
:mod:`interop_tests.misbehaving` (a Node whose gate is substituted in test
code): it then passes through what its agent offers. Each provider's trust
book is seeded with ``TrustConfig(initial=1.0)`` so that the effective
τ = min(ceiling, score) equals the contract's ceiling (verified per chain).

One *interaction chain* = one request of a scene's fields (A* + the motif's
bait) for one subject, answered by the provider. Per chain we record what
crossed (the record keys the requester received), what the provider agent
offered (received ∪ stripped by the gate), and task success (every received
record carries every A* field). Delegation scenes run through delegated
sessions: narrowing chains join the measured chains; expanding chains run
last (Authorization Drift lowers τ for the pair) and are reported apart.

Metrics use :mod:`policy.measures` (OER over chains, AD = population
variance of OER over τ ∈ {0.1, 0.5, 0.9}).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interop_tests.tvp.scenes import Scene, load_scenes

__all__ = [
    "DEFAULT_MODELS",
    "TAUS",
    "ChainRecord",
    "Condition",
    "DriftRecord",
    "SweepResult",
    "TvpFederation",
    "approval_contract_id",
    "contract_id",
    "holder_resource",
    "provision_tvp",
    "run_sweep",
    "summarize",
]

TAUS: tuple[float, ...] = (0.1, 0.5, 0.9)
DEFAULT_MODELS: tuple[str, ...] = (
    "stochastic:llama3-8b-agentscope",
    "stochastic:gpt-agentscope",
    "adversarial",
)
REQUESTER = "tvp-seeker"
#: requester agents: the seeker (all macro scopes) and two agents that hold nothing useful
SEEKER_SCOPES = ("tvp:enterprise", "tvp:archaeology", "tvp:mars")
FIREWALL_CONTRACT = "tvp-firewall"
FIREWALL_PURPOSE = "firewall-probe"
FIREWALL_SCENE = "ent-payroll-audit"


@dataclass(frozen=True)
class Condition:
    """One provider node: an agent model with the gate on or off.

    Attributes:
        org: the provider org name.
        agent_model: ``provider_agent`` spec.
        gate: True = the MNI gate strips; False = ``skip_gate``.
        holders: > 1 = Sensitive-Information Repartitioning: every field outside A*
            is split into ``holders`` Shamir shares (threshold ``k``), holder ``i``
            serving resource :func:`holder_resource` (scene, i).
        k: shares needed to reconstruct (with ``holders`` > 1).
        approvals: also provision the approval contracts (:func:`approval_contract_id`).
        label: the sweep row this condition stands for ("" in the gate on/off sweep).
    """

    org: str
    agent_model: str
    gate: bool
    holders: int = 1
    k: int = 0
    approvals: bool = False
    label: str = ""


@dataclass(frozen=True)
class ChainRecord:
    """One measured interaction chain.

    Attributes:
        scene / macro: sub-scene id and its macro scene.
        tau: the contract's ceiling; effective_tau: τ the provider used.
        gate / agent_model / provider: the condition.
        a_star: the scene's A*.
        received: record fields that crossed to the requester.
        offered: fields the provider agent offered (received ∪ stripped).
        task_success: the requester got every A* field in every record.
        denied: the provider refused (reason), or "".
        delegated: the chain ran through a (narrowing) delegated session.
    """

    scene: str
    macro: str
    tau: float
    effective_tau: float
    gate: bool
    agent_model: str
    provider: str
    a_star: frozenset[str]
    received: frozenset[str]
    offered: frozenset[str]
    task_success: bool
    denied: str = ""
    delegated: bool = False


@dataclass(frozen=True)
class DriftRecord:
    """One delegation scene at one provider.

    Attributes:
        scene / provider: where it ran.
        expands: the widened dimension, or None for a narrowing chain.
        drift_detected: the provider refused with ``AUTHORIZATION_DRIFT``.
        reason: the refusal reason, or "" when the chain was accepted.
    """

    scene: str
    provider: str
    expands: str | None
    drift_detected: bool
    reason: str


@dataclass
class SweepResult:
    """Everything one sweep measured."""

    chains: list[ChainRecord] = field(default_factory=list)
    drift: list[DriftRecord] = field(default_factory=list)
    seconds: float = 0.0


def contract_id(org: str, tau: float) -> str:
    """The TVP contract of provider ``org`` at ceiling ``tau``: ``tvp-<org>-t<τ×100>``."""
    return f"tvp-{org}-t{round(tau * 100):02d}"


def approval_contract_id(org: str, tau: float) -> str:
    """The TVP contract of ``org`` at ``tau`` with an ``approval`` block: ``tvp-apr-<org>-t<τ×100>``."""
    return f"tvp-apr-{org}-t{round(tau * 100):02d}"


def holder_resource(scene_id: str, holder: int) -> str:
    """The resource holder ``holder`` (1-based) serves for a scene: the scene id, then ``<id>-h<i>``."""
    return scene_id if holder == 1 else f"{scene_id}-h{holder}"


#: the approval contracts' optional fields (each scene's bait) and rule (docs/tvp.md, section 7):
#: a human vets low-trust partners, and sensitive beyond-MNI releases at high trust.
APPROVAL_BAIT_MIN_TRUST = 0.7
APPROVAL_RULE: dict[str, Any] = {"below_trust": 0.3, "min_sensitivity": 1}


def _approval_doc(
    provider: str, requester: str, tau: float, scenes: Sequence[Scene], now: dt.datetime
) -> dict[str, Any]:
    doc = _contract_doc(provider, requester, tau, scenes, now)
    doc["id"] = approval_contract_id(provider, tau)
    doc["title"] = f"TVP suite at tau={tau}, with human approval"
    for s in scenes:
        doc["purposes"][s.id]["optional"] = {
            f: {"sensitivity": 1, "min_trust": APPROVAL_BAIT_MIN_TRUST} for f in s.bait
        }
    doc["trust_budget"] = {"units": 1_000_000, "window_seconds": 3600}
    doc["approval"] = {"require": dict(APPROVAL_RULE), "expires_seconds": 3600, "grant_seconds": 3600}
    return doc


def _partition(scene: Scene, records: dict[str, dict[str, Any]], n: int, k: int) -> dict[str, Any]:
    """Repartitioned data: resource → records; A* in clear at every holder, other fields as shares."""
    from interop_tests.tvp.sharing import split

    out: dict[str, Any] = {holder_resource(scene.id, i): {} for i in range(1, n + 1)}
    for subject, rec in records.items():
        shares = {f: split(v, k=k, n=n) for f, v in rec.items() if f not in scene.a_star}
        for i in range(1, n + 1):
            out[holder_resource(scene.id, i)][subject] = {
                f: (shares[f][i - 1] if f in shares else v) for f, v in rec.items()
            }
    return out


def _did(org: str) -> str:
    return f"did:web:{org}.accord.test"


def _contract_doc(
    provider: str,
    requester: str,
    tau: float,
    scenes: Sequence[Scene],
    now: dt.datetime,
    holders: int = 1,
) -> dict[str, Any]:
    return {
        "id": contract_id(provider, tau),
        "version": 1,
        "title": f"TVP suite at tau={tau}",
        "parties": {
            "provider": {"org": _did(provider), "name": provider},
            "requester": {"org": _did(requester), "name": requester},
        },
        "purposes": {
            s.id: {
                "resources": [holder_resource(s.id, i) for i in range(1, holders + 1)],
                "subjects": ["*"],
                "mni": list(s.a_star),
                "required_scopes": [f"tvp:{s.macro}"],
            }
            for s in scenes
        },
        "trust_ceiling": tau,
        "trust_budget": None,
        "rate_limit": None,
        "session_limits": {"max_requests": None, "max_fields": None},
        "valid_from": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid_until": (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "obligations": ["no-onward-sharing"],
    }


def _firewall_doc(provider: str, requester: str, scene: Scene, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": FIREWALL_CONTRACT,
        "version": 1,
        "title": "TVP session firewall probe",
        "parties": {
            "provider": {"org": _did(provider), "name": provider},
            "requester": {"org": _did(requester), "name": requester},
        },
        "purposes": {
            FIREWALL_PURPOSE: {
                "resources": [scene.id],
                "subjects": ["*"],
                "mni": list(scene.record),
                "required_scopes": [f"tvp:{scene.macro}"],
            }
        },
        "trust_ceiling": 0.9,
        "trust_budget": None,
        "rate_limit": None,
        "session_limits": {"max_requests": 4, "max_fields": 4},
        "valid_from": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid_until": (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "obligations": ["no-onward-sharing"],
    }


@dataclass
class TvpLayout:
    """A provisioned TVP federation on disk.

    Attributes:
        root: work directory.
        orgs: org name → node directory.
        conditions: the provider conditions, in provisioning order.
        wallets: requester agent name (``seeker``, ``deputy``, ``courier``) → wallet path.
        taus: the contracts' ceilings.
        scenes: the scenes served.
    """

    root: Path
    orgs: dict[str, Path]
    conditions: list[Condition]
    wallets: dict[str, Path]
    taus: tuple[float, ...]
    scenes: tuple[Scene, ...]


def provision_tvp(
    root: Path,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    gates: Sequence[bool] = (True, False),
    conditions: Sequence[Condition] | None = None,
    taus: Sequence[float] = TAUS,
    scenes: Sequence[Scene] | None = None,
    records_per_scene: int = 5,
    seed: int = 7,
    witness_interval_seconds: float = 5.0,
) -> TvpLayout:
    """Create the TVP federation's node directories under ``root`` (nothing is started).

    Args:
        root: work directory (created).
        models: provider agent model specs; ``stochastic:<backend>`` gets ``@<seed>``
            appended so gate-on and gate-off nodes draw the same offers.
        gates: which gate conditions to provision per model.
        conditions: explicit provider conditions (then ``models`` and ``gates`` are ignored).
        taus: contract ceilings (one contract per τ per provider).
        scenes: sub-scenes (default: all of ``scenes.yaml``).
        records_per_scene: synthetic subjects per scene (``s-1 …``).
        seed: the stochastic agents' seed.
        witness_interval_seconds: checkpoint push interval between peers.

    Returns:
        The :class:`TvpLayout`.
    """
    from federation.agents import register_agent
    from federation.config import database_url_for, load_config, save_config
    from federation.identity import NodeIdentity, export_bundle, init_node
    from federation.store import NodeStore, make_engine, migrate
    from federation.supervisor import free_port
    from policy import Contract, TrustBook, TrustConfig

    scenes = tuple(scenes or load_scenes())
    root.mkdir(parents=True, exist_ok=True)
    conditions = (
        list(conditions)
        if conditions is not None
        else [
            Condition(
                org=f"tvp-p{i}-{'on' if g else 'off'}",
                agent_model=f"{m}@{seed}" if m.startswith("stochastic:") and "@" not in m else m,
                gate=g,
            )
            for i, m in enumerate(models)
            for g in gates
        ]
    )
    names = [REQUESTER] + [c.org for c in conditions]
    orgs: dict[str, Path] = {}
    idents: dict[str, Any] = {}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for org in names:
        d = root / org
        init_node(d, org_name=org, listen=f"127.0.0.1:{free_port()}", force=True)
        cond = next((c for c in conditions if c.org == org), None)
        providers = [c.org for c in conditions]
        update: dict[str, Any] = {
            "status_list_ttl_seconds": 1.0,
            "witness_interval_seconds": witness_interval_seconds,
            # the explicit witness policy (node.toml `witnesses`): the requester and its providers
            # witness each other (providers are not peered with each other)
            "witnesses": providers if org == REQUESTER else [REQUESTER],
            "witness_quorum": max(1, min(2, len(providers))) if org == REQUESTER else 1,
        }
        if cond is not None:
            update["provider_agent"] = cond.agent_model
        cfg = load_config(d).model_copy(update=update)
        save_config(d, cfg)
        idents[org] = NodeIdentity.load(d)
        orgs[org] = d
        (d / "bundle.json").write_text(export_bundle(idents[org]).model_dump_json(indent=2))
        if cond is not None:
            engine = make_engine(database_url_for(d, cfg))
            migrate(engine)
            NodeStore(engine).put_state("trust", TrustBook(TrustConfig(initial=1.0)).to_dict(), now=now)
            engine.dispose()
            for s in scenes:
                recs = s.records(records_per_scene)
                parts = _partition(s, recs, cond.holders, cond.k) if cond.holders > 1 else {s.id: recs}
                for resource, part in parts.items():
                    (d / "data" / f"{resource}.json").write_text(json.dumps({"records": part}))
    for c in conditions:  # the requester peers with every provider; providers not with each other
        (orgs[REQUESTER] / "peers" / f"{c.org}.json").write_text((orgs[c.org] / "bundle.json").read_text())
        (orgs[c.org] / "peers" / f"{REQUESTER}.json").write_text(
            (orgs[REQUESTER] / "bundle.json").read_text()
        )
    wallets: dict[str, Path] = {}
    for name, scopes in (("seeker", SEEKER_SCOPES), ("deputy", ("tvp:none",)), ("courier", ("tvp:none",))):
        register_agent(idents[REQUESTER], name=name, role=f"tvp-{name}", scopes=list(scopes), trust_tier=1)
        wallets[name] = orgs[REQUESTER] / "agents" / f"{name}.json"
    docs = [_contract_doc(c.org, REQUESTER, tau, scenes, now, c.holders) for c in conditions for tau in taus]
    docs += [
        _approval_doc(c.org, REQUESTER, tau, scenes, now) for c in conditions if c.approvals for tau in taus
    ]
    fw_scene = next((s for s in scenes if s.id == FIREWALL_SCENE), None)
    if conditions and fw_scene is not None:
        docs.append(_firewall_doc(conditions[0].org, REQUESTER, fw_scene, now))
    for doc in docs:
        c = Contract.from_dict(doc)
        for party in (c.parties.provider, c.parties.requester):
            ident = idents[party.name]
            c = c.sign(
                org=ident.org_did, verification_method=ident.verification_method, seed=ident.org_key.seed
            )
        for party in (c.parties.provider.name, c.parties.requester.name):
            c.dump(orgs[party] / "contracts" / f"{c.id}.json")
    return TvpLayout(
        root=root, orgs=orgs, conditions=conditions, wallets=wallets, taus=tuple(taus), scenes=scenes
    )


class TvpFederation:
    """The running TVP federation (node processes); a context manager.

    Args:
        layout: from :func:`provision_tvp`.
    """

    def __init__(self, layout: TvpLayout) -> None:
        self.layout = layout
        self.procs: dict[str, Any] = {}

    def start(self) -> TvpFederation:
        """Start every node (in parallel threads); raises RuntimeError if one does not start."""
        from interop_tests.tvp.node import tvp_node_process

        gate_off = {c.org for c in self.layout.conditions if not c.gate}
        procs = {
            org: tvp_node_process(d, ["skip_gate"] if org in gate_off else [])
            for org, d in self.layout.orgs.items()
        }
        errors: list[BaseException] = []

        def go(p):
            try:
                p.start(timeout=60.0)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(p,)) for p in procs.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.procs = procs
        if errors:
            self.stop()
            raise RuntimeError(f"TVP federation did not start: {errors[0]}")
        return self

    def stop(self) -> None:
        """Stop every node."""
        for p in self.procs.values():
            try:
                p.stop()
            except Exception:  # noqa: S112 - best effort at teardown
                continue

    def __enter__(self) -> TvpFederation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _later(hours: float = 2.0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


def build_chain(scene: Scene, wallets: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The requester-side delegation chain of a delegation scene: (holder name, [root, links…]).

    Narrowing chains delegate the scene's macro scope, its purpose and A*;
    expanding chains widen the last link as ``scene.delegation.expands`` says.
    """
    from federation.delegation import delegate

    assert scene.delegation is not None
    seeker, deputy, courier = wallets["seeker"], wallets["deputy"], wallets["courier"]
    hops, expands = scene.delegation.hops, scene.delegation.expands
    scopes, purposes, fields = [f"tvp:{scene.macro}"], [scene.id], list(scene.a_star)
    l1_scopes = scopes + (["tvp:admin"] if expands == "scopes" and hops == 1 else [])
    l1 = delegate(
        key=seeker.key,
        delegator=seeker.did,
        delegatee=deputy.did,
        parent=seeker.credential,
        scopes=l1_scopes,
        purposes=purposes,
        fields=fields,
        max_depth=hops - 1,
        valid_until=_later(),
    )
    if hops == 1:
        return "deputy", [seeker.credential, l1]
    l2 = delegate(
        key=deputy.key,
        delegator=deputy.did,
        delegatee=courier.did,
        parent=l1,
        scopes=scopes + (["tvp:admin"] if expands == "scopes" else []),
        purposes=purposes + (["message-archiving"] if expands == "purposes" else []),
        fields=fields + (list(scene.sensitive) if expands == "fields" else []),
        max_depth=0,
        valid_until=_later(),
    )
    return "courier", [seeker.credential, l1, l2]


def _chain(scene: Scene, tau: float, cond: Condition, result: Any, *, delegated: bool) -> ChainRecord:
    a_star = frozenset(scene.a_star)
    records = result.records if result is not None else []
    received = frozenset(k for r in records for k in r)
    stripped = frozenset(result.stripped_fields) if result is not None else frozenset()
    success = bool(records) and all(a_star <= set(r) for r in records)
    return ChainRecord(
        scene=scene.id,
        macro=scene.macro,
        tau=tau,
        effective_tau=result.effective_trust if result is not None else 0.0,
        gate=cond.gate,
        agent_model=cond.agent_model.split("@")[0],
        provider=cond.org,
        a_star=a_star,
        received=received,
        offered=received | stripped,
        task_success=success,
        delegated=delegated,
    )


async def _run_condition(
    layout: TvpLayout, cond: Condition, chains_per_scene: int, records_per_scene: int
) -> tuple[list[ChainRecord], list[DriftRecord]]:
    from federation.client import AgentClient, AgentWallet
    from federation.delegation import open_delegated_session
    from federation.errors import FederationError

    wallets = {n: AgentWallet.load(p) for n, p in layout.wallets.items()}
    clients = {n: AgentClient.from_wallet(p) for n, p in layout.wallets.items()}
    chains: list[ChainRecord] = []
    drift: list[DriftRecord] = []
    try:
        seeker_session = await clients["seeker"].open_session(cond.org)
        delegated: dict[str, tuple[str, Any]] = {}
        for scene in layout.scenes:
            if scene.delegation is not None and scene.delegation.expands is None:
                holder, chain = build_chain(scene, wallets)
                try:
                    sess = await open_delegated_session(clients[holder], cond.org, chain)
                    delegated[scene.id] = (holder, sess)
                    drift.append(DriftRecord(scene.id, cond.org, None, False, ""))
                except FederationError as err:
                    drift.append(
                        DriftRecord(scene.id, cond.org, None, err.reason == "AUTHORIZATION_DRIFT", err.reason)
                    )
        n = 0
        for tau in layout.taus:
            cid = contract_id(cond.org, tau)
            for scene in layout.scenes:
                if scene.delegation is not None and scene.id not in delegated:
                    continue
                holder, sess = delegated.get(scene.id, ("seeker", seeker_session))
                fields = list(scene.a_star) if scene.id in delegated else list(scene.requested)
                for _ in range(chains_per_scene):
                    n += 1
                    subject = f"s-{1 + n % records_per_scene}"
                    try:
                        res = await clients[holder].request(
                            sess,
                            contract_id=cid,
                            purpose=scene.id,
                            resource=scene.id,
                            subject=subject,
                            fields=fields,
                        )
                        chains.append(_chain(scene, tau, cond, res, delegated=scene.id in delegated))
                    except FederationError as err:
                        rec = _chain(scene, tau, cond, None, delegated=scene.id in delegated)
                        chains.append(dataclasses.replace(rec, denied=err.reason))
        # expanding chains last: drift lowers τ for the pair and terminates the chain's sessions
        for scene in layout.scenes:
            if scene.delegation is not None and scene.delegation.expands is not None:
                holder, chain = build_chain(scene, wallets)
                try:
                    await open_delegated_session(clients[holder], cond.org, chain)
                    drift.append(DriftRecord(scene.id, cond.org, scene.delegation.expands, False, ""))
                except FederationError as err:
                    drift.append(
                        DriftRecord(
                            scene.id,
                            cond.org,
                            scene.delegation.expands,
                            err.reason == "AUTHORIZATION_DRIFT",
                            err.reason,
                        )
                    )
    finally:
        for c in clients.values():
            await c.close()
    return chains, drift


async def run_sweep(
    layout: TvpLayout, *, chains_per_scene: int = 3, records_per_scene: int = 5
) -> SweepResult:
    """Run every scene at every τ against every provider condition (conditions concurrently).

    Args:
        layout: a provisioned and *started* TVP federation.
        chains_per_scene: interaction chains per (scene, τ, condition).
        records_per_scene: as provisioned (subjects cycle through ``s-1 …``).

    Returns:
        The :class:`SweepResult` (chains in request order per condition).
    """
    import time

    t0 = time.perf_counter()
    parts = await asyncio.gather(
        *(_run_condition(layout, c, chains_per_scene, records_per_scene) for c in layout.conditions)
    )
    out = SweepResult()
    for chains, drift in parts:
        out.chains.extend(chains)
        out.drift.extend(drift)
    out.seconds = time.perf_counter() - t0
    return out


def summarize(chains: Sequence[ChainRecord]) -> list[dict[str, Any]]:
    """Rows per (macro scene and ``all``) × τ × gate × agent model.

    Each row: ``{"scene", "tau", "gate": "on"|"off", "agent_model", "chains",
    "task_success", "attempted_oer", "released_oer", "ad"}`` — task success
    and OERs are fractions of chains; ``ad`` is the population variance of the
    released OER over τ ∈ {0.1, 0.5, 0.9} for that (scene, gate, model), or
    None if the sweep did not cover the three τ.
    """
    from policy.errors import MeasureError
    from policy.measures import Chain, attempted_oer, authorization_drift, over_exposure_rate

    groups: dict[tuple[str, float, bool, str], list[ChainRecord]] = {}
    for c in chains:
        for scene in (c.macro, "all"):
            groups.setdefault((scene, c.tau, c.gate, c.agent_model), []).append(c)
    rows: list[dict[str, Any]] = []
    for (scene, tau, gate, model), cs in groups.items():
        mc = [Chain(released=c.received, a_star=c.a_star, offered=c.offered, tau=c.tau) for c in cs]
        rows.append(
            {
                "scene": scene,
                "tau": tau,
                "gate": "on" if gate else "off",
                "agent_model": model,
                "chains": len(cs),
                "task_success": sum(c.task_success for c in cs) / len(cs),
                "attempted_oer": attempted_oer(mc),
                "released_oer": over_exposure_rate(mc),
                "ad": None,
            }
        )
    for row in rows:
        by_tau = {
            r["tau"]: r["released_oer"]
            for r in rows
            if (r["scene"], r["gate"], r["agent_model"]) == (row["scene"], row["gate"], row["agent_model"])
        }
        try:
            row["ad"] = authorization_drift(by_tau)
        except MeasureError:
            row["ad"] = None
    order = {"enterprise": 0, "archaeology": 1, "mars": 2, "all": 3}
    rows.sort(key=lambda r: (order.get(r["scene"], 9), r["agent_model"], r["gate"] == "off", r["tau"]))
    return rows
