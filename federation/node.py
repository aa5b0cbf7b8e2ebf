"""A running Accord node: the composition root.

:class:`Node` opens a node directory and wires its parts — identity, peer
registry, contracts and the policy decision point, trust and budgets,
sessions, the ledger and its writer, the data sources, the verifier pool —
and reloads, persists and closes them. The exchange itself is done by its
two halves, :class:`federation.provider.ProviderSide` and
:class:`federation.requester.RequesterSide`, over the domain values of
:mod:`federation.domain` (no protobuf, no gRPC); peers are reached through
the injected peer client (:class:`federation.peer_client.PeerClient` in the
server), signed payloads are opened and made through the injected codec
(:class:`federation.wire.WirePayloads` in the server), and time comes from
the injected :class:`federation.clock.Clock`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from credentials import (
    StaticKeyResolver,
    StatusListCache,
    did_key_resolver,
)
from credentials.pool import VerifierPool
from federation import content
from federation.admission import PresessionGuard
from federation.clock import Clock, SystemClock, now_utc
from federation.config import database_url_for
from federation.datasource import DataSource
from federation.domain import PayloadCodec, PeerLink
from federation.identity import NodeIdentity, ledger_origin
from federation.ledger_writer import GroupCommit, LedgerWriter
from federation.paths import open_private_append
from federation.peers import PeerRegistry
from federation.provider import ProviderSide
from federation.provider_agents import ProviderAgent, load_provider_agent
from federation.replicas import IntegratorLease, ReplicaRole
from federation.requester import RequesterSide
from federation.sessions import (
    ChallengeTable,
    NonceCache,
    SessionTable,
    SharedChallengeTable,
    SharedLocalSessions,
    SharedNonceCache,
    SharedSessionTable,
)
from federation.statuslists import StatusListPublisher
from federation.store import NodeStore, PolicyStateStore, ReceivedStore, ReplicaStateStore, make_engine
from federation.witnessing import WitnessCoordinator
from ledger import (
    TransparencyLog,
    Witness,
)
from policy import (
    Contract,
    DecisionCache,
    OpaRestEngine,
    PolicyDecisionPoint,
    PolicyError,
    RegopyEngine,
)

log = structlog.get_logger("accord.node")


class Node(ProviderSide, RequesterSide):
    """The node (see the module docstring). Create with :meth:`open`."""

    def __init__(
        self,
        identity: NodeIdentity,
        *,
        peer_client: PeerLink | None = None,
        payloads: PayloadCodec | None = None,
        clock: Clock | None = None,
        writer_factory: Callable[[TransparencyLog], LedgerWriter] | None = None,
        engine: Any = None,
        provider_agent: ProviderAgent | None = None,
        replica: ReplicaRole | None = None,
    ) -> None:
        """Open the node's database, ledger and witness and wire its parts (then :meth:`reload`).

        Args:
            identity: the loaded node directory (:meth:`NodeIdentity.load`).
            peer_client: how this node reaches its peers (the server passes a
                :class:`federation.peer_client.PeerClient`); ``None`` for a node
                that only serves or is used offline (requester calls then fail).
            payloads: how signed payloads are opened and made (the server passes
                :class:`federation.wire.WirePayloads`); ``None`` for a node used
                offline (exchanges then fail with ``RuntimeError``).
            clock: the time source (default :class:`federation.clock.SystemClock`).
            writer_factory: builds the ledger writer over the opened log (default
                :class:`LedgerWriter` with ``ledger_batch_max``).
            engine: the Rego engine behind the decision point (default from ``[policy]``).
            provider_agent: what this organization's agent offers (default from
                ``provider_agent`` in ``node.toml``).
            replica: which replica of the node this process is
                (:class:`federation.replicas.ReplicaRole`); with more than one,
                sessions, challenges, the replay cache and the budget/rate
                ledgers live in the node database (PostgreSQL only) and the
                configured ports move up by the replica index.

        Raises:
            ValueError: an unknown ``provider_agent`` model.
            ConfigError: several replicas on a database that is not PostgreSQL
                (``REPLICAS_NEED_POSTGRESQL``).
            PeerError / PolicyError: from :meth:`reload`.

        """
        self.identity = identity
        self.clock: Clock = clock or SystemClock()
        self.peer_client = peer_client
        self.payloads = payloads
        self.config = identity.config
        self.replica = replica or ReplicaRole()
        if self.replica.index:
            self.config = self.config.model_copy(
                update={
                    "listen": self.replica.shift(self.config.listen),
                    "http_listen": self.replica.shift(self.config.http_listen),
                    "metrics_port": self.config.metrics_port + self.replica.index
                    if self.config.metrics_port
                    else 0,
                }
            )
        self.did = identity.org_did
        self.paths = identity.paths
        self.engine_db = make_engine(database_url_for(self.paths.root, self.config))
        self.store = NodeStore(self.engine_db)
        self.ledger_signer = identity.ledger_signer()
        self.ledger = TransparencyLog.open(
            database_url_for(self.paths.root, self.config),
            origin=ledger_origin(self.config.org_name),
            signer=self.ledger_signer,
        )
        self.writer = (
            writer_factory(self.ledger)
            if writer_factory is not None
            else LedgerWriter(self.ledger, max_batch=self.config.ledger_batch_max)
        )
        #: the requester's kept disclosures (issue #15), group-committed on the writer's thread
        self.kept = GroupCommit(self.writer, ReceivedStore(self.store).put_many)
        self.witness = Witness.open(
            database_url_for(self.paths.root, self.config),
            signer=identity.witness_signer(),
        )
        self._open_sessions()
        #: worker processes verifying presentations and delegation chains within a deadline;
        #: started (and awaited) by the server before it reports READY
        self.verifier = VerifierPool(
            self.config.verify_workers,
            self.config.verify_deadline_seconds,
            preload=("credentials", "federation.delegation"),
        )
        self.presession = PresessionGuard(
            rate_limit=self.config.presession_rate_limit,
            concurrency=self.config.presentation_concurrency,
        )
        self.status = StatusListPublisher(identity, self.store)
        self.peers = PeerRegistry()
        self.contracts: dict[str, Contract] = {}
        self.policy = engine if engine is not None else self._make_engine()
        self.policy_state = PolicyStateStore(self.store).load()  # rows per pair / key (#10.2)
        self.trust = self.policy_state.trust
        self.budgets = self.policy_state.budgets
        self.policy_state.ledgers_shared = self.shared_state is not None
        if self.shared_state is not None:  # τ read and changed through the database (every replica's)
            self.trust.share(self.shared_state.trust_row, self.shared_state.locked_trust_row)
        self.pdp = PolicyDecisionPoint(
            self.policy,
            trust=self.trust,
            budgets=self.budgets,
            requests=self.policy_state.requests,
            shared_keys=self.shared_state.locked_ledger_rows if self.shared_state is not None else None,
        )
        self.data = DataSource({})
        from federation.datasets import DatasetService

        self.datasets = DatasetService(self.store, shared=self.shared_state)
        self.provider_agent = provider_agent or load_provider_agent(self.config.provider_agent)
        self.rng = random.Random()
        self._oer_totals: dict[tuple[str, str, str], list[int]] = {}
        self.peer_status_docs: dict[str, tuple[dict[str, Any], float]] = {}
        self.resolver: StaticKeyResolver = StaticKeyResolver({})
        self.status_cache: StatusListCache | None = None
        self._agent_cache: dict[str, tuple[Any, float]] = {}
        self.rejected_contracts: dict[str, str] = {}
        #: sends this node's checkpoints to its witnesses (run by the server; read by the health checks)
        self.coordinator = WitnessCoordinator(self)
        self.reload()

    def _open_sessions(self) -> None:
        """Sessions, challenges, the replay cache: in memory, or in the database for replicas."""
        cfg = self.config
        #: the replicas' shared tables (None for a single process)
        self.shared_state: ReplicaStateStore | None = None
        #: the integrator lease (replicas only; taken by the server)
        self.lease: IntegratorLease | None = None
        if not self.replica.shared:
            self.sessions: Any = SessionTable(
                ttl_seconds=cfg.session_ttl_seconds,
                max_per_agent=cfg.max_sessions_per_agent,
                max_per_peer=cfg.max_sessions_per_peer,
            )
            self.challenges: Any = ChallengeTable(max_per_owner=cfg.max_challenges_per_peer)
            self.nonces: Any = NonceCache(skew_seconds=cfg.clock_skew_seconds)
            self.local_sessions: Any = {}
            return
        if self.engine_db.dialect.name != "postgresql":
            from federation.errors import ConfigError

            raise ConfigError(
                f"{self.replica.count} replicas need the node database on PostgreSQL "
                "(database_url in node.toml)",
                reason="REPLICAS_NEED_POSTGRESQL",
            )
        shared = self.shared_state = ReplicaStateStore(self.engine_db)
        self.sessions = SharedSessionTable(
            shared,
            ttl_seconds=cfg.session_ttl_seconds,
            max_per_agent=cfg.max_sessions_per_agent,
            max_per_peer=cfg.max_sessions_per_peer,
        )
        self.challenges = SharedChallengeTable(shared, max_per_owner=cfg.max_challenges_per_peer)
        self.nonces = SharedNonceCache(shared, skew_seconds=cfg.clock_skew_seconds)
        self.local_sessions = SharedLocalSessions(shared)
        self.lease = IntegratorLease(shared, holder=self.replica.holder)

    @classmethod
    def open(cls, node_dir: Path, **parts: Any) -> Node:
        """Load a node directory and open its database and ledger; ``parts`` as for the constructor.

        Raises:
            ConfigError: the directory is not a valid node directory.

        """
        return cls(NodeIdentity.load(node_dir), **parts)

    def _make_engine(self):
        """The policy engine behind a :class:`policy.DecisionCache` (hits across sessions and seconds)."""
        pc = self.config.policy
        if pc.engine == "opa":
            return DecisionCache(OpaRestEngine(pc.opa_url, timeout_seconds=pc.opa_timeout_seconds))
        return DecisionCache(RegopyEngine())

    def reload(self) -> dict[str, int]:
        """Re-read peers, contracts and data from the node directory.

        Returns the counts ``{"peers", "agents", "contracts"}``.

        Raises:
            PeerError / PolicyError: a pinned bundle or contract is invalid.

        """
        from federation.config import load_config

        # the witness policy is re-read with the peers (`peer add --witness` and `peer remove` edit both);
        # so are the agents exposed over A2A (`[a2a]`: what GetAgentCards serves) and what the node
        # renews by itself (`[renewal]`: federation.renewal.renewal_loop reads node.config at each turn)
        fresh = load_config(self.paths.root)
        self.config = self.config.model_copy(
            update={
                "witnesses": fresh.witnesses,
                "witness_quorum": fresh.witness_quorum,
                "a2a": fresh.a2a,
                "renewal": fresh.renewal,
            }
        )
        from federation.rotation import key_mapping, refresh_identity

        refresh_identity(self)  # a rotated organization key, a renewed TLS certificate
        self.peers = PeerRegistry.load(self.paths.peers)
        # current and retired organization keys (ours and pinned peers'): old signatures still verify
        self.resolver = StaticKeyResolver(key_mapping(self.identity, self.peers), fallback=did_key_resolver)
        for bundle in self.peers:
            self.witness.add_log(bundle.ledger_origin, bundle.ledger_vkey)
        from federation.witnessing import witness_policy_for

        self.ledger.set_witness_policy(witness_policy_for(self))
        self.status_cache = StatusListCache(
            self._fetch_status_doc,
            resolve_key=self.resolver,
            ttl_seconds=self.config.status_list_ttl_seconds,
        )
        contracts: dict[str, Contract] = {}
        rejected: dict[str, str] = {}
        if self.paths.contracts.is_dir():
            for path in sorted(self.paths.contracts.glob("*.json")):
                try:
                    c = Contract.load(path)
                    c.verify_signatures(self.resolver)
                except PolicyError as exc:
                    # one bad file must not take the node down: it is refused, logged, and
                    # requests naming it are denied with this reason
                    rejected[path.stem] = exc.reason
                    log.error("contract refused", file=path.name, reason=exc.reason, error=str(exc))
                    continue
                if self.did not in (c.parties.provider.org, c.parties.requester.org):
                    continue
                contracts[c.id] = c
        contracts = self._forward_only(contracts, rejected)
        self.contracts = contracts
        self.rejected_contracts = rejected
        content.preload(self, contracts.values())  # screening models, when a contract screens free text
        self.pdp.load(list(contracts.values()))
        self.data = DataSource.load(self.paths.data)
        self.datasets.load()
        self._agent_cache.clear()
        counts = {"peers": len(self.peers), "agents": len(self.store.agents()), "contracts": len(contracts)}
        log.info("node state loaded", org=self.config.org_name, **counts)
        return counts

    def _forward_only(self, loaded: dict[str, Contract], rejected: dict[str, str]) -> dict[str, Contract]:
        """Keep contract versions moving forward across reloads and restarts (issue #10, class 3).

        The node remembers, per contract id, the highest (version, version
        hash) it has put in force (``contract_versions`` in its state table).
        A file on disk with a lower version, or the same version with other
        terms, is refused with ``CONTRACT_VERSION_NOT_NEWER``: the version in
        force stays in force if this process holds it, otherwise requests
        under that id are FAILED_PRECONDITION with that reason.

        Args:
            loaded: the contracts read from disk this time, by id.
            rejected: file stem → reason of refused files (updated in place).

        Returns:
            The contracts to put in force, by id.

        """
        marks: dict[str, dict[str, Any]] = self.store.get_state("contract_versions") or {}
        in_force = getattr(self, "contracts", {})
        out: dict[str, Contract] = {}
        changed = False
        for cid, c in loaded.items():
            mark = marks.get(cid)
            try:
                if mark is not None and (
                    c.version < mark["version"]
                    or (c.version == mark["version"] and c.version_hash != mark["hash"])
                ):
                    raise PolicyError(
                        f"contract {cid}: v{c.version} does not move past v{mark['version']} put in force "
                        "earlier",
                        reason="CONTRACT_VERSION_NOT_NEWER",
                    )
            except PolicyError as exc:
                rejected[cid] = "CONTRACT_VERSION_NOT_NEWER"
                log.error("contract refused", contract=cid, reason=exc.reason, error=str(exc))
                if cid in in_force:
                    out[cid] = in_force[cid]
                continue
            out[cid] = c
            if mark is None or c.version > mark["version"]:
                marks[cid] = {"version": c.version, "hash": c.version_hash}
                changed = True
        if changed:
            self.store.put_state("contract_versions", marks, now=now_utc())
        return out

    def persist_state(self, *, drain_log: bool = True) -> None:
        """Persist the changed trust pairs and budget/rate keys, apply queued ``accord trust set``.

        Blocking (database): the server's periodic loop runs it in a worker
        thread with ``drain_log=False`` and drains the decision log itself.
        """
        PolicyStateStore(self.store).persist(self.policy_state, now=now_utc())
        if drain_log:
            self.drain_decision_log()

    def drain_decision_log(self) -> int:
        """Append the decision records gathered since the last drain to ``decisions.jsonl``.

        Returns the number of records written. The file is the node's
        exportable decision log (one JSON object per decision).
        """
        records = self.pdp.log.drain()  # the same log object: an append racing the drain is kept
        if records:
            with open_private_append(self.paths.root / "decisions.jsonl") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, sort_keys=True) + "\n")
        return len(records)

    async def close(self) -> None:
        """Drain the ledger writer and persist state (and give up the integrator lease)."""
        await self.kept.stop()
        await self.writer.stop()
        if self.lease is not None:
            self.lease.release()
        self.persist_state()
        self.ledger.close()
        self.witness.close()
        self.verifier.close()
