"""``accord approvals list|show|approve|deny`` and operator keys (issue #15).

The commands work on the node directory's database (offline or beside the
running node): an operator's decision is signed here with the operator's key
and written to the queue; the running node verifies it against the
registered operator keys before acting on it and ledgers it
(:mod:`federation.approvals`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, print_json

app = typer.Typer(no_args_is_help=True)

OperatorOption = Annotated[str, typer.Option("--operator", help="The registered operator's name.")]
KeyOption = Annotated[
    Path, typer.Option("--key", help="The operator's Ed25519 private key (PEM, from operator-keygen).")
]
NoteOption = Annotated[str, typer.Option("--note", help="A short reason, kept with the decision.")]
SimilarOption = Annotated[
    bool,
    typer.Option(
        "--similar",
        help="Also decide every pending request of the same requester, contract and purpose (one prompt).",
    ),
]


def _queue(directory: Path | None):
    from federation.agents import open_store
    from federation.approvals import ApprovalQueue
    from federation.identity import NodeIdentity

    ident = NodeIdentity.load(node_dir(directory))
    return ApprovalQueue(open_store(ident), org_did=ident.org_did)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@app.command("list")
def list_(
    directory: DirOption = None,
    as_json: JsonOption = False,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="pending (default, riskiest first), approved, denied, expired, invalid or all."
        ),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Show at most the decisions this operator may still sign this hour."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
) -> None:
    """The approval queue: pending requests ranked by risk with a one-line reason."""
    from federation.approvals import STATUSES, ApprovalError

    q = _queue(directory)
    now = _now()
    if status not in (None, "all", *STATUSES):
        raise ApprovalError(f"unknown status {status!r}", reason="BAD_APPROVAL_BATCH")
    if status in (None, "pending"):
        rows = q.pending(now=now, limit=limit)
        if operator is not None:
            rows = rows[: q.remaining_prompts(operator, now=now)]
    else:
        rows = q.list(status=None if status == "all" else status, limit=limit)
    if as_json:
        print_json(rows)
        return
    t = Table("id", "status", "risk", "why", "requester", "contract/purpose", "fields", "requests", "expires")
    for r in rows:
        t.add_row(
            r["id"],
            r["status"],
            f"{r['risk']:.2f}",
            r["risk_reason"],
            r["requester_org"],
            f"{r['contract_id']}/{r['purpose']}",
            ",".join(r["fields"]),
            str(r["requests"]),
            r["expires_at"],
        )
    console.print(t)
    if operator is not None:
        console.print(f"{operator}: {q.remaining_prompts(operator, now=now)} decisions left this hour")


@app.command("show")
def show(approval_id: str, directory: DirOption = None, as_json: JsonOption = False) -> None:
    """One queue row: the request shape, risk and reason, batch, decision and its signature."""
    row = _queue(directory).show(approval_id)
    if as_json:
        print_json(row)
        return
    for k, v in row.items():
        console.print(f"{k}: {v}")


def _decide(
    approval_ids: list[str], *, approve: bool, directory, operator: str, key: Path, note: str, similar: bool
) -> None:
    from federation.approvals import ApprovalError, load_operator_key

    q = _queue(directory)
    try:
        pem = key.read_bytes()
    except OSError as exc:
        raise ApprovalError(f"cannot read {key}: {exc.strerror}", reason="BAD_OPERATOR_KEY") from None
    now = _now()
    ids = list(dict.fromkeys(approval_ids))
    if similar:
        first = q.show(ids[0])
        for r in q.pending(now=now, limit=1000):
            same = (r["requester_org"], r["contract_id"], r["purpose"]) == (
                first["requester_org"],
                first["contract_id"],
                first["purpose"],
            )
            if same and r["id"] not in ids:
                ids.append(r["id"])
    out = q.decide(ids, approve=approve, operator=operator, key=load_operator_key(pem), note=note, now=now)
    console.print(
        f"{out['decision']}d {len(out['approval_ids'])} request shape(s) as {operator}: " + " ".join(ids)
    )


@app.command("approve")
def approve(
    approval_ids: list[str],
    operator: OperatorOption,
    key: KeyOption,
    directory: DirOption = None,
    note: NoteOption = "",
    similar: SimilarOption = False,
) -> None:
    """Approve pending requests (one signed decision; covers their shape for the contract's grant_seconds)."""
    _decide(
        approval_ids,
        approve=True,
        directory=directory,
        operator=operator,
        key=key,
        note=note,
        similar=similar,
    )


@app.command("deny")
def deny(
    approval_ids: list[str],
    operator: OperatorOption,
    key: KeyOption,
    directory: DirOption = None,
    note: NoteOption = "",
    similar: SimilarOption = False,
) -> None:
    """Deny pending requests (one signed decision; refuses their shape for the contract's grant_seconds)."""
    _decide(
        approval_ids,
        approve=False,
        directory=directory,
        operator=operator,
        key=key,
        note=note,
        similar=similar,
    )


@app.command("operator-keygen")
def operator_keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key (PEM, 0600).")],
) -> None:
    """Create an operator keypair; prints the public key to register with ``operator-add``."""
    from federation.approvals import ApprovalError, generate_operator_key
    from federation.paths import write_private

    if out.exists():
        raise ApprovalError(f"{out} exists: not overwriting a key", reason="BAD_OPERATOR_KEY")
    pem, public = generate_operator_key()
    write_private(out, pem)
    console.print(public)


@app.command("operator-add")
def operator_add(
    name: str,
    public_key: Annotated[
        str, typer.Option("--public-key", help="base64url Ed25519 public key (operator-keygen).")
    ],
    directory: DirOption = None,
) -> None:
    """Register an operator whose signed decisions the node accepts."""
    _queue(directory).add_operator(name, public_key, now=_now())
    console.print(f"operator {name} registered")


@app.command("operator-revoke")
def operator_revoke(name: str, directory: DirOption = None) -> None:
    """Revoke an operator: decisions it signed are no longer accepted (rows become ``invalid``)."""
    from federation.approvals import ApprovalError

    if not _queue(directory).rows.revoke_operator(name):
        raise ApprovalError(f"{name!r} is not a registered operator", reason="NOT_AN_OPERATOR")
    console.print(f"operator {name} revoked")


@app.command("operators")
def operators(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The registered operators."""
    rows = [
        {
            "name": r["name"],
            "public_key": r["public_key"],
            "revoked": r["revoked"],
            "created_at": r["created_at"].isoformat(),
        }
        for r in _queue(directory).rows.operators()
    ]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['name']}  {r['public_key']}{'  (revoked)' if r['revoked'] else ''}")


@app.command("configure")
def configure(
    max_prompts_per_hour: Annotated[
        int, typer.Option("--max-prompts-per-hour", help="Decisions one operator may sign per hour.")
    ],
    directory: DirOption = None,
) -> None:
    """Set the cap on decisions per operator per hour (against approval fatigue)."""
    _queue(directory).configure(max_prompts_per_operator_hour=max_prompts_per_hour, now=_now())
    console.print(f"at most {max_prompts_per_hour} decisions per operator per hour")
