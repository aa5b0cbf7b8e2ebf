"""Organization key rotation: a new organization key that pinned peers follow without re-pinning by hand.

What rotates, and what does not:

* The **organization key** (``keys/org.jwk`` or ``keys/org.p8``) signs agent
  credentials, status lists, contracts, exchange envelopes and the peer
  bundle. :func:`rotate_org_key` replaces it: the new key gets the next
  verification method id (``<did>#key-N``), the old one is kept in the key
  history (``keys/org-history.json``, public key and validity period only;
  the old private key is overwritten), and a :class:`RotationStep` is written
  to ``keys/rotations/NNNN.json``: an ``AccordPeerRotation`` statement
  signed by the **old** key, naming the old and new bundle fingerprints and
  the SHA-256 of the new bundle, with the new bundle, which is self-signed by
  the **new** key. Both keys therefore sign the move.
* The **log key** (the C2SP signed-note key of the ledger, ``keys/ledger.seed``)
  and the **witness key** are separate keys and do not rotate with the
  organization key: a C2SP log is identified by its origin and key, and its
  witnesses and every receipt ever handed out are bound to them. Rotating a
  log key means starting a new log (a new origin); Accord does not do that
  in place. Receipts and checkpoints stay verifiable across organization key
  rotations because they never depended on that key.
* The TLS CA and certificates are renewed separately (``accord node renew-tls``).

How peers learn it: :func:`announce_rotation` sends the node's rotation steps
(``FederationService.AnnounceKeyRotation``, optional feature
``accord.key-rotation.v1``) to every pinned peer over mutual TLS. The peer
(:func:`accept_announcement`) walks the steps from the bundle it has pinned,
verifies each statement with the key it has pinned and each new bundle's
self-signature (:meth:`federation.peers.RotationStatement.verify`), moves the
replaced bundle to ``peers/retired/`` (so signatures of the old key still
resolve: :func:`key_mapping`) and re-pins through
:func:`federation.peers.pin_bundle`. A statement not signed by the pinned key
is refused (``BAD_ROTATION``) and the pin does not move. The running node
retries peers that did not acknowledge (:func:`announce_loop`).

Retired keys keep verifying what they signed before the rotation (routine
rotation); a *compromised* key needs more than a rotation: revoke or renew
the credentials it issued (``docs/threat-model.md``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from credentials import Ed25519KeyPair
from federation.errors import PeerError
from federation.identity import (
    NodeIdentity,
    OrgKeyRecord,
    export_bundle,
    write_key_history,
    write_org_key,
)
from federation.paths import NodePaths, make_private_dir, write_private
from federation.peers import MAX_BUNDLE_BYTES, PeerBundle, PeerRegistry, RotationStatement, pin_bundle

log = structlog.get_logger("accord.rotation")

#: NodeInfo feature a node advertises when it accepts AnnounceKeyRotation.
FEATURE = "accord.key-rotation.v1"
#: Most rotation steps sent in one announcement (oldest are dropped first).
MAX_STEPS = 8
#: Largest rotation statement accepted, bytes.
MAX_STATEMENT_BYTES = 4096
#: Most retired bundles kept per peer (older ones are deleted).
MAX_RETIRED_PER_PEER = 16
ROTATIONS_DIR = "rotations"
ACKS_FILE = "acks.json"
RETIRED_DIR = "retired"

__all__ = [
    "FEATURE",
    "RotationStep",
    "accept_announcement",
    "announce_rotation",
    "apply_rotation",
    "key_mapping",
    "load_rotation_steps",
    "refresh_identity",
    "rotate_org_key",
]


def _rfc3339(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RotationStep:
    """One organization key rotation: the statement (old key) and the bundle it moves to (new key).

    Attributes:
        statement: the ``AccordPeerRotation`` statement, signed by the old key.
        bundle: the new peer bundle, self-signed by the new key.

    """

    statement: RotationStatement
    bundle: PeerBundle

    def to_json(self) -> str:
        """The record written to ``keys/rotations/NNNN.json``."""
        return json.dumps(
            {
                "statement": json.loads(self.statement.model_dump_json()),
                "bundle": json.loads(self.bundle.model_dump_json()),
            },
            indent=2,
        )

    @classmethod
    def parse(cls, statement_json: bytes | str, bundle_json: bytes | str) -> RotationStep:
        """Parse one step (statement at most 4 KiB, bundle at most 64 KiB; the bundle's signature is checked).

        Raises:
            PeerError: ``BAD_ROTATION`` / ``BAD_BUNDLE`` for anything malformed or over its bound.

        """
        if len(statement_json) > MAX_STATEMENT_BYTES or len(bundle_json) > MAX_BUNDLE_BYTES:
            raise PeerError("a rotation step is over its size bound", reason="BAD_ROTATION")
        return cls(RotationStatement.parse(statement_json), PeerBundle.parse(bundle_json))


def _rotations_dir(paths: NodePaths) -> Path:
    return paths.root / "keys" / ROTATIONS_DIR


def load_rotation_steps(paths: NodePaths) -> list[RotationStep]:
    """This node's own rotation steps, oldest first (the last ``MAX_STEPS``).

    Raises:
        PeerError: a record is malformed (``BAD_ROTATION`` / ``BAD_BUNDLE``).

    """
    d = _rotations_dir(paths)
    files = sorted(p for p in d.glob("[0-9][0-9][0-9][0-9].json")) if d.is_dir() else []
    steps = []
    for p in files[-MAX_STEPS:]:
        rec = json.loads(p.read_text())
        steps.append(RotationStep.parse(json.dumps(rec["statement"]), json.dumps(rec["bundle"])))
    return steps


def _new_org_key(ident: NodeIdentity, into: Any) -> Any:
    """A fresh organization key: in the PKCS#11 token ``into``, else where the current one lives."""
    from federation.keystore import Pkcs11Ed25519Key, generate_pkcs11_key

    prefix = f"accord-{ident.config.org_name}-org"
    if into is not None:
        return generate_pkcs11_key(into, label_prefix=prefix)
    if isinstance(ident.org_key, Pkcs11Ed25519Key):
        return generate_pkcs11_key(ident.org_key.config, label_prefix=prefix)
    return Ed25519KeyPair.generate()


def rotate_org_key(
    node_dir: Path,
    *,
    endpoint: str | None = None,
    now: dt.datetime | None = None,
    into: Any = None,
) -> RotationStep:
    """Replace the organization key of ``node_dir`` (module docstring).

    Writes, in this order (each file atomically): the rotation step
    ``keys/rotations/NNNN.json``, the key history (old key retired at ``now``,
    new key ``key-N+1`` current), then the new private key over the old one
    (encrypted when the node's keys are). The ledger and witness keys and the
    TLS material are not touched.

    Args:
        node_dir: the node directory (the node may be running; reload it afterwards).
        endpoint: ``HOST:PORT`` for the new bundle (default ``advertise`` or ``listen``).
        now: rotation time (UTC).
        into: a :class:`federation.keystore.Pkcs11Config`: generate the new key in
            that token (moving a file key into an HSM). Default: where the
            current key lives (a file, or the same token).

    Returns:
        The step to announce to peers.

    Raises:
        ConfigError: the directory's keys cannot be loaded (or the passphrase is missing).

    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    ident = NodeIdentity.load(node_dir)
    old_bundle = export_bundle(ident, endpoint=endpoint, now=now)
    old_fragment = ident.key_fragment
    history = list(ident.key_history) or [OrgKeyRecord(old_fragment, ident.org_key.public_key_multibase)]
    history = [
        dataclasses.replace(r, valid_until=_rfc3339(now)) if r.fragment == old_fragment else r
        for r in history
    ]
    number = max(int(r.fragment.split("-")[1]) for r in history) + 1
    new_key = _new_org_key(ident, into)
    history.append(OrgKeyRecord(f"key-{number}", new_key.public_key_multibase, valid_from=_rfc3339(now)))
    new_ident = dataclasses.replace(ident, org_key=new_key, key_history=tuple(history))
    new_bundle = export_bundle(new_ident, endpoint=endpoint, now=now)
    statement = RotationStatement.make(old=old_bundle, new=new_bundle, old_key=ident.org_key, now=now)
    step = RotationStep(statement, new_bundle)
    d = _rotations_dir(ident.paths)
    make_private_dir(d)
    seq = 1 + max((int(p.stem) for p in d.glob("[0-9][0-9][0-9][0-9].json")), default=0)
    write_private(d / f"{seq:04d}.json", step.to_json())
    write_key_history(ident.paths, tuple(history))
    write_org_key(ident.paths, new_key)  # a key file, or keys/pkcs11.json naming the token's key
    log.info(
        "organization key rotated",
        org=ident.config.org_name,
        old=statement.old_fingerprint,
        new=statement.new_fingerprint,
        key=f"key-{number}",
    )
    return step


# --- the peer's side -----------------------------------------------------------------------------


def _retired_dir(peers_dir: Path) -> Path:
    return peers_dir / RETIRED_DIR


def _retire(peers_dir: Path, bundle: PeerBundle, now: dt.datetime) -> None:
    """Keep a replaced bundle in ``peers/retired/<org>.<fingerprint>.json`` (its key still resolves)."""
    d = _retired_dir(peers_dir)
    make_private_dir(d)
    write_private(
        d / f"{bundle.org_name}.{bundle.fingerprint()}.json",
        json.dumps({"retired_at": _rfc3339(now), "bundle": json.loads(bundle.model_dump_json())}, indent=2),
    )
    mine = sorted(d.glob(f"{bundle.org_name}.*.json"), key=lambda p: p.stat().st_mtime)
    for old in mine[:-MAX_RETIRED_PER_PEER]:
        old.unlink(missing_ok=True)


def retired_bundles(peers_dir: Path, org_name: str | None = None) -> list[PeerBundle]:
    """The retired (rotated-away) bundles in ``peers/retired/``, each re-verified; bad files are skipped."""
    d = _retired_dir(peers_dir)
    if not d.is_dir():
        return []
    out = []
    pattern = f"{org_name}.*.json" if org_name else "*.json"
    for p in sorted(d.glob(pattern)):
        try:
            raw = p.read_bytes()
            if len(raw) > 2 * MAX_BUNDLE_BYTES:
                continue
            bundle = PeerBundle.parse(json.dumps(json.loads(raw)["bundle"]))
        except (OSError, ValueError, KeyError, TypeError, PeerError):
            log.warning("retired bundle skipped", file=p.name[:120])
            continue
        if p.name.startswith(bundle.org_name + "."):
            out.append(bundle)
    return out


def remove_retired(peers_dir: Path, org_name: str) -> None:
    """Delete the retired bundles of ``org_name`` (``accord peer remove``)."""
    d = _retired_dir(peers_dir)
    if d.is_dir():
        for p in d.glob(f"{org_name}.*.json"):
            p.unlink(missing_ok=True)


def key_mapping(identity: NodeIdentity, peers: PeerRegistry) -> dict[str, bytes]:
    """Verification method id → public key, for every organization key this node trusts.

    This node's keys (current and retired), every pinned peer's current key,
    and the retired keys of pinned peers (``peers/retired/``). A retired id
    never overrides a current one, and retired bundles of organizations no
    longer pinned are ignored.
    """
    mapping = dict(identity.key_mapping())
    pinned = {b.org_did for b in peers}
    for old in retired_bundles(identity.paths.peers):
        if old.org_did in pinned:
            mapping.setdefault(old.verification_method, old.public_key)
    for bundle in peers:
        mapping[bundle.verification_method] = bundle.public_key
    return mapping


def apply_rotation(
    peers_dir: Path,
    *,
    own_did: str,
    caller_did: str,
    steps: list[RotationStep],
    now: dt.datetime | None = None,
) -> tuple[str, str]:
    """Move the pin of ``caller_did`` along ``steps`` (oldest first).

    Steps before the pinned fingerprint are skipped; from it on each step's
    statement must verify against the bundle pinned at that point (signed by
    its key, naming both fingerprints and the new bundle's digest). Each
    replaced bundle is kept in ``peers/retired/``.

    Returns:
        (fingerprint now pinned, ``"rotation"`` or ``"unchanged"``).

    Raises:
        PeerError: ``BAD_ROTATION``: no step, too many, a step of another
            organization, no statement from the pinned fingerprint, or one
            that does not verify; ``UNKNOWN_PEER``; ``PEER_COLLISION``.

    """
    now = now or dt.datetime.now(dt.UTC)
    if not 0 < len(steps) <= MAX_STEPS:
        raise PeerError(f"an announcement carries 1..{MAX_STEPS} rotation steps", reason="BAD_ROTATION")
    for step in steps:
        if step.statement.org_did != caller_did or step.bundle.org_did != caller_did:
            raise PeerError(
                f"a rotation step is about {step.statement.org_did[:100]}, not the caller {caller_did}",
                reason="BAD_ROTATION",
                metadata={"field": "org_did"},
            )
    current = PeerRegistry.load(peers_dir).get(caller_did)
    if current.same_pin(steps[-1].bundle):
        return current.fingerprint(), "unchanged"
    moved = False
    for step in steps:
        if step.statement.old_fingerprint != current.fingerprint():
            continue
        step.statement.verify(old=current, new=step.bundle)
        _retire(peers_dir, current, now)
        pin_bundle(peers_dir, step.bundle, own_did=own_did, rotation=step.statement)
        log.info(
            "peer key rotation accepted",
            peer=caller_did,
            old=step.statement.old_fingerprint,
            new=step.statement.new_fingerprint,
        )
        current, moved = step.bundle, True
    if not moved:
        raise PeerError(
            f"no rotation statement moves the pinned fingerprint {current.fingerprint()} of {caller_did}",
            reason="BAD_ROTATION",
            metadata={"pinned": current.fingerprint()},
        )
    return current.fingerprint(), "rotation"


async def accept_announcement(node: Any, caller_did: str, request: Any) -> tuple[str, str]:
    """Serve ``AnnounceKeyRotation`` for an authenticated peer: apply the steps, then reload the node.

    Args:
        node: the running :class:`federation.node.Node`.
        caller_did: the mTLS-authenticated caller.
        request: the ``AnnounceKeyRotationRequest``.

    Returns:
        (fingerprint now pinned, outcome).

    Raises:
        PeerError: as :func:`apply_rotation` (nothing changes on refusal).

    """
    if not 0 < len(request.steps) <= MAX_STEPS:
        raise PeerError(f"an announcement carries 1..{MAX_STEPS} rotation steps", reason="BAD_ROTATION")
    lock = node.__dict__.setdefault("_rotation_lock", asyncio.Lock())
    async with lock:
        steps = [RotationStep.parse(s.statement_json, s.bundle_json) for s in request.steps]
        fingerprint, outcome = await asyncio.to_thread(
            apply_rotation, node.paths.peers, own_did=node.did, caller_did=caller_did, steps=steps
        )
        if outcome == "rotation":
            node.reload()
    return fingerprint, outcome


# --- the rotating node's side --------------------------------------------------------------------


def _acks_path(paths: NodePaths) -> Path:
    return _rotations_dir(paths) / ACKS_FILE


def _read_acks(paths: NodePaths) -> dict[str, str]:
    try:
        data = json.loads(_acks_path(paths).read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


async def announce_rotation(
    identity: NodeIdentity, peers: PeerRegistry, peer_client: Any, *, only_unacknowledged: bool = False
) -> dict[str, str]:
    """Send this node's rotation steps to every pinned peer.

    Peers that do not advertise ``accord.key-rotation.v1`` are skipped (their
    operators re-pin with ``accord peer add NEW_BUNDLE --rotation
    keys/rotations/NNNN.json``). A peer that answers is recorded in
    ``keys/rotations/acks.json`` with the fingerprint it now pins.

    Args:
        identity: this node.
        peers: its pinned peers.
        peer_client: a :class:`federation.peer_client.PeerClient` presenting this node's certificate.
        only_unacknowledged: skip peers already acknowledging the current fingerprint.

    Returns:
        Peer org name → ``"rotation"`` / ``"unchanged"`` / an error line.

    """
    from federation.errors import FederationError

    steps = load_rotation_steps(identity.paths)
    if not steps:
        return {}
    current = steps[-1].bundle.fingerprint()
    acks = _read_acks(identity.paths)
    wire_steps = [
        (s.statement.model_dump_json().encode(), s.bundle.model_dump_json().encode()) for s in steps
    ]
    results: dict[str, str] = {}
    for bundle in peers:
        if only_unacknowledged and acks.get(bundle.org_did) == current:
            continue
        try:
            info = await peer_client.node_info(bundle)
            if FEATURE not in info.features:
                results[bundle.org_name] = f"does not accept announcements ({FEATURE}); re-pin by hand"
                continue
            fingerprint, outcome = await peer_client.announce_key_rotation(bundle, wire_steps)
        except FederationError as exc:
            results[bundle.org_name] = f"{exc.reason}: {str(exc)[:200]} (retried by the running node)"
            continue
        except Exception as exc:  # noqa: BLE001 - one peer's failure must not stop the others
            results[bundle.org_name] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            continue
        results[bundle.org_name] = outcome
        if fingerprint == current:
            acks[bundle.org_did] = current
    if acks:
        write_private(_acks_path(identity.paths), json.dumps(acks, indent=2, sort_keys=True))
    for name, outcome in results.items():
        log.info("key rotation announced", peer=name, outcome=outcome)
    return results


async def announce_loop(node: Any, every: float = 30.0) -> None:
    """Re-announce the node's rotation to peers that have not acknowledged it (run by the server)."""
    while True:
        try:
            if (node.paths.root / "keys" / ROTATIONS_DIR).is_dir() and node.peer_client is not None:
                await announce_rotation(node.identity, node.peers, node.peer_client, only_unacknowledged=True)
        except Exception as exc:  # noqa: BLE001 - retried next turn
            log.warning("announcing key rotation failed", error=str(exc)[:300])
        await asyncio.sleep(every)


#: Files whose change means the organization key changed (read, not parsed, at every reload).
_KEY_FILES = ("org.jwk", "org.p8", "pkcs11.json", "org-history.json", "encryption.json")


def _key_files_digest(paths: NodePaths) -> bytes:
    """SHA-256 over the organization key files as they are on disk (cheap: no decryption, no token)."""
    import hashlib

    h = hashlib.sha256()
    for name in _KEY_FILES:
        p = paths.root / "keys" / name
        h.update(name.encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"-")
    return h.digest()


def refresh_identity(node: Any) -> bool:
    """Re-read the node's keys and TLS certificate if they changed on disk (rotation, TLS renewal).

    Called by :meth:`federation.node.Node.reload`. The key files are compared
    byte for byte with what was loaded (an encrypted key is decrypted, or a
    PKCS#11 session opened, only when they changed). The new organization key
    is used for everything signed from now on (envelopes, credentials, status
    lists); a new node certificate goes to the peer client (new connections
    present it; the server side is swapped by the server's TLS callback). A key
    that cannot be loaded (e.g. its passphrase is gone) is logged and the node
    keeps the identity it has.

    Returns:
        True when something changed.

    """
    from federation.errors import ConfigError

    old = node.identity
    digest = _key_files_digest(node.paths)
    cert, key = old.tls_pem("node.pem"), old.tls_pem("node.key")
    if getattr(node, "_tls_pair", None) is None:  # first load: the identity was just read
        node._tls_pair, node._key_digest = (cert, key), digest
        return False
    tls_changed = node._tls_pair != (cert, key)
    key_changed = node._key_digest != digest
    if not key_changed and not tls_changed:
        return False
    if key_changed:
        try:
            fresh = NodeIdentity.load(node.paths.root)
        except ConfigError as exc:
            log.error("node keys not reloaded", error=str(exc)[:300])
            return False
        node.identity = dataclasses.replace(fresh, config=old.config)
        node._key_digest = digest
        from federation.statuslists import StatusListPublisher

        node.status = StatusListPublisher(node.identity, node.store)
        log.info("organization key loaded", key=node.identity.verification_method)
    node._tls_pair = (cert, key)
    if tls_changed and node.peer_client is not None and hasattr(node.peer_client, "update_certificate"):
        node.peer_client.update_certificate(cert_pem=cert, key_pem=key)
        log.info("node TLS certificate reloaded")
    return True
