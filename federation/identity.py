"""Create and load a node's identity: keys, DID, CA, certificates, bundle.

``init_node`` writes a fresh node directory (see :mod:`federation.paths`);
``NodeIdentity.load`` reads it back; ``export_bundle`` makes the signed
peer bundle other organizations pin.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from credentials import Ed25519KeyPair, did_web_document
from federation.config import NodeConfig, load_config, org_did_for, save_config
from federation.errors import ConfigError
from federation.paths import NodePaths, make_private_dir, write_private
from federation.peers import PeerBundle, ledger_origin, witness_name
from federation.tls import mint_tls_material

__all__ = [
    "NodeIdentity",
    "export_bundle",
    "init_node",
    "ledger_origin",
    "witness_name",
]


@dataclass(frozen=True)
class NodeIdentity:
    """Everything secret or identifying about one node.

    Attributes:
        paths: the node directory layout.
        config: the validated configuration.
        org_key: organization Ed25519 key (signs credentials, envelopes, bundles).
        ledger_seed: 32-byte seed of the log's signed-note key.
        witness_seed: 32-byte seed of the witness cosignature key.

    """

    paths: NodePaths
    config: NodeConfig
    org_key: Ed25519KeyPair
    ledger_seed: bytes
    witness_seed: bytes

    @property
    def org_did(self) -> str:  # noqa: D102
        return self.config.org_did

    @property
    def verification_method(self) -> str:
        """DID URL of the organization key."""
        return f"{self.config.org_did}#key-1"

    def tls_pem(self, name: str) -> bytes:
        """Read ``tls/<name>``."""
        return self.paths.tls_file(name).read_bytes()

    @classmethod
    def load(cls, node_dir: Path) -> NodeIdentity:
        """Load a node directory.

        Raises:
            ConfigError: a file is missing or unreadable.

        """
        paths = NodePaths(node_dir)
        config = load_config(node_dir)
        try:
            org_key = Ed25519KeyPair.from_jwk(json.loads(paths.org_key.read_text()))
            ledger_seed = bytes.fromhex(paths.ledger_seed.read_text().strip())
            witness_seed = bytes.fromhex(paths.witness_seed.read_text().strip())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{node_dir}: cannot read node keys: {exc}") from exc
        return cls(
            paths=paths, config=config, org_key=org_key, ledger_seed=ledger_seed, witness_seed=witness_seed
        )


def init_node(
    node_dir: Path,
    *,
    org_name: str,
    listen: str,
    advertise: str = "",
    database_url: str = "sqlite:///node.db",
    force: bool = False,
) -> NodeConfig:
    """Create a node directory with fresh keys, CA, certificates and config.

    Raises:
        ConfigError: the directory already holds a node (unless ``force``),
            or the arguments are invalid.

    """
    from pydantic import ValidationError

    paths = NodePaths(node_dir)
    if paths.config.exists() and not force:
        raise ConfigError(f"{node_dir} already holds a node (node.toml exists); use --force")
    try:
        config = NodeConfig(
            org_name=org_name,
            org_did=org_did_for(org_name),
            listen=listen,
            advertise=advertise,
            database_url=database_url,
        )
    except ValidationError as exc:
        from federation.config import validation_message

        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"]))
        option = {"org_name": "--org", "org_did": "--org"}.get(field, "--" + field.replace("_", "-"))
        raise ConfigError(f"{option}: {validation_message(first)}", metadata={"field": field}) from exc
    make_private_dir(node_dir)
    for sub in ("keys", "tls", "peers", "agents", "contracts", "data"):
        make_private_dir(node_dir / sub)
    org_key = Ed25519KeyPair.generate()
    write_private(paths.org_key, json.dumps(org_key.to_jwk(include_private=True)))
    write_private(paths.ledger_seed, secrets.token_bytes(32).hex())
    write_private(paths.witness_seed, secrets.token_bytes(32).hex())
    host = (advertise or listen).rpartition(":")[0]
    hosts = tuple(dict.fromkeys(("localhost", "127.0.0.1", host)))
    tls = mint_tls_material(org_name=org_name, org_did=config.org_did, hosts=hosts)
    (paths.tls / "ca.pem").write_bytes(tls.ca_pem)
    write_private(paths.tls / "ca.key", tls.ca_key_pem)
    (paths.tls / "node.pem").write_bytes(tls.cert_pem)
    write_private(paths.tls / "node.key", tls.key_pem)
    (paths.tls / "operator.pem").write_bytes(tls.operator_cert_pem)
    write_private(paths.tls / "operator.key", tls.operator_key_pem)
    save_config(node_dir, config)
    from federation.config import database_url_for
    from federation.paths import create_private_sqlite

    create_private_sqlite(database_url_for(node_dir, config))
    return config


def export_bundle(
    identity: NodeIdentity, *, endpoint: str | None = None, now: dt.datetime | None = None
) -> PeerBundle:
    """Make this node's signed peer bundle.

    Args:
        identity: the node identity.
        endpoint: ``HOST:PORT`` peers dial; defaults to ``advertise`` or ``listen``.
        now: bundle time (UTC).

    """
    from ledger import CosignatureSigner, NoteSigner

    now = now or dt.datetime.now(dt.UTC)
    cfg = identity.config
    signer = NoteSigner(ledger_origin(cfg.org_name), identity.ledger_seed)
    witness_vkey = CosignatureSigner(witness_name(cfg.org_name), identity.witness_seed).vkey
    bundle = PeerBundle(
        org_name=cfg.org_name,
        org_did=cfg.org_did,
        verification_method=identity.verification_method,
        public_key_multibase=identity.org_key.public_key_multibase,
        did_document=did_web_document(cfg.org_did, identity.org_key.public_key),
        ca_certificate_pem=identity.tls_pem("ca.pem").decode(),
        endpoint=endpoint or cfg.advertise or cfg.listen,
        ledger_origin=ledger_origin(cfg.org_name),
        ledger_vkey=signer.vkey,
        witness_vkey=witness_vkey,
        issued_at=now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
    return bundle.signed(identity.org_key)
