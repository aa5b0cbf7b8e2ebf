"""The MCP server: one registered agent of this node, offered to an MCP client as tools.

``accord mcp serve --dir NODE_DIR --agent NAME`` serves the Model Context
Protocol (official ``mcp`` SDK, low-level ``Server``) over stdio, or over
Streamable HTTP with ``--http HOST:PORT`` (see :mod:`federation.mcp.http`).
The server acts as agent ``NAME`` through its own node's AgentService with the
Python SDK (:class:`federation.client.AgentClient`): the wallet is read from
``NODE_DIR/agents/NAME.json`` and never leaves that process; every call goes
through the node's sessions, the provider's contract decision, MNI gate and
auditor, and both ledgers.

Tools (input schemas built from the contracts in force, :mod:`federation.mcp.catalog`):

- ``list_partners``: partners and what each contract lets this agent ask for.
- ``request_records``: records of one subject under a purpose (MNI fields by default).
- ``aggregate_query``: a count/sum/avg under an aggregate purpose (audited by the provider).
- ``explain_denial``: a reason code's meaning and what would be allowed instead.
- ``list_disclosures``: this agent's own ``received`` ledger entries with their receipts.

Resources: ``accord://contracts/<id>`` (each contract in force, JSON) and
``accord://agent`` (who this server acts as).

Errors are MCP tool errors (``isError: true``) whose text starts with the
reason code and whose ``structuredContent`` is ``{"reason", "status",
"message", "crossed", "metadata"}``: ``crossed`` is false when the adapter
refused before anything left this node.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import structlog

from federation.client import AgentClient, AgentSession, AgentWallet
from federation.errors import FederationError, InvalidRequestError, NotFoundError
from federation.mcp import catalog as cat

log = structlog.get_logger("accord.mcp")

SERVER_NAME = "accord"
SESSION_MARGIN_SECONDS = 5
"""A session closer than this to its expiry is replaced before use."""
CATALOG_CHECK_SECONDS = 1.0
"""The contract, peer and config files are checked for changes at most this often (a stat of each)."""
_RENEW_REASONS = frozenset({"UNKNOWN_SESSION", "SESSION_EXPIRED", "SESSION_TERMINATED"})


@dataclass
class ToolError(Exception):
    """A refusal to return as an MCP tool error."""

    reason: str
    status: str
    message: str
    crossed: bool
    metadata: dict[str, str]

    @classmethod
    def of(cls, exc: FederationError, *, crossed: bool) -> ToolError:  # noqa: D102
        meta = {k: v for k, v in exc.metadata.items() if k not in ("tlog_proof", "entry_b64")}
        if "crossed" in meta:
            crossed = meta.pop("crossed") == "true"
        return cls(exc.reason, exc.status, str(exc)[:500], crossed, {k: v[:300] for k, v in meta.items()})

    def result(self) -> types.CallToolResult:  # noqa: D102
        body = {
            "reason": self.reason,
            "status": self.status,
            "message": self.message,
            "crossed": self.crossed,
            "metadata": self.metadata,
        }
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"{self.reason}: {self.message}")],
            structured_content=body,
            is_error=True,
        )


class AgentAdapter:
    """The agent behind the MCP server: wallet, catalog, sessions, ledger view.

    Args:
        node_dir: the agent's node directory.
        agent: the agent's name (``agents/<agent>.json``).

    Raises:
        NotFoundError: ``NO_WALLET``: no wallet for ``agent`` in ``node_dir``.

    """

    def __init__(self, node_dir: Path, agent: str) -> None:
        self.node_dir = Path(node_dir)
        path = self.node_dir / "agents" / f"{agent}.json"
        if not cat._safe_name(agent) or not path.is_file():
            raise NotFoundError(f"no wallet for agent {agent[:80]!r} in {node_dir}", reason="NO_WALLET")
        self.wallet = AgentWallet.load(path)
        self.agent = agent
        subject = self.wallet.credential.get("credentialSubject", {})
        self.scopes = [s for s in subject.get("scopes", []) if isinstance(s, str)]
        self._client: AgentClient | None = None  # made in the serving event loop (grpc.aio binds to it)
        self._sessions: dict[str, AgentSession] = {}
        self._catalog: cat.Catalog | None = None
        self._catalog_stamp: tuple[Any, ...] = ()
        self._catalog_checked = float("-inf")  # time.monotonic() of the last file check
        self._ledger: Any = None
        self._ledger_lock = anyio.Lock()

    @property
    def client(self) -> AgentClient:
        """The SDK client of the own node's AgentService (created on first use, in the serving loop)."""
        if self._client is None:
            self._client = AgentClient(self.wallet)
        return self._client

    async def close(self) -> None:
        """Close the node channel and the ledger view."""
        if self._client is not None:
            await self._client.close()
        if self._ledger is not None:
            self._ledger.close()

    # ------------------------------------------------------------ catalog (re-read when files change)

    def _stamp(self) -> tuple[Any, ...]:
        out: list[Any] = [(self.node_dir / "node.toml").stat().st_mtime_ns]
        for sub in ("contracts", "peers"):
            d = self.node_dir / sub
            if d.is_dir():
                out += sorted((p.name, p.stat().st_mtime_ns) for p in d.glob("*.json"))
        return tuple(out)

    def catalog(self) -> cat.Catalog:
        """The catalog for now.

        Re-read when a contract, peer or config file changes (the files are
        checked at most every :data:`CATALOG_CHECK_SECONDS`: a glob and a stat
        each, which a per-call check paid on every tool call), or when a
        contract comes into or goes out of force (``Catalog.next_change``,
        checked on every call). The catalog only narrows what the adapter
        sends; the node decides on its own copy of the contracts.
        """
        now = dt.datetime.now(dt.UTC)
        c = self._catalog
        stamp = self._catalog_stamp
        tick = time.monotonic()
        if c is None or tick - self._catalog_checked >= CATALOG_CHECK_SECONDS:
            stamp = self._stamp()
            self._catalog_checked = tick
        if c is None or stamp != self._catalog_stamp or (c.next_change is not None and now >= c.next_change):
            self._catalog = cat.Catalog.load(
                self.node_dir,
                agent=self.agent,
                agent_did=self.wallet.did,
                scopes=self.scopes,
                now=now,
            )
            self._catalog_stamp = stamp
        return self._catalog

    # ------------------------------------------------------------ sessions and requests

    async def _session(self, partner: cat.PartnerView) -> AgentSession:
        s = self._sessions.get(partner.org)
        if s is None or s.expires_at - time.time() < SESSION_MARGIN_SECONDS:
            s = await self.client.open_session(partner.org)
            self._sessions[partner.org] = s
        return s

    async def send(self, partner: cat.PartnerView, **kw: Any) -> Any:
        """One request as this agent (a fresh session once if the node lost ours).

        Raises:
            FederationError: the node's or the provider's refusal.

        """
        s = await self._session(partner)
        try:
            return await self.client.request(s, **kw)
        except FederationError as exc:
            if exc.reason not in _RENEW_REASONS:
                raise
            self._sessions.pop(partner.org, None)
            return await self.client.request(await self._session(partner), **kw)

    # ------------------------------------------------------------ ledger view

    def _open_ledger(self) -> Any:
        from federation.identity import NodeIdentity
        from federation.ledger_view import open_ledger_readonly

        if self._ledger is None:
            self._ledger = open_ledger_readonly(NodeIdentity.load(self.node_dir))
        return self._ledger

    async def own_entries(self, *, limit: int, partner_org: str | None, decision: str | None) -> list[dict]:
        """This agent's ``received`` entries, newest first (names and digests only)."""
        from ledger import EntryFilter

        def read() -> list[dict]:
            lg = self._open_ledger()
            rows = lg.query(
                EntryFilter(
                    agent_did=self.wallet.did,
                    kind="received",
                    counterpart_org=partner_org,
                    decision=decision,
                    limit=10_000,
                )
            )
            out = []
            for e in list(rows)[-limit:][::-1]:
                d = json.loads(e.entry.canonical_bytes())
                out.append(
                    {
                        "index": e.index,
                        "leaf_hash": e.leaf_hash.hex(),
                        "state": getattr(e.state, "value", str(e.state)),
                        **{
                            k: d.get(k)
                            for k in (
                                "time",
                                "disclosure_id",
                                "provider_org",
                                "contract_id",
                                "purpose",
                                "decision",
                                "reason",
                                "fields_requested",
                                "fields_released",
                                "fields_stripped",
                                "record_count",
                                "effective_trust",
                                "provider_leaf_hash",
                            )
                        },
                        # a "received" entry without RECEIPT_INVALID carries a verified provider receipt
                        "receipt": {
                            "provider_leaf_hash": d.get("provider_leaf_hash"),
                            "verified": d.get("reason") != "RECEIPT_INVALID"
                            and str(d.get("disclosure_id", "")).startswith("dsc_"),
                        },
                    }
                )
            return out

        async with self._ledger_lock:
            return await anyio.to_thread.run_sync(read)


# ---------------------------------------------------------------- tool schemas


def _enum(values: list[str]) -> dict[str, Any]:
    return {"enum": values} if values else {}


def tool_list(c: cat.Catalog) -> list[types.Tool]:
    """The tools with input schemas derived from the catalog ``c``."""
    partners = c.partner_names()
    partner = {
        "type": "string",
        "maxLength": cat.MAX_NAME_CHARS,
        "description": "Partner organization (name).",
        **_enum(partners),
    }
    record_purposes = c.purpose_names(aggregates=False)
    agg_purposes = c.purpose_names(aggregates=True)
    summary = "; ".join(
        f"{p.name}: " + ", ".join(f"{v.purpose} [{', '.join(v.mni)}]" for v in p.purposes)
        for p in c.partners.values()
    )
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    crossing = types.ToolAnnotations(read_only_hint=True, open_world_hint=True, idempotent_hint=False)
    return [
        types.Tool(
            name="list_partners",
            title="Partners and what each contract allows",
            description="List the partner organizations this agent may ask, and, per contract purpose, "
            "the resources, MNI fields (always released), optional fields (released only at enough "
            "trust), aggregates and the scopes it needs.",
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            annotations=read_only,
        ),
        types.Tool(
            name="request_records",
            title="Request records from a partner",
            description="Ask a partner organization for one subject's records under a contract purpose. "
            "Only the fields the contract and the provider's MNI gate release come back; every request "
            f"is recorded in both organizations' disclosure ledgers. Purposes (MNI fields): {summary}",
            input_schema={
                "type": "object",
                "properties": {
                    "partner": partner,
                    "purpose": {"type": "string", "maxLength": cat.MAX_NAME_CHARS, **_enum(record_purposes)},
                    "subject": {
                        "type": "string",
                        "maxLength": cat.MAX_SUBJECT_CHARS,
                        "description": "Subject key (e.g. a patient id), or * where the purpose allows.",
                    },
                    "fields": {
                        "type": "array",
                        "maxItems": cat.MAX_FIELDS,
                        "items": {
                            "type": "string",
                            "maxLength": cat.MAX_FIELD_CHARS,
                            **_enum(c.field_names()),
                        },
                        "description": "Fields wanted; default: the purpose's MNI fields.",
                    },
                    "resource": {
                        "type": "string",
                        "maxLength": cat.MAX_NAME_CHARS,
                        "description": "Resource; default: the purpose's only resource.",
                    },
                    "contract_id": {
                        "type": "string",
                        "maxLength": cat.MAX_NAME_CHARS,
                        "description": "Only when two contracts with the partner share the purpose name.",
                    },
                },
                "required": ["partner", "purpose", "subject"],
                "additionalProperties": False,
            },
            annotations=crossing,
        ),
        types.Tool(
            name="aggregate_query",
            title="Aggregate query to a partner",
            description="Ask a partner for a count, sum or average over a dataset under an aggregate "
            "purpose. The provider's reconstruction auditor refuses queries that, with earlier ones, "
            "would reveal individual records.",
            input_schema={
                "type": "object",
                "properties": {
                    "partner": partner,
                    "purpose": {"type": "string", "maxLength": cat.MAX_NAME_CHARS, **_enum(agg_purposes)},
                    "kind": {"type": "string", "enum": ["count", "sum", "avg"]},
                    "column": {"type": "string", "maxLength": cat.MAX_NAME_CHARS, **_enum(c.columns())},
                    "predicate": {
                        "type": "object",
                        "description": 'Selection, e.g. {"col": "district", "op": "==", "val": "north"}; '
                        "{} selects all.",
                    },
                    "resource": {"type": "string", "maxLength": cat.MAX_NAME_CHARS},
                    "contract_id": {"type": "string", "maxLength": cat.MAX_NAME_CHARS},
                },
                "required": ["partner", "purpose", "kind", "column"],
                "additionalProperties": False,
            },
            annotations=crossing,
        ),
        types.Tool(
            name="explain_denial",
            title="Explain a refusal",
            description="Explain an Accord reason code (from a tool error) and list what this agent "
            "could ask for instead.",
            input_schema={
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "maxLength": cat.MAX_NAME_CHARS},
                    "partner": {"type": "string", "maxLength": cat.MAX_NAME_CHARS},
                    "purpose": {"type": "string", "maxLength": cat.MAX_NAME_CHARS},
                },
                "required": ["reason"],
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
        types.Tool(
            name="list_disclosures",
            title="This agent's disclosures with receipts",
            description="This agent's own entries in its organization's disclosure ledger (newest first): "
            "what was asked, released and stripped, the decision and the provider's receipt.",
            input_schema={
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": cat.MAX_LIST_LIMIT},
                    "partner": {"type": "string", "maxLength": cat.MAX_NAME_CHARS},
                    "decision": {"type": "string", "enum": ["allow", "deny"]},
                },
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
    ]


# ---------------------------------------------------------------- tool handlers


async def _request_records(a: AgentAdapter, args: dict[str, Any]) -> dict[str, Any]:
    partner_name = cat.string_arg(args, "partner", limit=cat.MAX_NAME_CHARS)
    purpose = cat.string_arg(args, "purpose", limit=cat.MAX_NAME_CHARS)
    subject = cat.string_arg(args, "subject", limit=cat.MAX_SUBJECT_CHARS)
    fields = cat.fields_arg(args)
    resource = cat.string_arg(args, "resource", limit=cat.MAX_NAME_CHARS, required=False)
    contract_id = cat.string_arg(args, "contract_id", limit=cat.MAX_NAME_CHARS, required=False)
    c = a.catalog()
    partner = c.partner(partner_name)
    view = c.purpose(partner, purpose, contract_id or None)
    resource = resource or (view.resources[0] if len(view.resources) == 1 else "")
    fields = list(view.mni) if fields is None else fields
    c.check_records(view, resource=resource, fields=fields)
    r = await a.send(
        partner,
        contract_id=view.contract_id,
        purpose=view.purpose,
        resource=resource,
        subject=subject,
        fields=fields,
    )
    return {
        "partner": partner.name,
        "contract_id": view.contract_id,
        "purpose": view.purpose,
        "decision": r.decision,
        "records": r.records,
        "released_fields": list(r.released_fields),
        "stripped_fields": list(r.stripped_fields),
        "notes": list(r.reasons),
        "obligations": list(r.obligations),
        "content_labels": content_labels(r),
        "effective_trust": r.effective_trust,
        "receipt": {
            "disclosure_id": r.disclosure_id,
            "verified": r.receipt_verified,
            "received_leaf_index": r.received_leaf_index,
        },
    }


def content_labels(result: Any) -> list[dict[str, Any]]:
    """The own node's labels for free text in ``result`` (:class:`federation.client.Result`), as JSON.

    One ``{"record": int, "field": str, "verdict": str, "findings": [str],
    "quarantined": bool}`` per flagged or unscreened value (``ContentLabel``,
    docs/content-controls.md): the values at those places are untrusted data
    for the model, never instructions; a quarantined one is not in ``records``.
    """
    return [
        {
            "record": int(lb.record),
            "field": lb.field,
            "verdict": lb.verdict,
            "findings": list(lb.findings),
            "quarantined": bool(lb.quarantined),
        }
        for lb in getattr(result, "content_labels", ())
    ]


async def _aggregate(a: AgentAdapter, args: dict[str, Any]) -> dict[str, Any]:
    partner_name = cat.string_arg(args, "partner", limit=cat.MAX_NAME_CHARS)
    purpose = cat.string_arg(args, "purpose", limit=cat.MAX_NAME_CHARS)
    kind = cat.string_arg(args, "kind", limit=8)
    column = cat.string_arg(args, "column", limit=cat.MAX_NAME_CHARS)
    resource = cat.string_arg(args, "resource", limit=cat.MAX_NAME_CHARS, required=False)
    contract_id = cat.string_arg(args, "contract_id", limit=cat.MAX_NAME_CHARS, required=False)
    predicate = args.get("predicate") or {}
    if not isinstance(predicate, dict):
        raise InvalidRequestError("argument 'predicate' must be an object", reason="MALFORMED_REQUEST")
    if len(json.dumps(predicate).encode()) > cat.MAX_PREDICATE_BYTES:
        raise InvalidRequestError(
            f"argument 'predicate' exceeds {cat.MAX_PREDICATE_BYTES} bytes",
            reason="ARGUMENT_TOO_LARGE",
            metadata={"argument": "predicate", "limit": str(cat.MAX_PREDICATE_BYTES)},
        )
    c = a.catalog()
    partner = c.partner(partner_name)
    view = c.purpose(partner, purpose, contract_id or None)
    resource = resource or (view.resources[0] if len(view.resources) == 1 else "")
    c.check_aggregate(view, resource=resource, kind=kind, column=column)
    r = await a.send(
        partner,
        contract_id=view.contract_id,
        purpose=view.purpose,
        resource=resource,
        subject="*",
        fields=[],
        aggregate={"kind": kind, "column": column, "predicate": predicate},
    )
    return {
        "partner": partner.name,
        "purpose": view.purpose,
        "answer": r.records[0] if r.records else None,
        "receipt": {
            "disclosure_id": r.disclosure_id,
            "verified": r.receipt_verified,
            "received_leaf_index": r.received_leaf_index,
        },
    }


async def _explain(a: AgentAdapter, args: dict[str, Any]) -> dict[str, Any]:
    reason = cat.string_arg(args, "reason", limit=cat.MAX_NAME_CHARS)
    partner = cat.string_arg(args, "partner", limit=cat.MAX_NAME_CHARS, required=False)
    purpose = cat.string_arg(args, "purpose", limit=cat.MAX_NAME_CHARS, required=False)
    return cat.explain(a.catalog(), reason, partner=partner, purpose=purpose)


async def _disclosures(a: AgentAdapter, args: dict[str, Any]) -> dict[str, Any]:
    limit = args.get("limit", 20)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= cat.MAX_LIST_LIMIT:
        raise InvalidRequestError(
            f"argument 'limit' must be an integer in 1..{cat.MAX_LIST_LIMIT}", reason="ARGUMENT_TOO_LARGE"
        )
    partner_name = cat.string_arg(args, "partner", limit=cat.MAX_NAME_CHARS, required=False)
    decision = cat.string_arg(args, "decision", limit=8, required=False) or None
    if decision not in (None, "allow", "deny"):
        raise InvalidRequestError("argument 'decision' must be allow or deny", reason="MALFORMED_REQUEST")
    org = None
    if partner_name:
        c = a.catalog()
        org = c.peers.get(partner_name) or (partner_name if partner_name in c.peers.values() else None)
        if org is None:
            raise cat.PeerError(
                f"{partner_name[:80]!r} is not a pinned partner", metadata={"crossed": "false"}
            )
    entries = await a.own_entries(limit=limit, partner_org=org, decision=decision)
    return {"agent": a.wallet.did, "entries": entries}


async def _partners(a: AgentAdapter, args: dict[str, Any]) -> dict[str, Any]:
    c = a.catalog()
    return {
        "agent": {"name": a.agent, "did": a.wallet.did, "scopes": list(c.scopes)},
        "partners": [p.to_json() for p in c.partners.values()],
    }


HANDLERS = {
    "list_partners": _partners,
    "request_records": _request_records,
    "aggregate_query": _aggregate,
    "explain_denial": _explain,
    "list_disclosures": _disclosures,
}

#: tools whose calls may cross to a partner (a refusal after the send may have been decided there)
CROSSING = frozenset({"request_records", "aggregate_query"})


async def call_tool(a: AgentAdapter, name: str, arguments: Any) -> types.CallToolResult:
    """Run tool ``name`` (bounds first); every refusal becomes a tool error with its reason code."""
    handler = HANDLERS.get(name[: cat.MAX_NAME_CHARS])
    try:
        if handler is None:
            raise NotFoundError(f"no tool {name[:80]!r}", reason="NOT_FOUND", metadata={"crossed": "false"})
        args = cat.bound_arguments(arguments)
        body = await handler(a, args)
    except ToolError as exc:
        return exc.result()
    except FederationError as exc:
        # a refusal raised before the send carries crossed=false; one from the node or provider may
        # have reached a decision (then ``disclosure_id`` names its ledger entry)
        crossed = name in CROSSING and "disclosure_id" in exc.metadata
        log.info("tool refused", tool=name, reason=exc.reason, crossed=crossed)
        return ToolError.of(exc, crossed=crossed).result()
    except Exception as exc:  # our fault: say so without internals
        log.exception("tool failed", tool=name)
        return ToolError("INTERNAL", "INTERNAL", type(exc).__name__, False, {}).result()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(body, default=str))],
        structured_content=body,
    )


# ---------------------------------------------------------------- the server


def build_server(adapter: AgentAdapter) -> Any:
    """The low-level MCP ``Server`` for ``adapter`` (tools, resources)."""
    from mcp.server.lowlevel import Server

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tool_list(adapter.catalog()))

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await call_tool(adapter, params.name, params.arguments)

    async def on_list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        c = adapter.catalog()
        res = [
            types.Resource(
                uri="accord://agent",
                name="agent",
                title=f"The agent this server acts as ({adapter.agent})",
                mime_type="application/json",
            )
        ]
        for cid, doc in sorted(c.contracts.items()):
            res.append(
                types.Resource(
                    uri=f"accord://contracts/{cid}",
                    name=cid,
                    title=doc.get("title", cid),
                    description="A data-sharing contract in force, signed by both organizations.",
                    mime_type="application/json",
                )
            )
        return types.ListResourcesResult(resources=res)

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        from mcp.shared.exceptions import MCPError

        uri = str(params.uri)[:400]
        c = adapter.catalog()
        if uri == "accord://agent":
            text = json.dumps({"name": adapter.agent, "did": adapter.wallet.did, "scopes": list(c.scopes)})
        elif uri.startswith("accord://contracts/") and uri.removeprefix("accord://contracts/") in c.contracts:
            text = json.dumps(c.contracts[uri.removeprefix("accord://contracts/")], indent=1)
        else:
            raise MCPError(types.INVALID_PARAMS, f"UNKNOWN_CONTRACT: no resource {uri[:120]!r}")
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )

    server = Server(
        SERVER_NAME,
        version=_version(),
        instructions="Accord: ask partner organizations for data under signed contracts. Only the "
        "minimum necessary fields cross; every request is ledgered with a receipt.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_read_resource=on_read_resource,
    )
    from federation.observability import tracing_configured

    if not tracing_configured():
        # the SDK wraps every request in an OpenTelemetry span; with no tracer provider
        # set up, nothing records them and the wrapping is pure per-call cost
        server.middleware = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
    return server


def run_loop(main: Any) -> Any:
    """Run coroutine ``main`` to completion on uvloop (libuv) when installed, else asyncio's loop.

    The adapters' per-request cost is mostly event-loop work (pipe and socket
    wake-ups, task switches); uvloop does it in C (``accord bench adapters``).
    """
    import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accord-federation")
    except PackageNotFoundError:
        return "0"


MAX_STDIO_LINE_BYTES = 1024 * 1024
"""One JSON-RPC message on stdin is at most this many bytes; a longer one ends the session."""


class _PipeLines:
    """stdin as an async iterator of text lines, read by the event loop (no worker thread per line)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def __aiter__(self) -> _PipeLines:
        return self

    async def __anext__(self) -> str:
        try:
            line = await self.reader.readline()
        except ValueError:  # over MAX_STDIO_LINE_BYTES: bounded, the session ends
            log.warning("stdin message over the bound; closing", limit=MAX_STDIO_LINE_BYTES)
            raise StopAsyncIteration from None
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _PipeOut:
    """stdout as the SDK's async text file: ``write`` then ``flush`` (drain)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    async def write(self, text: str) -> None:
        self.writer.write(text.encode())

    async def flush(self) -> None:
        await self.writer.drain()


async def _pipe_streams() -> tuple[_PipeLines, _PipeOut] | None:
    """stdin/stdout as event-loop pipes, or None when they are not pipes (a tty, a file).

    The SDK's default stdio transport hands every line read and every write to a
    worker thread; on a loaded machine each hand-off waits for a time slice
    (``accord bench adapters``). With pipes the event loop reads and writes them
    itself. Stray writes to fd 1 go to stderr: the wire keeps a private dup.
    """
    import asyncio
    import os
    import stat
    import sys

    try:
        modes = [os.fstat(fd).st_mode for fd in (0, 1)]
        if not all(stat.S_ISFIFO(m) or stat.S_ISSOCK(m) for m in modes):
            return None
    except OSError:
        return None
    loop = asyncio.get_running_loop()
    wire_in = os.fdopen(os.dup(0), "rb", buffering=0)
    wire_out = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(2, 1)  # print() and stray output now reach stderr, never the wire
    reader = asyncio.StreamReader(limit=MAX_STDIO_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), wire_in)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, wire_out)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return _PipeLines(reader), _PipeOut(writer)


async def serve_stdio(node_dir: Path, agent: str) -> None:
    """Serve MCP over stdio until the client closes stdin (asyncio event loop)."""
    from mcp.server.stdio import stdio_server

    adapter = AgentAdapter(node_dir, agent)
    server = build_server(adapter)
    pipes = await _pipe_streams()
    try:
        async with stdio_server(*(pipes or ())) as (read, write):  # type: ignore[arg-type]
            await server.run(read, write, server.create_initialization_options())
    finally:
        if pipes is not None:
            pipes[1].writer.close()
        await adapter.close()
