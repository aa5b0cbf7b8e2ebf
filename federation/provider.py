"""The provider side of an exchange: verify, decide, gate, log, answer (DESIGN.md steps 3–7).

:class:`ProviderSide` serves a peer's agents: challenges and sessions (a
verified presentation, or a delegation chain), then each request —
authenticate the envelope, check Authorization Drift, decide with the
policy, let the provider agent offer, apply the MNI gate, log the
disclosure or the refusal, answer with the receipt. The pure steps (plan
the entry, build the outcome or the refusal) are :mod:`federation.exchange`;
this class is the async shell around them that reads the node's state and
writes the ledger.

It is a part of :class:`federation.node.Node` (the composition root holds
the state it reads and the injected clock and peer client), and the seams the interop tests
substitute (``_verify_session``, ``_decide``, ``_gate``, ``_log_disclosure``)
live here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any, NoReturn

import structlog

from credentials import (
    CredentialError,
    public_key_from_did_key,
)
from federation import approvals, behaviour, content, entries, exchange
from federation import observability as obs
from federation.domain import Envelope, Outcome, Request, Signed
from federation.errors import (
    AuthenticationError,
    DeniedError,
    FederationError,
    InvalidRequestError,
    NotFoundError,
)
from federation.peers import AuthenticatedPeer
from federation.replicas import shared_call
from federation.sessions import Session
from federation.statuslists import StatusListPublisher
from ledger import (
    DisclosureEntry,
)
from policy import (
    Contract,
    PolicyError,
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


class ProviderSide:
    """The provider half of :class:`federation.node.Node` (module docstring)."""

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
            if hit is not None and self.clock.monotonic() - hit[1] < ttl:
                continue
            try:
                doc = await self.peer_client.get_status_list(bundle, purpose)
            except FederationError as exc:  # fail closed later: the checker finds no list
                log.warning("peer status list unavailable", peer=bundle.org_name, error=str(exc))
                continue
            self.peer_status_docs[url] = (doc, self.clock.monotonic())
            if self.status_cache is not None:
                self.status_cache.invalidate(url)

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
        from credentials import load_json

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
        await shared_call(self.shared_state, self.challenges.consume, challenge, f"{peer.org_did} {holder}")
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
        current = self.clock.now()
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
        sess = await shared_call(
            self.shared_state,
            self.sessions.create,
            peer_org=peer.org_did,
            agent_did=verified.holder,
            agent_public_key=public_key_from_did_key(verified.holder),
            claims=claims,
            credential_id=cred.id or "",
            not_after=not_after,
        )
        now = self.clock.now()
        tau = await shared_call(self.shared_state, self._verified, peer.org_did, now)
        obs.SESSIONS_OPENED.labels(peer=peer.bundle.org_name).inc()
        return sess, tau

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
        now = self.clock.now()
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
        sess = await shared_call(
            self.shared_state,
            self.sessions.create,
            peer_org=peer.org_did,
            agent_did=authority.holder,
            agent_public_key=public_key_from_did_key(authority.holder),
            claims=dict(authority.claims),
            credential_id=authority.credential_id,
            not_after=authority.not_after,
            delegation=authority,  # stored with the session (replicas share it)
        )
        sess.delegation = authority
        tau = await shared_call(self.shared_state, self._verified, peer.org_did, now)
        obs.SESSIONS_OPENED.labels(peer=peer.bundle.org_name).inc()
        return sess, tau

    def _verified(self, requester_org: str, now: dt.datetime) -> float:
        """Count a verification of ``requester_org`` and return its τ (blocking for replicas)."""
        self.trust.record_verification((requester_org, self.did), now=now)
        return self._effective_trust(requester_org, None, now)

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

        def terminate_and_penalize() -> None:
            for agent in chain:
                self.sessions.terminate_agent(agent)
            self.trust.record_drift((peer.org_did, self.did), now=now)

        await shared_call(self.shared_state, terminate_and_penalize)
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

    def _open_payload(self, signed: Signed, kind: str, public_key: bytes, *, signer: str, field: str) -> Any:
        """Verify and decode one signed payload (the seam every signature check goes through).

        Through the injected :class:`federation.domain.PayloadCodec` (the
        server's :class:`federation.wire.WirePayloads`); arguments, result and
        errors as its ``open``.

        Raises:
            RuntimeError: the node was built without a payload codec.

        """
        if self.payloads is None:
            raise RuntimeError("this node was built without a payload codec (federation.server.open_node)")
        return self.payloads.open(signed, kind, public_key, signer=signer, field=field)

    def authenticate_request(self, peer: AuthenticatedPeer, envelope: Signed) -> tuple[Session, Request]:
        """Open the organization-signed envelope, then the agent-signed request, then check replay.

        Receiver order of docs/spec/accord-v1.md §4.4 for each signed payload
        (bound, type/version, signature, parse, unknown fields): the envelope
        with the caller's pinned organization key, then, inside it, the
        request with the key of the session's agent. Identifiers are checked
        before any use.

        Args:
            peer: the mTLS-authenticated caller.
            envelope: ``ExchangeRequest.envelope`` as received.

        Returns:
            (the session, the domain request whose ``signed_bytes`` are the
            agent's payload bytes as received).

        Raises:
            AuthenticationError / InvalidRequestError with a precise reason
            (see :func:`federation.signing.open_payload`), ``REQUESTER_MISMATCH``,
            ``UNKNOWN_SESSION``, ``AGENT_MISMATCH``, ``WRONG_PROVIDER``, replay.

        """
        env: Envelope = self._open_payload(
            envelope, "ExchangeEnvelope", peer.bundle.public_key, signer="org", field="envelope"
        )
        if env.requester_org != peer.org_did:
            raise AuthenticationError(
                "envelope names another requesting organization", reason="REQUESTER_MISMATCH"
            )
        sess = self.sessions.get(env.session_id, peer_org=peer.org_did)
        request: Request = self._open_payload(
            env.request, "RequestBody", sess.agent_public_key, signer="agent", field="envelope.request"
        )
        request.validate()  # bounded, grammar-checked identifiers before any use
        if request.agent_did != sess.agent_did:
            raise AuthenticationError(
                "request agent differs from the session's agent", reason="AGENT_MISMATCH"
            )
        if request.provider_org != self.did:
            raise InvalidRequestError("request is addressed to another provider", reason="WRONG_PROVIDER")
        self.nonces.check(request.nonce, request.timestamp_ms)
        return sess, request

    async def serve(self, peer: AuthenticatedPeer, envelope: Signed) -> Outcome:
        """Provider side of one exchange (DESIGN.md steps 3–7).

        Args:
            peer: the mTLS-authenticated caller.
            envelope: the organization-signed ``ExchangeEnvelope`` as received.

        Raises:
            AuthenticationError / InvalidRequestError: before any decision;
                nothing is written.
            DeniedError: the policy denied; the denial is logged with a receipt.
            NotFoundError: unknown resource/subject after an allow (logged as denial).

        """
        t0 = time.perf_counter()
        now = self.clock.now()  # the one reading of the clock for this request
        sess, request = await shared_call(self.shared_state, self.authenticate_request, peer, envelope)
        authority = sess.delegation
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
        # issue #15: a suspended agent (here or at another replica), a throttled session
        await behaviour.admit(self, sess, request, contract, now)
        if request.aggregate_json:
            return await self._serve_aggregate(peer, sess, request, contract, now, t0)
        # issue #15: an operator's approval in effect for requests of this shape (or a refusal)
        approval_id = await approvals.precheck_request(self, peer.org_did, request, contract, now)
        decision = await shared_call(
            self.shared_state, self._counted, sess, contract, self._decide, peer, sess, request, contract, now
        )
        tau = decision.effective_trust
        if "ENGINE_ERROR" in decision.reasons:
            obs.POLICY_ENGINE_FAILURES.inc()
        sess.requests += 1
        records: list[dict[str, Any]] = []
        refused = "" if decision.allow else exchange.deny_reason(decision)
        if decision.allow and not approval_id:
            await approvals.hold_if_needed(self, peer.org_did, request, contract, decision, now)
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
                refused = exc.reason
        base = self._entry_base(peer, request, contract, decision, now, fields_requested=list(request.fields))
        if refused:
            sess.denials += 1
            await self._count_shared(sess, contract, denials=1)
            obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
            await behaviour.observe(
                self,
                peer_org=peer.org_did,
                sess=sess,
                request=request,
                contract=contract,
                fields=request.fields,
                released=(),
                refused=True,
                audit_hit=False,
                now=now,
            )
            await self._deny(
                peer, exchange.plan_refusal(base, reason=refused, reasons=decision.reason_codes), decision
            )
        gate, payload, stripped, released = self._gate(records, decision)
        # typed values and free-text screening (federation.content): after the gate, before the digest
        checked = await content.provider_controls(payload, contract, content.screener_for(self))
        extra = {**self._provenance(sess), **checked.extra}
        if checked.deny_reason:
            sess.denials += 1
            await self._count_shared(sess, contract, denials=1)
            obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
            await self._deny(
                peer,
                exchange.plan_refusal(base, reason=checked.deny_reason, extra=extra),
                decision,
            )
        payload, stripped = checked.payload, (*stripped, *checked.stripped)
        sess.fields_released.update(released)
        await self._count_shared(sess, contract, released=released)
        plan = exchange.plan_disclosure(
            base,
            payload=payload,
            released=released,
            stripped=stripped,
            record_count=len(records),
            reasons=tuple(decision.reason_codes),
            extra={**extra, **({"approval_id": approval_id} if approval_id else {})} or None,
        )
        written = await self._log_disclosure(plan.entry)
        self._count_release(peer.bundle.org_name, contract, request.purpose, gate, released)
        await behaviour.exposure(  # issue #15: attempted OER per window against the contract's tolerance
            self, peer_org=peer.org_did, request=request, contract=contract, offered=gate.offered, now=now
        )
        await behaviour.observe(
            self,
            peer_org=peer.org_did,
            sess=sess,
            request=request,
            contract=contract,
            fields=request.fields,
            released=released,
            refused=False,
            audit_hit=False,
            now=now,
        )
        obs.EXCHANGES.labels(peer=peer.bundle.org_name, decision="allow").inc()
        obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
        return exchange.outcome(plan, decision, written)

    def _provenance(self, sess: Session) -> dict[str, str]:
        """Entry ``extra`` attributing the request: the delegation chain (if any) and the provider agent.

        For a delegated session: ``root_agent``, ``chain_agents`` and
        ``delegation_chain`` (credential ids), so ``accord ledger query --agent``
        finds the request under any agent of the chain, and ``provider_agent``:
        the provider-side agent model that acted. Empty for an undelegated session.
        """
        if sess.delegation is None:
            return {}
        return {**sess.delegation.provenance(), "provider_agent": str(self.config.provider_agent)[:200]}

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

    async def _deny(self, peer: AuthenticatedPeer, plan: exchange.Plan, decision: Any) -> NoReturn:
        """Log a planned refusal (durably, with a receipt), then raise it for the wire.

        Raises:
            NotFoundError / DeniedError: :func:`federation.exchange.refusal`, carrying
                the receipt so the requester can verify the refusal is on record.

        """
        written = await self.writer.write(plan.entry, receipt=True)
        obs.EXCHANGES.labels(peer=peer.bundle.org_name, decision="deny").inc()
        raise exchange.refusal(
            plan, org_name=self.config.org_name, decision_hash=decision.digest(), written=written
        )

    def _counted(
        self, sess: Session, contract: Contract | None, decide: Any, /, *args: Any, **kwargs: Any
    ) -> Any:
        """Run ``decide`` with the session's counters as every replica counted them (blocking).

        For replicas, under a contract with session limits, the decision runs
        with the session's row locked and its shared counters loaded, and the
        request is counted in the same transaction (a limit holds across the
        replicas); otherwise ``decide`` runs as is.
        """
        if self.shared_state is None or not self._session_input(contract, sess):
            return decide(*args, **kwargs)
        with self.sessions.counted(sess):
            return decide(*args, **kwargs)

    async def _count_shared(
        self, sess: Session, contract: Contract | None, *, denials: int = 0, released: Any = ()
    ) -> None:
        """Replicas, contract with session limits: add a denial / released names to the shared counters."""
        if self.shared_state is not None and self._session_input(contract, sess):
            await shared_call(
                self.shared_state, self.sessions.count, sess, denials=denials, released=released
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

        query = AggregateQuery.parse(request.aggregate_json)
        decision = await shared_call(
            self.shared_state,
            self._counted,
            sess,
            contract,
            self.pdp.decide,
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
        sess.requests += 1
        base = self._entry_base(
            peer, request, contract, decision, now, fields_requested=[f"{query.kind}({query.column})"]
        )
        reason = ""
        answer = None
        extra = {"query_digest": query.digest(), "dataset": request.resource, **self._provenance(sess)}
        if not decision.allow:
            reason = exchange.deny_reason(decision)
        else:
            allowed = contract.purposes[request.purpose].aggregates if contract else None
            try:
                # the selection scan and the auditor's decision are CPU work: off the event loop;
                # the service's lock keeps check + commit + persisted state atomic in the thread
                answer = await asyncio.to_thread(
                    self.datasets.answer,
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
            await self._count_shared(sess, contract, denials=1)
            if reason == "RECONSTRUCTION_RISK":
                await shared_call(
                    self.shared_state, self.trust.record_audit_hit, (peer.org_did, self.did), now=now
                )
            await behaviour.observe(
                self,
                peer_org=peer.org_did,
                sess=sess,
                request=request,
                contract=contract,
                fields=aggregate_columns(query),
                released=(),
                refused=True,
                audit_hit=reason == "RECONSTRUCTION_RISK",
                now=now,
            )
            if reason in (
                "RECONSTRUCTION_RISK",
                "AUDIT_CAPACITY",
                "EMPTY_SELECTION",
                "PRIVACY_BUDGET_EXHAUSTED",
            ):
                obs.AUDIT_DENIALS.labels(dataset=request.resource, reason=reason).inc()
            await self._deny(
                peer, exchange.plan_refusal(base, reason=reason, reasons=(reason,), extra=extra), decision
            )
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
        extra["scope"] = answer.scope_key
        # under DP no exact count leaves the node: not in the answer (None), not in the ledger (0)
        logged_count = answer.record_count if answer.record_count is not None else 0
        plan = exchange.plan_disclosure(
            base,
            payload=payload,
            released=(f"{query.kind}({query.column})",),
            stripped=(),
            record_count=logged_count,
            reasons=(),
            extra=extra,
        )
        written = await self._log_disclosure(plan.entry)
        obs.EXCHANGES.labels(peer=peer.bundle.org_name, decision="allow").inc()
        obs.EXCHANGE_SECONDS.observe(time.perf_counter() - t0)
        return exchange.outcome(plan, decision, written)

    def _count_release(
        self, peer_name: str, contract: Contract | None, purpose: str, gate: Any, released: tuple[str, ...]
    ) -> None:
        """Count one released disclosure in the Prometheus series (stripped fields, OER)."""
        if gate.stripped:
            for f in set(gate.stripped):
                obs.FIELDS_STRIPPED.labels(peer=peer_name, field=f).inc()
        mni: set[str] = set()
        if contract is not None and purpose in contract.purposes:
            mni = set(contract.purposes[purpose].mni)
        offered_beyond = bool(set(gate.offered) - mni)
        released_beyond = bool(set(released) - mni)
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
