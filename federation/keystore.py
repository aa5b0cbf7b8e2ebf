"""The node's signing keys held in an HSM through PKCS#11 (OASIS PKCS#11 v2.40 / v3.0).

``accord node init --key-store pkcs11 --pkcs11-module LIB --pkcs11-token LABEL
--pin-env VAR`` generates the organization's Ed25519 key pair *in the token*
(``CKM_EC_EDWARDS_KEY_PAIR_GEN`` with the Ed25519 curve OID 1.3.101.112;
the private key ``CKA_SENSITIVE`` = true, ``CKA_EXTRACTABLE`` = false,
``CKA_TOKEN`` = true) and writes ``keys/pkcs11.json``: the module path, the
token label, the key's label and the *name* of the environment variable that
holds the user PIN (never the PIN). Every signature the node makes with its
organization key (credentials, status lists, envelopes, bundles, contracts,
rotation statements) is then computed in the token with ``CKM_EDDSA``
(pure Ed25519, RFC 8032); the private key never leaves it, and
:attr:`Pkcs11Ed25519Key.seed` refuses.

The ledger's signed-note key (checkpoints, c2sp.org/signed-note type 0x01)
and the witness's cosignature key (c2sp.org/tlog-cosignature
``cosignature/v1``) are Ed25519 keys too; ``--pkcs11-keys org,ledger,witness``
(the default with ``--key-store pkcs11``) generates each of them in the token
the same way and records it in ``keys/pkcs11-ledger.json`` /
``keys/pkcs11-witness.json`` (same members). Their seeds then exist nowhere
but in the token: no ``ledger.seed`` / ``witness.seed`` file is written. A
key not named there stays a file (optionally encrypted: ``--encrypt-keys``).

The library is ``python-pkcs11``; tests use SoftHSM2 (Debian's
``softhsm2``), whose module is ``/usr/lib/softhsm/libsofthsm2.so``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credentials import public_key_multibase
from federation.errors import ConfigError

#: The record of a node whose organization key is in a PKCS#11 token.
PKCS11_RECORD = "pkcs11.json"
#: Key role → the record (in ``keys/``) naming that key when it is in a PKCS#11 token.
PKCS11_RECORDS = {"org": PKCS11_RECORD, "ledger": "pkcs11-ledger.json", "witness": "pkcs11-witness.json"}
#: Key role → how messages name it.
KEY_ROLES = {"org": "organization key", "ledger": "ledger signing key", "witness": "witness key"}
#: DER of the Ed25519 curve OID (RFC 8410), the key pair's CKA_EC_PARAMS.
_ED25519_PARAMS = bytes.fromhex("06032b6570")

__all__ = [
    "KEY_ROLES",
    "PKCS11_RECORD",
    "PKCS11_RECORDS",
    "Pkcs11Config",
    "Pkcs11Ed25519Key",
    "generate_pkcs11_key",
    "open_pkcs11_key",
]


@dataclass(frozen=True)
class Pkcs11Config:
    """Where one of the node's keys lives in a PKCS#11 token.

    Attributes:
        module: path of the PKCS#11 module (shared library).
        token: the token's label.
        pin_env: name of the environment variable holding the user PIN.
        key_label: ``CKA_LABEL`` of the key pair ("" until generated).

    """

    module: str
    token: str
    pin_env: str
    key_label: str = ""

    def pin(self) -> str:
        """The user PIN from ``pin_env``.

        Raises:
            ConfigError: ``KEY_PASSPHRASE_MISSING`` when the variable is unset or empty.

        """
        value = os.environ.get(self.pin_env, "")
        if not value:
            raise ConfigError(
                f"environment variable {self.pin_env} is not set: it holds the PKCS#11 token's user PIN",
                reason="KEY_PASSPHRASE_MISSING",
            )
        return value

    def to_json(self) -> str:
        """The record written to ``keys/pkcs11.json`` (no PIN)."""
        return json.dumps(
            {
                "module": self.module,
                "token": self.token,
                "pin_env": self.pin_env,
                "key_label": self.key_label,
            },
            indent=2,
        )

    @classmethod
    def from_record(cls, path: Path) -> Pkcs11Config:
        """Read ``keys/pkcs11.json``.

        Raises:
            ConfigError: unreadable, or a member missing / not a non-empty string.

        """
        try:
            d = json.loads(path.read_text())
            values = {k: d[k] for k in ("module", "token", "pin_env", "key_label")}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: cannot read the PKCS#11 key record: {exc}") from exc
        bad = [k for k, v in values.items() if not isinstance(v, str) or not v or len(v) > 1024]
        if bad:
            raise ConfigError(f"{path}: {bad[0]} must be a non-empty string")
        return cls(**values)


def _unavailable(cfg: Pkcs11Config, what: str, exc: BaseException | None = None) -> ConfigError:
    detail = f" ({exc.__class__.__name__}{': ' + str(exc) if str(exc) else ''})" if exc else ""
    return ConfigError(
        f"PKCS#11 token {cfg.token!r} (module {cfg.module}): {what}{detail}",
        reason="KEY_STORE_UNAVAILABLE",
        metadata={"token": cfg.token[:100]},
    )


def _session(cfg: Pkcs11Config, *, rw: bool = False) -> Any:
    """An open user session on the token.

    Raises:
        ConfigError: ``KEY_STORE_UNAVAILABLE`` (module, token or login failed),
            ``KEY_PASSPHRASE_MISSING`` (no PIN).

    """
    import pkcs11

    pin = cfg.pin()
    if not Path(cfg.module).is_file():
        raise _unavailable(cfg, "the module file does not exist")
    try:
        lib = pkcs11.lib(str(Path(cfg.module).resolve()))  # one library per process: one spelling
        token = lib.get_token(token_label=cfg.token)
    except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
        raise _unavailable(cfg, "token not found", exc) from exc
    try:
        return token.open(user_pin=pin, rw=rw)
    except pkcs11.UserAlreadyLoggedIn:  # a login is per application: another session of ours holds it
        return token.open(rw=rw)
    except pkcs11.PKCS11Error as exc:
        raise _unavailable(cfg, "login failed (wrong PIN?)", exc) from exc


def _raw_point(ec_point: bytes) -> bytes:
    """The 32-byte Ed25519 public key from CKA_EC_POINT (DER OCTET STRING, or raw as some tokens give it)."""
    if len(ec_point) == 34 and ec_point[:2] == b"\x04\x20":
        return ec_point[2:]
    if len(ec_point) == 32:
        return ec_point
    raise ValueError(f"CKA_EC_POINT is not an Ed25519 point ({len(ec_point)} bytes)")


class Pkcs11Ed25519Key:
    """An Ed25519 key (organization, ledger or witness) whose private half stays in a PKCS#11 token.

    The same signing surface as :class:`credentials.Ed25519KeyPair`
    (``public_key``, ``public_key_multibase``, ``sign``, ``to_jwk``), so every
    signer in the node takes either; it is also a
    :class:`ledger.Ed25519SigningKey` for note and cosignature signers.
    Signing is serialized (one session, used from the event loop and worker
    threads).

    Attributes:
        public_key: 32-byte Ed25519 public key (read from the token).
        label: the key pair's ``CKA_LABEL``.
        config: the token and label (what ``keys/pkcs11*.json`` records).
        role: ``org``, ``ledger`` or ``witness``.

    """

    def __init__(
        self, cfg: Pkcs11Config, session: Any, private: Any, public_key: bytes, *, role: str = "org"
    ) -> None:
        """Use :func:`open_pkcs11_key` or :func:`generate_pkcs11_key`."""
        self.role = role
        self._cfg = cfg
        self._session = session
        self._private = private
        self._lock = threading.Lock()
        self.public_key = public_key
        self.label = cfg.key_label
        self.config = cfg

    def __repr__(self) -> str:
        return f"Pkcs11Ed25519Key(token={self._cfg.token!r}, label={self.label!r})"

    @property
    def public_key_multibase(self) -> str:
        """Multikey ``publicKeyMultibase`` (``z6Mk…``)."""
        return public_key_multibase(self.public_key)

    @property
    def seed(self) -> bytes:
        """Refused: the private key is not extractable.

        Raises:
            ConfigError: ``KEY_NOT_EXPORTABLE``, always.

        """
        raise ConfigError(
            f"the {KEY_ROLES.get(self.role, 'key')} is held in PKCS#11 token {self._cfg.token!r} "
            "and cannot be exported",
            reason="KEY_NOT_EXPORTABLE",
        )

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` in the token (``CKM_EDDSA``, pure Ed25519); returns 64 bytes.

        Raises:
            ConfigError: ``KEY_STORE_UNAVAILABLE`` when the token refuses or is gone.

        """
        import pkcs11

        with self._lock:
            try:
                sig = self._private.sign(message, mechanism=pkcs11.Mechanism.EDDSA)
            except pkcs11.PKCS11Error as exc:
                raise _unavailable(self._cfg, "signing failed", exc) from exc
        if len(sig) != 64:
            raise _unavailable(self._cfg, f"the token returned a {len(sig)}-byte signature")
        return bytes(sig)

    def destroy(self) -> None:
        """Delete the key pair (private and public objects with its label) from the token; unusable after.

        Used when ``node init`` fails after generating some of its keys, so
        that no orphaned key pair stays behind in the token.

        Raises:
            ConfigError: ``KEY_STORE_UNAVAILABLE`` when the token refuses.

        """
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            self._session.close()
            session = _session(self._cfg, rw=True)
            try:
                for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                    for obj in list(session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: self.label})):
                        obj.destroy()
            except pkcs11.PKCS11Error as exc:
                raise _unavailable(self._cfg, f"cannot delete key pair {self.label!r}", exc) from exc
            finally:
                session.close()

    def to_jwk(self, *, include_private: bool = False) -> dict[str, str]:
        """The public key as an RFC 8037 OKP JWK.

        Raises:
            ConfigError: ``KEY_NOT_EXPORTABLE`` with ``include_private``.

        """
        import base64

        if include_private:
            self.seed  # noqa: B018 - raises KEY_NOT_EXPORTABLE

        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": base64.urlsafe_b64encode(self.public_key).rstrip(b"=").decode(),
        }


def open_pkcs11_key(cfg: Pkcs11Config, *, role: str = "org") -> Pkcs11Ed25519Key:
    """Open the key named by ``cfg`` (a session kept open for the process's lifetime).

    Args:
        cfg: the token and the key pair's label.
        role: ``org``, ``ledger`` or ``witness`` (for messages).

    Raises:
        ConfigError: ``KEY_STORE_UNAVAILABLE`` (module, token, login, or no
            such Ed25519 key pair), ``KEY_PASSPHRASE_MISSING`` (no PIN).

    """
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    session = _session(cfg)
    try:
        private = session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label=cfg.key_label
        )
        public = session.get_key(
            object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC_EDWARDS, label=cfg.key_label
        )
        point = _raw_point(bytes(public[Attribute.EC_POINT]))
    except (pkcs11.PKCS11Error, ValueError) as exc:
        session.close()
        raise _unavailable(
            cfg, f"no Ed25519 {KEY_ROLES.get(role, 'key')} labelled {cfg.key_label!r}", exc
        ) from exc
    return Pkcs11Ed25519Key(cfg, session, private, point, role=role)


def generate_pkcs11_key(cfg: Pkcs11Config, *, label_prefix: str, role: str = "org") -> Pkcs11Ed25519Key:
    """Generate a new Ed25519 key pair in the token (sensitive, not extractable) and open it.

    Args:
        cfg: the token (its ``key_label`` is ignored).
        label_prefix: the new ``CKA_LABEL`` is ``<label_prefix>-<8 hex digits>`` (unique).
        role: ``org``, ``ledger`` or ``witness`` (for messages).

    Returns:
        The key, whose ``label`` is to be recorded in ``keys/pkcs11.json``.

    Raises:
        ConfigError: ``KEY_STORE_UNAVAILABLE`` (the token cannot generate Ed25519 keys, …).

    """
    import dataclasses

    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism

    label = f"{label_prefix}-{secrets.token_hex(4)}"
    session = _session(cfg, rw=True)
    try:
        session.generate_keypair(
            KeyType.EC_EDWARDS,
            store=True,
            label=label,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={Attribute.EC_PARAMS: _ED25519_PARAMS},
            private_template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
            },
        )
    except pkcs11.PKCS11Error as exc:
        raise _unavailable(cfg, "cannot generate an Ed25519 key pair", exc) from exc
    finally:
        session.close()
    return open_pkcs11_key(dataclasses.replace(cfg, key_label=label), role=role)
