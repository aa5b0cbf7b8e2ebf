"""Policy decision benchmark: embedded regopy engine vs a bare regopy query.

Measures, in one run and on one contract set, the same decision three ways:

* ``bare_query``  — the compiled bundle of the Accord policy queried with a
  prepared input document (``RegopyEngine.evaluate_raw``): the floor;
* ``decide``      — the full decision path (input parsing/JCS digest, query,
  result checks, Decision record) without cache;
* ``decide_cached`` — the full path with the decision cache (repeated input).

Targets: ``decide`` p50 ≤ 1.5 × ``bare_query`` p50; ``decide_cached`` p50 < 50 µs.

Run: ``python -m benchmarks.bench_policy [--seconds 2] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policy import Contract, DecisionInput, RegopyEngine

CONTRACT_FILE = Path(__file__).resolve().parent.parent / "tests" / "policy" / "data" / "hospital.yaml"


def _input() -> DecisionInput:
    return DecisionInput(
        contract_id="urn:accord:contract:hospital-research",
        purpose="research",
        requester_org="did:web:lab-b.example",
        provider_org="did:web:hospital-a.example",
        requester_agent="did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        agent_claims={"org": "did:web:lab-b.example", "scopes": ["data:read"], "role": "analyst"},
        requested_fields=("patient.age", "patient.diagnosis", "patient.sex", "patient.zip3", "x.y"),
        effective_trust=0.7,
        budget_used=0.1,
        session={"requests": 3, "fields_released": 12, "denials": 0},
        now=datetime(2026, 6, 1, 12, tzinfo=UTC),
        resource="cohort",
        subject="*",
    )


def _measure(fn: Callable[[], Any], seconds: float) -> dict[str, float]:
    for _ in range(20):  # warm-up
        fn()
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1000.0)
    samples.sort()
    n = len(samples)
    return {
        "n": n,
        "per_second": n / (sum(samples) / 1e6),
        "p50_us": samples[n // 2],
        "p99_us": samples[min(n - 1, int(n * 0.99))],
        "mean_us": statistics.fmean(samples),
    }


def run(*, seconds: float = 2.0, json_output: bool = False) -> dict[str, Any]:
    """Run the benchmark for about ``seconds`` in total; return (and print) the figures.

    Returns:
        ``{"bare_query": stats, "decide": stats, "decide_cached": stats,
        "ratio_decide_to_bare_p50": float, "targets": {...: bool}}`` where
        stats = ``{"n", "per_second", "p50_us", "p99_us", "mean_us"}``.
    """
    contract = Contract.load(CONTRACT_FILE)
    inp = _input()
    plain = RegopyEngine()
    plain.load([contract])
    cached = RegopyEngine(cache_size=1024)
    cached.load([contract])
    rego_input = inp.to_rego_input()
    assert plain.decide(inp).allow and cached.decide(inp).allow
    part = seconds / 3
    result: dict[str, Any] = {
        "bare_query": _measure(lambda: plain.evaluate_raw(rego_input), part),
        "decide": _measure(lambda: plain.decide(inp), part),
        "decide_cached": _measure(lambda: cached.decide(inp), part),
    }
    ratio = result["decide"]["p50_us"] / result["bare_query"]["p50_us"]
    result["ratio_decide_to_bare_p50"] = ratio
    result["targets"] = {
        "decide_within_1.5x_bare": ratio <= 1.5,
        "cached_under_50us": result["decide_cached"]["p50_us"] < 50.0,
    }
    assert plain.stats.failures == 0 and cached.stats.failures == 0
    if json_output:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'path':<15}{'decisions/s':>13}{'p50 µs':>10}{'p99 µs':>10}{'n':>8}")
        for k in ("bare_query", "decide", "decide_cached"):
            s = result[k]
            print(f"{k:<15}{s['per_second']:>13.0f}{s['p50_us']:>10.1f}{s['p99_us']:>10.1f}{s['n']:>8}")
        print(f"decide/bare p50 ratio: {ratio:.3f}  targets: {result['targets']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    run(seconds=a.seconds, json_output=a.json)


if __name__ == "__main__":
    main()
