"""``accord audit``: replay a query log through the reconstruction auditor (offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

_SCOPES = ("agent", "org", "coalition", "global")


@app.callback()
def _group() -> None:
    """Reconstruction-attack auditing (offline tools)."""


def _fail(reason: str, message: str) -> typer.Exit:
    typer.echo(f"accord: error: {reason}: {message}", err=True)
    return typer.Exit(1)


def _read_json(path: Path, what: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _fail("UNREADABLE_INPUT", f"cannot read {what} {str(path)!r}: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _fail("INVALID_REPLAY_INPUT", f"{what} {str(path)!r} is not JSON: {e}") from None
    except RecursionError:
        raise _fail("INVALID_REPLAY_INPUT", f"{what} {str(path)!r} is JSON nested too deeply") from None


@app.command("replay")
def replay_cmd(
    dataset: Annotated[
        Path, typer.Option("--dataset", help="DATASET.json: id, sensitive, columns, records.")
    ],
    queries: Annotated[Path, typer.Option("--queries", help="QUERIES.jsonl: one query object per line.")],
    scope: Annotated[str, typer.Option("--scope", help="History pooling: agent, org, coalition or global.")],
    coalitions: Annotated[
        Path | None,
        typer.Option("--coalitions", help="COALITIONS.json: list of lists of org names."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    no_ids: Annotated[bool, typer.Option("--no-ids", help="Refuse explicit id-set predicates.")] = False,
) -> None:
    """Replay QUERIES through the auditor and print, per query, answer or deny."""
    from policy.errors import PolicyError
    from policy.replay import load_dataset, parse_coalitions, parse_queries, replay

    if scope not in _SCOPES:
        raise _fail("INVALID_SCOPE", f"--scope must be one of {', '.join(_SCOPES)}, got {scope!r}")
    try:
        ds = load_dataset(_read_json(dataset, "dataset"))  # type: ignore[arg-type]
        groups = parse_coalitions(_read_json(coalitions, "coalitions")) if coalitions else []
        try:
            lines = queries.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise _fail("UNREADABLE_INPUT", f"cannot read queries {str(queries)!r}: {e}") from None
        parsed = parse_queries(lines, ds, allow_ids=not no_ids)
        results = list(replay(ds, parsed, scope=scope, coalitions=groups))
    except PolicyError as e:
        raise _fail(e.reason, str(e)) from None
    for r in results:
        if as_json:
            typer.echo(json.dumps(r.to_json(), separators=(",", ":")))
        elif r.decision == "answer":
            typer.echo(f"{r.index}\tanswer\t{r.reason}\t{r.answer}")
        else:
            typer.echo(f"{r.index}\tdeny\t{r.reason}")


@app.command("status")
def status(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Node directory (default: $ACCORD_NODE_DIR, else cwd).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per dataset and scope: answered history, rank, denials (offline, from the persisted state)."""
    import json as _json

    from rich.console import Console
    from rich.table import Table

    from federation.cli.dataset import audit_status_rows

    rows = audit_status_rows(directory)
    if as_json:
        typer.echo(_json.dumps(rows, indent=2))
        return
    t = Table(
        "dataset",
        "scope",
        "records",
        "answered sums",
        "counts",
        "rank",
        "atoms",
        "denials",
        title="reconstruction auditor",
    )
    for r in rows:
        t.add_row(
            r["dataset"],
            r["scope"],
            str(r["records"]),
            str(r["history"]),
            str(r["counts"]),
            str(r["rank"]),
            str(r["atoms"]),
            str(r["denials"]),
        )
    Console(emoji=False, markup=False, highlight=False).print(t)
