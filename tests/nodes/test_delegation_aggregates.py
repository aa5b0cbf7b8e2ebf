"""Delegated field limits bind aggregate queries too (issue #10, class 3).

A delegatee limited to some fields once asked an aggregate over any column:
the delegation check saw an aggregate's empty field list and let it through.
"""

from __future__ import annotations

import datetime as dt

import pytest

from federation.client import AgentClient, AgentWallet
from federation.delegation import delegate, open_delegated_session
from federation.errors import FederationError
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("tvp")

CONTRACT, PURPOSE = "relief-hospital-triage", "surge-planning"


@pytest.fixture(scope="module")
def afed(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("deleg-agg"), with_interop=False)
    yield f
    f.stop()


def _chain(fed, fields):
    tc = AgentWallet.load(fed.layout.wallets["relief/triage-coordinator"])
    lg = AgentWallet.load(fed.layout.wallets["relief/logistics"])
    link = delegate(
        key=tc.key,
        delegator=tc.did,
        delegatee=lg.did,
        parent=tc.credential,
        scopes=["supplies:read"],
        purposes=[PURPOSE],
        fields=fields,
        valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
    )
    return [tc.credential, link]


async def _aggregate(fed, chain, predicate):
    async with AgentClient.from_wallet(fed.layout.wallets["relief/logistics"]) as c:
        s = await open_delegated_session(c, "hospital", chain)
        try:
            return await c.request(
                s,
                contract_id=CONTRACT,
                purpose=PURPOSE,
                resource="admissions",
                subject="*",
                fields=[],
                aggregate={"kind": "count", "column": "length_of_stay", "predicate": predicate},
            )
        except FederationError as err:
            return err


def test_aggregate_over_a_column_outside_the_delegated_fields_is_drift(afed):
    out = run(_aggregate(afed, _chain(afed, ["ward"]), {}))
    assert isinstance(out, FederationError) and out.reason == "AUTHORIZATION_DRIFT"


def test_aggregate_filtering_on_a_column_outside_the_delegated_fields_is_drift(afed):
    predicate = {"col": "district", "op": "eq", "val": "north"}
    out = run(_aggregate(afed, _chain(afed, ["length_of_stay", "ward"]), predicate))
    assert isinstance(out, FederationError) and out.reason == "AUTHORIZATION_DRIFT"


def test_aggregate_within_the_delegated_fields_is_answered(afed):
    predicate = {"col": "ward", "op": "in", "val": ["general", "icu", "pediatrics", "burns"]}
    out = run(_aggregate(afed, _chain(afed, ["length_of_stay", "ward"]), predicate))
    assert not isinstance(out, FederationError), out
    assert out.decision == "allow" and out.records[0]["kind"] == "count"
