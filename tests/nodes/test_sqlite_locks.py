"""Making node.db owner-only never drops this process's SQLite locks.

Closing any descriptor of a file drops every POSIX lock the process holds on
it (SQLite: "How To Corrupt An SQLite Database File", §2.2). The first
owner-only version opened and closed node.db whenever an engine was made,
while other connections of the same process were open; a node restarted in
the aggregate tests then found ``database disk image is malformed``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from federation.paths import create_private_sqlite

PROBE = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0)
print(c.execute("PRAGMA journal_mode=DELETE").fetchone()[0])
"""


def test_creating_the_private_database_keeps_the_locks_of_open_connections(tmp_path):
    db = tmp_path / "node.db"
    url = f"sqlite:///{db}"
    create_private_sqlite(url)  # new file: created 0600
    assert db.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.execute("SELECT * FROM t").fetchall()  # the connection holds its shared lock on node.db
    create_private_sqlite(url)  # another engine of the same process
    out = subprocess.run([sys.executable, "-c", PROBE, str(db)], capture_output=True, text=True)
    # with the lock intact the other process cannot leave WAL mode under our feet
    assert out.stdout.strip() == "wal" or "locked" in out.stderr, (out.stdout, out.stderr)
    conn.close()


def test_an_existing_wider_database_is_narrowed(tmp_path):
    db = tmp_path / "node.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    create_private_sqlite(f"sqlite:///{db}")
    assert db.stat().st_mode & 0o777 == 0o600
