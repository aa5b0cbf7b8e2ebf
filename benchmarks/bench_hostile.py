"""``accord bench hostile``: benign exchange latency with and without a hostile flood, same run.

Three real node processes (relief → supplier for the benign load; the
interop tester's identity as the hostile peer of supplier) over mutual TLS.
Phase 1 measures benign exchanges alone; phase 2 measures them again while
hostile workers flood the supplier node with one input class each:

- ``huge_presentation``: a ~90 KB presentation whose credential carries a
  20,000-value array (pyld's duplicate check is quadratic in it);
- ``deep_presentation``: a presentation nested 5,000 objects deep;
- ``inline_context``: a correctly signed presentation of a real agent whose
  credential appends an inline ``@context`` that renames ``validUntil``;
- ``garbage_presentation``: random bytes as a presentation;
- ``challenge_flood``: challenges asked for and never used;
- ``control_identifiers``: signed requests with a NUL in the purpose;
- ``oversized_aggregate``: an aggregate query with a 50,000-value predicate.

Every hostile call must be refused with a precise status (INVALID_ARGUMENT,
UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION or
RESOURCE_EXHAUSTED); an accepted one, or INTERNAL, fails the run. Target
(issue #10): benign p99 under the flood within 2× of benign p99 without it.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from benchmarks.bench_exchange import _percentile
from credentials.dids import verification_method_id
from federation.client import AgentClient
from federation.demo.setup import provision
from federation.pb import federation_pb2 as pb
from federation.supervisor import NodeProcess
from interop_tests.cases import _reason
from interop_tests.peer import InteropIdentity, MinimalPeer
from interop_tests.security import jcs_secure

FIELDS = ["sku", "name", "stock", "warehouse"]
PRECISE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
CLASSES = (
    "huge_presentation",
    "deep_presentation",
    "inline_context",
    "garbage_presentation",
    "challenge_flood",
    "control_identifiers",
    "oversized_aggregate",
)


def _huge_presentation(ident: InteropIdentity) -> bytes:
    cred = json.loads(json.dumps(ident.agent["credential"]))
    cred["credentialSubject"]["scopes"] = [f"s{i}" for i in range(20_000)]
    vp = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": ident.agent_did,
        "verifiableCredential": [cred],
        "proof": {"challenge": "x", "domain": "y"},
    }
    return json.dumps(vp).encode()


def _deep_presentation(ident: InteropIdentity) -> bytes:
    deep = '{"a":' * 5_000 + "1" + "}" * 5_000
    head = json.dumps({"holder": ident.agent_did, "proof": {"challenge": "x", "domain": "y"}})
    return (head[:-1] + ', "deep": ' + deep + "}").encode()


def _renamed_credential(ident: InteropIdentity) -> dict[str, Any]:
    """The agent's credential with an appended inline context renaming ``validUntil``, re-signed.

    Signed by the tester organization with a spec-written eddsa-jcs-2022 signer
    (``interop_tests.security.jcs_secure``): Accord's own issuing side refuses
    such documents, an attacker's does not.
    """
    from interop_tests.security import jcs_secure

    cred = json.loads(json.dumps(ident.agent["credential"]))
    cred.pop("proof", None)
    ctx = cred["@context"] if isinstance(cred["@context"], list) else [cred["@context"]]
    alias = {
        "@id": "https://www.w3.org/2018/credentials#validUntil",
        "@type": "http://www.w3.org/2001/XMLSchema#dateTime",
    }
    cred["@context"] = [*ctx, {"expiry": alias}]
    if "validUntil" in cred:
        cred["expiry"] = cred.pop("validUntil")
    return jcs_secure(
        cred, key=ident.org_key, verification_method=f"{ident.org_did}#key-1", proof_purpose="assertionMethod"
    )


async def _hostile_worker(
    kind: str, peer: MinimalPeer, ident: InteropIdentity, target_did: str, stop: asyncio.Event, tally: Counter
) -> None:
    huge = _huge_presentation(ident) if kind == "huge_presentation" else b""
    deep = _deep_presentation(ident) if kind == "deep_presentation" else b""
    renamed = _renamed_credential(ident) if kind == "inline_context" else {}
    session_id = ""
    while not stop.is_set():
        try:
            if kind == "huge_presentation":
                await peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=huge), timeout=30)
            elif kind == "deep_presentation":
                await peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=deep), timeout=30)
            elif kind == "garbage_presentation":
                raw = secrets.token_bytes(2048)
                await peer.stub.OpenSession(pb.OpenSessionRequest(presentation_json=raw), timeout=30)
            elif kind == "challenge_flood":
                await peer.stub.GetChallenge(pb.GetChallengeRequest(agent_did=ident.agent_did), timeout=30)
                tally[f"{kind}:issued"] += 1  # a challenge is not a breach: it is bounded per peer
                continue
            elif kind == "inline_context":
                ch = await peer.stub.GetChallenge(
                    pb.GetChallengeRequest(agent_did=ident.agent_did), timeout=30
                )
                vp = jcs_secure(
                    {
                        "@context": ["https://www.w3.org/ns/credentials/v2"],
                        "type": ["VerifiablePresentation"],
                        "holder": ident.agent_did,
                        "verifiableCredential": [renamed],
                    },
                    key=ident.agent_key,
                    verification_method=verification_method_id(ident.agent_did),
                    proof_purpose="authentication",
                    challenge=ch.challenge,
                    domain=ch.domain,
                )
                await peer.stub.OpenSession(
                    pb.OpenSessionRequest(presentation_json=json.dumps(vp).encode()), timeout=30
                )
            else:
                if not session_id:
                    session_id = (await peer.open_session(ident)).session_id
                aggregate = None
                purpose = "conformance\x00"
                if kind == "oversized_aggregate":
                    purpose = "conformance-stats"
                    aggregate = {
                        "kind": "count",
                        "column": "value",
                        "predicate": {"col": "record_id", "op": "in", "val": list(range(50_000))},
                    }
                signed = MinimalPeer.signed_request(
                    ident,
                    provider_org=target_did,
                    contract_id="interop-supplier",
                    purpose=purpose,
                    resource="interop-stats" if aggregate else "interop-records",
                    subject="*",
                    fields=[] if aggregate else ["record_id"],
                    aggregate=aggregate,
                )
                await peer.exchange(ident, session_id, signed)
            tally[f"{kind}:accepted"] += 1
        except grpc.aio.AioRpcError as exc:
            if exc.code() in PRECISE:
                tally[f"{kind}:refused"] += 1
                tally[f"reason:{_reason(exc) or exc.code().name}"] += 1
            else:
                tally[f"{kind}:imprecise:{exc.code().name}"] += 1


async def _exchange(agent: AgentClient, session: Any) -> Any:
    """One benign exchange: the procurement request of ``accord bench exchange``."""
    return await agent.request(
        session,
        contract_id="relief-supplier-procurement",
        purpose="emergency-procurement",
        resource="inventory",
        subject="SKU-1001",
        fields=FIELDS,
    )


async def _benign(agent: AgentClient, session: Any, *, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors: Counter = Counter()
    end = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                await _exchange(agent, session)
            except Exception as exc:  # counted: a benign failure under flood is a finding
                errors[getattr(exc, "reason", type(exc).__name__)] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "calls": len(latencies),
        "errors": sum(errors.values()),
        "error_reasons": dict(errors),
        "p50_ms": _percentile(latencies, 0.50) * 1e3,
        "p99_ms": _percentile(latencies, 0.99) * 1e3,
    }


def _flood_process(interop_dir: str, supplier_bundle: str, endpoint: str, seconds: float, queue: Any) -> None:
    """Run every hostile worker for ``seconds`` in this (separate) process; put the tally on ``queue``."""

    async def main() -> dict[str, int]:
        ident = InteropIdentity.load(Path(interop_dir))
        bundle = json.loads(Path(supplier_bundle).read_text())
        peers = [
            MinimalPeer(
                target=endpoint,
                target_ca_pem=bundle["ca_certificate_pem"].encode(),
                cert_pem=ident.cert_pem,
                key_pem=ident.key_pem,
            )
            for _ in CLASSES
        ]
        stop = asyncio.Event()
        tally: Counter = Counter()
        flood = [
            asyncio.create_task(_hostile_worker(k, p, ident, bundle["org_did"], stop, tally))
            for k, p in zip(CLASSES, peers, strict=True)
        ]
        await asyncio.sleep(seconds)
        stop.set()
        results = await asyncio.gather(*flood, return_exceptions=True)
        for kind, result in zip(CLASSES, results, strict=True):
            if isinstance(result, BaseException):
                tally[f"worker-crash:{kind}:{type(result).__name__}: {str(result)[:120]}"] += 1
        for p in peers:
            await p.close()
        return dict(tally)

    queue.put(asyncio.run(main()))


async def _run(layout: Any, procs: dict[str, NodeProcess], *, seconds: float, concurrency: int) -> dict:
    import multiprocessing

    async with AgentClient.from_wallet(layout.wallets["relief/logistics"]) as agent:
        session = await agent.open_session("supplier")
        for _ in range(20):  # warm-up
            await _exchange(agent, session)
        quiet = await _benign(agent, session, concurrency=concurrency, seconds=seconds)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        flood = ctx.Process(
            target=_flood_process,
            args=(
                str(layout.orgs["interop"]),
                str(layout.bundle_path("supplier")),
                procs["supplier"].endpoint,
                seconds + 2.0,
                queue,
            ),
        )
        flood.start()
        await asyncio.sleep(1.0)  # let the flood build up before measuring
        loud = await _benign(agent, session, concurrency=concurrency, seconds=seconds)
        tally = await asyncio.to_thread(queue.get, True, 120)
        await asyncio.to_thread(flood.join, 30)
    return {"quiet": quiet, "flood": loud, "tally": tally}


def run(*, seconds: float = 8.0, concurrency: int = 4, json_output: bool = False) -> dict:
    """Run the benchmark and print its table (or JSON); returns the figures.

    Args:
        seconds: measuring time of each phase, seconds.
        concurrency: benign requests in flight.
        json_output: print JSON instead of a table.

    """
    console = Console()
    with tempfile.TemporaryDirectory(prefix="accord-hostile-") as tmp:
        layout = provision(Path(tmp), orgs=("relief", "supplier"))
        procs: dict[str, NodeProcess] = {}
        try:
            for org in ("relief", "supplier"):
                procs[org] = NodeProcess(layout.orgs[org]).start()
            with console.status("measuring benign latency, then under the hostile flood…"):
                out = asyncio.run(_run(layout, procs, seconds=seconds, concurrency=concurrency))
        finally:
            for p in procs.values():
                p.stop()
    tally = out["tally"]
    accepted = {k: v for k, v in tally.items() if k.endswith(":accepted")}
    crashed = {k: v for k, v in tally.items() if k.startswith("worker-crash")}
    imprecise = {k: v for k, v in tally.items() if ":imprecise:" in k or k.startswith("worker-crash")}
    ratio = out["flood"]["p99_ms"] / out["quiet"]["p99_ms"]
    out.update(
        machine=f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        p99_ratio=ratio,
        all_refused=not accepted and not imprecise,
        target_met=ratio <= 2.0 and not accepted and not imprecise,
    )
    if json_output:
        print(json.dumps(out, indent=2, default=str))
        return out
    t = Table(title=f"benign exchanges relief → supplier, {concurrency} in flight, {seconds:.0f} s a phase")
    for col in ("phase", "calls", "errors", "p50 ms", "p99 ms"):
        t.add_column(col, justify="right")
    for name in ("quiet", "flood"):
        r = out[name]
        t.add_row(name, str(r["calls"]), str(r["errors"]), f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}")
    console.print(t)
    h = Table(title="hostile inputs (each worker one class, as fast as refusals come back)")
    for col in ("class", "refused", "accepted", "imprecise"):
        h.add_column(col, justify="right")
    for k in CLASSES:
        imp = sum(v for key, v in imprecise.items() if key.startswith(k + ":"))
        issued = f" (+{tally[k + ':issued']} issued)" if k + ":issued" in tally else ""
        h.add_row(
            k,
            str(tally.get(f"{k}:refused", 0)) + issued,
            str(tally.get(f"{k}:accepted", 0)),
            str(imp),
        )
    console.print(h)
    reasons = sorted((k[7:], v) for k, v in tally.items() if k.startswith("reason:"))
    console.print("refusal reasons: " + ", ".join(f"{r} {n}" for r, n in reasons))
    verdict = "met" if out["target_met"] else "NOT met"
    if crashed:
        console.print(f"hostile workers that crashed (their class was not exercised): {crashed}")
    console.print(f"p99 under flood / p99 quiet = {ratio:.2f} (target ≤ 2.0: {verdict}); {out['machine']}")
    return out
