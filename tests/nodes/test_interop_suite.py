"""The interop suite passes against a conformant node and fails against misbehaving ones."""

from __future__ import annotations

import asyncio
import json

import pytest

from federation.demo.setup import provision
from interop_tests.cases import Context
from interop_tests.misbehaving import misbehaving_process
from interop_tests.peer import InteropIdentity
from interop_tests.runner import _with_status_server, run_suite
from nodes.conftest import Fed

pytestmark = pytest.mark.xdist_group("federation")


def _ctx(fed, org: str) -> Context:
    layout = fed.layout
    return Context(
        target=fed.endpoint(org),
        bundle=json.loads(layout.bundle_path(org).read_text()),
        ident=InteropIdentity.load(layout.orgs["interop"]),
        contract_id=f"interop-{org}",
    )


def test_suite_passes_against_a_demo_node(fed, tmp_path):
    junit = tmp_path / "interop.xml"
    ok = run_suite(
        target=fed.endpoint("hospital"),
        bundle_path=fed.layout.bundle_path("hospital"),
        tester_dir=fed.layout.orgs["interop"],
        junit_path=junit,
    )
    assert ok
    xml = junit.read_text()
    assert 'failures="0"' in xml and xml.count("<testcase") >= 10
    # the forked checkpoint the suite showed the hospital's witness is now a ledger event there
    from federation.demo.run import ledger_rows
    from federation.supervisor import wait_until

    def equivocation_logged() -> bool:
        return any(
            e["kind"] == "equivocation" and e["extra"]["origin"] == "interop.accord.test/ledger"
            for e in ledger_rows(fed.layout, "hospital")
        )

    assert wait_until(equivocation_logged, timeout=15)


@pytest.fixture(scope="module")
def bad_fed(tmp_path_factory):
    layout = provision(tmp_path_factory.mktemp("bad"), orgs=("hospital",))
    proc = misbehaving_process(
        layout.orgs["hospital"], ["skip_gate", "bad_receipt", "ignore_policy", "skip_presentation_check"]
    ).start()
    f = Fed(layout, {"hospital": proc})
    yield f
    f.stop()


def test_suite_fails_the_cases_a_misbehaving_node_breaks(bad_fed):
    results = {
        r.name: r
        for r in asyncio.run(_with_status_server(_ctx(bad_fed, "hospital"), bad_fed.layout.orgs["interop"]))
    }
    assert results["handshake"].passed  # it still talks the protocol
    for broken in (
        "MNI redaction",
        "receipt present",
        "contract deny",
        "refused tampered credential",
        "refused wrong domain",
        "refused revoked credential",
        "refused expired credential",
    ):
        assert not results[broken].passed, broken


def test_cases_named_by_requirement_fail_against_a_type_blind_node(tmp_path):
    """The R-SIG-3 and R-SIG-10 cases fail against a node that checks signatures for any v1 type."""
    from interop_tests.spec_cases import SPEC_CASES

    layout = provision(tmp_path, orgs=("hospital",))
    proc = misbehaving_process(layout.orgs["hospital"], ["type_blind_signatures"]).start()
    try:
        fed = Fed(layout, {"hospital": proc})
        only = {n for n, _ in SPEC_CASES}
        results = {
            r.name: r
            for r in asyncio.run(
                _with_status_server(_ctx(fed, "hospital"), layout.orgs["interop"], only=only)
            )
        }
    finally:
        proc.stop()
    sig3 = results["R-SIG-3 payload type checked"]
    assert not sig3.passed and "expected INVALID_ARGUMENT / WRONG_PAYLOAD_TYPE" in sig3.detail, sig3
    assert not results["R-SIG-10 receiver order"].passed
    for kept in (
        "R-EXC-1 requester mismatch refused",
        "R-ROL-1 status lists served",
    ):
        assert results[kept].passed, (kept, results[kept].detail)
