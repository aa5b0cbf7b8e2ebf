"""Delegation chains and Authorization Drift between real node processes.

relief's ``triage-coordinator`` (scopes patients:read, supplies:read) delegates
to relief's ``logistics`` (supplies:read only) and onwards; the hospital node
verifies each chain when the holder opens a session with it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from federation.client import AgentClient, AgentWallet
from federation.delegation import delegate, open_delegated_session
from federation.demo.run import ledger_rows
from federation.errors import FederationError
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("tvp")

CONTRACT = "relief-hospital-triage"
PURPOSE = "triage-coordination"
MNI = ["patient_id", "triage_level", "mobility", "shelter"]


@pytest.fixture(scope="module")
def dfed(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("deleg"), with_interop=False)
    yield f
    f.stop()


def _w(fed, name: str) -> AgentWallet:
    return AgentWallet.load(fed.layout.wallets[name])


def _later(minutes: float = 30) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


def _link(frm: AgentWallet, to: AgentWallet, parent: dict, **kw):
    kw.setdefault("scopes", ["patients:read"])
    kw.setdefault("valid_until", _later())
    return delegate(key=frm.key, delegator=frm.did, delegatee=to.did, parent=parent, **kw)


async def _open_and_request(fed, holder: str, chain, requests):
    """Open a delegated session as ``holder``, then send each field list; return outcomes/errors."""
    out = []
    async with AgentClient.from_wallet(fed.layout.wallets[holder]) as c:
        s = await open_delegated_session(c, "hospital", chain)
        out.append(s)
        for i, fields in enumerate(requests):
            try:
                out.append(
                    await c.request(
                        s,
                        contract_id=CONTRACT,
                        purpose=PURPOSE,
                        resource="patients",
                        subject=f"patient-00{1 + i % 9}",
                        fields=fields,
                    )
                )
            except FederationError as err:
                out.append(err)
    return out


def _refused(fed, holder, chain) -> FederationError:
    with pytest.raises(FederationError) as ei:
        run(_open_and_request(fed, holder, chain, []))
    return ei.value


def _drift_rows(fed):
    return [r for r in ledger_rows(fed.layout, "hospital") if r["kind"] == "drift"]


def test_narrowing_chain_is_accepted_and_limited_to_the_delegated_fields(dfed):
    tc, lg = _w(dfed, "relief/triage-coordinator"), _w(dfed, "relief/logistics")
    link = _link(tc, lg, tc.credential, purposes=[PURPOSE], fields=["patient_id", "triage_level"])
    before = len(_drift_rows(dfed))
    s, ok, beyond, after = run(
        _open_and_request(
            dfed,
            "relief/logistics",
            [tc.credential, link],
            [["patient_id", "triage_level"], ["patient_id", "mobility"], ["patient_id"]],
        )
    )
    assert s.effective_trust > 0
    # logistics alone lacks patients:read: the delegated scope is what the policy saw
    assert ok.decision == "allow" and set(ok.released_fields) == {"patient_id", "triage_level"}
    assert all(set(rec) <= {"patient_id", "triage_level"} for rec in ok.records)
    # a request beyond the delegated fields is drift: ledger entry, session terminated
    assert after.reason == "SESSION_TERMINATED"
    rows = _drift_rows(dfed)
    assert len(rows) == before + 1
    assert rows[-1]["reason"] == "AUTHORIZATION_DRIFT" and rows[-1]["requester_agent"] == lg.did
    assert rows[-1]["purpose"] == PURPOSE and "mobility" in rows[-1]["fields_requested"]
    assert beyond.reason == "AUTHORIZATION_DRIFT" and beyond.status == "PERMISSION_DENIED"


def test_two_hop_narrowing_chain_within_max_depth_is_accepted(dfed):
    tc, lg, fv = (_w(dfed, f"relief/{n}") for n in ("triage-coordinator", "logistics", "field-volunteer"))
    l1 = _link(tc, lg, tc.credential, max_depth=1, fields=MNI)
    l2 = _link(lg, fv, l1, fields=["patient_id", "shelter"])
    s, r = run(
        _open_and_request(
            dfed, "relief/field-volunteer", [tc.credential, l1, l2], [["patient_id", "shelter"]]
        )
    )
    assert r.decision == "allow" and set(r.released_fields) == {"patient_id", "shelter"}


def test_without_delegation_logistics_is_denied(dfed):
    """Control: the scope really comes from the chain."""

    async def go():
        async with AgentClient.from_wallet(dfed.layout.wallets["relief/logistics"]) as c:
            s = await c.open_session("hospital")
            return await c.request(
                s,
                contract_id=CONTRACT,
                purpose=PURPOSE,
                resource="patients",
                subject="patient-001",
                fields=["patient_id"],
            )

    with pytest.raises(FederationError) as ei:
        run(go())
    assert ei.value.reason == "MISSING_SCOPE"


def test_scope_not_held_by_delegator_is_drift_terminating_every_chain_session(dfed):
    tc, lg = _w(dfed, "relief/triage-coordinator"), _w(dfed, "relief/logistics")

    async def go():
        async with AgentClient.from_wallet(dfed.layout.wallets["relief/triage-coordinator"]) as c:
            s0 = await c.open_session("hospital")
            r0 = await c.request(
                s0,
                contract_id=CONTRACT,
                purpose=PURPOSE,
                resource="patients",
                subject="patient-004",
                fields=MNI,
            )
            bad = _link(tc, lg, tc.credential, scopes=["patients:read", "patients:write"])
            with pytest.raises(FederationError) as ei:
                await open_delegated_session(
                    AgentClient.from_wallet(dfed.layout.wallets["relief/logistics"]),
                    "hospital",
                    [tc.credential, bad],
                )
            with pytest.raises(FederationError) as ei2:  # the delegator's own session is gone too
                await c.request(
                    s0,
                    contract_id=CONTRACT,
                    purpose=PURPOSE,
                    resource="patients",
                    subject="patient-005",
                    fields=MNI,
                )
            s1 = await c.open_session("hospital")
            return r0, ei.value, ei2.value, s1

    before = len(_drift_rows(dfed))
    r0, err, after, s1 = run(go())
    assert err.reason == "AUTHORIZATION_DRIFT"
    assert err.metadata.get("dimension") == "scopes" and "patients:write" in err.metadata.get("extra", "")
    assert after.reason == "SESSION_TERMINATED"
    rows = _drift_rows(dfed)
    assert len(rows) == before + 1 and rows[-1]["reason"] == "AUTHORIZATION_DRIFT"
    # τ for the pair dropped (drift penalty 0.3; a new session adds only a small boost)
    assert s1.effective_trust < r0.effective_trust


@pytest.mark.parametrize("case", ["purposes", "fields"])
def test_expanding_purposes_or_fields_in_a_second_hop_is_drift(dfed, case):
    tc, lg, fv = (_w(dfed, f"relief/{n}") for n in ("triage-coordinator", "logistics", "field-volunteer"))
    l1 = _link(tc, lg, tc.credential, max_depth=1, purposes=[PURPOSE], fields=["patient_id"])
    wider = {
        "purposes": {"purposes": [PURPOSE, "billing"]},
        "fields": {"fields": ["patient_id", "hiv_status"]},
    }
    l2 = _link(lg, fv, l1, **wider[case])
    err = _refused(dfed, "relief/field-volunteer", [tc.credential, l1, l2])
    assert err.reason == "AUTHORIZATION_DRIFT" and err.metadata["dimension"] == case
    assert err.metadata["link"] == "2"


def test_broken_chain_is_refused(dfed):
    tc, lg, fv = (_w(dfed, f"relief/{n}") for n in ("triage-coordinator", "logistics", "field-volunteer"))
    l1 = _link(tc, lg, tc.credential, max_depth=2)
    stray = _link(lg, fv, {"id": "urn:uuid:00000000-0000-4000-8000-000000000000"})
    err = _refused(dfed, "relief/field-volunteer", [tc.credential, l1, stray])
    assert err.reason == "BROKEN_CHAIN" and err.status == "PERMISSION_DENIED"


def test_link_not_issued_by_the_parents_delegatee_is_a_broken_chain(dfed):
    tc, lg, fv = (_w(dfed, f"relief/{n}") for n in ("triage-coordinator", "logistics", "field-volunteer"))
    l1 = _link(tc, lg, tc.credential, max_depth=2)
    l2 = _link(tc, fv, l1)  # signed by tc, but l1 was delegated to logistics
    assert _refused(dfed, "relief/field-volunteer", [tc.credential, l1, l2]).reason == "BROKEN_CHAIN"


def test_cycle_is_refused(dfed):
    tc, lg = _w(dfed, "relief/triage-coordinator"), _w(dfed, "relief/logistics")
    l1 = _link(tc, lg, tc.credential, max_depth=3)
    l2 = _link(lg, tc, l1, max_depth=2)  # back to the root agent
    assert _refused(dfed, "relief/triage-coordinator", [tc.credential, l1, l2]).reason == "DELEGATION_CYCLE"


def test_excessive_depth_is_refused(dfed):
    tc, lg, fv = (_w(dfed, f"relief/{n}") for n in ("triage-coordinator", "logistics", "field-volunteer"))
    l1 = _link(tc, lg, tc.credential, max_depth=0)
    l2 = _link(lg, fv, l1, max_depth=5)  # raising maxDepth below a 0 does not help
    err = _refused(dfed, "relief/field-volunteer", [tc.credential, l1, l2])
    assert err.reason == "DELEGATION_TOO_DEEP" and err.metadata["link"] == "1"


def test_expired_link_is_refused(dfed):
    tc, lg = _w(dfed, "relief/triage-coordinator"), _w(dfed, "relief/logistics")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    l1 = _link(tc, lg, tc.credential, valid_until=past)
    assert _refused(dfed, "relief/logistics", [tc.credential, l1]).reason == "DELEGATION_EXPIRED"


def test_tampered_link_is_refused(dfed):
    tc, lg = _w(dfed, "relief/triage-coordinator"), _w(dfed, "relief/logistics")
    l1 = _link(tc, lg, tc.credential, fields=["patient_id"])
    l1["credentialSubject"]["fields"] = ["patient_id", "triage_level"]
    assert _refused(dfed, "relief/logistics", [tc.credential, l1]).reason == "BAD_DELEGATION_SIGNATURE"


def test_chain_rooted_in_an_org_the_contract_does_not_name_is_refused(dfed):
    """supplier's dispatcher delegates to relief's logistics, which relief forwards to the hospital."""
    disp, lg = _w(dfed, "supplier/dispatcher"), _w(dfed, "relief/logistics")
    l1 = _link(disp, lg, disp.credential, scopes=["shelters:read"])
    err = _refused(dfed, "relief/logistics", [disp.credential, l1])
    assert err.reason == "FOREIGN_ORG"
    assert err.metadata["issuer"] == "did:web:supplier.accord.test"


def _present_unchecked(fed, holder: str, build, suite: str = "eddsa-rdfc-2022") -> FederationError:
    """Open a session with the hospital presenting ``build(wallet)``; return the refusal."""
    from credentials import verification_method_id as _vm
    from tests.credentials.cred_support import sign_unchecked

    w = _w(fed, holder)

    def present(challenge, domain):
        vp = {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiablePresentation"],
            "holder": w.did,
            "verifiableCredential": [build(w)],
        }
        return sign_unchecked(
            vp, w.key, _vm(w.did), "authentication", suite, challenge=challenge, domain=domain
        )

    async def go():
        async with AgentClient.from_wallet(fed.layout.wallets[holder]) as c:
            return await c.open_session_with("hospital", present)

    with pytest.raises(FederationError) as ei:
        run(go())
    return ei.value


def test_node_refuses_a_respelled_credential(dfed):
    """Issue #10 class 1 end to end: the agent's own credential, expiry re-spelled by an inline context."""
    cred = "https://www.w3.org/2018/credentials#"

    def respell(w):
        c = dict(w.credential)
        c["@context"] = list(c["@context"]) + [
            {"expiry": {"@id": cred + "validUntil", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"}}
        ]
        c["expiry"] = c.pop("validUntil")
        return c

    err = _present_unchecked(dfed, "relief/logistics", respell)
    assert err.reason == "CONTEXT_NOT_ALLOWED"


def test_node_refuses_a_hostile_presentation_before_jsonld(dfed):
    """Issue #10 class 2 end to end: 15 000 values for one property (<100 KB), refused at once."""

    def hostile(w):
        c = dict(w.credential)
        c["credentialSubject"] = dict(c["credentialSubject"], scopes=[f"s{i}" for i in range(15_000)])
        return c

    err = _present_unchecked(dfed, "relief/logistics", hostile, suite="eddsa-jcs-2022")  # JCS: no pyld here
    assert err.reason == "DOCUMENT_TOO_COMPLEX"

    async def plain():  # the node still serves: a normal session opens right after
        async with AgentClient.from_wallet(dfed.layout.wallets["relief/logistics"]) as c:
            return await c.open_session("hospital")

    assert run(plain()).session_id


def test_chain_rooted_in_a_revoked_agent_is_refused(dfed):
    """Last in the module: revokes relief's field-volunteer through the CLI of the running node."""
    import subprocess
    import sys
    import time

    fv, lg = _w(dfed, "relief/field-volunteer"), _w(dfed, "relief/logistics")
    l1 = _link(fv, lg, fv.credential)
    s, r = run(_open_and_request(dfed, "relief/logistics", [fv.credential, l1], [["patient_id"]]))
    assert r.decision == "allow"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "agent",
            "revoke",
            "field-volunteer",
            "--dir",
            str(dfed.layout.orgs["relief"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    time.sleep(1.5)  # the hospital's status-list cache TTL is 1 s
    err = _refused(dfed, "relief/logistics", [fv.credential, _link(fv, lg, fv.credential)])
    assert "REVOKED" in err.reason


# ----------------------------------------------------------------------------------------------
# The verifier in process (no nodes): attenuation as a property over random chains.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from credentials import (  # noqa: E402
    Ed25519KeyPair,
    StaticKeyResolver,
    agent_credential,
    did_key_from_public_key,
    issue_credential,
    verification_method_id,
)
from federation.delegation import (  # noqa: E402
    DelegationError,
    DriftError,
    check_request_within,
    delegation_credential,
    delegation_presentation,
    verify_delegated_presentation,
)

ORG = "did:web:org-a.accord.test"
ORG_KEY = Ed25519KeyPair.from_seed(bytes(range(32)))
RESOLVE = StaticKeyResolver({f"{ORG}#key-1": ORG_KEY.public_key})
AGENTS = [Ed25519KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
DIDS = [did_key_from_public_key(k.public_key) for k in AGENTS]
SCOPES = ["a:read", "b:read", "c:read"]
FIELDS = ["x", "y", "z", "w"]
NOW = dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC)


def _root():
    unsigned = agent_credential(
        issuer=ORG,
        agent_did=DIDS[0],
        organization=ORG,
        name="root",
        role="lead",
        scopes=SCOPES,
        trust_tier=1,
        valid_from=NOW - dt.timedelta(days=1),
        valid_until=NOW + dt.timedelta(days=1),
        credential_id="urn:uuid:11111111-1111-4111-8111-111111111111",
    )
    return issue_credential(unsigned, key=ORG_KEY, verification_method=f"{ORG}#key-1")


ROOT = _root()
subsets = st.lists(st.sampled_from(SCOPES), min_size=1, unique=True)


def _verify(chain, holder):
    vp = delegation_presentation(
        chain, holder=DIDS[holder], key=AGENTS[holder], challenge="c-1", domain="did:web:prov.accord.test"
    )
    return verify_delegated_presentation(
        vp,
        challenge="c-1",
        domain="did:web:prov.accord.test",
        resolve_key=RESOLVE,
        now=NOW,
        status=None,
        requester_org=ORG,
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hops=st.integers(1, 3), data=st.data())
def test_property_narrowing_never_drifts_and_any_widening_does(hops, data):
    chain, parent, held = [ROOT], ROOT, set(SCOPES)
    held_fields: set[str] | None = None
    widened = False
    for i in range(hops):
        scopes = set(data.draw(subsets))
        fields = set(data.draw(st.lists(st.sampled_from(FIELDS), min_size=1, unique=True)))
        widened |= not scopes <= held or (held_fields is not None and not fields <= held_fields)
        link = delegate(
            key=AGENTS[i],
            delegator=DIDS[i],
            delegatee=DIDS[i + 1],
            parent=parent,
            scopes=sorted(scopes),
            fields=sorted(fields),
            max_depth=hops - 1 - i,
            valid_until=NOW + dt.timedelta(hours=1),
        )
        chain.append(link)
        parent, held, held_fields = link, scopes, fields
    if widened:
        with pytest.raises(DriftError) as ei:
            _verify(chain, hops)
        assert ei.value.reason == "AUTHORIZATION_DRIFT" and ei.value.chain_agents == tuple(DIDS[: hops + 1])
    else:
        auth = _verify(chain, hops)
        assert auth.scopes == frozenset(held) and auth.fields == frozenset(held_fields)
        assert auth.claims["scopes"] == sorted(held) and auth.chain_agents == tuple(DIDS[: hops + 1])
        check_request_within(auth, purpose="p", fields=sorted(held_fields), contract_id="c")
        with pytest.raises(DriftError):
            check_request_within(auth, purpose="p", fields=["not-delegated"], contract_id="c")


def test_in_process_reasons_for_bad_chains():
    later = NOW + dt.timedelta(hours=1)
    l1 = delegate(
        key=AGENTS[0],
        delegator=DIDS[0],
        delegatee=DIDS[1],
        parent=ROOT,
        scopes=["a:read"],
        max_depth=0,
        valid_until=later,
    )
    assert _verify([ROOT, l1], 1).not_after == later.timestamp()
    with pytest.raises(DelegationError) as ei:  # holder is not the last delegatee
        _verify([ROOT, l1], 2)
    assert ei.value.reason == "BROKEN_CHAIN"
    with pytest.raises(DelegationError) as ei:  # no link at all
        _verify([ROOT], 0)
    assert ei.value.reason == "BROKEN_CHAIN"
    dup = dict(l1)
    with pytest.raises(DelegationError) as ei:  # the same link twice
        _verify([ROOT, l1, dup], 1)
    assert ei.value.reason == "DELEGATION_CYCLE"
    # maxDepth: 9 hops is refused by the global cap whatever the links say
    with pytest.raises(DelegationError) as ei:
        _verify([ROOT] + [l1] * 9, 1)
    assert ei.value.reason == "DELEGATION_TOO_DEEP"
    unexpiring = {k: v for k, v in l1.items() if k not in ("validUntil", "proof")}
    with pytest.raises(DelegationError) as ei:
        _verify([ROOT, unexpiring], 1)
    assert ei.value.reason == "MALFORMED_DELEGATION"


def test_cross_org_chain_is_accepted_when_the_contract_names_the_root_org(tmp_path):
    """A supplier → relief chain opens a session once the contract names supplier in delegation_orgs.

    The root is checked against supplier's own status list at the provider: once supplier
    revokes its dispatcher, the hospital refuses the same chain (``REVOKED``).
    """
    import json as _json

    from federation.demo import setup as demo_setup
    from federation.identity import NodeIdentity
    from policy import Contract

    layout = demo_setup.provision(tmp_path / "x", with_interop=False)
    hosp, rel = NodeIdentity.load(layout.orgs["hospital"]), NodeIdentity.load(layout.orgs["relief"])
    path = layout.orgs["hospital"] / "contracts" / "relief-hospital-triage.json"
    doc = Contract.load(path).terms()
    doc["delegation_orgs"] = ["did:web:supplier.accord.test"]
    c = Contract.from_dict(doc)
    for ident in (hosp, rel):
        c = c.sign(org=ident.org_did, verification_method=ident.verification_method, seed=ident.org_key.seed)
    for org in ("hospital", "relief"):
        c.dump(layout.orgs[org] / "contracts" / "relief-hospital-triage.json")
    assert _json.loads(path.read_text())["delegation_orgs"] == ["did:web:supplier.accord.test"]
    from federation.supervisor import NodeProcess
    from nodes.conftest import Fed

    fed = Fed(layout, {o: NodeProcess(layout.orgs[o]).start() for o in ("hospital", "relief", "supplier")})
    try:
        disp, lg = _w(fed, "supplier/dispatcher"), _w(fed, "relief/logistics")
        l1 = _link(disp, lg, disp.credential, scopes=["shelters:read"])
        out = run(_open_and_request(fed, "relief/logistics", [disp.credential, l1], []))
        assert out[0].session_id
        import subprocess
        import sys
        import time

        p = subprocess.run(
            [sys.executable, "-m", "federation.cli.main", "agent", "revoke", "dispatcher"]
            + ["--dir", str(layout.orgs["supplier"])],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        time.sleep(1.5)  # the hospital's status-list cache TTL is 1 s
        again = _link(disp, lg, disp.credential, scopes=["shelters:read"])
        err = _refused(fed, "relief/logistics", [disp.credential, again])
        assert "REVOKED" in err.reason
    finally:
        fed.stop()


# ----------------------------------------------------------------------------------------------
# Issue #10 class 1 on the delegation path: the chain is read by JSON key, so a re-spelled
# root (expiry hidden by an inline @context) or link must be refused, not read as unexpiring.


def _expired_root_respelled():
    from credentials import status_entry

    unsigned = agent_credential(
        issuer=ORG,
        agent_did=DIDS[0],
        organization=ORG,
        name="root",
        role="lead",
        scopes=SCOPES,
        trust_tier=1,
        valid_from=NOW - dt.timedelta(days=10),
        valid_until=NOW - dt.timedelta(days=1),  # expired
        credential_id="urn:uuid:22222222-2222-4222-8222-222222222222",
        status=status_entry(list_credential_id="https://org-a.test/status/1", index=3, purpose="revocation"),
    )
    signed = issue_credential(
        unsigned, key=ORG_KEY, verification_method=f"{ORG}#key-1", created=NOW - dt.timedelta(days=10)
    )
    cred = "https://www.w3.org/2018/credentials#"
    forged = {k: v for k, v in signed.items() if k not in ("validUntil", "credentialStatus")}
    forged["@context"] = signed["@context"] + [
        {
            "expiry": {"@id": cred + "validUntil", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
            "standing": {"@id": cred + "credentialStatus", "@type": "@id"},
        }
    ]
    forged["expiry"], forged["standing"] = signed["validUntil"], signed["credentialStatus"]
    return signed, forged


def _vp_unchecked(chain, holder):
    from tests.credentials.cred_support import sign_unchecked

    vp = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": DIDS[holder],
        "verifiableCredential": list(chain),
    }
    return sign_unchecked(
        vp,
        AGENTS[holder],
        verification_method_id(DIDS[holder]),
        "authentication",
        "eddsa-jcs-2022",
        challenge="c-1",
        domain="did:web:prov.accord.test",
    )


def _verify_vp(vp):
    return verify_delegated_presentation(
        vp,
        challenge="c-1",
        domain="did:web:prov.accord.test",
        resolve_key=RESOLVE,
        now=NOW,
        status=None,
        requester_org=ORG,
    )


def test_chain_rooted_in_a_respelled_expired_credential_is_refused():
    from credentials import CredentialError, canonicalize_rdfc

    signed, forged = _expired_root_respelled()
    strip = lambda d: {k: v for k, v in d.items() if k != "proof"}  # noqa: E731
    assert canonicalize_rdfc(strip(forged)) == canonicalize_rdfc(strip(signed))  # same signed meaning
    link = delegate(
        key=AGENTS[0],
        delegator=DIDS[0],
        delegatee=DIDS[1],
        parent=signed,
        scopes=["a:read"],
        valid_until=NOW + dt.timedelta(hours=1),
    )
    with pytest.raises(CredentialError) as ei:  # honest spelling: expired
        _verify_vp(_vp_unchecked([signed, link], 1))
    assert ei.value.reason == "EXPIRED"
    with pytest.raises(CredentialError) as ei:  # re-spelled: no longer read as unexpiring
        _verify_vp(_vp_unchecked([forged, link], 1))
    assert ei.value.reason == "CONTEXT_NOT_ALLOWED"


def test_link_with_an_inline_context_is_refused():
    from credentials import CredentialError
    from tests.credentials.cred_support import sign_unchecked

    link = delegation_credential(
        delegator=DIDS[0],
        delegatee=DIDS[1],
        parent_id=ROOT["id"],
        scopes=["a:read"],
        valid_until=NOW + dt.timedelta(hours=1),
    )
    link["@context"] = link["@context"] + [{"reach": "https://w3id.org/accord/vocab#scopes"}]
    link["credentialSubject"]["reach"] = ["c:read"]
    signed = sign_unchecked(
        link, AGENTS[0], verification_method_id(DIDS[0]), "assertionMethod", "eddsa-jcs-2022"
    )
    with pytest.raises(CredentialError) as ei:
        _verify_vp(_vp_unchecked([ROOT, signed], 1))
    assert ei.value.reason == "CONTEXT_NOT_ALLOWED"
