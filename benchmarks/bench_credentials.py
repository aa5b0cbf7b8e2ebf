"""Benchmark: credential issue/verify per second, Accord vs the JS reference, same run.

Measures, for each cryptosuite, ``issue_credential`` and ``verify_credential``
on an Accord ``AgentCredential`` (did:key issuer), plus ``verify_presentation``
(one VP holding one VC: two proofs) with the proof cache cleared each time,
the repeat verification of a known credential (proof cache hit), a session
(a fresh VP, new challenge, around an already-verified VC), and runs the Node.js reference harness
(``interop_tests/js/vc.mjs``, loop mode) on the same credential. Prints a Rich
table with the ratio Accord/JS (above 1 means Accord is faster).

    python benchmarks/bench_credentials.py [--seconds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from credentials import (
    Ed25519KeyPair,
    agent_credential,
    create_presentation,
    did_key_from_public_key,
    did_key_resolver,
    issue_credential,
    verification_method_id,
    verify_credential,
    verify_presentation,
)
from credentials.proofs import clear_verification_cache

JS_DIR = Path(__file__).resolve().parents[1] / "interop_tests" / "js"
SUITES = ("eddsa-rdfc-2022", "eddsa-jcs-2022")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _rate(fn: Callable[[], Any], seconds: float) -> tuple[float, int]:
    for _ in range(50):  # warm-up (context caches), as the JS harness does
        fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start), count


def _session_rate(
    signed: dict[str, Any], holder: Ed25519KeyPair, holder_did: str, suite: str, seconds: float
) -> float:
    """Verify rate of fresh presentations (new challenge each) of one already-seen VC."""
    presentations = [
        create_presentation(
            [signed],
            holder=holder_did,
            key=holder,
            verification_method=verification_method_id(holder_did),
            challenge=f"session-{i}",
            domain="did:web:verifier.accord.test",
            cryptosuite=suite,
        )
        for i in range(max(50, int(seconds * 150)))
    ]
    clear_verification_cache()
    verify_credential(signed, resolve_key=did_key_resolver, now=NOW)  # the VC is known
    start = time.perf_counter()
    for i, vp in enumerate(presentations):
        verify_presentation(
            vp,
            challenge=f"session-{i}",
            domain="did:web:verifier.accord.test",
            resolve_key=did_key_resolver,
            now=NOW,
        )
    return len(presentations) / (time.perf_counter() - start)


def _js(command: str, request: dict[str, Any]) -> dict[str, Any] | None:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules").is_dir():
        return None
    proc = subprocess.run(
        [node, str(JS_DIR / "vc.mjs"), command],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return None
    return None if "error" in result else result


def run(*, seconds: float = 2.0, json_output: bool = False) -> dict[str, Any]:
    """Run the benchmark; return ``{suite: {operation: {...}}}`` (rates in operations/s)."""
    issuer = Ed25519KeyPair.from_seed(bytes(range(32)))
    holder = Ed25519KeyPair.from_seed(bytes(range(32, 64)))
    issuer_did = did_key_from_public_key(issuer.public_key)
    holder_did = did_key_from_public_key(holder.public_key)
    unsigned = agent_credential(
        issuer=issuer_did,
        agent_did=holder_did,
        organization=issuer_did,
        name="bench-agent",
        role="analyst",
        scopes=["lab:read", "lab:order"],
        trust_tier=2,
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=30),
        credential_id="urn:uuid:5b0b3f51-8a3a-4b55-9c6f-000000000001",
    )
    vm = verification_method_id(issuer_did)
    results: dict[str, Any] = {}
    for suite in SUITES:
        signed = issue_credential(unsigned, key=issuer, verification_method=vm, cryptosuite=suite)
        vp = create_presentation(
            [signed],
            holder=holder_did,
            key=holder,
            verification_method=verification_method_id(holder_did),
            challenge="bench",
            domain="did:web:verifier.accord.test",
            cryptosuite=suite,
        )
        issue_rate, _ = _rate(
            lambda s=suite: issue_credential(unsigned, key=issuer, verification_method=vm, cryptosuite=s),
            seconds,
        )

        def verify_cold(s=signed):
            clear_verification_cache()  # measure the full work, not a remembered proof
            return verify_credential(s, resolve_key=did_key_resolver, now=NOW)

        def vp_cold(p=vp):
            clear_verification_cache()
            return verify_presentation(
                p,
                challenge="bench",
                domain="did:web:verifier.accord.test",
                resolve_key=did_key_resolver,
                now=NOW,
            )

        verify_rate, _ = _rate(verify_cold, seconds)
        repeat_rate, _ = _rate(
            lambda s=signed: verify_credential(s, resolve_key=did_key_resolver, now=NOW), seconds
        )
        vp_rate, _ = _rate(vp_cold, seconds)
        session_rate = _session_rate(signed, holder, holder_did, suite, seconds)
        js_n = max(50, int(seconds * 400))
        key_req = {
            "publicKeyMultibase": issuer.public_key_multibase,
            "secretKeyMultibase": issuer.secret_key_multibase,
        }
        js_verify = _js("verify-loop", {"credential": signed, "n": js_n, "now": NOW.isoformat()})
        js_issue = _js(
            "issue-loop",
            {
                "credential": unsigned,
                "cryptosuite": suite,
                "n": js_n,
                **key_req,
                "now": NOW.isoformat(),
            },
        )
        js_vp = _js(
            "verify-presentation-loop",
            {
                "presentation": vp,
                "challenge": "bench",
                "domain": "did:web:verifier.accord.test",
                "n": max(20, js_n // 2),
                "now": NOW.isoformat(),
            },
        )
        results[suite] = {
            "issue": {
                "accord_per_s": issue_rate,
                "js_per_s": 1000 / js_issue["per_issue_ms"] if js_issue else None,
            },
            "verify": {
                "accord_per_s": verify_rate,
                "js_per_s": 1000 / js_verify["per_verify_ms"] if js_verify else None,
                "js_verified": js_verify["verified"] if js_verify else None,
            },
            "verify_repeat_cached": {"accord_per_s": repeat_rate, "js_per_s": None},
            "verify_presentation": {
                "accord_per_s": vp_rate,
                "js_per_s": 1000 / js_vp["per_verify_ms"] if js_vp else None,
                "js_verified": js_vp["verified"] if js_vp else None,
            },
            "session_new_vp_same_vc": {"accord_per_s": session_rate, "js_per_s": None},
        }
    if json_output:
        print(json.dumps(results, indent=2))
    else:
        _table(results)
    return results


def _table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="credentials: operations per second (higher is better)")
    for column in (
        "cryptosuite",
        "operation",
        "Accord /s",
        "Accord ms",
        "JS /s",
        "JS ms",
        "Accord/JS",
    ):
        table.add_column(column, justify="right" if column != "operation" else "left")
    for suite, ops in results.items():
        for op, row in ops.items():
            ours, theirs = row["accord_per_s"], row["js_per_s"]
            table.add_row(
                suite,
                op,
                f"{ours:,.0f}",
                f"{1000 / ours:.3f}",
                f"{theirs:,.0f}" if theirs else "-",
                f"{1000 / theirs:.3f}" if theirs else "-",
                f"{ours / theirs:.2f}x" if theirs else "-",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    run(seconds=args.seconds, json_output=args.json)
