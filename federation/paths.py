"""Where things live in a node directory.

```
node.toml                 configuration (federation.config)
keys/org.jwk              organization Ed25519 key (JWK, RFC 8037; mode 0600)
keys/ledger.seed          ledger log key seed (hex; C2SP signed-note key type 0x01)
keys/witness.seed         witness cosignature key seed (hex; type 0x04)
tls/ca.pem, tls/ca.key    organization CA
tls/node.pem, node.key    node certificate (SAN URI = org DID)
tls/operator.pem, .key    operator certificate (AdminService)
peers/<name>.json         pinned, signed peer bundles
agents/<name>.json        agent wallets (agent key + AgentCredential; mode 0600)
contracts/<id>.json       registered contracts (signed by both parties)
data/<resource>.json      the organization's shareable records
node.db                   SQLite database (WAL): registry, trust, ledger, auditor state
decisions.jsonl           the decision log
node.pid                  pid and port of the running node
```

The node directory and every directory in it are created 0700; every file
holding secrets or personal data (keys, wallets, ``node.toml``, ``node.db``
with its ``-wal``/``-shm``, ``decisions.jsonl``) is created 0600 from the
start (:func:`write_private`, :func:`open_private_append`,
:func:`create_private_sqlite`), never narrowed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodePaths:
    """Paths of one node directory (see the module docstring)."""

    root: Path

    @property
    def config(self) -> Path:  # noqa: D102
        return self.root / "node.toml"

    @property
    def org_key(self) -> Path:  # noqa: D102
        return self.root / "keys" / "org.jwk"

    @property
    def ledger_seed(self) -> Path:  # noqa: D102
        return self.root / "keys" / "ledger.seed"

    @property
    def witness_seed(self) -> Path:  # noqa: D102
        return self.root / "keys" / "witness.seed"

    @property
    def tls(self) -> Path:  # noqa: D102
        return self.root / "tls"

    @property
    def peers(self) -> Path:  # noqa: D102
        return self.root / "peers"

    @property
    def agents(self) -> Path:  # noqa: D102
        return self.root / "agents"

    @property
    def contracts(self) -> Path:  # noqa: D102
        return self.root / "contracts"

    @property
    def data(self) -> Path:  # noqa: D102
        return self.root / "data"

    @property
    def pidfile(self) -> Path:  # noqa: D102
        return self.root / "node.pid"

    def tls_file(self, name: str) -> Path:
        """Path of ``tls/<name>`` (e.g. ``"node.pem"``)."""
        return self.tls / name


#: mode of every file a node writes that holds secrets or personal data
PRIVATE_FILE_MODE = 0o600
#: mode of every directory a node creates
PRIVATE_DIR_MODE = 0o700


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) owner-only (0700); an existing directory is left as is."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def write_private(path: Path, data: bytes | str) -> None:
    """Write a secret file, owner-only (0600) from creation, atomically.

    The bytes go to a fresh temporary file in the same directory, created
    with ``O_CREAT | O_EXCL`` and mode 0600 (never readable by others, not
    even for a moment), then renamed over ``path``.
    """
    import os
    import secrets

    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_private_new(path: Path):
    """Create ``path`` owner-only (0600) and open it for writing bytes; it must not exist.

    Created ``O_CREAT | O_EXCL | O_NOFOLLOW`` with mode 0600, so it is never
    readable by others, not even for a moment (used for archives that hold
    private keys, :mod:`federation.backup`).

    Raises:
        FileExistsError: ``path`` exists (also as a symlink).

    """
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "wb")


def open_private_append(path: Path):
    """Open ``path`` for appending text, creating it owner-only (0600).

    A file left by an older version with wider permissions is narrowed to 0600.
    """
    import os

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "a")


def create_private_sqlite(url: str) -> None:
    """Create the database file of a ``sqlite:///PATH`` URL owner-only (0600) before SQLite opens it.

    SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the database
    file's permissions, so they are owner-only too. A database left by an
    older version with wider permissions is narrowed to 0600 (with its
    ``-wal``/``-shm``). Other URLs (PostgreSQL, ``:memory:``) are left alone.
    """
    import os

    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return
    raw = url[len(prefix) :].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return
    db = Path(raw)
    if not db.parent.is_dir():
        return
    # Never open (and close) a descriptor on a database file that exists: closing any
    # descriptor of a file drops every POSIX lock this process holds on it, which breaks
    # SQLite's locking for the connections already open here and can corrupt the database
    # ("How To Corrupt An SQLite Database File", §2.2). An existing file is narrowed by path.
    try:
        fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for path in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))):
        if path.exists() and not path.is_symlink() and path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_FILE_MODE)
