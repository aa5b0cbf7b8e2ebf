"""Online backup and restore of a node (SQLite), as one owner-only archive.

``accord node backup --out FILE`` writes a gzip'd POSIX tar archive holding

* the node directory as it is on disk: ``node.toml``, ``keys/`` (the
  organization, ledger and witness **private keys**, or for a key held in a
  PKCS#11 token only the record naming it: restoring needs that token), ``tls/`` (CA and TLS
  private keys), ``peers/``, ``agents/`` (wallets with the agents' private
  keys), ``contracts/``, ``data/``, ``decisions.jsonl``, …; not ``node.pid``,
  ``node.log`` or the live database files;
* ``node.db``, a consistent snapshot of the SQLite database taken with
  SQLite's online backup API (``sqlite3.Connection.backup``, all pages in one
  step: https://www.sqlite.org/backup.html), while the node keeps running: in
  WAL mode readers do not block the writer, so the snapshot is one
  transaction-consistent state of agents, trust, budgets, auditor state,
  the ledger and the witness;
* ``accord-backup.json`` (last member): the format, the organization, the
  time, the ledger size and latest signed checkpoint in the snapshot, and the
  SHA-256 of every other member.

The archive holds private keys: it is created with mode 0600 (``O_CREAT |
O_EXCL``, never readable by others, not even for a moment) and must be stored
as the keys themselves are.

A node on PostgreSQL is not backed up by this command (it refuses, naming
``pg_dump``): its database is backed up with PostgreSQL's own tools
(``docs/operator-guide.md``, "Backup and restore").

:func:`restore_node` reads such an archive into a new directory: every member
is bounded, a regular file or directory with a relative path (tarfile's
``data`` filter), and checked against the manifest's digests (no member
missing, none extra) in a staging directory next to the target, which is
renamed into place only when everything checked. Restored directories are
0700, files 0600. The restored node is the same organization with the same
log: it must replace the source, never run beside it (two processes signing
one log with different histories is a split view its witnesses will catch).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.errors import FederationError
from federation.paths import open_private_new

BACKUP_FORMAT = "accord-node-backup/v1"
MANIFEST_NAME = "accord-backup.json"
DB_MEMBER = "node.db"
#: files of the node directory that are not state (the live database files are snapshotted instead)
_SKIP_TOP = {"node.pid", "node.log", MANIFEST_NAME}
#: bounds on an archive read back (a node directory has a few hundred files)
MAX_MEMBERS = 100_000
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_CHUNK = 1 << 20


class BackupError(FederationError):
    """A backup cannot be taken, or an archive cannot be restored (the message says which file and why)."""

    reason = "BACKUP_INVALID"
    status = "FAILED_PRECONDITION"
    caller_fault = True


@dataclass(frozen=True)
class BackupInfo:
    """What an archive holds (its manifest).

    Attributes:
        path: the archive file.
        org_name: organization name.
        org_did: organization DID.
        created_at: RFC 3339 UTC time of the snapshot.
        ledger_size: entries in the node's log in the snapshot.
        checkpoint: the latest signed checkpoint in the snapshot (C2SP signed note), or "".
        files: number of members besides the manifest.
        bytes: their total size, bytes.

    """

    path: Path
    org_name: str
    org_did: str
    created_at: str
    ledger_size: int
    checkpoint: str
    files: int
    bytes: int


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    raw = url[len(prefix) :].split("?", 1)[0]
    return Path(raw) if raw and raw != ":memory:" else None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _snapshot_sqlite(db: Path, dest: Path) -> None:
    """Copy ``db`` to ``dest`` (created 0600) with SQLite's online backup API, then check it.

    Raises:
        BackupError: the snapshot fails SQLite's integrity check.

    """
    open_private_new(dest).close()  # 0600 before SQLite writes a page into it
    src = sqlite3.connect(db, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)  # pages=-1: every page in one step, under one read transaction
            dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
            result = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if result != "ok":
        raise BackupError(f"the database snapshot fails SQLite's integrity check: {result}")


def _ledger_head(identity: Any, db_url: str) -> tuple[int, str]:
    """(size, latest signed checkpoint note or "") of the node's log in the database at ``db_url``."""
    from federation.identity import ledger_origin
    from ledger import TransparencyLog

    origin = ledger_origin(identity.config.org_name)
    lg = TransparencyLog.open(db_url, origin=origin, signer=identity.ledger_signer())
    try:
        cp = lg.latest_checkpoint()
        return lg.size(), (cp.note if cp else "")
    finally:
        lg.close()


def _state_files(root: Path, db_files: set[Path]) -> list[Path]:
    """Regular files of the node directory to archive, relative to ``root`` (symlinks are skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root)
            if path.is_symlink() or not path.is_file() or path.resolve() in db_files:
                continue
            if len(rel.parts) == 1 and (name in _SKIP_TOP or name.startswith(".")):
                continue
            if name.endswith(".tmp"):  # an atomic write in flight (federation.paths.write_private)
                continue
            out.append(rel)
    return out


def backup_node(node_dir: Path, out: Path, *, now: dt.datetime | None = None) -> BackupInfo:
    """Take a consistent online backup of the node in ``node_dir`` into ``out`` (see the module docstring).

    Args:
        node_dir: the node directory (the node may be running).
        out: the archive to create (mode 0600); must not exist.
        now: the snapshot time (UTC).

    Returns:
        The archive's manifest (:class:`BackupInfo`).

    Raises:
        ConfigError: ``node_dir`` is not a node directory.
        BackupError: ``out`` exists or its directory does not, or the node's
            database is not a SQLite file (PostgreSQL: ``pg_dump``).

    """
    from federation.config import database_url_for
    from federation.identity import NodeIdentity

    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    ident = NodeIdentity.load(node_dir)
    root = ident.paths.root.resolve()
    out = Path(out).absolute()
    url = database_url_for(root, ident.config)
    db = _sqlite_path(url)
    if db is None:
        raise BackupError(
            f"the database of {root} is {url.split(':', 1)[0]}, not a SQLite file: back it up with "
            "pg_dump and the node directory with tar (docs/operator-guide.md, Backup and restore)",
            metadata={"path": str(root)},
        )
    if not db.is_file():
        raise BackupError(f"{db} not found: the node has no database yet", metadata={"path": str(db)})
    if out.exists():
        raise BackupError(f"{out} exists: a backup never overwrites a file", metadata={"path": str(out)})
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory", metadata={"path": str(out)})
    db = db.resolve()
    db_files = {db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:  # 0700
        snap = Path(tmp) / DB_MEMBER
        _snapshot_sqlite(db, snap)
        ledger_size, checkpoint = _ledger_head(ident, f"sqlite:///{snap}")
        part = Path(tmp) / "archive"
        digests: dict[str, str] = {}
        total = 0
        with (
            open_private_new(part) as raw,
            tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar,
        ):

            def add_bytes(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(now.timestamp())
                tar.addfile(info, io.BytesIO(data))

            for dirpath, dirnames, _files in os.walk(root, followlinks=False):  # empty ones too (agents/)
                for d in sorted(dirnames):
                    if not (Path(dirpath) / d).is_symlink():
                        info = tarfile.TarInfo((Path(dirpath) / d).relative_to(root).as_posix())
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, int(now.timestamp())
                        tar.addfile(info)
            for rel in _state_files(root, db_files):
                try:
                    data = (root / rel).read_bytes()  # read once: the digest covers what is archived
                except FileNotFoundError:  # removed while we walked (e.g. an unenrolled file)
                    continue
                digests[rel.as_posix()] = hashlib.sha256(data).hexdigest()
                total += len(data)
                add_bytes(rel.as_posix(), data)
            digests[DB_MEMBER] = _sha256_file(snap)
            total += snap.stat().st_size
            info = tar.gettarinfo(str(snap), arcname=DB_MEMBER)
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
            with snap.open("rb") as fh:
                tar.addfile(info, fh)
            manifest = {
                "format": BACKUP_FORMAT,
                "org_name": ident.config.org_name,
                "org_did": ident.org_did,
                "created_at": now.isoformat().replace("+00:00", "Z"),
                "database_url": ident.config.database_url,
                "ledger_size": ledger_size,
                "checkpoint": checkpoint,
                "files": digests,
            }
            add_bytes(MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode())
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, out)  # same file system: the archive appears whole or not at all
    return _info(out, manifest, total)


def _info(path: Path, manifest: dict[str, Any], total: int) -> BackupInfo:
    return BackupInfo(
        path=path,
        org_name=manifest["org_name"],
        org_did=manifest["org_did"],
        created_at=manifest["created_at"],
        ledger_size=int(manifest["ledger_size"]),
        checkpoint=manifest["checkpoint"],
        files=len(manifest["files"]),
        bytes=total,
    )


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST_NAME)
    except KeyError:
        raise BackupError(f"{archive} has no {MANIFEST_NAME}: not an Accord node backup") from None
    if not member.isfile() or member.size > MAX_MANIFEST_BYTES:
        raise BackupError(f"{archive}: {MANIFEST_NAME} is not a bounded regular file")
    fh = tar.extractfile(member)
    assert fh is not None
    try:
        manifest = json.loads(fh.read())
        if manifest["format"] != BACKUP_FORMAT:
            raise BackupError(f"{archive}: format {manifest['format']!r}, expected {BACKUP_FORMAT!r}")
        files = manifest["files"]
        if not isinstance(files, dict) or DB_MEMBER not in files:
            raise BackupError(f"{archive}: the manifest lists no {DB_MEMBER}")
        if not all(isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()):
            raise BackupError(f"{archive}: the manifest's files are not names with SHA-256 digests")
        for key in ("org_name", "org_did", "created_at", "ledger_size", "checkpoint"):
            manifest[key]  # noqa: B018 - presence check
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(
            f"{archive}: {MANIFEST_NAME} is malformed ({exc.__class__.__name__}: {exc})"
        ) from None
    return manifest


def _extract(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract ``archive`` into ``staging`` after bounding it; return its manifest (digests unchecked).

    Raises:
        BackupError: too many members, more bytes than the target's free space, a
            member that is not a listed regular file or a directory under the root,
            a listed member missing, or no valid manifest.
        tarfile.TarError, EOFError, zlib.error, OSError: the archive is unreadable.

    """
    with tarfile.open(archive, mode="r:gz") as tar:
        members = []
        for member in tar:  # reads the whole stream once: a truncated archive fails here
            members.append(member)
            if len(members) > MAX_MEMBERS:
                raise BackupError(f"{archive}: more than {MAX_MEMBERS} members")
        while tar.fileobj.read(_CHUNK):  # to the end of the gzip stream: its CRC-32 and length are checked
            pass
        claimed = sum(m.size for m in members if m.isfile())
        free = shutil.disk_usage(staging).free
        if claimed > free:
            raise BackupError(f"{archive}: members total {claimed} bytes, the target has {free} free")
        manifest = _read_manifest(tar, archive)
        listed = set(manifest["files"])
        seen = set()
        for member in members:
            if member.name == MANIFEST_NAME:
                continue
            if member.isfile():
                if member.name not in listed:
                    raise BackupError(f"{archive}: member {member.name[:200]!r} is not in the manifest")
                seen.add(member.name)
            elif not member.isdir():
                raise BackupError(f"{archive}: member {member.name[:200]!r} is not a file or directory")
            try:
                tar.extract(member, staging, filter="data")
            except tarfile.FilterError as exc:
                raise BackupError(f"{archive}: member {member.name[:200]!r} refused ({exc})") from None
        if listed - seen:
            raise BackupError(f"{archive}: members missing: {sorted(listed - seen)[:5]}")
    return manifest


def restore_node(archive: Path, new_dir: Path) -> BackupInfo:
    """Restore a backup archive into ``new_dir`` (new, or an empty directory).

    Args:
        archive: a file written by :func:`backup_node`.
        new_dir: where the node directory goes; it must not exist or be empty.

    Returns:
        The archive's manifest.

    Raises:
        BackupError: ``new_dir`` is not empty; the archive is not a gzip'd tar,
            has no valid manifest, has a member that is not a regular file or
            directory under the root, too many members, a member missing from
            or not listed in the manifest, a digest mismatch, or a database
            that fails SQLite's integrity check. Nothing is left behind.

    """
    archive = Path(archive)
    new_dir = Path(new_dir).absolute()
    if new_dir.exists() and (not new_dir.is_dir() or any(new_dir.iterdir())):
        raise BackupError(
            f"{new_dir} exists and is not empty: a restore never writes over a directory",
            metadata={"path": str(new_dir)},
        )
    if not new_dir.parent.is_dir():
        raise BackupError(f"{new_dir.parent} is not a directory", metadata={"path": str(new_dir)})
    staging = Path(tempfile.mkdtemp(dir=new_dir.parent, prefix=f".{new_dir.name}.restore-"))  # 0700
    try:
        try:
            manifest = _extract(archive, staging)
        except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeError) as exc:
            raise BackupError(
                f"{archive}: not a readable gzip'd tar archive ({exc.__class__.__name__}: {exc})",
                metadata={"path": str(archive)},
            ) from None
        for name, digest in manifest["files"].items():
            got = _sha256_file(staging / name)
            if got != digest:
                raise BackupError(
                    f"{archive}: {name} has SHA-256 {got[:16]}…, the manifest says {digest[:16]}…"
                )
        for dirpath, _dirnames, filenames in os.walk(staging):
            os.chmod(dirpath, 0o700)
            for name in filenames:
                os.chmod(Path(dirpath) / name, 0o600)
        db = staging / DB_MEMBER
        con = sqlite3.connect(db)
        try:
            result = con.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            result = str(exc)
        finally:
            con.close()
        if result != "ok":
            raise BackupError(f"{archive}: the database fails SQLite's integrity check: {result}")
        _point_config_at_restored_db(staging)
        if new_dir.exists():
            new_dir.rmdir()
        os.rename(staging, new_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _info(archive, manifest, sum(p.stat().st_size for p in new_dir.rglob("*") if p.is_file()))


def _point_config_at_restored_db(root: Path) -> None:
    """A node whose ``database_url`` named a SQLite file outside its directory now uses ``node.db`` in it."""
    from federation.config import load_config, save_config

    cfg = load_config(root)
    if cfg.database_url != f"sqlite:///{DB_MEMBER}":
        save_config(root, cfg.model_copy(update={"database_url": f"sqlite:///{DB_MEMBER}"}))
