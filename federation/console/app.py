"""The console's Starlette application: server-rendered pages (Jinja2), htmx for partial updates.

Routes (every one behind :func:`federation.console.auth.principal_for`):

====================================  ============================================================
``GET /``                              overview: partners, witnessing, checkpoint progress, alerts
``GET /partials/reachability``         peers probed over mTLS (htmx fragment)
``GET /ledger``                        ledger explorer (filters as ``accord ledger query``)
``GET /ledger/{index}``                one entry, with its inclusion proof checked in the browser
``GET /ledger/{index}/proof.json``     what ``static/verify.js`` checks
``GET /contracts``, ``/agents``        terms and signatures; credentials and status
``GET /approvals``                     the approval queue (when the node has one)
``GET /exposure``, ``/exposure.svg``   OER before/after the gate, denials (chart + table)
``GET /auditor``                       reconstruction auditor state per dataset and scope
``POST /agents/{name}/{action}``       revoke / suspend / reinstate (write role, CSRF, ledgered)
``POST /contracts/{id}/retire``        retire (write role, CSRF, ledgered)
``POST /approvals/{id}/approve|deny``  sign a decision with ``--approver`` (write role, CSRF, ledgered)
====================================  ============================================================

Every response carries ``Server-Timing: app;dur=<ms>`` (time in the application
up to the response headers: authentication, the read, the template), which
``accord bench console`` reads.

Bad input never reaches a stack trace: an oversized query string is 414, a
malformed filter 400, an unknown entry 404, a forged session cookie 403, a
write without the write role 403; anything unexpected is a 500 page naming
the error class only.
"""

from __future__ import annotations

import contextlib
import html
import secrets
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from federation.console.auth import (
    SESSION_COOKIE,
    ConsoleAuthError,
    Principal,
    Role,
    SessionCodec,
    check_csrf,
    principal_for,
)
from federation.console.views import ConsoleData, FilterError, LedgerFilterForm, pretty_json

__all__ = ["make_app", "MAX_QUERY_STRING", "MAX_FORM_BYTES"]

MAX_QUERY_STRING = 2048
"""Longest accepted query string, bytes (414 beyond)."""
MAX_FORM_BYTES = 4096
"""Largest accepted write-form body, bytes (413 beyond)."""
MAX_INDEX = 2**63 - 1
_HERE = Path(__file__).parent
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _approvals_module() -> Any | None:
    """``federation.approvals`` when this build has it (the approval queue), else ``None``."""
    try:
        import importlib

        return importlib.import_module("federation.approvals")
    except ImportError:
        return None


class _Guard:
    """ASGI middleware: bound the request line, authenticate, open or start the session.

    Puts ``scope["state"]["principal"]`` and ``["session"]`` for the endpoints and
    answers refusals itself with the error page.
    """

    def __init__(
        self, app: Any, *, org_did: str, loopback_role: Role, codec: SessionCodec, render, revocations=None
    ) -> None:
        self.app = app
        self.revocations = revocations
        self.org_did = org_did
        self.loopback_role = loopback_role
        self.codec = codec
        self.render = render

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope)
        fresh = False
        try:
            if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
                raise HTTPException(414, f"the query string is longer than {MAX_QUERY_STRING} bytes")
            principal = principal_for(
                scope, org_did=self.org_did, loopback_role=self.loopback_role, revocations=self.revocations
            )
            session = self.codec.loads(request.cookies.get(SESSION_COOKIE))
            if session is None:
                session, fresh = {"csrf": secrets.token_urlsafe(32)}, True
        except ConsoleAuthError as exc:
            response = self.render(request, exc.status, exc.reason, str(exc))
            if exc.reason == "FORGED_SESSION":
                response.delete_cookie(SESSION_COOKIE, path="/")
            await response(scope, receive, send)
            return
        except HTTPException as exc:
            await self.render(request, exc.status_code, "BAD_REQUEST", exc.detail)(scope, receive, send)
            return
        scope.setdefault("state", {})
        scope["state"]["principal"] = principal
        scope["state"]["session"] = session
        secure = principal.via == "mtls"

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", _CSP.encode()))
                took = (time.perf_counter() - started) * 1000
                headers += [
                    (b"server-timing", f"app;dur={took:.3f}".encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-store"),
                ]
                if fresh:
                    cookie = (
                        f"{SESSION_COOKIE}={self.codec.dumps(session)}; Path=/; HttpOnly; SameSite=Strict"
                        + ("; Secure" if secure else "")
                    )
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def make_app(
    data: ConsoleData,
    *,
    loopback_role: Role = "read",
    session_secret: bytes | None = None,
    approver: Any = None,
) -> Starlette:
    """The console application for one node directory.

    Args:
        data: the read side (:class:`federation.console.views.ConsoleData`), closed on shutdown.
        loopback_role: the role of plain-HTTP loopback requests (``read`` unless the
            console was started with ``--write``).
        session_secret: the session cookie's HMAC key (random per process by default).
        approver: the :class:`federation.console.actions.Approver` whose key signs approval
            decisions made in the console, or ``None`` (the queue is then read-only).

    Returns:
        The ASGI application.
    """
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters["pretty"] = pretty_json
    org_name = data.identity.config.org_name
    approvals = _approvals_module()

    def principal(request: Request) -> Principal:
        return request.scope["state"]["principal"]

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx.update(
            request=request,
            org_name=org_name,
            org_did=data.org_did,
            principal=request.scope.get("state", {}).get("principal"),
            csrf=request.scope.get("state", {}).get("session", {}).get("csrf", ""),
            have_approvals=approvals is not None,
        )
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    def error_page(request: Request, status: int, reason: str, message: str) -> Response:
        try:
            return page(request, "error.html", status, status_code=status, reason=reason, message=message)
        except Exception:  # the template itself failed: still no stack trace
            body = f"<!doctype html><title>{status}</title><h1>{status} {html.escape(reason)}</h1>"
            return Response(body, status_code=status, media_type="text/html")

    def require_write(request: Request) -> Principal:
        p = principal(request)
        if not p.can_write:
            raise ConsoleAuthError(
                "this action needs the console's write role (an operator certificate with the write role, "
                "or a loopback console started with --write)",
                status=403,
                reason="WRITE_ROLE_REQUIRED",
            )
        return p

    async def form_of(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"form body over {MAX_FORM_BYTES} bytes")
        from urllib.parse import parse_qs

        parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
        return {k: v[0] for k, v in parsed.items() if v}

    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise ConsoleAuthError("cross-origin form submission", status=403, reason="CSRF")

    # ---------------------------------------------------------------- pages
    def overview(request: Request) -> Response:
        return page(request, "overview.html", ov=data.overview())

    def reachability(request: Request) -> Response:
        return page(request, "reachability.html", rows=data.reachability())

    def ledger(request: Request) -> Response:
        try:
            form = LedgerFilterForm.parse(request.query_params)
            result = data.ledger_page(form)
        except FilterError as exc:
            return error_page(request, 400, "BAD_FILTER", str(exc))
        ctx = {"form": form, "result": result, "names": data.org_names()}
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "entries":
            return page(request, "ledger_table.html", **ctx)
        return page(request, "ledger.html", **ctx)

    def _index(request: Request) -> int:
        index = request.path_params["index"]
        if index > MAX_INDEX:
            raise _NotFound(index)
        return index

    def entry(request: Request) -> Response:
        from ledger import EntryNotFoundError

        try:
            row = data.entry(_index(request))
        except (EntryNotFoundError, _NotFound):
            return error_page(
                request,
                404,
                "UNKNOWN_ENTRY",
                f"no ledger entry at index {request.path_params['index']} "
                f"(the log holds {data.ledger.size()} entries)",
            )
        return page(request, "entry.html", e=row, names=data.org_names())

    def proof(request: Request) -> Response:
        from ledger import EntryNotFoundError

        try:
            body = data.proof(_index(request))
        except (EntryNotFoundError, _NotFound):
            return JSONResponse({"error": "UNKNOWN_ENTRY"}, status_code=404)
        return JSONResponse(body)

    def contracts(request: Request) -> Response:
        return page(request, "contracts.html", contracts=data.contract_rows())

    def agents(request: Request) -> Response:
        return page(request, "agents.html", agents=data.agent_rows())

    def auditor(request: Request) -> Response:
        return page(request, "auditor.html", rows=data.auditor_rows())

    def exposure(request: Request) -> Response:
        return page(request, "exposure.html", ex=data.exposure())

    def exposure_svg(request: Request) -> Response:
        from federation.console.charts import exposure_svg as draw

        return Response(
            draw(data.exposure()),
            media_type="image/svg+xml",
            headers={"content-security-policy": _SVG_CSP},
        )

    def approvals_page(request: Request) -> Response:
        if approvals is None:
            return page(request, "approvals.html", available=False, queue={}, approver=None)
        return page(request, "approvals.html", available=True, queue=data.approvals(), approver=approver)

    # ---------------------------------------------------------------- writes
    async def act(request: Request, action: str, target: str) -> Response:
        from starlette.concurrency import run_in_threadpool

        from federation.console.actions import ActionError, apply_action

        try:
            p = require_write(request)
            same_origin(request)
            form = await form_of(request)
            check_csrf(request.scope["state"]["session"], form.get("csrf"))
            done = await run_in_threadpool(apply_action, data, action=action, target=target, principal=p)
        except ConsoleAuthError as exc:
            return error_page(request, exc.status, exc.reason, str(exc))
        except ActionError as exc:
            return error_page(request, exc.status, exc.reason, str(exc))
        return page(request, "done.html", done=done, action=action, target=target)

    async def approval_action(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        from federation.console.actions import ActionError, decide_approval

        verb = request.path_params["verb"]
        if approvals is None or verb not in ("approve", "deny"):
            return error_page(request, 404, "UNKNOWN_ACTION", f"no approval action {verb[:40]!r}")
        try:
            p = require_write(request)
            same_origin(request)
            form = await form_of(request)
            check_csrf(request.scope["state"]["session"], form.get("csrf"))
            done = await run_in_threadpool(
                decide_approval,
                data,
                approval_id=request.path_params["aid"][:64],
                approve=verb == "approve",
                principal=p,
                approver=approver,
            )
        except ConsoleAuthError as exc:
            return error_page(request, exc.status, exc.reason, str(exc))
        except ActionError as exc:
            return error_page(request, exc.status, exc.reason, str(exc))
        return page(
            request, "done.html", done=done, action=f"approval.{verb}", target=request.path_params["aid"]
        )

    async def agent_action(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("revoke", "suspend", "reinstate"):
            return error_page(request, 404, "UNKNOWN_ACTION", f"no agent action {action[:40]!r}")
        return await act(request, f"agent.{action}", request.path_params["name"][:200])

    async def contract_retire(request: Request) -> Response:
        return await act(request, "contract.retire", request.path_params["cid"][:200])

    # ---------------------------------------------------------------- errors
    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        reason = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE", 414: "URI_TOO_LONG"}.get(
            status, "BAD_REQUEST"
        )
        detail = getattr(exc, "detail", "") or reason
        if status == 404:
            detail = f"no page at {request.url.path[:200]}"
        return error_page(request, status, reason, str(detail))

    async def on_error(request: Request, exc: Exception) -> Response:
        import structlog

        structlog.get_logger("accord.console").error(
            "console error", error=exc.__class__.__name__, detail=str(exc)[:300], path=request.url.path[:200]
        )
        return error_page(
            request,
            500,
            "INTERNAL",
            f"the console failed on this page ({exc.__class__.__name__}); see its log",
        )

    routes = [
        Route("/", overview),
        Route("/partials/reachability", reachability),
        Route("/ledger", ledger),
        Route("/ledger/{index:int}", entry),
        Route("/ledger/{index:int}/proof.json", proof),
        Route("/contracts", contracts),
        Route("/contracts/{cid}/retire", contract_retire, methods=["POST"]),
        Route("/agents", agents),
        Route("/agents/{name}/{action}", agent_action, methods=["POST"]),
        Route("/approvals", approvals_page),
        Route("/approvals/{aid}/{verb}", approval_action, methods=["POST"]),
        Route("/exposure", exposure),
        Route("/exposure.svg", exposure_svg),
        Route("/auditor", auditor),
        Route("/favicon.ico", lambda r: RedirectResponse("/static/favicon.svg", 301)),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        yield
        data.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: on_http_error, Exception: on_error},
        lifespan=lifespan,
    )
    codec = SessionCodec(session_secret)
    from federation.console.revocation import RevocationList

    app.add_middleware(
        _Guard,
        org_did=data.org_did,
        loopback_role=loopback_role,
        codec=codec,
        render=error_page,
        revocations=RevocationList(data.identity.paths.tls),
    )
    return app


class _NotFound(Exception):
    """An entry index beyond what any log could hold."""
