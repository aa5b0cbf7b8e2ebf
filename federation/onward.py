"""Onward flow and obligations at the requester's node (issue #15; docs/content-controls.md).

Every released outcome this node passes to one of its agents arrives with the
provider's disclosure id and the contract's obligation codes
(:class:`federation.domain.ReceivedOutcome`). The node keeps, per disclosure,
the contract's onward-flow terms (:class:`policy.contract.OnwardFlow`), its
retention deadline and a digest of every value it received
(``node_received_data``). Then:

* **Onward sharing.** Before forwarding a request to a provider, the node looks
  for received values in it (the subject reference and the aggregate query's
  values). A value received from organization A under contract C that goes to
  a third organization B is refused (``ONWARD_SHARING_FORBIDDEN``) unless C
  allows onward sharing (to B); the refusal is ledgered (``onward_refusal``).
* **Drift.** A request carrying values received under another contract is
  Authorization Drift (the paper's AD: the agent's reach grows beyond the
  contract it acts under): a ``drift`` ledger entry, the local session's drift
  count, and the same refusal unless the source contract allows the flow.
* **Retention.** A disclosure kept past ``retention_seconds`` is purged (row,
  payload, digests) and a ``retention_purge`` entry names it
  (:func:`purge_due`, run by :mod:`federation.upkeep`).

Values are matched by SHA-256 of their normalized text (strings and numbers
whose text has at least :data:`MIN_VALUE_CHARS` characters), so the index holds digests,
and the in-memory index is bounded (:data:`MAX_INDEX`, oldest dropped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import Counter

from federation.errors import DeniedError
from federation.store import ReceivedStore

__all__ = [
    "MAX_INDEX",
    "MIN_VALUE_CHARS",
    "OnwardIndex",
    "check_outgoing",
    "keep_received",
    "purge_due",
    "value_digest",
]

log = structlog.get_logger("accord.onward")

#: shortest string value indexed (shorter ones, like "yes" or "A", match by chance)
MIN_VALUE_CHARS = 4
#: most value digests kept in memory (oldest disclosures dropped first)
MAX_INDEX = 200_000
#: most values indexed per disclosure
MAX_VALUES_PER_DISCLOSURE = 10_000

ONWARD_REFUSED = Counter(
    "accord_onward_refusals_total", "Requests refused for carrying received data onward", ["reason"]
)
PURGED = Counter("accord_retention_purged_total", "Received disclosures purged at the end of retention")


def value_digest(value: Any) -> str | None:
    """SHA-256 hex of a value's normalized text, or None for values too short to match safely."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        text = repr(value)  # small numbers (levels, counts, ages) match by chance: skipped below
    elif isinstance(value, str):
        text = " ".join(value.split()).lower()
    else:
        return None
    if len(text) < MIN_VALUE_CHARS:
        return None
    return hashlib.sha256(b"accord-onward-v1\n" + text.encode("utf-8", "surrogatepass")).hexdigest()


def _values(node: Any, depth: int = 0) -> Iterable[Any]:
    if depth > 16:
        return
    if isinstance(node, dict):
        for v in node.values():
            yield from _values(v, depth + 1)
    elif isinstance(node, list):
        for v in node:
            yield from _values(v, depth + 1)
    else:
        yield node


def digests_of(records: Any) -> list[str]:
    """The distinct value digests of released records (at most :data:`MAX_VALUES_PER_DISCLOSURE`)."""
    out: dict[str, None] = {}
    for v in _values(records):
        d = value_digest(v)
        if d is not None:
            out.setdefault(d, None)
            if len(out) >= MAX_VALUES_PER_DISCLOSURE:
                break
    return list(out)


class OnwardIndex:
    """Value digest → the disclosure it came in (bounded, oldest first out)."""

    def __init__(self, max_entries: int = MAX_INDEX) -> None:
        self.max_entries = max_entries
        self._by_digest: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def add(self, source: dict[str, Any], digests: Iterable[str]) -> None:
        """Index ``digests`` as received in ``source``.

        ``source`` has ``disclosure_id``, ``provider_org``, ``contract_id`` and ``onward``.
        """
        for d in digests:
            self._by_digest[d] = source
            self._by_digest.move_to_end(d)
        while len(self._by_digest) > self.max_entries:
            self._by_digest.popitem(last=False)

    def drop(self, disclosure_ids: set[str]) -> None:
        """Forget every digest of these disclosures."""
        for d in [d for d, s in self._by_digest.items() if s["disclosure_id"] in disclosure_ids]:
            del self._by_digest[d]

    def lookup(self, digests: Iterable[str]) -> list[dict[str, Any]]:
        """The distinct sources of any of ``digests``."""
        seen: dict[str, dict[str, Any]] = {}
        for d in digests:
            s = self._by_digest.get(d)
            if s is not None:
                seen.setdefault(s["disclosure_id"], s)
        return list(seen.values())

    def __len__(self) -> int:
        return len(self._by_digest)


def _index(node: Any) -> OnwardIndex:
    idx = getattr(node, "_onward_index", None)
    if idx is None:
        idx = OnwardIndex()
        for row in ReceivedStore(node.store).rows(limit=MAX_INDEX):
            idx.add(_source(row), row["value_digests"])
        node._onward_index = idx
    return idx


def _source(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "disclosure_id": row["disclosure_id"],
        "provider_org": row["provider_org"],
        "contract_id": row["contract_id"],
        "onward": row["onward"] or {},
    }


async def keep_received(
    node: Any, *, provider_org: str, request: Any, outcome: Any, contract: Any, now: dt.datetime
) -> None:
    """Keep a released outcome's disclosure id, obligations, onward terms and value digests.

    Called by the requester side once the outcome's receipt was checked and its
    ``received`` entry written.
    """
    try:
        records = json.loads(outcome.payload_json or b"[]")
    except ValueError:
        return
    digests = digests_of(records)
    onward = contract.onward.model_dump(mode="json") if contract is not None and contract.onward else {}
    retention = onward.get("retention_seconds") if onward else None
    row = {
        "disclosure_id": outcome.disclosure_id[:256],
        "provider_org": provider_org,
        "contract_id": request.contract_id,
        "contract_hash": contract.version_hash if contract is not None else "",
        "agent_did": request.agent_did,
        "obligations": list(outcome.obligations)[:64],
        "onward": onward,
        "received_at": now,
        "retain_until": now + dt.timedelta(seconds=retention) if retention else None,
        "payload": (outcome.payload_json or b"").decode("utf-8", "replace"),
        "value_digests": digests,
    }
    idx = _index(node)
    await node.kept.submit(row)  # group-committed with other exchanges' rows (federation.ledger_writer)
    idx.add(_source(row), digests)


def outgoing_values(request: Any) -> list[str]:
    """Digests of the values a request carries: its subject and the aggregate query's values."""
    values: list[Any] = []
    if request.subject and request.subject != "*":
        values.append(request.subject)
    if request.aggregate_json:
        try:
            values.extend(_values(json.loads(request.aggregate_json)))
        except ValueError:
            pass
    return [d for d in (value_digest(v) for v in values) if d is not None]


async def check_outgoing(
    node: Any, *, request: Any, target_org: str, now: dt.datetime, local: Any = None
) -> None:
    """Refuse a request that carries received data where the source contract does not let it go.

    A value received from the target itself under the same contract passes (asking
    the source about its own record). Otherwise:

    * another contract: Authorization Drift is recorded, allowed or not (``drift``
      entry, reason ``AUTHORIZATION_DRIFT``, ``extra.cause = cross_contract_carry``,
      and the local session's ``drift_events``);
    * another organization: allowed only if the source contract's ``onward``
      allows it (to ``target_org``).

    Args:
        node: the requester's node.
        request: the agent's verified :class:`federation.domain.Request`.
        target_org: the provider organization DID it goes to.
        now: the request's clock reading.
        local: the agent's :class:`federation.domain.LocalSession` (its drift count).

    Raises:
        DeniedError: ``ONWARD_SHARING_FORBIDDEN`` (after the ``onward_refusal`` entry).
    """
    from federation import entries

    digests = outgoing_values(request)
    if not digests:
        return
    for src in _index(node).lookup(digests):
        same_org = src["provider_org"] == target_org
        same_contract = src["contract_id"] == request.contract_id
        if same_org and same_contract:
            continue
        onward = src["onward"] or {}
        allowed = bool(onward.get("allowed")) and (not onward.get("orgs") or target_org in onward["orgs"])
        if same_org:
            allowed = True  # back to its source: no third organization learns it
        evidence = {
            "source_disclosure_id": src["disclosure_id"],
            "source_contract_id": src["contract_id"],
            "source_provider_org": src["provider_org"],
        }
        if not same_contract:  # the rule: carrying data across contracts is AD, allowed or not
            drift = entries.node_event(
                kind="drift",
                prefix="drf_",
                provider_org=target_org,
                requester_org=node.did,
                agent=request.agent_did,
                contract_id=request.contract_id,
                purpose=request.purpose,
                fields=request.fields,
                reason="AUTHORIZATION_DRIFT",
                now=now,
                extra={**evidence, "cause": "cross_contract_carry"},
            )
            await node.writer.write(drift, receipt=False)
            if local is not None:  # the requester's LocalSession: its AD count
                local.drift_events += 1
        if allowed:
            continue
        entry = entries.node_event(
            kind="onward_refusal",
            prefix="onw_",
            provider_org=target_org,
            requester_org=node.did,
            agent=request.agent_did,
            contract_id=request.contract_id,
            purpose=request.purpose,
            fields=request.fields,
            reason="ONWARD_SHARING_FORBIDDEN",
            now=now,
            extra=evidence,
        )
        written = await node.writer.write(entry, receipt=False)
        ONWARD_REFUSED.labels(reason="ONWARD_SHARING_FORBIDDEN").inc()
        log.warning("onward sharing refused", target=target_org, **evidence)
        raise DeniedError(
            f"the request carries data received under {src['contract_id']} (disclosure "
            f"{src['disclosure_id']}), which does not allow passing it on to {target_org}",
            reason="ONWARD_SHARING_FORBIDDEN",
            metadata={**evidence, "local_leaf_index": str(written.index)},
        )


async def purge_due(node: Any) -> int:
    """Purge the received disclosures whose retention ended; one ``retention_purge`` entry each.

    Returns:
        How many disclosures were purged.
    """
    from federation import entries

    now = node.clock.now()
    store = ReceivedStore(node.store)
    due = await asyncio.to_thread(store.due, now=now)
    if not due:
        return 0
    for row in due:
        entry = entries.node_event(
            kind="retention_purge",
            prefix="prg_",
            provider_org=row["provider_org"],
            requester_org=node.did,
            agent=row["agent_did"],
            contract_id=row["contract_id"],
            contract_hash=row["contract_hash"],
            reason="RETENTION_ENDED",
            decision="allow",
            now=now,
            extra={
                "source_disclosure_id": row["disclosure_id"],
                "retain_until": row["retain_until"].isoformat(),
                "values": str(len(row["value_digests"])),
            },
        )
        await node.writer.write(entry, receipt=False)
        await asyncio.to_thread(store.delete, [row["disclosure_id"]])
        PURGED.inc()
    _index(node).drop({r["disclosure_id"] for r in due})
    log.info("received data purged", count=len(due))
    return len(due)
