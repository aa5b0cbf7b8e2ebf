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


class HttpServer:
    """``accord mcp serve --http`` as a child process (READY line on stdout)."""

    def __init__(self, node_dir: Path, agent: str) -> None:
        import threading

        from federation.supervisor import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = subprocess.Popen(
            [sys.executable, *serve_argv(node_dir, agent, "--http", f"127.0.0.1:{self.port}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: list[str] = []

        def read() -> None:
            for line in self.proc.stdout:
                if line.startswith("READY mcp "):
                    seen.append(line.split()[2])
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(120)
        if not seen:
            self.stop()
            raise RuntimeError(f"mcp http server did not start: {self.proc.stderr.read()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@asynccontextmanager
async def http_session(url: str, token: str | None):
    """A real MCP client session over Streamable HTTP with ``Authorization: Bearer <token>``."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (r, w),
        ClientSession(r, w) as s,
    ):
        await s.initialize()
        yield s
