"""The TVP scenario suite on real nodes: gate on vs off, three agent models, τ ∈ {0.1, 0.5, 0.9}.

One federation (a requester and six provider nodes: 3 models × gate on/off)
runs the 19 sub-scenes once per module; the tests check the issue's
"Done when" claims on what was measured.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest

from federation.client import AgentClient
from federation.demo.run import ledger_rows
from federation.errors import FederationError
from interop_tests.tvp import MACROS, MOTIFS, load_scenes
from interop_tests.tvp.agents import interpolate, load_calibration
from interop_tests.tvp.runner import (
    DEFAULT_MODELS,
    FIREWALL_CONTRACT,
    FIREWALL_PURPOSE,
    FIREWALL_SCENE,
    TAUS,
    TvpFederation,
    provision_tvp,
    run_sweep,
    summarize,
)
from policy.measures import Chain, authorization_drift, over_exposure_rate

pytestmark = pytest.mark.xdist_group("tvp")

CHAINS = 4


class _Fed:
    pass


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    layout = provision_tvp(tmp_path_factory.mktemp("tvp"), models=DEFAULT_MODELS)
    fed = TvpFederation(layout).start()
    try:
        result = asyncio.run(run_sweep(layout, chains_per_scene=CHAINS))
        out = _Fed()
        out.layout, out.result, out.rows = layout, result, summarize(result.chains)
        out.fed = fed
        yield out
    finally:
        fed.stop()


def _rows(sweep, **match):
    return [r for r in sweep.rows if all(r[k] == v for k, v in match.items())]


def test_suite_has_the_papers_19_sub_scenes_and_every_motif():
    scenes = load_scenes()
    assert len(scenes) == 19
    assert {m: sum(s.macro == m for s in scenes) for m in MACROS} == {
        "enterprise": 6,
        "archaeology": 7,
        "mars": 6,
    }
    assert {s.motif for s in scenes} == MOTIFS
    assert any(s.delegation and s.delegation.expands for s in scenes)
    assert any(s.delegation and not s.delegation.expands for s in scenes)


def test_every_chain_ran_at_the_contract_ceiling(sweep):
    chains = sweep.result.chains
    measured_scenes = {s.id for s in sweep.layout.scenes if not (s.delegation and s.delegation.expands)}
    assert len(chains) == len(measured_scenes) * len(TAUS) * CHAINS * len(sweep.layout.conditions)
    assert not [c for c in chains if c.denied]
    assert all(c.effective_tau == pytest.approx(c.tau) for c in chains)


def test_gate_on_releases_nothing_beyond_a_star_for_every_scene_and_model(sweep):
    on = [c for c in sweep.result.chains if c.gate]
    for model in {c.agent_model for c in on}:
        for scene in {c.scene for c in on}:
            cs = [c for c in on if c.agent_model == model and c.scene == scene]
            by_tau = {
                tau: over_exposure_rate(
                    [Chain(released=c.received, a_star=c.a_star) for c in cs if c.tau == tau]
                )
                for tau in TAUS
            }
            assert by_tau == {0.1: 0.0, 0.5: 0.0, 0.9: 0.0}, (model, scene)
            assert authorization_drift(by_tau) == 0.0
    for row in _rows(sweep, gate="on"):
        assert row["released_oer"] == 0.0 and row["ad"] == 0.0
    # the adversarial agent did try: everything it offered beyond A* was stripped
    assert all(r["attempted_oer"] == 1.0 for r in _rows(sweep, gate="on", agent_model="adversarial"))


def test_gate_on_provider_ledgers_show_only_a_star_released(sweep):
    a_star = {s.id: set(s.a_star) for s in sweep.layout.scenes}
    for cond in (c for c in sweep.layout.conditions if c.gate):
        rows = [r for r in ledger_rows(sweep.layout, cond.org) if r["kind"] == "disclosure"]
        assert len(rows) >= len(load_scenes()) * CHAINS  # at least one τ's worth of chains logged
        for r in rows:
            assert set(r["fields_released"]) <= a_star[r["purpose"]], r
        assert any(r["fields_stripped"] for r in rows) or cond.agent_model.startswith("stochastic")


def test_gate_off_oer_rises_with_tau_as_the_calibrated_models_say(sweep):
    cal = load_calibration()
    for model in DEFAULT_MODELS:
        oer = {r["tau"]: r["released_oer"] for r in _rows(sweep, scene="all", gate="off", agent_model=model)}
        if model == "adversarial":
            assert oer == {0.1: 1.0, 0.5: 1.0, 0.9: 1.0}
            continue
        curve = cal[model.split(":", 1)[1]].oer
        assert oer[0.1] <= oer[0.5] <= oer[0.9] and oer[0.9] > oer[0.1]
        for tau in TAUS:  # ~70 chains per point; seeded, so this is deterministic
            assert abs(oer[tau] - interpolate(curve, tau)) < 0.15, (model, tau, oer[tau])
        ad = _rows(sweep, scene="all", gate="off", agent_model=model)[0]["ad"]
        assert ad > 0.01


def test_gate_changes_nothing_but_the_release(sweep):
    """Same seeds, same request order: the agents offered the same; only what crossed differs."""
    for model in DEFAULT_MODELS:
        for tau in TAUS:
            on = _rows(sweep, scene="all", gate="on", agent_model=model, tau=tau)[0]
            off = _rows(sweep, scene="all", gate="off", agent_model=model, tau=tau)[0]
            assert on["attempted_oer"] == off["attempted_oer"]
            assert off["released_oer"] == off["attempted_oer"]


def test_task_success_with_gate_on_is_not_lower(sweep):
    for row in _rows(sweep, gate="on"):
        off = _rows(sweep, gate="off", scene=row["scene"], tau=row["tau"], agent_model=row["agent_model"])[0]
        assert row["task_success"] >= off["task_success"]
        assert row["task_success"] == 1.0  # A* suffices for every scene of the suite


def test_drift_is_detected_in_every_expanding_chain_and_no_narrowing_one(sweep):
    drift = sweep.result.drift
    deleg = [s for s in sweep.layout.scenes if s.delegation]
    assert len(drift) == len(deleg) * len(sweep.layout.conditions)
    for d in drift:
        assert d.drift_detected == (d.expands is not None), d
    # narrowing chains were measured, and were limited to A* with the gate on
    assert any(c.delegated for c in sweep.result.chains)
    for cond in sweep.layout.conditions:
        rows = [r for r in ledger_rows(sweep.layout, cond.org) if r["kind"] == "drift"]
        assert len(rows) == sum(1 for s in deleg if s.delegation.expands)


def test_session_firewall_refuses_a_sequence_that_exceeds_the_session_limits(sweep):
    """Ko et al.'s context bypass: each request is acceptable alone, together they exceed the caps."""
    org = sweep.layout.conditions[0].org
    scene = next(s for s in sweep.layout.scenes if s.id == FIREWALL_SCENE)
    fields = list(scene.record)  # 6 fields, all in the probe purpose's MNI; max_fields = 4

    async def go():
        async with AgentClient.from_wallet(sweep.layout.wallets["seeker"]) as c:

            async def ask(s, fs):
                try:
                    r = await c.request(
                        s,
                        contract_id=FIREWALL_CONTRACT,
                        purpose=FIREWALL_PURPOSE,
                        resource=scene.id,
                        subject="s-1",
                        fields=fs,
                    )
                    return r.decision
                except FederationError as err:
                    return err.reason

            s1 = await c.open_session(org)
            by_fields = [await ask(s1, fields[0:2]), await ask(s1, fields[2:4]), await ask(s1, fields[4:6])]
            alone = await ask(await c.open_session(org), fields[4:6])
            s3 = await c.open_session(org)
            by_count = [await ask(s3, fields[0:1]) for _ in range(5)]
            return by_fields, alone, by_count

    by_fields, alone, by_count = asyncio.run(go())
    assert by_fields == ["allow", "allow", "SESSION_LIMIT"]
    assert alone == "allow"
    assert by_count == ["allow"] * 4 + ["SESSION_LIMIT"]


def test_published_curves_give_the_ad_of_the_papers_definition():
    """AD of the calibration curves, by policy.measures, against exact fractions."""
    cal = load_calibration()
    expected = {
        # population variance of (0.05, 0.22, 0.71) and (0.05, 0.34, 0.41)
        "llama3-8b-agentscope": Fraction(7046, 90000),
        "gpt-agentscope": Fraction(2186, 90000),
    }
    for name, ad in expected.items():
        got = authorization_drift(dict(zip(TAUS, cal[name].oer, strict=True)))
        assert got == pytest.approx(float(ad), abs=1e-12)
