"""``bench_trust_sweep.run`` on real nodes (small): JSON rows, tables, PNG."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.xdist_group("tvp")

KEYS = {
    "scene",
    "tau",
    "gate",
    "agent_model",
    "chains",
    "task_success",
    "attempted_oer",
    "released_oer",
    "ad",
}


def test_trust_sweep_json_rows_and_plot(tmp_path, capsys):
    from benchmarks.bench_trust_sweep import run

    png = tmp_path / "sweep.png"
    rows = run(
        chains_per_scene=1,
        json_output=True,
        plot_path=png,
        models=("adversarial",),
        work_dir=tmp_path / "work",
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == rows
    assert all(set(r) == KEYS for r in rows)
    assert {r["scene"] for r in rows} == {"enterprise", "archaeology", "mars", "all"}
    assert {(r["tau"], r["gate"]) for r in rows if r["scene"] == "all"} == {
        (t, g) for t in (0.1, 0.5, 0.9) for g in ("on", "off")
    }
    overall = {r["gate"]: r for r in rows if r["scene"] == "all" and r["tau"] == 0.9}
    assert overall["on"]["released_oer"] == 0.0 and overall["off"]["released_oer"] == 1.0
    assert overall["on"]["chains"] == 16  # 19 sub-scenes minus the 3 drift chains, 1 chain each
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_trust_sweep_tables(tmp_path, capsys):
    from benchmarks.bench_trust_sweep import run

    run(
        chains_per_scene=1,
        json_output=False,
        plot_path=tmp_path / "p.png",
        models=("adversarial",),
        work_dir=tmp_path / "work",
    )
    out = capsys.readouterr().out
    for title in (
        "Enterprise collaboration",
        "Deep-sea archaeology",
        "Mars colony",
        "All 19 sub-scenes",
        "Authorization Drift detection",
    ):
        assert title in out
