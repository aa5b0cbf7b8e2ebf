"""docs/deploy/accord-node.service runs what exists: systemd accepts it and its commands parse."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "accord-node.service"


def _directives() -> list[tuple[str, str]]:
    out = []
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def test_exec_lines_are_accord_commands_that_parse():
    reload = [v for k, v in _directives() if k == "ExecReload"]
    assert reload == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads the node directory (keys, certificates)
    execs = [v for k, v in _directives() if k.startswith("Exec") and k != "ExecReload"]
    assert execs and any(" node start" in v for v in execs)
    for value in execs:
        argv = shlex.split(value.lstrip("-+!@"))
        assert argv[0].endswith("/accord")
        p = subprocess.run(
            [sys.executable, "-m", "federation.cli.main", *argv[1:], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, f"{value}: {p.stderr}"


def test_node_directory_comes_from_the_environment_the_unit_sets(tmp_path, monkeypatch):
    from federation.config import resolve_node_dir

    env = dict(v.split("=", 1) for k, v in _directives() if k == "Environment")
    assert env["ACCORD_NODE_DIR"].startswith("/var/lib/accord")
    monkeypatch.setenv("ACCORD_NODE_DIR", str(tmp_path))
    assert resolve_node_dir(None) == tmp_path
    assert ("UMask", "0077") in _directives()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path):
    accord = Path(sys.executable).with_name("accord")
    if not accord.exists():
        pytest.skip("the accord console script is not installed next to the interpreter")
    unit = tmp_path / "accord-node.service"
    unit.write_text(UNIT.read_text().replace("/opt/accord/bin/accord", str(accord)))
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "accord-node.service" not in p.stderr, p.stderr
