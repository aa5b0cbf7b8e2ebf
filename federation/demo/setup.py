"""Provisioning a local federation: node dirs, peering, agents, contracts, data.

Used by ``accord demo``, the test-suite fixtures and the benchmarks: the
same code paths as the operator CLI (``node init``, ``peer add``,
``agent register``, ``contract sign``/``register``), called as functions.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.agents import register_agent
from federation.demo import scenario
from federation.identity import NodeIdentity, export_bundle, init_node
from federation.paths import write_private
from federation.supervisor import free_port
from policy import Contract

INTEROP_ORG = "interop"
INTEROP_RESOURCE = "interop-records"
INTEROP_PURPOSE = "conformance"
INTEROP_DATASET = "interop-stats"
INTEROP_DATASET_SPEC = {
    "name": INTEROP_DATASET,
    "id": "id",
    "sensitive": ["value"],
    "quasi": ["district", "unit"],
    "columns": {"id": "int", "district": "str", "unit": "str", "value": "int"},
    "scope": "org",
    "max_ids": 0,
}


def interop_stats() -> list[dict[str, Any]]:
    """20 records: ids 1–10 north, 11–20 south; record 7 alone has unit "x", record 13 alone unit "y"."""
    return [
        {
            "id": i,
            "district": "north" if i <= 10 else "south",
            "unit": {7: "x", 13: "y"}.get(i, "a"),
            "value": (i * 37) % 101,
        }
        for i in range(1, 21)
    ]


@dataclass
class Layout:
    """A provisioned federation on disk.

    Attributes:
        root: the work directory.
        orgs: org name → node directory.
        endpoints: org name → ``HOST:PORT``.
        wallets: ``"org/agent"`` → wallet path.

    """

    root: Path
    orgs: dict[str, Path] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    wallets: dict[str, Path] = field(default_factory=dict)

    def bundle_path(self, org: str) -> Path:
        """The exported bundle file of an org."""
        return self.orgs[org] / "bundle.json"


def interop_records() -> dict[str, Any]:
    """The synthetic dataset each node serves to the interop tester."""
    return {
        "records": {
            f"rec-{i}": {
                "record_id": f"rec-{i}",
                "public_code": f"P{i:03d}",
                "region": "north",
                "secret_note": f"do-not-share-{i}",
                "internal_score": i * 7,
            }
            for i in range(1, 4)
        }
    }


def interop_contract(provider: str, now: dt.datetime) -> dict[str, Any]:
    """The contract between a node (provider) and the interop tester (requester)."""
    return {
        "id": f"interop-{provider}",
        "version": 1,
        "title": "Interop conformance",
        "parties": {
            "provider": {"org": f"did:web:{provider}.accord.test", "name": provider},
            "requester": {"org": f"did:web:{INTEROP_ORG}.accord.test", "name": INTEROP_ORG},
        },
        "purposes": {
            INTEROP_PURPOSE: {
                "resources": [INTEROP_RESOURCE],
                "subjects": ["*"],
                "mni": ["record_id", "public_code"],
                "optional": {"region": {"sensitivity": 1, "min_trust": 0.99}},
                "required_scopes": ["interop:read"],
            },
            "restricted": {
                "resources": [INTEROP_RESOURCE],
                "subjects": ["*"],
                "mni": ["record_id"],
                "required_scopes": ["interop:admin"],
            },
            "conformance-budget": {
                "resources": [INTEROP_RESOURCE],
                "subjects": ["*"],
                "mni": ["record_id"],
                "optional": {"region": {"sensitivity": 1, "min_trust": 0.0}},
                "required_scopes": ["interop:read"],
            },
            "conformance-stats": {
                "resources": [INTEROP_DATASET],
                "subjects": ["*"],
                "aggregates": {
                    "dataset": INTEROP_DATASET,
                    "kinds": ["count", "sum", "avg"],
                    "columns": ["value"],
                    "allow_ids": False,
                },
                "required_scopes": ["interop:read"],
            },
        },
        "trust_ceiling": 0.9,
        "trust_budget": {"units": 2, "window_seconds": 3600},
        "rate_limit": None,
        "session_limits": {"max_requests": None, "max_fields": None},
        "valid_from": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid_until": (now + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "obligations": ["no-onward-sharing"],
    }


def _sign_both(doc: dict[str, Any], idents: dict[str, NodeIdentity]) -> Contract:
    c = Contract.from_dict(doc)
    for party in (c.parties.provider, c.parties.requester):
        ident = idents[party.name]
        c = c.sign(
            org=ident.org_did, verification_method=ident.verification_method, signer=ident.org_key.sign
        )
    return c


def provision(
    root: Path,
    *,
    orgs: tuple[str, ...] = scenario.ORGS,
    with_interop: bool = True,
    status_ttl_seconds: float = 1.0,
    witness_interval_seconds: float = 0.5,
    http: bool = False,
) -> Layout:
    """Create and peer the node directories under ``root`` (nothing is started).

    Args:
        root: work directory (created).
        orgs: organization names (the scenario's three by default).
        with_interop: also provision the ``interop`` tester org peered with every node.
        status_ttl_seconds: peers' status-list cache TTL (short, so revocation shows at once).
        witness_interval_seconds: how often nodes send checkpoints to peers' witnesses.
        http: also serve each log over HTTP (C2SP tlog-tiles, tlog-witness).

    """
    from federation.config import load_config, save_config
    from federation.errors import ConfigError

    root.mkdir(parents=True, exist_ok=True)
    layout = Layout(root=root)
    names = list(orgs) + ([INTEROP_ORG] if with_interop else [])
    taken = [org for org in names if (root / org / "node.toml").exists()]
    if taken:  # never regenerate the keys of a node whose ledger we did not create
        raise ConfigError(
            f"{root / taken[0]} already holds a node: provisioning would replace its keys and "
            "leave its ledger unverifiable",
            reason="WORKDIR_IN_USE",
        )
    idents: dict[str, NodeIdentity] = {}
    for org in names:
        d = root / org
        port = free_port()
        init_node(d, org_name=org, listen=f"127.0.0.1:{port}", force=True)
        cfg = load_config(d).model_copy(
            update={
                "status_list_ttl_seconds": status_ttl_seconds,
                "witness_interval_seconds": witness_interval_seconds,
                # the scenario's organizations witness each other; the tester org witnesses nobody
                "witnesses": [o for o in orgs if o != org] if org in orgs else [],
                "witness_quorum": max(1, min(2, len(orgs) - 1)) if org in orgs else 1,
                "http_listen": f"127.0.0.1:{free_port()}" if http else "",
                "metrics_port": free_port(),
            }
        )
        save_config(d, cfg)
        idents[org] = NodeIdentity.load(d)
        layout.orgs[org] = d
        layout.endpoints[org] = cfg.listen
        (d / "bundle.json").write_text(export_bundle(idents[org]).model_dump_json(indent=2))
    for org in names:
        for other in names:
            if other != org:  # every organization pins every other one
                (layout.orgs[org] / "peers" / f"{other}.json").write_text(
                    layout.bundle_path(other).read_text()
                )
    data = scenario.datasets()
    for org in orgs:
        for resource, records in data.get(org, {}).items():
            write_private(  # personal records: owner-only
                layout.orgs[org] / "data" / f"{resource}.json", json.dumps({"records": records}, indent=1)
            )
        if with_interop:
            write_private(
                layout.orgs[org] / "data" / f"{INTEROP_RESOURCE}.json",
                json.dumps(interop_records(), indent=1),
            )
            from federation.agents import open_store as _open_store

            _open_store(idents[org]).put_dataset(
                INTEROP_DATASET,
                INTEROP_DATASET_SPEC,
                interop_stats(),
                id_column="id",
                now=dt.datetime.now(dt.UTC),
                replace=True,
            )
    if "hospital" in orgs:
        from federation.agents import open_store

        open_store(idents["hospital"]).put_dataset(
            "admissions",
            scenario.ADMISSIONS_SPEC,
            scenario.admissions(random.Random(7)),
            id_column="record_id",
            now=dt.datetime.now(dt.UTC),
            replace=True,
        )
    script = scenario.load_scenario()
    for a in script.agents:
        if a.org in orgs:
            register_agent(
                idents[a.org], name=a.name, role=a.role, scopes=list(a.scopes), trust_tier=a.trust_tier
            )
            layout.wallets[f"{a.org}/{a.name}"] = layout.orgs[a.org] / "agents" / f"{a.name}.json"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    docs = [
        d
        for d in script.contract_documents(now)
        if d["parties"]["provider"]["name"] in orgs and d["parties"]["requester"]["name"] in orgs
    ]
    if with_interop:
        register_agent(
            idents[INTEROP_ORG],
            name="tester",
            role="conformance-tester",
            scopes=["interop:read"],
            trust_tier=1,
            with_status=False,
        )
        layout.wallets[f"{INTEROP_ORG}/tester"] = layout.orgs[INTEROP_ORG] / "agents" / "tester.json"
        from federation.agents import open_store

        register_agent(
            idents[INTEROP_ORG],
            name="tester-2",
            role="conformance-tester",
            scopes=["interop:read"],
            trust_tier=1,
            with_status=False,
        )
        for name, bits in (("tester-revoked", {"revoked": True}), ("tester-suspended", {"suspended": True})):
            register_agent(
                idents[INTEROP_ORG],
                name=name,
                role="conformance-tester",
                scopes=["interop:read"],
                trust_tier=1,
            )
            open_store(idents[INTEROP_ORG]).set_status(name, **bits)
        docs += [interop_contract(org, now) for org in orgs]
    if with_interop:
        for org in orgs:  # signed by the provider only: the node must refuse it
            doc = interop_contract(org, now)
            doc["id"] = f"interop-unsigned-{org}"
            ident = idents[org]
            Contract.from_dict(doc).sign(
                org=ident.org_did, verification_method=ident.verification_method, signer=ident.org_key.sign
            ).dump(layout.orgs[org] / "contracts" / f"{doc['id']}.json")
    for doc in docs:
        c = _sign_both(doc, idents)
        for party in (c.parties.provider.name, c.parties.requester.name):
            c.dump(layout.orgs[party] / "contracts" / f"{c.id}.json")
    (root / DEMO_MARKER).write_text(json.dumps({"orgs": names, "provisioned_at": now.isoformat()}))
    return layout


DEMO_MARKER = ".accord-demo.json"
"""Written last by :func:`provision`: the directory holds a complete demo federation made by it."""


def load_layout(root: Path) -> Layout | None:
    """The federation a previous :func:`provision` left in ``root``, or None when it holds none.

    Raises:
        ConfigError: ``WORKDIR_IN_USE`` when ``root`` holds something else
            (files, another node, or a provisioning that did not finish).

    """
    from federation.errors import ConfigError

    if not root.exists() or not any(root.iterdir()):
        return None
    marker = root / DEMO_MARKER
    try:
        names = json.loads(marker.read_text())["orgs"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{root} is not empty and holds no federation made by `accord demo` ({DEMO_MARKER} missing); "
            "choose another --workdir",
            reason="WORKDIR_IN_USE",
        ) from None
    layout = Layout(root=root)
    for org in names:
        d = root / str(org)
        if not (d / "node.toml").is_file():
            raise ConfigError(f"{d}: node.toml missing; the demo federation in {root} is incomplete",
                              reason="WORKDIR_IN_USE")  # fmt: skip
        layout.orgs[org] = d
        for wallet in sorted((d / "agents").glob("*.json")):
            layout.wallets[f"{org}/{wallet.stem}"] = wallet
    return layout
