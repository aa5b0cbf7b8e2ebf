"""The requester-role suite: the kit plays providers, a real node (its own process) asks them.

``accord interop enroll`` pins the tester organizations and registers the
tester agent; ``accord interop run --role requester`` serves the personas
and drives the node's ``AgentService``. Every case passes against a
conformant node, twice in a row (the personas' logs persist, and a node
that caught the equivocating persona keeps refusing it), and the cases
that check the receipt fail against a requester that trusts whatever
receipt it is given.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from federation.supervisor import NodeProcess, free_port

pytestmark = pytest.mark.xdist_group("kit")


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory):
    from federation.identity import init_node
    from interop_tests.enrollment import enroll

    root = tmp_path_factory.mktemp("req")
    node, tester = root / "acme", root / "tester"
    init_node(node, org_name="acme", listen=f"127.0.0.1:{free_port()}")
    result = enroll(node, tester_dir=tester, reload=False)
    proc = NodeProcess(node).start()
    yield proc, result
    proc.stop()


def _run(proc, result, **kw):
    from interop_tests.runner import with_personas

    bundle = json.loads(result.node_bundle.read_text())
    return asyncio.run(
        with_personas(target=proc.endpoint, node_bundle=bundle, tester_dir=result.tester_dir, **kw)
    )


def test_requester_suite_passes_against_a_conformant_node_twice(enrolled, tmp_path):
    from interop_tests.requester_cases import REQUESTER_CASES
    from interop_tests.runner import run_suite

    proc, result = enrolled
    results = _run(proc, result)
    failed = {r.name: r.detail for r in results if not r.passed}
    assert not failed, failed
    assert len(results) == len(REQUESTER_CASES)
    # the second run: the same logs, the fork persona already caught
    report = tmp_path / "requester.json"
    ok = run_suite(
        target=proc.endpoint,
        bundle_path=result.node_bundle,
        tester_dir=result.tester_dir,
        suite="requester",
        json_path=report,
    )
    doc = json.loads(report.read_text())
    assert ok, [c for c in doc["cases"] if c["verdict"] != "pass"]
    assert doc["counts"]["pass"] == len(REQUESTER_CASES)
    for rid in ("R-TRN-4", "R-NEG-3", "R-SIG-9", "R-RCP-1", "R-RCP-2", "R-RCP-3", "R-RCP-4", "R-RCP-7"):
        assert rid in doc["requirements"], rid
    fork = next(c for c in doc["cases"] if c["name"] == "R-RCP-4 equivocating provider")
    assert "earlier run" in fork["detail"]


def test_requester_suite_fails_against_a_requester_that_trusts_any_receipt(tmp_path):
    """A node that never binds the receipt to the exchange passes the R-RCP-3 outcomes on: those cases fail."""
    from federation.identity import init_node
    from interop_tests.enrollment import enroll
    from interop_tests.misbehaving import misbehaving_process

    node, tester = tmp_path / "acme", tmp_path / "tester"
    init_node(node, org_name="acme", listen=f"127.0.0.1:{free_port()}")
    result = enroll(node, tester_dir=tester, reload=False)
    proc = misbehaving_process(node, ["trusting_requester"]).start()
    try:
        only = {
            "R-SIG-1 envelope signed as a provider checks it",
            "R-RCP-3 re-spelled payload refused",
            "R-RCP-3 payload other than the logged one",
            "R-RCP-3 entry of another kind",
        }
        results = {r.name: r for r in _run(proc, result, only=only)}
    finally:
        proc.stop()
    assert results["R-SIG-1 envelope signed as a provider checks it"].passed  # it still talks the protocol
    for name in only - {"R-SIG-1 envelope signed as a provider checks it"}:
        assert not results[name].passed, name
        assert "passed the outcome on" in results[name].detail, results[name].detail


def test_requester_role_without_a_tester_agent_is_one_line(enrolled, tmp_path):
    """A node enrolled by a kit that had no tester agent: the CLI says what to do in one line, exit 1."""
    import os
    import shutil
    import subprocess
    import sys

    from interop_tests.enrollment import agent_wallet_path

    proc, result = enrolled
    tester = tmp_path / "tester"
    shutil.copytree(result.tester_dir, tester)
    agent_wallet_path(tester, "acme").unlink()
    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", "interop", "run", "--role", "requester",
         "--target", proc.endpoint, "--bundle", str(result.node_bundle), "--tester", str(tester)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "no tester agent wallet" in p.stderr, p.stderr
