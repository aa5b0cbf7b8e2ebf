"""Create and load a node's identity: keys, DID, CA, certificates, bundle.

``init_node`` writes a fresh node directory (see :mod:`federation.paths`);
``NodeIdentity.load`` reads it back; ``export_bundle`` makes the signed
peer bundle other organizations pin.

Keys at rest, optionally encrypted: ``init_node(..., passphrase=KeyPassphrase(...))``
writes the organization, ledger and witness Ed25519 keys as encrypted PKCS#8
(RFC 5958 ``EncryptedPrivateKeyInfo``, PEM; ``cryptography``'s
``BestAvailableEncryption``: PBES2, RFC 8018) in ``keys/org.p8``,
``keys/ledger.p8`` and ``keys/witness.p8`` instead of the plain
``org.jwk`` / ``*.seed`` files, and records in ``keys/encryption.json`` where
the passphrase comes from (an environment variable or a file, never the
passphrase itself). ``NodeIdentity.load`` then needs that passphrase.

Organization key history: ``keys/org-history.json`` (written by
:func:`federation.rotation.rotate_org_key`) lists every organization key the
node has had, as ``{"keys": [{"id": "key-N", "publicKeyMultibase",
"validFrom", "validUntil"}]}`` (RFC 3339 UTC; ``validUntil`` null for the
current key). The current key's verification method is ``<did>#key-N``;
retired keys stay resolvable so that what they signed (contracts, agent
credentials) still verifies. A node without the file has one key, ``key-1``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from credentials import Ed25519KeyPair, did_web_document
from credentials.keys import Ed25519Signer
from federation.config import NodeConfig, load_config, org_did_for, save_config
from federation.errors import ConfigError
from federation.keystore import Pkcs11Config
from federation.paths import NodePaths, make_private_dir, write_private
from federation.peers import PeerBundle, ledger_origin, witness_name
from federation.tls import mint_tls_material

if TYPE_CHECKING:
    from ledger import CosignatureSigner, NoteSigner

#: Encrypted PKCS#8 key files (keys/<name>.p8) and the passphrase-source record.
ENCRYPTED_KEYS = ("org", "ledger", "witness")
ENCRYPTION_RECORD = "encryption.json"
#: The organization key history (module docstring).
KEY_HISTORY = "org-history.json"
#: Most organization keys a history may list (bounded: the file is read at every start).
MAX_KEY_HISTORY = 64
#: Largest passphrase file read, bytes (a passphrase, not a document).
MAX_PASSPHRASE_FILE_BYTES = 4096

__all__ = [
    "KeyPassphrase",
    "OrgKeyRecord",
    "NodeIdentity",
    "export_bundle",
    "init_node",
    "ledger_origin",
    "witness_name",
]


@dataclass(frozen=True)
class KeyPassphrase:
    """Where the passphrase of encrypted node keys comes from: exactly one of ``env`` or ``file``.

    Attributes:
        env: name of an environment variable holding the passphrase.
        file: path of a file holding it (trailing newline ignored; at most 4096 bytes).

    """

    env: str | None = None
    file: Path | None = None

    def source(self) -> str:
        """``"environment variable VAR"`` or ``"passphrase file F"`` (for messages)."""
        return f"environment variable {self.env}" if self.env else f"passphrase file {self.file}"

    def read(self) -> bytes:
        """The passphrase bytes.

        Raises:
            ConfigError: ``KEY_PASSPHRASE_MISSING``: the variable is unset or
                empty, or the file is missing, unreadable, too big or empty.

        """
        import os

        if self.env:
            value = os.environ.get(self.env, "")
            if not value:
                raise ConfigError(
                    f"environment variable {self.env} is not set: it holds the node keys' passphrase",
                    reason="KEY_PASSPHRASE_MISSING",
                )
            return value.encode()
        if self.file is None:
            raise ConfigError(
                "no passphrase source: give a variable or a file", reason="KEY_PASSPHRASE_MISSING"
            )
        try:
            with open(self.file, "rb") as fh:
                raw = fh.read(MAX_PASSPHRASE_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(
                f"{self.file}: cannot read the node keys' passphrase ({exc.strerror})",
                reason="KEY_PASSPHRASE_MISSING",
            ) from exc
        raw = raw.rstrip(b"\r\n")
        if not raw or len(raw) > MAX_PASSPHRASE_FILE_BYTES:
            raise ConfigError(
                f"{self.file}: passphrase file is empty or over {MAX_PASSPHRASE_FILE_BYTES} bytes",
                reason="KEY_PASSPHRASE_MISSING",
            )
        return raw

    def to_json(self) -> str:
        """The record written to ``keys/encryption.json`` (the source, never the passphrase)."""
        return json.dumps({"passphrase_env": self.env} if self.env else {"passphrase_file": str(self.file)})

    @classmethod
    def from_record(cls, path: Path) -> KeyPassphrase:
        """Read ``keys/encryption.json``.

        Raises:
            ConfigError: the record is unreadable or names neither/both sources.

        """
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the key encryption record: {exc}") from exc
        env, file = (
            (d.get("passphrase_env"), d.get("passphrase_file")) if isinstance(d, dict) else (None, None)
        )
        has_env, has_file = isinstance(env, str) and bool(env), isinstance(file, str) and bool(file)
        if has_env == has_file:
            raise ConfigError(f"{path}: needs exactly one of passphrase_env, passphrase_file")
        return cls(env=env or None, file=Path(file) if file else None)


def _encrypt_seed(seed: bytes, passphrase: bytes) -> bytes:
    """An Ed25519 seed as an encrypted PKCS#8 PEM (RFC 5958, PBES2)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def _decrypt_seed(path: Path, passphrase: bytes, source: str) -> bytes:
    """The Ed25519 seed in the encrypted PKCS#8 file ``path``.

    Raises:
        ConfigError: ``KEY_DECRYPT_FAILED``: unreadable, not an encrypted
            Ed25519 PKCS#8 key, or the passphrase is wrong.

    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
        if b"ENCRYPTED PRIVATE KEY" not in data[:64]:
            raise ValueError("not an encrypted PKCS#8 key")
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path}: cannot decrypt with the passphrase from {source} (wrong passphrase or damaged file)",
            reason="KEY_DECRYPT_FAILED",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 key", reason="KEY_DECRYPT_FAILED")
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _in_token(paths: NodePaths) -> frozenset[str]:
    """The key roles (``org``, ``ledger``, ``witness``) a ``keys/pkcs11*.json`` record puts in a token."""
    from federation.keystore import PKCS11_RECORDS

    keys = paths.root / "keys"
    return frozenset(role for role, name in PKCS11_RECORDS.items() if (keys / name).is_file())


def _load_seeds(paths: NodePaths) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(org seed, ledger seed, witness seed) of a node directory, decrypting when encrypted.

    A seed is None when that key is in a PKCS#11 token (``keys/pkcs11.json``,
    ``keys/pkcs11-ledger.json``, ``keys/pkcs11-witness.json``).

    Raises:
        ConfigError: a key file is missing or unreadable; for encrypted keys,
            ``KEY_PASSPHRASE_MISSING`` / ``KEY_DECRYPT_FAILED``.

    """
    keys = paths.root / "keys"
    in_token = _in_token(paths)
    record = keys / ENCRYPTION_RECORD
    if record.is_file() and len(in_token) < len(ENCRYPTED_KEYS):
        source = KeyPassphrase.from_record(record)
        passphrase = source.read()
        org, ledger, witness = (
            None if n in in_token else _decrypt_seed(keys / f"{n}.p8", passphrase, source.source())
            for n in ENCRYPTED_KEYS
        )
        return org, ledger, witness
    try:
        org_seed = (
            None if "org" in in_token else Ed25519KeyPair.from_jwk(json.loads(paths.org_key.read_text())).seed
        )
        ledger_seed = None if "ledger" in in_token else bytes.fromhex(paths.ledger_seed.read_text().strip())
        witness_seed = (
            None if "witness" in in_token else bytes.fromhex(paths.witness_seed.read_text().strip())
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{paths.root}: cannot read node keys: {exc}") from exc
    for name, seed in (("ledger", ledger_seed), ("witness", witness_seed)):
        if seed is not None and len(seed) != 32:
            raise ConfigError(f"{paths.root}: keys/{name}.seed is not a 32-byte seed (64 hex digits)")
    return org_seed, ledger_seed, witness_seed


def _open_token_key(paths: NodePaths, role: str) -> Ed25519Signer:
    """Open the ``role`` key in the PKCS#11 token its ``keys/pkcs11*.json`` record names.

    Raises:
        ConfigError: ``KEY_STORE_UNAVAILABLE`` / ``KEY_PASSPHRASE_MISSING`` (module, token, PIN, label).

    """
    from federation.keystore import PKCS11_RECORDS, Pkcs11Config, open_pkcs11_key

    return open_pkcs11_key(Pkcs11Config.from_record(paths.root / "keys" / PKCS11_RECORDS[role]), role=role)


def _load_org_key(paths: NodePaths, seed: bytes | None) -> Ed25519Signer:
    """The organization key: from its seed, or opened in the PKCS#11 token named by ``keys/pkcs11.json``."""
    if seed is not None:
        return Ed25519KeyPair.from_seed(seed)
    return _open_token_key(paths, "org")


@dataclass(frozen=True)
class OrgKeyRecord:
    """One organization key in the node's key history.

    Attributes:
        fragment: verification method fragment, ``key-N`` (N >= 1).
        public_key_multibase: the Ed25519 public key, Multikey form (``z6Mk…``).
        valid_from: RFC 3339 UTC time the key became current ("" when unknown: the first key).
        valid_until: RFC 3339 UTC time it was retired ("" for the current key).

    """

    fragment: str
    public_key_multibase: str
    valid_from: str = ""
    valid_until: str = ""

    def to_json(self) -> dict[str, str | None]:
        """The record as written in ``keys/org-history.json``."""
        return {
            "id": self.fragment,
            "publicKeyMultibase": self.public_key_multibase,
            "validFrom": self.valid_from or None,
            "validUntil": self.valid_until or None,
        }


def load_key_history(paths: NodePaths) -> tuple[OrgKeyRecord, ...]:
    """The organization key history of a node directory (empty when there is no history file).

    Raises:
        ConfigError: the file is unreadable, over ``MAX_KEY_HISTORY`` keys, or
            a record is malformed (``id`` not ``key-N``, a key that is not a
            Multikey Ed25519 key, duplicate ids).

    """
    import re

    from credentials import public_key_from_multibase

    path = paths.root / "keys" / KEY_HISTORY
    if not path.is_file():
        return ()
    try:
        raw = path.read_bytes()
        if len(raw) > 64 * 1024:
            raise ValueError("larger than 64 KiB")
        records = json.loads(raw)["keys"]
        if not isinstance(records, list) or not 0 < len(records) <= MAX_KEY_HISTORY:
            raise ValueError(f"keys must list 1..{MAX_KEY_HISTORY} records")
        out = []
        for r in records:
            frag, pk = r["id"], r["publicKeyMultibase"]
            if not isinstance(frag, str) or not re.fullmatch(r"key-[1-9][0-9]{0,5}", frag):
                raise ValueError(f"id must be key-N, got {str(frag)[:40]!r}")
            public_key_from_multibase(pk)
            out.append(OrgKeyRecord(frag, pk, str(r.get("validFrom") or ""), str(r.get("validUntil") or "")))
        if len({r.fragment for r in out}) != len(out):
            raise ValueError("duplicate key ids")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: bad organization key history: {exc}") from exc
    except Exception as exc:  # a key that does not decode (credentials' typed errors)
        raise ConfigError(f"{path}: bad organization key history: {exc}") from exc
    return tuple(out)


def write_key_history(paths: NodePaths, history: tuple[OrgKeyRecord, ...]) -> None:
    """Write ``keys/org-history.json`` atomically (owner-only)."""
    write_private(
        paths.root / "keys" / KEY_HISTORY,
        json.dumps({"keys": [r.to_json() for r in history]}, indent=2),
    )


def write_org_key(paths: NodePaths, key: Ed25519Signer) -> None:
    """Make ``key`` the organization key on disk.

    A file (encrypted when the node's keys are), or, for a key in a PKCS#11
    token, the record naming it (the old key files are deleted).

    Raises:
        ConfigError: for encrypted keys, ``KEY_PASSPHRASE_MISSING``.

    """
    from federation.keystore import PKCS11_RECORD, Pkcs11Ed25519Key

    keys = paths.root / "keys"
    record = keys / ENCRYPTION_RECORD
    if isinstance(key, Pkcs11Ed25519Key):  # the key is in the token already: record where
        write_private(keys / PKCS11_RECORD, key.config.to_json())
        for plain in (paths.org_key, keys / "org.p8"):
            plain.unlink(missing_ok=True)
    elif record.is_file():
        write_private(keys / "org.p8", _encrypt_seed(key.seed, KeyPassphrase.from_record(record).read()))
        (keys / PKCS11_RECORD).unlink(missing_ok=True)
    else:
        write_private(paths.org_key, json.dumps(key.to_jwk(include_private=True)))
        (keys / PKCS11_RECORD).unlink(missing_ok=True)


@dataclass(frozen=True)
class NodeIdentity:
    """Everything secret or identifying about one node.

    Attributes:
        paths: the node directory layout.
        config: the validated configuration.
        org_key: organization Ed25519 key (signs credentials, envelopes, bundles): an
            :class:`credentials.Ed25519KeyPair`, or a
            :class:`federation.keystore.Pkcs11Ed25519Key` whose private half stays in an HSM.
        ledger_seed: 32-byte seed of the log's signed-note key; None when the key is
            in a PKCS#11 token (``keys/pkcs11-ledger.json``). Sign with
            :meth:`ledger_signer`, which works either way.
        witness_seed: 32-byte seed of the witness cosignature key; None when it is
            in a token (``keys/pkcs11-witness.json``); see :meth:`witness_signer`.
        key_history: the organization keys this node has had (``keys/org-history.json``;
            empty: one key, ``key-1``).

    """

    paths: NodePaths
    config: NodeConfig
    org_key: Ed25519Signer
    ledger_seed: bytes | None
    witness_seed: bytes | None
    key_history: tuple[OrgKeyRecord, ...] = ()
    #: keys opened in a token, by role (opened on first use: a command that does
    #: not sign checkpoints or cosignatures does not log in for them)
    _token_keys: dict[str, Ed25519Signer] = field(default_factory=dict, repr=False, compare=False)

    def _key(self, role: str, seed: bytes | None) -> Ed25519Signer:
        if seed is not None:
            return Ed25519KeyPair.from_seed(seed)
        if role not in self._token_keys:
            self._token_keys[role] = _open_token_key(self.paths, role)
        return self._token_keys[role]

    def ledger_key(self) -> Ed25519Signer:
        """The log's Ed25519 signed-note key: from ``keys/ledger.seed`` (or ``.p8``), or in its PKCS#11 token.

        Raises:
            ConfigError: ``KEY_STORE_UNAVAILABLE`` / ``KEY_PASSPHRASE_MISSING`` for a token key.

        """
        return self._key("ledger", self.ledger_seed)

    def witness_key(self) -> Ed25519Signer:
        """The witness's Ed25519 cosignature key: from its seed file, or in its PKCS#11 token.

        Raises:
            ConfigError: ``KEY_STORE_UNAVAILABLE`` / ``KEY_PASSPHRASE_MISSING`` for a token key.

        """
        return self._key("witness", self.witness_seed)

    def key_locations(self) -> dict[str, str]:
        """Where each signing key is (read from the records; no token is opened).

        Returns:
            role (``org``, ``ledger``, ``witness``) → ``file``, ``file (encrypted)``
            or ``pkcs11 token <token label> key <CKA_LABEL>``.

        Raises:
            ConfigError: a ``keys/pkcs11*.json`` record is unreadable.

        """
        from federation.keystore import PKCS11_RECORDS

        keys = self.paths.root / "keys"
        encrypted = (keys / ENCRYPTION_RECORD).is_file()
        out = {}
        for role, record in PKCS11_RECORDS.items():
            if (keys / record).is_file():
                cfg = Pkcs11Config.from_record(keys / record)
                out[role] = f"pkcs11 token {cfg.token} key {cfg.key_label}"
            else:
                out[role] = "file (encrypted)" if encrypted else "file"
        return out

    def ledger_signer(self) -> NoteSigner:
        """The signed-note signer of this node's log (c2sp.org/signed-note, Ed25519 type 0x01).

        Its name is :func:`federation.peers.ledger_origin`; its key is the seed
        file's, or the PKCS#11 token's (signing with ``CKM_EDDSA``; the seed
        never leaves the token).

        Raises:
            ConfigError: ``KEY_STORE_UNAVAILABLE`` / ``KEY_PASSPHRASE_MISSING`` for a token key.

        """
        from ledger import NoteSigner

        origin = ledger_origin(self.config.org_name)
        if self.ledger_seed is not None:
            return NoteSigner(origin, self.ledger_seed)
        return NoteSigner(origin, key=self.ledger_key())

    def witness_signer(self) -> CosignatureSigner:
        """This node's witness cosigner (c2sp.org/tlog-cosignature ``cosignature/v1``), :func:`witness_name`.

        Raises:
            ConfigError: ``KEY_STORE_UNAVAILABLE`` / ``KEY_PASSPHRASE_MISSING`` for a token key.

        """
        from ledger import CosignatureSigner

        name = witness_name(self.config.org_name)
        if self.witness_seed is not None:
            return CosignatureSigner(name, self.witness_seed)
        return CosignatureSigner(name, key=self.witness_key())

    @property
    def org_did(self) -> str:  # noqa: D102
        return self.config.org_did

    @property
    def key_fragment(self) -> str:
        """Fragment of the current organization key's verification method (``key-N``)."""
        mine = self.org_key.public_key_multibase
        return next((r.fragment for r in self.key_history if r.public_key_multibase == mine), "key-1")

    @property
    def verification_method(self) -> str:
        """DID URL of the current organization key (``<did>#key-N``)."""
        return f"{self.config.org_did}#{self.key_fragment}"

    def key_mapping(self) -> dict[str, bytes]:
        """Verification method id → 32-byte public key, for the current and every retired organization key."""
        from credentials import public_key_from_multibase

        out = {
            f"{self.config.org_did}#{r.fragment}": public_key_from_multibase(r.public_key_multibase)
            for r in self.key_history
        }
        out[self.verification_method] = self.org_key.public_key
        return out

    def tls_pem(self, name: str) -> bytes:
        """Read ``tls/<name>``."""
        return self.paths.tls_file(name).read_bytes()

    @classmethod
    def load(cls, node_dir: Path) -> NodeIdentity:
        """Load a node directory.

        Raises:
            ConfigError: a file is missing or unreadable; for encrypted keys
                (``keys/encryption.json``), ``KEY_PASSPHRASE_MISSING`` (the
                variable or file named there gives no passphrase) or
                ``KEY_DECRYPT_FAILED`` (wrong passphrase, damaged file).

        """
        paths = NodePaths(node_dir)
        config = load_config(node_dir)
        org_seed, ledger_seed, witness_seed = _load_seeds(paths)
        return cls(
            paths=paths,
            config=config,
            org_key=_load_org_key(paths, org_seed),
            ledger_seed=ledger_seed,
            witness_seed=witness_seed,
            key_history=load_key_history(paths),
        )


def init_node(
    node_dir: Path,
    *,
    org_name: str,
    listen: str,
    advertise: str = "",
    database_url: str = "sqlite:///node.db",
    force: bool = False,
    passphrase: KeyPassphrase | None = None,
    pkcs11: Pkcs11Config | None = None,
    pkcs11_keys: tuple[str, ...] = ("org",),
    did: str | None = None,
) -> NodeConfig:
    """Create a node directory with fresh keys, CA, certificates and config.

    ``passphrase`` set: the organization, ledger and witness keys are written
    encrypted (module docstring); the passphrase is read before anything is
    written. ``pkcs11`` set: the key pairs named by ``pkcs11_keys`` (``org``,
    ``ledger``, ``witness``) are generated in that token
    (:mod:`federation.keystore`, before anything is written) and only their
    records (``keys/pkcs11.json``, ``keys/pkcs11-ledger.json``,
    ``keys/pkcs11-witness.json``) name them; no file holds those keys, and no
    seed of theirs ever exists outside the token.
    ``did``: the organization's own ``did:web:DOMAIN`` instead of
    ``did:web:<org_name>.accord.test`` (its DID document is then served on
    ``http_listen``, see :func:`did_document`).

    Raises:
        ConfigError: the directory already holds a node (unless ``force``),
            or the arguments are invalid; ``KEY_PASSPHRASE_MISSING`` when
            ``passphrase`` yields none; ``KEY_STORE_UNAVAILABLE`` when the
            token cannot be opened or cannot generate an Ed25519 key pair.

    """
    from pydantic import ValidationError

    paths = NodePaths(node_dir)
    if paths.config.exists() and not force:
        raise ConfigError(f"{node_dir} already holds a node (node.toml exists); use --force")
    try:
        config = NodeConfig(
            org_name=org_name,
            org_did=did or org_did_for(org_name),
            listen=listen,
            advertise=advertise,
            database_url=database_url,
        )
    except ValidationError as exc:
        from federation.config import validation_message

        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"]))
        option = {"org_name": "--org", "org_did": "--did" if did else "--org"}.get(
            field, "--" + field.replace("_", "-")
        )
        raise ConfigError(f"{option}: {validation_message(first)}", metadata={"field": field}) from exc
    from federation.keystore import PKCS11_RECORDS

    unknown = [k for k in pkcs11_keys if k not in PKCS11_RECORDS]
    if unknown or not pkcs11_keys:
        raise ConfigError(
            f"--pkcs11-keys: expected some of org, ledger, witness, got {','.join(pkcs11_keys)!r}"
        )
    secret = passphrase.read() if passphrase is not None else None
    token_keys: dict[str, Ed25519Signer] = {}
    if pkcs11 is not None:
        from federation.keystore import generate_pkcs11_key

        try:
            for role in dict.fromkeys(pkcs11_keys):
                token_keys[role] = generate_pkcs11_key(
                    pkcs11, label_prefix=f"accord-{org_name}-{role}", role=role
                )
        except ConfigError as exc:  # nothing half-made: the key pairs generated so far leave the token too
            left = []
            for made in token_keys.values():
                try:
                    made.destroy()  # type: ignore[attr-defined]
                except ConfigError:
                    left.append(made.label)  # type: ignore[attr-defined]
            if left:
                raise ConfigError(
                    f"{exc}; and the key pairs already generated could not be deleted: {', '.join(left)}",
                    reason=exc.reason,
                ) from exc
            raise
    make_private_dir(node_dir)
    for sub in ("keys", "tls", "peers", "agents", "contracts", "data"):
        make_private_dir(node_dir / sub)
    # only the keys that live in files get a seed here: a token key's seed exists only in the token
    in_files = [n for n in ENCRYPTED_KEYS if n not in token_keys]
    org_key = Ed25519KeyPair.generate() if "org" in in_files else None
    seeds = {n: org_key.seed if n == "org" and org_key else secrets.token_bytes(32) for n in in_files}
    keys = node_dir / "keys"
    plain_files = {"org": paths.org_key, "ledger": paths.ledger_seed, "witness": paths.witness_seed}
    for plain in plain_files.values():
        plain.unlink(missing_ok=True)  # --force over a node: no old key stays behind
    if passphrase is not None and secret is not None:
        for name in in_files:
            write_private(keys / f"{name}.p8", _encrypt_seed(seeds[name], secret))
        for name in token_keys:
            (keys / f"{name}.p8").unlink(missing_ok=True)
        write_private(keys / ENCRYPTION_RECORD, passphrase.to_json())
    else:
        if org_key is not None:
            write_private(paths.org_key, json.dumps(org_key.to_jwk(include_private=True)))
        for name in ("ledger", "witness"):
            if name in seeds:
                write_private(plain_files[name], seeds[name].hex())
        for name in (*(f"{n}.p8" for n in ENCRYPTED_KEYS), ENCRYPTION_RECORD):
            (keys / name).unlink(missing_ok=True)
    for role, record in PKCS11_RECORDS.items():
        if role == "org" and role in token_keys:
            write_org_key(paths, token_keys[role])  # keys/pkcs11.json; no organization key file
        elif role in token_keys:
            write_private(keys / record, token_keys[role].config.to_json())  # type: ignore[attr-defined]
        else:
            (keys / record).unlink(missing_ok=True)
    import shutil

    (keys / KEY_HISTORY).unlink(missing_ok=True)  # --force: a new organization key starts a new history
    shutil.rmtree(keys / "rotations", ignore_errors=True)
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


#: Largest DID document served, bytes (did:web resolvers bound what they read).
MAX_DID_DOCUMENT_BYTES = 16 * 1024


def did_document(identity: NodeIdentity) -> dict:
    """The organization's did:web DID document (W3C DID Core; did:web §3.2).

    ``verificationMethod`` lists the current organization key and every
    retired one still in the key history (so signatures they made resolve);
    ``assertionMethod`` and ``authentication`` name only the current key.

    Raises:
        ValueError: the document would exceed ``MAX_DID_DOCUMENT_BYTES``.

    """
    did = identity.org_did
    current = identity.verification_method
    doc = did_web_document(did, identity.org_key.public_key, key_id=identity.key_fragment)
    for r in identity.key_history:
        vm = f"{did}#{r.fragment}"
        if vm != current:
            doc["verificationMethod"].append(
                {
                    "id": vm,
                    "type": "Multikey",
                    "controller": did,
                    "publicKeyMultibase": r.public_key_multibase,
                }
            )
    if len(json.dumps(doc)) > MAX_DID_DOCUMENT_BYTES:
        raise ValueError(f"the DID document is larger than {MAX_DID_DOCUMENT_BYTES} bytes")
    return doc


def export_bundle(
    identity: NodeIdentity, *, endpoint: str | None = None, now: dt.datetime | None = None
) -> PeerBundle:
    """Make this node's signed peer bundle.

    Args:
        identity: the node identity.
        endpoint: ``HOST:PORT`` peers dial; defaults to ``advertise`` or ``listen``.
        now: bundle time (UTC).

    """
    now = now or dt.datetime.now(dt.UTC)
    cfg = identity.config
    signer = identity.ledger_signer()
    witness_vkey = identity.witness_signer().vkey
    bundle = PeerBundle(
        org_name=cfg.org_name,
        org_did=cfg.org_did,
        verification_method=identity.verification_method,
        public_key_multibase=identity.org_key.public_key_multibase,
        did_document=did_web_document(cfg.org_did, identity.org_key.public_key, key_id=identity.key_fragment),
        ca_certificate_pem=identity.tls_pem("ca.pem").decode(),
        endpoint=endpoint or cfg.advertise or cfg.listen,
        ledger_origin=ledger_origin(cfg.org_name),
        ledger_vkey=signer.vkey,
        witness_vkey=witness_vkey,
        issued_at=now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
    return bundle.signed(identity.org_key)
