"""TVP provider agent models (pure parts) and their registration in the node's model table."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.provider_agents import load_provider_agent
from interop_tests.tvp.agents import (
    AdversarialAgent,
    LlmAgent,
    StochasticAgent,
    interpolate,
    load_calibration,
)

pytestmark = pytest.mark.xdist_group("tvp")

RECORDS = [{"id": "r1", "a": 1, "secret": "x"}, {"id": "r2", "a": 2, "secret": "y"}]
MNI = frozenset({"id", "a"})


def test_specs_resolve_through_the_node_loader():
    assert isinstance(load_provider_agent("stochastic:gpt-agentscope@3"), StochasticAgent)
    assert isinstance(load_provider_agent("adversarial"), AdversarialAgent)
    assert isinstance(load_provider_agent("llm:http://127.0.0.1:9/v1"), LlmAgent)
    with pytest.raises(ValueError):
        load_provider_agent("stochastic:no-such-backend")


def test_interpolation_hits_the_published_points_and_is_linear_between():
    curve = load_calibration()["llama3-8b-agentscope"].oer
    assert curve == (0.05, 0.22, 0.71)
    assert [interpolate(curve, t) for t in (0.0, 0.1, 0.5, 0.9, 1.0)] == [0.05, 0.05, 0.22, 0.71, 0.71]
    assert interpolate(curve, 0.3) == pytest.approx((0.05 + 0.22) / 2)


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_overshare_probability_is_monotone_in_tau_for_rising_curves(t1, t2):
    agent = StochasticAgent("gpt-agentscope")
    lo, hi = sorted((t1, t2))
    assert agent.p_overshare(lo) <= agent.p_overshare(hi) + 1e-12


def test_stochastic_agent_frequency_matches_the_curve_and_always_offers_a_star():
    agent = StochasticAgent("llama3-8b-agentscope", seed=1)
    n, over = 2000, 0
    for _ in range(n):
        offered = agent.offer(
            records=RECORDS, requested=("id", "a", "secret"), mni=MNI, tau=0.9, rng=random.Random()
        )
        assert all(MNI <= set(r) for r in offered)
        over += any("secret" in r for r in offered)
    assert abs(over / n - 0.71) < 0.04


def test_same_seed_same_offers():
    a, b = StochasticAgent("gpt-agentscope", seed=5), StochasticAgent("gpt-agentscope", seed=5)
    kw = {"records": RECORDS, "requested": ("id",), "mni": MNI, "tau": 0.5}
    assert [a.offer(**kw, rng=random.Random()) for _ in range(50)] == [
        b.offer(**kw, rng=random.Random()) for _ in range(50)
    ]


def test_adversarial_agent_offers_everything():
    out = AdversarialAgent().offer(records=RECORDS, requested=("id",), mni=MNI, tau=0.1, rng=random.Random())
    assert out == RECORDS and out[0] is not RECORDS[0]


def test_llm_prompt_and_answer_parsing():
    msgs = LlmAgent.prompt(RECORDS[0], ("id", "a"), 0.9)
    assert msgs[0]["role"] == "system" and "0.9" in msgs[0]["content"]
    assert '"secret": "x"' in msgs[1]["content"] and "id, a" in msgs[1]["content"]
    assert LlmAgent.parse('Sure: ["id", "secret", "ghost"]', RECORDS[0]) == {"id", "secret"}
    with pytest.raises(ValueError):
        LlmAgent.parse("I will not share anything.", RECORDS[0])
    with pytest.raises(ValueError):
        LlmAgent("ftp://x")


def test_llm_agent_falls_back_to_a_star_when_the_endpoint_is_unreachable():
    agent = LlmAgent("http://127.0.0.1:9/v1", timeout_seconds=0.5)  # port 9 (discard): refused locally
    out = agent.offer(records=RECORDS, requested=("id", "a", "secret"), mni=MNI, tau=0.9, rng=random.Random())
    assert all(set(r) == MNI for r in out)


def test_tvp_cli_lists_the_scenes():
    import json

    from typer.testing import CliRunner

    from federation.cli.tvp import app

    r = CliRunner().invoke(app, ["scenes", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 19 and {r["macro"] for r in rows} == {"enterprise", "archaeology", "mars"}
    assert sum(1 for r in rows if r["delegation"] and r["delegation"]["expands"]) == 3


def test_paradox_agent_under_shares_at_low_tau_and_over_shares_at_high_tau():
    from interop_tests.tvp.agents import ParadoxAgent

    def rates(tau, **kw):
        agent = ParadoxAgent("llama3-8b-agentscope", seed=2, **kw)
        n, complete, over = 2000, 0, 0
        for _ in range(n):
            (r,) = agent.offer(
                records=RECORDS[:1], requested=("id", "a", "secret"), mni=MNI, tau=tau, rng=None
            )
            complete += MNI <= set(r)
            over += "secret" in r
            assert set(r) <= {"id", "a", "secret"} and (len(set(r) & MNI) >= 1)
        return complete / n, over / n

    low, high = rates(0.1), rates(0.9)
    # complete = p_over + (1 - p_over) * p_complete: 0.05 + 0.95 * 0.40 and 0.71 + 0.29 * 0.95
    assert abs(low[0] - 0.43) < 0.04 and abs(high[0] - 0.9855) < 0.02
    assert abs(low[1] - 0.05) < 0.02 and abs(high[1] - 0.71) < 0.04
    # ~0.9: the agent acts at 0.9 whatever the contract's τ
    assert rates(0.1, agent_tau=0.9) == high
    with pytest.raises(ValueError):
        ParadoxAgent("llama3-8b-agentscope", agent_tau=1.5)


def test_guardian_catches_some_over_sharing_and_wrongly_blocks_some_benign_offers():
    from interop_tests.tvp.agents import GuardianAgent

    over = GuardianAgent(AdversarialAgent(), catch=0.4, false_block=0.0, seed="g")
    kept = [
        "secret" in over.offer(records=RECORDS[:1], requested=("id",), mni=MNI, tau=0.9, rng=None)[0]
        for _ in range(2000)
    ]
    assert abs(1 - sum(kept) / len(kept) - 0.4) < 0.04 and over.reviews == 2000

    class Exact:
        name = "exact"

        def offer(self, *, records, requested, mni, tau, rng):
            return [{k: v for k, v in r.items() if k in mni} for r in records]

    benign = GuardianAgent(Exact(), catch=1.0, false_block=0.05, seed="g")
    cut = [
        not MNI <= set(benign.offer(records=RECORDS, requested=("id",), mni=MNI, tau=0.9, rng=None)[0])
        for _ in range(2000)
    ]
    assert abs(sum(cut) / len(cut) - 0.05) < 0.02
    # seeded: the same guardian seed reviews the same offers the same way
    a, b = (GuardianAgent(AdversarialAgent(), catch=0.4, false_block=0.1, seed="s") for _ in range(2))
    kw = {"records": RECORDS, "requested": ("id",), "mni": MNI, "tau": 0.9, "rng": None}
    assert [a.offer(**kw) for _ in range(200)] == [b.offer(**kw) for _ in range(200)]


def test_paradox_and_guardian_specs_resolve_through_the_node_loader():
    from interop_tests.tvp.agents import GuardianAgent, ParadoxAgent

    p = load_provider_agent("paradox:gpt-agentscope@3~0.9")
    assert isinstance(p, ParadoxAgent) and p.agent_tau == 0.9
    g = load_provider_agent("guardian:paradox:gpt-agentscope@3")
    assert isinstance(g, GuardianAgent) and isinstance(g.inner, ParadoxAgent) and g.inner.agent_tau is None
    for bad in ("guardian:", "guardian:guardian:adversarial", "paradox:nope@1"):
        with pytest.raises(ValueError):
            load_provider_agent(bad)


def test_tvp_sweep_halves_refuses_model_with_one_line():
    from typer.testing import CliRunner

    from federation.cli.tvp import app

    r = CliRunner().invoke(app, ["sweep", "--halves", "--model", "adversarial"])
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0 and "--backend" in r.output
