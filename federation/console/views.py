"""What each console page shows, read from the node directory through the existing read APIs.

Pure data in, dicts out: the ledger through :class:`ledger.TransparencyLog`
(``query``/``get``/``inclusion_proof``/``watermarks``), agents through
:class:`federation.store.NodeStore`, peers through
:class:`federation.peers.PeerRegistry`, contracts through
:class:`policy.Contract`, the auditor through
:class:`federation.datasets.DatasetService`, OER through
:mod:`policy.measures`. No SQL here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from federation.identity import NodeIdentity

__all__ = ["ConsoleData", "LedgerFilterForm", "FilterError", "PAGE_SIZE", "EXPOSURE_WINDOW"]

PAGE_SIZE = 50
"""Entries per ledger-explorer page."""
EXPOSURE_WINDOW = 10_000
"""Newest exchange entries the exposure page summarizes (bounded work per render)."""
ALERT_SCAN = 1_000
"""Newest drift / audit-denial entries counted for the overview's alerts (shown as "≥ N" when capped)."""
_MAX_FILTER = 256
_KINDS = ("disclosure", "received", "denial", "drift", "equivocation", "audit_denial", "operator_action")


class FilterError(ValueError):
    """A malformed ledger-explorer filter (answered 400 with the field and the reason)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass(frozen=True)
class LedgerFilterForm:
    """The ledger explorer's filters, parsed from the query string (the same as ``accord ledger query``).

    Attributes:
        counterpart, agent, contract, purpose, field, decision, kind: as the CLI options.
        since, until: RFC 3339 times (``until`` exclusive).
        before: keyset cursor: show entries with index ``< before`` (newest first).
    """

    counterpart: str = ""
    agent: str = ""
    contract: str = ""
    purpose: str = ""
    field: str = ""
    decision: str = ""
    kind: str = ""
    since: str = ""
    until: str = ""
    before: int | None = None

    NAMES = ("counterpart", "agent", "contract", "purpose", "field", "decision", "kind", "since", "until")

    @classmethod
    def parse(cls, params: Any) -> LedgerFilterForm:
        """Parse query parameters (a multidict); every value bounded before use.

        Raises:
            FilterError: an unknown parameter, a repeated one, a value over 256
                characters, a bad decision/kind, a time that is not RFC 3339, or a
                cursor that is not a non-negative integer.
        """
        values: dict[str, str] = {}
        for key in params.keys():
            if key not in cls.NAMES and key != "before":
                raise FilterError(key[:40], "unknown filter")
            got = params.getlist(key)
            if len(got) != 1:
                raise FilterError(key, "given more than once")
            if len(got[0]) > _MAX_FILTER:
                raise FilterError(key, f"longer than {_MAX_FILTER} characters")
            values[key] = got[0].strip()
        before = None
        if values.get("before"):
            if not values["before"].isdigit() or len(values["before"]) > 19:
                raise FilterError("before", "must be a non-negative integer (an entry index)")
            before = int(values["before"])
        if values.get("decision") and values["decision"] not in ("allow", "deny"):
            raise FilterError("decision", "must be allow or deny")
        if values.get("kind") and values["kind"] not in _KINDS:
            raise FilterError("kind", f"must be one of {', '.join(_KINDS)}")
        form = cls(**{k: values.get(k, "") for k in cls.NAMES}, before=before)
        form.time("since")
        form.time("until")
        return form

    def time(self, name: str) -> dt.datetime | None:
        """The ``since``/``until`` value as an aware datetime (UTC when no offset is given).

        Raises:
            FilterError: not an RFC 3339 time.
        """
        value = getattr(self, name)
        if not value:
            return None
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FilterError(name, f"not an RFC 3339 time: {value!r}") from exc
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)

    def query_string(self, **override: Any) -> str:
        """The filters (and ``override``) as a URL query string, empty values left out."""
        from urllib.parse import urlencode

        d = {k: getattr(self, k) for k in self.NAMES}
        d["before"] = "" if self.before is None else str(self.before)
        d.update({k: "" if v is None else str(v) for k, v in override.items()})
        return urlencode({k: v for k, v in d.items() if v})


def entry_row(e: Any) -> dict[str, Any]:
    """A stored entry as the flat dict ``accord ledger query --json`` prints (plus ``sequenced_at``)."""
    from federation.cli.ledger import entry_row as cli_row

    d = cli_row(e)
    d["sequenced_at"] = e.sequenced_at.isoformat()
    return d


class ConsoleData:
    """The console's read side for one node directory (one instance per console process).

    Args:
        identity: the node's identity (``NodeIdentity.load``).

    The ledger is opened once and kept (its reads are short transactions, safe
    from several threads); agents, peers and contracts are re-read per request
    so changes made by the CLI or the running node show at once.
    """

    def __init__(self, identity: NodeIdentity) -> None:
        from federation.ledger_view import open_ledger_readonly

        self.identity = identity
        self.ledger = open_ledger_readonly(identity)
        self._reach: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the ledger's database connections."""
        self.ledger.close()

    # ------------------------------------------------------------------ helpers
    @property
    def org_did(self) -> str:
        """This node's organization DID."""
        return self.identity.org_did

    def store(self) -> Any:
        """The node's :class:`federation.store.NodeStore`."""
        from federation.agents import open_store

        return open_store(self.identity)

    def peers(self) -> Any:
        """The pinned peers (:class:`federation.peers.PeerRegistry`)."""
        from federation.peers import PeerRegistry

        return PeerRegistry.load(self.identity.paths.peers)

    def org_names(self) -> dict[str, str]:
        """DID -> organization name for this node and its pinned peers."""
        names = {b.org_did: b.org_name for b in self.peers()}
        names[self.org_did] = self.identity.config.org_name
        return names

    def contracts(self) -> list[Any]:
        """Registered contracts (:class:`policy.Contract`), by id."""
        from policy import Contract

        return [Contract.load(p) for p in sorted(self.identity.paths.contracts.glob("*.json"))]

    # ------------------------------------------------------------------ overview
    def log_state(self) -> dict[str, Any]:
        """Watermarks, the latest checkpoint note, witnessing status and equivocation evidence."""
        from federation.cli.ledger import _witnessing_status
        from federation.config import database_url_for
        from ledger import Witness

        lg = self.ledger
        marks = lg.watermarks()
        cp = lg.latest_checkpoint()
        equivocations = list(lg.equivocations())
        w = Witness.open(
            database_url_for(self.identity.paths.root, self.identity.config),
            signer=self.identity.witness_signer(),
        )
        try:
            equivocations += list(w.equivocations())
        finally:
            w.close()
        return {
            "sequenced": marks.sequenced,
            "integrated": marks.integrated,
            "checkpointed": marks.checkpointed,
            "witnessed": marks.witnessed,
            "checkpoint": cp.note if cp else "",
            "witnessing": _witnessing_status(self.identity),
            "equivocations": [
                {"origin": e.origin, "size": e.size, "detail": e.detail, "detected_at": str(e.detected_at)}
                for e in equivocations
            ],
        }

    def kind_count(self, kind: str) -> tuple[int, bool]:
        """(entries of ``kind`` among the newest :data:`ALERT_SCAN` of that kind, capped?)."""
        from ledger import EntryFilter

        n = len(self.ledger.query(EntryFilter(kind=kind, limit=ALERT_SCAN, newest_first=True)))
        return n, n >= ALERT_SCAN

    def overview(self) -> dict[str, Any]:
        """Everything the overview page shows except live reachability (fetched separately)."""
        state = self.log_state()
        alerts: list[dict[str, str]] = []
        for e in state["equivocations"]:
            alerts.append(
                {
                    "level": "critical",
                    "what": "equivocation",
                    "detail": f"{e['origin']} size {e['size']}: {e['detail']}",
                }
            )
        for name, st in state["witnessing"]["per_witness"].items():
            # an error the witness has since recovered from (it cosigned the latest size) is history
            behind = int(st.get("cosigned_size", -1)) < state["checkpointed"]
            if st.get("last_error") and (behind or st.get("failing")):
                alerts.append(
                    {"level": "warning", "what": "witness failure", "detail": f"{name}: {st['last_error']}"}
                )
        if state["witnessing"].get("problem") and state["checkpointed"] > state["witnessed"]:
            alerts.append(
                {"level": "warning", "what": "witness lag", "detail": state["witnessing"]["problem"]}
            )
        counts = {}
        for kind, label in (("drift", "authorization drift"), ("audit_denial", "audit hits")):
            n, capped = self.kind_count(kind)
            counts[kind] = f"≥ {n}" if capped else str(n)
            if n:
                alerts.append(
                    {
                        "level": "warning",
                        "what": label,
                        "detail": f"{counts[kind]} {kind} entries in the ledger",
                        "href": f"/ledger?kind={kind}",
                    }
                )
        peers = [
            {"name": b.org_name, "did": b.org_did, "endpoint": b.endpoint, "fingerprint": b.fingerprint()}
            for b in self.peers()
        ]
        return {"state": state, "alerts": alerts, "peers": peers, "counts": counts}

    def reachability(self, *, timeout: float = 2.0, ttl: float = 15.0) -> list[dict[str, Any]]:
        """Per pinned peer: reachable over mTLS (``NodeInfo``), round-trip ms, or the error.

        Results are cached ``ttl`` seconds; each probe is bounded by ``timeout`` seconds.
        """
        import asyncio

        from federation.peer_client import PeerClient

        now = time.monotonic()
        with self._lock:
            hit = self._reach.get("all")
            if hit and now - hit[0] < ttl:
                return hit[1]["rows"]

        async def probe_all() -> list[dict[str, Any]]:
            client = PeerClient(
                cert_pem=self.identity.tls_pem("node.pem"),
                key_pem=self.identity.tls_pem("node.key"),
                timeout_seconds=timeout,
            )

            async def one(b: Any) -> dict[str, Any]:
                t0 = time.perf_counter()
                try:
                    await asyncio.wait_for(client.node_info(b), timeout)
                except Exception as exc:  # any failure is "unreachable", with its reason
                    reason = getattr(exc, "reason", exc.__class__.__name__)
                    return {"name": b.org_name, "endpoint": b.endpoint, "ok": False, "detail": str(reason)}
                ms = (time.perf_counter() - t0) * 1000
                return {"name": b.org_name, "endpoint": b.endpoint, "ok": True, "detail": f"{ms:.0f} ms"}

            try:
                return list(await asyncio.gather(*(one(b) for b in self.peers())))
            finally:
                await client.close()

        rows = asyncio.run(probe_all())
        with self._lock:
            self._reach["all"] = (now, {"rows": rows})
        return rows

    # ------------------------------------------------------------------ ledger
    def ledger_page(self, form: LedgerFilterForm) -> dict[str, Any]:
        """One page (newest first, keyset on the index) of entries matching ``form``.

        Returns:
            ``{"rows": [...], "next_before": int | None}``.

        Raises:
            FilterError: ``since`` after ``until``.
        """
        from federation.cli.ledger import _org
        from ledger import EntryFilter

        try:
            flt = EntryFilter(
                counterpart_org=_org(form.counterpart or None),
                agent_did=form.agent or None,
                contract_id=form.contract or None,
                purpose=form.purpose or None,
                field=form.field or None,
                decision=form.decision or None,
                kind=form.kind or None,
                since=form.time("since"),
                until=form.time("until"),
                end_index=form.before,
                limit=PAGE_SIZE + 1,
                newest_first=True,
            )
        except ValueError as exc:
            raise FilterError("since", str(exc)) from exc
        stored = self.ledger.query(flt)
        more = len(stored) > PAGE_SIZE
        rows = [entry_row(e) for e in stored[:PAGE_SIZE]]
        return {"rows": rows, "next_before": rows[-1]["index"] if more and rows else None}

    def entry(self, index: int) -> dict[str, Any]:
        """One entry with its commit state.

        Raises:
            ledger.EntryNotFoundError: no entry at ``index``.
        """
        return entry_row(self.ledger.get(index))

    def proof(self, index: int) -> dict[str, Any]:
        """What the browser needs to verify entry ``index`` (``static/verify.js``).

        Returns:
            ``{"leaf_index", "tree_size", "entry_b64" (the leaf data: JCS bytes),
            "leaf_hash_b64", "hashes_b64" (RFC 9162 §2.1.3 audit path), "checkpoint"
            (C2SP signed note), "vkey" (C2SP verifier key)}``, or ``{"pending": reason}``
            when no signed checkpoint covers the entry yet.

        Raises:
            ledger.EntryNotFoundError: no entry at ``index``.
        """
        lg = self.ledger
        e = lg.get(index)
        cp = lg.latest_checkpoint()
        if cp is None or cp.checkpoint.size <= index:
            return {"pending": "no signed checkpoint covers this entry yet"}
        size = cp.checkpoint.size
        hashes = lg.inclusion_proof(index, size)
        b64 = base64.b64encode
        return {
            "leaf_index": index,
            "tree_size": size,
            "entry_b64": b64(e.entry.canonical_bytes()).decode(),
            "leaf_hash_b64": b64(e.leaf_hash).decode(),
            "hashes_b64": [b64(h).decode() for h in hashes],
            "checkpoint": cp.note,
            "vkey": self._vkey(),
        }

    def _vkey(self) -> str:
        return self.identity.ledger_signer().vkey

    # ------------------------------------------------------------------ contracts
    def contract_rows(self) -> list[dict[str, Any]]:
        """Per registered contract: terms, purposes (MNI, optional fields), signatures, versions seen."""
        from ledger import EntryFilter

        now = dt.datetime.now(dt.UTC)
        names = self.org_names()
        out = []
        for c in self.contracts():
            seen: dict[str, dict[str, Any]] = {}
            for e in self.ledger.query(EntryFilter(contract_id=c.id, limit=1000, newest_first=True)):
                h = e.entry.contract_hash
                if not h:
                    continue
                s = seen.setdefault(h, {"hash": h, "entries": 0, "first": e.entry.time, "last": e.entry.time})
                s["entries"] += 1
                s["first"] = min(s["first"], e.entry.time)
                s["last"] = max(s["last"], e.entry.time)
            out.append(
                {
                    "id": c.id,
                    "version": c.version,
                    "hash": c.version_hash,
                    "provider": names.get(c.parties.provider.org, c.parties.provider.org),
                    "requester": names.get(c.parties.requester.org, c.parties.requester.org),
                    "valid_from": c.valid_from.isoformat(),
                    "valid_until": c.valid_until.isoformat(),
                    "retired_at": c.retired_at.isoformat() if c.retired_at else "",
                    "title": c.title,
                    "in_force": c.in_force(now),
                    "trust_budget": c.trust_budget.model_dump(mode="json") if c.trust_budget else None,
                    "obligations": list(c.obligations),
                    "trust_ceiling": c.trust_ceiling,
                    "purposes": [
                        {
                            "name": name,
                            "resources": list(p.resources),
                            "mni": list(p.mni),
                            "optional": [
                                {"field": f, "min_trust": o.min_trust, "sensitivity": o.sensitivity}
                                for f, o in sorted(p.optional.items())
                            ],
                            "required_scopes": list(p.required_scopes),
                            "aggregates": p.aggregates is not None,
                        }
                        for name, p in sorted(c.purposes.items())
                    ],
                    "signatures": [
                        {"org": names.get(s.org, s.org), "method": s.verification_method, "jws": s.jws}
                        for s in c.signatures
                    ],
                    "signatures_ok": self._signatures_ok(c),
                    "versions_seen": sorted(seen.values(), key=lambda s: s["last"], reverse=True),
                }
            )
        return out

    def _signatures_ok(self, c: Any) -> str:
        from federation.node_offline import key_resolver

        try:
            c.verify_signatures(key_resolver(self.identity))
        except Exception as exc:  # shown, not raised: the page lists every contract
            return f"does not verify: {getattr(exc, 'reason', exc.__class__.__name__)}"
        return "both signatures verify"

    # ------------------------------------------------------------------ agents
    def agent_rows(self, *, expiring_within_days: int = 7) -> list[dict[str, Any]]:
        """Agents as ``accord agent list --json`` prints them (plus the credential id)."""
        from federation.agents import agent_row

        now = dt.datetime.now(dt.UTC)
        return [
            {
                **agent_row(a, now=now, expiring_within_days=expiring_within_days),
                "credential_types": list(a.credential.get("type", [])),
            }
            for a in self.store().agents()
        ]

    # ------------------------------------------------------------------ approvals
    def approval_queue(self) -> Any:
        """The node's :class:`federation.approvals.ApprovalQueue`."""
        from federation.approvals import ApprovalQueue

        return ApprovalQueue(self.store(), org_did=self.org_did)

    def approvals(self) -> dict[str, Any]:
        """Pending approval rows (riskiest first) and the 20 newest rows of any status."""
        q = self.approval_queue()
        return {"pending": q.pending(now=dt.datetime.now(dt.UTC)), "recent": q.list(limit=20)}

    # ------------------------------------------------------------------ auditor
    def auditor_rows(self) -> list[dict[str, Any]]:
        """Per dataset and scope: the reconstruction auditor's persisted state (``accord audit status``)."""
        from federation.datasets import DatasetService

        svc = DatasetService(self.store())
        svc.load()
        return svc.status()

    # ------------------------------------------------------------------ exposure
    def exposure(self) -> dict[str, Any]:
        """OER before/after the gate, denials and audit denials over the newest exchange entries.

        Only entries this node wrote as provider (``disclosure``, ``denial``,
        ``audit_denial``) count: those are the crossings its gate decided. The
        beyond-MNI test is :func:`policy.measures.beyond_mni` against the
        contract's purpose MNI (A*); *before the gate* is what the source offered
        (released ∪ stripped), *after* is what was released.

        Returns:
            ``{"groups": [per (partner, contract) totals], "series": {stage: [(t, OER)]},
            "buckets": [...], "scanned": int, "capped": bool}``.
        """
        from ledger import EntryFilter
        from policy.measures import beyond_mni

        mni: dict[tuple[str, str], frozenset[str]] = {}
        for c in self.contracts():
            for name, p in c.purposes.items():
                mni[(c.id, name)] = frozenset(p.mni)
        names = self.org_names()
        rows = []
        for kind in ("disclosure", "denial", "audit_denial"):
            rows += self.ledger.query(EntryFilter(kind=kind, limit=EXPOSURE_WINDOW, newest_first=True))
        rows = [r for r in rows if r.entry.provider_org == self.org_did]
        rows.sort(key=lambda r: r.index)
        rows = rows[-EXPOSURE_WINDOW:]
        groups: dict[tuple[str, str], Counter] = defaultdict(Counter)
        points: list[tuple[dt.datetime, str, bool, bool]] = []
        for r in rows:
            e = r.entry
            partner = names.get(e.requester_org, e.requester_org)
            g = groups[(partner, e.contract_id)]
            if e.kind == "audit_denial":
                g["audit_denials"] += 1
                continue
            if e.kind == "denial":
                g["denials"] += 1
                continue
            a_star = mni.get((e.contract_id, e.purpose), frozenset())
            before = bool(beyond_mni(set(e.fields_released) | set(e.fields_stripped), a_star))
            after = bool(beyond_mni(e.fields_released, a_star))
            g["disclosures"] += 1
            g["beyond_before"] += before
            g["beyond_after"] += after
            points.append((dt.datetime.fromisoformat(e.time.replace("Z", "+00:00")), partner, before, after))
        out_groups = []
        for (partner, contract), g in sorted(groups.items()):
            n = g["disclosures"]
            out_groups.append(
                {
                    "partner": partner,
                    "contract": contract,
                    "disclosures": n,
                    "oer_before": g["beyond_before"] / n if n else None,
                    "oer_after": g["beyond_after"] / n if n else None,
                    "denials": g["denials"],
                    "audit_denials": g["audit_denials"],
                }
            )
        return {
            "groups": out_groups,
            "points": points,
            "denial_times": [
                (dt.datetime.fromisoformat(r.entry.time.replace("Z", "+00:00")), r.entry.kind)
                for r in rows
                if r.entry.kind != "disclosure"
            ],
            "scanned": len(rows),
            "capped": len(rows) >= EXPOSURE_WINDOW,
        }


def pretty_json(value: Any) -> str:
    """Indented JSON for display."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
