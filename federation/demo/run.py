"""``accord demo``: three real node processes running a flood-response scenario.

Steps: provision three node directories (hospital, relief, supplier) and
peer them; start each node as its own process (gRPC over mTLS); run the 41
exchanges scripted in ``scenario.yaml`` through the agent SDK — triage data
released only at MNI, an over-broad request trimmed by the gate, shelter and
supply requests, a request outside any contract denied, a request without
the scope denied, an agent revoked mid-run refused; then print per-pair
counts, OER before and after the gate, and each node's ledger; stop the
processes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from federation.client import AgentClient
from federation.demo import scenario
from federation.demo.scenario import Step
from federation.demo.setup import Layout, load_layout, provision
from federation.errors import FederationError
from federation.supervisor import NodeProcess


@dataclass
class StepResult:
    """What happened in one step."""

    step: Step
    outcome: str
    released: tuple[str, ...] = ()
    stripped: tuple[str, ...] = ()
    reason: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    receipt_verified: bool = False
    answer: Any = None


def script(path: Path = scenario.SCENARIO_PATH) -> tuple[list[Step], list[Step]]:
    """The scenario's exchanges: (steps before the revocation, steps after it), from ``scenario.yaml``.

    Raises:
        ConfigError: the file is malformed (see :func:`federation.demo.scenario.load_scenario`).
    """
    sc = scenario.load_scenario(path)
    return list(sc.steps), list(sc.after_revocation)


class Runner:
    """Runs the script against started nodes."""

    def __init__(self, layout: Layout, console: Console) -> None:
        self.layout = layout
        self.console = console
        self.clients: dict[str, AgentClient] = {}
        self.sessions: dict[tuple[str, str], Any] = {}
        self.results: list[StepResult] = []

    def client(self, agent: str) -> AgentClient:
        """The SDK client of ``org/agent`` (one channel each)."""
        if agent not in self.clients:
            self.clients[agent] = AgentClient.from_wallet(self.layout.wallets[agent])
        return self.clients[agent]

    async def run_step(self, step: Step, *, new_session: bool = False) -> StepResult:
        """Run one step; refusals are results, not exceptions."""
        c = self.client(step.agent)
        key = (step.agent, step.provider)
        try:
            if new_session or step.new_session or key not in self.sessions:
                self.sessions[key] = await c.open_session(step.provider)
            r = await c.request(
                self.sessions[key],
                contract_id=step.contract,
                purpose=step.purpose,
                resource=step.resource,
                subject=step.subject,
                fields=step.fields,
                aggregate=step.aggregate_json(),
            )
            res = StepResult(
                step,
                "allow",
                r.released_fields,
                r.stripped_fields,
                records=[] if step.aggregate else r.records,
                receipt_verified=r.receipt_verified,
            )
            if step.aggregate:
                res.answer = r.records[0]["value"] if r.records else None
        except FederationError as exc:
            res = StepResult(
                step,
                "deny",
                reason=exc.reason,
                receipt_verified=exc.metadata.get("receipt_verified") == "true",
            )
        self.results.append(res)
        return res

    async def close(self) -> None:
        """Close every SDK channel."""
        for c in self.clients.values():
            await c.close()


async def _revoke(layout: Layout, org: str, agent: str) -> str:
    """What ``accord agent revoke`` does: flip the bit on disk, then AdminService.Reload."""
    from federation.admin_client import reload_running_node
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    open_store(NodeIdentity.load(layout.orgs[org])).set_status(agent, revoked=True)
    counts = await reload_running_node(layout.orgs[org])
    return f"{org} node reloaded: {counts}"


def check_results(results: list[StepResult]) -> list[str]:
    """Problems found: unexpected outcomes or a released record holding an unreleased field."""
    problems = []
    for r in results:
        want = r.step.expect
        got = "allow" if r.outcome == "allow" else r.reason
        if want != got:
            problems.append(f"{r.step.note}: expected {want}, got {got}")
        for rec in r.records:
            extra = set(rec) - set(r.released)
            if extra:
                problems.append(f"{r.step.note}: record carries unreleased fields {sorted(extra)}")
    return problems


def ledger_rows(layout: Layout, org: str) -> list[dict[str, Any]]:
    """Every ledger entry of an org (read from its database while it runs)."""
    from federation.cli.ledger import entry_row
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly
    from ledger import EntryFilter

    lg = open_ledger_readonly(NodeIdentity.load(layout.orgs[org]))
    try:
        return [entry_row(e) for e in lg.query(EntryFilter(limit=10_000))]
    finally:
        lg.close()


def pair_summary(layout: Layout, orgs: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per (provider ← requester) pair from the providers' ledgers: released, trimmed, denied, OER.

    Attempted OER = share of released disclosures where the source offered
    a field beyond the purpose's MNI; released OER = share whose released
    fields go beyond MNI (optional fields a contract allows at high trust
    count as beyond-MNI too).
    """
    from policy import Contract

    mni: dict[tuple[str, str], set[str]] = {}
    allowed: dict[tuple[str, str], set[str]] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for org in orgs:
        for path in (layout.orgs[org] / "contracts").glob("*.json"):
            c = Contract.load(path)
            for pname, p in c.purposes.items():
                mni[(c.id, pname)] = set(p.mni)
                allowed[(c.id, pname)] = set(p.mni) | set(p.optional)
        for e in ledger_rows(layout, org):
            if e["provider_org"] != f"did:web:{org}.accord.test" or e["kind"] not in ("disclosure", "denial"):
                continue
            req = e["requester_org"].split(":")[-1].split(".")[0]
            row = rows.setdefault(
                (org, req),
                {
                    "provider": org,
                    "requester": req,
                    "released": 0,
                    "trimmed": 0,
                    "denied": 0,
                    "attempted_beyond": 0,
                    "released_beyond": 0,
                    "outside_contract": 0,
                },
            )
            if e["kind"] == "denial":
                row["denied"] += 1
                continue
            row["released"] += 1
            m = mni.get((e["contract_id"], e["purpose"]), set())
            released, stripped = set(e["fields_released"]), set(e["fields_stripped"])
            row["trimmed"] += int(bool(stripped))
            row["attempted_beyond"] += int(bool((released | stripped) - m))
            row["released_beyond"] += int(bool(released - m))
            row["outside_contract"] += len(released - allowed.get((e["contract_id"], e["purpose"]), set()))
    out = []
    for row in rows.values():
        n = row["released"]
        row["attempted_oer"] = row["attempted_beyond"] / n if n else 0.0
        row["released_oer"] = row["released_beyond"] / n if n else 0.0
        out.append(row)
    return sorted(out, key=lambda r: (r["provider"], r["requester"]))


def witness_status(layout: Layout, orgs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per org: latest checkpoint size, latest witnessed size, cosigners of the latter."""
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    out: dict[str, dict[str, Any]] = {}
    for org in orgs:
        lg = open_ledger_readonly(NodeIdentity.load(layout.orgs[org]))
        try:
            cp = lg.latest_checkpoint()
            wcp = lg.latest_checkpoint(witnessed=True)
        finally:
            lg.close()
        cosigners = []
        if wcp is not None:
            cosigners = sorted(
                {
                    line.split(" ")[1].split(".")[0]
                    for line in wcp.note.splitlines()
                    if line.startswith("\u2014 ") and "/witness " in line + " "
                }
            )
        out[org] = {
            "size": cp.checkpoint.size if cp else 0,
            "witnessed_size": wcp.checkpoint.size if wcp else 0,
            "cosigners": cosigners,
        }
    return out


def wait_witnessed(
    layout: Layout, orgs: tuple[str, ...], *, timeout: float = 15.0
) -> dict[str, dict[str, Any]]:
    """Wait until every org's latest checkpoint meets its witness quorum (or the timeout)."""
    end = time.monotonic() + timeout
    while True:
        st = witness_status(layout, orgs)
        if all(v["size"] and v["witnessed_size"] == v["size"] for v in st.values()) or time.monotonic() > end:
            return st
        time.sleep(0.25)


def print_report(console: Console, layout: Layout, runner: Runner, orgs: tuple[str, ...]) -> None:
    """Rich tables: the exchanges, the per-pair summary, each node's ledger."""
    t = Table(title="exchanges (requester agent → provider node)")
    for col in ("#", "agent → provider", "purpose", "outcome", "released fields", "stripped", "receipt"):
        t.add_column(
            col,
            no_wrap=True,
            min_width=max(len(col), 2),
            overflow="ellipsis",
            max_width=48 if col == "released fields" else None,
        )
    for i, r in enumerate(runner.results, 1):
        outcome = "[green]allow[/]" if r.outcome == "allow" else f"[red]deny {r.reason}[/]"
        released = ",".join(r.released)
        if r.step.aggregate and r.outcome == "allow":
            released += f" = {r.answer:.4g}" if isinstance(r.answer, float) else f" = {r.answer}"
        t.add_row(
            str(i),
            f"{r.step.agent} → {r.step.provider}",
            r.step.purpose,
            outcome,
            released,
            str(len(r.stripped)) if r.outcome == "allow" and not r.step.aggregate else "",
            "✓" if r.receipt_verified else "–",
        )
    console.print(t)
    s = Table(
        title="per pair (provider ← requester), from the providers' ledgers",
        caption="OER = share of released disclosures with a field beyond the purpose's MNI. "
        "Before the gate: what the source offered; after: what crossed. After the gate only "
        "optional fields the contract allows at the pair's current trust τ remain; "
        "'outside contract' counts released fields in neither MNI nor the optional set.",
    )
    for col in (
        "provider",
        "requester",
        "released",
        "trimmed",
        "denied",
        "OER before gate",
        "OER after gate",
        "outside contract",
    ):
        s.add_column(col, justify="right" if col not in ("provider", "requester") else "left")
    for row in pair_summary(layout, orgs):
        s.add_row(
            row["provider"],
            row["requester"],
            str(row["released"]),
            str(row["trimmed"]),
            str(row["denied"]),
            f"{row['attempted_oer']:.2f}",
            f"{row['released_oer']:.2f}",
            str(row["outside_contract"]),
        )
    console.print(s)
    for org in orgs:
        lt = Table(title=f"ledger of {org}", show_lines=False)
        for col in (
            "#",
            "kind",
            "counterpart",
            "contract",
            "decision",
            "fields released",
            "stripped",
            "τ",
            "leaf hash",
        ):
            lt.add_column(
                col,
                no_wrap=True,
                overflow="ellipsis",
                min_width=len(col),
                max_width=40 if col in ("fields released", "stripped") else None,
            )
        for e in ledger_rows(layout, org):
            own = f"did:web:{org}.accord.test"
            other = e["requester_org"] if e["provider_org"] == own else e["provider_org"]
            lt.add_row(
                str(e["index"]),
                e["kind"],
                other.split(":")[-1].split(".")[0],
                e["contract_id"],
                e["decision"] + (f" {e['reason']}" if e["decision"] == "deny" else ""),
                ",".join(e["fields_released"]),
                str(len(e["fields_stripped"])),
                f"{e['effective_trust']:.2f}",
                e["leaf_hash"][:12],
            )
        console.print(lt)


async def _scenario(layout: Layout, console: Console) -> Runner:
    sc = scenario.load_scenario()
    before, after = list(sc.steps), list(sc.after_revocation)
    runner = Runner(layout, console)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("exchanges", total=len(before) + len(after))
        for step in before:
            await runner.run_step(step)
            progress.advance(task)
        org, agent = sc.revoke.split("/")
        note = await _revoke(layout, org, agent)
        progress.console.print(f"[yellow]operator revoked {sc.revoke}[/] ({note})")
        for step in after:
            await runner.run_step(step, new_session=step.new_session)
            progress.advance(task)
    await runner.close()
    return runner


def run_demo(
    workdir: Path | None = None,
    *,
    console: Console | None = None,
    keep_running: bool = False,
    agents: bool = False,
) -> int:
    """Run the whole demo; returns the process exit code (0 = every check passed).

    ``agents``: also run the triage exchange through an MCP client and an A2A
    client next to the SDK, side by side (:mod:`federation.demo.agents`).
    """
    if console is None:
        console = Console(emoji=False)
        if not console.is_terminal or console.width < 140:
            console = Console(width=160, emoji=False)
    t0 = time.monotonic()
    tmp = None
    if workdir is None:
        tmp = Path(tempfile.mkdtemp(prefix="accord-demo-"))
        root = tmp
    else:
        root = Path(workdir)
    orgs = scenario.ORGS
    procs: list[NodeProcess] = []
    import signal

    def _terminate(*_: object) -> None:  # SIGTERM: stop the nodes like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    kept = load_layout(root) if workdir is not None else None  # refuses a directory holding other things
    if kept is not None:
        return _reuse(kept, console, procs, keep_running=keep_running)
    try:
        with console.status("provisioning three organizations (keys, CAs, bundles, agents, contracts)"):
            layout = provision(root)
            if agents:
                from federation.demo.agents import expose_triage_desk

                expose_triage_desk(layout)
        console.print(f"[bold]Accord demo[/] — node directories in {root}")
        with console.status("starting three node processes (gRPC over mutual TLS)"):
            for org in orgs:
                procs.append(NodeProcess(layout.orgs[org]).start())
        for p in procs:
            console.print(f"  {p.directory.name:9s} pid {p.pid}  {p.endpoint}")
        runner = asyncio.run(_scenario(layout, console))
        with console.status("waiting for peers' witnesses to cosign the latest checkpoints"):
            witnessed = wait_witnessed(layout, orgs)
        print_report(console, layout, runner, orgs)
        for org, st in witnessed.items():
            console.print(
                f"  {org:9s} ledger: {st['size']} entries; checkpoint of size {st['witnessed_size']} "
                f"witnessed (cosigned by {', '.join(st['cosigners']) or 'nobody'})"
            )
        if workdir is not None:
            from federation.cli.ledger import plot_growth

            png = root / "ledger-growth.png"
            plot_growth({org: layout.orgs[org] for org in orgs}, png)
            console.print(f"ledger growth plot: {png}")
        problems = check_results(runner.results)
        if agents:
            from federation.demo.agents import run_agents_triage

            problems += run_agents_triage(layout, console)[1]
        problems += [
            f"{org}: latest checkpoint not witnessed"
            for org, st in witnessed.items()
            if st["witnessed_size"] != st["size"]
        ]
        elapsed = time.monotonic() - t0
        if problems:
            for p in problems:
                console.print(f"[red]FAIL[/] {p}")
            return 1
        console.print(
            f"[green]demo passed[/]: {len(runner.results)} exchanges, every outcome as expected, "
            f"no released record carries an unreleased field ({elapsed:.1f} s)"
        )
        if keep_running:
            console.print(
                "nodes keep running; press Ctrl-C to stop. Bundles: "
                + ", ".join(str(layout.bundle_path(o)) for o in orgs)
            )
            try:
                while all(p.alive() for p in procs):
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        for p in procs:
            p.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _reuse(layout: Layout, console: Console, procs: list[NodeProcess], *, keep_running: bool) -> int:
    """Bring back the federation a previous run kept in ``layout.root``: same keys, same ledgers.

    Nothing is provisioned again (keys, agents and contracts stay as they
    are) and the scenario is not replayed (its expected outcomes assume a
    fresh federation). Every ledger is verified first; the nodes are started
    and, with ``keep_running``, left running until Ctrl-C.

    Returns:
        0 when every ledger verifies and every node started, else 1.

    """
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly

    orgs = [o for o in scenario.ORGS if o in layout.orgs]
    console.print(f"Accord demo: reusing the federation kept in {layout.root} (keys and ledgers unchanged)")
    bad = []
    for org in orgs:
        lg = open_ledger_readonly(NodeIdentity.load(layout.orgs[org]))
        try:
            report = lg.verify()
        finally:
            lg.close()
        console.print(
            f"  {org:9s} ledger: {report.entries_checked} entries, verify {'ok' if report.ok else 'FAILED'}"
        )
        if not report.ok:
            bad.append(org)
    if bad:
        for org in bad:
            console.print(
                f"FAIL {org}: ledger does not verify (accord ledger verify --dir {layout.orgs[org]})"
            )
        return 1
    try:
        for org in orgs:
            procs.append(NodeProcess(layout.orgs[org]).start())
        for p in procs:
            console.print(f"  {p.directory.name:9s} pid {p.pid}  {p.endpoint}")
        console.print(
            "the scenario is not replayed on a federation with history; use a new --workdir for that"
        )
        if keep_running:
            console.print("nodes keep running; press Ctrl-C to stop")
            try:
                while all(p.alive() for p in procs):
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        for p in procs:
            p.stop()


def summary_json(layout: Layout) -> str:
    """The per-pair summary as JSON (for scripts)."""
    return json.dumps(pair_summary(layout, scenario.ORGS), indent=2)
