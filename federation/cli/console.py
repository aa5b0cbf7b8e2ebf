"""``accord console``: the operator console; ``issue-cert``, ``revoke-operator`` for its operators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=False)


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    directory: DirOption = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Bind address; off loopback TLS with operator certificates is required."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port (0 = any free port).")
    ] = 8470,
    write: Annotated[
        bool,
        typer.Option("--write", help="Grant the write role to loopback requests (plain HTTP on loopback)."),
    ] = False,
    tls: Annotated[
        bool, typer.Option("--tls", help="Serve TLS (client certificate required) on loopback too.")
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="Server certificate PEM (default: the node's tls/node.pem)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Server key PEM (default: tls/node.key).")
    ] = None,
    approver: Annotated[
        str, typer.Option("--approver", help="Approvals operator whose key signs console decisions.")
    ] = "",
    approver_key: Annotated[
        Path | None, typer.Option("--approver-key", help="That operator's Ed25519 private key (PEM).")
    ] = None,
) -> None:
    """Serve the operator console for a node directory (read-only unless a write role is granted)."""
    if ctx.invoked_subcommand is not None:
        return
    from federation.console.server import ConsoleSettings
    from federation.console.server import serve as run
    from federation.errors import ConfigError

    try:
        settings = ConsoleSettings(
            node_dir=node_dir(directory),
            host=host,
            port=port,
            write=write,
            tls=tls,
            tls_cert=tls_cert,
            tls_key=tls_key,
            approver=approver,
            approver_key=approver_key,
        )
    except ValueError as exc:
        raise ConfigError(str(exc), reason="CONSOLE_CONFIG") from None

    def ready(addr) -> None:
        scheme = "https" if settings.uses_tls else "http"
        who = (
            "operator certificates (role from the SAN URI)"
            if settings.uses_tls
            else (f"loopback, role {settings.loopback_role}")
        )
        h = addr[0] if ":" not in addr[0] else f"[{addr[0]}]"
        print(f"console: {scheme}://{h}:{addr[1]}/ ({who})", flush=True)

    run(settings, on_ready=ready)


@app.command("issue-cert")
def issue_cert(
    name: Annotated[str, typer.Option("--name", help="Operator name, [a-z0-9-]{1,64}.")],
    role: Annotated[str, typer.Option("--role", help="read or write.")] = "read",
    out: Annotated[Path, typer.Option("--out", help="Directory for NAME.pem, NAME.key and NAME.p12.")] = Path(
        "."
    ),
    days: Annotated[int, typer.Option("--days", min=1, max=825, help="Validity, days.")] = 90,
    directory: DirOption = None,
) -> None:
    """Issue a console operator certificate from the node's CA (SAN URI ``<org DID>#console-<role>:<name>``).

    Writes PEM certificate and key (0600) and a PKCS#12 file (no password) to import into a browser.
    """
    import re

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from federation.console.auth import CONSOLE_READ, CONSOLE_WRITE
    from federation.errors import InvalidRequestError
    from federation.identity import NodeIdentity
    from federation.paths import write_private
    from federation.tls import issue_client_certificate

    if not re.fullmatch(r"[a-z0-9-]{1,64}", name):
        raise InvalidRequestError("--name must match [a-z0-9-]{1,64}", reason="BAD_NAME")
    if role not in ("read", "write"):
        raise InvalidRequestError("--role must be read or write", reason="BAD_ROLE")
    ident = NodeIdentity.load(node_dir(directory))
    san = ident.org_did + (CONSOLE_WRITE if role == "write" else CONSOLE_READ) + name
    cert_pem, key_pem = issue_client_certificate(
        ca_pem=ident.tls_pem("ca.pem"),
        ca_key_pem=ident.tls_pem("ca.key"),
        san=san,
        common_name=f"{ident.config.org_name} console {role} {name}",
        days=days,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.pem").write_bytes(cert_pem)
    write_private(out / f"{name}.key", key_pem)
    p12 = pkcs12.serialize_key_and_certificates(
        name.encode(),
        serialization.load_pem_private_key(key_pem, password=None),  # type: ignore[arg-type]
        x509.load_pem_x509_certificate(cert_pem),
        [x509.load_pem_x509_certificate(ident.tls_pem("ca.pem"))],
        serialization.NoEncryption(),
    )
    write_private(out / f"{name}.p12", p12)
    console.print(f"issued {san} ({role}, {days} days): {out / name}.pem, .key, .p12")


@app.command("revoke-operator")
def revoke_operator(
    cert: Annotated[Path, typer.Option("--cert", help="The operator certificate to revoke (PEM).")],
    directory: DirOption = None,
) -> None:
    """Revoke a console operator certificate: add it to the node CA's console CRL (``tls/console-crl.pem``).

    Takes effect on the next request of every console of this node (``accord console``
    processes and ``console = true``), which then answers that certificate 403
    ``OPERATOR_REVOKED``.
    """
    from cryptography import x509

    from federation.console.revocation import RevocationError, revoke_certificate
    from federation.errors import InvalidRequestError
    from federation.identity import NodeIdentity

    ident = NodeIdentity.load(node_dir(directory))
    try:
        raw = cert.read_bytes()[: 64 * 1024]
        parsed = x509.load_pem_x509_certificate(raw)
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(
            f"{cert}: not a readable PEM certificate", reason="BAD_CERTIFICATE"
        ) from exc
    try:
        serial, new = revoke_certificate(ident.paths.tls, parsed)
    except RevocationError as exc:
        raise InvalidRequestError(f"{cert}: {exc}", reason=exc.reason) from exc
    what = "revoked" if new else "already revoked"
    console.print(f"{what}: serial {serial:x} ({ident.paths.tls / 'console-crl.pem'})")


@app.command("revoked-operators")
def revoked_operators(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List the serial numbers (hex) and revocation times on the console CRL."""
    from federation.console.revocation import RevocationError, revoked_serials
    from federation.errors import InvalidRequestError
    from federation.identity import NodeIdentity

    ident = NodeIdentity.load(node_dir(directory))
    try:
        rows = [
            {"serial": f"{s:x}", "revoked_at": t.isoformat()} for s, t in revoked_serials(ident.paths.tls)
        ]
    except RevocationError as exc:
        raise InvalidRequestError(str(exc), reason=exc.reason) from exc
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['serial']}  {r['revoked_at']}")
