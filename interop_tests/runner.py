"""Runs a suite of cases against a node and reports (Rich table, JUnit XML, Markdown).

Suites (:data:`SUITES`): ``conformance`` (:mod:`interop_tests.cases`, the
protocol) and ``security`` (:mod:`interop_tests.security`, the red-team
attacks of issues #10 and #18), both against a node in its *provider* role;
``requester`` (:mod:`interop_tests.requester_cases`) turns the kit around:
the tester organizations serve as providers (:mod:`interop_tests.provider`)
and the node under test asks them, driven through its ``AgentService``
(``accord interop run --role requester``). Each result carries the specification
section it checks and its RFC 2119 level (:mod:`interop_tests.requirements`):
a failed MUST fails the run; a failed SHOULD is reported (and fails the run
only with ``strict``).
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from interop_tests.cases import CASES, Context
from interop_tests.peer import InteropIdentity
from interop_tests.requester_cases import REQUESTER_CASES, RequesterContext
from interop_tests.requirements import requirement_for
from interop_tests.security import SECURITY_CASES, Skipped
from interop_tests.spec_cases import SPEC_CASES

#: suite name -> its cases in run order
SUITES: dict[str, list[tuple[str, Any]]] = {
    "conformance": [*CASES, *SPEC_CASES],
    "security": SECURITY_CASES,
    "requester": REQUESTER_CASES,
}
#: the suites of each role of the node under test
ROLES: dict[str, tuple[str, ...]] = {"provider": ("conformance", "security"), "requester": ("requester",)}


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome.

    Attributes:
        name: case name.
        passed: True when the node behaved as the protocol requires.
        detail: what was observed (or why it failed).
        seconds: duration, seconds.
        skipped: the case could not run against this target (``passed`` is True).
        section: the specification section it checks (``docs/<page>.md#<anchor>``).
        level: ``"MUST"`` or ``"SHOULD"`` (RFC 2119).
        requirement: the specification's numbered requirements (``"R-SIG-2, R-SIG-4"``), or None.

    """

    name: str
    passed: bool
    detail: str
    seconds: float
    skipped: bool = False
    section: str = ""
    level: str = "MUST"
    requirement: str | None = None

    @property
    def verdict(self) -> str:
        """``pass``, ``skip``, ``FAIL`` (a MUST) or ``warn`` (a failed SHOULD)."""
        if self.skipped:
            return "skip"
        if self.passed:
            return "pass"
        return "FAIL" if self.level == "MUST" else "warn"


async def run_cases(
    ctx: Context | RequesterContext, *, only: set[str] | None = None, suite: str = "conformance"
) -> list[CaseResult]:
    """Run every case of ``suite`` (or ``only`` those names) in order.

    Raises:
        KeyError: unknown suite name.

    """
    results = []
    for name, case in SUITES[suite]:
        if only and name not in only:
            continue
        req = requirement_for(name)
        meta = {
            "section": req.section,
            "level": req.level,
            "requirement": ", ".join(req.requirements) or None,
        }
        t0 = time.perf_counter()
        try:
            detail = await asyncio.wait_for(case(ctx), timeout=30)
            results.append(CaseResult(name, True, detail, time.perf_counter() - t0, **meta))
        except Skipped as exc:
            results.append(
                CaseResult(name, True, f"skipped: {exc}", time.perf_counter() - t0, skipped=True, **meta)
            )
        except Exception as exc:  # a failed case is a result, not a crash
            msg = str(exc) or exc.__class__.__name__
            if hasattr(exc, "code") and callable(exc.code):
                msg = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
            results.append(CaseResult(name, False, msg[:500], time.perf_counter() - t0, **meta))
    return results


async def _with_status_server(
    ctx: Context, tester_dir: Path, *, suite: str = "conformance", only: set[str] | None = None
) -> list[CaseResult]:
    from interop_tests.status_server import start_status_server

    server = await start_status_server(tester_dir, ctx.bundle["ca_certificate_pem"].encode())
    if server is None:
        import structlog

        structlog.get_logger("accord.interop").warning(
            "tester status lists not served: its port is taken; the revocation cases will fail",
            tester=str(tester_dir),
        )
    try:
        return await run_cases(ctx, suite=suite, only=only)
    finally:
        if server is not None:
            await server.stop(0.5)


async def with_personas(
    *,
    target: str,
    node_bundle: dict[str, Any],
    tester_dir: Path,
    driver: Any = None,
    only: set[str] | None = None,
) -> list[CaseResult]:
    """Serve the personas as providers and run the requester suite against the node at ``target``.

    Args:
        target: ``HOST:PORT`` of the node under test.
        node_bundle: its peer bundle.
        tester_dir: the tester organization's directory (personas in ``personas/``).
        driver: how the node is made to ask (default: an
            :class:`interop_tests.requester_cases.AgentDriver` with the wallet that
            ``accord interop enroll`` copied for this node).
        only: run only these cases.

    Raises:
        federation.errors.ConfigError: no tester agent wallet for this node (enrolled with a kit
            that had none), or a persona's endpoint is taken.

    """
    from interop_tests.enrollment import PERSONAS, TESTER_ORG, agent_wallet_path, persona_dir
    from interop_tests.provider import start_provider
    from interop_tests.requester_cases import AgentDriver

    dirs = {name: persona_dir(tester_dir, name) for name in (TESTER_ORG, *PERSONAS)}
    servers: dict[str, Any] = {}
    providers: dict[str, Any] = {}

    async def restart(name: str, cert_pem: bytes | None, key_pem: bytes | None) -> None:
        old = servers.pop(name, None)
        if old is not None:
            await old.stop(0)
        servers[name], providers[name] = await start_provider(
            dirs[name], node_bundle, cert_pem=cert_pem, key_pem=key_pem
        )

    own_driver = driver is None
    if own_driver:
        wallet = agent_wallet_path(tester_dir, node_bundle["org_name"])
        if not wallet.is_file():
            from federation.errors import ConfigError

            raise ConfigError(
                f"no tester agent wallet {wallet}: the kit was enrolled at {node_bundle['org_name']} before "
                "it had one; run `accord interop unenroll` and `accord interop enroll` there again",
                metadata={"path": str(wallet)},
            )
        driver = AgentDriver(
            target=target, wallet=json.loads(wallet.read_text()), node_bundle=node_bundle, personas=dirs
        )
    try:
        for name in dirs:
            await restart(name, None, None)
        ctx = RequesterContext(driver=driver, providers=providers, restart=restart, node_bundle=node_bundle)
        return await run_cases(ctx, suite="requester", only=only)
    finally:
        for server in servers.values():
            await server.stop(0)
        if own_driver:
            await driver.close()


def write_junit(results: list[CaseResult], path: Path, *, target: str) -> None:
    """JUnit XML, one ``testcase`` per case; section, level and requirement as ``properties``.

    A failed SHOULD is a ``failure`` with ``type="SHOULD"`` (JUnit has no warning).
    """
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
        props = ET.SubElement(tc, "properties")
        for key, value in (("section", r.section), ("level", r.level), ("requirement", r.requirement or "")):
            ET.SubElement(props, "property", name=key, value=value)
        if r.skipped:
            ET.SubElement(tc, "skipped", message=r.detail[:200])
        elif r.passed:
            ET.SubElement(tc, "system-out").text = r.detail
        else:
            ET.SubElement(tc, "failure", message=r.detail[:200], type=r.level).text = r.detail
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(results: list[CaseResult], path: Path, *, target: str, org: str, suite: str) -> None:
    """A Markdown report: a summary line and one table row per case (level, section, verdict, detail)."""
    counts = {v: sum(r.verdict == v for r in results) for v in ("pass", "FAIL", "warn", "skip")}
    lines = [
        f"# Accord {suite} suite: {org} at {target}",
        "",
        f"{counts['pass']} passed, {counts['FAIL']} failed (MUST), {counts['warn']} failed (SHOULD), "
        f"{counts['skip']} skipped.",
        "",
        "| case | level | section | requirement | result | detail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {_cell(r.name)} | {r.level} | [{r.section}]({r.section}) | {r.requirement or '—'} | "
            f"{r.verdict} | {_cell(r.detail)} |"
        )
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_json(results: list[CaseResult], path: Path, *, target: str, org: str, suite: str) -> None:
    """A JSON report: ``{"suite", "target", "org", "counts", "requirements", "cases": [...]}``.

    Each case carries ``name``, ``verdict`` (``pass``/``FAIL``/``warn``/``skip``),
    ``level``, ``section``, ``requirements`` (a list of ids, ``R-SIG-2``, …),
    ``detail`` and ``seconds``; ``requirements`` maps each requirement id to the
    verdicts of the cases that check it.
    """
    cases = [
        {
            "name": r.name,
            "verdict": r.verdict,
            "level": r.level,
            "section": r.section,
            "requirements": [x.strip() for x in (r.requirement or "").split(",") if x.strip()],
            "detail": r.detail,
            "seconds": round(r.seconds, 3),
        }
        for r in results
    ]
    by_req: dict[str, list[dict[str, str]]] = {}
    for c in cases:
        for rid in c["requirements"]:
            by_req.setdefault(rid, []).append({"case": c["name"], "verdict": c["verdict"]})
    doc = {
        "suite": suite,
        "target": target,
        "org": org,
        "counts": {v: sum(r.verdict == v for r in results) for v in ("pass", "FAIL", "warn", "skip")},
        "requirements": dict(sorted(by_req.items())),
        "cases": cases,
    }
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def suite_ok(results: list[CaseResult], *, strict: bool = False) -> bool:
    """True when no MUST case failed (and, with ``strict``, no SHOULD case either)."""
    return not any(r.verdict == "FAIL" or (strict and r.verdict == "warn") for r in results)


def run_suite(
    *,
    target: str,
    bundle_path: Path,
    tester_dir: Path | None = None,
    junit_path: Path | None = None,
    report_path: Path | None = None,
    contract_id: str | None = None,
    console: Console | None = None,
    suite: str = "conformance",
    http: str = "",
    strict: bool = False,
    json_path: Path | None = None,
) -> bool:
    """Run a suite; print a table; write JUnit XML and a Markdown report if asked.

    Args:
        target: ``HOST:PORT`` of the node under test.
        bundle_path: its peer bundle.
        tester_dir: node directory of the tester organization, pinned at the target
            (default :func:`interop_tests.enrollment.default_tester_dir`, where
            ``accord interop enroll`` creates it).
        junit_path: write JUnit XML here.
        report_path: write a Markdown report here.
        contract_id: the interop contract (default ``interop-<target org>``).
        console: where the table goes.
        suite: ``"conformance"``, ``"security"`` (the node as provider) or
            ``"requester"`` (the node as requester) (:data:`SUITES`).
        http: the target's tlog-tiles HTTP ``HOST:PORT`` (security suite; "" skips that case).
        strict: a failed SHOULD fails the run too.
        json_path: write a JSON report (:func:`write_json`) here.

    Returns:
        :func:`suite_ok` of the results.

    Raises:
        KeyError: unknown suite.
        FileNotFoundError: no tester organization in ``tester_dir``.

    """
    from interop_tests.enrollment import default_tester_dir

    if suite not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; known: {sorted(SUITES)}")
    console = console or Console()
    tester_dir = Path(tester_dir) if tester_dir is not None else default_tester_dir()
    if not (tester_dir / "node.toml").is_file():
        raise FileNotFoundError(
            f"no tester organization in {tester_dir}: run `accord interop enroll --dir NODE_DIR` first"
        )
    bundle = json.loads(Path(bundle_path).read_text())
    if suite == "requester":
        results = asyncio.run(with_personas(target=target, node_bundle=bundle, tester_dir=tester_dir))
    else:
        ctx = Context(
            target=target,
            bundle=bundle,
            ident=InteropIdentity.load(tester_dir),
            contract_id=contract_id or f"interop-{bundle['org_name']}",
            http=http,
        )
        results = asyncio.run(_with_status_server(ctx, tester_dir, suite=suite))
    t = Table(title=f"Accord {suite} suite against {bundle['org_name']} at {target}")
    t.add_column("case")
    t.add_column("level")
    t.add_column("section")
    t.add_column("requirement")
    t.add_column("result")
    t.add_column("detail")
    style = {
        "pass": "[green]pass[/]",
        "skip": "[yellow]skip[/]",
        "FAIL": "[red]FAIL[/]",
        "warn": "[yellow]warn[/]",
    }
    for r in results:
        t.add_row(
            r.name,
            r.level,
            r.section.removeprefix("docs/"),
            r.requirement or "",
            style[r.verdict],
            r.detail,
        )
    console.print(t)
    counts = {v: sum(r.verdict == v for r in results) for v in ("pass", "FAIL", "warn", "skip")}
    console.print(
        f"{counts['pass']} passed, {counts['FAIL']} failed (MUST), {counts['warn']} failed (SHOULD), "
        f"{counts['skip']} skipped"
    )
    if junit_path is not None:
        write_junit(results, junit_path, target=target)
    if report_path is not None:
        write_markdown(results, report_path, target=target, org=bundle["org_name"], suite=suite)
    if json_path is not None:
        write_json(results, json_path, target=target, org=bundle["org_name"], suite=suite)
    return suite_ok(results, strict=strict)
