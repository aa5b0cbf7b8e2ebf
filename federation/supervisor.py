"""Starting and stopping real node processes (demo, tests, benchmarks).

Each node runs as its own OS process (``python -m federation.cli.main node
start --dir DIR``); :class:`NodeProcess` waits for its ``READY`` line,
and stops it with SIGTERM (SIGKILL after a grace period).
:class:`ReplicaSet` runs the replicas of one node directory
(``node start --replica I --replicas N``, each on its own port) and
restarts one that dies (``accord node start --replicas N``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_BELOW_EPHEMERAL = 12_000  # ports are drawn from this many just below the ephemeral range


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default lower bound


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``, outside the kernel's ephemeral range.

    Ports are written into node directories (``listen``, ``metrics_listen``)
    and bound later, when the node starts. A port from ``bind(0)`` lies in the
    ephemeral range, which the kernel also hands to outgoing connections, so
    one of those could take it in between (seen as ``address already in use``
    under parallel tests). A random port just below that range is never
    handed out by the kernel; it is checked free by binding it.

    Raises:
        OSError: no free port was found in 200 tries.

    """
    low = _ephemeral_low()
    start = max(1024, low - _BELOW_EPHEMERAL)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(start, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free TCP port on {host} in [{start}, {low})")


class NodeProcess:
    """One node process.

    Attributes:
        directory: the node directory.
        endpoint: ``HOST:PORT`` once ready.
        ready_line: the ready line as the node printed it (plain, or JSON with ``--json-logs``).
        log_path: where its stderr goes (``<dir>/node.log``).
        command: the argv that serves the node (``accord node start`` by
            default; test code passes another entry point, e.g.
            ``python -m interop_tests.misbehaving``).

    """

    def __init__(
        self, directory: Path, *, env: dict[str, str] | None = None, command: list[str] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.command = command or [
            sys.executable,
            "-m",
            "federation.cli.main",
            "node",
            "start",
            "--dir",
            str(self.directory),
        ]
        self.endpoint = ""
        self.ready_line = ""
        self.log_path = self.directory / "node.log"
        self._env = {**os.environ, **(env or {})}
        self._proc: subprocess.Popen[str] | None = None

    def start(self, *, timeout: float = 120.0) -> NodeProcess:
        """Start the process and wait for its READY line.

        The default ``timeout`` matches the verifier pool's own startup limit
        (``credentials.pool.STARTUP_TIMEOUT_SECONDS``): on a loaded machine the
        worker processes may take that long, and a process that exits ends the
        wait at once.

        Raises:
            RuntimeError: it exited or did not become ready within ``timeout`` seconds
                (the message holds the tail of its log).

        """
        from federation.paths import open_private_append

        log = open_private_append(self.log_path)  # node logs may name agents and fields
        self._proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=self._env,
        )
        result: list[str] = []

        def read() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:
                endpoint = ready_endpoint(line)
                if endpoint:
                    self.ready_line = line.rstrip("\n")
                    result.append(endpoint)
                    break

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            self.stop()
            tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"node in {self.directory} did not start:\n{tail}")
        self.endpoint = result[0]
        return self

    @property
    def pid(self) -> int:  # noqa: D102
        return self._proc.pid if self._proc else -1

    def alive(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, *, grace: float = 8.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        return self._proc.returncode

    def kill(self) -> None:
        """SIGKILL at once (crash tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)


def ready_endpoint(line: str) -> str | None:
    """The ``HOST:PORT`` of a node's ready line, or None for any other line.

    Two forms (``federation.server.run``): ``READY <org> <host:port>``, and with
    ``--json-logs`` the JSON object ``{"event": "READY", "org", "endpoint"}``.
    """
    import json

    if line.startswith("READY "):
        parts = line.split()
        return parts[2] if len(parts) >= 3 else None
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            return None
        if isinstance(doc, dict) and doc.get("event") == "READY" and isinstance(doc.get("endpoint"), str):
            return doc["endpoint"]
    return None


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def replica_command(directory: Path, index: int, count: int, *, json_logs: bool = False) -> list[str]:
    """The argv serving replica ``index`` of ``count`` of the node in ``directory``."""
    cmd = [
        sys.executable,
        "-m",
        "federation.cli.main",
        "node",
        "start",
        "--dir",
        str(directory),
        "--replica",
        str(index),
        "--replicas",
        str(count),
    ]
    return [*cmd, "--json-logs"] if json_logs else cmd


class ReplicaSet:
    """The replicas of one node directory, each a :class:`NodeProcess` (logs ``node-replica-<i>.log``).

    Args:
        directory: the node directory (its database must be PostgreSQL).
        count: how many replicas (2..64).
        env: extra environment for the processes.
        json_logs: start them with ``--json-logs``.

    """

    def __init__(
        self, directory: Path, count: int, *, env: dict[str, str] | None = None, json_logs: bool = False
    ) -> None:
        from federation.replicas import ReplicaRole

        ReplicaRole(index=0, count=count)  # validates the count
        self.directory = Path(directory)
        self.count = count
        self.procs: list[NodeProcess] = []
        for i in range(count):
            p = NodeProcess(
                self.directory,
                env=env,
                command=replica_command(self.directory, i, count, json_logs=json_logs),
            )
            p.log_path = self.directory / ("node.log" if i == 0 else f"node-replica-{i}.log")
            self.procs.append(p)

    @property
    def endpoints(self) -> list[str]:
        """``HOST:PORT`` of each replica (once started)."""
        return [p.endpoint for p in self.procs]

    def start(self, *, timeout: float = 120.0) -> ReplicaSet:
        """Start every replica and wait for each READY line (replica 0 first: it migrates the database).

        Raises:
            RuntimeError: a replica did not start (the others are stopped).

        """
        try:
            for p in self.procs:
                p.start(timeout=timeout)
        except Exception:
            self.stop()
            raise
        return self

    def restart(self, index: int, *, timeout: float = 120.0) -> NodeProcess:
        """Start replica ``index`` again (after it died or was stopped)."""
        p = self.procs[index]
        p.stop()
        return p.start(timeout=timeout)

    def stop(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after the grace period)."""
        for p in self.procs:
            p.stop()

    def supervise(self, *, stop: threading.Event, on_ready=None, backoff: float = 1.0) -> None:
        """Keep every replica running until ``stop`` is set; ``on_ready(index, ready_line)`` after each start.

        A replica that exits is started again after ``backoff`` seconds (doubling
        up to 30 s while it keeps failing to start).
        """
        delays = [backoff] * self.count
        while not stop.is_set():
            for i, p in enumerate(self.procs):
                if stop.is_set() or p.alive():
                    continue
                try:
                    p.start()
                except RuntimeError as exc:
                    print(
                        f"replica {i} did not start: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True
                    )
                    delays[i] = min(delays[i] * 2, 30.0)
                    stop.wait(delays[i])
                    continue
                delays[i] = backoff
                if on_ready is not None:
                    on_ready(i, p.ready_line)
            stop.wait(backoff)
        self.stop()
