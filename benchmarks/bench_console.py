"""Console benchmark: the ledger explorer's first page at 1,000,000 entries, next to a bare query.

A real node directory (``accord node init``) gets a ledger of N entries (rows
inserted in bulk with the same columns and field rows the log writes; the tree
is not integrated: the explorer does not read it), then an ``accord console``
process serves it. For each case the explorer page is requested over HTTP
and its server time read from the ``Server-Timing: app;dur=`` header
(authentication, the query, rendering 50 rows); in the same run the bare
``TransparencyLog.query`` of the same page (the read ``accord ledger query``
does, newest first) is timed in-process. Besides column filters and keyset
cursors, the cases include an agent named only in delegation provenance (every
:data:`RARE_EVERY`-th entry; ``ledger_entry_agents``) and ``since``/``until``
windows of several sizes and ages (entry *i* is dated ``T0 + i`` seconds).

Run: ``accord bench console [--entries N] [--samples K] [--json]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

TARGET_MS = 50.0
T0 = 1_790_000_000
"""Entry ``i`` is dated ``T0 + i`` seconds (one entry per second)."""
RARE_EVERY = 10_000
"""Every this many entries is a delegated request rooted in the rare agent (100 at 1,000,000)."""
RARE_AGENT = "did:key:z6MkRareRootAgent"
CASES = [
    ("first page", ""),
    ("kind=denial", "kind=denial"),
    ("contract filter", "contract=contract-7"),
    ("decision=deny + field", "decision=deny&field=diagnosis"),
    ("deep page (before=N/2)", "before={half}"),
    ("counterpart (1 of 7)", "counterpart=did:web:requester3.accord.test"),
    ("kind=drift (no match)", "kind=drift"),
    # delegation provenance only: the agent is never requester_agent or provider_agent
    ("agent, rare (delegation root)", "agent=" + RARE_AGENT),
    ("agent, rare + before=N/2", "agent=" + RARE_AGENT + "&before={half}"),
    ("since/until: 1 h mid-log", "since={mid}&until={mid_1h}"),
    ("since: last day", "since={last_day}"),
    ("until: first tenth (old)", "until={tenth}"),
    # the costliest shape: a window of almost every entry that stops short of the newest 10,000
    ("until: all but newest 20k", "until={but_20k}"),
    ("since/until 1 h + kind=denial", "since={mid}&until={mid_1h}&kind=denial"),
]


def _rfc3339(i: int) -> str:
    """The time of entry ``i`` (RFC 3339, UTC)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(T0 + i, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _case_params(n: int) -> dict[str, str]:
    """Values for the placeholders of :data:`CASES` at ``n`` entries."""
    return {
        "half": str(n // 2),
        "mid": _rfc3339(n // 2),
        "mid_1h": _rfc3339(n // 2 + 3600),
        "last_day": _rfc3339(max(0, n - 86_400)),
        "tenth": _rfc3339(n // 10),
        "but_20k": _rfc3339(max(0, n - 20_000)),
    }


def _kind(i: int) -> str:
    return "audit_denial" if i % 50 == 0 else "denial" if i % 12 == 0 else "disclosure"


def _template(kind: str, *, delegated: bool = False) -> tuple[bytes, dict, list[tuple[int, str]]]:
    """One entry of ``kind`` with placeholders, built and canonicalized by the ledger's own model.

    ``delegated``: the request came through a delegation chain rooted in :data:`RARE_AGENT`
    (``extra.root_agent``/``chain_agents``, as the provider logs it).
    """
    from ledger import DisclosureEntry
    from ledger.log import _indexed

    decision = "allow" if kind == "disclosure" else "deny"
    e = DisclosureEntry(
        kind=kind,
        disclosure_id="bench-@ID@",
        time="2026-11-01T05:00:00Z",
        provider_org="did:web:bench.accord.test",
        requester_org="did:web:requester@R@.accord.test",
        requester_agent="did:key:z6MkAgent@A@",
        contract_id="contract-@C@",
        contract_hash="ab" * 32,
        purpose="care-coordination",
        fields_requested=("name", "diagnosis", "zip"),
        fields_released=("diagnosis",) if decision == "allow" else (),
        fields_stripped=("name",) if decision == "allow" else (),
        record_count=1 if decision == "allow" else 0,
        decision=decision,
        reason="" if decision == "allow" else "NOT_PERMITTED",
        decision_hash="cd" * 32,
        request_digest="01" * 32,
        response_digest="02" * 32 if decision == "allow" else "",
        effective_trust=0.75,
        extra={"root_agent": RARE_AGENT, "chain_agents": f"{RARE_AGENT},did:key:z6MkAgent@A@"}
        if delegated
        else {},
    )
    cols, fields = _indexed(e)
    return e.canonical_bytes(), cols, fields


def _entry_bytes(i: int, templates: dict) -> tuple[bytes, dict, list[tuple[int, str]]]:
    """Entry ``i`` from its kind's template (placeholders replaced: ids, times, orgs, agents, contracts)."""
    data, cols, fields = templates[(_kind(i), i % RARE_EVERY == RARE_EVERY // 2)]
    t = T0 + i  # one entry per second
    import datetime as dt

    when = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    r, a, c = str(i % 7), str(i % 101), str(i % 13)
    data = (
        data.replace(b"@ID@", f"{i:09d}".encode())
        .replace(b"2026-11-01T05:00:00Z", when.encode())
        .replace(b"requester@R@", b"requester" + r.encode())
        .replace(b"Agent@A@", b"Agent" + a.encode())
        .replace(b"contract-@C@", b"contract-" + c.encode())
    )
    cols = {
        **cols,
        "time_us": t * 1_000_000,
        "requester_org": f"did:web:requester{r}.accord.test",
        "requester_agent": f"did:key:z6MkAgent{a}",
        "contract_id": f"contract-{c}",
    }
    return data, cols, fields


def fill(node_dir: Path, n: int, *, progress=print) -> None:
    """Insert ``n`` entries into the node's ledger tables in bulk (same rows the log writes)."""
    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly
    from ledger import leaf_hash
    from ledger.query import agent_key
    from ledger.storage import schema

    ident = NodeIdentity.load(node_dir)
    open_ledger_readonly(ident).close()  # creates and migrates the schema
    engine = sa.create_engine(f"sqlite:///{node_dir / 'node.db'}")
    batch = 20_000
    t0 = time.perf_counter()
    with engine.begin() as c:
        c.exec_driver_sql("PRAGMA journal_mode=WAL")
    templates = {
        (k, d): _template(k, delegated=d)
        for k in ("disclosure", "denial", "audit_denial")
        for d in (False, True)
    }
    for start in range(0, n, batch):
        rows, frows, arows = [], [], []
        for i in range(start, min(n, start + batch)):
            data, cols, fields = _entry_bytes(i, templates)
            rows.append(
                {
                    "idx": i,
                    "disclosure_id": f"bench-{i:09d}",
                    "leaf_hash": leaf_hash(data),
                    "data": data,
                    "sequenced_at_us": cols["time_us"],
                    **cols,
                }
            )
            frows += [{"idx": i, "role": role, "field": f} for role, f in fields]
            if i % RARE_EVERY == RARE_EVERY // 2:
                chain = (RARE_AGENT, cols["requester_agent"])
                arows += [{"agent_sha256": agent_key(a), "idx": i} for a in chain]
        with engine.begin() as c:
            c.execute(sa.insert(schema.entries), rows)
            c.execute(sa.insert(schema.entry_fields), frows)
            if arows:
                c.execute(sa.insert(schema.entry_agents), arows)
        done = min(n, start + batch)
        if done % 100_000 == 0 or done == n:
            progress(f"  filled {done:,} / {n:,} entries ({time.perf_counter() - t0:.0f} s)")
    with engine.begin() as c:
        c.execute(sa.update(schema.sequence).values(next_index=n))
        c.exec_driver_sql("ANALYZE")
    engine.dispose()


def _pct(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(s[max(0, int(len(s) * 0.95) - 1)], 3)}


def _bare(ledger, query: str) -> tuple[list[float], int]:
    """Time the bare ``TransparencyLog.query`` of the page (plus the CLI's row conversion)."""
    import datetime as dt
    from urllib.parse import parse_qs

    from federation.cli.ledger import entry_row
    from ledger import EntryFilter

    q = {k: v[0] for k, v in parse_qs(query).items()}
    since, until = (
        dt.datetime.fromisoformat(q[k].replace("Z", "+00:00")) if k in q else None for k in ("since", "until")
    )
    flt = EntryFilter(
        since=since,
        until=until,
        counterpart_org=q.get("counterpart"),
        agent_did=q.get("agent"),
        kind=q.get("kind"),
        contract_id=q.get("contract"),
        decision=q.get("decision"),
        field=q.get("field"),
        end_index=int(q["before"]) if "before" in q else None,
        limit=51,
        newest_first=True,
    )
    out = []
    for _ in range(ARGS_SAMPLES[0]):
        t0 = time.perf_counter()
        rows = [entry_row(e) for e in ledger.query(flt)]
        out.append((time.perf_counter() - t0) * 1000)
    return out, min(len(rows), 50)


ARGS_SAMPLES = [50]


def run(
    *, entries: int = 1_000_000, samples: int = 50, json_output: bool = False, workdir: Path | None = None
):
    """Build the ledger, serve it, time the explorer and the bare query; print the comparison."""
    from federation.identity import NodeIdentity, init_node
    from federation.ledger_view import open_ledger_readonly

    ARGS_SAMPLES[0] = samples
    load_before = [round(x, 2) for x in os.getloadavg()]
    say = (lambda *_: None) if json_output else print
    tmp = tempfile.TemporaryDirectory(prefix="accord-bench-console-")
    root = Path(workdir or tmp.name) / "bench"
    if not (root / "node.toml").exists():
        init_node(root, org_name="bench", listen="127.0.0.1:0")
        say(f"filling a ledger of {entries:,} entries in {root} …")
        fill(root, entries, progress=say)
    proc = subprocess.Popen(
        [sys.executable, "-m", "federation.cli.main", "console", "--dir", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if not line.startswith("console: "):
            raise RuntimeError(f"console did not start: {line!r} {proc.stderr.read()[:500]}")
        port = int(line.split()[1].rstrip("/").rsplit(":", 1)[1])
        ledger = open_ledger_readonly(NodeIdentity.load(root))
        results = []
        for name, query in CASES:
            query = query.format(**_case_params(entries))
            url = "/ledger" + (f"?{query}" if query else "")
            server, wall = [], []
            rows = 0
            # a connection per case: the bare query timed between cases outlasts uvicorn's keep-alive
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            for k in range(samples + 3):
                t0 = time.perf_counter()
                conn.request("GET", url)
                resp = conn.getresponse()
                body = resp.read()
                t1 = time.perf_counter()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
                if k < 3:  # warm-up
                    continue
                dur = resp.getheader("server-timing", "").split("dur=")[-1]
                server.append(float(dur))
                wall.append((t1 - t0) * 1000)
                rows = body.count(b"<tr data-index=")
            conn.close()
            say(f"  {name}: server p50 {statistics.median(server):.1f} ms")
            bare, bare_rows = _bare(ledger, query)
            assert rows == bare_rows, f"{name}: page shows {rows} rows, the bare query {bare_rows}"
            results.append(
                {
                    "case": name,
                    "url": url,
                    "rows": rows,
                    "server": _pct(server),
                    "http_wall": _pct(wall),
                    "bare_query": _pct(bare),
                }
            )
        ledger.close()
    finally:
        proc.terminate()
        proc.wait(10)
        tmp.cleanup()
    out = {
        "entries": entries,
        "samples": samples,
        "target_p50_ms": TARGET_MS,
        "cases": results,
        "first_page_meets_target": results[0]["server"]["p50_ms"] < TARGET_MS,
        "machine": "2-core python-svc, shared with other sessions (loaded)",
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
    }
    if json_output:
        print(json.dumps(out, indent=2))
        return out
    print(
        f"\nledger explorer at {entries:,} entries ({samples} requests per case; "
        f"target p50 < {TARGET_MS:g} ms)"
    )
    print(
        f"{'case':26s} {'rows':>4s} {'server p50':>11s} {'p95':>8s} {'bare query p50':>15s} {'overhead':>9s}"
    )
    for r in results:
        s, b = r["server"], r["bare_query"]
        print(
            f"{r['case']:26s} {r['rows']:4d} {s['p50_ms']:9.2f}ms {s['p95_ms']:6.2f}ms {b['p50_ms']:13.2f}ms "
            f"{s['p50_ms'] - b['p50_ms']:7.2f}ms"
        )
    print("first page " + ("meets" if out["first_page_meets_target"] else "MISSES") + " the target")
    print(f"load average (1, 5, 15 min): before {load_before}, after {out['load_average']['after']}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument(
        "--workdir", type=Path, default=None, help="Keep (and reuse) the filled node directory here."
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    run(entries=a.entries, samples=a.samples, json_output=a.json, workdir=a.workdir)


if __name__ == "__main__":
    main()
