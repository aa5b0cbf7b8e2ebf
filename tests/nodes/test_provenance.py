"""Provenance through delegation chains on real node processes (issue #15).

relief's ``triage-coordinator`` delegates to ``logistics``, which delegates
to ``field-volunteer``; the volunteer's request is attributed, in the
hospital's disclosure entry, to the root agent and the whole chain, and
``accord ledger query --agent`` finds it under every agent of the chain.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from federation.client import AgentClient, AgentWallet
from federation.delegation import delegate, open_delegated_session
from nodes.conftest import run, start

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("provenance")]

CONTRACT = "relief-hospital-triage"
PURPOSE = "triage-coordination"
FIELDS = ["patient_id", "shelter"]


def _later() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)


def _query(node_dir, *args: str) -> list[dict]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "ledger",
            "query",
            "--dir",
            str(node_dir),
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_delegated_disclosure_names_the_root_agent_the_chain_and_the_provider_agent(tmp_path):
    fed = start(tmp_path, orgs=("hospital", "relief"), with_interop=False)
    try:
        w = {
            n: AgentWallet.load(fed.layout.wallets[f"relief/{n}"])
            for n in ("triage-coordinator", "logistics", "field-volunteer")
        }
        tc, lg, fv = w["triage-coordinator"], w["logistics"], w["field-volunteer"]
        l1 = delegate(
            key=tc.key,
            delegator=tc.did,
            delegatee=lg.did,
            parent=tc.credential,
            scopes=["patients:read"],
            valid_until=_later(),
            max_depth=1,
        )
        l2 = delegate(
            key=lg.key,
            delegator=lg.did,
            delegatee=fv.did,
            parent=l1,
            scopes=["patients:read"],
            valid_until=_later(),
            fields=FIELDS,
        )

        async def go():
            async with AgentClient.from_wallet(fed.layout.wallets["relief/field-volunteer"]) as c:
                s = await open_delegated_session(c, "hospital", [tc.credential, l1, l2])
                return await c.request(
                    s,
                    contract_id=CONTRACT,
                    purpose=PURPOSE,
                    resource="patients",
                    subject="patient-001",
                    fields=FIELDS,
                )

        r = run(go())
        assert r.decision == "allow"
    finally:
        fed.stop()
    hospital = fed.layout.orgs["hospital"]
    (row,) = [x for x in _query(hospital, "--kind", "disclosure") if x["disclosure_id"] == r.disclosure_id]
    assert row["requester_agent"] == fv.did
    assert row["extra"]["root_agent"] == tc.did
    assert row["extra"]["chain_agents"] == ",".join([tc.did, lg.did, fv.did])
    assert row["extra"]["delegation_chain"] == ",".join([tc.credential["id"], l1["id"], l2["id"]])
    assert row["extra"]["provider_agent"] == "source"
    # attributed through the chain: the root and the middle agent find it too, an outsider does not
    for agent in (tc.did, lg.did, fv.did):
        assert r.disclosure_id in {x["disclosure_id"] for x in _query(hospital, "--agent", agent)}
    other = AgentWallet.load(fed.layout.wallets["relief/triage-coordinator"]).did[:-2] + "zz"
    assert r.disclosure_id not in {x["disclosure_id"] for x in _query(hospital, "--agent", other)}
