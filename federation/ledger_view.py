"""Opening a node's ledger from the CLI (offline, read-only use)."""

from __future__ import annotations

from typing import Any

from federation.config import database_url_for
from federation.identity import NodeIdentity, ledger_origin


def open_ledger_readonly(identity: NodeIdentity) -> Any:
    """The node's :class:`ledger.TransparencyLog` (the CLI only reads from it)."""
    from ledger import TransparencyLog

    return TransparencyLog.open(
        database_url_for(identity.paths.root, identity.config),
        origin=ledger_origin(identity.config.org_name),
        signer=identity.ledger_signer(),
    )
