"""Runs a suite of cases against a node and reports (Rich table, JUnit XML).

Suites (:data:`SUITES`): ``conformance`` (:mod:`interop_tests.cases`, the
protocol) and ``security`` (:mod:`interop_tests.security`, the red-team
attacks of issues #10 and #18).
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from interop_tests.cases import CASES, Case, Context
from interop_tests.peer import InteropIdentity
from interop_tests.security import SECURITY_CASES, Skipped

#: suite name -> its cases in run order
SUITES: dict[str, list[tuple[str, Case]]] = {"conformance": CASES, "security": SECURITY_CASES}


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome.

    Attributes:
        name: case name.
        passed: True when the node behaved as the protocol requires.
        detail: what was observed (or why it failed).
        seconds: duration, seconds.
        skipped: the case could not run against this target (``passed`` is True).

    """

    name: str
    passed: bool
    detail: str
    seconds: float
    skipped: bool = False


async def run_cases(
    ctx: Context, *, only: set[str] | None = None, suite: str = "conformance"
) -> list[CaseResult]:
    """Run every case of ``suite`` (or ``only`` those names) in order.

    Raises:
        KeyError: unknown suite name.

    """
    results = []
    for name, case in SUITES[suite]:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            detail = await asyncio.wait_for(case(ctx), timeout=30)
            results.append(CaseResult(name, True, detail, time.perf_counter() - t0))
        except Skipped as exc:
            results.append(CaseResult(name, True, f"skipped: {exc}", time.perf_counter() - t0, skipped=True))
        except Exception as exc:  # a failed case is a result, not a crash
            msg = str(exc) or exc.__class__.__name__
            if hasattr(exc, "code") and callable(exc.code):
                msg = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
            results.append(CaseResult(name, False, msg[:500], time.perf_counter() - t0))
    return results


async def _with_status_server(
    ctx: Context, tester_dir: Path, *, suite: str = "conformance", only: set[str] | None = None
) -> list[CaseResult]:
    from interop_tests.status_server import start_status_server

    server = await start_status_server(tester_dir, ctx.bundle["ca_certificate_pem"].encode())
    try:
        return await run_cases(ctx, suite=suite, only=only)
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
        skipped=str(sum(r.skipped for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
        hostname=target,
    )
    for r in results:
        tc = ET.SubElement(
            suite, "testcase", classname="accord.interop", name=r.name, time=f"{r.seconds:.3f}"
        )
        if r.skipped:
            ET.SubElement(tc, "skipped", message=r.detail[:200])
        elif r.passed:
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
    suite: str = "conformance",
    http: str = "",
) -> bool:
    """Run a suite; print a pass/fail table; write JUnit XML if asked. True if none fails.

    Args:
        target: ``HOST:PORT`` of the node under test.
        bundle_path: its peer bundle.
        tester_dir: node directory of the tester organization (pinned at the target).
        junit_path: write JUnit XML here.
        contract_id: the interop contract (default ``interop-<target org>``).
        console: where the table goes.
        suite: ``"conformance"`` or ``"security"`` (:data:`SUITES`).
        http: the target's tlog-tiles HTTP ``HOST:PORT`` (security suite; "" skips that case).

    Raises:
        KeyError: unknown suite.

    """
    if suite not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; known: {sorted(SUITES)}")
    console = console or Console()
    bundle = json.loads(Path(bundle_path).read_text())
    ctx = Context(
        target=target,
        bundle=bundle,
        ident=InteropIdentity.load(Path(tester_dir)),
        contract_id=contract_id or f"interop-{bundle['org_name']}",
        http=http,
    )
    results = asyncio.run(_with_status_server(ctx, Path(tester_dir), suite=suite))
    t = Table(title=f"Accord {suite} suite against {bundle['org_name']} at {target}")
    t.add_column("case")
    t.add_column("result")
    t.add_column("detail")
    for r in results:
        verdict = "[yellow]skip[/]" if r.skipped else "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        t.add_row(r.name, verdict, r.detail)
    console.print(t)
    skipped = sum(r.skipped for r in results)
    passed = sum(r.passed for r in results) - skipped
    failed = len(results) - passed - skipped
    console.print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if junit_path is not None:
        write_junit(results, junit_path, target=target)
    return failed == 0
