"""Admission control for work a peer can cause before any agent is authenticated.

``GetChallenge`` and ``OpenSession`` run before the node knows which agent
asks: a challenge costs a table slot, a presentation costs a credential
verification (JSON-LD, canonicalization, signatures). A pinned peer — or a
compromised agent behind it — could otherwise spend the node's CPU and memory
for every other peer. :class:`PresessionGuard` bounds that work per peer:

- a moving-window rate limit (the ``limits`` library) on pre-session calls,
  keyed by the peer's organization DID (pinned peers only, so the key space
  is bounded by the peer registry);
- a cap on the presentations of one peer verified at once: the rest wait
  their turn, so one peer's flood cannot take every verification slot.

The open challenge table and the session table have their own per-peer
bounds (:mod:`federation.sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from federation.errors import ResourceLimitError

__all__ = ["PresessionGuard"]


class PresessionGuard:
    """Per-peer rate and concurrency bounds on pre-session work.

    Args:
        rate_limit: allowed calls per peer in a moving window, ``limits``
            notation (e.g. ``"200 per 4 seconds"``).
        concurrency: presentations of one peer verified at once (≥ 1).

    Raises:
        ValueError: ``rate_limit`` does not parse or ``concurrency`` < 1.

    """

    def __init__(self, *, rate_limit: str, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._item = limits.parse(rate_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._concurrency = concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}

    def admit(self, peer_did: str) -> None:
        """Count one pre-session call of ``peer_did``.

        Raises:
            ResourceLimitError: ``PRESESSION_RATE_LIMITED`` (RESOURCE_EXHAUSTED)
                when the peer is over its rate; the call does no work.

        """
        if not self._limiter.hit(self._item, peer_did):
            raise ResourceLimitError(
                f"too many session set-up calls from this organization (limit {self._item})",
                reason="PRESESSION_RATE_LIMITED",
                metadata={"limit": str(self._item)},
            )

    @contextlib.asynccontextmanager
    async def verification_slot(self, peer_did: str) -> AsyncIterator[None]:
        """Hold one of ``peer_did``'s presentation-verification slots while the block runs."""
        sem = self._slots.get(peer_did)
        if sem is None:
            sem = self._slots[peer_did] = asyncio.Semaphore(self._concurrency)
        async with sem:
            yield
