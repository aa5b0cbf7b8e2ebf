"""``accord dataset``: register datasets for aggregate queries (CSV or a database table), list them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from federation.cli.common import DirOption, JsonOption, console, node_dir, nudge_running_node, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Dataset name (the request's resource).")],
    id_column: Annotated[str, typer.Option("--id", help="Integer record-id column.")],
    sensitive: Annotated[
        list[str], typer.Option("--sensitive", help="Sensitive numeric column (repeatable).")
    ],
    directory: DirOption = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Import records from this CSV file.")] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Import records from this table of the node database.")
    ] = None,
    quasi: Annotated[
        list[str] | None, typer.Option("--quasi", help="Quasi-identifier column (repeatable).")
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", help="Auditing scope: agent, org, coalition, global.")
    ] = "org",
    coalition: Annotated[
        list[str] | None,
        typer.Option("--coalition", help="Comma-separated org DIDs acting together (repeatable)."),
    ] = None,
    dp_epsilon_total: Annotated[
        float | None, typer.Option("--dp-epsilon-total", help="Enable DP: ε budget per scope.")
    ] = None,
    dp_epsilon_query: Annotated[float, typer.Option("--dp-epsilon-query", help="ε per DP query.")] = 0.1,
    dp_bounds: Annotated[str, typer.Option("--dp-bounds", help="LO,HI value bounds for DP sums.")] = "0,100",
    max_ids: Annotated[int, typer.Option("--max-ids", help="Cap on explicit id sets (0 = refuse ids).")] = 0,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing dataset.")] = False,
) -> None:
    """Register a dataset: schema (id, quasi-identifiers, sensitive columns) and records.

    Records without a value in a sensitive column are accepted: COUNT, SUM
    and AVG of that column skip them, and the reconstruction auditor audits
    the records that contribute (docs/auditing.md). ``--dp-epsilon-total``
    puts the dataset in DP mode: every answer is noisy and charged, and no
    exact count leaves the node.
    """
    from federation.agents import open_store
    from federation.datasets import DatasetSpec, infer_columns, read_csv
    from federation.errors import InvalidRequestError
    from federation.identity import NodeIdentity
    from policy.predicates import Dataset

    # flags first: a bad flag is refused before the node's store is opened
    dp = None
    if dp_epsilon_total is not None:
        lo, _, hi = dp_bounds.partition(",")
        try:
            bounds = [float(lo), float(hi)]
        except ValueError:
            raise InvalidRequestError(
                f"--dp-bounds must be LO,HI numbers, got {dp_bounds!r}", reason="BAD_DATASET"
            ) from None
        dp = {"epsilon_total": dp_epsilon_total, "epsilon_per_query": dp_epsilon_query, "bounds": bounds}
    d = node_dir(directory)
    ident = NodeIdentity.load(d)
    store = open_store(ident)
    if (csv_file is None) == (table is None):
        raise InvalidRequestError("give exactly one of --csv or --table", reason="BAD_DATASET")
    if csv_file is not None:
        records = read_csv(csv_file)
    else:
        from sqlalchemy import MetaData, Table, select
        from sqlalchemy.exc import SQLAlchemyError

        try:
            t = Table(table, MetaData(), autoload_with=store.engine)
            with store.engine.connect() as conn:
                records = [dict(r._mapping) for r in conn.execute(select(t))]
        except SQLAlchemyError as exc:
            raise InvalidRequestError(
                f"cannot read table {table!r}: {exc.__class__.__name__}", reason="BAD_DATASET"
            ) from exc
    if not records:
        raise InvalidRequestError("the dataset has no records", reason="BAD_DATASET")
    columns = infer_columns(records)
    keep = {id_column, *sensitive, *(quasi or [])}
    missing = sorted(keep - set(columns))
    if missing:
        raise InvalidRequestError(f"unknown column(s) {missing}", reason="BAD_DATASET")
    spec = DatasetSpec(
        name=name,
        id_column=id_column,
        sensitive=tuple(sensitive),
        quasi=tuple(quasi or ()),
        columns={k: v for k, v in columns.items() if k in keep},
        scope=scope,
        coalitions=tuple(tuple(c.split(",")) for c in (coalition or ())),
        dp=dp,
        max_ids=max_ids,
    )
    spec = DatasetSpec.from_dict(spec.to_dict())  # validates the scope
    rows = [{k: r.get(k) for k in keep} for r in records]
    Dataset(spec.schema(), rows)  # validates ids and types before anything is written
    store.put_dataset(
        name, spec.to_dict(), rows, id_column=id_column, now=dt.datetime.now(dt.UTC), replace=replace
    )
    console.print(
        f"registered dataset {name}: {len(rows)} records, sensitive {list(sensitive)}, scope {scope}"
        + (" (DP mode)" if dp else "")
    )
    for col in sensitive:
        missing = sum(1 for r in rows if r.get(col) is None)
        if missing:
            # they contribute to no COUNT/SUM/AVG of the column, and the auditor does not count them
            console.print(f"note: {missing} record(s) have no {col}; aggregates of {col} skip them")
    note = nudge_running_node(d)
    if note:
        console.print(note)


@app.command("list")
def list_datasets(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List datasets (offline)."""
    from federation.agents import open_store
    from federation.identity import NodeIdentity

    rows = [
        {
            "name": spec["name"],
            "records": len(recs),
            "id": spec["id"],
            "sensitive": spec["sensitive"],
            "quasi": spec.get("quasi", []),
            "scope": spec.get("scope"),
            "dp": bool(spec.get("dp")),
        }
        for spec, recs in open_store(NodeIdentity.load(node_dir(directory))).datasets()
    ]
    if as_json:
        print_json(rows)
        return
    t = Table("name", "records", "id", "sensitive", "quasi", "scope", "dp")
    for r in rows:
        t.add_row(
            r["name"],
            str(r["records"]),
            r["id"],
            ",".join(r["sensitive"]),
            ",".join(r["quasi"]),
            r["scope"],
            "yes" if r["dp"] else "no",
        )
    console.print(t)


def audit_status_rows(directory: Path | None) -> list[dict]:
    """Per dataset and scope: history, rank, denials — read offline from the persisted auditor state."""
    from federation.agents import open_store
    from federation.datasets import DatasetService
    from federation.identity import NodeIdentity

    svc = DatasetService(open_store(NodeIdentity.load(node_dir(directory))))
    svc.load()
    return svc.status()
