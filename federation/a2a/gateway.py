"""``accord a2a serve``: the loopback A2A endpoint an organization's own agents talk to.

A local agent speaks plain A2A (JSON-RPC over HTTP, A2A v1.0; served by
a2a-sdk's JSON-RPC routes on Starlette/uvicorn) to its own node's gateway:

* ``GET  /a2a/<partner>/<agent>/.well-known/agent-card.json`` — the card of a
  partner's exposed agent, as this gateway serves it: the partner's signed
  card (verified against the partner's *pinned* organization key) with the
  interface URL set to this gateway, signed again by this organization's key,
  the partner's original card kept in the Accord extension (``partnerCard``);
* ``POST /a2a/<partner>/<agent>/`` — ``SendMessage`` (and ``GetTask`` for the
  caller's own recent tasks).

Every request carries ``Authorization: Bearer <token>`` (a per-agent token
minted by ``accord agent token NAME``, :mod:`federation.agent_tokens`). The gateway then acts as
that agent with the Python SDK (:class:`federation.client.AgentClient`,
the agent's wallet from the node directory) through the node's
AgentService: the own node opens the session at the partner with the
agent's presentation, forwards the signed request over the mTLS federation
(the existing ``Exchange`` RPC, no wire change), verifies the receipt and
writes its "received" entry; the partner decides with the contract's Rego
policy on the skill's purpose, its MNI gate releases only the allowed
fields and it logs the disclosure (or the refusal) with a receipt.

Where the message goes at the partner (the design choice, docs/agents.md):
the partner's exposed agent is served *in its node* — its answer is what the
node's provider agent offers from the organization's data source, through
the MNI gate, exactly as for a request from the SDK. The exposed agent is the
organization's public A2A face for those purposes; no A2A hop runs inside the
partner organization.

Partner cards come over the federation (``FederationService.GetAgentCards``,
mutual TLS, pinned partners only) and are kept ``[a2a] card_ttl_seconds``.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from a2a.server.request_handlers import RequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.types import AgentCard, AgentInterface, Task
from a2a.utils.errors import (
    ExtendedAgentCardNotConfiguredError,
    PushNotificationNotSupportedError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.task import apply_history_length
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from federation.a2a import cards as cardlib
from federation.a2a.errors import to_a2a_error
from federation.a2a.messages import RecordAsk, check_reply, completed_task, parse_message
from federation.errors import ConfigError, FederationError, InvalidRequestError, NotFoundError, PeerError

log = structlog.get_logger("accord.a2a")

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""Partner and agent names in gateway paths (DNS labels)."""
MAX_TASKS = 1024
"""Completed tasks the gateway remembers for ``GetTask`` (oldest dropped first)."""
SESSION_RETRY_REASONS = frozenset({"UNKNOWN_SESSION", "SESSION_EXPIRED", "SESSION_TERMINATED"})
"""Refusals after which the gateway opens a fresh session once and retries."""
SESSION_MARGIN_SECONDS = 30
"""A cached session this close to its expiry is replaced before use, seconds."""
RELOAD_CHECK_SECONDS = 1.0
"""The pinned-peer and contract files are checked for changes at most this often, seconds."""


@dataclass
class PartnerAgent:
    """A partner's exposed agent, as this gateway knows it.

    Attributes:
        org_did / org_name: the partner.
        card: the partner's signed card (verified).
        skills: skill id → the terms of each contract in force here that gives it.
        local_card: the card served to local agents (built on first use).

    """

    org_did: str
    org_name: str
    card: AgentCard
    skills: dict[str, list[cardlib.SkillTerms]]
    local_card: bytes | None = None


@dataclass
class _PartnerCards:
    fetched: float
    agents: dict[str, PartnerAgent] = field(default_factory=dict)


class Gateway:
    """The A2A gateway of one node directory (module docstring).

    Args:
        node_dir: the node directory (keys, pinned peers, contracts, wallets).
        base_url: ``http://HOST:PORT`` the gateway is reached at (written in local cards).
        tokens: maps a bearer token to a local agent name (default: the node
            directory's per-agent tokens, :mod:`federation.agent_tokens`, minted by
            ``accord agent token NAME``; revocation is seen at the next request).

    Raises:
        ConfigError: not a node directory.

    """

    def __init__(self, node_dir: Path, *, base_url: str, tokens: Callable[[str], str] | None = None) -> None:
        from federation.identity import NodeIdentity
        from federation.peer_client import PeerClient

        self.identity = NodeIdentity.load(node_dir)
        self.did = self.identity.org_did
        self.settings = self.identity.config.a2a
        self.base_url = base_url.rstrip("/")
        if tokens is None:
            from federation.agent_tokens import TokenBook
            from federation.errors import AuthenticationError

            book = TokenBook(node_dir)

            def tokens(token: str) -> str:
                if not token:
                    raise AuthenticationError(
                        "send Authorization: Bearer <token from accord agent token>", reason="TOKEN_MISSING"
                    )
                return book.verify(token).agent

        self.agent_for: Callable[[str], str] = tokens
        self.peer_client = PeerClient(
            cert_pem=self.identity.tls_pem("node.pem"), key_pem=self.identity.tls_pem("node.key")
        )
        self._partners: dict[str, _PartnerCards] = {}
        self._partner_locks: dict[str, asyncio.Lock] = {}
        self._clients: dict[str, Any] = {}
        self._sessions: dict[tuple[str, str], Any] = {}
        self._session_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: collections.OrderedDict[str, tuple[str, Task]] = collections.OrderedDict()
        self._files: tuple[Any, ...] = ()
        self._files_checked = time.monotonic()
        self._reload_lock = asyncio.Lock()
        self.reload()

    def _files_stamp(self) -> tuple[Any, ...]:
        out: list[Any] = []
        for d in (self.identity.paths.peers, self.identity.paths.contracts):
            if d.is_dir():
                out += sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in d.glob("*.json"))
        return tuple(out)

    def _load(self) -> tuple[Any, list[Any], tuple[Any, ...]]:
        """Read and verify the pinned peers and the contracts (file work: run it off the event loop)."""
        from federation.node_offline import key_resolver
        from federation.peers import PeerRegistry
        from policy import Contract, PolicyError

        stamp = self._files_stamp()
        peers = PeerRegistry.load(self.identity.paths.peers)
        resolver = key_resolver(self.identity)
        contracts = []
        if self.identity.paths.contracts.is_dir():
            for path in sorted(self.identity.paths.contracts.glob("*.json")):
                try:
                    c = Contract.load(path)
                    c.verify_signatures(resolver)
                except PolicyError as exc:
                    log.warning("contract skipped", file=path.name, reason=exc.reason)
                    continue
                contracts.append(c)
        return peers, contracts, stamp

    def _apply(self, loaded: tuple[Any, list[Any], tuple[Any, ...]]) -> None:
        peers, contracts, stamp = loaded
        self.peers = peers
        self.pinned = {b.verification_method: (b.org_did, b.public_key) for b in peers}
        self.contracts = contracts
        self._files = stamp
        self._partners = {}  # usable skills depend on the contracts: fetch partners' cards again

    def reload(self) -> None:
        """Re-read the pinned peers and the contracts (signatures verified with the pinned keys).

        A contract file that does not load or verify is skipped (the node refuses it too).
        Partners' cards are fetched again at their next use (their usable skills
        depend on the contracts).
        """
        self._apply(self._load())

    async def refresh(self) -> None:
        """:meth:`reload` when a peer or contract file changed since the last load.

        The files are looked at most every :data:`RELOAD_CHECK_SECONDS` (a glob
        and a stat each, ~0.05 ms for a few dozen files: on the event loop, a
        worker-thread hop would cost more), so a contract registered or removed
        while the gateway runs is seen within that time; the reload itself
        (parsing, signature checks) runs in a worker thread.
        """
        tick = time.monotonic()
        if tick - self._files_checked < RELOAD_CHECK_SECONDS:
            return
        async with self._reload_lock:
            if tick - self._files_checked < RELOAD_CHECK_SECONDS:
                return
            self._files_checked = time.monotonic()
            if self._files_stamp() != self._files:
                self._apply(await asyncio.to_thread(self._load))
                log.info("peers and contracts reloaded", contracts=len(self.contracts))

    # -- partners' cards -------------------------------------------------------------------

    async def partner_agents(self, partner: str) -> dict[str, PartnerAgent]:
        """The exposed agents of pinned partner ``partner`` (name or DID) offered to this organization.

        Fetched over the federation (``GetAgentCards``) and kept for
        ``card_ttl_seconds``; each card must verify against the partner's
        pinned key and name the partner (:func:`federation.a2a.cards.verify_card`).

        Raises:
            PeerError: ``UNKNOWN_PEER`` — not a pinned organization.
            AuthenticationError: ``AGENT_CARD_UNPINNED`` / ``AGENT_CARD_SIGNATURE_INVALID``.
            InvalidRequestError: ``A2A_MALFORMED_MESSAGE`` — an unparseable or oversized card.
            FederationError: the partner is unreachable or refuses.

        """
        bundle = self.peers.get(partner)
        hit = self._partners.get(bundle.org_did)
        ttl = self.settings.card_ttl_seconds
        if hit is not None and time.monotonic() - hit.fetched < ttl:
            return hit.agents
        lock = self._partner_locks.setdefault(bundle.org_did, asyncio.Lock())
        async with lock:
            hit = self._partners.get(bundle.org_did)
            if hit is not None and time.monotonic() - hit.fetched < ttl:
                return hit.agents
            raw = await self._fetch_cards(bundle)
            agents = self._verify_cards(bundle, raw)
            self._partners[bundle.org_did] = _PartnerCards(fetched=time.monotonic(), agents=agents)
            return agents

    async def _fetch_cards(self, bundle: Any) -> list[bytes]:
        """``GetAgentCards`` at the partner, over mutual TLS (a seam: tests substitute a partner's answer)."""
        import grpc

        from federation.pb import federation_pb2 as pb
        from federation.wire import from_rpc_error

        try:
            resp = await self.peer_client.stub(bundle).GetAgentCards(pb.GetAgentCardsRequest(), timeout=10.0)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return list(resp.agent_card_json)

    def _verify_cards(self, bundle: Any, raw: list[bytes]) -> dict[str, PartnerAgent]:
        """Parse, bound and verify a partner's cards; keep the skills a local contract also gives.

        Raises:
            InvalidRequestError / AuthenticationError: as :meth:`partner_agents`.

        """
        from federation.errors import AuthenticationError

        if len(raw) > cardlib.MAX_CARDS:
            raise InvalidRequestError(
                f"{bundle.org_name} sent {len(raw)} agent cards, at most {cardlib.MAX_CARDS} accepted",
                reason="A2A_MALFORMED_MESSAGE",
            )
        local_terms = cardlib.skill_terms(self.contracts, provider=bundle.org_did, requester=self.did)
        out: dict[str, PartnerAgent] = {}
        for data in raw:
            card = cardlib.parse_card(data)
            signer = cardlib.verify_card(card, pinned=self.pinned)
            if signer != bundle.org_did:
                raise AuthenticationError(
                    f"{bundle.org_name} served a card signed by {signer}", reason="AGENT_CARD_UNPINNED"
                )
            _, agent = cardlib.card_org(card)
            if not NAME.match(agent):
                raise InvalidRequestError(f"agent card names agent {agent!r}", reason="A2A_MALFORMED_MESSAGE")
            skills: dict[str, list[cardlib.SkillTerms]] = {}
            for skill in card.skills:
                contracts = {t.removeprefix("contract:") for t in skill.tags if t.startswith("contract:")}
                for t in local_terms.get(skill.id, []):
                    if t.contract_id in contracts:
                        skills.setdefault(skill.id, []).append(t)
            out[agent] = PartnerAgent(
                org_did=bundle.org_did, org_name=bundle.org_name, card=card, skills=skills
            )
        return out

    async def partner_agent(self, partner: str, agent: str) -> PartnerAgent:
        """One exposed agent of a partner.

        Raises:
            NotFoundError: ``A2A_UNKNOWN_AGENT`` — the partner exposes no such agent to this organization.
            (and as :meth:`partner_agents`)

        """
        agents = await self.partner_agents(partner)
        pa = agents.get(agent)
        if pa is None:
            raise NotFoundError(
                f"{partner} exposes no agent {agent!r} to this organization (exposed: {sorted(agents)})",
                reason="A2A_UNKNOWN_AGENT",
            )
        return pa

    def local_card(self, pa: PartnerAgent, partner: str, agent: str) -> bytes:
        """The card local agents get for a partner's agent (module docstring), JSON bytes."""
        if pa.local_card is None:
            card = AgentCard()
            card.CopyFrom(pa.card)
            del card.signatures[:]
            del card.supported_interfaces[:]
            card.supported_interfaces.append(
                AgentInterface(
                    url=f"{self.base_url}/a2a/{partner}/{agent}/",
                    protocol_binding="JSONRPC",
                    protocol_version=cardlib.PROTOCOL_VERSION,
                )
            )
            for ext in card.capabilities.extensions:
                if ext.uri == cardlib.ACCORD_EXTENSION:
                    ext.params.update(
                        {"gateway": self.did, "partnerCard": json_format.MessageToDict(pa.card)}
                    )
            cardlib.sign_card(card, key=self.identity.org_key, kid=self.identity.verification_method)
            pa.local_card = cardlib.card_json(card)
        return pa.local_card

    # -- acting as the local agent ---------------------------------------------------------

    def _client(self, agent_name: str) -> Any:
        from federation.client import AgentClient

        client = self._clients.get(agent_name)
        if client is None:
            wallet = self.identity.paths.agents / f"{agent_name}.json"
            if not NAME.match(agent_name) or not wallet.is_file():
                raise NotFoundError(f"no wallet for agent {agent_name!r}", reason="UNKNOWN_AGENT")
            client = AgentClient.from_wallet(wallet)
            self._clients[agent_name] = client
        return client

    async def _session(self, client: Any, agent_name: str, org_did: str, *, fresh: bool = False) -> Any:
        key = (agent_name, org_did)
        lock = self._session_locks.setdefault(key, asyncio.Lock())
        async with lock:
            sess = self._sessions.get(key)
            if fresh or sess is None or sess.expires_at - SESSION_MARGIN_SECONDS < time.time():
                sess = await client.open_session(org_did)
                self._sessions[key] = sess
            return sess

    async def _request(self, agent_name: str, org_did: str, ask: RecordAsk) -> Any:
        client = self._client(agent_name)
        fresh = False
        while True:
            sess = await self._session(client, agent_name, org_did, fresh=fresh)
            try:
                return await client.request(
                    sess,
                    contract_id=ask.contract_id,
                    purpose=ask.skill,
                    resource=ask.resource,
                    subject=ask.subject,
                    fields=list(ask.fields),
                )
            except FederationError as exc:
                if fresh or exc.reason not in SESSION_RETRY_REASONS:
                    raise
                fresh = True

    async def send(self, agent_name: str, partner: str, agent: str, message: Any) -> Task:
        """``SendMessage`` from local agent ``agent_name`` to ``agent`` of ``partner``.

        Returns:
            The completed task (:func:`federation.a2a.messages.completed_task`).

        Raises:
            FederationError: any refusal, with its reason (the handler turns it
                into an A2A error, :mod:`federation.a2a.errors`).

        """
        await self.refresh()
        pa = await self.partner_agent(partner, agent)
        ask = parse_message(
            message,
            skills=pa.skills,
            max_parts=self.settings.max_parts,
            max_part_bytes=self.settings.max_part_bytes,
        )
        result = await self._request(agent_name, pa.org_did, ask)
        check_reply(result.records, result.released_fields)
        task = completed_task(message, ask, result)
        self._tasks[task.id] = (agent_name, task)
        while len(self._tasks) > MAX_TASKS:
            self._tasks.popitem(last=False)
        return task

    def task(self, agent_name: str, task_id: str) -> Task:
        """A task this agent created (recent ones only).

        Raises:
            TaskNotFoundError: unknown, forgotten, or another agent's task.

        """
        hit = self._tasks.get(task_id)
        if hit is None or hit[0] != agent_name:
            raise TaskNotFoundError(f"task {task_id[:64]!r} not found")
        return hit[1]

    async def close(self) -> None:
        """Close the agents' channels and the peer client."""
        for client in self._clients.values():
            await client.close()
        await self.peer_client.close()


# -- the a2a-sdk server side --------------------------------------------------------------------


def _bearer(headers: Any) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class GatewayContextBuilder(DefaultServerCallContextBuilder):
    """Puts the route (partner, agent) and the bearer token in the A2A call context's state."""

    def build(self, request: Request):  # noqa: D102
        ctx = super().build(request)
        ctx.state["route"] = (request.path_params.get("partner", ""), request.path_params.get("agent", ""))
        ctx.state["token"] = _bearer(request.headers)
        headers = ctx.state.get("headers")
        if isinstance(headers, dict):  # the bearer token stays out of anything that logs the state
            headers.pop("authorization", None)
        return ctx


class GatewayHandler(RequestHandler):
    """a2a-sdk request handler: ``SendMessage`` and ``GetTask``; the rest is unsupported."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _caller(self, context: Any) -> tuple[str, str, str]:
        partner, agent = context.state.get("route", ("", ""))
        try:
            name = self.gateway.agent_for(context.state.get("token", ""))
            if not NAME.match(partner) or not NAME.match(agent):
                raise PeerError(f"no partner agent {partner!r}/{agent!r}", reason="UNKNOWN_PEER")
        except FederationError as exc:
            raise to_a2a_error(exc) from None
        return name, partner, agent

    async def on_message_send(self, params, context):  # noqa: D102
        name, partner, agent = self._caller(context)
        try:
            task = await self.gateway.send(name, partner, agent, params.message)
            # A2A §3.2.4: the caller's history_length bounds the history returned (unset: all of it)
            config = params.configuration if params.HasField("configuration") else None
            return apply_history_length(task, config)
        except FederationError as exc:
            log.info("a2a refused", agent=name, partner=partner, to=agent, reason=exc.reason)
            raise to_a2a_error(exc) from None

    async def on_get_task(self, params, context):  # noqa: D102
        name, _, _ = self._caller(context)
        return apply_history_length(self.gateway.task(name, params.id), params)

    async def on_message_send_stream(self, params, context):  # noqa: D102
        raise UnsupportedOperationError("streaming is not offered by the Accord gateway")
        yield  # pragma: no cover  (an async generator)

    async def on_subscribe_to_task(self, params, context):  # noqa: D102
        raise UnsupportedOperationError("subscriptions are not offered by the Accord gateway")
        yield  # pragma: no cover

    async def on_list_tasks(self, params, context):  # noqa: D102
        raise UnsupportedOperationError("ListTasks is not offered by the Accord gateway")

    async def on_cancel_task(self, params, context):  # noqa: D102
        raise UnsupportedOperationError("a completed task cannot be canceled")

    async def on_create_task_push_notification_config(self, params, context):  # noqa: D102
        raise PushNotificationNotSupportedError

    async def on_get_task_push_notification_config(self, params, context):  # noqa: D102
        raise PushNotificationNotSupportedError

    async def on_list_task_push_notification_configs(self, params, context):  # noqa: D102
        raise PushNotificationNotSupportedError

    async def on_delete_task_push_notification_config(self, params, context):  # noqa: D102
        raise PushNotificationNotSupportedError

    async def on_get_extended_agent_card(self, params, context):  # noqa: D102
        raise ExtendedAgentCardNotConfiguredError


class BodyLimit:
    """ASGI middleware: a POST must declare its length, at most ``limit`` bytes (else 411 / 413)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):  # noqa: D102
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length")
            status = 0
            if length is None or not length.isdigit():
                status = 411
            elif int(length) > self.limit:
                status = 413
            if status:
                body = f'{{"reason":"A2A_MESSAGE_TOO_LARGE","limit":{self.limit}}}' if status == 413 else ""
                await Response(body, status_code=status, media_type="application/json")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def make_app(gateway: Gateway) -> Any:
    """The ASGI application: a2a-sdk JSON-RPC routes and the card route, under a body limit."""

    async def card(request: Request) -> Response:
        partner = request.path_params["partner"]
        agent = request.path_params["agent"]
        try:
            gateway.agent_for(_bearer(request.headers))
            if not NAME.match(partner) or not NAME.match(agent):
                raise PeerError(f"no partner agent {partner!r}/{agent!r}", reason="UNKNOWN_PEER")
            await gateway.refresh()
            pa = await gateway.partner_agent(partner, agent)
            body = gateway.local_card(pa, partner, agent)
        except FederationError as exc:
            code = {"UNAUTHENTICATED": 401, "NOT_FOUND": 404, "INVALID_ARGUMENT": 400}.get(exc.status, 403)
            if exc.reason in ("TOKEN_MISSING", "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_REVOKED"):
                code = 401
            return JSONResponse({"reason": exc.reason, "detail": str(exc)[:500]}, status_code=code)
        return Response(body, media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [
        Route("/healthz", healthz),
        Route("/a2a/{partner}/{agent}/.well-known/agent-card.json", card),
        *create_jsonrpc_routes(
            GatewayHandler(gateway), "/a2a/{partner}/{agent}/", context_builder=GatewayContextBuilder()
        ),
    ]
    s = gateway.settings
    limit = s.max_parts * (s.max_part_bytes + 1024) + 64 * 1024
    return BodyLimit(Starlette(routes=routes), limit)


def check_loopback(host: str) -> None:
    """The gateway binds loopback only.

    Raises:
        ConfigError: ``host`` is not a loopback address (or ``localhost``).

    """
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"the A2A gateway listens on loopback only, got {host!r}", reason="CONFIG_INVALID")


async def serve(node_dir: Path, *, host: str, port: int, on_ready: Any = None) -> None:
    """Run the gateway until cancelled (``accord a2a serve``).

    Args:
        node_dir: the node directory.
        host: loopback address to bind.
        port: TCP port to bind (must be free; 0 is refused).
        on_ready: called with the base URL once the socket listens.

    Raises:
        ConfigError: a non-loopback host or port 0.

    """
    import uvicorn

    check_loopback(host)
    if not 0 < port < 65536:
        raise ConfigError("give the gateway a port (1..65535)", reason="CONFIG_INVALID")
    base = f"http://{host}:{port}"
    gateway = Gateway(node_dir, base_url=base)
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(gateway),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,  # loopback only, no proxy in front: skip the X-Forwarded-* middleware
            server_header=False,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and on_ready is not None:
            on_ready(base)
        await task
    finally:
        server.should_exit = True
        await gateway.close()


__all__ = [
    "Gateway",
    "GatewayHandler",
    "check_loopback",
    "make_app",
    "serve",
]
