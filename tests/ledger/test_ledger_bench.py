"""The benchmark script runs end to end on a small tree and reports every figure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ledger.py"


def test_bench_ledger_small_run(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_ledger", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.run(
        database_url=f"sqlite:///{tmp_path / 'b.db'}",
        entries=3000,
        batch=500,
        throughput_rows=1000,
        single_appends=10,
        proof_samples=50,
    )
    assert out["entries"] == 3000
    for key in ("append_single_per_s", "append_batched_per_s", "raw_insert_per_s"):
        assert out[key] > 0
    assert out["inclusion_proof"]["median_ms"] > 0
    assert set(out["targets"]) == {"batched_at_least_half_raw", "proof_under_1ms_median"}
