"""Automatic renewal before expiry (issue #11): agent credentials and the node's TLS certificates.

``[renewal]`` in ``node.toml`` makes the running node renew what expires
within a window. With a fake clock (``renew_due(..., now=)``) the decision is
checked exactly; on real node processes an agent whose credential expires
tomorrow, and one whose credential has already expired, are renewed by the
node itself (logged, wallets rewritten) and then open sessions at a peer;
revoked agents and agents far from expiry are left alone; the node's TLS
certificate inside the window is renewed and served without a restart.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography import x509

from federation.agents import open_store, register_agent
from federation.client import AgentClient, AgentWallet
from federation.config import load_config, save_config
from federation.errors import ConfigError
from federation.identity import NodeIdentity, init_node
from federation.renewal import renew_due
from nodes.conftest import run

pytestmark = pytest.mark.xdist_group("federation")


def _set_renewal(d, **kw):
    cfg = load_config(d)
    save_config(d, cfg.model_copy(update={"renewal": cfg.renewal.model_copy(update=kw)}))


def _valid_until(path) -> dt.datetime:
    return dt.datetime.fromisoformat(AgentWallet.load(path).credential["validUntil"])


def test_renew_due_with_a_fake_clock(tmp_path):
    d = tmp_path / "a"
    init_node(d, org_name="alpha", listen="127.0.0.1:7621")
    _set_renewal(d, agents_before_days=7, agent_days=30, tls_before_days=0)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    ident = NodeIdentity.load(d)
    register_agent(ident, name="short", role="r", scopes=["x:read"], valid_days=10, now=t0)
    register_agent(ident, name="long", role="r", scopes=["x:read"], valid_days=90, now=t0)
    register_agent(ident, name="gone", role="r", scopes=["x:read"], valid_days=1, now=t0)
    open_store(ident).set_status("gone", revoked=True)
    # day 2: "short" expires on day 10, outside the 7-day window: nothing to do
    assert renew_due(ident, now=t0 + dt.timedelta(days=2)).agents == []
    # day 4: inside the window
    report = renew_due(ident, now=t0 + dt.timedelta(days=4))
    assert report.agents == ["short"] and not report.failed and not report.tls
    assert _valid_until(d / "agents" / "short.json") == t0 + dt.timedelta(days=34)
    assert _valid_until(d / "agents" / "long.json") == t0 + dt.timedelta(days=90)
    assert _valid_until(d / "agents" / "gone.json") == t0 + dt.timedelta(days=1)  # revoked: never
    # day 85: "long" is due; "short" (renewed until day 34) has expired and is renewed too
    assert sorted(renew_due(ident, now=t0 + dt.timedelta(days=85)).agents) == ["long", "short"]
    # off
    _set_renewal(d, agents_before_days=0)
    assert renew_due(NodeIdentity.load(d), now=t0 + dt.timedelta(days=400)).agents == []


def test_tls_renewal_with_a_fake_clock(tmp_path):
    d = tmp_path / "a"
    init_node(d, org_name="alpha", listen="127.0.0.1:7622")
    _set_renewal(d, agents_before_days=0, tls_before_days=30, tls_days=90)
    ident = NodeIdentity.load(d)
    old = x509.load_pem_x509_certificate(ident.tls_pem("node.pem"))
    assert not renew_due(ident, now=old.not_valid_after_utc - dt.timedelta(days=31)).tls
    later = old.not_valid_after_utc - dt.timedelta(days=29)
    assert renew_due(ident, now=later).tls
    new = x509.load_pem_x509_certificate(ident.tls_pem("node.pem"))
    assert new.not_valid_after_utc.replace(microsecond=0) == later.replace(microsecond=0) + dt.timedelta(
        days=90
    )


def test_renewal_window_must_fit_inside_the_validity(tmp_path):
    d = tmp_path / "a"
    init_node(d, org_name="alpha", listen="127.0.0.1:7623")
    text = (d / "node.toml").read_text()
    assert "agents_before_days = 7.0" in text
    (d / "node.toml").write_text(text.replace("agents_before_days = 7.0", "agents_before_days = 30"))
    with pytest.raises(ConfigError) as ei:
        load_config(d)
    assert "agents_before_days" in str(ei.value)


async def _open(path, endpoint):
    async with AgentClient.from_wallet(path, endpoint=endpoint) as c:
        return await c.open_session("hospital")


def test_running_node_renews_agents_and_its_certificate_before_expiry(tmp_path):
    from federation.demo.setup import provision
    from federation.supervisor import NodeProcess

    layout = provision(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    relief = layout.orgs["relief"]
    _set_renewal(relief, agents_before_days=2, agent_days=30, tls_before_days=400, tls_days=500,
                 check_interval_seconds=1)  # fmt: skip
    ident = NodeIdentity.load(relief)
    now = dt.datetime.now(dt.UTC)
    register_agent(ident, name="soon", role="analyst", scopes=["shelters:read"], valid_days=1)
    register_agent(
        ident,
        name="late",
        role="analyst",
        scopes=["shelters:read"],
        valid_days=1,
        now=now - dt.timedelta(days=3),
    )
    register_agent(ident, name="revoked", role="analyst", scopes=["shelters:read"], valid_days=1)
    open_store(ident).set_status("revoked", revoked=True)
    agents = relief / "agents"
    before = {
        n: _valid_until(agents / f"{n}.json") for n in ("soon", "late", "revoked", "triage-coordinator")
    }
    old_cert = (relief / "tls" / "node.pem").read_bytes()
    procs = {}
    try:
        for org in ("hospital", "relief"):
            procs[org] = NodeProcess(layout.orgs[org]).start()
        deadline = time.monotonic() + 60
        while _valid_until(agents / "soon.json") == before["soon"] or (
            _valid_until(agents / "late.json") == before["late"]
        ):
            assert time.monotonic() < deadline, (relief / "node.log").read_text()[-2000:]
            time.sleep(0.5)
        for name in ("soon", "late"):
            assert _valid_until(agents / f"{name}.json") - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)
        assert _valid_until(agents / "revoked.json") == before["revoked"]
        assert _valid_until(agents / "triage-coordinator.json") == before["triage-coordinator"]
        # the certificate inside its window was renewed (once)
        while (relief / "tls" / "node.pem").read_bytes() == old_cert:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(2.5)  # more checks: nothing is due any more
        assert _valid_until(agents / "soon.json") - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)
        cert = x509.load_pem_x509_certificate((relief / "tls" / "node.pem").read_bytes())
        assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=499)
        # the renewed agents open sessions at the peer, through the relief node's renewed certificate
        for name in ("soon", "late"):
            assert run(_open(agents / f"{name}.json", procs["relief"].endpoint)).session_id
        text = (relief / "node.log").read_text()
        assert "agent credential renewed" in text and "agent=late" in text
        assert "node TLS certificates renewed" in text
    finally:
        for p in procs.values():
            p.stop()


def test_sighup_rereads_renewal(tmp_path):
    """An edited ``[renewal]`` applies after SIGHUP (no restart); an invalid one is refused, the old kept."""
    import os
    import signal

    from federation.demo.setup import provision
    from federation.supervisor import NodeProcess

    layout = provision(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    relief = layout.orgs["relief"]
    # started with automatic agent renewal off, and a check only every hour
    _set_renewal(relief, agents_before_days=0, check_interval_seconds=3600)
    register_agent(
        NodeIdentity.load(relief), name="soon", role="analyst", scopes=["shelters:read"], valid_days=1
    )
    wallet = relief / "agents" / "soon.json"
    before = _valid_until(wallet)
    log_path = relief / "node.log"
    proc = NodeProcess(relief).start()
    try:
        # an invalid [renewal] (window longer than the validity): refused, the node keeps serving
        import re

        text = (relief / "node.toml").read_text()
        bad = re.sub(r"(?m)^agents_before_days = .*$", "agents_before_days = 40.0", text)
        assert bad != text and "\nagent_days = 30\n" in bad
        (relief / "node.toml").write_text(bad)
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 90
        while "reload on SIGHUP failed" not in log_path.read_text():
            # a SIGHUP right after READY: the handler is installed before READY (its default would kill)
            assert proc.alive(), log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.2)
        assert proc.alive() and _valid_until(wallet) == before
        # a valid one: renewal on, checks every second; applied from the running hour-long wait
        (relief / "node.toml").write_text(text)
        _set_renewal(relief, agents_before_days=2, agent_days=30, check_interval_seconds=1)
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 90
        while _valid_until(wallet) == before:
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.2)
        assert _valid_until(wallet) - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)
        assert "reloaded on SIGHUP" in log_path.read_text()
    finally:
        proc.stop()
