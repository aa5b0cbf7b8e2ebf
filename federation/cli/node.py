"""``accord node``: init, start, stop, status, migrate, backup, restore, rotate-key, renew-tls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("init")
def init(
    org: Annotated[str, typer.Option("--org", help="Organization name, [a-z0-9-]+.")],
    directory: DirOption = None,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve gRPC on.")] = "127.0.0.1:7400",
    advertise: Annotated[
        str, typer.Option("--advertise", help="HOST:PORT peers dial (default: listen).")
    ] = "",
    database_url: Annotated[
        str, typer.Option("--database-url", help="SQLAlchemy URL.")
    ] = "sqlite:///node.db",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing node.")] = False,
    encrypt_keys: Annotated[
        bool,
        typer.Option("--encrypt-keys", help="Write the org/ledger/witness keys as encrypted PKCS#8."),
    ] = False,
    passphrase_env: Annotated[
        str | None, typer.Option("--passphrase-env", help="Environment variable holding the passphrase.")
    ] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option("--passphrase-file", help="File holding the passphrase.")
    ] = None,
    did: Annotated[
        str | None,
        typer.Option("--did", help="The organization's own did:web (default did:web:<org>.accord.test)."),
    ] = None,
    key_store: Annotated[
        str, typer.Option("--key-store", help="Where the signing keys live: file | pkcs11.")
    ] = "file",
    pkcs11_keys: Annotated[
        str | None,
        typer.Option(
            "--pkcs11-keys",
            help="With --key-store pkcs11: which keys to generate in the token, from org,ledger,witness "
            "(default: all three); the others are files.",
        ),
    ] = None,
    pkcs11_module: Annotated[
        str | None, typer.Option("--pkcs11-module", help="PKCS#11 module (shared library) path.")
    ] = None,
    pkcs11_token: Annotated[str | None, typer.Option("--pkcs11-token", help="PKCS#11 token label.")] = None,
    pin_env: Annotated[
        str | None, typer.Option("--pin-env", help="Environment variable holding the token's user PIN.")
    ] = None,
) -> None:
    """Create keys, DID, CA, TLS certificates and node.toml.

    With ``--encrypt-keys`` (and exactly one of ``--passphrase-env VAR`` /
    ``--passphrase-file F``) the signing keys are encrypted at rest; every
    later command on the directory, ``node start`` included, needs the same
    variable or file. With ``--key-store pkcs11`` the organization, ledger
    and witness key pairs (or those ``--pkcs11-keys`` names) are generated in
    the token and never leave it (signatures are made there; no seed of theirs
    is written anywhere); every later command needs the PIN in
    ``--pin-env``'s variable.
    """
    from federation.identity import KeyPassphrase, init_node

    passphrase = None
    if encrypt_keys:
        if (passphrase_env is None) == (passphrase_file is None):
            raise typer.BadParameter(
                "--encrypt-keys needs exactly one of --passphrase-env, --passphrase-file"
            )
        passphrase = KeyPassphrase(
            env=passphrase_env, file=passphrase_file.resolve() if passphrase_file else None
        )
    elif passphrase_env is not None or passphrase_file is not None:
        raise typer.BadParameter("--passphrase-env / --passphrase-file need --encrypt-keys")
    pkcs11 = _pkcs11_options(key_store, pkcs11_module, pkcs11_token, pin_env)
    roles = ("org", "ledger", "witness")
    if pkcs11_keys is not None and pkcs11 is None:
        raise typer.BadParameter("--pkcs11-keys needs --key-store pkcs11")
    listed = ",".join(roles) if pkcs11_keys is None else pkcs11_keys
    in_token = tuple(k.strip() for k in listed.split(",") if k.strip())
    bad = [k for k in in_token if k not in roles]
    if bad or not in_token:
        raise typer.BadParameter(
            f"--pkcs11-keys: expected a list from org,ledger,witness, got {pkcs11_keys!r}"
        )
    d = node_dir(directory, must_exist=False)
    if force:
        _refuse_orphaning_a_ledger(d)
    cfg = init_node(
        d,
        org_name=org,
        listen=listen,
        advertise=advertise,
        database_url=database_url,
        force=force,
        passphrase=passphrase,
        pkcs11=pkcs11,
        pkcs11_keys=in_token,
        did=did,
    )
    console.print(f"initialized {cfg.org_name} ({cfg.org_did}) in {d}, listening on {cfg.listen}")


def _pkcs11_options(key_store: str, module: str | None, token: str | None, pin_env: str | None):
    """The :class:`federation.keystore.Pkcs11Config` of ``--key-store pkcs11`` (None for ``file``)."""
    from federation.keystore import Pkcs11Config

    if key_store not in ("file", "pkcs11"):
        raise typer.BadParameter(f"--key-store must be file or pkcs11, got {key_store!r}")
    given = [
        o for o, v in (("--pkcs11-module", module), ("--pkcs11-token", token), ("--pin-env", pin_env)) if v
    ]
    if key_store == "file":
        if given:
            raise typer.BadParameter(f"{given[0]} needs --key-store pkcs11")
        return None
    if len(given) != 3:
        raise typer.BadParameter("--key-store pkcs11 needs --pkcs11-module, --pkcs11-token and --pin-env")
    return Pkcs11Config(module=str(Path(module).resolve()), token=token, pin_env=pin_env)


def _refuse_orphaning_a_ledger(d) -> None:
    """``init --force`` replaces the keys: refuse while the old database still holds a ledger.

    New keys over an old ledger leave it unverifiable ("log was created with
    another signing key"): the operator moves the database away first.

    Raises:
        ConfigError: ``LEDGER_EXISTS`` when the node's database holds ledger entries.

    """
    from federation.config import CONFIG_NAME, database_url_for, load_config
    from federation.errors import ConfigError, FederationError

    if not (d / CONFIG_NAME).is_file():
        return
    try:
        cfg = load_config(d)
    except FederationError:
        return  # an unreadable config names no database to protect
    url = database_url_for(d, cfg)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        return
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("ledger_entries"):
                return
            n = conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar() or 0
    finally:
        engine.dispose()
    if n:
        raise ConfigError(
            f"{d} holds a ledger of {n} entries signed with the current keys: --force would leave it "
            "unverifiable; back up and move the database away first",
            reason="LEDGER_EXISTS",
        )


@app.command("start")
def start(
    directory: DirOption = None,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
    replicas: Annotated[
        int,
        typer.Option(
            "--replicas",
            min=1,
            max=64,
            help="Run the node as this many processes on its PostgreSQL database, each on the "
            "configured ports + its index (docs/operator-guide.md, 'Replicas').",
        ),
    ] = 1,
    replica: Annotated[
        int | None,
        typer.Option(
            "--replica", min=0, help="Serve only replica INDEX of --replicas (a supervisor starts these)."
        ),
    ] = None,
) -> None:
    """Serve the node (gRPC over mTLS) until SIGINT/SIGTERM (or `accord node stop`).

    Refused in one line when a node already runs on the directory (its
    ``node.pid`` is locked) or a configured address is in use. With
    ``--replicas N`` (N > 1) this process supervises N replica processes
    (restarting one that dies) and prints each one's READY line.
    """
    from federation.errors import ConfigError
    from federation.observability import configure_logging
    from federation.replicas import ReplicaRole
    from federation.server import run

    configure_logging(json_logs=json_logs)
    if replica is None and replicas > 1:
        _supervise_replicas(node_dir(directory), replicas, json_logs=json_logs)
        return
    try:
        role = ReplicaRole(index=replica or 0, count=replicas)
    except ValueError as exc:
        raise ConfigError(str(exc), reason="BAD_REPLICA") from None
    asyncio.run(run(node_dir(directory), json_ready=json_logs, replica=role if role.shared else None))


def _supervise_replicas(directory, count: int, *, json_logs: bool) -> None:
    """Run ``count`` replicas of the node until SIGINT/SIGTERM (:class:`federation.supervisor.ReplicaSet`)."""
    import signal
    import threading

    from federation.config import load_config
    from federation.errors import ConfigError
    from federation.supervisor import ReplicaSet

    if not load_config(directory).database_url.startswith("postgresql"):
        raise ConfigError(
            f"{count} replicas need the node database on PostgreSQL (database_url in node.toml)",
            reason="REPLICAS_NEED_POSTGRESQL",
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    replicas = ReplicaSet(directory, count, json_logs=json_logs)
    replicas.supervise(stop=stop, on_ready=lambda i, line: print(line, flush=True))


@app.command("stop")
def stop(
    directory: DirOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a graceful stop.")
    ] = 30.0,
    kill: Annotated[
        bool, typer.Option("--kill", help="SIGKILL the node if it is still running after --timeout.")
    ] = False,
) -> None:
    """Stop the node running on this directory: SIGTERM (graceful: drains the ledger), then wait.

    Exit 1 with one line when no node runs there, or when it is still
    running after ``--timeout`` seconds (unless ``--kill``).
    """
    from federation.lifecycle import stop_node
    from federation.paths import NodePaths

    d = node_dir(directory)
    pid = stop_node(NodePaths(d).pidfile, timeout=timeout, kill=kill)
    console.print(f"stopped node in {d} (pid {pid})")


@app.command("status")
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Identity, peers, agents, contracts and ledger size (offline, read-only)."""
    from federation.agents import open_store
    from federation.identity import NodeIdentity, export_bundle
    from federation.peers import PeerRegistry

    ident = NodeIdentity.load(node_dir(directory))
    store = open_store(ident)
    peers = PeerRegistry.load(ident.paths.peers)
    contracts = sorted(p.stem for p in ident.paths.contracts.glob("*.json"))
    from federation.ledger_view import open_ledger_readonly

    lg = open_ledger_readonly(ident)
    info = {
        "org": ident.config.org_name,
        "did": ident.org_did,
        "listen": ident.config.listen,
        "peers": [b.org_did for b in peers],
        "agents": len(store.agents()),
        "contracts": contracts,
        "ledger_size": lg.size(),
        "bundle_fingerprint": export_bundle(ident).fingerprint(),
        "org_key": ident.verification_method,
        "key_store": ", ".join(f"{role}: {where}" for role, where in ident.key_locations().items()),
        "tls_not_after": _not_after(ident.tls_pem("node.pem")),
    }
    if as_json:
        print_json(info)
        return
    t = Table(title=f"node {info['org']}", show_header=False)
    for k, v in info.items():
        t.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    console.print(t)


@app.command("migrate")
def migrate(
    directory: DirOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only report; exit 1 when an upgrade is pending.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Upgrade the node database's schema (node and ledger tables, Alembic) to this version.

    Run with the node stopped (refused while it runs), after a backup. Each
    set of tables is upgraded in one transaction; a database written by a
    newer version is refused.
    """
    from federation.config import database_url_for, load_config
    from federation.lifecycle import NodeRunningError, running_pid
    from federation.paths import NodePaths
    from federation.schema_upgrade import schema_states, upgrade
    from federation.store import make_engine

    d = node_dir(directory)
    cfg = load_config(d)
    url = database_url_for(d, cfg)
    engine = make_engine(url)
    try:
        states = schema_states(engine)
        pending = [s for s in states if s.pending]
        if not check and pending:
            pid = running_pid(NodePaths(d).pidfile)
            if pid is not None:
                raise NodeRunningError(
                    f"a node runs in {d} (pid {pid}): stop it (`accord node stop`) before migrating"
                )
            upgrade(engine, url)
        rows = [
            {
                "tables": s.component,
                "from": s.current,
                "to": s.head,
                "pending": list(s.pending),
                "status": "up to date" if not s.pending else ("pending" if check else "upgraded"),
            }
            for s in states
        ]
    finally:
        engine.dispose()
    if as_json:
        print_json(rows)
    else:
        for r in rows:
            if not r["pending"]:
                console.print(f"{r['tables']} tables: at {r['to']} (up to date)")
            else:
                verb = "would upgrade" if check else "upgraded"
                console.print(
                    f"{r['tables']} tables: {verb} {r['from'] or '(none)'} -> {r['to']} "
                    f"({', '.join(r['pending'])})"
                )
    if check and pending:
        raise typer.Exit(1)


@app.command("backup")
def backup(
    out: Annotated[
        Path, typer.Option("--out", help="The archive to write (mode 0600: it holds the private keys).")
    ],
    directory: DirOption = None,
) -> None:
    """Consistent online backup of a SQLite node: directory and database snapshot, one 0600 archive."""
    from federation.backup import backup_node

    info = backup_node(node_dir(directory), out)
    console.print(
        f"backed up {info.org_name} ({info.org_did}) to {info.path}: {info.files} files, {info.bytes} bytes, "
        f"ledger size {info.ledger_size}; mode 0600, it holds the node's private keys",
        soft_wrap=True,
    )


@app.command("restore")
def restore(
    archive: Annotated[
        Path, typer.Option("--from", help="An archive written by `node backup`.", exists=True, dir_okay=False)
    ],
    directory: Annotated[
        Path, typer.Option("--dir", help="The new node directory (must not exist, or be empty).")
    ],
) -> None:
    """Restore a backup into a new directory (checked against its manifest); never writes over a node."""
    from federation.backup import restore_node

    info = restore_node(archive, directory)
    console.print(
        f"restored {info.org_name} ({info.org_did}) from {info.created_at} into {directory}: ledger size "
        f"{info.ledger_size}. It is the same organization and log: start it in place of the source, never "
        "beside it; if its ledger is older than what the witnesses cosigned, see docs/operator-guide.md",
        soft_wrap=True,
    )


def _not_after(pem: bytes) -> str:
    from cryptography import x509

    t = x509.load_pem_x509_certificate(pem).not_valid_after_utc
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@app.command("rotate-key")
def rotate_key(
    directory: DirOption = None,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="HOST:PORT in the new bundle (default: advertise/listen)."),
    ] = None,
    announce: Annotated[
        bool, typer.Option("--announce/--no-announce", help="Send the rotation to every pinned peer now.")
    ] = True,
    key_store: Annotated[
        str,
        typer.Option("--key-store", help="Move the key: pkcs11 (generate the new key in a token), or file."),
    ] = "file",
    pkcs11_module: Annotated[str | None, typer.Option("--pkcs11-module", help="PKCS#11 module path.")] = None,
    pkcs11_token: Annotated[str | None, typer.Option("--pkcs11-token", help="PKCS#11 token label.")] = None,
    pin_env: Annotated[
        str | None, typer.Option("--pin-env", help="Environment variable holding the token's user PIN.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the organization signing key; pinned peers follow through a statement signed by the old key.

    Writes the new key (encrypted if the node's keys are), retires the old
    one into ``keys/org-history.json`` (its signatures keep verifying) and
    the rotation step into ``keys/rotations/``; reloads a running node, then
    announces the rotation to every pinned peer (``AnnounceKeyRotation``).
    Peers not reached now are retried by the running node. The ledger
    (checkpoint) and witness keys do not rotate: see docs/operator-guide.md.
    ``--key-store pkcs11 …`` generates the new key in an HSM token (moving a
    file key into it); a key already in a token is rotated within that token.
    """
    from federation.cli.common import nudge_running_node
    from federation.identity import NodeIdentity
    from federation.observability import configure_logging
    from federation.paths import NodePaths
    from federation.peers import PeerRegistry
    from federation.rotation import announce_rotation, rotate_org_key

    configure_logging()  # log lines on stderr: stdout is the result (--json)
    into = _pkcs11_options(key_store, pkcs11_module, pkcs11_token, pin_env)
    d = node_dir(directory)
    step = rotate_org_key(d, endpoint=endpoint, into=into)
    ident = NodeIdentity.load(d)
    note = nudge_running_node(d)
    results: dict[str, str] = {}
    if announce:
        from federation.peer_client import PeerClient

        async def go() -> dict[str, str]:
            client = PeerClient(cert_pem=ident.tls_pem("node.pem"), key_pem=ident.tls_pem("node.key"))
            try:
                return await announce_rotation(ident, PeerRegistry.load(NodePaths(d).peers), client)
            finally:
                await client.close()

        results = asyncio.run(go())
    if as_json:
        print_json(
            {
                "old_fingerprint": step.statement.old_fingerprint,
                "new_fingerprint": step.statement.new_fingerprint,
                "verification_method": ident.verification_method,
                "peers": results,
            }
        )
        return
    console.print(
        f"rotated the organization key of {ident.config.org_name}: {ident.verification_method}, "
        f"fingerprint {step.statement.old_fingerprint} -> {step.statement.new_fingerprint}"
    )
    if note:
        console.print(note)
    for name, outcome in sorted(results.items()):
        console.print(f"  {name}: {outcome}")


@app.command("renew-tls")
def renew_tls(
    directory: DirOption = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=3650, help="Validity of the new certificates.")
    ] = 365,
) -> None:
    """Issue fresh node and operator TLS certificates from the organization CA.

    A running node is reloaded (as by ``kill -HUP``) and uses them for new
    connections without a restart (calls in flight finish on the old ones).
    The CA is unchanged, so peers do not re-pin.
    """
    from federation.cli.common import nudge_running_node
    from federation.paths import NodePaths
    from federation.renewal import renew_tls_files

    d = node_dir(directory)
    until = renew_tls_files(NodePaths(d), days=days)
    note = nudge_running_node(d)
    console.print(f"renewed the TLS certificates of {d} until {until}")
    if note:
        console.print(note)
