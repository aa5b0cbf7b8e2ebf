"""Screening benchmark: corpus precision/recall per detector, throughput, added latency per exchange.

In one run:

1. **Corpus** (``interop_tests/corpus/screening.jsonl``, labelled by hand,
   see its README): for each detector — personal data (presidio), injection
   rules, injection embedding, injection combined (rules or embedding) —
   precision, recall and the false-positive rate on the benign texts.
2. **Throughput**: uncached screenings per second of 1 KB texts (all
   detectors), each text distinct.
3. **Added latency per exchange**: the provider's content step for one
   record with 1 KB of free text — MNI gate, typed-value check and the
   screening verdict (digest-keyed cache, as in a node where the value was
   screened once) — against the same exchange step with screening off, p50
   and p99, interleaved in the same run. Target: < 5 ms added at p50.

Run: ``accord bench screening [--seconds 3] [--json]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from policy.contract import ContentControls
from policy.gate import apply_gate
from policy.screening import Screener

CORPUS = Path(__file__).resolve().parent.parent / "interop_tests" / "corpus" / "screening.jsonl"


def load_corpus(path: Path = CORPUS) -> list[dict[str, str]]:
    """Rows ``{"id", "label", "motif", "text"}``; label ``benign`` | ``injection`` | ``pii``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _score(rows: list[dict[str, str]], predicted: dict[str, bool], positive: str) -> dict[str, Any]:
    """Precision/recall over rows labelled ``positive`` or ``benign``; FPR on benign rows."""
    tp = sum(1 for r in rows if r["label"] == positive and predicted[r["id"]])
    fn = sum(1 for r in rows if r["label"] == positive and not predicted[r["id"]])
    fp = sum(1 for r in rows if r["label"] == "benign" and predicted[r["id"]])
    tn = sum(1 for r in rows if r["label"] == "benign" and not predicted[r["id"]])
    return {
        "positives": tp + fn,
        "benign": fp + tn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
        "fpr_benign": round(fp / (fp + tn), 3) if fp + tn else 0.0,
        "missed": [r["id"] for r in rows if r["label"] == positive and not predicted[r["id"]]],
        "false_alarms": [r["id"] for r in rows if r["label"] == "benign" and predicted[r["id"]]],
    }


def evaluate(screener: Screener, rows: list[dict[str, str]]) -> dict[str, Any]:
    """Per-detector precision, recall and benign false-positive rate on ``rows``."""
    from policy.screening.injection import EmbeddingDetector

    verdicts = {r["id"]: screener.screen(r["text"]) for r in rows}
    pd = {k: bool(v.personal_data) for k, v in verdicts.items()}
    rules = {k: bool(v.injection_rules) for k, v in verdicts.items()}
    emb = {
        k: v.injection_margin is not None
        and EmbeddingDetector.flags(v.injection_margin, v.injection_similarity or 0.0)
        for k, v in verdicts.items()
    }
    comb = {k: v.injection for k, v in verdicts.items()}
    by_motif: dict[str, list[int]] = {}
    for r in rows:
        if r["label"] == "injection":
            hit = by_motif.setdefault(r["motif"], [0, 0])
            hit[0] += int(comb[r["id"]])
            hit[1] += 1
    return {
        "rows": len(rows),
        "detectors": screener.detectors,
        "personal_data": _score(rows, pd, "pii"),
        "injection_rules": _score(rows, rules, "injection"),
        "injection_embedding": _score(rows, emb, "injection"),
        "injection_combined": _score(rows, comb, "injection"),
        "recall_by_motif": {m: f"{a}/{b}" for m, (a, b) in sorted(by_motif.items())},
    }


def _kb_text(i: int) -> str:
    base = (
        f"Shift report {i}: ward 3 received two transfers from the field hospital; both stable on arrival. "
        "Wound care supplies are low; order gauze, saline and dressings for the weekend. "
        "The generator was tested at noon and runs for eighteen hours on the current fuel. "
    )
    return (base * 8)[:1024]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(*, seconds: float = 3.0, json_output: bool = False) -> dict[str, Any]:
    """Run the three parts; print a table (or JSON) and return the figures."""
    t0 = time.perf_counter()
    screener = Screener()
    screener.load()
    load_s = time.perf_counter() - t0
    out: dict[str, Any] = {"model_load_seconds": round(load_s, 2)}
    out["corpus"] = evaluate(screener, load_corpus())

    # throughput: distinct 1 KB texts, uncached
    n, t1 = 0, time.perf_counter()
    while time.perf_counter() - t1 < seconds or n < 5:
        screener.screen(_kb_text(10_000 + n))
        n += 1
    out["throughput_per_second_1kb_uncached"] = round(n / (time.perf_counter() - t1), 2)

    # added latency per exchange: the provider's content step, screening on vs off, interleaved
    content = ContentControls.model_validate(
        {
            "fields": {
                "notes": {"type": "string", "free_text": True, "max_length": 2000},
                "triage_level": {"type": "enum", "values": ["green", "yellow", "red"]},
            }
        }
    )
    record = {"patient_id": "p-1", "triage_level": "red", "notes": _kb_text(1), "name": "x", "diagnosis": "y"}
    released = ("patient_id", "triage_level", "notes")
    screener.screen(record["notes"])  # screened once, as a node does on the first exchange

    class _C:  # the only attribute provider_controls reads
        pass

    holder = _C()
    holder.content = content  # type: ignore[attr-defined]
    from federation.content import provider_controls
    from federation.domain import payload_bytes

    async def step(screen: bool) -> float:
        s = time.perf_counter_ns()
        gate = apply_gate([dict(record)], released)
        payload = gate.payload
        if screen:
            payload = (await provider_controls(payload, holder, screener)).payload  # type: ignore[arg-type]
        payload_bytes(payload)
        return (time.perf_counter_ns() - s) / 1e6

    async def measure() -> tuple[list[float], list[float]]:
        on: list[float] = []
        off: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            off.append(await step(False))
            on.append(await step(True))
        return on, off

    on, off = asyncio.run(measure())
    out["exchange_step_ms"] = {
        "screening_off": {"p50": round(statistics.median(off), 4), "p99": round(_pct(off, 0.99), 4)},
        "screening_on": {"p50": round(statistics.median(on), 4), "p99": round(_pct(on, 0.99), 4)},
        "added_p50": round(statistics.median(on) - statistics.median(off), 4),
        "added_p99": round(_pct(on, 0.99) - _pct(off, 0.99), 4),
        "samples": len(on),
        "target_added_p50_ms": 5.0,
    }
    out["cache"] = {"hits": screener.hits, "misses": screener.misses}
    if json_output:
        print(json.dumps(out, indent=2))
        return out
    c = out["corpus"]
    print(f"screening detectors: {c['detectors']}  (model load {out['model_load_seconds']} s)")
    print(f"corpus: {c['rows']} texts ({CORPUS.name})")
    print(f"{'detector':22} {'P':>6} {'R':>6} {'FPR(benign)':>12} {'TP':>4} {'FP':>4} {'FN':>4}")
    for name in ("personal_data", "injection_rules", "injection_embedding", "injection_combined"):
        s = c[name]
        print(
            f"{name:22} {s['precision']:6.3f} {s['recall']:6.3f} {s['fpr_benign']:12.3f} "
            f"{s['tp']:4} {s['fp']:4} {s['fn']:4}"
        )
    print("injection recall by motif (combined):", c["recall_by_motif"])
    print(
        f"throughput: {out['throughput_per_second_1kb_uncached']} screenings/s (1 KB, uncached, all detectors)"  # noqa: E501
    )
    e = out["exchange_step_ms"]
    print(
        f"exchange step, 1 KB free text: off p50 {e['screening_off']['p50']} ms p99 {e['screening_off']['p99']} ms"  # noqa: E501
        f" | on p50 {e['screening_on']['p50']} ms p99 {e['screening_on']['p99']} ms"
        f" | added p50 {e['added_p50']} ms p99 {e['added_p99']} ms (target < 5 ms p50; {e['samples']} samples)"  # noqa: E501
    )
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    run(seconds=a.seconds, json_output=a.json)
