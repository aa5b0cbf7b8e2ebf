"""The protocol SDKs alone (``accord bench adapters``): an MCP or A2A round trip with no Accord work.

Two servers, each a separate process like the adapters they stand for, that
answer every request with a canned answer of the same shape and size as the
adapter's (no node, no session, no ledger, no token check):

- ``python -m benchmarks.adapter_floor mcp``: the official ``mcp`` SDK's
  low-level ``Server`` over stdio, on the same transport and event loop as
  ``accord mcp serve`` (event-loop pipes, uvloop, no OpenTelemetry wrapping),
  with one tool ``request_records`` returning a result shaped like Accord's
  (JSON text plus ``structuredContent``).
- ``python -m benchmarks.adapter_floor a2a --listen HOST:PORT``: a2a-sdk's
  JSON-RPC routes on uvicorn with the gateway's settings, whose handler
  answers every ``SendMessage`` with a completed task shaped like the
  gateway's (:func:`federation.a2a.messages.completed_task`); prints
  ``READY a2a HOST:PORT`` like ``accord a2a serve``.

The same clients the benchmark uses for the adapters call them, so a floor
row's p50 is the least an adapter built on that SDK can add over the Python
SDK path (the adapter makes the SDK path's own call on top of it).
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace
from typing import Any

RECORD = {"sku": "SKU-1001", "name": "water purification tablets", "stock": 1200, "warehouse": "north"}
"""One released record, the size of the benchmark's."""
FIELDS = list(RECORD)


def canned_tool_result() -> dict[str, Any]:
    """A ``request_records`` result body shaped like :func:`federation.mcp.server._request_records`'s."""
    return {
        "partner": "supplier",
        "contract_id": "relief-supplier-procurement",
        "purpose": "emergency-procurement",
        "decision": "allow",
        "records": [RECORD],
        "released_fields": FIELDS,
        "stripped_fields": [],
        "notes": [],
        "obligations": [],
        "effective_trust": 0.9,
        "receipt": {"disclosure_id": "dsc_" + "0" * 32, "verified": True, "received_leaf_index": 41},
    }


async def serve_mcp() -> None:
    """Serve the canned MCP tool over stdio until the client closes stdin."""
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    from federation.mcp.server import _pipe_streams
    from federation.observability import tracing_configured

    body = canned_tool_result()
    tool = types.Tool(name="request_records", input_schema={"type": "object"})

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(body))], structured_content=body
        )

    server = Server("floor", version="0", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    if not tracing_configured():
        server.middleware = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
    pipes = await _pipe_streams()
    async with stdio_server(*(pipes or ())) as (read, write):  # type: ignore[arg-type]
        await server.run(read, write, server.create_initialization_options())


def canned_task() -> Any:
    """A completed A2A task shaped like the gateway's answer to the benchmark's request."""
    from a2a.types import Message, Part, Role
    from google.protobuf import json_format, struct_pb2

    from federation.a2a.messages import RecordAsk, completed_task

    meta = struct_pb2.Struct()
    meta.update({"skill": "emergency-procurement"})
    body = json_format.ParseDict({"subject": "SKU-1001", "fields": FIELDS}, struct_pb2.Value())
    message = Message(message_id="floor", role=Role.ROLE_USER, parts=[Part(data=body)], metadata=meta)
    ask = RecordAsk(
        skill="emergency-procurement",
        contract_id="relief-supplier-procurement",
        resource="inventory",
        subject="SKU-1001",
        fields=tuple(FIELDS),
    )
    result = SimpleNamespace(
        records=[RECORD],
        disclosure_id="dsc_" + "0" * 32,
        receipt_verified=True,
        received_leaf_index=41,
        released_fields=FIELDS,
        stripped_fields=[],
        effective_trust=0.9,
        content_labels=(),
    )
    return completed_task(message, ask, result)


def floor_card(url: str) -> Any:
    """An Agent Card naming ``url`` as its JSON-RPC interface (handed to the client, not fetched)."""
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface

    from federation.a2a.cards import PROTOCOL_VERSION

    return AgentCard(
        name="floor",
        description="a2a-sdk alone",
        version="0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION)
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
    )


def serve_a2a(host: str, port: int) -> None:
    """Serve a2a-sdk's JSON-RPC routes answering :func:`canned_task` until SIGTERM."""
    import asyncio

    import uvicorn
    from a2a.server.routes import create_jsonrpc_routes
    from starlette.applications import Starlette

    from federation.a2a.gateway import GatewayContextBuilder, GatewayHandler
    from federation.mcp.server import run_loop

    task = canned_task()

    class Canned:
        """What :class:`GatewayHandler` needs of a gateway, answering without Accord."""

        def agent_for(self, token: str) -> str:
            return "logistics"

        async def send(self, agent_name: str, partner: str, agent: str, message: Any) -> Any:
            return task

    routes = create_jsonrpc_routes(
        GatewayHandler(Canned()),  # type: ignore[arg-type]
        "/a2a/{partner}/{agent}/",
        context_builder=GatewayContextBuilder(),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=routes),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
        )
    )

    async def main() -> None:
        t = asyncio.create_task(server.serve())
        while not server.started and not t.done():
            await asyncio.sleep(0.02)
        sys.stdout.write(f"READY a2a {host}:{port}\n")
        sys.stdout.flush()
        await t

    run_loop(main())


def main(argv: list[str]) -> None:
    """``mcp`` | ``a2a --listen HOST:PORT``."""
    if argv[:1] == ["mcp"]:
        from federation.mcp.server import run_loop

        run_loop(serve_mcp())
    elif argv[:2] == ["a2a", "--listen"] and len(argv) == 3:
        from federation.observability import tracing_configured

        if not tracing_configured():  # as accord a2a serve does
            os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
        host, _, port = argv[2].rpartition(":")
        serve_a2a(host, int(port))
    else:
        sys.exit("usage: python -m benchmarks.adapter_floor mcp | a2a --listen HOST:PORT")


if __name__ == "__main__":
    main(sys.argv[1:])
