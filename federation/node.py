"""A running Accord node: composes credentials, policy and ledger.

:class:`Node` holds the node's runtime state (identity, peer registry,
agents, contracts, policy engine, trust book, sessions, ledger) and runs
both halves of one exchange over domain objects: the provider side
(verify, decide, gate, log, receipt) and the requester side (authenticate
the agent, sign the envelope, forward, verify the receipt, log "received").
It never touches gRPC server objects: ``federation.services`` are thin
adapters, and peers are reached through :class:`federation.peer_client.PeerClient`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from credentials import (
    CredentialError,
    StaticKeyResolver,
    StatusListCache,
    did_key_resolver,
    public_key_from_did_key,
    verify_ed25519,
)
from credentials.pool import VerifierPool
from federation import entries
from federation import observability as obs
from federation.admission import PresessionGuard
from federation.clock import now_utc
from federation.config import database_url_for
from federation.datasource import DataSource
from federation.domain import LocalSession, Outcome, ReceivedOutcome, Request, session_message
from federation.entries import sha256_hex
from federation.errors import (
    AuthenticationError,
    DeniedError,
    FederationError,
    InvalidRequestError,
    NotFoundError,
)
from federation.identity import NodeIdentity, ledger_origin, witness_name
from federation.ledger_writer import LedgerWriter
from federation.paths import open_private_append
from federation.peers import AuthenticatedPeer, PeerRegistry
from federation.provider_agents import load_provider_agent
from federation.sessions import ChallengeTable, NonceCache, Session, SessionTable
from federation.statuslists import StatusListPublisher
from federation.store import NodeStore, PolicyStateStore, make_engine
from ledger import (
    DisclosureEntry,
    NoteSigner,
    NoteVerifier,
    TransparencyLog,
    Witness,
)
from policy import (
    Contract,
    DecisionLog,
    OpaRestEngine,
    PolicyDecisionPoint,
    PolicyError,
    RegopyEngine,
    apply_gate,
    check_identifier,
    session_claims,
)

log = structlog.get_logger("accord.node")


def aggregate_columns(query: Any) -> tuple[str, ...]:
    """The columns an aggregate query reaches: the aggregated one, then each one its predicate names.

    Args:
        query: a parsed :class:`federation.datasets.AggregateQuery` (its
            ``predicate`` is the request's JSON, already size-bounded).

    Returns:
        Column names, the aggregated column first, without repeats.

    """
    seen: dict[str, None] = {str(query.column): None}
    stack = [query.predicate]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("col"), str):
                seen.setdefault(node["col"], None)
            stack.extend(v for k, v in node.items() if k in ("and", "or", "not"))
        elif isinstance(node, list):
            stack.extend(node)
    return tuple(seen)


@dataclass
class Counters:
    """Per-pair exchange counters for the demo summary and metrics."""

    released: int = 0
    trimmed: int = 0
    denied: int = 0
    offered_beyond_mni: int = 0
    released_beyond_mni: int = 0
    per_pair: dict[str, dict[str, int]] = field(default_factory=dict)


class Node:
    """The node (see the module docstring). Create with :meth:`open`."""

    def __init__(self, identity: NodeIdentity) -> None:
        self.identity = identity
        self.config = identity.config
        self.did = identity.org_did
        self.paths = identity.paths
        self.engine_db = make_engine(database_url_for(self.paths.root, self.config))
        self.store = NodeStore(self.engine_db)
        self.ledger_signer = NoteSigner(ledger_origin(self.config.org_name), identity.ledger_seed)
        self.ledger = TransparencyLog.open(
            database_url_for(self.paths.root, self.config),
            origin=ledger_origin(self.config.org_name),
            signer=self.ledger_signer,
        )
        self.writer = LedgerWriter(self.ledger, max_batch=self.config.ledger_batch_max)
        self.witness = Witness.open(
            database_url_for(self.paths.root, self.config),
            name=witness_name(self.config.org_name),
            seed=identity.witness_seed,
        )
        self.sessions = SessionTable(
            ttl_seconds=self.config.session_ttl_seconds,
            max_per_agent=self.config.max_sessions_per_agent,
            max_per_peer=self.config.max_sessions_per_peer,
        )
        self.challenges = ChallengeTable(max_per_owner=self.config.max_challenges_per_peer)
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
        self.nonces = NonceCache(skew_seconds=self.config.clock_skew_seconds)
        self.local_sessions: dict[str, LocalSession] = {}
        self.status = StatusListPublisher(identity, self.store)
        self.peers = PeerRegistry()
        self.contracts: dict[str, Contract] = {}
        self.policy = self._make_engine()
        self.policy_state = PolicyStateStore(self.store).load()  # rows per pair / key (#10.2)
        self.trust = self.policy_state.trust
        self.budgets = self.policy_state.budgets
        self.pdp = PolicyDecisionPoint(
            self.policy,
            trust=self.trust,
            budgets=self.budgets,
            requests=self.policy_state.requests,
        )
        self.data = DataSource({})
        from federation.datasets import DatasetService

        self.datasets = DatasetService(self.store)
        self.provider_agent = load_provider_agent(self.config.provider_agent)
        self.rng = random.Random()
        self._oer_totals: dict[tuple[str, str, str], list[int]] = {}
        self.peer_status_docs: dict[str, tuple[dict[str, Any], float]] = {}
        self.resolver: StaticKeyResolver = StaticKeyResolver({})
        self.status_cache: StatusListCache | None = None
        self.peer_client: Any = None  # set by the server (federation.peer_client.PeerClient)
        self._agent_cache: dict[str, tuple[Any, float]] = {}
        self.reload()

    @classmethod
    def open(cls, node_dir: Path) -> Node:
        """Load a node directory and open its database and ledger.

        Raises:
            ConfigError: the directory is not a valid node directory.

        """
        return cls(NodeIdentity.load(node_dir))

    def _make_engine(self):
        pc = self.config.policy
        if pc.engine == "opa":
            return OpaRestEngine(pc.opa_url, timeout_seconds=pc.opa_timeout_seconds)
        return RegopyEngine(cache_size=4096)

    # ------------------------------------------------------------------ state

    def reload(self) -> dict[str, int]:
        """Re-read peers, contracts and data from the node directory.

        Returns the counts ``{"peers", "agents", "contracts"}``.

        Raises:
            PeerError / PolicyError: a pinned bundle or contract is invalid.

        """
        self.peers = PeerRegistry.load(self.paths.peers)
        mapping = {self.identity.verification_method: self.identity.org_key.public_key}
        for bundle in self.peers:
            mapping[bundle.verification_method] = bundle.public_key
        self.resolver = StaticKeyResolver(mapping, fallback=did_key_resolver)
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
        old, self.pdp.log = self.pdp.log, DecisionLog()
        records = list(old)
        if records:
            with open_private_append(self.paths.root / "decisions.jsonl") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, sort_keys=True) + "\n")
        return len(records)

    def _local_agent(self, agent_did: str):
        """A registered, unrevoked, unsuspended agent of this org (cached 0.5 s)."""
        hit = self._agent_cache.get(agent_did)
        t = time.monotonic()
        if hit is None or t - hit[1] > 0.5:
            try:
                rec = self.store.agent(agent_did)
            except NotFoundError as exc:
                raise AuthenticationError(
                    f"agent {agent_did} is not registered here", reason="UNKNOWN_AGENT"
                ) from exc
            hit = (rec, t)
            self._agent_cache[agent_did] = hit
        rec = hit[0]
        if rec.revoked:
            raise AuthenticationError("agent credential is revoked", reason="REVOKED")
        if rec.suspended:
            raise AuthenticationError("agent credential is suspended", reason="SUSPENDED")
        window = self._credential_window(rec)
        now = now_utc()
        if window[0] is not None and now < window[0]:
            raise AuthenticationError("agent credential is not yet valid", reason="NOT_YET_VALID")
        if window[1] is None or now >= window[1]:
            raise AuthenticationError("agent credential has expired", reason="EXPIRED")
        return rec

    @staticmethod
    def _credential_window(rec: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(validFrom, validUntil) of a registered agent's credential, as this node issued it.

        The record's credential is the one this node signed and stored at
        registration; a credential without ``validUntil`` counts as expired
        (Accord always issues one), so a store edit that drops it fails closed.
        """
        cred = rec.credential if isinstance(rec.credential, dict) else {}
        out: list[dt.datetime | None] = []
        for key in ("validFrom", "validUntil"):
            try:
                t = dt.datetime.fromisoformat(cred[key]) if isinstance(cred.get(key), str) else None
            except ValueError:
                t = None
            out.append(t if t is not None and t.tzinfo is not None else None)
        return out[0], out[1]

    # ---------------------------------------------------------- status lists

    def _fetch_status_doc(self, url: str) -> dict[str, Any]:
        hit = self.peer_status_docs.get(url)
        if hit is None:
            own = self.status.credential_for_url(url)
            if own is not None:
                return own
            raise AuthenticationError(f"status list {url} not available", reason="STATUS_UNAVAILABLE")
        return hit[0]

    async def refresh_peer_status(self, peer: AuthenticatedPeer, credentials: list[Any]) -> None:
        """Fetch, over gRPC, the pinned peers' status lists the presented credentials reference.

        Usually the lists are the calling peer's own; a delegation chain rooted in
        another pinned organization references that organization's lists. Only
        lists whose cached copy is older than ``status_list_ttl_seconds`` are
        fetched; a URL that is no pinned peer's list is left to the status
        checker, which refuses it (``STATUS_UNAVAILABLE``: fail closed).
        """
        ttl = self.config.status_list_ttl_seconds
        wanted: set[tuple[str, str]] = set()
        for cred in credentials:
            entries = cred.get("credentialStatus") if isinstance(cred, dict) else None
            for e in entries if isinstance(entries, list) else [entries] if entries else []:
                if isinstance(e, dict):
                    wanted.add((str(e.get("statusListCredential", "")), str(e.get("statusPurpose", ""))))
        owners = {
            StatusListPublisher.url_for(b.org_name, p): b
            for b in self.peers
            for p in ("revocation", "suspension")
        }
        for url, purpose in sorted(wanted):
            bundle = owners.get(url)
            if bundle is None:
                continue
            hit = self.peer_status_docs.get(url)
            if hit is not None and time.monotonic() - hit[1] < ttl:
                continue
            try:
                doc = await self.peer_client.get_status_list(bundle, purpose)
            except FederationError as exc:  # fail closed later: the checker finds no list
                log.warning("peer status list unavailable", peer=bundle.org_name, error=str(exc))
                continue
            self.peer_status_docs[url] = (doc, time.monotonic())
            if self.status_cache is not None:
                self.status_cache.invalidate(url)

    # ----------------------------------------------------------- provider

    def issue_challenge(self, peer: AuthenticatedPeer, agent_did: str) -> tuple[str, str, float]:
        """A challenge for a VP from ``agent_did`` of ``peer``: (challenge, domain, expires_at)."""
        check_identifier(agent_did, "did", field="agent_did")
        if not agent_did.startswith("did:key:"):
            raise InvalidRequestError("agent_did must be a did:key", metadata={"field": "agent_did"})
        challenge, expires = self.challenges.issue(f"{peer.org_did} {agent_did}", owner=peer.org_did)
        return challenge, self.did, expires

    async def open_session(self, peer: AuthenticatedPeer, presentation_json: bytes) -> tuple[Session, float]:
        """Verify an agent's presentation and open a session; returns (session, effective trust).

        The presentation is bounded (``credentials.limits``) as it is parsed; its
        signatures, JSON-LD and claims are verified in the node's
        ``credentials.pool.VerifierPool`` (worker processes, deadline
        ``verify_deadline_seconds``), off the event loop; status lists are
        checked here on the verified credentials.

        Raises:
            InvalidRequestError: the presentation is not JSON or too large.
            AuthenticationError: wrong challenge; a CredentialError for any
                verification failure (signature, issuer, status, validity,
                ``DOCUMENT_TOO_COMPLEX``, ``CONTEXT_NOT_ALLOWED``,
                ``VERIFICATION_TIMEOUT``).

        """
        from credentials import CredentialError, load_json

        if len(presentation_json) > self.config.max_request_bytes:
            raise InvalidRequestError("presentation too large", reason="DOCUMENT_TOO_LARGE")
        try:
            vp = load_json(presentation_json)  # size, depth, nodes, values per property: before anything
            holder = vp["holder"]
            challenge = vp["proof"]["challenge"]
        except CredentialError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequestError(f"malformed presentation: {exc}") from exc
        if not isinstance(holder, str) or not isinstance(challenge, str):
            raise InvalidRequestError("malformed presentation: holder and proof.challenge must be strings")
        self.challenges.consume(challenge, f"{peer.org_did} {holder}")
        vcs = vp.get("verifiableCredential")
        await self.refresh_peer_status(peer, vcs if isinstance(vcs, list) else [vcs])
        return await self._verify_session(peer, vp, challenge)

    async def _verify_session(
        self, peer: AuthenticatedPeer, vp: dict[str, Any], challenge: str
    ) -> tuple[Session, float]:
        """Verify a parsed presentation whose challenge was consumed; open its session.

        A seam: the interop tests substitute it to build a node that accepts
        unverified presentations (``interop_tests.misbehaving``).

        Raises:
            AuthenticationError: a CredentialError for any verification failure.

        """
        vcs = vp.get("verifiableCredential")
        vcs_list = vcs if isinstance(vcs, list) else [vcs]
        if any(isinstance(v, dict) and "DelegationCredential" in (v.get("type") or []) for v in vcs_list):
            return await self._open_delegated_session(peer, vp, challenge)
        pool = self.verifier
        current = dt.datetime.now(dt.UTC)
        verified = await pool.verify_presentation(
            vp,
            challenge=challenge,
            domain=self.did,
            resolve_key=self.resolver,
            now=current,
            trusted_issuers=[peer.org_did],
        )
        for checked in verified.credentials:  # statuses: fetched and cached here, not in the worker
            if self.status_cache is not None:
                self.status_cache.check(checked.credential, now=current)
        cred = verified.credentials[0]
        if "AgentCredential" not in cred.types:
            raise AuthenticationError(
                "presented credential is not an AgentCredential", reason="WRONG_CREDENTIAL_TYPE"
            )
        not_after = cred.valid_until.timestamp() if cred.valid_until else None
        agent = cred.agent  # strictly parsed AgentClaims: what the proof actually binds
        claims = (
            {
                "organization": agent.organization,
                "name": agent.name,
                "role": agent.role,
                "scopes": sorted(agent.scopes),
                "trust_tier": agent.trust_tier,
            }
            if agent
            else {}
        )
        sess = self.sessions.create(
            peer_org=peer.org_did,
            agent_did=verified.holder,
            agent_public_key=public_key_from_did_key(verified.holder),
            claims=claims,
            credential_id=cred.id or "",
            not_after=not_after,
        )
        now = now_utc()
        self.trust.record_verification((peer.org_did, self.did), now=now)
        obs.SESSIONS_OPENED.labels(peer=peer.bundle.org_name).inc()
        return sess, self._effective_trust(peer.org_did, None, now)

    async def _open_delegated_session(
        self, peer: AuthenticatedPeer, vp: dict[str, Any], challenge: str
    ) -> tuple[Session, float]:
        """Open a session for an agent acting under a delegation chain (issue: TVP / AD).

        The chain is verified by :func:`federation.delegation.verify_delegated_presentation`
        (signatures, the chain back to an AgentCredential of ``peer``, attenuation
        of scopes, fields and purposes at every hop, depth, expiry, cycles). An
        expansion anywhere is Authorization Drift: a ``drift`` ledger entry is
        written, τ for the pair drops, every session of the chain is
        terminated, and the presentation is refused (PERMISSION_DENIED,
        ``AUTHORIZATION_DRIFT``).
        """
        from federation.delegation import DriftError, verify_delegated_job

        pool = self.verifier
        now = now_utc()
        try:
            # the chain's JSON-LD and signature work runs in the verifier pool, within its deadline
            authority = await pool.run(
                verify_delegated_job,
                vp,
                {
                    "challenge": challenge,
                    "domain": self.did,
                    "resolve_key": self.resolver,
                    "now": now,
                    "requester_org": peer.org_did,
                    "allowed_orgs": sorted(self._delegation_orgs(peer.org_did)),
                },
            )
        except DriftError as err:
            await self.record_drift(peer, err, now=now)
            raise
        if self.status_cache is not None:
            # the root's own organization's list (a pinned peer's, fetched by refresh_peer_status)
            self.status_cache.check(authority.root_credential, now=now)
        sess = self.sessions.create(
            peer_org=peer.org_did,
            agent_did=authority.holder,
            agent_public_key=public_key_from_did_key(authority.holder),
            claims=dict(authority.claims),
            credential_id=authority.credential_id,
            not_after=authority.not_after,
        )
        sess.delegation = authority  # type: ignore[attr-defined]
        self.trust.record_verification((peer.org_did, self.did), now=now)
        obs.SESSIONS_OPENED.labels(peer=peer.bundle.org_name).inc()
        return sess, self._effective_trust(peer.org_did, None, now)

    def _delegation_orgs(self, requester_org: str) -> frozenset[str]:
        """Organizations whose agents may root chains presented by ``requester_org`` (from contracts)."""
        return frozenset(
            org
            for c in self.contracts.values()
            if c.parties.provider.org == self.did and c.parties.requester.org == requester_org
            for org in c.delegation_orgs
        )

    async def record_drift(
        self, peer: AuthenticatedPeer, err: Any, *, now: dt.datetime, request: Request | None = None
    ) -> None:
        """Authorization Drift: ledger ``drift`` entry, τ drop, chain sessions terminated."""
        chain = list(getattr(err, "chain_agents", ()) or ())
        for agent in chain:
            self.sessions.terminate_agent(agent)
        self.trust.record_drift((peer.org_did, self.did), now=now)
        entry = entries.drift(
            provider_org=self.did,
            requester_org=peer.org_did,
            chain=chain,
            reason=err.reason,
            metadata=err.metadata,
            now=now,
            request=request,
        )
        await self.writer.write(entry, receipt=False)
        obs.REFUSED.labels(reason="AUTHORIZATION_DRIFT").inc()

    def _effective_trust(self, requester_org: str, contract: Contract | None, now: dt.datetime) -> float:
        ceiling = contract.trust_ceiling if contract is not None else 1.0
        return self.trust.effective_trust((requester_org, self.did), ceiling=ceiling, now=now)

    def authenticate_request(
        self,
        peer: AuthenticatedPeer,
        session_id: str,
        request: Request,
        envelope_bytes: bytes,
        org_signature: bytes,
    ) -> Session:
        """Check the envelope: session, organization signature, agent signature, replay.

        Raises:
            AuthenticationError / InvalidRequestError with a precise reason.

        """
        request.validate()  # bounded, grammar-checked identifiers before any lookup
        sess = self.sessions.get(session_id, peer_org=peer.org_did)
        try:
            verify_ed25519(peer.bundle.public_key, org_signature, envelope_bytes)
        except CredentialError as exc:
            raise AuthenticationError(
                "organization signature does not verify", reason="BAD_ORG_SIGNATURE"
            ) from exc
        if request.agent_did != sess.agent_did:
            raise AuthenticationError(
                "request agent differs from the session's agent", reason="AGENT_MISMATCH"
            )
        try:
            verify_ed25519(sess.agent_public_key, request.agent_signature, request.signed_bytes)
        except CredentialError as exc:
            raise AuthenticationError(
                "agent signature does not verify", reason="BAD_AGENT_SIGNATURE"
            ) from exc
        if request.provider_org != self.did:
            raise InvalidRequestError("request is addressed to another provider", reason="WRONG_PROVIDER")
        self.nonces.check(request.nonce, request.timestamp_ms)
        return sess

    async def serve(
        self,
        peer: AuthenticatedPeer,
        session_id: str,
        request: Request,
        envelope_bytes: bytes,
        org_signature: bytes,
    ) -> Outcome:
        """Provider side of one exchange (DESIGN.md steps 3–7).

        Raises:
            AuthenticationError / InvalidRequestError: before any decision;
                nothing is written.
            DeniedError: the policy denied; the denial is logged with a receipt.
            NotFoundError: unknown resource/subject after an allow (logged as denial).

        """
        t0 = time.perf_counter()
        sess = self.authenticate_request(peer, session_id, request, envelope_bytes, org_signature)
        now = now_utc()
        authority = getattr(sess, "delegation", None)
        if authority is not None:
            from federation.delegation import DriftError, check_request_within

            reach = request.fields
            if request.aggregate_json:  # an aggregate reaches its column and every filtered column
                from federation.datasets import AggregateQuery

                reach = aggregate_columns(AggregateQuery.parse(request.aggregate_json))
            try:
                check_request_within(
                    authority, purpose=request.purpose, fields=reach, contract_id=request.contract_id
                )
            except DriftError as err:
                sess.move("terminated")
                await self.record_drift(peer, err, now=now, request=request)
                raise
        contract = self.contracts.get(request.contract_id)
        if contract is None and request.contract_id in self.rejected_contracts:
            reason = self.rejected_contracts[request.contract_id]
            raise DeniedError(
                f"contract {request.contract_id} is not in force here ({reason})",
                reason=reason,
                metadata={"contract_id": request.contract_id},
            )
        if request.aggregate_json:
            return await self._serve_aggregate(peer, sess, request, contract, now, t0)
        decision = self._decide(peer, sess, request, contract, now)
        tau = decision.effective_trust
        if "ENGINE_ERROR" in decision.reasons:
            obs.POLICY_ENGINE_FAILURES.inc()
        sess.requests += 1
        stripped: tuple[str, ...] = ()
        payload: Any = None
        records: list[dict[str, Any]] = []
        deny_reason = ""
        if decision.allow:
            try:
                max_records = decision.max_records or 100
                records = self.data.offer(request.resource, request.subject, max_records=max_records)
                mni: frozenset[str] = frozenset()
                if contract is not None and request.purpose in contract.purposes:
                    mni = frozenset(contract.purposes[request.purpose].mni)
                records = self.provider_agent.offer(
                    records=records, requested=request.fields, mni=mni, tau=tau, rng=self.rng
                )
            except NotFoundError as exc:
                deny_reason = exc.reason
        else:
            deny_reason = decision.reason_codes[0] if decision.reason_codes else "POLICY_DENIED"
        base = self._entry_base(peer, request, contract, decision, now, fields_requested=list(request.fields))
        if deny_reason:
            sess.denials += 1
            entry = entries.denial(base, reason=deny_reason)
            obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
            self.counters_for(peer.bundle.org_name)["denied"] += 1
            await self._deny(peer, entry, decision.digest(), decision.reason_codes)
        gate, payload, stripped, released = self._gate(records, decision)
        response_bytes = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        sess.fields_released.update(released)
        entry = entries.disclosure(
            base,
            released=released,
            stripped=sorted(set(stripped)),
            record_count=len(records),
            reason=",".join(decision.reason_codes),
            response_digest=sha256_hex(response_bytes),
        )
        written = await self._log_disclosure(entry)
        self._count_release(peer.bundle.org_name, contract, request.purpose, gate, released)
        obs.EXCHANGES.labels(peer=peer.bundle.org_name, decision="allow").inc()
        obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
        return Outcome(
            disclosure_id=base["disclosure_id"],
            decision="allow",
            released_fields=released,
            stripped_fields=tuple(sorted(set(stripped))),
            payload=payload,
            record_count=len(records),
            reasons=tuple(decision.reason_codes),
            obligations=tuple(decision.obligations),
            effective_trust=tau,
            decision_hash=decision.digest(),
            receipt=written.receipt,
            entry=entry.canonical_bytes(),
            leaf_index=written.index,
            leaf_hash=written.leaf_hash,
        )

    def _decide(
        self,
        peer: AuthenticatedPeer,
        sess: Session,
        request: Request,
        contract: Contract | None,
        now: dt.datetime,
    ) -> Any:
        """The policy decision for one record request (a :class:`policy.Decision`).

        A seam: the interop tests substitute it to build a node that ignores
        policy (``interop_tests.misbehaving``).
        """
        return self.pdp.decide(
            contract_id=request.contract_id,
            purpose=request.purpose,
            requester_org=peer.org_did,
            provider_org=self.did,
            requester_agent=request.agent_did,
            agent_claims=session_claims(sess.claims, org=peer.org_did),
            requested_fields=request.fields,
            session=self._session_input(contract, sess),
            now=now,
            resource=request.resource,
            subject=request.subject,
        )

    def _gate(
        self, records: list[dict[str, Any]], decision: Any
    ) -> tuple[Any, Any, tuple[str, ...], tuple[str, ...]]:
        """The MNI gate over what the provider agent offered.

        Returns:
            (the :func:`policy.apply_gate` result, the payload that crosses,
            the stripped field names, the released field names).

        A seam: the interop tests substitute it to build a node without a gate.
        """
        gate = apply_gate(records, decision.released_fields)
        return gate, gate.payload, tuple(gate.stripped), tuple(decision.released_fields)

    async def _log_disclosure(self, entry: DisclosureEntry) -> Any:
        """Write a disclosure to the ledger; returns the writer's result with its receipt.

        A seam: the interop tests substitute it to build a node whose receipts do not verify.
        """
        return await self.writer.write(entry, receipt=True)

    def _entry_base(
        self,
        peer: AuthenticatedPeer,
        request: Request,
        contract: Contract | None,
        decision: Any,
        now: dt.datetime,
        *,
        fields_requested: list[str],
    ) -> dict[str, Any]:
        """The members a provider's disclosure and denial share (:func:`entries.provider_base`)."""
        return entries.provider_base(
            provider_org=self.did,
            requester_org=peer.org_did,
            request=request,
            contract_hash=contract.version_hash if contract is not None else "",
            decision_hash=decision.digest(),
            effective_trust=decision.effective_trust,
            now=now,
            fields_requested=fields_requested,
        )

    async def _deny(
        self,
        peer: AuthenticatedPeer,
        entry: DisclosureEntry,
        decision_hash: str,
        reasons: tuple[str, ...],
        *,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Log a refusal (durably, with a receipt), then raise it for the wire.

        Raises:
            NotFoundError: for unknown resources/subjects.
            DeniedError: otherwise; the status is the reason's in
                :data:`federation.reasons.STATUS_BY_REASON`. The metadata
                carries the disclosure id, leaf index, decision hash, reasons,
                the receipt (tlog-proof) and the logged entry, so the requester
                can verify that the refusal is on record.
        """
        written = await self.writer.write(entry, receipt=True)
        obs.EXCHANGES.labels(peer=peer.bundle.org_name, decision="deny").inc()
        err_cls = NotFoundError if entry.reason in ("UNKNOWN_RESOURCE", "UNKNOWN_SUBJECT") else DeniedError
        raise err_cls(
            f"denied by {self.config.org_name}: {', '.join(reasons) or entry.reason}",
            reason=entry.reason,
            metadata={
                "disclosure_id": entry.disclosure_id,
                "leaf_index": str(written.index),
                "decision_hash": decision_hash,
                "reasons": ",".join(reasons),
                "tlog_proof": written.receipt.to_text(),
                "entry_b64": base64.b64encode(entry.canonical_bytes()).decode(),
                **(extra or {}),
            },
        )

    @staticmethod
    def _session_input(contract: Contract | None, sess: Session) -> dict[str, int]:
        """The session's cumulative state for the policy input.

        Only given when the contract sets session limits: otherwise the
        counters cannot change the decision, and leaving them out lets
        identical requests hit the decision cache.
        """
        limits = contract.session_limits if contract is not None else None
        if limits is None or (limits.max_requests is None and limits.max_fields is None):
            return {}
        return {
            "requests": sess.requests,
            "denials": sess.denials,
            "fields_released": len(sess.fields_released),
            "released_names": sorted(sess.fields_released),
        }

    async def _serve_aggregate(
        self,
        peer: AuthenticatedPeer,
        sess: Session,
        request: Request,
        contract: Contract | None,
        now: dt.datetime,
        t0: float,
    ) -> Outcome:
        """Provider side of an aggregate query: contract, auditor, DP, ledger (docs/auditing.md).

        The contract's generic conditions (in force, parties, purpose, scopes,
        rate limits) are decided by the Rego policy; the purpose's
        ``aggregates`` entry says which kinds and columns may be asked; the
        reconstruction auditor decides before anything is computed. A denial
        is logged (``audit_denial`` for the auditor, ``denial`` otherwise)
        with the query digest and scope, never the predicate's values.

        Raises:
            DeniedError: policy, contract or auditor refusal (logged, with a receipt).
            InvalidRequestError: malformed query or predicate (nothing written).
        """
        from federation.datasets import AggregateQuery
        from policy import PolicyError

        query = AggregateQuery.parse(request.aggregate_json)
        decision = self.pdp.decide(
            contract_id=request.contract_id,
            purpose=request.purpose,
            requester_org=peer.org_did,
            provider_org=self.did,
            requester_agent=request.agent_did,
            agent_claims=session_claims(sess.claims, org=peer.org_did),
            requested_fields=(query.column,),
            session=self._session_input(contract, sess),
            now=now,
            resource=request.resource,
            subject=request.subject,
        )
        tau = decision.effective_trust
        sess.requests += 1
        base = self._entry_base(
            peer, request, contract, decision, now, fields_requested=[f"{query.kind}({query.column})"]
        )
        reason = ""
        answer = None
        extra = {"query_digest": query.digest(), "dataset": request.resource}
        if not decision.allow:
            reason = decision.reason_codes[0] if decision.reason_codes else "POLICY_DENIED"
        else:
            allowed = contract.purposes[request.purpose].aggregates if contract else None
            try:
                answer = self.datasets.answer(
                    dataset=request.resource,
                    query=query,
                    allowed=allowed,
                    requester_org=peer.org_did,
                    agent=request.agent_did,
                    now=now,
                )
            except (DeniedError, NotFoundError) as err:
                reason = err.reason
                extra.update({k: v for k, v in err.metadata.items() if k == "scope"})
            except (InvalidRequestError, PolicyError):
                raise
        if reason:
            sess.denials += 1
            if reason == "RECONSTRUCTION_RISK":
                self.trust.record_audit_hit((peer.org_did, self.did), now=now)
            if reason in (
                "RECONSTRUCTION_RISK",
                "AUDIT_CAPACITY",
                "EMPTY_SELECTION",
                "PRIVACY_BUDGET_EXHAUSTED",
            ):
                obs.AUDIT_DENIALS.labels(dataset=request.resource, reason=reason).inc()
            entry = entries.denial(base, reason=reason, extra=extra)
            await self._deny(peer, entry, decision.digest(), (reason,), extra=extra)
        assert answer is not None
        payload = [
            {
                "kind": query.kind,
                "column": query.column,
                "value": answer.value,
                "records": answer.record_count,
                "dp_epsilon": answer.dp_epsilon,
            }
        ]
        response_bytes = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        extra["scope"] = answer.scope_key
        # under DP no exact count leaves the node: not in the answer (None), not in the ledger (0)
        logged_count = answer.record_count if answer.record_count is not None else 0
        entry = entries.disclosure(
            base,
            released=[f"{query.kind}({query.column})"],
            stripped=[],
            record_count=logged_count,
            reason="",
            response_digest=sha256_hex(response_bytes),
            extra=extra,
        )
        written = await self.writer.write(entry, receipt=True)
        obs.EXCHANGES.labels(peer=peer.bundle.org_name, decision="allow").inc()
        obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
        return Outcome(
            disclosure_id=base["disclosure_id"],
            decision="allow",
            released_fields=(f"{query.kind}({query.column})",),
            stripped_fields=(),
            payload=payload,
            record_count=logged_count,
            reasons=(),
            obligations=tuple(decision.obligations),
            effective_trust=tau,
            decision_hash=decision.digest(),
            receipt=written.receipt,
            entry=entry.canonical_bytes(),
            leaf_index=written.index,
            leaf_hash=written.leaf_hash,
        )

    def counters_for(self, peer_name: str) -> dict[str, int]:
        """Mutable counters of one requester org at this provider."""
        return self.counters.per_pair.setdefault(
            peer_name,
            {"released": 0, "trimmed": 0, "denied": 0, "offered_beyond_mni": 0, "released_beyond_mni": 0},
        )

    @property
    def counters(self) -> Counters:  # noqa: D102
        if not hasattr(self, "_counters"):
            self._counters = Counters()
        return self._counters

    def _count_release(
        self, peer_name: str, contract: Contract | None, purpose: str, gate: Any, released: tuple[str, ...]
    ) -> None:
        """Count one released disclosure for the demo summary and the Prometheus OER series."""
        c = self.counters_for(peer_name)
        c["released"] += 1
        if gate.stripped:
            c["trimmed"] += 1
            for f in set(gate.stripped):
                obs.FIELDS_STRIPPED.labels(peer=peer_name, field=f).inc()
        mni: set[str] = set()
        if contract is not None and purpose in contract.purposes:
            mni = set(contract.purposes[purpose].mni)
        offered_beyond = bool(set(gate.offered) - mni)
        released_beyond = bool(set(released) - mni)
        c["offered_beyond_mni"] += int(offered_beyond)
        c["released_beyond_mni"] += int(released_beyond)
        labels = {"peer": peer_name, "contract": contract.id if contract else "", "purpose": purpose}
        obs.DISCLOSURES.labels(**labels).inc()
        obs.OFFERED_BEYOND_MNI.labels(**labels).inc(int(offered_beyond))
        obs.RELEASED_BEYOND_MNI.labels(**labels).inc(int(released_beyond))
        key = (peer_name, labels["contract"], purpose)
        tot = self._oer_totals.setdefault(key, [0, 0, 0])
        tot[0] += 1
        tot[1] += int(offered_beyond)
        tot[2] += int(released_beyond)
        obs.OER.labels(**labels, stage="offered").set(tot[1] / tot[0])
        obs.OER.labels(**labels, stage="released").set(tot[2] / tot[0])

    # ----------------------------------------------------------- requester

    async def begin_session(self, agent_did: str, peer: str) -> dict[str, str]:
        """Requester side: challenges for an agent's session with ``peer``.

        Raises:
            AuthenticationError: unknown, revoked or suspended agent.
            PeerError: unknown peer.

        """
        self._local_agent(agent_did)
        bundle = self.peers.get(peer)
        local_challenge, _ = self.challenges.issue(f"local {agent_did} {bundle.org_did}")
        peer_challenge, domain, _ = await self.peer_client.get_challenge(bundle, agent_did)
        return {
            "local_challenge": local_challenge,
            "peer_challenge": peer_challenge,
            "peer_domain": domain,
            "peer_org": bundle.org_did,
        }

    async def open_agent_session(
        self,
        *,
        agent_did: str,
        peer_org: str,
        local_challenge: str,
        local_signature: bytes,
        presentation_json: bytes,
    ) -> dict[str, Any]:
        """Requester side: check the agent's proof of possession, forward its VP.

        Raises:
            AuthenticationError: wrong challenge or signature, revoked agent.
            PeerUnavailableError / the peer's error: the peer refused.

        """
        self._local_agent(agent_did)
        bundle = self.peers.get(peer_org)
        self.challenges.consume(local_challenge, f"local {agent_did} {bundle.org_did}")
        try:
            verify_ed25519(
                public_key_from_did_key(agent_did),
                local_signature,
                session_message(local_challenge, bundle.org_did),
            )
        except CredentialError as exc:
            raise AuthenticationError(
                "agent proof of possession does not verify", reason="BAD_AGENT_SIGNATURE"
            ) from exc
        resp = await self.peer_client.open_session(bundle, presentation_json)
        self.local_sessions[resp["session_id"]] = LocalSession(
            session_id=resp["session_id"],
            peer_org=bundle.org_did,
            agent_did=agent_did,
            agent_public_key=public_key_from_did_key(agent_did),
            expires_at=resp["expires_at"],
        )
        return resp

    async def forward(
        self, session_id: str, request: Request, envelope_bytes: bytes
    ) -> tuple[ReceivedOutcome, int, bool]:
        """Requester side of one exchange: sign, forward, verify the receipt, log "received".

        Returns:
            (the peer's :class:`federation.domain.ReceivedOutcome`, index of the
            "received" entry, whether the receipt verified).

        Raises:
            AuthenticationError: unknown session, wrong agent, bad signature, revoked.
            the peer's error (re-raised as FederationError) after the denial is logged.

        """
        local = self.local_sessions.get(session_id)
        if local is None:
            raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
        if request.agent_did != local.agent_did:
            raise AuthenticationError(
                "request agent differs from the session's agent", reason="AGENT_MISMATCH"
            )
        self._local_agent(request.agent_did)
        request.validate()
        try:
            verify_ed25519(local.agent_public_key, request.agent_signature, request.signed_bytes)
        except CredentialError as exc:
            raise AuthenticationError(
                "agent signature does not verify", reason="BAD_AGENT_SIGNATURE"
            ) from exc
        bundle = self.peers.get(local.peer_org)
        org_signature = self.identity.org_key.sign(envelope_bytes)
        verifier = NoteVerifier.from_vkey(bundle.ledger_vkey)
        try:
            outcome = await self.peer_client.exchange(bundle, session_id, envelope_bytes, org_signature)
        except (DeniedError, NotFoundError) as err:
            # a decided refusal carries the provider's receipt: verify it and log it here too;
            # a refusal before any decision (e.g. Authorization Drift, a contract not in force)
            # has no disclosure at the provider and nothing to log
            if err.metadata.get("tlog_proof") and err.metadata.get("disclosure_id"):
                index, ok = await self._log_received_denial(bundle, request, err, verifier)
                err.metadata["received_leaf_index"] = str(index)
                err.metadata["receipt_verified"] = str(ok).lower()
            raise
        from pydantic import ValidationError

        from federation import receipts as rc
        from ledger import LedgerError

        receipt = outcome.receipt
        book = rc.receipt_book(self)
        refusal: FederationError | None = None
        ok = False
        try:
            rc.check_outcome_size(outcome, rc.OutcomeLimits(max_payload_bytes=self.config.max_request_bytes))
            expected: dict[str, Any] = dict(
                kind=("disclosure",),
                disclosure_id=outcome.disclosure_id,
                provider_org=bundle.org_did,
                requester_org=self.did,
                requester_agent=request.agent_did,
                contract_id=request.contract_id,
                purpose=request.purpose,
                request_digest=sha256_hex(request.signed_bytes),
                response_digest=rc.payload_digest(outcome.payload_json),
                fields_released=list(outcome.released_fields),
                fields_stripped=list(outcome.stripped_fields),
                record_count=outcome.record_count,
                decision=outcome.decision,
                reason=",".join(outcome.reasons),
                decision_hash=outcome.decision_hash,
                effective_trust=outcome.effective_trust,
            )
            if not request.aggregate_json:
                expected["fields_requested"] = list(request.fields)
            ok = rc.check_receipt(
                book,
                origin=bundle.ledger_origin,
                verifier=verifier,
                tlog_proof=receipt.tlog_proof,
                entry_bytes=receipt.entry,
                leaf_index=receipt.leaf_index,
                claimed_leaf_hash=receipt.leaf_hash,
                expected=expected,
            )
            if not ok:
                log.warning("provider receipt does not verify", peer=bundle.org_name)
        except (
            rc.OutcomeTooLargeError,
            rc.ReceiptMismatchError,
            rc.PeerLogInconsistentError,
            rc.ReceiptsUnsettledError,
        ) as exc:
            refusal = exc
            log.error("provider receipt refused", peer=bundle.org_name, reason=exc.reason, error=str(exc))
        received = self._received_base(bundle, request, receipt.entry)
        if refusal is not None:
            # the outcome is not passed on: record the refusal (with evidence) and raise it
            await self._record_receipt_refusal(
                bundle,
                refusal,
                tlog_proof=receipt.tlog_proof[: rc.MAX_TLOG_PROOF_BYTES],
                entry_b64=base64.b64encode(receipt.entry[: rc.MAX_ENTRY_BYTES]).decode(),
            )
            entry = entries.received_refusal(received, reason=refusal.reason, metadata=refusal.metadata)
            written = await self.writer.write(entry, receipt=False)
            refusal.metadata["received_leaf_index"] = str(written.index)
            raise refusal
        try:
            contract = self.contracts.get(request.contract_id)
            entry = entries.received_outcome(
                received,
                outcome,
                contract_hash=contract.version_hash if contract is not None else "",
                verified=ok,
                response_digest=expected["response_digest"],
            )
        except (ValidationError, LedgerError):
            # an unverified outcome whose members do not form an entry: record what this node knows
            entry = entries.received_unformable(received)
        written = await self.writer.write(entry, receipt=False)
        return outcome, written.index, ok

    def _received_base(self, bundle: Any, request: Request, provider_entry: bytes) -> dict[str, Any]:
        """The members every "received" entry of ``request`` shares (:func:`entries.received_base`)."""
        return entries.received_base(
            provider_org=bundle.org_did,
            requester_org=self.did,
            request=request,
            provider_entry=provider_entry,
            now=now_utc(),
        )

    async def _record_receipt_refusal(
        self, bundle: Any, refusal: FederationError, *, tlog_proof: str, entry_b64: str
    ) -> None:
        """Keep a refused receipt as evidence (bounded), store equivocation evidence, persist the book."""
        from federation import receipts as rc

        rc.receipt_book(self).remember_mismatch(
            bundle.ledger_origin, refusal.reason, str(refusal), tlog_proof=tlog_proof, entry_b64=entry_b64
        )
        evidence = getattr(refusal, "evidence", None)
        if evidence is not None:
            await self.writer.run_sync(self.ledger.record_equivocation, evidence)
        rc.persist_book(self)

    async def _log_received_denial(self, bundle, request: Request, err, verifier) -> tuple[int, bool]:
        """Check a logged refusal's receipt (bounded, bound to this request) and log "received".

        Raises:
            ReceiptMismatchError / PeerLogInconsistentError / OutcomeTooLargeError /
            ReceiptsUnsettledError (``federation.receipts``): the refusal's receipt
            is refused; the "received" entry records the reason and the
            provider's reason (``extra.provider_reason``).
        """
        import binascii

        from federation import receipts as rc

        meta = err.metadata
        book = rc.receipt_book(self)
        refusal: FederationError | None = None
        ok = False
        entry_bytes = b""
        try:
            tlog_proof = meta.get("tlog_proof", "")
            entry_b64 = meta.get("entry_b64", "")
            if len(tlog_proof) > rc.MAX_TLOG_PROOF_BYTES or len(entry_b64) > 4 * rc.MAX_ENTRY_BYTES // 3 + 4:
                raise rc.OutcomeTooLargeError(
                    "the refusal's receipt is too large", metadata={"field": "tlog_proof/entry_b64"}
                )
            try:
                entry_bytes = base64.b64decode(entry_b64, validate=True)
            except binascii.Error as exc:
                raise rc.ReceiptMismatchError(
                    "the refusal's entry is not base64", metadata={"mismatch": "entry"}
                ) from exc
            index_text = meta.get("leaf_index", "")
            ok = rc.check_receipt(
                book,
                origin=bundle.ledger_origin,
                verifier=verifier,
                tlog_proof=tlog_proof,
                entry_bytes=entry_bytes,
                leaf_index=int(index_text) if index_text.isdigit() and len(index_text) < 20 else -1,
                claimed_leaf_hash=None,
                expected=dict(
                    kind=("denial", "audit_denial"),
                    disclosure_id=meta.get("disclosure_id", ""),
                    provider_org=bundle.org_did,
                    requester_org=self.did,
                    requester_agent=request.agent_did,
                    contract_id=request.contract_id,
                    purpose=request.purpose,
                    request_digest=sha256_hex(request.signed_bytes),
                    decision="deny",
                    reason=err.reason,
                    decision_hash=meta.get("decision_hash", ""),
                    fields_released=[],
                    record_count=0,
                ),
            )
        except (
            rc.OutcomeTooLargeError,
            rc.ReceiptMismatchError,
            rc.PeerLogInconsistentError,
            rc.ReceiptsUnsettledError,
        ) as exc:
            refusal = exc
            log.error("provider refusal receipt refused", peer=bundle.org_name, reason=exc.reason)
            await self._record_receipt_refusal(
                bundle,
                exc,
                tlog_proof=meta.get("tlog_proof", "")[: rc.MAX_TLOG_PROOF_BYTES],
                entry_b64=meta.get("entry_b64", "")[: 4 * rc.MAX_ENTRY_BYTES // 3 + 4],
            )
        reason = refusal.reason if refusal is not None else (err.reason if ok else "RECEIPT_INVALID")
        received = self._received_base(bundle, request, entry_bytes)
        if ok:
            received["disclosure_id"] = meta.get("disclosure_id", "")
        entry = entries.received_denial(
            received,
            reason=reason,
            decision_hash=meta.get("decision_hash", "") if ok else "",
            extra={"provider_reason": err.reason[:200], **entries.bounded_extra(refusal.metadata)}
            if refusal is not None
            else {},
        )
        written = await self.writer.write(entry, receipt=False)
        if refusal is not None:
            refusal.metadata["received_leaf_index"] = str(written.index)
            refusal.metadata["provider_reason"] = err.reason[:200]
            raise refusal
        return written.index, ok

    async def close(self) -> None:
        """Drain the ledger writer and persist state."""
        await self.writer.stop()
        self.persist_state()
        self.ledger.close()
        self.witness.close()
        self.verifier.close()
