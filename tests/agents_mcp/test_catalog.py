"""federation.mcp.catalog offline: what the contracts in force let an agent ask for, and when that changes."""

from __future__ import annotations

import datetime as dt

import pytest

from federation.demo.setup import provision
from federation.errors import PeerError
from federation.mcp import catalog as cat


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return provision(tmp_path_factory.mktemp("cat"), orgs=("hospital", "relief"), with_interop=False)


def _load(layout, agent, scopes, now):
    return cat.Catalog.load(layout.orgs["relief"], agent=agent, agent_did="did:key:x", scopes=scopes, now=now)


def test_purposes_fields_and_missing_scopes(layout):
    c = _load(layout, "logistics", ["supplies:read"], dt.datetime.now(dt.UTC))
    assert c.partner_names() == ["hospital"]
    triage = c.purpose(c.partner("hospital"), "triage-coordination")
    assert triage.mni == ("patient_id", "triage_level", "mobility", "shelter")
    assert set(triage.optional) == {"age", "allergies"} and triage.missing_scopes == ("patients:read",)
    assert c.purpose_names(aggregates=True) == ["surge-planning"]
    with pytest.raises(cat.AdapterRefusal) as ei:
        c.check_records(triage, resource="patients", fields=["patient_id", "hiv_status"])
    assert ei.value.reason == "FIELD_NOT_IN_CONTRACT" and ei.value.metadata["fields"] == "hiv_status"
    with pytest.raises(PeerError):
        c.partner("nowhere")


def test_a_contract_out_of_force_leaves_the_catalog_and_next_change_says_when(layout):
    now = dt.datetime.now(dt.UTC)
    c = _load(layout, "triage-coordinator", ["patients:read"], now)
    assert c.next_change is not None and now < c.next_change <= now + dt.timedelta(days=91)
    later = _load(layout, "triage-coordinator", ["patients:read"], c.next_change + dt.timedelta(seconds=1))
    assert "hospital" not in later.partners
    with pytest.raises(cat.AdapterRefusal) as ei:
        later.partner("hospital")  # pinned, but no contract in force any more
    assert ei.value.reason == "UNKNOWN_CONTRACT"


def test_explain_names_what_is_open_instead(layout):
    c = _load(layout, "logistics", ["supplies:read"], dt.datetime.now(dt.UTC))
    ex = cat.explain(c, "MISSING_SCOPE", partner="hospital")
    assert ex["status"] == "PERMISSION_DENIED"
    assert [a["purpose"] for a in ex["allowed_instead"]][0] == "surge-planning"
    assert cat.explain(c, "TRUST_TOO_LOW:age")["reason"] == "TRUST_TOO_LOW"


def test_request_records_result_carries_the_own_nodes_content_labels():
    """A flagged free-text value reaches the model with its label, as the SDK and A2A carry it."""
    from types import SimpleNamespace

    from federation.mcp.server import content_labels
    from federation.pb import federation_pb2 as pb

    flagged = pb.ContentLabel(
        record=1, field="notes", verdict="injection", findings=["injection(role_play)"], quarantined=True
    )
    result = SimpleNamespace(
        content_labels=(flagged, pb.ContentLabel(record=0, field="notes", verdict="unscreened"))
    )
    assert content_labels(result) == [
        {
            "record": 1,
            "field": "notes",
            "verdict": "injection",
            "findings": ["injection(role_play)"],
            "quarantined": True,
        },
        {"record": 0, "field": "notes", "verdict": "unscreened", "findings": [], "quarantined": False},
    ]
    assert content_labels(SimpleNamespace(content_labels=())) == []
