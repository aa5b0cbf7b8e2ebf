"""Witnessing between nodes: every node cosigns its peers' checkpoints.

Each node runs a C2SP tlog-witness (:class:`ledger.Witness`) for every
pinned peer's log (origin and vkey from the peer's bundle) behind
``FederationService.AddCheckpoint``, and a :class:`WitnessCoordinator` that
periodically submits its own latest checkpoint to each *configured* witness
with a consistency proof from the size that witness last cosigned (learning
it from a 409 answer, as the spec intends), and records the cosignatures.
The log's witness policy is explicit (C2SP tlog-policy): ``witness_quorum``
of the peers named in ``witnesses`` (``node.toml``); pinning another
organization never changes it. A checkpoint meeting it makes the entries it
covers WITNESSED.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from federation.clock import now_utc
from federation.errors import FederationError

log = structlog.get_logger("accord.witnessing")


WITNESSING_STATE = "witnessing"
"""``node_state`` key of the witnessing status (:meth:`WitnessCoordinator.status`)."""
REPEAT_LOG_SECONDS = 60.0
"""The same failure of one witness is logged again at most this often (with a repeat count)."""


def configured_witnesses(node: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The witnesses named in ``node.toml`` (``witnesses``), split into usable and not.

    Returns:
        ``(usable, unusable)``: usable = name -> witness vkey (C2SP type 0x04)
        of each named witness that is a pinned peer publishing a witness key;
        unusable = name -> why not (``"not a pinned peer"``, ``"its bundle has no witness key"``).

    """
    pinned = {b.org_name: b for b in node.peers}
    usable: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for name in node.config.witnesses:
        bundle = pinned.get(name)
        if bundle is None:
            unusable[name] = "not a pinned peer (accord peer add its bundle, or remove it from witnesses)"
        elif not bundle.witness_vkey:
            unusable[name] = "its bundle has no witness key"
        else:
            usable[name] = bundle.witness_vkey
    return usable, unusable


def witness_policy_for(node: Any) -> Any | None:
    """The node's own log's tlog-policy: ``witness_quorum`` of the configured ``witnesses``.

    Only the witnesses named in ``node.toml`` count (pinning an organization
    never changes the policy). Returns None when fewer usable witnesses than
    the quorum are pinned (checkpoints are then never WITNESSED;
    :func:`quorum_problem` says why).
    """
    from ledger.policy import WitnessPolicy

    usable, _ = configured_witnesses(node)
    k = node.config.witness_quorum
    if not usable or k > len(usable):
        return None
    return WitnessPolicy.k_of_n(k, usable, logs=[node.ledger_signer.vkey])


def quorum_problem(node: Any, failing: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why the witness quorum cannot be met now, or None when it can.

    Args:
        node: the node (config and peers).
        failing: witnesses whose last attempt failed.

    Returns:
        One line for an operator, e.g. ``"quorum 2 of 2 witnesses: supplier not a pinned peer"``.

    """
    usable, unusable = configured_witnesses(node)
    k = node.config.witness_quorum
    if not node.config.witnesses:
        return "no witnesses configured (witnesses in node.toml; accord peer add --witness)"
    reachable = [w for w in usable if w not in failing]
    if len(reachable) >= k:
        return None
    why = [f"{n}: {r}" for n, r in unusable.items()] + [
        f"{n}: last attempt failed" for n in usable if n in failing
    ]
    return f"quorum {k} of {len(node.config.witnesses)} witnesses unreachable: " + "; ".join(why)


class WitnessCoordinator:
    """Submits this node's checkpoints to its configured witnesses (see module docstring).

    Every failure of a witness is logged as one structured line
    (``event="witnessing failed"``, ``witness``, ``error``, ``size``); the same
    error again is logged at most every :data:`REPEAT_LOG_SECONDS` with a
    ``repeated`` count. The per-witness status is kept in node state
    (:data:`WITNESSING_STATE`) for ``accord ledger status``.
    """

    def __init__(self, node: Any) -> None:
        self.node = node
        self.cosigned: dict[str, int] = {}
        self.failures: dict[str, str] = {}
        self.reported: int | None = None
        self.witness_status: dict[str, dict[str, Any]] = {}
        self._logged: dict[str, tuple[str, float, int]] = {}
        self._saved: dict[str, Any] | None = None

    def _fail(self, name: str, error: str, *, size: int) -> None:
        """Record and log one failure of witness ``name`` to cosign ``size``."""
        import time

        from federation.observability import WITNESS_FAILURES

        self.failures[name] = error
        WITNESS_FAILURES.labels(witness=name).inc()
        st = self.witness_status.setdefault(name, {})
        st.update(last_error=error[:500], last_error_at=now_utc().isoformat(), failing=True)
        st["failures"] = int(st.get("failures", 0)) + 1
        last = self._logged.get(name)
        t = time.monotonic()
        if last is None or last[0] != error or t - last[1] >= REPEAT_LOG_SECONDS:
            repeated = 0 if last is None or last[0] != error else last[2]
            log.warning("witnessing failed", witness=name, error=error[:500], size=size, repeated=repeated)
            self._logged[name] = (error, t, 0)
        else:
            self._logged[name] = (last[0], last[1], last[2] + 1)

    def _succeed(self, name: str, size: int) -> None:
        self.cosigned[name] = size
        self.failures.pop(name, None)
        if name in self._logged:
            log.info("witnessing recovered", witness=name, size=size)
            self._logged.pop(name, None)
        st = self.witness_status.setdefault(name, {})
        st.update(cosigned_size=size, last_success_at=now_utc().isoformat(), failing=False)

    def status(self) -> dict[str, Any]:
        """The witnessing status: policy, per-witness state and why the quorum is unmet (if it is).

        Returns:
            ``{"witnesses": [names], "quorum": k, "problem": str | None,
            "per_witness": {name: {"cosigned_size", "last_success_at", "last_error",
            "last_error_at", "failures", "failing"}}}`` (times RFC 3339, UTC).

        """
        n = self.node
        _, unusable = configured_witnesses(n)
        per = {name: dict(self.witness_status.get(name, {})) for name in n.config.witnesses}
        for name, why in unusable.items():
            per[name].update(last_error=why, failing=True)
        failing = {name for name, st in per.items() if st.get("failing")}
        return {
            "witnesses": list(n.config.witnesses),
            "quorum": n.config.witness_quorum,
            "problem": quorum_problem(n, failing),
            "per_witness": per,
        }

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
                self._fail(bundle.org_name, f"{exc.reason}: {exc}", size=size)
            except Exception as exc:  # a peer's bad answer must not stop the others
                self._fail(bundle.org_name, f"{exc.__class__.__name__}: {exc}", size=size)

        usable, _ = configured_witnesses(n)
        await asyncio.gather(
            *(one(b) for b in list(n.peers) if b.org_name in usable and self.cosigned.get(b.org_name) != size)
        )
        await self.settle_receipts()
        await self._save_status()
        from federation.observability import CHECKPOINT_SIZE, WITNESSED_SIZE

        marks = await n.writer.run_sync(n.ledger.watermarks)
        CHECKPOINT_SIZE.set(marks.checkpointed)
        WITNESSED_SIZE.set(marks.witnessed)
        return dict(self.cosigned)

    async def _save_status(self) -> None:
        """Persist :meth:`status` (node state ``witnessing``) when it changed, off the loop."""
        st = self.status()
        if st != self._saved:
            self._saved = st
            await asyncio.to_thread(self.node.store.put_state, WITNESSING_STATE, st, now=now_utc())

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
                    self._fail(
                        bundle.org_name,
                        f"ROLLBACK: witness holds size {old} > our {size} (restored an older ledger?)",
                        size=size,
                    )
                    return
                continue
            if status != 200:
                text = answer.decode(errors="replace").strip().splitlines()
                self._fail(bundle.org_name, f"HTTP-{status}: {text[0][:300] if text else ''}", size=size)
                return
            await n.writer.run_sync(lambda a=answer: n.ledger.add_cosignatures(cp, a))
            self._succeed(bundle.org_name, size)
            return
        self._fail(bundle.org_name, "CONFLICT: witness answered 409 twice", size=size)

    async def run_forever(self, every_seconds: float, *, lease: Any = None) -> None:
        """Call :meth:`round` every ``every_seconds`` seconds.

        With ``lease`` (a :class:`federation.replicas.IntegratorLease`: the node
        runs as several replicas) the round — integration of the entries
        appended without a receipt, checkpoints to the witnesses, the sweep of
        expired shared rows — runs only while this replica holds the lease;
        the others only settle the receipts they received.
        """
        while True:
            await asyncio.sleep(every_seconds)
            try:
                if lease is None:
                    await self.round()
                elif lease.holds():
                    await self.round()
                    await asyncio.to_thread(self.node.nonces.sweep)
                else:
                    await self.settle_receipts()
            except Exception as exc:  # keep witnessing
                log.warning("witness round error", error=str(exc))
