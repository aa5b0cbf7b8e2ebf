"""Runs the conformance cases against a node and reports (Rich table, JUnit XML)."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from interop_tests.cases import CASES, Context
from interop_tests.peer import InteropIdentity


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome.

    Attributes:
        name: case name.
        passed: True when the node behaved as the protocol requires.
        detail: what was observed (or why it failed).
        seconds: duration, seconds.

    """

    name: str
    passed: bool
    detail: str
    seconds: float


async def run_cases(ctx: Context, *, only: set[str] | None = None) -> list[CaseResult]:
    """Run every case (or ``only`` those names) in order."""
    results = []
    for name, case in CASES:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            detail = await asyncio.wait_for(case(ctx), timeout=30)
            results.append(CaseResult(name, True, detail, time.perf_counter() - t0))
        except Exception as exc:  # a failed case is a result, not a crash
            msg = str(exc) or exc.__class__.__name__
            if hasattr(exc, "code") and callable(exc.code):
                msg = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
            results.append(CaseResult(name, False, msg[:500], time.perf_counter() - t0))
    return results


async def _with_status_server(ctx: Context, tester_dir: Path) -> list[CaseResult]:
    from interop_tests.status_server import start_status_server

    server = await start_status_server(tester_dir, ctx.bundle["ca_certificate_pem"].encode())
    try:
        return await run_cases(ctx)
    finally:
        if server is not None:
            await server.stop(0.5)


def write_junit(results: list[CaseResult], path: Path, *, target: str) -> None:
    """JUnit XML, one ``testcase`` per case."""
    failures = sum(not r.passed for r in results)
    suite = ET.Element(
        "testsuite",
        name="accord-interop",
        tests=str(len(results)),
        failures=str(failures),
        time=f"{sum(r.seconds for r in results):.3f}",
        hostname=target,
    )
    for r in results:
        tc = ET.SubElement(
            suite, "testcase", classname="accord.interop", name=r.name, time=f"{r.seconds:.3f}"
        )
        if r.passed:
            ET.SubElement(tc, "system-out").text = r.detail
        else:
            ET.SubElement(tc, "failure", message=r.detail[:200]).text = r.detail
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def run_suite(
    *,
    target: str,
    bundle_path: Path,
    tester_dir: Path,
    junit_path: Path | None = None,
    contract_id: str | None = None,
    console: Console | None = None,
) -> bool:
    """Run the suite; print a pass/fail table; write JUnit XML if asked. True if all pass."""
    console = console or Console()
    bundle = json.loads(Path(bundle_path).read_text())
    ctx = Context(
        target=target,
        bundle=bundle,
        ident=InteropIdentity.load(Path(tester_dir)),
        contract_id=contract_id or f"interop-{bundle['org_name']}",
    )
    results = asyncio.run(_with_status_server(ctx, Path(tester_dir)))
    t = Table(title=f"Accord interop suite against {bundle['org_name']} at {target}")
    t.add_column("case")
    t.add_column("result")
    t.add_column("detail")
    for r in results:
        t.add_row(r.name, "[green]pass[/]" if r.passed else "[red]FAIL[/]", r.detail)
    console.print(t)
    passed = sum(r.passed for r in results)
    console.print(f"{passed} passed, {len(results) - passed} failed")
    if junit_path is not None:
        write_junit(results, junit_path, target=target)
    return passed == len(results)
