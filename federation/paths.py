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
node.db                   SQLite database (WAL): registry, trust, ledger
node.pid                  pid and port of the running node
```
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


def write_private(path: Path, data: bytes | str) -> None:
    """Write a secret file with mode 0600 (created atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    raw = data.encode() if isinstance(data, str) else data
    tmp.touch(mode=0o600)
    tmp.write_bytes(raw)
    tmp.replace(path)
