"""The console against the demo's three real nodes, driven by Debian's Chromium through Playwright.

One ``accord demo`` run per test session fills the three ledgers (real node
processes, mTLS, Rego); its nodes are then started again from the kept
directories (reachability, reload after a write) and console processes are
started on the directories: read-only on loopback, with ``--write`` on
loopback, and over TLS off loopback (``0.0.0.0``).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ACCORD_CHROMIUM", "/usr/bin/chromium")

# Every module using ``demo_dirs`` sets ``pytestmark = pytest.mark.xdist_group("console")``
# itself (a conftest's ``pytestmark`` marks nothing): with ``--dist loadgroup`` they then share
# one worker and the demo federation starts once per run (tests/conftest.py keeps the groups
# working on pytest 9.2).


def accord(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI (as the tests' ground truth)."""
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


def accord_json(*args: str):
    p = accord(*args, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


class ConsoleProcess:
    """``accord console`` as a child process; ``url`` once it printed its ready line."""

    def __init__(self, node_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "federation.cli.main",
                "console",
                "--dir",
                str(node_dir),
                "--port",
                "0",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()
        try:
            line = lines.get(timeout=90)
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                "console did not start: " + (self.proc.stderr.read() if self.proc.stderr else "")
            ) from None
        if not line.startswith("console: "):
            self.stop()
            raise RuntimeError(f"unexpected console output {line!r}: {self.proc.stderr.read()}")
        self.url = line.split()[1].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def demo_dirs(tmp_path_factory):
    """The demo's three node directories, their ledgers filled by the scenario, nodes running again."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api")
    from federation.supervisor import NodeProcess

    work = tmp_path_factory.mktemp("console") / "demo"
    p = accord("demo", "--workdir", str(work), timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    procs = []
    try:
        for org in ("hospital", "relief", "supplier"):
            procs.append(NodeProcess(work / org).start())
        yield {org: work / org for org in ("hospital", "relief", "supplier")}
    finally:
        for n in procs:
            n.stop()


@pytest.fixture(scope="session")
def read_console(demo_dirs):
    c = ConsoleProcess(demo_dirs["hospital"])
    yield c
    c.stop()


@pytest.fixture(scope="session")
def write_console(demo_dirs):
    c = ConsoleProcess(demo_dirs["relief"], "--write")
    yield c
    c.stop()


@pytest.fixture(scope="session")
def tls_console(demo_dirs):
    c = ConsoleProcess(demo_dirs["supplier"], "--host", "0.0.0.0")
    c.url = f"https://127.0.0.1:{c.port}"
    yield c
    c.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module.

    Module scope, not session: Playwright's sync API keeps an event loop running in
    the worker's main thread while it is open, and every later test of that worker
    that calls ``asyncio.run`` would fail ("cannot be called from a running event loop").
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()
