"""The Accord side shared by the framework examples: an MCP client of ``accord mcp serve``.

Each example's agent gets one tool, ``request_records(partner, purpose, subject,
fields=None)``, that calls the MCP tool of the same name on ``accord mcp serve
--dir NODE_DIR --agent AGENT`` (a child process over stdio, the official ``mcp``
client). The MCP server acts as the registered agent through its own node; what
comes back is only what the partner's contract and MNI gate released, or a
refusal ``REFUSED <REASON>: ...`` the model can read.

Models: scripted by default (no network, no API key). Set
``ACCORD_EXAMPLES_OPENAI_BASE_URL`` (and optionally ``ACCORD_EXAMPLES_OPENAI_MODEL``,
``ACCORD_EXAMPLES_OPENAI_API_KEY``) to use any OpenAI-compatible endpoint instead.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

TASK = (
    "Flood response: ask the partner organization 'hospital' for the triage data of patient "
    "patient-001 under the purpose 'triage-coordination', then say where the patient should go."
)
SYSTEM = (
    "You coordinate relief for a flood. Use the request_records tool to ask partner organizations "
    "for data; ask only for what the task needs."
)
#: the scripted model's one tool call
SCRIPTED_CALL = {"partner": "hospital", "purpose": "triage-coordination", "subject": "patient-001"}


def live_endpoint() -> dict[str, str] | None:
    """``{"base_url", "model", "api_key"}`` when a live OpenAI-compatible endpoint is configured."""
    base = os.environ.get("ACCORD_EXAMPLES_OPENAI_BASE_URL")
    if not base:
        return None
    return {
        "base_url": base,
        "model": os.environ.get("ACCORD_EXAMPLES_OPENAI_MODEL", "gpt-4o-mini"),
        "api_key": os.environ.get("ACCORD_EXAMPLES_OPENAI_API_KEY", "not-needed"),
    }


class AccordTools:
    """An MCP session with ``accord mcp serve`` for one agent; records every call it makes.

    Attributes:
        calls: ``[(tool, arguments, structured result)]`` in call order.

    """

    def __init__(self, node_dir: Path | str, agent: str) -> None:
        self.node_dir = str(node_dir)
        self.agent = agent
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self._stack = AsyncExitStack()
        self._session: Any = None

    async def __aenter__(self) -> AccordTools:
        from mcp.client.session import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "federation.cli.main", "mcp", "serve", "--dir", self.node_dir, "--agent", self.agent],
            env=dict(os.environ),
        )
        r, w = await self._stack.enter_async_context(stdio_client(params))
        self._session = await self._stack.enter_async_context(ClientSession(r, w))
        await self._session.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def request_records(
        self, partner: str, purpose: str, subject: str, fields: list[str] | None = None
    ) -> str:
        """Ask ``partner`` for ``subject``'s records under ``purpose`` (JSON text, or ``REFUSED ...``)."""
        args: dict[str, Any] = {"partner": partner, "purpose": purpose, "subject": subject}
        if fields:
            args["fields"] = fields
        res = await self._session.call_tool("request_records", args)
        body = res.structured_content or {}
        self.calls.append(("request_records", args, body))
        if res.is_error:
            return f"REFUSED {body.get('reason', 'ERROR')}: {body.get('message', '')}"
        return json.dumps({"records": body["records"], "obligations": body["obligations"]})

    def released_records(self) -> list[dict[str, Any]]:
        """Every record the partner released in this session."""
        return [rec for _, _, body in self.calls for rec in body.get("records", [])]


def cli(run: Any) -> None:
    """``python examples/X.py --dir NODE_DIR [--agent NAME]``: run the example and print what crossed."""
    import argparse
    import asyncio

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True, help="the requesting organization's node directory")
    ap.add_argument("--agent", default="triage-coordinator")
    a = ap.parse_args()
    out = asyncio.run(run(a.dir, a.agent))
    print(json.dumps(out, indent=2, default=str))
