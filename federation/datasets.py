"""Datasets for aggregate queries and their reconstruction auditing at the provider.

A dataset (registered with ``accord dataset register``) is a table of
records with an integer id column, quasi-identifier columns and sensitive
numeric columns, stored in the node database (``node_datasets``,
``node_dataset_records``). Its spec also fixes the auditing **scope** that
pools query history (``agent``, ``org``, ``coalition`` with declared
coalitions, ``global``) and, optionally, a differential-privacy layer
(ε per query, ε total per scope, value bounds).

:class:`DatasetService` answers one aggregate query (COUNT, SUM, AVG of one
sensitive column over the records a structured predicate selects) after the
contract check: it parses the predicate (never SQL), selects the ids, asks
the :class:`policy.auditor.Auditor` whether answering would let the scope
determine any record's value exactly (simulatable: the decision uses the
queries only), commits the query to the history and persists the auditor
state before answering, and applies the DP layer when configured.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.errors import DeniedError, InvalidRequestError, NotFoundError
from policy.auditor import Auditor, scope_key
from policy.dp import PrivacyBudget, dp_answer
from policy.predicates import Dataset, DatasetSchema

SCOPES = ("agent", "org", "coalition", "global")
KINDS = ("count", "sum", "avg")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset's description.

    Attributes:
        name: dataset name (the request's ``resource``).
        id_column: integer record-id column.
        sensitive: sensitive numeric columns (aggregated, never in predicates).
        quasi: quasi-identifier columns (usable in predicates).
        columns: column → type (``int``, ``float``, ``str``, ``bool``).
        scope: auditing scope.
        coalitions: organization DIDs declared as acting together.
        dp: ``{"epsilon_total", "epsilon_per_query", "bounds": [lo, hi]}`` or None.
        max_ids: cap on explicit id sets in one predicate (0 = ids refused).
    """

    name: str
    id_column: str
    sensitive: tuple[str, ...]
    quasi: tuple[str, ...]
    columns: dict[str, str]
    scope: str = "org"
    coalitions: tuple[tuple[str, ...], ...] = ()
    dp: dict[str, Any] | None = None
    max_ids: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "id": self.id_column,
            "sensitive": list(self.sensitive),
            "quasi": list(self.quasi),
            "columns": self.columns,
            "scope": self.scope,
            "coalitions": [list(c) for c in self.coalitions],
            "dp": self.dp,
            "max_ids": self.max_ids,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetSpec:
        """Parse the JSON form.

        Raises:
            InvalidRequestError: ``BAD_DATASET`` for a malformed spec.
        """
        try:
            spec = cls(
                name=d["name"],
                id_column=d["id"],
                sensitive=tuple(d["sensitive"]),
                quasi=tuple(d.get("quasi", ())),
                columns=dict(d["columns"]),
                scope=d.get("scope", "org"),
                coalitions=tuple(tuple(c) for c in d.get("coalitions", ())),
                dp=d.get("dp"),
                max_ids=int(d.get("max_ids", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequestError(f"malformed dataset spec: {exc}", reason="BAD_DATASET") from exc
        if spec.scope not in SCOPES:
            raise InvalidRequestError(f"scope must be one of {SCOPES}", reason="BAD_DATASET")
        return spec

    def schema(self) -> DatasetSchema:
        """The predicate schema: id, quasi-identifiers and sensitive columns only."""
        keep = {self.id_column, *self.sensitive, *self.quasi}
        return DatasetSchema(
            id_column=self.id_column,
            sensitive=self.sensitive,
            columns={k: v for k, v in self.columns.items() if k in keep},
        )


def infer_columns(records: list[dict[str, Any]]) -> dict[str, str]:
    """Column types from values: ``int``, ``float``, ``bool`` or ``str``."""
    types: dict[str, str] = {}
    for r in records:
        for k, v in r.items():
            t = (
                "bool"
                if isinstance(v, bool)
                else "int"
                if isinstance(v, int)
                else "float"
                if isinstance(v, float)
                else "str"
            )
            prev = types.get(k)
            types[k] = t if prev in (None, t) else ("float" if {prev, t} == {"int", "float"} else "str")
    return types


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Records from a CSV file with a header row; numbers become int/float.

    Raises:
        InvalidRequestError: ``BAD_DATASET`` for an unreadable file.
    """

    def conv(v: str) -> Any:
        for f in (int, float):
            try:
                return f(v)
            except ValueError:
                pass
        return {"true": True, "false": False}.get(v.lower(), v)

    try:
        with Path(path).open(newline="") as fh:
            return [{k: conv(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc}", reason="BAD_DATASET") from exc


@dataclass(frozen=True)
class AggregateQuery:
    """One aggregate query (the request's ``aggregate_json``).

    Attributes:
        kind: ``count``, ``sum`` or ``avg``.
        column: the sensitive column aggregated.
        predicate: the structured predicate (JSON), see docs/auditing.md.
    """

    kind: str
    column: str
    predicate: Any

    @classmethod
    def parse(cls, text: str) -> AggregateQuery:
        """Parse and shape-check ``aggregate_json``.

        Raises:
            InvalidRequestError: ``INVALID_PREDICATE`` for a malformed query.
        """
        try:
            d = json.loads(text)
            q = cls(kind=d["kind"], column=d["column"], predicate=d.get("predicate", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequestError(
                f"malformed aggregate query: {exc}", reason="INVALID_PREDICATE"
            ) from exc
        if q.kind not in KINDS:
            raise InvalidRequestError(f"kind must be one of {KINDS}", reason="INVALID_PREDICATE")
        return q

    def digest(self) -> str:
        """Hex SHA-256 of the canonical query (logged instead of the query)."""
        return hashlib.sha256(
            json.dumps(
                {"kind": self.kind, "column": self.column, "predicate": self.predicate},
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
        ).hexdigest()


@dataclass(frozen=True)
class AggregateAnswer:
    """An answered aggregate.

    Attributes:
        value: the answer (noisy when DP applies).
        record_count: how many records the predicate selected.
        scope_key: the history pool the query was charged to.
        dp_epsilon: ε charged (0 without DP).
        rank: rank of the scope's SUM history after the query.
    """

    value: float | int | None
    record_count: int
    scope_key: str
    dp_epsilon: float
    rank: int


class DatasetService:
    """Datasets, auditors and DP budgets of one node (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.specs: dict[str, DatasetSpec] = {}
        self.data: dict[str, Dataset] = {}
        self.auditors: dict[str, Auditor] = {}
        self.budgets: dict[str, PrivacyBudget] = {}

    def load(self) -> None:
        """(Re)load every dataset and its persisted auditor/DP state."""
        with self._lock:
            self.specs, self.data, self.auditors, self.budgets = {}, {}, {}, {}
            for raw, records in self._store.datasets():
                spec = DatasetSpec.from_dict(raw)
                ds = Dataset(spec.schema(), [{k: r.get(k) for k in spec.schema().columns} for r in records])
                state = self._store.get_state(f"audit:{spec.name}")
                auditor = Auditor.from_state(state) if state else Auditor(ds.record_ids)
                known = set(ds.record_ids)
                if state:
                    auditor.add_records(sorted(known))  # records added since: state stays valid
                self.specs[spec.name], self.data[spec.name], self.auditors[spec.name] = spec, ds, auditor
                if spec.dp:
                    dps = self._store.get_state(f"dp:{spec.name}")
                    self.budgets[spec.name] = (
                        PrivacyBudget.from_state(dps)
                        if dps
                        else PrivacyBudget(float(spec.dp["epsilon_total"]))
                    )

    def answer(
        self,
        *,
        dataset: str,
        query: AggregateQuery,
        allowed: dict[str, Any] | None,
        requester_org: str,
        agent: str,
        now: dt.datetime,
    ) -> AggregateAnswer:
        """Check, audit, commit and answer one aggregate query.

        Args:
            dataset: dataset name.
            query: the parsed query.
            allowed: the contract purpose's ``aggregates`` spec
                (``{"dataset", "kinds", "columns", "allow_ids"}``), None if the
                purpose allows no aggregates.
            requester_org: the requesting organization DID (for the scope key).
            agent: the requesting agent DID (for the scope key).
            now: decision time.

        Raises:
            NotFoundError: ``UNKNOWN_RESOURCE``.
            DeniedError: ``AGGREGATE_NOT_ALLOWED`` (contract), ``RECONSTRUCTION_RISK``
                (auditor; no record named), ``EMPTY_SELECTION``,
                ``PRIVACY_BUDGET_EXHAUSTED`` (DP).
            PolicyError (``INVALID_PREDICATE``): unknown column, sensitive column in a
                predicate, type mismatch, id outside the dataset.
        """
        spec = self.specs.get(dataset)
        if spec is None:
            raise NotFoundError(f"unknown dataset {dataset!r}", reason="UNKNOWN_RESOURCE")
        if (
            not allowed
            or allowed.get("dataset") not in (None, dataset)
            or query.kind not in allowed.get("kinds", KINDS)
            or query.column not in allowed.get("columns", spec.sensitive)
        ):
            raise DeniedError(
                f"the contract does not allow {query.kind}({query.column}) on {dataset}",
                reason="AGGREGATE_NOT_ALLOWED",
            )
        if query.column not in spec.sensitive:
            raise InvalidRequestError(
                f"{query.column!r} is not a sensitive column of {dataset}", reason="INVALID_PREDICATE"
            )
        ds = self.data[dataset]
        allow_ids = bool(allowed.get("allow_ids", False)) and spec.max_ids > 0
        pred = ds.parse(query.predicate, allow_ids=allow_ids)
        n_ids = json.dumps(query.predicate).count('"ids"')
        if n_ids and spec.max_ids and _count_ids(query.predicate) > spec.max_ids:
            raise DeniedError(f"explicit id sets are capped at {spec.max_ids} ids", reason="ID_SET_TOO_LARGE")
        ids = ds.select(pred)
        key = scope_key(
            spec.scope,
            requester_org=requester_org,
            agent=agent,
            coalitions=[list(c) for c in spec.coalitions],
        )
        with self._lock:
            auditor = self.auditors[dataset]
            decision = auditor.check(key, query.kind, frozenset(ids))
            if not decision.allow:
                self._store.put_state(f"audit:{dataset}", auditor.to_state(), now=now)
                status = "RESOURCE_EXHAUSTED" if decision.reason == "AUDIT_CAPACITY" else "PERMISSION_DENIED"
                raise DeniedError(
                    status=status,
                    message="answering would let the requester determine a record exactly "
                    f"({decision.reason})"
                    if decision.reason == "RECONSTRUCTION_RISK"
                    else f"denied: {decision.reason}",
                    reason=decision.reason,
                    metadata={"scope": key, "query_digest": query.digest()},
                )
            dp_eps = 0.0
            if spec.dp:
                values = ds.values(ids, query.column)
                dpa = dp_answer(
                    self.budgets[dataset],
                    key,
                    query.kind,
                    values,
                    epsilon=float(spec.dp["epsilon_per_query"]),
                    bounds=spec.dp.get("bounds"),
                )
                if not dpa.allow:
                    raise DeniedError(
                        "privacy budget spent for this scope",
                        reason=dpa.reason,
                        status="RESOURCE_EXHAUSTED",
                        metadata={"scope": key},
                    )
                value: float | int | None = dpa.value
                dp_eps = dpa.epsilon
                self._store.put_state(f"dp:{dataset}", self.budgets[dataset].to_state(), now=now)
            else:
                value = _exact(ds.values(ids, query.column), query.kind)
            auditor.commit(key, query.kind, frozenset(ids))
            # durable before the answer leaves the node: a crash cannot forget an answered query
            self._store.put_state(f"audit:{dataset}", auditor.to_state(), now=now)
            return AggregateAnswer(
                value=value, record_count=len(ids), scope_key=key, dp_epsilon=dp_eps, rank=decision.rank_after
            )

    def status(self) -> list[dict[str, Any]]:
        """Per dataset and scope: history size, rank, denials."""
        rows = []
        for name, auditor in sorted(self.auditors.items()):
            for key, st in sorted(auditor.status().items()):
                rows.append(
                    {
                        "dataset": name,
                        "scope": key,
                        "history": st.history,
                        "counts": st.counts,
                        "rank": st.rank,
                        "atoms": st.atoms,
                        "denials": st.denials,
                        "records": len(self.data[name].records),
                    }
                )
        return rows


def _count_ids(pred: Any) -> int:
    if isinstance(pred, dict):
        return len(pred.get("ids", [])) + sum(
            _count_ids(v) for v in pred.values() if isinstance(v, dict | list)
        )
    if isinstance(pred, list):
        return sum(_count_ids(p) for p in pred)
    return 0


def _exact(values: list[float], kind: str) -> float | int:
    if kind == "count":
        return len(values)
    total = sum(values)
    return total if kind == "sum" else total / len(values)
