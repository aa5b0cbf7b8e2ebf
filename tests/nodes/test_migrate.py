"""``accord node migrate``: the documented upgrade path of a node database (Alembic)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from nodes.test_cli_walkthrough import accord, ok, one_line_error

pytestmark = pytest.mark.xdist_group("cli")


def _old_node(tmp_path: Path, capsys) -> tuple[Path, str]:
    """A node whose database was created by a version that stopped at ``0001_node_tables``."""
    from alembic import command
    from alembic.config import Config

    from federation.config import database_url_for, load_config
    from federation.store import make_engine
    from ledger.storage.repository import LedgerStore

    d = tmp_path / "n"
    ok(capsys, "node", "init", "--org", "n", "--dir", d, "--listen", "127.0.0.1:7400")
    url = database_url_for(d, load_config(d))
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__import__("federation").__file__).parent / "migrations"))
    with engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_node_tables")
    engine.dispose()
    LedgerStore.open(url).close()
    return d, url


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_path_check_refuse_then_migrate(tmp_path, capsys):
    d, url = _old_node(tmp_path, capsys)
    assert "node_datasets" not in _tables(url)
    code, out, _ = accord(capsys, "node", "migrate", "--dir", d, "--check")
    assert code == 1
    assert (
        "node tables: would upgrade 0001_node_tables -> 0005_session_counters "
        "(0002_datasets, 0003_replica_state, 0004_approvals, 0005_session_counters)" in out
    )
    assert "ledger tables: at 0003 (up to date)" in out
    assert "node_datasets" not in _tables(url)  # --check changes nothing
    # with auto_migrate = false, node start refuses a database that is behind (before binding anything)
    cfg = d / "node.toml"
    cfg.write_text(cfg.read_text().replace("auto_migrate = true", "auto_migrate = false"))
    started = subprocess.run(  # a real process: node start configures the process's logging
        [sys.executable, "-m", "federation.cli.main", "node", "start", "--dir", str(d)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, err = started.returncode, started.stderr
    one_line_error(code, err, "SCHEMA_MISMATCH")
    assert "accord node migrate" in err and "0001_node_tables" in err
    assert not (d / "node.pid").exists()
    rows = json.loads(ok(capsys, "node", "migrate", "--dir", d, "--json"))
    assert [(r["tables"], r["from"], r["to"], r["status"]) for r in rows] == [
        ("node", "0001_node_tables", "0005_session_counters", "upgraded"),
        ("ledger", "0003", "0003", "up to date"),
    ]
    assert {"node_datasets", "node_dataset_records"} <= _tables(url)
    assert "up to date" in ok(capsys, "node", "migrate", "--dir", d, "--check")


def test_a_database_from_a_newer_version_is_refused(tmp_path, capsys):
    d, url = _old_node(tmp_path, capsys)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE node_alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    for args in (("--check",), ()):
        code, _, err = accord(capsys, "node", "migrate", "--dir", d, *args)
        one_line_error(code, err, "SCHEMA_MISMATCH")
        assert "0099_from_the_future" in err and "newer version" in err
