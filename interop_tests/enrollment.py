"""Enrolling the conformance kit at a node, and removing it again.

The conformance and security suites act as a peer organization of their own,
the **tester** (org name ``interop``). Its node directory (keys, CA, TLS
client certificate, four agents) lives with the kit, by default in
``<app dir>/conformance-tester`` (:func:`default_tester_dir`; ``$ACCORD_INTEROP_TESTER``
overrides), and is created on first use (:func:`ensure_tester`). The tester
runs no node: during a run the suite serves only its status lists
(:mod:`interop_tests.status_server`).

:func:`enroll` is the operator's side, run on the node directory under test.
It adds exactly these, and records them in ``NODE_DIR/interop-enrollment.json``
(the manifest :func:`unenroll` removes them by):

* the tester's peer bundle, pinned as ``peers/interop.json``. The bundle
  carries **no witness key**: the tester runs no witness, so it is never
  counted towards the node's witness quorum (``witness_quorum``, C2SP
  tlog-policy) and the node never submits checkpoints to it;
* the conformance contract ``interop-<org>`` (signed by the node and the
  tester; purposes ``conformance``, ``restricted``, ``conformance-budget``,
  ``conformance-stats``), and ``interop-unsigned-<org>``, the same terms
  signed by the node only, which the node must refuse (``CONTRACT_UNSIGNED``);
* the resource ``data/interop-records.json`` (three synthetic records);
* the dataset ``interop-stats`` (20 synthetic records) in the node database;
* for the requester role (``accord interop run --role requester``): the bundles of
  two more tester organizations (*personas*, in ``<tester>/personas/``, no witness
  key either), ``interop-fork`` (a provider that equivocates: once a node has caught
  it, the node refuses its receipts for good, so it has a log of its own) and
  ``interop-alien`` (a provider that speaks nothing in common with v1: negotiation
  refusals), pinned as ``peers/<name>.json``; and a **tester agent** registered at the
  node (``interop-tester-<hex>``, scope ``interop:read``) whose wallet is copied to
  ``<tester>/targets/<org>-agent.json``: the suite drives the node's ``AgentService``
  with it. :func:`unenroll` revokes that agent (its row stays, as every agent's does)
  and removes its wallet file.

It refuses (one line, nothing written) when any of these names is taken, so
it never replaces or weakens anything the node already has. A running node
is asked to reload (AdminService ``Reload``). :func:`unenroll` removes what
the manifest lists. What the suite did while enrolled stays where the
protocol puts it: the disclosures to the tester in the node's append-only
ledger, the tester's trust and budget rows, the highest contract version put
in force (so a later enrollment registers a higher version, see
``docs/contracts.md``, "Versions only move forward").
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from federation.errors import ConfigError

#: the tester organization's name (its DID is ``did:web:interop.accord.test``)
TESTER_ORG = "interop"
#: manifest of an enrollment, in the node directory
MANIFEST = "interop-enrollment.json"
#: the tester's agents: name -> (credential carries a status entry, status bits set)
TESTER_AGENTS: dict[str, tuple[bool, dict[str, bool]]] = {
    "tester": (False, {}),
    "tester-2": (False, {}),
    "tester-revoked": (True, {"revoked": True}),
    "tester-suspended": (True, {"suspended": True}),
}
TESTER_SCOPES = ["interop:read"]
#: the other tester organizations (requester role): name -> what it plays
PERSONAS: dict[str, str] = {
    "interop-fork": "a provider that equivocates (two roots at one size)",
    "interop-alien": "a provider that speaks nothing in common with v1 (negotiation)",
}


def persona_dir(tester_dir: Path, name: str) -> Path:
    """The node directory of persona ``name`` (the tester itself for ``interop``)."""
    return tester_dir if name == TESTER_ORG else tester_dir / "personas" / name


def agent_wallet_path(tester_dir: Path, node_org: str) -> Path:
    """Where enrollment keeps the wallet of the tester agent registered at ``node_org``."""
    return tester_dir / "targets" / f"{node_org}-agent.json"


def default_tester_dir() -> Path:
    """Where the kit keeps its tester organization: ``$ACCORD_INTEROP_TESTER``, else the app dir."""
    env = os.environ.get("ACCORD_INTEROP_TESTER")
    if env:
        return Path(env).expanduser().resolve()
    import typer

    return Path(typer.get_app_dir("accord")) / "conformance-tester"


def contract_ids(node_org: str) -> tuple[str, str]:
    """(conformance contract id, unsigned contract id) at the node ``node_org``."""
    return f"interop-{node_org}", f"interop-unsigned-{node_org}"


@dataclass(frozen=True)
class Item:
    """One thing an enrollment added to a node.

    Attributes:
        kind: ``peer``, ``contract``, ``resource``, ``dataset`` or ``agent``.
        name: the peer DID, contract id, resource name, dataset name or agent name.
        path: the file, relative to the node directory ("" for a dataset, which
            lives in the node database).
        detail: what it is (fingerprint, signers, record count).

    """

    kind: Literal["peer", "contract", "resource", "dataset", "agent"]
    name: str
    path: str
    detail: str


@dataclass(frozen=True)
class Enrollment:
    """The result of :func:`enroll`.

    Attributes:
        node_dir: the node directory.
        tester_dir: the tester organization's directory.
        node_bundle: where the node's peer bundle was written (for ``interop run --bundle``).
        target: the node's ``HOST:PORT`` (``advertise`` or ``listen``).
        items: what was added.
        reload_note: what the running node said (None when no node runs).

    """

    node_dir: Path
    tester_dir: Path
    node_bundle: Path
    target: str
    items: list[Item]
    reload_note: str | None


def ensure_tester(tester_dir: Path, *, listen: str | None = None, advertise: str = "") -> Any:
    """Load the tester organization from ``tester_dir``, creating it on first use.

    A new tester gets fresh keys, CA and certificates (``node init`` with org
    name ``interop``) and the agents of :data:`TESTER_AGENTS`; the revoked
    and suspended ones have their status bits set. The suite serves the
    tester's status lists on ``listen`` (default a free 127.0.0.1 port: a node
    on this machine) and the tester's bundle names ``advertise`` (default
    ``listen``): for a node on another machine give an address it can reach,
    e.g. ``listen="0.0.0.0:7499", advertise="tester.example.org:7499"`` (the
    tester's TLS certificate names that host).

    Returns:
        The tester's :class:`federation.identity.NodeIdentity`.

    Raises:
        ConfigError: ``tester_dir`` holds a node that is not the kit's tester
            (another org name, or agents missing), or one made for other
            ``listen`` / ``advertise`` addresses than those given.

    """
    from federation.agents import open_store, register_agent
    from federation.identity import NodeIdentity, init_node
    from federation.supervisor import free_port

    if not (tester_dir / "node.toml").exists():
        init_node(
            tester_dir, org_name=TESTER_ORG, listen=listen or f"127.0.0.1:{free_port()}", advertise=advertise
        )
        ident = NodeIdentity.load(tester_dir)
        store = open_store(ident)
        for name, (with_status, bits) in TESTER_AGENTS.items():
            register_agent(
                ident,
                name=name,
                role="conformance-tester",
                scopes=TESTER_SCOPES,
                trust_tier=1,
                with_status=with_status,
                valid_days=365,
            )
            if bits:
                store.set_status(name, **bits)
    for name in PERSONAS:
        pdir = persona_dir(tester_dir, name)
        if not (pdir / "node.toml").exists():
            init_node(pdir, org_name=name, listen=f"127.0.0.1:{free_port()}")
    ident = NodeIdentity.load(tester_dir)
    have = (ident.config.listen, ident.config.advertise)
    if (listen is not None and listen != have[0]) or (advertise and advertise != have[1]):
        raise ConfigError(
            f"the tester in {tester_dir} listens on {have[0]} (advertise {have[1] or '-'}), not "
            f"{listen or have[0]} (advertise {advertise or '-'}): give another --tester directory",
            metadata={"path": str(tester_dir)},
        )
    missing = [n for n in TESTER_AGENTS if not (tester_dir / "agents" / f"{n}.json").is_file()]
    if ident.config.org_name != TESTER_ORG or missing:
        raise ConfigError(
            f"{tester_dir} is not the conformance kit's tester (org {ident.config.org_name!r}, "
            f"missing agents {missing}); point --tester at an empty directory",
            metadata={"path": str(tester_dir)},
        )
    return ident


def tester_bundle(tester: Any, *, now: dt.datetime | None = None) -> Any:
    """The tester's signed peer bundle, without a witness key (it runs no witness).

    Returns:
        A :class:`federation.peers.PeerBundle` signed by the tester's organization key.

    """
    from federation.identity import export_bundle

    bundle = export_bundle(tester, now=now)
    return bundle.model_copy(update={"witness_vkey": "", "signature": ""}).signed(tester.org_key)


def conformance_contract(
    node: Any, tester: Any, *, contract_id: str, version: int, now: dt.datetime
) -> dict[str, Any]:
    """The conformance contract between ``node`` (provider) and the tester (requester), as a dict.

    The terms are the demo's interop contract (``federation.demo.setup.interop_contract``)
    with both parties' actual DIDs, ``contract_id`` and ``version``.
    """
    from federation.demo.setup import interop_contract

    doc = interop_contract(node.config.org_name, now)
    doc["id"] = contract_id
    doc["version"] = version
    doc["parties"] = {
        "provider": {"org": node.org_did, "name": node.config.org_name},
        "requester": {"org": tester.org_did, "name": tester.config.org_name},
    }
    return doc


def _sign(doc: dict[str, Any], *signers: Any) -> Any:
    from policy import Contract

    c = Contract.from_dict(doc)
    for ident in signers:
        c = c.sign(org=ident.org_did, verification_method=ident.verification_method, seed=ident.org_key.seed)
    return c


def _taken(node: Any, store: Any, node_org: str) -> list[str]:
    """Names an enrollment would add that the node already has."""
    from federation.demo.setup import INTEROP_DATASET, INTEROP_RESOURCE
    from federation.peers import PeerRegistry

    taken = []
    paths = node.paths
    if (paths.peers / f"{TESTER_ORG}.json").exists():
        taken.append(f"peers/{TESTER_ORG}.json")
    for cid in contract_ids(node_org):
        if (paths.contracts / f"{cid}.json").exists():
            taken.append(f"contracts/{cid}.json")
    if (paths.data / f"{INTEROP_RESOURCE}.json").exists():
        taken.append(f"data/{INTEROP_RESOURCE}.json")
    if any(spec.get("name") == INTEROP_DATASET for spec, _ in store.datasets()):
        taken.append(f"dataset {INTEROP_DATASET}")
    for name in (TESTER_ORG, *PERSONAS):
        if name != TESTER_ORG and (paths.peers / f"{name}.json").exists():
            taken.append(f"peers/{name}.json")
        if any(b.org_name == name for b in PeerRegistry.load(paths.peers)):
            taken.append(f"a peer named {name}")
    return taken


def enroll(
    node_dir: Path,
    *,
    tester_dir: Path,
    bundle_out: Path | None = None,
    now: dt.datetime | None = None,
    reload: bool = True,
    tester_listen: str | None = None,
    tester_advertise: str = "",
) -> Enrollment:
    """Add the conformance kit to the node in ``node_dir`` (see the module docstring).

    Args:
        node_dir: the node directory under test (offline or running).
        tester_dir: the tester organization's directory (created if missing).
        bundle_out: also write the node's peer bundle here.
        now: enrollment time (UTC); contracts are valid from a day before to 90 days after.
        reload: ask a running node to reload (AdminService).
        tester_listen: where a new tester's status lists are served (:func:`ensure_tester`).
        tester_advertise: what its bundle names for them (default ``tester_listen``).

    Returns:
        What was added (:class:`Enrollment`).

    Raises:
        ConfigError: ``node_dir`` is not a node directory, the kit is already
            enrolled there, or a name it would add is taken (nothing is written).
        PeerError: pinning the tester bundle collides with a pinned peer.

    """
    from federation.agents import open_store
    from federation.demo.setup import (
        INTEROP_DATASET,
        INTEROP_DATASET_SPEC,
        INTEROP_RESOURCE,
        interop_records,
        interop_stats,
    )
    from federation.identity import NodeIdentity, export_bundle
    from federation.paths import write_private
    from federation.peers import pin_bundle

    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    node = NodeIdentity.load(node_dir)
    manifest = node.paths.root / MANIFEST
    if manifest.exists():
        raise ConfigError(
            f"the conformance kit is already enrolled in {node_dir} ({MANIFEST}); "
            "run `accord interop unenroll` first",
            metadata={"path": str(manifest)},
        )
    org = node.config.org_name
    store = open_store(node)
    taken = _taken(node, store, org)
    if taken:
        raise ConfigError(
            f"{node_dir} already has {', '.join(taken)}: the conformance kit never replaces what a node "
            "has (remove them, or enroll at another node)",
            metadata={"path": str(node_dir)},
        )
    tester = ensure_tester(tester_dir, listen=tester_listen, advertise=tester_advertise)
    if tester.org_did == node.org_did:
        raise ConfigError("the node under test is the tester organization itself")
    cid, unsigned_id = contract_ids(org)
    marks = store.get_state("contract_versions") or {}
    bundle = tester_bundle(tester, now=now)
    signed = _sign(
        conformance_contract(
            node, tester, contract_id=cid, version=marks.get(cid, {}).get("version", 0) + 1, now=now
        ),
        node,
        tester,
    )
    unsigned = _sign(
        conformance_contract(
            node,
            tester,
            contract_id=unsigned_id,
            version=marks.get(unsigned_id, {}).get("version", 0) + 1,
            now=now,
        ),
        node,
    )
    records = interop_records()
    stats = interop_stats()
    from federation.identity import NodeIdentity as _NI

    personas = {name: tester_bundle(_NI.load(persona_dir(tester_dir, name)), now=now) for name in PERSONAS}
    agent_name = f"interop-tester-{os.urandom(3).hex()}"
    items = [
        Item("peer", tester.org_did, f"peers/{TESTER_ORG}.json", f"fingerprint {bundle.fingerprint()}"),
        Item(
            "contract", cid, f"contracts/{cid}.json", f"v{signed.version}, signed by the node and the tester"
        ),
        Item(
            "contract",
            unsigned_id,
            f"contracts/{unsigned_id}.json",
            f"v{unsigned.version}, signed by the node only (must be refused)",
        ),
        Item(
            "resource",
            INTEROP_RESOURCE,
            f"data/{INTEROP_RESOURCE}.json",
            f"{len(records['records'])} synthetic records",
        ),
        Item("dataset", INTEROP_DATASET, "", f"{len(stats)} synthetic records"),
        *(
            Item("peer", b.org_did, f"peers/{name}.json", f"persona: {PERSONAS[name]}")
            for name, b in personas.items()
        ),
        Item(
            "agent",
            agent_name,
            f"agents/{agent_name}.json",
            f"the tester agent (scope {TESTER_SCOPES[0]}) that drives AgentService in the requester role",
        ),
    ]
    # the manifest first: a crash half-way leaves it, and `unenroll` removes what exists
    write_private(
        manifest,
        json.dumps(
            {
                "tester_did": tester.org_did,
                "enrolled_at": now.isoformat(),
                "items": [asdict(i) for i in items],
            },
            indent=1,
        ),
    )
    try:
        pin_bundle(node.paths.peers, bundle, own_did=node.org_did)
        signed.dump(node.paths.contracts / f"{cid}.json")
        unsigned.dump(node.paths.contracts / f"{unsigned_id}.json")
        write_private(node.paths.data / f"{INTEROP_RESOURCE}.json", json.dumps(records, indent=1))
        store.put_dataset(INTEROP_DATASET, INTEROP_DATASET_SPEC, stats, id_column="id", now=now)
        for b in personas.values():
            pin_bundle(node.paths.peers, b, own_did=node.org_did)
        from federation.agents import register_agent

        wallet = register_agent(
            node,
            name=agent_name,
            role="conformance-tester",
            scopes=TESTER_SCOPES,
            trust_tier=1,
            valid_days=90,
        )
        (tester_dir / "targets").mkdir(mode=0o700, exist_ok=True)
        write_private(agent_wallet_path(tester_dir, org), wallet.to_json())
    except BaseException:
        _remove(node, store, items)
        manifest.unlink(missing_ok=True)
        raise
    node_bundle_text = export_bundle(node).model_dump_json(indent=2)
    targets = tester_dir / "targets"
    node_bundle = targets / f"{org}.json"
    targets.mkdir(mode=0o700, exist_ok=True)
    node_bundle.write_text(node_bundle_text)
    if bundle_out is not None:
        Path(bundle_out).write_text(node_bundle_text)
        node_bundle = Path(bundle_out)
    note = _nudge(node.paths.root) if reload else None
    return Enrollment(
        node_dir=node.paths.root,
        tester_dir=tester_dir,
        node_bundle=node_bundle,
        target=node.config.advertise or node.config.listen,
        items=items,
        reload_note=note,
    )


def _nudge(node_dir: Path) -> str | None:
    from federation.cli.common import nudge_running_node

    return nudge_running_node(node_dir)


def _remove(node: Any, store: Any, items: list[Item]) -> list[Item]:
    """Remove ``items`` from the node; returns those that were there."""
    removed = []
    for item in items:
        if item.kind == "agent":
            try:
                store.set_status(item.name, revoked=True)
            except Exception:  # noqa: BLE001 - not registered (a crash before it was): nothing to revoke
                pass
            else:
                removed.append(item)
            (node.paths.root / item.path).unlink(missing_ok=True)
            continue
        if item.kind == "dataset":
            if store.delete_dataset(item.name):
                removed.append(item)
            continue
        path = node.paths.root / item.path
        if path.parent.resolve().parent != node.paths.root.resolve():  # defence in depth
            raise ConfigError(f"{MANIFEST} names {item.path!r}, outside the node directory")
        if path.exists():
            path.unlink()
            removed.append(item)
    return removed


def unenroll(node_dir: Path, *, reload: bool = True) -> tuple[list[Item], str | None]:
    """Remove what :func:`enroll` added to the node in ``node_dir`` (its manifest lists it).

    A pinned peer file is removed only if it still holds the tester's DID.

    Returns:
        (the items removed, the running node's reload note or None).

    Raises:
        ConfigError: not a node directory, or no enrollment there.

    """
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    node = NodeIdentity.load(node_dir)
    manifest = node.paths.root / MANIFEST
    if not manifest.is_file():
        raise ConfigError(
            f"the conformance kit is not enrolled in {node_dir} (no {MANIFEST})",
            metadata={"path": str(manifest)},
        )
    try:
        doc = json.loads(manifest.read_text())
        items = [Item(**i) for i in doc["items"]]
        tester_did = doc["tester_did"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest} is not an enrollment manifest: {exc}") from exc
    for item in items:
        if item.kind == "peer":
            path = node.paths.root / item.path
            if path.exists() and json.loads(path.read_text()).get("org_did") not in (item.name, tester_did):
                raise ConfigError(
                    f"{item.path} no longer holds the tester ({item.name}); leaving it, remove it by hand"
                )
    removed = _remove(node, open_store(node), items)
    manifest.unlink()
    note = _nudge(node.paths.root) if reload else None
    return removed, note
