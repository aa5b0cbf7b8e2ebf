"""Verification off the event loop: a process pool with a deadline.

JSON-LD expansion and RDFC-1.0 canonicalization are CPU-bound and, even
within :mod:`credentials.limits`, take tens to hundreds of milliseconds; run
on an asyncio event loop they stall every other RPC of the node. A
:class:`VerifierPool` runs them in worker processes
(``concurrent.futures.ProcessPoolExecutor``, ``forkserver`` start method where
available so that no worker is forked from a process running gRPC threads)
and bounds each job by a deadline: past it the caller gets
``VerificationTimeoutError`` (``VERIFICATION_TIMEOUT``), the pool's workers are
terminated and a fresh pool serves the next request (jobs running beside
the stuck one on the terminated workers are refused too, ``metadata["cause"]``
``worker_exited``: a hostile input costs at most one deadline of the pool's
capacity). A job queued behind
others counts its waiting time against its deadline (bounded latency under
load), but never the workers' start-up.

Everything a job takes is pickled: the key resolver must be picklable (a
``StaticKeyResolver`` over a mapping, with ``did_key_resolver`` or no
fallback); status checks, which fetch and cache status lists, stay with the
caller and run on the verified credentials the job returns (see
:meth:`VerifierPool.verify_presentation`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import multiprocessing
import os
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, TypeVar

from credentials.dids import KeyResolver
from credentials.errors import VerificationTimeoutError
from credentials.model import VerifiedPresentation
from credentials.verifier import verify_presentation

__all__ = ["VerifierPool"]

T = TypeVar("T")

#: Longest wait for the workers of a new pool to start (not counted in any job's deadline), seconds.
STARTUP_TIMEOUT_SECONDS = 120.0


#: How often a worker checks that the process owning its pool is still alive, seconds.
OWNER_CHECK_SECONDS = 1.0


def _exit_with_owner(owner_pid: int) -> None:
    """Worker initializer: leave when the owning process is gone.

    A pool's workers hold both ends of their job queue, so a node killed with
    SIGKILL never closes it and they would wait forever (and keep the
    forkserver alive). A daemon thread checks the owner every
    :data:`OWNER_CHECK_SECONDS` and ends the worker once it has disappeared.
    """

    def watch() -> None:
        while True:
            time.sleep(OWNER_CHECK_SECONDS)
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, another user's pid (reused): keep serving
                continue

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _ready() -> bool:
    return True


def _verify_presentation_job(presentation: Mapping[str, Any], kwargs: dict[str, Any]) -> VerifiedPresentation:
    return verify_presentation(presentation, **kwargs)


_POOLS: weakref.WeakSet[VerifierPool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


def _context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Hide the parent's ``__main__`` while worker processes are created.

    ``multiprocessing`` (spawn, forkserver) re-imports the parent's main module
    in every worker (``spawn.prepare``): for a node started with
    ``python -m federation.cli.main`` that is the whole node, gRPC included,
    seconds per worker. Workers need only the modules their jobs name, so they
    are created with an empty ``__main__`` (no ``__spec__``, no ``__file__``).
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class VerifierPool:
    """Worker processes that verify presentations within a deadline.

    Workers are started at the pool's first use (:meth:`start`, or the first
    job); their start-up never counts against a job's deadline.

    Args:
        max_workers: worker processes (≥ 1).
        deadline_seconds: longest a job may take, queueing included, seconds (> 0).
        preload: modules imported once in the ``forkserver`` process, before workers
            fork from it (the modules of the jobs: e.g. ``federation.delegation``).
        inline_while_starting: while the workers start (first use, or after a
            replacement), run jobs in the caller instead of waiting for them — no
            deadline then, the document bounds (``credentials.limits``) are the only
            cap on the work. For a server whose first requests must not wait for
            worker start-up (seconds on a loaded machine); default False (wait).

    Raises:
        ValueError: (constructor) ``max_workers`` < 1 or ``deadline_seconds`` ≤ 0.

    """

    def __init__(
        self,
        max_workers: int = 1,
        deadline_seconds: float = 10.0,
        preload: Sequence[str] = ("credentials",),
        *,
        inline_while_starting: bool = False,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if not deadline_seconds > 0:
            raise ValueError("deadline_seconds must be > 0")
        self.max_workers = max_workers
        self.deadline_seconds = float(deadline_seconds)
        self.preload = tuple(preload)
        self.inline_while_starting = inline_while_starting
        self._executor: ProcessPoolExecutor | None = None
        self._warmup: list[Future[Any]] = []
        self._lock = threading.Lock()
        #: Pools replaced after a deadline or a worker crash (for metrics and tests).
        self.replacements = 0
        _POOLS.add(self)

    def start(self) -> None:
        """Start the workers now (non-blocking; idempotent): later jobs find them warm."""
        self._current()

    async def wait_ready(self, timeout_seconds: float = STARTUP_TIMEOUT_SECONDS) -> bool:
        """Start the workers (if not yet) and wait until every one of them is up.

        Returns True when all workers answered within ``timeout_seconds``
        (waited in a thread: the event loop keeps running meanwhile).
        """
        _, warmup = self._current()
        await asyncio.get_running_loop().run_in_executor(None, futures_wait, warmup, timeout_seconds)
        return all(f.done() and not f.cancelled() and f.exception() is None for f in warmup)

    def _current(self) -> tuple[ProcessPoolExecutor, list[Future[Any]]]:
        with self._lock:
            if self._executor is None:
                with _without_main_module():
                    executor = ProcessPoolExecutor(
                        max_workers=self.max_workers,
                        mp_context=_context(self.preload),
                        initializer=_exit_with_owner,
                        initargs=(os.getpid(),),
                    )
                    # one job per worker: every worker process is created here, not later
                    self._warmup = [executor.submit(_ready) for _ in range(self.max_workers)]
                self._executor = executor
            return self._executor, self._warmup

    def _replace(self, executor: ProcessPoolExecutor) -> None:
        """Terminate ``executor``'s workers (a stuck job never returns) and drop it."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
                self._warmup = []
                self.replacements += 1
        _terminate(executor)
        if self.inline_while_starting:
            self.start()  # the next pool starts at once, not at the next request

    async def run(
        self, fn: Callable[..., T], /, *args: Any, deadline_seconds: float | None = None, **kwargs: Any
    ) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker within the deadline; return its result.

        ``fn`` must be a module-level function and its arguments picklable. An
        exception ``fn`` raises (e.g. a ``CredentialError``) is raised here.
        ``deadline_seconds`` overrides the pool's deadline for this job.

        Raises:
            VerificationTimeoutError: the job did not finish within ``deadline_seconds``
                (its workers are terminated; the pool is replaced), a worker died
                (``metadata["cause"]`` is ``worker_exited``) or the workers did not
                start within ``STARTUP_TIMEOUT_SECONDS``.

        """
        deadline = self.deadline_seconds if deadline_seconds is None else deadline_seconds
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            executor, warmup = self._current()
            if self.inline_while_starting and not all(f.done() for f in warmup):
                return fn(*args, **kwargs)  # bounded input; the workers keep starting meanwhile
            if not all(f.done() for f in warmup):
                # waited in a thread: a cancelled request leaves the start-up running
                await loop.run_in_executor(None, futures_wait, warmup, STARTUP_TIMEOUT_SECONDS)
            if not all(f.done() and not f.cancelled() and f.exception() is None for f in warmup):
                self._replace(executor)
                raise VerificationTimeoutError(
                    "the verifier pool did not start", metadata={"cause": "startup"}
                ) from None
            try:
                with _without_main_module():
                    future = loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))
                break
            except RuntimeError:  # replaced (shut down) by a concurrent job's timeout: retry once
                if attempt:
                    raise VerificationTimeoutError(
                        "the verifier pool is being replaced", metadata={"cause": "pool_replaced"}
                    ) from None
        try:
            return await asyncio.wait_for(future, deadline)
        except TimeoutError:
            self._replace(executor)
            raise VerificationTimeoutError(
                f"verification exceeded its deadline of {deadline:g} s",
                metadata={"deadline_seconds": f"{deadline:g}"},
            ) from None
        except BrokenProcessPool:
            self._replace(executor)
            raise VerificationTimeoutError(
                "a verification worker exited", metadata={"cause": "worker_exited"}
            ) from None

    async def verify_presentation(
        self,
        presentation: Mapping[str, Any],
        *,
        challenge: str,
        domain: str,
        resolve_key: KeyResolver,
        now: datetime,
        trusted_issuers: Collection[str] | None = None,
        deadline_seconds: float | None = None,
    ) -> VerifiedPresentation:
        """:func:`credentials.verify_presentation` in a worker, without status checks.

        The caller checks status on the result, e.g.
        ``for c in result.credentials: status.check(c.credential, now=now)``.

        Args:
            presentation: the parsed presentation.
            challenge: the verifier's nonce.
            domain: the verifier's identity.
            resolve_key: a picklable key resolver.
            now: verification time (aware).
            trusted_issuers: as in ``verify_credential``.
            deadline_seconds: overrides the pool's deadline for this job.

        Returns:
            The ``VerifiedPresentation`` (statuses not checked).

        Raises:
            VerificationTimeoutError: past the deadline, or a worker died.
            CredentialError: any refusal of ``verify_presentation``.

        """
        kwargs = {
            "challenge": challenge,
            "domain": domain,
            "resolve_key": resolve_key,
            "now": now,
            "status": None,
            "trusted_issuers": list(trusted_issuers) if trusted_issuers is not None else None,
        }
        return await self.run(
            _verify_presentation_job, dict(presentation), kwargs, deadline_seconds=deadline_seconds
        )

    def close(self) -> None:
        """Stop the workers (idempotent); a later job starts a new pool."""
        with self._lock:
            executor, self._executor, self._warmup = self._executor, None, []
        if executor is not None:
            _terminate(executor)


def _terminate(executor: ProcessPoolExecutor) -> None:
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)
