"""A PostgreSQL 15 server of the test's own, in a temporary directory (fault tests restart it).

The machine's shared server (port 5432) is never touched: :class:`OwnPostgres`
runs ``initdb`` into a temporary directory and ``pg_ctl`` on a free port
(``trust`` authentication on 127.0.0.1 only). PostgreSQL refuses to run as
root, so under root the binaries run as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa


def available() -> str:
    """``""`` when an own server can run here, else why not (a skip reason)."""
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return ""


class OwnPostgres:
    """One PostgreSQL server: ``start``, ``restart_fast``, ``stop_immediate``, ``stop``.

    Attributes:
        port: its TCP port on 127.0.0.1.
        root: the temporary directory holding the data directory and the server log.

    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="accord-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            os.chmod(self.root, 0o777)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=timeout)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> OwnPostgres:
        """``initdb`` (trust authentication, UTF-8) and start."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as fh:
            fh.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 200\nshared_buffers = 32MB\nfsync = on\n"
            )
        return self.start()

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", *args)

    def start(self) -> OwnPostgres:
        """Start the server and wait until it accepts connections."""
        self._ctl("start")
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until ``SELECT 1`` succeeds."""
        deadline = time.monotonic() + timeout
        engine = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)
        try:
            while True:
                try:
                    with engine.connect() as conn:
                        conn.execute(sa.text("SELECT 1"))
                    return
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            engine.dispose()

    def restart_fast(self) -> None:
        """``pg_ctl restart -m fast``: sessions are terminated, open transactions rolled back."""
        self._ctl("restart", "-m", "fast")
        self.wait_ready()

    def stop_immediate(self) -> None:
        """``pg_ctl stop -m immediate``: the server quits without a shutdown checkpoint (a crash)."""
        self._ctl("stop", "-m", "immediate")

    def stop(self) -> None:
        """Stop the server (fast) and remove its directory."""
        try:
            self._ctl("stop", "-m", "fast")
        except subprocess.CalledProcessError:
            pass  # already down
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL."""
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)
