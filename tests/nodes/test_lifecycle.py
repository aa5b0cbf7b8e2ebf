"""A node's lifecycle on real processes: start, refuse a second start, stop, health, logs, metrics.

Each test starts real ``accord node start`` processes (gRPC over mutual TLS,
SQLite) and drives them as an operator or a supervisor would: the pid file,
``accord node stop``, the ``grpc.health.v1`` service with the operator
certificate, ``/healthz`` + ``/readyz`` and ``/metrics`` on the metrics port,
and the structured log.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from federation.supervisor import NodeProcess, free_port, wait_until

pytestmark = pytest.mark.xdist_group("lifecycle")


def accord(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def init(directory: Path, org: str, **update) -> Path:
    from federation.config import load_config, save_config
    from federation.identity import init_node

    init_node(directory, org_name=org, listen=f"127.0.0.1:{free_port()}")
    cfg = load_config(directory)
    save_config(directory, cfg.model_copy(update={"metrics_port": free_port(), **update}))
    return directory


def append_entries(directory: Path, n: int) -> int:
    """Append ``n`` entries to a stopped node's ledger and sign a checkpoint; returns the size."""
    import datetime as dt

    from federation.identity import NodeIdentity
    from federation.ledger_view import open_ledger_readonly
    from ledger import DisclosureEntry

    ident = NodeIdentity.load(directory)
    lg = open_ledger_readonly(ident)
    try:
        lg.append(
            [
                DisclosureEntry(
                    kind="disclosure",
                    disclosure_id="dsc_" + secrets.token_hex(16),
                    time=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    provider_org=ident.org_did,
                    requester_org="did:web:beta.accord.test",
                    requester_agent="",
                    provider_agent="",
                    contract_id="c",
                    contract_hash="",
                    purpose="p",
                    fields_requested=["x"],
                    fields_released=["x"],
                    fields_stripped=[],
                    record_count=1,
                    decision="allow",
                    reason="",
                    decision_hash="",
                    request_digest="",
                    response_digest="",
                    effective_trust=0.5,
                )
                for _ in range(n)
            ]
        )
        lg.integrate()
        return lg.size()
    finally:
        lg.close()


def metrics_port(directory: Path) -> int:
    return tomllib.loads((directory / "node.toml").read_text())["metrics_port"]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def grpc_health(directory: Path, endpoint: str, service: str = "") -> str:
    """``grpc.health.v1.Health/Check`` over mutual TLS with the operator certificate."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from federation.admin_client import admin_channel

    async def check() -> str:
        async with admin_channel(directory, endpoint) as channel:
            r = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10
            )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    return asyncio.run(check())


def test_second_start_stop_and_port_in_use(tmp_path):
    a = init(tmp_path / "alpha", "alpha")
    proc = NodeProcess(a).start()
    try:
        info = json.loads((a / "node.pid").read_text())
        assert info["pid"] == proc.pid and info["port"] == int(proc.endpoint.rpartition(":")[2])
        # a second node on the same directory honours the pid file: one line, exit 1, first one unharmed
        p = accord("node", "start", "--dir", a)
        assert p.returncode == 1 and p.stderr.count("\n") == 1
        assert p.stderr.startswith("accord: error: NODE_RUNNING:") and f"pid {proc.pid}" in p.stderr
        assert proc.alive() and json.loads((a / "node.pid").read_text())["pid"] == proc.pid
        # schema upgrades wait for the node to stop (only when one is pending: here nothing is)
        p = accord("node", "migrate", "--dir", a, "--check")
        assert p.returncode == 0 and "up to date" in p.stdout, p.stderr
        # another node configured on the same port: one line naming node.toml's key, no gRPC noise
        b = init(tmp_path / "beta", "beta", listen=proc.endpoint, metrics_port=0)
        p = accord("node", "start", "--dir", b)
        assert p.returncode == 1, p.stderr
        assert (
            p.stderr
            == f"accord: error: ADDRESS_IN_USE: listen = '{proc.endpoint}' in node.toml: address already in use\n"
        )
        assert not (b / "node.pid").exists()
        # accord node stop: graceful, the pid file goes with the process
        p = accord("node", "stop", "--dir", a)
        assert p.returncode == 0 and f"pid {proc.pid}" in p.stdout, p.stderr
        assert not proc.alive() and proc.stop() == 0
        assert not (a / "node.pid").exists()
        assert "node stopped" in (a / "node.log").read_text()
        p = accord("node", "stop", "--dir", a)
        assert p.returncode == 1 and p.stderr.startswith("accord: error: NODE_NOT_RUNNING:")
    finally:
        proc.stop()


def test_stale_pid_file_of_a_killed_node_is_taken_over(tmp_path):
    a = init(tmp_path / "alpha", "alpha", metrics_port=0)
    first = NodeProcess(a).start()
    first.kill()  # SIGKILL: the pid file stays, its lock dies with the process
    assert (a / "node.pid").exists()
    p = accord("node", "stop", "--dir", a)
    assert p.returncode == 1 and "NODE_NOT_RUNNING" in p.stderr
    second = NodeProcess(a).start()
    try:
        assert json.loads((a / "node.pid").read_text())["pid"] == second.pid
    finally:
        second.stop()


def test_health_readiness_and_ledger_size_after_restart(tmp_path):
    a = init(tmp_path / "alpha", "alpha", witnesses=["ghost"], http_listen=f"127.0.0.1:{free_port()}")
    size = append_entries(a, 3)
    proc = NodeProcess(a).start()
    try:
        base = f"http://127.0.0.1:{metrics_port(a)}"
        # the gauge reads the stored ledger at start, not 0 until the next exchange
        status, text = http_get(f"{base}/metrics")
        assert status == 200 and f"accord_ledger_size_entries {float(size)}" in text
        assert http_get(f"{base}/healthz")[0] == 200
        # the configured witness is not pinned: not ready, saying why, on HTTP and gRPC alike
        status, body = http_get(f"{base}/readyz")
        doc = json.loads(body)
        assert status == 503 and doc["ready"] is False
        assert doc["checks"]["database"]["ok"] and doc["checks"]["ledger_writer"]["ok"]
        assert "ghost: not a pinned peer" in doc["checks"]["witness_quorum"]["detail"]
        assert grpc_health(a, proc.endpoint) == "NOT_SERVING"
        # the (possibly public) tiles address answers readiness without the details
        public = f"http://127.0.0.1:{json.loads((a / 'node.pid').read_text())['http_port']}"
        assert http_get(f"{public}/readyz") == (503, '{"ready": false}')
        assert http_get(f"{public}/healthz")[0] == 200
        assert grpc_health(a, proc.endpoint, "accord.federation.v1.FederationService") == "NOT_SERVING"
        # the operator drops the witness; the running node reloads and becomes ready
        from federation.config import load_config, save_config

        save_config(a, load_config(a).model_copy(update={"witnesses": []}))
        from federation.cli.common import nudge_running_node

        assert "reloaded" in (nudge_running_node(a) or "")
        assert wait_until(lambda: http_get(f"{base}/readyz")[0] == 200, timeout=20)
        assert wait_until(lambda: grpc_health(a, proc.endpoint) == "SERVING", timeout=20)
    finally:
        proc.stop()


def test_witnessing_failures_are_logged_and_explained(tmp_path):
    a = init(tmp_path / "alpha", "alpha", witnesses=["beta"], witness_interval_seconds=0.3)
    b = init(tmp_path / "beta", "beta")
    bundle = tmp_path / "beta.json"
    assert accord("peer", "export-bundle", "--dir", b, "--out", bundle).returncode == 0
    assert accord("peer", "add", bundle, "--dir", a).returncode == 0
    append_entries(a, 2)
    command = [sys.executable, "-m", "federation.cli.main", "node", "start", "--dir", str(a), "--json-logs"]
    proc = NodeProcess(a, command=command).start()  # beta is never started
    assert json.loads(proc.ready_line) == {"event": "READY", "org": "alpha", "endpoint": proc.endpoint}
    log_path = a / "node.log"
    try:

        def failure_lines():
            return [
                json.loads(ln)
                for ln in log_path.read_text().splitlines()
                if ln.startswith("{") and '"witnessing failed"' in ln
            ]

        assert wait_until(lambda: failure_lines(), timeout=30), log_path.read_text()[-2000:]
        line = failure_lines()[0]
        assert line["witness"] == "beta" and line["error"] and line["level"] == "warning"
        # the same failure again is not logged every round
        assert wait_until(
            lambda: (json.loads(accord("ledger", "status", "--dir", a, "--json").stdout)["witnessing"]["per_witness"]
                     ["beta"].get("failures", 0)) >= 3,
            timeout=30,
        )  # fmt: skip
        failures = json.loads(accord("ledger", "status", "--dir", a, "--json").stdout)["witnessing"]
        assert len(failure_lines()) < failures["per_witness"]["beta"]["failures"]
        st = accord("ledger", "status", "--dir", a)
        assert st.returncode == 0, st.stderr
        assert "not witnessed: " in st.stdout and "beta: last attempt failed" in st.stdout
        assert "beta: never cosigned; last error at " in st.stdout
        # every line the node wrote is JSON with --json-logs (READY included)
        assert all(json.loads(ln) for ln in log_path.read_text().splitlines() if ln.strip())
    finally:
        proc.stop()
