"""The auditing benchmark runs end to end (quick sizes) and its figures make sense."""

from __future__ import annotations

import json

from benchmarks.bench_audit import disclosed, run


def test_quick_benchmark(tmp_path, capsys):
    png = tmp_path / "audit.png"
    res = run(quick=True, json_output=True, plot_path=str(png))
    out = json.loads(capsys.readouterr().out)
    assert out["attacks"]["stopped_share_all"]["auditor"] == 1.0
    # the classic size restriction does not stop trackers / differencing
    assert out["attacks"]["stopped_share_all"]["size"] < 0.5
    # overlap restriction stops attacks but denies most benign analytics
    assert out["benign"]["denied_share"]["overlap"] > 0.5
    assert out["benign"]["denied_share"]["auditor"] < 0.05
    assert res["benign"]["median_ms"] > 0 and res["random_subsets"]["answered"] > 0
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(res["targets"]) and "curve" not in out["benign"]


def test_disclosure_oracle():
    import numpy as np

    assert disclosed([np.array([0, 1, 2]), np.array([1, 2])]) == 1
    assert disclosed([np.array([0, 1]), np.array([2, 3])]) == 0
