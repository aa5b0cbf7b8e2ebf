"""The node's periodic duties of issue #15: settle approvals, purge received data past retention.

:func:`run_forever` is one task of the server (``federation.server``): every
``every`` seconds it expires overdue approvals and ledgers decisions
(:func:`federation.approvals.settle_and_ledger`) and purges received data
whose retention ended (:func:`federation.onward.purge_due`). A failure is
logged and retried on the next turn; serving goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

log = structlog.get_logger("accord.node")


async def tick(node: Any) -> dict[str, int]:
    """One turn: ``{"approvals": rows ledgered, "purged": disclosures purged}``."""
    from federation import approvals, onward

    settled = await approvals.settle_and_ledger(node)
    purged = await onward.purge_due(node)
    return {"approvals": settled, "purged": purged}


async def run_forever(node: Any, every: float = 1.0) -> None:
    """Run :func:`tick` every ``every`` seconds until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            await tick(node)
        except Exception as exc:  # keep serving; retried next turn
            log.warning("upkeep failed", error=str(exc))
