"""Entry filters for :meth:`ledger.TransparencyLog.query`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

__all__ = ["EntryFilter", "MAX_QUERY_LIMIT", "provenance_agents", "agent_key"]

MAX_QUERY_LIMIT = 10_000
"""Largest ``limit`` accepted by a query (entries)."""


@dataclass(frozen=True)
class EntryFilter:
    """Conjunctive filter over stored entries; ``None`` fields match everything.

    Attributes:
        counterpart_org: Matches ``provider_org`` or ``requester_org``.
        agent_did: Matches ``requester_agent`` or ``provider_agent``.
        contract_id: Exact contract id.
        purpose: Exact purpose.
        field: A field name present in requested, released or stripped fields.
        decision: ``allow`` or ``deny``.
        kind: Entry kind.
        since: Entries whose ``time`` is at or after this aware datetime.
        until: Entries whose ``time`` is strictly before this aware datetime.
        start_index: Only entries with index ``>=`` this (for paging).
        end_index: Only entries with index ``<`` this, or ``None`` (keyset paging
            backwards from the newest entry: the next page's ``end_index`` is the
            smallest index of the current page).
        limit: At most this many entries, in index order (1..10,000).
        newest_first: Return the entries in descending index order (the newest
            ``limit`` matches below ``end_index``) instead of ascending order.

    Raises:
        ValueError: On construction, if ``limit`` is out of range, a datetime is
            naive, or ``since`` is after ``until``.

    """

    counterpart_org: str | None = None
    agent_did: str | None = None
    contract_id: str | None = None
    purpose: str | None = None
    field: str | None = None
    decision: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    start_index: int = 0
    end_index: int | None = None
    limit: int = 100
    newest_first: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_QUERY_LIMIT:
            raise ValueError(f"limit must be in [1, {MAX_QUERY_LIMIT}], got {self.limit}")
        if self.start_index < 0:
            raise ValueError("start_index must be >= 0")
        if self.end_index is not None and self.end_index < 0:
            raise ValueError("end_index must be >= 0")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")
        if self.since and self.until and self.since > self.until:
            raise ValueError("since is after until")


def provenance_agents(extra: object) -> list[str]:
    """The agent DIDs an entry's delegation provenance names, deduplicated, in order.

    ``extra.root_agent`` and every non-empty item of ``extra.chain_agents``
    (comma-separated, root to holder; :meth:`federation.delegation.DelegatedAuthority.provenance`).
    These are what an agent filter matches besides ``requester_agent`` and
    ``provider_agent``; the log stores their SHA-256 in ``ledger_entry_agents``
    (migration 0003) so such a filter is an index read, not a scan of entry bytes.

    Args:
        extra: the entry's ``extra`` mapping (anything else names no agent).

    Returns:
        DIDs, possibly empty.
    """
    if not isinstance(extra, dict):
        return []
    found = [str(extra.get("root_agent", "") or "")]
    found += str(extra.get("chain_agents", "") or "").split(",")
    return [a for a in dict.fromkeys(found) if a]


def agent_key(agent_did: str) -> bytes:
    """The ``ledger_entry_agents`` key of an agent DID: SHA-256 of its UTF-8 bytes (32 bytes)."""
    return hashlib.sha256(agent_did.encode("utf-8", "surrogatepass")).digest()
