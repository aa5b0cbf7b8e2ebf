"""One organization's node run as several processes (replicas) on one PostgreSQL database.

Every replica serves ``FederationService`` and ``AgentService`` on its own
port (``listen`` port + replica index; ``accord node start --replicas N``
starts them) and shares with the others, in the node database:

* sessions, the agents' local sessions, challenges and the replay cache
  (:mod:`federation.sessions`, ``Shared*`` tables over
  :class:`federation.store.ReplicaStateStore`);
* the trust-budget and rate ledgers of contracts that have them (the
  decision point reads and writes a key's rows under an advisory lock,
  :meth:`federation.store.ReplicaStateStore.locked_ledger_rows`);
* the ledger. Appends from any replica are sequenced in one total order:
  each batch's transaction locks the log's sequence, tree and signer rows
  (``SELECT … FOR UPDATE``), so exactly one replica integrates and signs at
  a time, and a replica killed mid-batch rolls back (nothing acknowledged,
  nothing torn). A batch is acknowledged only after its commit.

The periodic duties that must run once per node — integrating the entries
appended without a receipt, sending checkpoints to the witnesses, sweeping
expired shared rows — run on the holder of the **integrator lease** (a row
in ``node_leases`` with an expiry, :class:`IntegratorLease`). A replica that
dies stops renewing it; another takes it over once it expires
(``ttl_seconds``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

_T = TypeVar("_T")

log = structlog.get_logger("accord.replicas")

INTEGRATOR_LEASE = "integrator"
"""Name of the integrator lease row in ``node_leases``."""

MAX_REPLICAS = 64
"""Most replicas ``accord node start --replicas`` starts."""


@dataclass(frozen=True)
class ReplicaRole:
    """Which replica this process is.

    Attributes:
        index: 0-based replica index (its ports are the configured ones + index).
        count: how many replicas the node runs (1 = a single process, in-memory state).

    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.count <= MAX_REPLICAS and 0 <= self.index < self.count):
            raise ValueError(
                f"replica {self.index} of {self.count}: need 0 <= index < count <= {MAX_REPLICAS}"
            )

    @property
    def shared(self) -> bool:
        """True when the node runs as several replicas (state in the database)."""
        return self.count > 1

    @property
    def holder(self) -> str:
        """This process's name in the lease table: ``host:pid:r<index>``."""
        return f"{socket.gethostname()[:100]}:{os.getpid()}:r{self.index}"

    def shift(self, address: str) -> str:
        """``HOST:PORT`` with the port moved up by the replica index (port 0 and "" unchanged)."""
        if not address:
            return address
        host, _, port = address.rpartition(":")
        p = int(port)
        return address if p == 0 else f"{host}:{p + self.index}"

    def pidfile_name(self) -> str:
        """``node.pid`` for replica 0, ``node-replica-<i>.pid`` for the others."""
        return "node.pid" if self.index == 0 else f"node-replica-{self.index}.pid"


async def shared_call(shared: Any, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Call ``fn``: in a worker thread when ``shared`` (replicas), inline otherwise.

    For replicas, sessions, challenges, the replay cache, trust and the
    budget ledgers are database rows: the calls that read or write them run
    statements (a round trip each, longer while the database is slow or
    away), so they leave the event loop. For a single process the same
    calls are dictionary operations, cheaper than a thread hop.

    Args:
        shared: the node's replica state store, or None for a single process.
        fn: the (blocking) callable.
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Raises:
        Whatever ``fn`` raises.
    """
    if shared is None:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


class IntegratorLease:
    """The integrator lease of one replica (see the module docstring).

    Args:
        store: the :class:`federation.store.ReplicaStateStore`.
        holder: this replica's name (:attr:`ReplicaRole.holder`).
        ttl_seconds: how long a taken lease lasts without renewal.
        clock: Unix time in seconds.

    Attributes:
        held: whether this replica held the lease at its last renewal.
        epoch: the lease's epoch when last taken (grows at every change of holder).

    """

    def __init__(self, store: Any, *, holder: str, ttl_seconds: float = 3.0, clock=time.time) -> None:
        self._store = store
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self.held = False
        self.epoch = 0
        self._valid_until = 0.0

    def renew(self) -> bool:
        """Take or renew the lease (blocking: one transaction); returns whether it is held."""
        now = self._clock()
        try:
            epoch = self._store.lease_acquire(
                INTEGRATOR_LEASE, holder=self.holder, ttl_seconds=self.ttl_seconds, now=now
            )
        except Exception as exc:  # the database is away: stop acting as integrator at once
            log.warning("integrator lease renewal failed", error=str(exc))
            epoch = None
        was = self.held
        self.held = epoch is not None
        if self.held:
            self._valid_until = now + self.ttl_seconds
            if not was or epoch != self.epoch:
                log.info("integrator lease taken", holder=self.holder, epoch=epoch)
            self.epoch = int(epoch)  # type: ignore[arg-type]
        elif was:
            log.warning("integrator lease lost", holder=self.holder)
        return self.held

    def holds(self) -> bool:
        """True while the lease taken at the last renewal has not run out."""
        return self.held and self._clock() < self._valid_until

    def release(self) -> None:
        """Give the lease up (clean shutdown: another replica takes it at its next renewal)."""
        if self.held:
            try:
                self._store.lease_release(INTEGRATOR_LEASE, holder=self.holder)
            except Exception as exc:
                log.warning("integrator lease release failed", error=str(exc))
            self.held = False

    async def run_forever(self, every_seconds: float | None = None) -> None:
        """Renew every ``every_seconds`` (default a third of the TTL), off the event loop."""
        every = every_seconds or self.ttl_seconds / 3
        while True:
            await asyncio.to_thread(self.renew)
            await asyncio.sleep(every)
