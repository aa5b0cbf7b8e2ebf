"""Real federations for the node tests: node processes, mTLS, SQLite, regopy.

``fed`` provisions the scenario's three organizations plus the interop
tester and starts the three nodes as separate processes, once per test
worker; tests that change state (revocation) provision their own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from federation.demo.setup import Layout, provision
from federation.supervisor import NodeProcess


class Fed:
    """A running federation."""

    def __init__(self, layout: Layout, procs: dict[str, NodeProcess]) -> None:
        self.layout = layout
        self.procs = procs

    def endpoint(self, org: str) -> str:
        return self.procs[org].endpoint

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()


def start(root: Path, orgs=("hospital", "relief", "supplier"), **kw) -> Fed:
    layout = provision(root, **kw)
    procs: dict[str, NodeProcess] = {}
    try:
        for org in orgs:
            procs[org] = NodeProcess(layout.orgs[org]).start()
    except Exception:
        for p in procs.values():
            p.stop()
        raise
    return Fed(layout, procs)


@pytest.fixture(scope="session")
def fed(tmp_path_factory) -> Fed:
    f = start(tmp_path_factory.mktemp("fed"))
    yield f
    f.stop()


def run(coro):
    return asyncio.run(coro)
