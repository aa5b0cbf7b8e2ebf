"""Witnessing between nodes: every node cosigns its peers' checkpoints.

Each node runs a C2SP tlog-witness (:class:`ledger.Witness`) for every
pinned peer's log (origin and vkey from the peer's bundle) behind
``FederationService.AddCheckpoint``, and a :class:`WitnessCoordinator` that
periodically submits its own latest checkpoint to every peer with a
consistency proof from the size that peer last cosigned (learning it from a
409 answer, as the spec intends), and records the cosignatures. The log's
witness policy is "k of the peers' witnesses" (C2SP tlog-policy,
``witness_quorum`` in ``node.toml``); a checkpoint meeting it makes the
entries it covers WITNESSED.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from federation.clock import now_utc
from federation.errors import FederationError

log = structlog.get_logger("accord.witnessing")


def witness_policy_for(node: Any) -> Any | None:
    """The node's tlog-policy: k of its peers' witnesses (None without peers)."""
    from ledger.policy import WitnessPolicy

    witnesses = {b.org_name: b.witness_vkey for b in node.peers if b.witness_vkey}
    if not witnesses:
        return None
    k = max(1, min(node.config.witness_quorum, len(witnesses)))
    return WitnessPolicy.k_of_n(k, witnesses, logs=[node.ledger_signer.vkey])


class WitnessCoordinator:
    """Submits this node's checkpoints to its peers' witnesses (see module docstring)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.cosigned: dict[str, int] = {}
        self.failures: dict[str, str] = {}
        self.reported: int | None = None

    async def round(self) -> dict[str, int]:
        """One pass over every peer; returns peer name → size it has cosigned."""
        n = self.node

        def checkpoint_everything():
            # entries appended without a receipt ("received") are integrated here
            cp = n.ledger.latest_checkpoint()
            if cp is None or n.ledger.size() > cp.checkpoint.size:
                return n.ledger.integrate()
            return cp

        cp = await n.writer.run_sync(checkpoint_everything)

        def evidence() -> list[Any]:
            return [*n.ledger.equivocations(), *n.witness.equivocations()]

        from federation.observability import EQUIVOCATIONS

        seen = await n.writer.run_sync(evidence)
        EQUIVOCATIONS.set(len(seen))
        if self.reported is None:  # evidence reported before a restart is not reported again
            self.reported = int(n.store.get_state("equivocations_reported") or 0)
        if len(seen) > self.reported:
            for ev in seen[self.reported :]:
                await self._report_equivocation(ev)
            self.reported = len(seen)
            n.store.put_state("equivocations_reported", self.reported, now=now_utc())
        if cp is None:
            return dict(self.cosigned)
        size = cp.checkpoint.size

        async def one(bundle: Any) -> None:
            try:
                await self._submit(bundle, cp, size)
            except FederationError as exc:
                self.failures[bundle.org_name] = f"{exc.reason}: {exc}"
            except Exception as exc:  # a peer's bad answer must not stop the others
                self.failures[bundle.org_name] = f"{exc.__class__.__name__}: {exc}"
                log.warning("witness round failed", peer=bundle.org_name, error=str(exc))

        await asyncio.gather(
            *(one(b) for b in list(n.peers) if b.witness_vkey and self.cosigned.get(b.org_name) != size)
        )
        await self.settle_receipts()
        return dict(self.cosigned)

    async def settle_receipts(self) -> int:
        """Settle peers' pending receipts against their witnessed checkpoints (``federation.receipts``).

        For every peer with pending receipts: fetch its latest witnessed
        checkpoint, require the witness policy, prove consistency with the last
        verified checkpoint and with every pending one. A failed proof stores
        both notes as equivocation evidence (reported by the next round). The
        book is persisted (node state ``peer_logs``) after the pass.

        Returns:
            How many pending checkpoints were settled.
        """
        from federation.receipts import PeerLogInconsistentError, peer_log_policy, receipt_book
        from ledger import LedgerError, NoteVerifier

        n = self.node
        book = receipt_book(n)
        settled = 0
        touched = False
        for bundle in list(n.peers):
            origin = bundle.ledger_origin
            if not book.pending(origin) or book.inconsistent(origin):
                continue
            touched = True
            try:
                note = await n.peer_client.witnessed_checkpoint(bundle)
                settled += await book.settle(
                    origin,
                    witnessed_note=note,
                    verifier=NoteVerifier.from_vkey(bundle.ledger_vkey),
                    policy=peer_log_policy(n, bundle),
                    prove=lambda a, b, bd=bundle: n.peer_client.consistency_proof(bd, a, b),
                    now=now_utc(),
                )
            except PeerLogInconsistentError as err:
                log.error("PEER LOG INCONSISTENT", peer=bundle.org_name, detail=err.metadata.get("detail"))
                self.failures[bundle.org_name] = f"{err.reason}: {err}"
                await n.writer.run_sync(n.ledger.record_equivocation, err.evidence)  # type: ignore[attr-defined]
            except (LedgerError, FederationError) as exc:  # not witnessed yet, peer down: next round
                self.failures[bundle.org_name] = f"receipts unsettled: {exc.reason}"
        if touched:  # a snapshot taken on the loop, written off it (the store commits synchronously)
            await asyncio.to_thread(n.store.put_state, "peer_logs", book.to_dict(), now=now_utc())
        return settled

    async def _report_equivocation(self, ev: Any) -> None:
        """Alert and record an equivocation in this node's own ledger (evidence by digest).

        The ledger entry names the log (origin), the size and the SHA-256 of both
        signed notes; the notes themselves stay in the evidence table
        (``accord ledger status`` prints them).
        """
        from federation import entries

        n = self.node
        log.error("EQUIVOCATION", origin=ev.origin, size=ev.size, detail=ev.detail)
        peer = next((b for b in n.peers if b.ledger_origin == ev.origin), None)
        entry = entries.equivocation(
            log_owner=peer.org_did if peer else n.did, this_org=n.did, evidence=ev, now=now_utc()
        )
        await n.writer.write(entry, receipt=False)

    async def _submit(self, bundle: Any, cp: Any, size: int) -> None:
        n = self.node
        old = self.cosigned.get(bundle.org_name, 0)
        for _ in range(2):
            body = await n.writer.run_sync(lambda o=old: n.ledger.add_checkpoint_request(o, size=size))
            status, answer = await n.peer_client.add_checkpoint(bundle, body)
            if status == 409:
                old = int(answer.decode().strip() or 0)
                if old > size:
                    self.failures[bundle.org_name] = f"witness holds size {old} > our {size}"
                    return
                continue
            if status != 200:
                self.failures[bundle.org_name] = f"HTTP-{status}: {answer.decode(errors='replace').strip()}"
                log.warning("witness refused checkpoint", peer=bundle.org_name, status=status)
                return
            await n.writer.run_sync(lambda a=answer: n.ledger.add_cosignatures(cp, a))
            self.cosigned[bundle.org_name] = size
            self.failures.pop(bundle.org_name, None)
            return

    async def run_forever(self, every_seconds: float) -> None:
        """Call :meth:`round` every ``every_seconds`` seconds."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.round()
            except Exception as exc:  # keep witnessing
                log.warning("witness round error", error=str(exc))
