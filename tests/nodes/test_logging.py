"""Unexpected errors are logged without local variables (a request's contents never reach node.log)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import structlog
from federation.observability import configure_logging
configure_logging(json_logs={json_logs})
log = structlog.get_logger("t")
def handler(presentation):
    raise RuntimeError("boom")
try:
    handler("SECRET-PRESENTATION-" + "x" * 50)
except RuntimeError:
    log.exception("unexpected error in RPC")
"""


@pytest.mark.parametrize("json_logs", [False, True])
def test_tracebacks_carry_no_local_variables(json_logs):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(json_logs=json_logs)], capture_output=True, text=True, check=True
    )
    assert "RuntimeError" in out.stderr and "boom" in out.stderr
    assert "SECRET-PRESENTATION" not in out.stderr


@pytest.mark.xdist_group("federation")
def test_one_structured_line_per_exchange_on_both_sides(fed):
    """The provider logs its decision, the requester its received entry: one line each, never values."""
    import re

    from federation.client import AgentClient
    from federation.supervisor import wait_until
    from nodes.conftest import run

    async def ask():
        async with AgentClient.from_wallet(fed.layout.wallets["relief/triage-coordinator"]) as c:
            s = await c.open_session("hospital")
            return await c.request(
                s,
                contract_id="relief-hospital-triage",
                purpose="triage-coordination",
                resource="patients",
                subject="patient-003",
                fields=["patient_id", "triage_level", "mobility", "shelter"],
            )

    r = run(ask())
    hospital, relief = fed.procs["hospital"].log_path, fed.procs["relief"].log_path

    def line(path, needle):
        return next((ln for ln in path.read_text().splitlines() if "exchange" in ln and needle in ln), None)

    assert wait_until(lambda: line(hospital, r.disclosure_id) and line(relief, r.disclosure_id), timeout=10)
    provided, received = line(hospital, r.disclosure_id), line(relief, r.disclosure_id)
    for text in (provided, received):
        assert "contract=relief-hospital-triage" in text and "decision=allow" in text
        assert re.search(r"leaf_index=\d+", text)
    assert "kind=disclosure" in provided and "counterpart=did:web:relief.accord.test" in provided
    assert "kind=received" in received and "counterpart=did:web:hospital.accord.test" in received
    assert f"leaf_index={r.received_leaf_index}" in received
    records = {json.dumps(v) for rec in r.records for v in rec.values() if isinstance(v, str) and len(v) > 3}
    assert not any(v.strip('"') in provided for v in records if v.strip('"') not in r.released_fields)
