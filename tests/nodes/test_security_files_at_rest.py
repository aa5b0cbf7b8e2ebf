"""Issue #10.9: every file a node writes that holds secrets or personal data is owner-only.

Modes are read with ``stat`` on real node directories: one made by
``accord node init`` (and an agent registration) under the common umask 022,
and the running demo federation's hospital after an exchange.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from federation.supervisor import wait_until
from nodes.conftest import run
from nodes.test_exchange import TRIAGE_MNI, _triage

pytestmark = pytest.mark.xdist_group("federation")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(root: Path, names: list[str]) -> dict[str, str]:
    """Files and directories under ``root`` (by glob) readable/writable by group or others."""
    bad = {}
    for pattern in names:
        matches = [root] if pattern == "." else list(root.glob(pattern))
        assert matches, f"nothing matches {pattern} under {root}"
        for p in matches:
            if _mode(p) & 0o077:
                bad[str(p.relative_to(root))] = oct(_mode(p))
    return bad


SECRET_FILES = [
    "node.toml",
    "keys/*",
    "tls/*.key",
    "agents/*.json",
    "node.db",
]
DIRECTORIES = [".", "keys", "tls", "peers", "agents", "contracts", "data"]


def _accord(*args, umask: int = 0o022):
    def pre():
        os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=pre,  # noqa: PLW1509 - sets the child's umask only
    )


def test_node_init_and_agent_register_create_owner_only_files(tmp_path):
    d = tmp_path / "n"
    assert _accord("node", "init", "--org", "atrest", "--dir", d).returncode == 0
    p = _accord("agent", "register", "--name", "a1", "--role", "r", "--scope", "s:read", "--dir", d)
    assert p.returncode == 0, p.stderr
    assert _open_to_others(d, SECRET_FILES + DIRECTORIES) == {}
    # a read of the ledger through SQLite leaves no world-readable side file
    assert _accord("ledger", "query", "--dir", d).returncode == 0
    assert _open_to_others(d, ["node.db*"]) == {}


def test_running_node_files_are_owner_only_after_an_exchange(fed):
    r = run(_triage(fed, TRIAGE_MNI, subject="patient-003"))
    assert r.decision == "allow"
    hospital = fed.layout.orgs["hospital"]
    assert wait_until(lambda: (hospital / "decisions.jsonl").exists(), timeout=20)
    patterns = SECRET_FILES + DIRECTORIES + ["node.db-wal", "node.db-shm", "decisions.jsonl", "data/*.json"]
    assert _open_to_others(hospital, patterns) == {}
    relief = fed.layout.orgs["relief"]
    assert _open_to_others(relief, SECRET_FILES + DIRECTORIES + ["node.db-wal", "node.log"]) == {}
