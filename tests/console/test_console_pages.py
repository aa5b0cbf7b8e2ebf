"""Each console page shows what the node's ledger and directory hold (checked against the CLI's JSON)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.console.conftest import accord_json

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console")]

SHOTS = os.environ.get("ACCORD_CONSOLE_SCREENSHOTS")  # e.g. docs/img: write docs/img/console-*.png


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"), full_page=True)


def test_overview_counts_partners_and_reachability(read_console, demo_dirs, page):
    d = demo_dirs["hospital"]
    status = accord_json("ledger", "status", "--dir", str(d))
    peers = accord_json("peer", "list", "--dir", str(d))
    page.goto(read_console.url + "/")
    assert page.locator("#m-sequenced").text_content() == str(status["sequenced"])
    assert page.locator("#m-checkpointed").text_content() == str(status["checkpointed"])
    assert page.locator("#m-witnessed").text_content() == str(status["witnessed"])
    names = page.locator("#partners tbody th").all_text_contents()
    assert sorted(names) == sorted(p["org"] for p in peers)
    assert status["checkpoint"].splitlines()[0] in page.locator("#checkpoint-note").text_content()
    # reachability arrives through htmx: the demo's two other nodes are running
    reach = page.locator("table#reachability")
    reach.wait_for(timeout=30_000)
    rows = {
        r.locator("th").text_content(): r.locator("td").nth(1).text_content()
        for r in reach.locator("tbody tr").all()
    }
    assert rows["relief"] == "reachable" and rows["supplier"] == "reachable"
    audit_hits = len(accord_json("ledger", "query", "--dir", str(d), "--kind", "audit_denial"))
    if audit_hits:
        assert f"{audit_hits} audit_denial entries" in page.locator(".alerts").text_content()
    assert page.locator("p.who").get_attribute("data-role") == "read"
    shot(page, "overview")


def test_ledger_explorer_matches_ledger_query(read_console, demo_dirs, page):
    d = demo_dirs["hospital"]
    rows = accord_json("ledger", "query", "--dir", str(d))
    page.goto(read_console.url + "/ledger")
    shown = [
        int(x)
        for x in page.locator("#entries-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.index)")
    ]
    newest = sorted((r["index"] for r in rows), reverse=True)
    assert shown == newest[:50]
    shot(page, "ledger")
    # a filter, the same as the CLI's
    denials = accord_json("ledger", "query", "--dir", str(d), "--decision", "deny")
    page.select_option("#f-decision", "deny")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**decision=deny**")
    expect(page.locator("#entries-table tbody tr[data-index]")).to_have_count(min(len(denials), 50))
    got = page.locator("#entries-table tbody tr[data-index]").evaluate_all(
        "rs => rs.map(r => +r.dataset.index)"
    )
    assert sorted(got) == sorted(r["index"] for r in denials)[-50:]
    # counterpart by name, as `--counterpart relief`
    relief = accord_json("ledger", "query", "--dir", str(d), "--counterpart", "relief")
    page.goto(read_console.url + "/ledger?counterpart=relief")
    assert page.locator("#entries-table tbody tr[data-index]").count() == min(len(relief), 50)


def test_entry_detail_matches_and_verifies_in_the_browser(read_console, demo_dirs, page):
    d = demo_dirs["hospital"]
    rows = accord_json("ledger", "query", "--dir", str(d), "--kind", "disclosure")
    sample = next(r for r in rows if r["fields_stripped"])  # one where the gate stripped something
    page.goto(f"{read_console.url}/ledger/{sample['index']}")
    assert page.locator("#e-kind").text_content() == "disclosure"
    assert page.locator("#e-requested").text_content() == ", ".join(sample["fields_requested"])
    assert page.locator("#e-released").text_content() == ", ".join(sample["fields_released"])
    assert page.locator("#e-stripped").text_content() == ", ".join(sample["fields_stripped"])
    assert page.locator("#e-decision").text_content().startswith(sample["decision"])
    assert page.locator("#e-leaf").text_content() == sample["leaf_hash"]
    verdict = page.locator("#verdict")
    page.locator("#verdict[data-verdict]").wait_for()
    assert verdict.get_attribute("data-verdict") == "verified", verdict.text_content()
    assert page.locator("#verify-steps li.ok").count() == 3
    shot(page, "entry")


def _flip_first_hash(p):
    raw = bytearray(base64.b64decode(p["hashes_b64"][0]))
    raw[0] ^= 1
    p["hashes_b64"][0] = base64.b64encode(raw).decode()


def _edit_entry(p):
    data = base64.b64decode(p["entry_b64"])
    assert b'"allow"' in data
    p["entry_b64"] = base64.b64encode(data.replace(b'"allow"', b'"deny!"')).decode()


def _grow_checkpoint(p):
    lines = p["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    p["checkpoint"] = "\n".join(lines)
    p["tree_size"] += 1


def _other_index(p):
    p["leaf_index"] += 1


@pytest.mark.parametrize(
    "tamper, why",
    [
        (_flip_first_hash, "audit path does not lead"),
        (_edit_entry, "do not hash to its leaf"),
        (_grow_checkpoint, "signature does not verify"),
        (_other_index, "audit path"),
    ],
)
def test_tampered_inclusion_proof_shows_failing(read_console, demo_dirs, page, tamper, why):
    rows = accord_json("ledger", "query", "--dir", str(demo_dirs["hospital"]), "--kind", "disclosure")
    index = rows[1]["index"]

    def handle(route):
        resp = route.fetch()
        body = resp.json()
        tamper(body)
        route.fulfill(response=resp, body=json.dumps(body), headers={"content-type": "application/json"})

    page.route("**/proof.json", handle)
    page.goto(f"{read_console.url}/ledger/{index}")
    page.locator("#verdict[data-verdict]").wait_for()
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-verdict") == "failed"
    assert why in verdict.text_content()
    if tamper is _flip_first_hash:
        shot(page, "entry-tampered")
    page.unroute_all(behavior="ignoreErrors")


def test_contracts_agents_auditor_exposure_pages(read_console, demo_dirs, page):
    d = demo_dirs["hospital"]
    contracts = accord_json("contract", "list", "--dir", str(d))
    page.goto(read_console.url + "/contracts")
    from federation.identity import NodeIdentity
    from federation.node_offline import key_resolver
    from policy import Contract, PolicyError

    ident = NodeIdentity.load(d)
    verdicts = set()
    for c in contracts:
        section = page.locator(f"#contract-{c['id']}")
        assert c["hash"] in section.text_content()
        try:  # the same check as `accord contract register`, independently of the page
            Contract.load(ident.paths.contracts / f"{c['id']}.json").verify_signatures(key_resolver(ident))
            expected = "both signatures verify"
        except PolicyError as exc:
            expected = f"does not verify: {exc.reason}"
        assert section.locator(".sigs").text_content().startswith(expected)
        verdicts.add(expected)
    assert "both signatures verify" in verdicts  # the demo's contracts, and its deliberately unsigned one
    assert any(v.startswith("does not verify") for v in verdicts)
    shot(page, "contracts")

    agents = accord_json("agent", "list", "--dir", str(d))
    page.goto(read_console.url + "/agents")
    for a in agents:
        row = page.locator(f"tr[data-agent='{a['name']}']")
        assert a["did"] in row.text_content()
        assert row.locator("td.status").text_content() == a["status"]
    # read-only: the action buttons are disabled
    assert page.locator("#agents button:not([disabled])").count() == 0
    shot(page, "agents")

    audit = accord_json("audit", "status", "--dir", str(d))
    page.goto(read_console.url + "/auditor")
    assert page.locator("#auditor tbody tr").count() == max(len(audit), 1)
    for r in audit:
        assert r["scope"] in page.locator("#auditor").text_content()
    shot(page, "auditor")

    rows = accord_json("ledger", "query", "--dir", str(d))
    me = next(r["provider_org"] for r in rows if r["kind"] == "disclosure")
    page.goto(read_console.url + "/exposure")
    table = {
        (r.locator("th").text_content(), r.locator("td").nth(0).text_content()): r
        for r in page.locator("#exposure tbody tr").all()
    }
    for (partner, contract), r in table.items():
        n = sum(
            1
            for e in rows
            if e["kind"] == "disclosure"
            and e["provider_org"] == me
            and e["contract_id"] == contract
            and e["requester_org"].split(":")[-1].split(".")[0] == partner
        )
        assert int(r.locator("td").nth(1).text_content()) == n
    assert page.locator("#exposure-chart").evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "exposure")

    page.goto(read_console.url + "/approvals")
    assert page.locator("h1").text_content() == "Approval queue"
    shot(page, "approvals")
