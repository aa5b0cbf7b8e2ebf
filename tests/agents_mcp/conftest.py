"""A two-organization federation (hospital provides, relief requests) for the MCP server tests."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from nodes.conftest import start


@pytest.fixture(scope="module")
def fed2(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("mcpfed"), orgs=("hospital", "relief"), with_interop=False)
    yield f
    f.stop()


def serve_argv(node_dir: Path, agent: str, *extra: str) -> list[str]:
    return ["-m", "federation.cli.main", "mcp", "serve", "--dir", str(node_dir), "--agent", agent, *extra]


@asynccontextmanager
async def stdio_session(node_dir: Path, agent: str):
    """A real MCP client session over stdio with ``accord mcp serve`` as a child process."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=serve_argv(node_dir, agent), env=dict(os.environ)
    )
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        yield s


def accord(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *args], capture_output=True, text=True, timeout=120
    )
