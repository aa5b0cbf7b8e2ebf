"""``accord peer``: export-bundle, add, remove, sign-rotation, list, reset-witness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import (
    DirOption,
    JsonOption,
    console,
    node_dir,
    nudge_running_node,
    print_json,
)

app = typer.Typer(no_args_is_help=True)


@app.command("export-bundle")
def export_bundle_cmd(
    directory: DirOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Override HOST:PORT.")] = None,
) -> None:
    """Print this node's signed peer bundle (JSON)."""
    from federation.identity import NodeIdentity, export_bundle

    bundle = export_bundle(NodeIdentity.load(node_dir(directory)), endpoint=endpoint)
    text = bundle.model_dump_json(indent=2)
    if out:
        out.write_text(text)
        console.print(f"wrote bundle of {bundle.org_did} (fingerprint {bundle.fingerprint()}) to {out}")
    else:
        typer.echo(text)


@app.command("add")
def add(
    bundle_file: Annotated[Path, typer.Argument(help="A peer's bundle (JSON).", exists=True, dir_okay=False)],
    directory: DirOption = None,
    rotation: Annotated[
        Path | None,
        typer.Option(
            "--rotation",
            help="Re-pin: a rotation statement signed by the pinned (old) key (`accord peer sign-rotation`).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    replace_fingerprints: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--replace-fingerprints",
            help="Re-pin by operator override: OLD NEW fingerprints, both checked out of band.",
        ),
    ] = None,
    witness: Annotated[
        bool,
        typer.Option(
            "--witness",
            help="Also name the peer in `witnesses` (node.toml): its witness cosigns our checkpoints.",
        ),
    ] = False,
    check_did: Annotated[
        bool,
        typer.Option(
            "--check-did",
            help="Pin only if the bundle's did:web document, fetched over HTTPS, carries the bundle's key.",
        ),
    ] = False,
    did_ca: Annotated[
        str | None,
        typer.Option(
            "--did-ca",
            help="With --check-did: CA (PEM file) the DID host's certificate must chain to, or `bundle` "
            "for the CA in the bundle (default: the system trust store).",
        ),
    ] = None,
) -> None:
    """Verify and pin a peer bundle.

    A peer already pinned with other keys, CA or endpoint is only re-pinned
    with ``--rotation`` or ``--replace-fingerprints OLD NEW``. Pinning never
    changes the witness policy unless ``--witness`` is given. With
    ``--check-did`` the organization's did:web DID document is resolved over
    HTTPS (:mod:`federation.didweb`) and must name the bundle's key.
    """
    from federation.config import load_config, save_config
    from federation.errors import PeerError
    from federation.paths import NodePaths
    from federation.peers import PeerBundle, RotationStatement, pin_bundle

    d = node_dir(directory)
    cfg = load_config(d)
    bundle = PeerBundle.parse(bundle_file.read_bytes())
    if witness and not bundle.witness_vkey:
        raise PeerError(
            f"{bundle_file}: the bundle of {bundle.org_name} has no witness key", reason="BAD_BUNDLE"
        )
    if did_ca is not None and not check_did:
        raise typer.BadParameter("--did-ca needs --check-did")
    checked = ""
    if check_did:
        from federation.didweb import check_bundle_against_did, resolve_did_web

        if did_ca is None or did_ca == "bundle":
            ca_pem = bundle.ca_certificate_pem.encode() if did_ca else None
        else:
            try:
                ca_pem = Path(did_ca).read_bytes()[: 64 * 1024]
            except OSError as exc:
                raise typer.BadParameter(f"--did-ca: {exc}") from None
        checked = check_bundle_against_did(bundle, resolve_did_web(bundle.org_did, ca_pem=ca_pem))
    result = pin_bundle(
        NodePaths(d).peers,
        bundle,
        own_did=cfg.org_did,
        rotation=RotationStatement.parse(rotation.read_bytes()) if rotation else None,
        override=replace_fingerprints,
    )
    moved = (
        f" (was {result.previous_fingerprint}, by {result.how})"
        if result.how in ("rotation", "override")
        else ""
    )
    console.print(
        f"pinned {bundle.org_name} ({bundle.org_did}) at {bundle.endpoint}, "
        f"fingerprint {bundle.fingerprint()}{moved}"
    )
    if checked:
        console.print(f"the DID document of {bundle.org_did} names the bundle's key ({checked})")
    if witness and bundle.org_name not in cfg.witnesses:
        save_config(d, cfg.model_copy(update={"witnesses": [*cfg.witnesses, bundle.org_name]}))
        console.print(
            f"witnesses: {', '.join([*cfg.witnesses, bundle.org_name])} (quorum {cfg.witness_quorum})"
        )
    note = nudge_running_node(d)
    if note:
        console.print(note)


@app.command("sign-rotation")
def sign_rotation(
    new_bundle: Annotated[
        Path, typer.Argument(help="The organization's new bundle (JSON).", exists=True, dir_okay=False)
    ],
    directory: DirOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Sign, with this (old) node's organization key, a statement moving peers' pin to NEW_BUNDLE."""
    from federation.identity import NodeIdentity, export_bundle
    from federation.peers import PeerBundle, RotationStatement

    ident = NodeIdentity.load(node_dir(directory))
    new = PeerBundle.parse(new_bundle.read_bytes())
    stmt = RotationStatement.make(old=export_bundle(ident), new=new, old_key=ident.org_key)
    text = stmt.model_dump_json(indent=2)
    if out:
        out.write_text(text)
        console.print(f"wrote rotation {stmt.old_fingerprint} -> {stmt.new_fingerprint} to {out}")
    else:
        typer.echo(text)


@app.command("list")
def list_peers(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List pinned peers (offline)."""
    from federation.paths import NodePaths
    from federation.peers import PeerRegistry

    reg = PeerRegistry.load(NodePaths(node_dir(directory)).peers)
    rows = [
        {"org": b.org_name, "did": b.org_did, "endpoint": b.endpoint, "fingerprint": b.fingerprint()}
        for b in reg
    ]
    if as_json:
        print_json(rows)
        return
    t = Table("org", "did", "endpoint", "fingerprint")
    for r in rows:
        t.add_row(*r.values())
    console.print(t)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The peer's organization name (as in `peer list`).")],
    directory: DirOption = None,
) -> None:
    """Unpin a peer: delete its bundle and drop it from `witnesses`.

    Refused, with nothing changed, when the peer is not pinned or when
    dropping it would leave fewer witnesses than ``witness_quorum`` (lower the
    quorum first). Contracts naming the peer stay registered but can no
    longer be used (they are listed). The running node is reloaded.
    """
    import re

    from federation.config import load_config, save_config
    from federation.errors import ConfigError, PeerError
    from federation.paths import NodePaths
    from federation.peers import PeerRegistry
    from policy import Contract

    d = node_dir(directory)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        raise PeerError(f"not an organization name: {name!r}", reason="UNKNOWN_PEER")
    paths = NodePaths(d)
    registry = PeerRegistry.load(paths.peers)
    bundle = next((b for b in registry if b.org_name == name), None)
    if bundle is None:
        raise PeerError(f"{name} is not a pinned peer of this node (see `accord peer list`)")
    cfg = load_config(d)
    new_cfg = None
    if name in cfg.witnesses:
        rest = [w for w in cfg.witnesses if w != name]
        if len(rest) < cfg.witness_quorum:
            raise ConfigError(
                f"{paths.config}: removing {name} leaves {len(rest)} witness(es) for witness_quorum "
                f"{cfg.witness_quorum}: change witnesses / witness_quorum there first",
                metadata={"field": "witness_quorum"},
            )
        new_cfg = cfg.model_copy(update={"witnesses": rest})
    # Atomic across files: the bundle is first renamed aside (one rename, not matched by
    # `*.json`), then node.toml is replaced (one rename); if that fails the bundle is put back,
    # so the peer is either still pinned and a witness, or neither.
    staged = []
    for p in paths.peers.glob("*.json"):
        if _names(p, bundle.org_did):
            aside = p.with_name(f".{p.name}.removing")
            p.replace(aside)
            staged.append((aside, p))
    try:
        if new_cfg is not None:
            save_config(d, new_cfg)
    except BaseException:
        for aside, p in staged:
            aside.replace(p)
        raise
    for aside, _ in staged:
        aside.unlink(missing_ok=True)
    from federation.rotation import remove_retired

    remove_retired(paths.peers, bundle.org_name)  # its rotated-away keys no longer resolve
    naming = []
    for p in sorted(paths.contracts.glob("*.json")):
        try:
            c = Contract.load(p)
        except Exception:  # noqa: BLE001 - a bad contract file is not this command's business
            continue
        if bundle.org_did in (c.parties.provider.org, c.parties.requester.org):
            naming.append(c.id)
    console.print(f"removed peer {name} ({bundle.org_did}, fingerprint {bundle.fingerprint()})")
    if naming:
        console.print(f"note: contracts naming {name} can no longer be used: {', '.join(naming)}")
    note = nudge_running_node(d)
    if note:
        console.print(note)


def _names(path: Path, org_did: str) -> bool:
    """True when the pinned bundle file at ``path`` is the one of ``org_did``."""
    import json

    try:
        return json.loads(path.read_text()).get("org_did") == org_did
    except (OSError, ValueError, AttributeError):
        return False


@app.command("reset-witness")
def reset_witness(
    name: Annotated[str, typer.Argument(help="The peer whose log this node witnesses (as in `peer list`).")],
    held_size: Annotated[
        int | None,
        typer.Option(
            "--held-size",
            min=0,
            help="The size this node's witness holds for the peer's log (shown without it); resets.",
        ),
    ] = None,
    directory: DirOption = None,
) -> None:
    """Let this node's witness accept a peer's log again from size 0 (the peer restored an older backup).

    Without ``--held-size`` the command only shows what the witness holds and
    changes nothing. With it (the size shown, so that a state that moved
    meanwhile is not reset: ``WITNESS_STATE_CHANGED``) the witness forgets
    the checkpoint it cosigned for the peer's origin; the next checkpoint the
    peer sends is accepted as a new log (trust on first use again). Stored
    equivocation evidence and the peer's pinned keys are kept. Takes effect
    at once, also on a running node. See docs/operator-guide.md, "Restoring an
    older backup".
    """
    from federation.config import database_url_for
    from federation.errors import PeerError
    from federation.identity import NodeIdentity
    from federation.peers import PeerRegistry
    from ledger import Witness

    ident = NodeIdentity.load(node_dir(directory))
    try:
        bundle = PeerRegistry.load(ident.paths.peers).get(name)
    except PeerError:
        raise PeerError(f"{name} is not a pinned peer of this node (see `accord peer list`)") from None
    witness = Witness.open(
        database_url_for(ident.paths.root, ident.config),
        signer=ident.witness_signer(),
    )
    try:
        latest = witness.latest(bundle.ledger_origin)
        held = latest.checkpoint.size if latest else 0
        if held_size is None:
            console.print(
                f"the witness holds size {held} for {bundle.ledger_origin}; to accept {name}'s log again "
                f"from size 0: accord peer reset-witness {name} --held-size {held}"
            )
            return
        witness.reset_log(bundle.ledger_origin, expected_size=held_size)
    finally:
        witness.close()
    console.print(
        f"reset the witness state of {bundle.ledger_origin} (was size {held}); its next checkpoint "
        "starts a new history here (equivocation evidence kept)"
    )
