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


CONTRACT = "relief-hospital-triage"
EXCHANGE_FIELDS = ["patient_id", "triage_level", "mobility", "shelter", "notes"]


def _provision_pair(root: Path) -> Any:
    """Hospital and relief nodes with the triage contract twice: with ``content`` (screened) and without."""
    from federation.demo.setup import _sign_both, provision
    from federation.identity import NodeIdentity

    layout = provision(root, orgs=("hospital", "relief"), with_interop=False)
    idents = {o: NodeIdentity.load(layout.orgs[o]) for o in ("hospital", "relief")}
    path = layout.orgs["hospital"] / "contracts" / f"{CONTRACT}.json"
    doc = {k: v for k, v in json.loads(path.read_text()).items() if k != "signatures"}
    doc["purposes"]["triage-coordination"]["mni"].append("notes")
    plain = _sign_both({**doc, "id": CONTRACT + "-plain"}, idents)
    doc["content"] = {
        "fields": {
            "notes": {"type": "string", "free_text": True, "max_length": 4096},
            "triage_level": {"type": "enum", "values": ["green", "yellow", "red", "black"]},
        }
    }
    screened = _sign_both(doc, idents)
    for org in ("hospital", "relief"):
        screened.dump(layout.orgs[org] / "contracts" / f"{CONTRACT}.json")
        plain.dump(layout.orgs[org] / "contracts" / f"{CONTRACT}-plain.json")
    data = layout.orgs["hospital"] / "data" / "patients.json"
    d = json.loads(data.read_text())
    d["records"]["patient-001"]["notes"] = _kb_text(7)
    data.write_text(json.dumps(d))
    return layout


def exchange_latency(*, seconds: float, load_timeout: float = 900.0) -> dict[str, Any]:
    """Full exchanges between two real node processes, screening on vs off, interleaved in one run.

    The same agent session shape, record (1 KB of free text in ``notes``)
    and fields under two contracts that differ only in ``content``. The
    screened contract's note is screened once per node (then cached).

    Returns:
        p50/p99 (ms) per contract, the added p50/p99, the sample count and
        how long the models took to be ready in the nodes (s).
    """
    import tempfile

    from federation.client import AgentClient
    from federation.supervisor import NodeProcess

    with tempfile.TemporaryDirectory(prefix="accord-bench-screening-") as tmp:
        layout = _provision_pair(Path(tmp))
        procs = [NodeProcess(layout.orgs[o]).start(timeout=600) for o in ("hospital", "relief")]
        try:

            async def go() -> dict[str, Any]:
                async with AgentClient.from_wallet(layout.wallets["relief/triage-coordinator"]) as c:
                    s = await c.open_session("hospital")

                    async def ask(cid: str) -> tuple[float, Any]:
                        t = time.perf_counter()
                        r = await c.request(
                            s,
                            contract_id=cid,
                            purpose="triage-coordination",
                            resource="patients",
                            subject="patient-001",
                            fields=EXCHANGE_FIELDS,
                        )
                        return (time.perf_counter() - t) * 1000.0, r

                    t_ready = time.perf_counter()
                    while True:  # the nodes load the models in the background and fail closed meanwhile
                        _, r = await ask(CONTRACT)
                        if "notes" in r.records[0] and not r.content_labels:
                            break
                        if time.perf_counter() - t_ready > load_timeout:
                            raise RuntimeError("screening models did not load in the nodes")
                        await asyncio.sleep(2)
                    ready = time.perf_counter() - t_ready
                    for _ in range(5):
                        await ask(CONTRACT)
                        await ask(CONTRACT + "-plain")
                    on: list[float] = []
                    off: list[float] = []
                    end = time.perf_counter() + seconds
                    while time.perf_counter() < end:
                        off.append((await ask(CONTRACT + "-plain"))[0])
                        on.append((await ask(CONTRACT))[0])
                    return {"ready_seconds": round(ready, 1), "on": on, "off": off}

            res = asyncio.run(go())
        finally:
            for p in procs:
                p.stop()
    on, off = res["on"], res["off"]
    return {
        "models_ready_seconds": res["ready_seconds"],
        "screening_off": {"p50": round(statistics.median(off), 3), "p99": round(_pct(off, 0.99), 3)},
        "screening_on": {"p50": round(statistics.median(on), 3), "p99": round(_pct(on, 0.99), 3)},
        "added_p50": round(statistics.median(on) - statistics.median(off), 3),
        "added_p99": round(_pct(on, 0.99) - _pct(off, 0.99), 3),
        "samples": len(on),
    }


def run(*, seconds: float = 3.0, json_output: bool = False, exchanges: bool = True) -> dict[str, Any]:
    """Run the parts; print a table (or JSON) and return the figures.

    ``exchanges``: also run full exchanges between two node processes
    (:func:`exchange_latency`, ``seconds`` × 4 of measuring after the models load).
    """
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
    if exchanges:
        import sys

        print(
            "starting two nodes for full exchanges (the models load in each node)…",
            file=sys.stderr,
            flush=True,
        )
        try:
            out["full_exchange_ms"] = exchange_latency(seconds=seconds * 4)
        except RuntimeError as exc:  # e.g. a node that did not start on an overloaded machine
            out["full_exchange_ms"] = {"error": str(exc)[:300]}
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
    if exchanges and "error" in out["full_exchange_ms"]:
        print(f"full exchange: not measured ({out['full_exchange_ms']['error']})")
    elif exchanges:
        x = out["full_exchange_ms"]
        print(
            f"full exchange (2 nodes, mTLS, ledger), 1 KB free text: off p50 {x['screening_off']['p50']} ms "
            f"p99 {x['screening_off']['p99']} ms | on p50 {x['screening_on']['p50']} ms "
            f"p99 {x['screening_on']['p99']} ms | added p50 {x['added_p50']} ms p99 {x['added_p99']} ms "
            f"({x['samples']} pairs; models ready after {x['models_ready_seconds']} s)"
        )
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    run(seconds=a.seconds, json_output=a.json)
