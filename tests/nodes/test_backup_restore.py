"""``accord node backup`` / ``node restore`` on real node processes under exchanges.

The hospital node is backed up while the relief agency keeps exchanging
with it; the restored copy verifies (``ledger verify``). A backup taken at
rest and restored in the source's place keeps being witnessed by its peer;
an older backup started in its place is refused by the peer's witness (it
does not roll back). Bad archives are refused with nothing written.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from federation.client import AgentClient
from federation.supervisor import NodeProcess, wait_until
from nodes.conftest import start

pytestmark = pytest.mark.xdist_group("backup")


def accord(*args, check=True):
    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"accord {' '.join(map(str, args))}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def status(node: Path) -> dict:
    return json.loads(accord("ledger", "status", "--dir", node, "--json", check=False).stdout)


class Exchanges:
    """relief's triage coordinator asking the hospital, in a thread, until stopped."""

    def __init__(self, wallet: Path) -> None:
        self.wallet = wallet
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async with AgentClient.from_wallet(self.wallet) as c:
                    s = await c.open_session("hospital")
                    for i in range(20):
                        if self._stop.is_set():
                            return
                        await c.request(
                            s,
                            contract_id="relief-hospital-triage",
                            purpose="triage-coordination",
                            resource="patients",
                            subject=f"patient-00{1 + i % 3}",
                            fields=["patient_id", "triage_level"],
                        )
                        self.done += 1
            except Exception:  # a refusal or a restart: try again
                await asyncio.sleep(0.2)

    def __enter__(self) -> Exchanges:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def cosigned_by(node: Path, peer: str) -> int:
    """Size of the node's latest checkpoint if it carries a cosignature by ``peer``'s witness, else 0."""
    st = status(node)
    return st["checkpointed"] if f"\u2014 {peer}.accord.test/witness " in st["checkpoint"] else 0


def _cli(*args) -> tuple[int, str, str]:
    """Run ``accord ARGS`` in a subprocess: (exit code, stdout, stderr)."""
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, p.stdout, p.stderr


def witness_size(witness_node: Path, origin: str) -> int:
    """The size the node in ``witness_node`` last cosigned for ``origin``."""
    from federation.config import database_url_for
    from federation.identity import NodeIdentity
    from ledger import Witness

    ident = NodeIdentity.load(witness_node)
    w = Witness.open(
        database_url_for(ident.paths.root, ident.config),
        signer=ident.witness_signer(),
    )
    try:
        latest = w.latest(origin)
        return latest.checkpoint.size if latest else 0
    finally:
        w.close()


def test_backup_under_exchanges_restores_verifies_and_stays_witnessed(tmp_path):
    fed = start(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    hospital, relief = fed.layout.orgs["hospital"], fed.layout.orgs["relief"]
    origin = "hospital.accord.test/ledger"
    wallet = fed.layout.wallets["relief/triage-coordinator"]
    try:
        # 1. online, under exchanges: the snapshot is consistent
        with Exchanges(wallet) as ex:
            assert wait_until(lambda: ex.done >= 5, timeout=60)
            online = tmp_path / "online.tar.gz"
            out = accord("node", "backup", "--dir", hospital, "--out", online).stdout
            assert "it holds the node's private keys" in out
            assert wait_until(lambda: ex.done >= 15, timeout=60)  # still serving after the snapshot
        assert online.stat().st_mode & 0o777 == 0o600
        with tarfile.open(online) as tar:
            names = tar.getnames()
            manifest = json.load(tar.extractfile("accord-backup.json"))
        assert {"keys/org.jwk", "keys/ledger.seed", "tls/ca.key", "node.db"} <= set(names)
        assert "node.pid" not in names and not any(n.endswith(("-wal", "-shm")) for n in names)
        older = tmp_path / "older"
        accord("node", "restore", "--from", online, "--dir", older)
        assert (older / "keys" / "org.jwk").stat().st_mode & 0o777 == 0o600
        assert (older / "agents").is_dir() and (older / "node.db").stat().st_mode & 0o777 == 0o600
        accord("ledger", "verify", "--dir", older)
        assert status(older)["integrated"] == manifest["ledger_size"] > 0
        assert status(hospital)["integrated"] > manifest["ledger_size"]  # the source went on writing

        # 2. at rest (witnessed), restored in the source's place: the peer's witness goes on cosigning
        assert wait_until(
            lambda: cosigned_by(hospital, "relief") == status(hospital)["checkpointed"], timeout=60
        )
        at_rest = tmp_path / "at-rest.tar.gz"
        accord("node", "backup", "--dir", hospital, "--out", at_rest)
        fed.procs["hospital"].stop()
        moved = tmp_path / "moved"
        accord("node", "restore", "--from", at_rest, "--dir", moved)
        accord("ledger", "verify", "--dir", moved)
        before = witness_size(relief, origin)
        fed.procs["hospital"] = NodeProcess(moved).start()
        with Exchanges(wallet) as ex:
            assert wait_until(lambda: ex.done >= 3, timeout=60)
        grown = status(moved)["checkpointed"]
        assert grown > before
        assert wait_until(lambda: witness_size(relief, origin) >= grown, timeout=60)
        assert wait_until(lambda: cosigned_by(moved, "relief") >= grown, timeout=60)

        # 3. the older backup in its place: the witness refuses to roll back
        fed.procs["hospital"].stop()
        held = witness_size(relief, origin)
        fed.procs["hospital"] = NodeProcess(older).start()
        refused = "ROLLBACK: witness holds size"  # what `ledger status` says about the witness
        assert wait_until(lambda: refused in json.dumps(status(older)["witnessing"]), timeout=60)
        assert witness_size(relief, origin) == held > manifest["ledger_size"] == status(older)["checkpointed"]

        # 4. the documented recovery: the partner's operator resets its witness for the origin
        #    (`accord peer reset-witness`: shows the held size, then resets only with that size)
        shown = _cli("peer", "reset-witness", "hospital", "--dir", relief)
        assert shown[0] == 0 and f"--held-size {held}" in shown[1]
        wrong = _cli("peer", "reset-witness", "hospital", "--dir", relief, "--held-size", held + 1)
        assert wrong[0] != 0 and "WITNESS_STATE_CHANGED" in wrong[2]
        assert witness_size(relief, origin) == held  # nothing changed
        done = _cli("peer", "reset-witness", "hospital", "--dir", relief, "--held-size", held)
        assert done[0] == 0, done
        assert wait_until(lambda: witness_size(relief, origin) == manifest["ledger_size"], timeout=60)
    finally:
        fed.stop()


def test_restore_refuses_bad_archives_and_writes_nothing(tmp_path):
    import io

    from federation.identity import init_node
    from federation.supervisor import free_port

    node = tmp_path / "n"
    init_node(node, org_name="acme", listen=f"127.0.0.1:{free_port()}")
    good = tmp_path / "good.tar.gz"
    accord("node", "backup", "--dir", node, "--out", good)
    again = accord("node", "backup", "--dir", node, "--out", good, check=False)
    assert again.returncode == 1 and "never overwrites" in again.stderr

    def rewrite(name: str, change) -> Path:
        """A copy of the good archive with its members passed through ``change``."""
        bad = tmp_path / name
        with tarfile.open(good) as src, tarfile.open(bad, "w:gz") as dst:
            for m in src.getmembers():
                data = src.extractfile(m).read() if m.isfile() else None
                for m2, d2 in change(m, data):
                    dst.addfile(m2, io.BytesIO(d2) if d2 is not None else None)
        return bad

    def tamper_key(m, data):
        if m.name == "keys/org.jwk":
            data = data.replace(b"d", b"e", 1)
        yield m, data

    def extra_member(m, data):
        yield m, data
        if m.name == "node.toml":
            evil = tarfile.TarInfo("../escape.txt")
            evil.size = 4
            yield evil, b"evil"

    def link_member(m, data):
        yield m, data
        if m.name == "node.toml":
            link = tarfile.TarInfo("keys/stolen")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            yield link, None

    cases = {
        "tampered.tar.gz": (rewrite("tampered.tar.gz", tamper_key), "keys/org.jwk has SHA-256"),
        "escape.tar.gz": (rewrite("escape.tar.gz", extra_member), "not in the manifest"),
        "link.tar.gz": (rewrite("link.tar.gz", link_member), "not a file or directory"),
    }
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    cases["junk"] = (tmp_path / "junk.tar.gz", "not a readable gzip'd tar archive")
    raw = good.read_bytes()
    for cut in (10, len(raw) // 3, len(raw) // 2, len(raw) - 9):  # truncated: any place, one line
        (tmp_path / f"cut-{cut}.tar.gz").write_bytes(raw[:cut])
        cases[f"cut-{cut}"] = (tmp_path / f"cut-{cut}.tar.gz", "not a readable gzip'd tar archive")

    def bad_digest(m, data):
        if m.name == "accord-backup.json":
            doc = json.loads(data)
            doc["files"]["node.toml"] = 7
            data = json.dumps(doc).encode()
            m.size = len(data)
        yield m, data

    cases["digest-type"] = (rewrite("digest-type.tar.gz", bad_digest), "not names with SHA-256 digests")
    for name, (archive, message) in cases.items():
        target = tmp_path / f"restored-{name}"
        p = accord("node", "restore", "--from", archive, "--dir", target, check=False)
        assert p.returncode == 1 and message in p.stderr, (name, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1
        assert not target.exists() and not (tmp_path / "escape.txt").exists()
        assert not [x for x in tmp_path.iterdir() if x.name.startswith(".restored-")]
    ok = tmp_path / "restored-ok"
    accord("node", "restore", "--from", good, "--dir", ok)
    accord("ledger", "verify", "--dir", ok)
    occupied = accord("node", "restore", "--from", good, "--dir", ok, check=False)
    assert occupied.returncode == 1 and "not empty" in occupied.stderr


def test_backup_of_a_postgresql_node_names_pg_dump(tmp_path):
    from federation.config import load_config, save_config
    from federation.identity import init_node
    from federation.supervisor import free_port

    node = tmp_path / "n"
    init_node(node, org_name="acme", listen=f"127.0.0.1:{free_port()}")
    cfg = load_config(node)
    save_config(node, cfg.model_copy(update={"database_url": "postgresql+psycopg://u@127.0.0.1:1/db"}))
    p = accord("node", "backup", "--dir", node, "--out", tmp_path / "b.tar.gz", check=False)
    assert p.returncode == 1 and "pg_dump" in p.stderr
    assert not (tmp_path / "b.tar.gz").exists()
