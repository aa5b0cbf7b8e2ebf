"""Group commit for the node's ledger: many concurrent appends, few transactions.

Requests on the asyncio loop submit entries; one worker thread owns the
log's write path. Each turn takes everything queued (up to ``max_batch``)
and commits it once: when any caller needs a receipt, the batch is
sequenced, integrated and its checkpoint signed in one transaction
(:meth:`ledger.TransparencyLog.append_integrated`); otherwise (the
requester's "received" entries) it is only sequenced, in one transaction.
Every caller is answered after that commit, so nothing is acknowledged
before it is durable. Under load, batches grow by themselves while a turn
is committing: this is the group commit (one fsync for the whole batch).
Tessera's sequencing/integration split stays in the log's API; the writer
commits the two together.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("accord.ledger_writer")


@dataclass(frozen=True)
class Written:
    """What the writer answers for one entry.

    Attributes:
        index: leaf index (durable).
        leaf_hash: 32-byte RFC 9162 leaf hash.
        duplicate: the disclosure id had been logged before.
        receipt: the C2SP tlog-proof receipt (when asked for), else None.

    """

    index: int
    leaf_hash: bytes
    duplicate: bool
    receipt: Any | None


class LedgerWriter:
    """Batching front of a :class:`ledger.TransparencyLog` (see module docstring)."""

    def __init__(self, transparency_log: Any, *, max_batch: int = 512) -> None:
        self._log = transparency_log
        self._max = max_batch
        self._queue: asyncio.Queue[tuple[Any, bool, asyncio.Future[Written]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self.batches = 0
        self.entries = 0

    def start(self) -> None:
        """Start the worker on the running loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop after draining what is queued."""
        if self._task is not None:
            assert self._queue is not None
            await self._queue.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)

    async def run_sync(self, fn, *args):
        """Run a read on the ledger thread (keeps SQLite access single-threaded)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def write(self, entry: Any, *, receipt: bool) -> Written:
        """Append ``entry`` durably; with ``receipt`` also integrate and prove it.

        Raises:
            ledger.LedgerError: the append failed (nothing was acknowledged).

        """
        assert self._queue is not None, "LedgerWriter.start() not called"
        fut: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, receipt, fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await loop.run_in_executor(self._pool, self._process, batch)
            except Exception as exc:  # answer every caller; nothing was acknowledged
                log.error("ledger batch failed", error=str(exc), size=len(batch))
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                from federation.observability import log_entry

                for (entry, _, fut), res in zip(batch, results, strict=True):
                    if not isinstance(res, BaseException) and not res.duplicate:
                        log_entry(entry, index=res.index)
                    if fut.done():
                        continue
                    if isinstance(res, BaseException):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _append_each(self, entries: list[Any], *, integrated: bool) -> list[Any]:
        """Append one by one after a batch was refused: only the bad entries fail.

        Returns one ``AppendResult`` or the ``LedgerError`` refusing it per entry.
        """
        from ledger import LedgerError

        out: list[Any] = []
        for e in entries:
            try:
                out.extend(self._log.append_integrated([e]).results if integrated else self._log.append([e]))
            except LedgerError as exc:
                if not exc.caller_fault:  # the database itself failed: the whole batch fails
                    raise
                log.warning("ledger entry refused", reason=exc.reason, error=str(exc))
                out.append(exc)
        return out

    def _process(self, batch: list[tuple[Any, bool, Any]]) -> list[Written | BaseException]:
        """Commit a batch in one transaction; one refused entry never fails unrelated ones.

        With a receipt wanted, the one transaction also integrates the tree and
        signs the checkpoint the receipts are built on.
        A caller-fault refusal (``InvalidEntryError``, ``IdempotencyConflictError``)
        of the batch transaction (which wrote nothing) makes the batch be appended
        entry by entry, so only the refused entries' callers get the error.
        """
        from ledger import LedgerError

        entries = [e for e, _, _ in batch]
        integrated = any(want for _, want, _ in batch)
        receipts: dict[int, Any] = {}
        try:
            if integrated:
                done = self._log.append_integrated(entries)
                appended: list[Any] = done.results
                receipts = {r.index: rc for r, rc in zip(done.results, done.receipts, strict=True)}
            else:
                appended = self._log.append(entries)
        except LedgerError as exc:
            if not exc.caller_fault or len(entries) == 1:
                raise
            appended = self._append_each(entries, integrated=integrated)
        self.batches += 1
        self.entries += len(entries)
        from federation.observability import LEDGER_SIZE

        indices = [r.index for r in appended if not isinstance(r, BaseException)]
        if indices:
            LEDGER_SIZE.set(max(indices) + 1)
        wanted = [
            res.index
            for res, (_, want, _) in zip(appended, batch, strict=True)
            if want and not isinstance(res, BaseException) and res.index not in receipts
        ]
        if wanted:  # entries appended one by one after a refused batch
            receipts.update(zip(wanted, self._log.receipts(wanted), strict=True))
        return [
            r
            if isinstance(r, BaseException)
            else Written(
                index=r.index, leaf_hash=r.leaf_hash, duplicate=r.duplicate, receipt=receipts.get(r.index)
            )
            for r in appended
        ]


class GroupCommit:
    """Group commit of other rows on the ledger writer's thread (e.g. the requester's kept disclosures).

    Callers on the event loop ``await submit(item)``; each turn takes what is
    queued (up to ``max_batch``) and calls ``commit(items)`` once, on the
    writer's thread (:meth:`LedgerWriter.run_sync`: one thread writes the
    node's database, so SQLite never has two writers waiting on each other).
    Every caller of a turn is answered after ``commit`` returned, i.e. after
    its transaction committed, or gets the exception it raised. The worker
    starts on the first ``submit`` in a running loop.
    """

    def __init__(self, writer: LedgerWriter, commit: Any, *, max_batch: int = 256) -> None:
        """``commit(items: list)`` writes ``items`` in one transaction (blocking; raises on failure)."""
        self._writer = writer
        self._commit = commit
        self._max = max_batch
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[None]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0

    async def submit(self, item: Any) -> None:
        """Commit ``item`` with whatever else is queued; returns once it is durable.

        Raises:
            Exception: what ``commit`` raised for the turn that held ``item``.

        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._run())
        assert self._queue is not None
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put_nowait((item, fut))
        await fut

    async def stop(self) -> None:
        """Stop after draining what is queued (no-op if never started)."""
        if self._task is None or self._queue is None or self._loop is not asyncio.get_running_loop():
            return
        await self._queue.join()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._writer.run_sync(self._commit, [item for item, _ in batch])
                self.batches += 1
            except Exception as exc:  # answer every caller of the turn: nothing was committed
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
            finally:
                for _ in batch:
                    queue.task_done()
