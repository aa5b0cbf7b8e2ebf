"""The red-team suite (``accord interop run --suite security``) against real node processes.

One provisioned node directory (the hospital, pinned with the interop
tester, C2SP tiles over HTTP) is served first by the ordinary node, which
the whole suite runs against, then in turn by each node built to misbehave
(``interop_tests.misbehaving``), against which the cases that catch that
behaviour must fail.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tomllib

import pytest

from federation.demo.setup import provision
from federation.supervisor import NodeProcess
from interop_tests.cases import Context
from interop_tests.misbehaving import misbehaving_process
from interop_tests.peer import InteropIdentity
from interop_tests.runner import _with_status_server
from interop_tests.security import SECURITY_CASES

pytestmark = pytest.mark.xdist_group("federation")

#: behaviour -> cases that must fail against a node with it
CAUGHT_BY = {
    "skip_gate": ["field above trust withheld"],
    "ignore_policy": ["purpose beyond the agent's scopes refused"],
    "skip_presentation_check": ["inline @context refused"],
    "bad_receipt": ["field above trust withheld"],
    "type_blind_signatures": ["cross-type signatures refused"],
}


class Target:
    """The provisioned hospital directory and the tester's view of it."""

    def __init__(self, root) -> None:
        self.layout = provision(root, orgs=("hospital",), http=True)
        self.dir = self.layout.orgs["hospital"]
        self.http = tomllib.loads((self.dir / "node.toml").read_text())["http_listen"]

    def ctx(self, endpoint: str) -> Context:
        return Context(
            target=endpoint,
            bundle=json.loads(self.layout.bundle_path("hospital").read_text()),
            ident=InteropIdentity.load(self.layout.orgs["interop"]),
            contract_id="interop-hospital",
            http=self.http,
        )

    def run(self, proc, only: set[str] | None = None):
        proc.start()
        try:
            results = asyncio.run(
                _with_status_server(
                    self.ctx(proc.endpoint), self.layout.orgs["interop"], suite="security", only=only
                )
            )
        finally:
            proc.stop()
        return {r.name: r for r in results}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return Target(tmp_path_factory.mktemp("redteam"))


@pytest.fixture(scope="module")
def correct(target):
    """The whole suite against the ordinary node (first: the trust case needs a fresh pair)."""
    return target.run(NodeProcess(target.dir))


@pytest.mark.parametrize(
    "name",
    [n for n, _ in SECURITY_CASES],
)
def test_case_passes_against_a_correct_node(correct, name):
    r = correct[name]
    assert r.passed and not r.skipped, r.detail


def test_suite_runs_in_ci_time(correct):
    assert sum(r.seconds for r in correct.values()) < 60


@pytest.mark.parametrize("behaviour", sorted(CAUGHT_BY))
def test_suite_fails_against_a_misbehaving_node(target, correct, behaviour):
    wanted = CAUGHT_BY[behaviour]
    assert all(correct[n].passed for n in wanted)  # these pass against the ordinary node
    results = target.run(misbehaving_process(target.dir, [behaviour]), only=set(wanted))
    for n in wanted:
        assert not results[n].passed, f"{n} passed against a node with {behaviour}: {results[n].detail}"


def test_cli_runs_the_security_suite_and_exits_1_on_failure(target, correct, tmp_path):
    """``accord interop run --suite security`` against a node that skips presentation checks."""
    proc = misbehaving_process(target.dir, ["skip_presentation_check"]).start()
    try:
        junit = tmp_path / "security.xml"
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "federation.cli.main",
                "interop",
                "run",
                "--suite",
                "security",
                "--target",
                proc.endpoint,
                "--bundle",
                str(target.layout.bundle_path("hospital")),
                "--as",
                str(target.layout.orgs["interop"]),
                "--junit",
                str(junit),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        proc.stop()
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    xml = junit.read_text()
    assert xml.count("<testcase") == len(SECURITY_CASES)
    assert 'name="inline @context refused"' in xml
    assert "<skipped" in xml  # no --http: the tile case cannot run


def test_cli_refuses_an_unknown_suite(target):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "interop",
            "run",
            "--suite",
            "securty",
            "--target",
            "127.0.0.1:1",
            "--bundle",
            str(target.layout.bundle_path("hospital")),
            "--as",
            str(target.layout.orgs["interop"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1 and "unknown suite" in p.stderr and "Traceback" not in p.stderr
