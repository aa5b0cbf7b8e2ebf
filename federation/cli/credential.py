"""``accord credential``: issue and verify W3C Verifiable Credentials and Presentations.

Documents are read as JSON on stdin and written as JSON on stdout; keys are
RFC 8037 OKP/Ed25519 JWK files. Verification resolves ``did:key`` methods
locally and ``did:web`` methods from pinned DID documents given with
``--did-document`` (never over the network). Exit codes: 0 success /
verified, 1 refused / not verified (one ``error:`` line on stderr, or the
``--json`` report), 2 usage errors.

Uses only the public API of ``credentials`` (and typer).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from credentials import (
    CredentialError,
    DidDocumentResolver,
    Ed25519KeyPair,
    create_presentation,
    did_key_from_public_key,
    did_key_resolver,
    did_web_document,
    issue_credential,
    load_json,
    verification_method_id,
    verify_credential,
    verify_presentation,
)

app = typer.Typer(
    help="Issue and verify W3C Verifiable Credentials (VC 2.0, Data Integrity EdDSA).",
    no_args_is_help=True,
)

SUITES = ("eddsa-rdfc-2022", "eddsa-jcs-2022")

KeyOption = Annotated[Path, typer.Option("--key", help="Private Ed25519 key, an RFC 8037 OKP JWK file.")]
SuiteOption = Annotated[str, typer.Option("--suite", help="Cryptosuite: eddsa-rdfc-2022 or eddsa-jcs-2022.")]
VmOption = Annotated[
    str | None,
    typer.Option(
        "--verification-method",
        help="DID URL of the key (default: the key's did:key verification method).",
    ),
]
DidDocsOption = Annotated[
    list[Path] | None,
    typer.Option("--did-document", help="Pinned DID document (JSON) to resolve keys from."),
]
TrustedOption = Annotated[
    list[str] | None, typer.Option("--trusted-issuer", help="Accept only these issuers.")
]
NowOption = Annotated[str | None, typer.Option("--now", help="Verification time, ISO 8601 with a time zone.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON report.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _stdin_json() -> Any:
    return load_json(sys.stdin.buffer.read())


def _read_json_file(path: Path) -> Any:
    try:
        return load_json(path.read_bytes())
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}", 2)


def _load_key(path: Path) -> Ed25519KeyPair:
    return Ed25519KeyPair.from_jwk(_read_json_file(path))


def _check_suite(suite: str) -> None:
    if suite not in SUITES:
        _fail(f"--suite must be one of {', '.join(SUITES)}", 2)


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--now is not an ISO 8601 date-time: {value!r}", 2)
    if parsed.tzinfo is None:
        _fail("--now needs a time zone (e.g. 2026-01-01T00:00:00Z)", 2)
    return parsed


def _resolver(documents: list[Path] | None) -> Any:
    if not documents:
        return did_key_resolver
    pinned: dict[str, Any] = {}
    for path in documents:
        doc = _read_json_file(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            _fail(f"{path}: not a DID document", 2)
        pinned[doc["id"]] = doc
    return DidDocumentResolver(pinned, fallback=did_key_resolver)


def _print(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _report(ok: bool, errors: list[dict[str, str]], as_json: bool, summary: str) -> None:
    if as_json:
        typer.echo(json.dumps({"verified": ok, "errors": errors}))
    elif ok:
        typer.echo(summary)
    else:
        typer.echo(f"error: {errors[0]['reason']}: {errors[0]['message']}", err=True)
    raise typer.Exit(0 if ok else 1)


def _error(exc: CredentialError) -> dict[str, str]:
    return {"reason": exc.reason, "message": exc.message}


@app.command()
def keygen() -> None:
    """Generate an Ed25519 key; print its private JWK (with its did:key as ``kid``)."""
    key = Ed25519KeyPair.generate()
    jwk = key.to_jwk(include_private=True)
    jwk["kid"] = verification_method_id(did_key_from_public_key(key.public_key))
    _print(jwk)


@app.command("did-document")
def did_document_command(
    key: KeyOption,
    did: Annotated[str, typer.Option(help="The organization's did:web DID.")],
    key_id: Annotated[str, typer.Option(help="Verification method fragment.")] = "key-1",
) -> None:
    """Print the did:web DID document of a key (public part only), for pinning by peers."""
    try:
        document = did_web_document(did, _load_key(key).public_key, key_id=key_id)
    except CredentialError as exc:
        _fail(exc.diagnostics())
    _print(document)


@app.command()
def issue(
    key: KeyOption,
    suite: SuiteOption = "eddsa-rdfc-2022",
    verification_method: VmOption = None,
) -> None:
    """Sign the unsigned credential on stdin; print the signed credential."""
    _check_suite(suite)
    try:
        pair = _load_key(key)
        vm = verification_method or verification_method_id(did_key_from_public_key(pair.public_key))
        signed = issue_credential(_stdin_json(), key=pair, verification_method=vm, cryptosuite=suite)
    except CredentialError as exc:
        _fail(exc.diagnostics())
    _print(signed)


@app.command()
def verify(
    as_json: JsonOption = False,
    did_document: DidDocsOption = None,
    trusted_issuer: TrustedOption = None,
    now: NowOption = None,
) -> None:
    """Verify the credential on stdin (exit 0 verified, 1 not)."""
    resolver = _resolver(did_document)
    at = _now(now)
    try:
        result = verify_credential(
            _stdin_json(), resolve_key=resolver, now=at, trusted_issuers=trusted_issuer
        )
    except CredentialError as exc:
        _report(False, [_error(exc)], as_json, "")
    _report(True, [], as_json, f"verified: {result.id or '(no id)'} issued by {result.issuer}")


@app.command()
def present(
    key: KeyOption,
    challenge: Annotated[str, typer.Option(help="The verifier's nonce.")],
    domain: Annotated[str, typer.Option(help="The verifier's DID.")],
    holder: Annotated[str | None, typer.Option(help="Holder DID (default: the key's did:key).")] = None,
    suite: SuiteOption = "eddsa-rdfc-2022",
    verification_method: VmOption = None,
) -> None:
    """Wrap the credential (or JSON array of credentials) on stdin in a signed presentation."""
    _check_suite(suite)
    try:
        pair = _load_key(key)
        did = did_key_from_public_key(pair.public_key)
        document = _stdin_json()
        credentials = document if isinstance(document, list) else [document]
        vp = create_presentation(
            credentials,
            holder=holder or did,
            key=pair,
            verification_method=verification_method or verification_method_id(did),
            challenge=challenge,
            domain=domain,
            cryptosuite=suite,
        )
    except CredentialError as exc:
        _fail(exc.diagnostics())
    _print(vp)


@app.command("verify-presentation")
def verify_presentation_command(
    challenge: Annotated[str, typer.Option(help="The nonce this verifier issued.")],
    domain: Annotated[str, typer.Option(help="This verifier's DID.")],
    as_json: JsonOption = False,
    did_document: DidDocsOption = None,
    trusted_issuer: TrustedOption = None,
    now: NowOption = None,
) -> None:
    """Verify the presentation on stdin and every credential in it (exit 0 / 1)."""
    resolver = _resolver(did_document)
    at = _now(now)
    try:
        result = verify_presentation(
            _stdin_json(),
            challenge=challenge,
            domain=domain,
            resolve_key=resolver,
            now=at,
            trusted_issuers=trusted_issuer,
        )
    except CredentialError as exc:
        _report(False, [_error(exc)], as_json, "")
    _report(
        True,
        [],
        as_json,
        f"verified: holder {result.holder}, {len(result.credentials)} credential(s)",
    )
