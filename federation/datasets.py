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
contract check: it decodes the query within size and depth bounds, parses the
predicate (never SQL), applies the ``max_ids`` cap to every spelling of an id
set (:func:`policy.predicates.id_reach`), and then:

* **exact mode** (no DP): selects the records that *contribute* to the
  aggregate (selected and with a value in the column: a missing value
  contributes nothing, so it must not make a group look bigger than it is),
  asks the :class:`policy.auditor.Auditor` whether answering would let the
  scope determine any record's value exactly (the decision reads the
  contributing sets, never a value), commits the query to the history and
  persists the auditor state before answering (a denial persists only the
  scopes' denial counters, under ``audit-denials:<dataset>``: the state
  itself changes only on a commit);
* **DP mode**: answers every query through the OpenDP mechanism and charges
  its ε to the scope's budget. Nothing exact leaves the node: no exact
  record count, no empty-selection or reconstruction denial (they would be
  decided on the exact selection, outside the noise), no refusal of an id
  that is not in the dataset. The only refusal is the spent budget, which
  depends on the scope's earlier queries alone. See docs/auditing.md.
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
from policy.errors import PolicyError
from policy.identifiers import check_identifier
from policy.predicates import Dataset, DatasetSchema, id_reach, loads_bounded, parse_predicate

SCOPES = ("agent", "org", "coalition", "global")
KINDS = ("count", "sum", "avg")
_QUERY_KEYS = frozenset({"kind", "column", "predicate"})


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
        max_ids: cap on how many record ids one predicate may name through the
            id column, however spelled (``ids``, ``in``, ``==``/``!=``, an
            ``or`` of equalities, a ``between`` range; open ranges count as
            unbounded): see :func:`policy.predicates.id_reach`. 0 = the id
            column is refused in predicates.
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
        if spec.max_ids < 0:
            raise InvalidRequestError("max_ids must be >= 0", reason="BAD_DATASET")
        if spec.dp is not None:
            _check_dp(spec.dp)
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
        InvalidRequestError: ``BAD_DATASET`` for an unreadable file, or a row
            with more or fewer fields than the header (``FILE:LINE: ...``).
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
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise InvalidRequestError(f"{path}:1: no header row", reason="BAD_DATASET")
            out = []
            for row in reader:
                if not row:  # a blank line (csv.DictReader skips them too)
                    continue
                if len(row) != len(header):
                    raise InvalidRequestError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields (as in the header), "
                        f"got {len(row)}",
                        reason="BAD_DATASET",
                        metadata={"path": str(path), "line": str(reader.line_num)},
                    )
                out.append({k: conv(v) for k, v in zip(header, row, strict=True)})
            return out
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
    def parse(cls, text: str | bytes) -> AggregateQuery:
        """Parse and shape-check ``aggregate_json`` (it arrives from a peer).

        The text is bounded before it is decoded
        (:func:`policy.predicates.loads_bounded`: at most
        :data:`~policy.predicates.MAX_QUERY_JSON_BYTES` bytes and
        :data:`~policy.predicates.MAX_JSON_DEPTH` levels of nesting); the
        predicate's own size and depth are bounded when it is parsed against
        the dataset.

        Raises:
            InvalidRequestError: ``INVALID_PREDICATE`` for a malformed,
                oversized or too deeply nested query, or an unknown kind.
            InvalidIdentifierError: ``MALFORMED_IDENTIFIER`` for a column name
                outside the identifier grammar (:mod:`policy.identifiers`).
        """
        try:
            d = loads_bounded(text)
        except PolicyError as exc:
            raise InvalidRequestError(str(exc), reason="INVALID_PREDICATE", metadata=exc.metadata) from None
        if not isinstance(d, dict) or not {"kind", "column"} <= d.keys() <= _QUERY_KEYS:
            raise InvalidRequestError(
                "malformed aggregate query: expected an object with kind, column and predicate",
                reason="INVALID_PREDICATE",
            )
        if d["kind"] not in KINDS:
            raise InvalidRequestError(f"kind must be one of {KINDS}", reason="INVALID_PREDICATE")
        check_identifier(d["column"], "column", field="aggregate.column")
        return cls(kind=d["kind"], column=d["column"], predicate=d.get("predicate", {}))

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
        record_count: how many records contributed (selected and with a value
            in the column: the COUNT the SUM and AVG are over); None under
            DP, where no exact count may leave the node.
        scope_key: the history pool the query was charged to.
        dp_epsilon: ε charged (0 without DP).
        rank: rank of the scope's SUM history after the query (0 under DP,
            where the exact auditor keeps no history).
    """

    value: float | int | None
    record_count: int | None
    scope_key: str
    dp_epsilon: float
    rank: int


class DatasetService:
    """Datasets, auditors and DP budgets of one node (see the module docstring)."""

    def __init__(self, store: Any, *, shared: Any = None) -> None:
        """``store``: the :class:`federation.store.NodeStore`; ``shared``: the replicas' store or None."""
        self._store = store
        self._shared = shared
        #: replicas: the auditor-state generation each dataset's auditor was last loaded at
        self._generation: dict[str, int | None] = {}
        self._lock = threading.Lock()
        self.specs: dict[str, DatasetSpec] = {}
        self.data: dict[str, Dataset] = {}
        self.auditors: dict[str, Auditor] = {}
        self.budgets: dict[str, PrivacyBudget] = {}

    def load(self) -> None:
        """(Re)load every dataset and its persisted auditor/DP state."""
        with self._lock:
            self.specs, self.data, self.auditors, self.budgets = {}, {}, {}, {}
            self._generation = {}
            for raw, records in self._store.datasets():
                spec = DatasetSpec.from_dict(raw)
                ds = Dataset(spec.schema(), [{k: r.get(k) for k in spec.schema().columns} for r in records])
                auditor = _auditor(ds, self._store.get_state(f"audit:{spec.name}"))
                auditor.restore_denials(self._store.get_state(f"audit-denials:{spec.name}") or {})
                self.specs[spec.name], self.data[spec.name], self.auditors[spec.name] = spec, ds, auditor
                self._generation[spec.name] = -1  # replicas: re-read under the lock at the first query
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
            DeniedError: ``AGGREGATE_NOT_ALLOWED`` (contract), ``ID_SET_TOO_LARGE``
                (the predicate names more ids than ``max_ids``, however spelled),
                ``RECONSTRUCTION_RISK`` (auditor; no record named), ``EMPTY_SELECTION``,
                ``AUDIT_CAPACITY`` (exact mode), ``PRIVACY_BUDGET_EXHAUSTED`` (DP
                mode: the only refusal there that is not about the query's shape).
            PolicyError (``INVALID_PREDICATE``): unknown column, sensitive column in a
                predicate, type mismatch, size or depth bounds, id outside the dataset
                (exact mode only).
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
        if spec.dp:
            # unbound schema: whether an id is in the dataset is itself what DP protects,
            # so an absent id selects nothing instead of being refused
            pred = parse_predicate(query.predicate, spec.schema(), allow_ids=allow_ids)
        else:
            pred = ds.parse(query.predicate, allow_ids=allow_ids)
        if allow_ids and id_reach(pred, spec.id_column) > spec.max_ids:
            raise DeniedError(
                f"a predicate may name at most {spec.max_ids} ids (ranges must be bounded with 'between')",
                reason="ID_SET_TOO_LARGE",
                metadata={"max_ids": str(spec.max_ids)},
            )
        # the records that contribute: selected, and with a value in the aggregated column
        # (column-wise NumPy: one vectorised scan per comparison, at most MAX_PREDICATE_COMPARISONS)
        ids = ds.select_array(pred, contributing=query.column).tolist()
        key = scope_key(
            spec.scope,
            requester_org=requester_org,
            agent=agent,
            coalitions=[list(c) for c in spec.coalitions],
        )
        if spec.dp:
            return self._answer_dp(dataset, spec, ds, query, ids, key, now)
        with self._lock:
            if self._shared is not None:
                try:
                    decision, value = self._audit_shared(dataset, ds, query, ids, key)
                except BaseException:
                    self._generation[dataset] = -1  # not committed: reload the stored state next time
                    raise
            else:
                auditor = self.auditors[dataset]
                decision = auditor.check(key, query.kind, frozenset(ids))
                value = None
                if not decision.allow:
                    # a denial changes only the scopes' denial counters: persist those (a few bytes),
                    # not the whole state (megabytes for a dense scope), which changes only on commit
                    self._store.put_state(f"audit-denials:{dataset}", auditor.denials(), now=now)
                else:
                    value = _exact(ds.values(ids, query.column), query.kind)
                    auditor.commit(key, query.kind, frozenset(ids))
                    # durable before the answer leaves the node: a crash cannot forget an answered query
                    self._store.put_state(f"audit:{dataset}", auditor.to_state(), now=now)
        if not decision.allow:
            raise DeniedError(  # status from federation.reasons (AUDIT_CAPACITY: RESOURCE_EXHAUSTED)
                message=f"answering would let the requester determine a record exactly ({decision.reason})"
                if decision.reason == "RECONSTRUCTION_RISK"
                else f"denied: {decision.reason}",
                reason=decision.reason,
                metadata={"scope": key, "query_digest": query.digest()},
            )
        assert value is not None
        return AggregateAnswer(
            value=value, record_count=len(ids), scope_key=key, dp_epsilon=0.0, rank=decision.rank_after
        )

    def _audit_shared(
        self, dataset: str, ds: Dataset, query: AggregateQuery, ids: list[int], key: str
    ) -> tuple[Any, float | int | None]:
        """Replicas: check and commit under the lock they share, on the state they share.

        Returns (the auditor's decision, the value when allowed). The state
        is re-read first when another replica committed since this one last
        read it; on an allow the new state is written (generation + 1) before
        the lock is released, on a denial the denial counters.
        """
        with self._shared.locked_audit_rows(dataset) as cell:
            generation = cell["generation"] or 0
            if generation != self._generation.get(dataset):
                stored = cell["load"]("state")
                if stored is not None:
                    fresh = _auditor(ds, stored)
                    self.auditors[dataset] = fresh
                self._generation[dataset] = generation
            auditor = self.auditors[dataset]
            auditor.restore_denials(cell["denials"] or {})
            decision = auditor.check(key, query.kind, frozenset(ids))
            if not decision.allow:
                cell["denials"] = auditor.denials()
                return decision, None
            value = _exact(ds.values(ids, query.column), query.kind)
            auditor.commit(key, query.kind, frozenset(ids))
            # durable before the answer leaves the node (and before another replica audits)
            cell["state"] = auditor.to_state()
            cell["generation"] = self._generation[dataset] = generation + 1
            return decision, value

    def _answer_dp(
        self,
        dataset: str,
        spec: DatasetSpec,
        ds: Dataset,
        query: AggregateQuery,
        ids: list[int],
        key: str,
        now: dt.datetime,
    ) -> AggregateAnswer:
        """DP mode: every query goes through the mechanism; the spent budget is the only refusal.

        The exact auditor is not consulted: its decisions (empty selection,
        reconstruction risk) are functions of the exact contributing set and
        would leak it around the noise. ε-DP with a finite per-scope budget
        already bounds what any sequence of answers reveals about one record.
        """
        assert spec.dp is not None
        if self._shared is not None:  # replicas: the scope's ε is spent under the lock they share
            with self._lock, self._shared.locked_audit_rows(dataset) as cell:
                budget = (
                    PrivacyBudget.from_state(cell["dp"])
                    if cell["dp"]
                    else PrivacyBudget(float(spec.dp["epsilon_total"]))
                )
                dpa = dp_answer(
                    budget,
                    key,
                    query.kind,
                    ds.values(ids, query.column),
                    epsilon=float(spec.dp["epsilon_per_query"]),
                    bounds=spec.dp.get("bounds"),
                )
                if dpa.allow:
                    cell["dp"] = budget.to_state()
                self.budgets[dataset] = budget
            if not dpa.allow:
                raise DeniedError(
                    "privacy budget spent for this scope", reason=dpa.reason, metadata={"scope": key}
                )
            return AggregateAnswer(
                value=dpa.value, record_count=None, scope_key=key, dp_epsilon=dpa.epsilon, rank=0
            )
        with self._lock:
            dpa = dp_answer(
                self.budgets[dataset],
                key,
                query.kind,
                ds.values(ids, query.column),
                epsilon=float(spec.dp["epsilon_per_query"]),
                bounds=spec.dp.get("bounds"),
            )
            if not dpa.allow:
                raise DeniedError(
                    "privacy budget spent for this scope",
                    reason=dpa.reason,
                    metadata={"scope": key},
                )
            # durable before the answer leaves the node: a crash cannot refund the ε
            self._store.put_state(f"dp:{dataset}", self.budgets[dataset].to_state(), now=now)
            return AggregateAnswer(
                value=dpa.value, record_count=None, scope_key=key, dp_epsilon=dpa.epsilon, rank=0
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


def _auditor(ds: Dataset, state: dict[str, Any] | None) -> Auditor:
    """The dataset's auditor: from its persisted state (records added since included), or a new one."""
    if not state:
        return Auditor(ds.record_ids)
    auditor = Auditor.from_state(state)
    auditor.add_records(sorted(set(ds.record_ids)))  # records added since: state stays valid
    return auditor


def _check_dp(dp: Any) -> None:
    """Refuse a DP spec the mechanisms would reject later (blamed on a requester, mid-query)."""
    from policy.dp import check_dp_parameters

    if not isinstance(dp, dict) or not {"epsilon_total", "epsilon_per_query", "bounds"} <= set(dp):
        raise InvalidRequestError(
            "malformed dp spec: needs epsilon_total, epsilon_per_query and bounds [lo, hi]",
            reason="BAD_DATASET",
        )
    try:
        check_dp_parameters(dp["epsilon_total"], dp["epsilon_per_query"], dp["bounds"])
    except PolicyError as exc:
        raise InvalidRequestError(f"malformed dp spec: {exc}", reason="BAD_DATASET") from None


def _exact(values: list[float], kind: str) -> float | int:
    if kind == "count":
        return len(values)
    total = sum(values)
    return total if kind == "sum" else total / len(values)
