"""Ledger benchmark: append throughput (single and batched, next to a raw insert of the
same rows), integration time and memory, and proof latency at a large tree size.

Run: ``python benchmarks/bench_ledger.py [--entries N] [--database-url URL] [--json]``.
The default builds a 1,000,000-entry tree (a few minutes on 2 cores); use
``--entries 100000`` for a quick run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from ledger import DisclosureEntry, NoteSigner, TransparencyLog, leaf_hash
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.storage import schema

ORIGIN = "bench.accord.example/log"


def _entry(i: int) -> DisclosureEntry:
    return DisclosureEntry(
        kind="disclosure",
        disclosure_id=f"bench-{i:09d}",
        time="2026-11-21T05:00:00Z",
        provider_org="did:web:provider.example",
        requester_org=f"did:web:requester{i % 7}.example",
        requester_agent=f"did:key:z6MkAgent{i % 101}",
        contract_id=f"contract-{i % 13}",
        contract_hash="ab" * 32,
        purpose="care-coordination",
        fields_requested=["name", "diagnosis", "zip"],
        fields_released=["diagnosis"],
        fields_stripped=["name"],
        record_count=1,
        decision="allow",
        decision_hash="cd" * 32,
        request_digest="01" * 32,
        response_digest="02" * 32,
        effective_trust=0.75,
    )


def _raw_rows(entries: list[DisclosureEntry], first: int) -> tuple[list[dict], list[dict]]:
    rows, fields = [], []
    for k, e in enumerate(entries):
        data = e.canonical_bytes()
        idx = first + k
        rows.append(
            {
                "idx": idx,
                "disclosure_id": e.disclosure_id,
                "leaf_hash": leaf_hash(data),
                "data": data,
                "sequenced_at_us": 0,
                "kind": e.kind,
                "time_us": 0,
                "provider_org": e.provider_org,
                "requester_org": e.requester_org,
                "requester_agent": e.requester_agent,
                "provider_agent": e.provider_agent,
                "contract_id": e.contract_id,
                "purpose": e.purpose,
                "decision": e.decision,
            }
        )
        for role, names in enumerate((e.fields_requested, e.fields_released, e.fields_stripped)):
            for f in dict.fromkeys(names):
                fields.append({"idx": idx, "role": role, "field": f})
    return rows, fields


def _copy_table(table: sa.Table, meta: sa.MetaData, name: str) -> sa.Table:
    """Same columns, constraints and indexes as ``table`` (the raw-insert baseline)."""
    cols = [c._copy() for c in table.columns]
    new = sa.Table(name, meta, *cols)
    for ix in table.indexes:
        sa.Index(f"{name}_{ix.name}", *[new.c[c.name] for c in ix.columns])
    return new


def _percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "median_ms": round(statistics.median(s) * 1e3, 4),
        "p99_ms": round(s[int(len(s) * 0.99) - 1] * 1e3, 4),
        "max_ms": round(s[-1] * 1e3, 4),
    }


def run(
    *,
    database_url: str | None = None,
    entries: int = 1_000_000,
    batch: int = 1000,
    throughput_rows: int = 20_000,
    single_appends: int = 300,
    proof_samples: int = 1000,
    json_output: bool = False,
) -> dict:
    """Run the benchmark and return (and print) the figures.

    Args:
        database_url: SQLAlchemy URL; default a fresh temporary SQLite file.
        entries: Tree size to build for the proof-latency measurement.
        batch: Entries per batched ``append`` (and per raw-insert transaction).
        throughput_rows: Rows used for the batched-vs-raw throughput comparison.
        single_appends: Number of one-entry appends timed.
        proof_samples: Proofs timed per proof kind.
        json_output: Print JSON instead of a table.
    """
    tmp = None
    if database_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="accord-bench-")
        database_url = f"sqlite:///{Path(tmp.name) / 'ledger.db'}"
    signer = NoteSigner(ORIGIN, bytes(range(32)))
    log = TransparencyLog.open(database_url, origin=ORIGIN, signer=signer)
    if log.size():
        raise SystemExit("the benchmark needs an empty ledger database")
    engine = log.store.engine
    raw_meta = sa.MetaData()
    raw_entries = _copy_table(schema.entries, raw_meta, "bench_raw_entries")
    raw_fields = _copy_table(schema.entry_fields, raw_meta, "bench_raw_entry_fields")
    raw_meta.create_all(engine)
    out: dict = {"database": engine.dialect.name, "entries": entries, "batch": batch}
    next_id = 0
    try:
        # 1. One-by-one appends (each one a durable commit).
        t0 = time.perf_counter()
        for _ in range(single_appends):
            log.append([_entry(next_id)])
            next_id += 1
        out["append_single_per_s"] = round(single_appends / (time.perf_counter() - t0), 1)

        # 2. Batched appends vs a raw SQLAlchemy insert of the same rows.
        n = min(throughput_rows, max(entries - next_id, batch))
        payload = [_entry(next_id + i) for i in range(n)]
        batches = [_raw_rows(payload[i : i + batch], next_id + i) for i in range(0, n, batch)]
        # Interleave the two so WAL checkpoints and cache state hit both alike.
        t_append = t_raw = 0.0
        for k, (rows, fields) in enumerate(batches):
            t0 = time.perf_counter()
            log.append(payload[k * batch : (k + 1) * batch])
            t1 = time.perf_counter()
            with engine.begin() as conn:  # same rows, same transaction size, nothing else
                conn.execute(sa.insert(raw_entries), rows)
                conn.execute(sa.insert(raw_fields), fields)
            t2 = time.perf_counter()
            t_append += t1 - t0
            t_raw += t2 - t1
        next_id += n
        out["append_batched_per_s"] = round(n / t_append, 1)
        out["raw_insert_per_s"] = round(n / t_raw, 1)
        out["batched_vs_raw"] = round(t_raw / t_append, 3)

        # 3. Fill up to `entries`, integrate in batches; time and memory.
        t0 = time.perf_counter()
        while next_id < entries:
            k = min(5000, entries - next_id)
            log.append([_entry(next_id + i) for i in range(k)])
            next_id += k
        out["fill_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        signed = log.integrate()
        out["integrate_s"] = round(time.perf_counter() - t0, 2)
        out["integrate_per_s"] = round(entries / max(out["integrate_s"], 1e-9), 1)
        out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        size, root = signed.checkpoint.size, signed.checkpoint.root

        # 4. Proof latency at `entries` (each call: one read transaction, one node query).
        rng = random.Random(7)
        lat, vlat = [], []
        for _ in range(proof_samples):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            proof = log.inclusion_proof(i, size)
            lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            verify_inclusion(i, size, leaf_hash(_entry(i).canonical_bytes()), proof, root)
            vlat.append(time.perf_counter() - t0)
        out["inclusion_proof"] = _percentiles(lat)
        out["inclusion_verify"] = _percentiles(vlat)
        clat = []
        for _ in range(proof_samples):
            m = rng.randrange(1, size)
            t0 = time.perf_counter()
            log.consistency_proof(m, size)
            clat.append(time.perf_counter() - t0)
        out["consistency_proof"] = _percentiles(clat)
        m = size // 3
        old = log.consistency_proof(m, m)  # noqa: F841 - equal sizes: empty proof
        rlat = []
        for _ in range(min(proof_samples, 200)):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            log.receipt(i)
            rlat.append(time.perf_counter() - t0)
        out["receipt"] = _percentiles(rlat)
        verify_consistency(size, size, root, root, [])
        out["targets"] = {
            "batched_at_least_half_raw": out["batched_vs_raw"] >= 0.5,
            "proof_under_1ms_median": out["inclusion_proof"]["median_ms"] < 1.0,
        }
    finally:
        raw_meta.drop_all(engine)
        log.close()
        if tmp is not None:
            tmp.cleanup()
    if json_output:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:24} {v}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=None)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--proof-samples", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    run(
        database_url=a.database_url,
        entries=a.entries,
        batch=a.batch,
        proof_samples=a.proof_samples,
        json_output=a.json,
    )


if __name__ == "__main__":
    main()
