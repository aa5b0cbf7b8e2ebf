"""The requester side of an exchange: authenticate the agent, sign, forward, verify, log "received".

:class:`RequesterSide` serves this organization's own agents: it checks
their proof of possession and request signatures, signs the envelope with
the organization key, forwards it through the injected peer client,
verifies the provider's receipt offline (``federation.receipts``) and logs
a "received" entry for every answer, released or refused. It is a part of
:class:`federation.node.Node`, which holds the state it reads.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from typing import Any

import structlog

from credentials import public_key_from_did_key
from federation import content, entries, onward
from federation.domain import LocalSession, Possession, ReceivedOutcome, Request, Signed
from federation.entries import sha256_hex
from federation.errors import (
    AuthenticationError,
    DeniedError,
    FederationError,
    InvalidRequestError,
    NotFoundError,
)
from federation.replicas import shared_call
from ledger import NoteVerifier

log = structlog.get_logger("accord.node")


class RequesterSide:
    """The requester half of :class:`federation.node.Node` (module docstring)."""

    def _local_agent(self, agent_did: str, *, now: dt.datetime | None = None):
        """A registered, unrevoked, unsuspended agent of this org (cached 0.5 s), valid at ``now``."""
        hit = self._agent_cache.get(agent_did)
        t = self.clock.monotonic()
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
        now = now or self.clock.now()
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

    async def begin_session(self, agent_did: str, peer: str) -> dict[str, str]:
        """Requester side: challenges for an agent's session with ``peer``.

        Raises:
            AuthenticationError: unknown, revoked or suspended agent.
            PeerError: unknown peer.

        """
        self._local_agent(agent_did)
        bundle = self.peers.get(peer)
        local_challenge, _ = await shared_call(
            self.shared_state, self.challenges.issue, f"local {agent_did} {bundle.org_did}"
        )
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
        possession: Signed,
        presentation_json: bytes,
    ) -> dict[str, Any]:
        """Requester side: check the agent's proof of possession, forward its VP.

        Args:
            agent_did: the agent (its client certificate was checked by the service).
            peer_org: the peer organization (DID or registered name).
            possession: the agent-signed ``SessionPossession`` as received.
            presentation_json: the VP for the peer, forwarded as is.

        Raises:
            AuthenticationError: wrong challenge or signature, revoked agent.
            InvalidRequestError: a malformed possession payload (reason from
                :func:`federation.signing.open_payload`), or one naming
                another agent or peer (``POSSESSION_MISMATCH``).
            PeerUnavailableError / the peer's error: the peer refused.

        """
        self._local_agent(agent_did)
        bundle = self.peers.get(peer_org)
        proof: Possession = self._open_payload(
            possession,
            "SessionPossession",
            public_key_from_did_key(agent_did),
            signer="agent",
            field="possession",
        )
        if proof.agent_did != agent_did or proof.peer_org != bundle.org_did:
            raise InvalidRequestError(
                "the proof of possession names another agent or peer", reason="POSSESSION_MISMATCH"
            )
        await shared_call(
            self.shared_state, self.challenges.consume, proof.challenge, f"local {agent_did} {bundle.org_did}"
        )
        resp = await self.peer_client.open_session(bundle, presentation_json)
        local_session = LocalSession(
            session_id=resp["session_id"],
            peer_org=bundle.org_did,
            agent_did=agent_did,
            agent_public_key=public_key_from_did_key(agent_did),
            expires_at=resp["expires_at"],
        )
        await shared_call(
            self.shared_state, self.local_sessions.__setitem__, resp["session_id"], local_session
        )
        return resp

    async def forward(
        self, session_id: str, signed: Signed, *, caller_agent: str
    ) -> tuple[ReceivedOutcome, int, bool]:
        """Requester side of one exchange: verify, wrap, sign, forward, verify the receipt, log "received".

        The agent's ``SignedPayload`` is verified with the session agent's key
        and forwarded untouched inside this organization's signed
        ``ExchangeEnvelope`` (docs/spec/accord-v1.md §4).

        Args:
            session_id: the peer's session id (from ``open_agent_session``).
            signed: the agent-signed ``RequestBody`` as received.
            caller_agent: the agent DID of the mTLS client certificate.

        Returns:
            (the peer's :class:`federation.domain.ReceivedOutcome`, index of the
            "received" entry, whether the receipt verified).

        Raises:
            AuthenticationError: unknown session, wrong agent, bad signature, revoked.
            InvalidRequestError: a malformed request (reason from
                :func:`federation.signing.open_payload` or validation).
            the peer's error (re-raised as FederationError) after the denial is logged.

        """
        now = self.clock.now()  # the one reading of the clock for this request
        local = await shared_call(self.shared_state, self.local_sessions.get, session_id)
        if local is None:
            raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
        if caller_agent != local.agent_did:
            raise AuthenticationError(
                "request agent differs from the session's agent", reason="AGENT_MISMATCH"
            )
        self._local_agent(local.agent_did, now=now)
        request: Request = self._open_payload(
            signed, "RequestBody", local.agent_public_key, signer="agent", field="request"
        )
        request.validate()
        if request.agent_did != local.agent_did:
            raise AuthenticationError(
                "request agent differs from the session's agent", reason="AGENT_MISMATCH"
            )
        bundle = self.peers.get(local.peer_org)
        # issue #15: data received under a contract does not go on to a third organization unless allowed
        await onward.check_outgoing(self, request=request, target_org=bundle.org_did, now=now, local=local)
        # the agent's three members, untouched (nothing unsigned rides along)
        envelope = self.payloads.sign_envelope(
            self.identity.org_key, session_id=session_id, request=signed, requester_org=self.did
        )
        verifier = NoteVerifier.from_vkey(bundle.ledger_vkey)
        try:
            outcome = await self.peer_client.exchange(bundle, envelope)
        except (DeniedError, NotFoundError) as err:
            # a decided refusal carries the provider's receipt: verify it and log it here too;
            # a refusal before any decision (e.g. Authorization Drift, a contract not in force)
            # has no disclosure at the provider and nothing to log
            if err.metadata.get("tlog_proof") and err.metadata.get("disclosure_id"):
                index, ok = await self._log_received_denial(bundle, request, err, verifier, now=now)
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
        received = self._received_base(bundle, request, receipt.entry, now=now)
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
        contract = self.contracts.get(request.contract_id)
        # free text from another organization is untrusted: screen it, label it or quarantine it
        screener = content.screener_for(self)
        screened = await content.requester_controls(outcome.payload_json, contract, screener)
        try:
            entry = entries.received_outcome(
                received,
                outcome,
                contract_hash=contract.version_hash if contract is not None else "",
                verified=ok,
                response_digest=expected["response_digest"],
                extra=screened.extra,
            )
        except (ValidationError, LedgerError):
            # an unverified outcome whose members do not form an entry: record what this node knows
            entry = entries.received_unformable(received)
        written = await self.writer.write(entry, receipt=False)
        if ok and outcome.decision == "allow":  # issue #15: keep its disclosure id, obligations, onward terms
            await onward.keep_received(
                self,
                provider_org=bundle.org_did,
                request=request,
                outcome=outcome,
                contract=contract,
                now=now,
            )
        if screened.labels:
            outcome = dataclasses.replace(
                outcome, payload_json=screened.payload_json, content_labels=screened.labels
            )
        return outcome, written.index, ok

    def _received_base(
        self, bundle: Any, request: Request, provider_entry: bytes, *, now: dt.datetime
    ) -> dict[str, Any]:
        """The members every "received" entry of ``request`` shares (:func:`entries.received_base`)."""
        return entries.received_base(
            provider_org=bundle.org_did,
            requester_org=self.did,
            request=request,
            provider_entry=provider_entry,
            now=now,
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

    async def _log_received_denial(
        self, bundle, request: Request, err, verifier, *, now: dt.datetime
    ) -> tuple[int, bool]:
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
        received = self._received_base(bundle, request, entry_bytes, now=now)
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
