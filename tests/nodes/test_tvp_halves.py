"""Both halves of the TVP on real nodes: task success and OER per τ, Accord's gate, the paper's defenses.

One federation (a requester and five provider nodes: no gate, gate with the
agent at the contract's τ, Accord = gate with the agent collaborating fully,
k-of-n repartitioning, guardian agent) runs the 14 non-delegation sub-scenes
at τ ∈ {0.1, 0.5, 0.9}, 2 chains each, in one module fixture. Every figure is
computed from what the requester received. The agents are seeded, so the
figures are deterministic; the tolerances below are stated where used.

Cost (2026-12-04, 2 cores shared with other sessions, load average 8.7): 75 s of
wall time; CPU ≈ 45 s in all (node processes 12 s to start and 11 s to serve,
the test process ~22 s), so about 25–35 s on an idle 2-core machine.
"""

from __future__ import annotations

import asyncio

import pytest

from interop_tests.tvp.paradox import (
    ROWS,
    approvals_per_1000,
    provision_halves,
    run_halves,
    summarize_halves,
)
from interop_tests.tvp.runner import TAUS, TvpFederation
from interop_tests.tvp.sharing import ShareError, parse

pytestmark = pytest.mark.xdist_group("tvp")

CHAINS = 2
#: Accord's task success at any τ may trail the no-gate task success at τ = 0.9 by at most this
#: (both are ~0.96-0.99 in expectation; 28 chains per point)
TOLERANCE = 0.1


class _Run:
    pass


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    layout = provision_halves(tmp_path_factory.mktemp("tvp-halves"))
    with TvpFederation(layout):
        result = asyncio.run(run_halves(layout, chains_per_scene=CHAINS))
    out = _Run()
    out.layout, out.result = layout, result
    out.rows = {(r["row"], r["tau"]): r for r in summarize_halves(result.chains)}
    out.approvals = {a["tau"]: a for a in approvals_per_1000(result.approvals)}
    return out


def _chains(h, row, tau=None):
    return [c for c in h.result.chains if c.row == row and (tau is None or c.tau == tau)]


def test_every_row_ran_every_chain_at_the_contract_tau(halves):
    per_tau = len(halves.layout.scenes) * CHAINS
    assert {r for r, _ in halves.rows} == set(ROWS)
    for (row, tau), r in halves.rows.items():
        assert r["chains"] == per_tau and r["denied"] == 0, (row, tau)
    assert all(c.effective_tau == pytest.approx(c.tau) for c in halves.result.chains)


def test_without_the_gate_task_success_and_exposure_both_rise_with_tau(halves):
    ts = [halves.rows["none", t]["task_success"] for t in TAUS]
    oer = [halves.rows["none", t]["oer"] for t in TAUS]
    assert ts[0] < ts[1] < ts[2] and ts[2] - ts[0] > 0.3, ts
    assert oer[0] <= oer[1] < oer[2] and oer[2] > 0.5, oer
    assert halves.rows["none", 0.9]["ad"] > 0.05


def test_accord_gives_high_trust_task_success_at_no_exposure(halves):
    best_off = halves.rows["none", 0.9]["task_success"]
    for tau in TAUS:
        on, off = halves.rows["accord", tau], halves.rows["none", tau]
        assert on["oer"] == 0.0 and on["oer"] <= off["oer"]
        assert on["task_success"] >= best_off - TOLERANCE, (tau, on["task_success"], best_off)
        assert on["task_success"] >= off["task_success"]
        assert on["attempted_oer"] > 0.5  # the agent did offer beyond A*; the gate stripped it
    assert halves.rows["accord", 0.1]["ad"] == 0.0


def test_the_gate_alone_removes_exposure_but_cannot_add_what_the_agent_withheld(halves):
    """Same seed, same request order: the ``gate`` node's agent made the ``none`` node's offers."""
    for tau in TAUS:
        gate, none = _chains(halves, "gate", tau), _chains(halves, "none", tau)
        assert [c.offered for c in gate] == [c.offered for c in none]
        assert [c.task_success for c in gate] == [c.task_success for c in none]
        assert all(not c.exposed and c.received <= c.a_star for c in gate)
    assert halves.rows["gate", 0.1]["task_success"] < halves.rows["accord", 0.1]["task_success"]


def test_guardian_cuts_some_exposure_chain_by_chain_but_not_all(halves):
    for tau in TAUS:
        g, none = _chains(halves, "guardian", tau), _chains(halves, "none", tau)
        assert all(a.exposed <= b.exposed for a, b in zip(g, none, strict=True)), tau
    assert 0.0 < halves.rows["guardian", 0.9]["oer"] < halves.rows["none", 0.9]["oer"]
    assert halves.rows["guardian", 0.9]["messages_per_chain"] == 2.0  # request + review


def test_repartitioning_exposes_only_values_reconstructed_from_k_shares(halves):
    n, k = halves.result.n, halves.result.k
    assert (n, k) == (3, 2)
    chains = _chains(halves, "repartition")
    assert all(c.messages == n for c in chains)
    for c in chains:
        seen = dict(c.shares_seen)
        assert all(seen[f] >= k for f in c.exposed), c
        # what crossed in clear from the primary holder is A* only; the rest are shares
        assert not (c.received - c.a_star) or all(seen[f] >= 1 for f in c.received - c.a_star)
    # reconstruction over the wire did happen at high τ, and a lone share never counted
    assert any(c.exposed for c in chains if c.tau == 0.9)
    assert any(1 <= v < k for c in chains for _, v in c.shares_seen)
    with pytest.raises(ShareError):
        parse("DE89370400440532013000")
    assert halves.rows["repartition", 0.9]["messages_per_chain"] == 3.0


def test_approvals_per_1000_requests_at_each_tau(halves):
    a = halves.approvals
    # τ 0.1 < below_trust 0.3: every request waits; τ 0.5: nothing beyond A* is released, none waits;
    # τ 0.9: the pretext half releases its (optional) bait and waits
    assert [a[t]["held_per_1000"] for t in TAUS] == [1000.0, 0.0, 500.0]
    for t in (0.1, 0.9):
        assert 0 < a[t]["prompts"] < a[t]["held"]  # batching: one prompt per request shape
        assert a[t]["prompts"] == a[t]["held"] // CHAINS


def test_the_plot_and_tables_come_from_the_measured_rows(halves, tmp_path):
    from rich.console import Console

    from benchmarks.bench_tvp_halves import plot, print_tables

    rows = sorted(halves.rows.values(), key=lambda r: (ROWS.index(r["row"]), r["tau"]))
    png = plot(rows, tmp_path / "halves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    console = Console(record=True, width=200)
    report = {
        "rows": rows,
        "approvals": list(halves.approvals.values()),
        "repartitioning": {"n": 3, "k": 2},
    }
    print_tables(report, console)
    text = console.export_text()
    assert "repartitioning (k-of-n shares) 2-of-3" in text and "guardian agent" in text
    assert "Approvals per 1,000 requests" in text
