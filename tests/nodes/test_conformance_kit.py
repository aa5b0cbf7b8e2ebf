"""The conformance kit on a node initialized from scratch (``node init``, not the demo).

The operator enrolls the kit (``accord interop enroll``), the whole interop
suite passes against the running node, and ``accord interop unenroll`` puts
the node back as it was (peers, contracts, resources, datasets). The node
has a real partner whose witness must keep cosigning its checkpoints while
the kit is enrolled: the tester never counts towards the witness quorum.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from federation.supervisor import NodeProcess, free_port, wait_until

pytestmark = pytest.mark.xdist_group("kit")


def accord(*args, check=True, env=None):
    import os

    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"accord {' '.join(map(str, args))}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def snapshot(node: Path) -> dict:
    """What enrolling may add and unenrolling must take away: files by digest, datasets by content."""
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    files = {
        f"{sub}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in ("peers", "contracts", "data")
        for p in sorted((node / sub).glob("*"))
    }
    store = open_store(NodeIdentity.load(node))
    datasets = {spec["name"]: json.dumps(records, sort_keys=True) for spec, records in store.datasets()}
    store.engine.dispose()
    return {"files": files, "datasets": datasets, "manifest": (node / "interop-enrollment.json").exists()}


def witnesses(node: Path) -> dict:
    """The node's witness policy: configured witnesses, quorum, and the witness keys pinned for them."""
    from federation.config import load_config
    from federation.peers import PeerRegistry

    cfg = load_config(node)
    keys = {b.org_name: b.witness_vkey for b in PeerRegistry.load(node / "peers") if b.witness_vkey}
    return {"witnesses": list(cfg.witnesses), "quorum": cfg.witness_quorum, "keys": keys}


def ledger_status(node: Path) -> dict:
    return json.loads(accord("ledger", "status", "--dir", node, "--json", check=False).stdout)


@pytest.fixture
def pair(tmp_path):
    """acme (under test) and its partner beta, initialized and peered with the CLI, one contract."""
    acme, beta = tmp_path / "acme", tmp_path / "beta"
    accord("node", "init", "--org", "acme", "--dir", acme, "--listen", f"127.0.0.1:{free_port()}")
    accord("node", "init", "--org", "beta", "--dir", beta, "--listen", f"127.0.0.1:{free_port()}")
    for a, b in ((acme, beta), (beta, acme)):
        accord("peer", "export-bundle", "--dir", b, "--out", tmp_path / f"{b.name}.json")
        accord("peer", "add", tmp_path / f"{b.name}.json", "--dir", a, "--witness")
    from federation.paths import write_private

    write_private(acme / "data" / "reports.json", json.dumps({"records": {"r1": {"record_id": "r1"}}}))
    draft = tmp_path / "draft.json"
    accord(
        "contract", "propose", "--dir", acme, "--id", "acme-beta", "--requester", "beta",
        "--purpose", "reporting", "--mni", "record_id", "--resource", "reports", "--scope", "reports:read",
        "-o", draft,
    )  # fmt: skip
    accord("contract", "sign", draft, "--dir", acme, "-o", draft)
    accord("contract", "sign", draft, "--dir", beta, "-o", draft)
    accord("contract", "register", draft, "--dir", acme)
    accord("contract", "register", draft, "--dir", beta)
    return acme, beta


def test_kit_on_a_freshly_initialized_node(pair, tmp_path):
    from interop_tests.runner import SUITES

    CASES = SUITES["conformance"]
    acme, beta = pair
    tester = tmp_path / "tester"
    bundle = tmp_path / "acme-bundle.json"
    before = snapshot(acme)
    quorum_before = witnesses(acme)
    procs = [NodeProcess(acme).start(), NodeProcess(beta).start()]
    try:
        out = accord("interop", "enroll", "--dir", acme, "--tester", tester, "--bundle-out", bundle).stdout
        for line in (
            "peer did:web:interop.accord.test (peers/interop.json)",
            "contract interop-acme (contracts/interop-acme.json)",
            "contract interop-unsigned-acme (contracts/interop-unsigned-acme.json)",
            "resource interop-records (data/interop-records.json)",
            "dataset interop-stats (node database): 20 synthetic records",
            "peer did:web:interop-fork.accord.test (peers/interop-fork.json)",
            "peer did:web:interop-alien.accord.test (peers/interop-alien.json)",
            "agent interop-tester-",
            "running node reloaded: {'peers': 4, 'agents': 1, 'contracts': 2}",  # acme-beta stays in force
        ):
            assert line in out, out
        after = snapshot(acme)
        assert {k: v for k, v in after["files"].items() if k in before["files"]} == before["files"]
        assert set(after["files"]) - set(before["files"]) == {
            "peers/interop.json",
            "peers/interop-fork.json",
            "peers/interop-alien.json",
            "contracts/interop-acme.json",
            "contracts/interop-unsigned-acme.json",
            "data/interop-records.json",
        }
        assert witnesses(acme) == quorum_before
        assert quorum_before["witnesses"] == ["beta"] and set(quorum_before["keys"]) == {"beta"}

        # a second enrollment is refused, nothing written
        again = accord("interop", "enroll", "--dir", acme, "--tester", tester, check=False)
        assert again.returncode == 1 and "already enrolled" in again.stderr
        assert snapshot(acme) == after

        # the red-team suite runs the same way (first: its trust case wants a fresh pair)
        red = accord(
            "interop", "run", "--suite", "security", "--target", procs[0].endpoint, "--bundle", bundle,
            "--tester", tester, check=False,
        )  # fmt: skip
        assert red.returncode == 0 and "0 failed (MUST), 0 failed (SHOULD)" in red.stdout, red.stdout
        junit, report = tmp_path / "interop.xml", tmp_path / "interop.md"
        run = accord(
            "interop", "run", "--target", procs[0].endpoint, "--bundle", bundle, "--tester", tester,
            "--junit", junit, "--report", report, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{len(CASES)} passed, 0 failed (MUST), 0 failed (SHOULD), 0 skipped" in run.stdout
        suite = ET.parse(junit).getroot()
        assert suite.get("tests") == str(len(CASES)) and suite.get("failures") == "0"
        for tc in suite.iter("testcase"):
            props = {p.get("name"): p.get("value") for p in tc.iter("property")}
            assert props["section"].startswith("docs/") and props["level"] in ("MUST", "SHOULD")
        md = report.read_text()
        assert md.count("| pass |") == len(CASES) and "docs/ledger.md#witnessing" in md

        # the requester role: the kit's organizations serve, acme asks them through its AgentService
        from interop_tests.requester_cases import REQUESTER_CASES

        req_json = tmp_path / "requester.json"
        req = accord(
            "interop", "run", "--role", "requester", "--target", procs[0].endpoint, "--bundle", bundle,
            "--tester", tester, "--json", req_json, check=False,
        )  # fmt: skip
        assert req.returncode == 0, req.stdout + req.stderr
        doc = json.loads(req_json.read_text())
        assert doc["suite"] == "requester" and doc["counts"]["pass"] == len(REQUESTER_CASES), doc["counts"]
        assert {"R-RCP-3", "R-RCP-4", "R-SIG-9", "R-NEG-3", "R-TRN-4"} <= set(doc["requirements"])
        assert "R-RCP-4" in req.stdout  # the table lists requirement ids
        wrong = accord("interop", "run", "--role", "requester", "--suite", "security", "--target",
                       procs[0].endpoint, "--bundle", bundle, "--tester", tester, check=False)  # fmt: skip
        assert wrong.returncode == 1 and "not one of the requester role's" in wrong.stderr

        # beta keeps cosigning acme's checkpoints: the tester is not a witness
        grown = ledger_status(acme)["checkpointed"]
        assert grown > 0
        assert wait_until(lambda: ledger_status(acme)["witnessed"] >= grown, timeout=60)

        out = accord("interop", "unenroll", "--dir", acme).stdout
        assert out.count("removed ") == 8  # 5 + the two personas' pins + the tester agent (revoked)
        assert snapshot(acme) == before
        assert witnesses(acme) == quorum_before
    finally:
        for p in procs:
            p.stop()


def test_every_case_names_an_existing_section_and_a_level():
    import re

    from interop_tests.requirements import REQUIREMENTS, anchor
    from interop_tests.runner import SUITES

    root = Path(__file__).resolve().parents[2]
    names = [name for cases in SUITES.values() for name, _ in cases]
    assert sorted(names) == sorted(REQUIREMENTS)
    for name in names:
        req = REQUIREMENTS[name]
        page, _, frag = req.section.partition("#")
        headings = re.findall(r"^#+ (.+)$", (root / page).read_text(), flags=re.M)
        assert frag in {anchor(h) for h in headings}, (name, req.section)
        assert req.level in ("MUST", "SHOULD")
        spec = (root / "docs/spec/accord-v1.md").read_text()
        for rid in req.requirements:
            assert f"**{rid}**" in spec, (name, rid)
    # the specification's conformance table and ours agree on which case checks what
    table = (root / "docs/spec/accord-v1.md").read_text().partition("## 9. Conformance")[2]
    for name, req in REQUIREMENTS.items():
        for rid in req.requirements:
            row = next(line for line in table.splitlines() if line.startswith(f"| {rid} "))
            assert f"`{name}`" in row, (name, rid, row)
    # every requirement of the specification (the SHOULDs aside) names an interop case, or §9 says
    # why it cannot be tested black-box
    why_not = table.partition("**Not checked black-box, and why.**")[2].partition("**The TypeScript")[0]
    named = {rid for req in REQUIREMENTS.values() for rid in req.requirements}
    body = (root / "docs/spec/accord-v1.md").read_text().partition("## 9. Conformance")[0]
    ids = set(re.findall(r"\*\*(R-[A-Z]+-\d+)\*\*", body))
    assert len(ids) >= 50, sorted(ids)
    for rid in sorted(ids):
        row = next(
            line
            for line in table.splitlines()
            if rid in line.split(" | ")[0].removeprefix("| ").replace(" (SHOULD)", "").split(", ")
        )
        if "(SHOULD)" in row:
            continue
        prefix, _, n = rid.rpartition("-")
        spans = [range(int(a), int(b) + 1) for a, b in re.findall(rf"{prefix}-(\d+)\.\.(\d+)", why_not)]
        explained = re.search(rf"\b{rid}\b", why_not) or any(int(n) in r for r in spans)
        assert rid in named or explained, f"{rid}: no interop case and no reason in §9"


def test_enroll_refuses_a_taken_name_and_writes_nothing(tmp_path):
    from federation.errors import ConfigError
    from federation.identity import init_node
    from federation.paths import write_private
    from interop_tests.enrollment import enroll

    node = tmp_path / "acme"
    init_node(node, org_name="acme", listen=f"127.0.0.1:{free_port()}")
    write_private(node / "data" / "interop-records.json", json.dumps({"records": {}}))
    before = snapshot(node)
    with pytest.raises(ConfigError, match="data/interop-records.json"):
        enroll(node, tester_dir=tmp_path / "tester", reload=False)
    assert snapshot(node) == before and not before["manifest"]
    assert not (tmp_path / "tester").exists()  # refused before anything was created, on either side


def test_a_failed_should_is_a_warning_and_a_failed_must_fails_the_run(tmp_path):
    from interop_tests.runner import CaseResult, suite_ok, write_junit, write_markdown

    must = CaseResult("a", True, "ok", 0.1, section="docs/protocol.md#errors", requirement="R-MSG-2")
    should = CaseResult("b", False, "slow | late", 0.2, section="docs/protocol.md#errors", level="SHOULD")
    assert should.verdict == "warn" and suite_ok([must, should]) and not suite_ok([must, should], strict=True)
    failed = CaseResult("c", False, "leaked", 0.1, section="docs/protocol.md#errors")
    assert failed.verdict == "FAIL" and not suite_ok([must, should, failed])
    md, xml = tmp_path / "r.md", tmp_path / "r.xml"
    write_markdown([must, should, failed], md, target="h:1", org="acme", suite="conformance")
    text = md.read_text()
    assert "1 passed, 1 failed (MUST), 1 failed (SHOULD), 0 skipped." in text
    link = "[docs/protocol.md#errors](docs/protocol.md#errors)"
    assert f"| b | SHOULD | {link} | — | warn | slow \\| late |" in text
    write_junit([must, should, failed], xml, target="h:1")
    root = ET.parse(xml).getroot()
    kinds = {t.get("name"): [c.get("type") for c in t if c.tag == "failure"] for t in root.iter("testcase")}
    assert kinds == {"a": [], "b": ["SHOULD"], "c": ["MUST"]} and root.get("failures") == "2"
