"""Offline replay of an aggregate-query log through the reconstruction auditor.

``accord audit replay`` reads a dataset and a JSON-lines query log and shows,
query by query, what a node would have answered and what it would have
denied, using the same :class:`~policy.auditor.Auditor` as the node. Input is
parsed whole before anything is replayed (a bad line anywhere is reported
before any output).

Formats:

* dataset: ``{"id": COL, "sensitive": COL, "columns": [COL, ...],
  "records": [{COL: value, ...}, ...]}``. Column types are inferred from the
  records (all ``bool`` -> bool, all ``int`` -> int, ints and floats -> float,
  all ``str`` -> str; missing/``null`` values are ignored; a column with no
  value is typed ``str``). ``columns`` lists the non-id, non-sensitive
  columns usable in predicates (the id and sensitive columns may be listed
  too).
* query line: ``{"requester_org": ORG, "agent": AGENT, "kind":
  "count"|"sum"|"avg", "predicate": P}`` (grammar in
  :mod:`policy.predicates`). Aggregates run over the *contributing* records:
  those the predicate selects that have a sensitive value (missing values
  are skipped by COUNT, SUM and AVG alike, and the auditor sees the same set).
* coalitions: a JSON list of lists of organization names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policy.auditor import Auditor, scope_key
from policy.errors import PolicyError
from policy.predicates import Dataset, DatasetSchema, Predicate, PredicateError

__all__ = [
    "ReplayError",
    "ReplayQuery",
    "ReplayResult",
    "answer_query",
    "infer_schema",
    "load_dataset",
    "parse_coalitions",
    "parse_queries",
    "replay",
]


class ReplayError(PolicyError):
    """Replay input is malformed (reason ``INVALID_REPLAY_INPUT``, caller's fault).

    ``metadata`` may hold ``line`` (1-based line of the query log) or
    ``record`` (0-based index in the dataset).
    """

    reason = "INVALID_REPLAY_INPUT"
    caller_fault = True


@dataclass(frozen=True)
class ReplayQuery:
    """One parsed query of the log."""

    requester_org: str
    agent: str
    kind: str
    predicate: Predicate


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of one replayed query.

    Attributes:
        index: 0-based position in the log.
        decision: ``"answer"`` or ``"deny"``.
        reason: the auditor's reason (``OK``, ``RECONSTRUCTION_RISK``,
            ``EMPTY_SELECTION``).
        answer: the aggregate (int for COUNT and integer SUMs, float
            otherwise) or None when denied.
        scope_key: the pooling key the query was audited under.

    """

    index: int
    decision: str
    reason: str
    answer: int | float | None
    scope_key: str

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` line object (without the scope key)."""
        return {
            "index": self.index,
            "decision": self.decision,
            "reason": self.reason,
            "answer": self.answer,
        }


def _infer_type(name: str, values: Iterable[Any]) -> str:
    kinds: set[str] = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            raise ReplayError(
                f"column {name!r}: unsupported value {v!r} (expected int, float, str or bool)",
                metadata={"column": name},
            )
    if not kinds:
        return "str"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"int", "float"}:
        return "float"
    raise ReplayError(f"column {name!r}: mixed value types {sorted(kinds)}", metadata={"column": name})


def infer_schema(obj: Mapping[str, Any]) -> DatasetSchema:
    """Build the schema of a replay dataset, inferring column types from the records.

    Raises:
        ReplayError: missing or mistyped top-level keys, mixed column types.
        PredicateError: the inferred schema is inconsistent (e.g. a
            non-numeric sensitive column).

    """
    if not isinstance(obj, Mapping):
        raise ReplayError("dataset must be a JSON object")
    for key, typ in (("id", str), ("sensitive", str), ("columns", list), ("records", list)):
        if not isinstance(obj.get(key), typ):
            raise ReplayError(f"dataset key {key!r} must be a {typ.__name__}", metadata={"key": key})
    records = obj["records"]
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ReplayError(f"record {i} is not an object", metadata={"record": str(i)})
    names = [obj["id"], obj["sensitive"]]
    for c in obj["columns"]:
        if not isinstance(c, str):
            raise ReplayError(f"column names must be strings, got {c!r}")
        if c not in names:
            names.append(c)
    columns = {c: _infer_type(c, (r.get(c) for r in records)) for c in names}
    if all(r.get(obj["sensitive"]) is None for r in records):
        columns[obj["sensitive"]] = "float"
    try:
        return DatasetSchema(obj["id"], (obj["sensitive"],), columns)
    except PolicyError as e:
        raise ReplayError(str(e), metadata=e.metadata) from None


def load_dataset(obj: Mapping[str, Any]) -> Dataset:
    """Parse a replay dataset (decoded JSON) into a :class:`Dataset`.

    Raises:
        ReplayError: malformed dataset (see :func:`infer_schema`), unknown
            columns in records, duplicate or non-integer ids.

    """
    schema = infer_schema(obj)
    try:
        return Dataset(schema, obj["records"])
    except PolicyError as e:
        raise ReplayError(str(e), metadata=e.metadata) from None


def parse_queries(lines: Iterable[str], dataset: Dataset, *, allow_ids: bool = True) -> list[ReplayQuery]:
    """Parse a JSON-lines query log (blank lines are skipped).

    Raises:
        ReplayError: a line is not JSON (or nested too deeply to decode), lacks
            a field, has a bad kind, or its predicate is invalid (the message
            names the 1-based line).

    """
    out: list[ReplayQuery] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        meta = {"line": str(n)}
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReplayError(f"line {n}: not JSON ({e.msg})", metadata=meta) from None
        except RecursionError:
            raise ReplayError(f"line {n}: JSON nested too deeply", metadata=meta) from None
        if not isinstance(obj, dict):
            raise ReplayError(f"line {n}: expected a JSON object", metadata=meta)
        for key in ("requester_org", "agent", "kind"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise ReplayError(f"line {n}: {key!r} must be a non-empty string", metadata=meta)
        if obj["kind"] not in ("count", "sum", "avg"):
            raise ReplayError(f"line {n}: kind must be count, sum or avg, got {obj['kind']!r}", metadata=meta)
        if "predicate" not in obj:
            raise ReplayError(f"line {n}: missing 'predicate'", metadata=meta)
        try:
            pred = dataset.parse(obj["predicate"], allow_ids=allow_ids)
        except PredicateError as e:
            raise ReplayError(f"line {n}: {e}", metadata={**e.metadata, **meta}) from None
        out.append(ReplayQuery(obj["requester_org"], obj["agent"], obj["kind"], pred))
    return out


def parse_coalitions(obj: Any) -> list[list[str]]:
    """Validate a coalitions document (a list of lists of organization names).

    Raises:
        ReplayError: any other shape.

    """
    if not isinstance(obj, list) or not all(
        isinstance(g, list) and all(isinstance(o, str) and o for o in g) for g in obj
    ):
        raise ReplayError("coalitions must be a JSON list of lists of organization names")
    return [list(g) for g in obj]


def answer_query(dataset: Dataset, kind: str, ids: Sequence[int]) -> int | float | None:
    """Compute COUNT / SUM / AVG of the dataset's (first) sensitive column over ``ids``.

    Missing sensitive values are skipped by all three (SQL's ``COUNT(col)``,
    ``SUM(col)``, ``AVG(col)``), so COUNT, SUM and AVG agree on who is in the
    group; AVG of no value is None. :func:`replay` passes the contributing
    records only, the same set the auditor sees.
    """
    vals = dataset.values(ids, dataset.schema.sensitive[0])
    if kind == "count":
        return len(vals)
    total = sum(vals)
    if kind == "sum":
        return total
    return total / len(vals) if vals else None


def replay(
    dataset: Dataset,
    queries: Sequence[ReplayQuery],
    *,
    scope: str,
    coalitions: Iterable[Iterable[str]] = (),
    auditor: Auditor | None = None,
) -> Iterator[ReplayResult]:
    """Replay queries in order through an auditor, yielding one result per query.

    Args:
        dataset: the dataset (its records' ordinals become the auditor's universe).
        queries: parsed queries (:func:`parse_queries`).
        scope: pooling scope, ``agent``, ``org``, ``coalition`` or ``global``.
        coalitions: colluding organization groups (for ``coalition``).
        auditor: an auditor to continue from, over record ordinals 0..n-1
            (default: a fresh one).

    Raises:
        InvalidScopeError: unknown scope.

    """
    coalitions = [list(g) for g in coalitions]
    # the auditor sees record positions, so arbitrary (sparse, huge) ids are fine
    all_ids = dataset.record_ids
    if auditor is None:
        auditor = Auditor(range(len(all_ids)))
    for i, q in enumerate(queries):
        key = scope_key(scope, requester_org=q.requester_org, agent=q.agent, coalitions=coalitions)
        # the auditor's row is the set of records that contribute (selected and with a value):
        # a selected record with a missing value must not make a group look bigger than it is
        pos = dataset.select_positions(q.predicate, contributing=dataset.schema.sensitive[0])
        ids = [all_ids[j] for j in pos.tolist()]
        d = auditor.audit(key, q.kind, pos)
        if d.allow:
            yield ReplayResult(i, "answer", d.reason, answer_query(dataset, q.kind, ids), key)
        else:
            yield ReplayResult(i, "deny", d.reason, None, key)
