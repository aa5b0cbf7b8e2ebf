"""Structured record predicates for audited aggregate queries.

A requester never sends SQL: it sends a small JSON predicate that selects the
records an aggregate (COUNT, SUM, AVG of one sensitive column) runs over. The
grammar (JSON)::

    {}                                   every record
    {"and": [P, ...]}  {"or": [P, ...]}  conjunction / disjunction (non-empty)
    {"not": P}                           complement
    {"ids": [int, ...]}                  explicit record ids (may be refused)
    {"col": NAME, "op": OP, "val": V}    comparison on a non-sensitive column

with ``OP`` one of ``==  !=  <  <=  >  >=  in  not_in  between`` (``between``
takes ``[lo, hi]``, both inclusive; ``in``/``not_in`` take a list). A record
whose column value is missing (``None``) satisfies no comparison (SQL-like);
``not`` is plain boolean complement.

:func:`parse_predicate` turns the JSON into a frozen :class:`Predicate` tree
checked against a :class:`DatasetSchema` ("parse, don't validate"), and
:meth:`Dataset.select` evaluates it. Predicates on a sensitive column are
refused: the sensitive value is what the auditor protects, and selecting on
it would make the selected set itself depend on the protected values.

Bounds (a predicate arrives from a peer): :func:`loads_bounded` refuses more
than :data:`MAX_QUERY_JSON_BYTES` bytes or JSON nested deeper than
:data:`MAX_JSON_DEPTH` *before* decoding; the parser refuses nesting deeper
than :data:`MAX_PREDICATE_DEPTH`, more than :data:`MAX_PREDICATE_NODES`
nodes plus list elements and more than :data:`MAX_PREDICATE_COMPARISONS`
comparisons, so evaluation costs at most that many column scans.
:func:`id_reach` measures how many record ids a predicate names through the
id column, however it is spelled (``ids``, ``in``, ``==``, an ``or`` of
equalities, a ``between`` range), so one cap can bound them all.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from policy.errors import PolicyError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_PREDICATE_COMPARISONS",
    "MAX_PREDICATE_DEPTH",
    "MAX_PREDICATE_NODES",
    "MAX_QUERY_JSON_BYTES",
    "All",
    "And",
    "ColumnType",
    "Compare",
    "Dataset",
    "DatasetError",
    "DatasetSchema",
    "Ids",
    "Not",
    "Or",
    "Predicate",
    "PredicateError",
    "id_reach",
    "loads_bounded",
    "parse_predicate",
]

MAX_PREDICATE_DEPTH = 32
"""Deepest nesting of ``and``/``or``/``not`` accepted (the root is depth 1)."""

MAX_PREDICATE_NODES = 10_000
"""Most nodes plus list elements accepted in one predicate."""

MAX_PREDICATE_COMPARISONS = 256
"""Most leaves (comparisons, ``ids`` sets, ``{}``) in one predicate: each costs one column scan."""

MAX_QUERY_JSON_BYTES = 65_536
"""Largest aggregate-query JSON text accepted (UTF-8 bytes), checked before decoding."""

MAX_JSON_DEPTH = 2 * MAX_PREDICATE_DEPTH + 4
"""Deepest JSON nesting (objects and arrays) accepted by :func:`loads_bounded`.

Each ``and``/``or`` level is an object and a list (2 levels); the query
envelope and a ``val`` list add a few more.
"""

ColumnType = Literal["int", "float", "str", "bool"]
_COLUMN_TYPES: frozenset[str] = frozenset({"int", "float", "str", "bool"})
_ORDER_OPS = frozenset({"<", "<=", ">", ">="})
_OPS = frozenset({"==", "!=", "in", "not_in", "between"}) | _ORDER_OPS


class PredicateError(PolicyError):
    """A predicate or dataset is malformed or not allowed.

    Reason ``INVALID_PREDICATE`` (caller's fault). ``metadata["path"]`` is a
    JSON-pointer-like location of the offending node (``"/and/1/col"``).
    """

    reason = "INVALID_PREDICATE"
    caller_fault = True


class DatasetError(PolicyError):
    """A dataset or schema is inconsistent (reason ``INVALID_DATASET``).

    Raised by :class:`DatasetSchema` and :class:`Dataset` constructors; the
    caller supplied the data, so ``caller_fault`` is True.
    """

    reason = "INVALID_DATASET"
    caller_fault = True


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class DatasetSchema:
    """Shape of an auditable dataset.

    Attributes:
        id_column: name of the integer record-id column (unique per record).
        sensitive: names of the sensitive numeric columns (aggregated, never
            usable in predicates). Non-empty.
        columns: every column name (including ``id_column`` and the
            sensitive ones) to its type, one of ``"int"``, ``"float"``,
            ``"str"``, ``"bool"``.
        record_ids: the ids present in the dataset, or None if unknown. When
            set, :func:`parse_predicate` refuses ``ids`` outside it.

    Raises:
        DatasetError: unknown type name, id column not ``int``, sensitive
            column missing or not numeric, empty ``sensitive``.

    """

    id_column: str
    sensitive: tuple[str, ...]
    columns: Mapping[str, str]
    record_ids: frozenset[int] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensitive", tuple(self.sensitive))
        object.__setattr__(self, "columns", dict(self.columns))
        if self.record_ids is not None:
            object.__setattr__(self, "record_ids", frozenset(self.record_ids))
        for name, typ in self.columns.items():
            if typ not in _COLUMN_TYPES:
                raise DatasetError(
                    f"column {name!r}: expected a type in {sorted(_COLUMN_TYPES)}, got {typ!r}",
                    metadata={"column": str(name)},
                )
        if self.columns.get(self.id_column) != "int":
            raise DatasetError(
                f"id column {self.id_column!r} must be a declared 'int' column",
                metadata={"column": self.id_column},
            )
        if not self.sensitive:
            raise DatasetError("a dataset needs at least one sensitive column")
        for name in self.sensitive:
            if self.columns.get(name) not in ("int", "float"):
                raise DatasetError(
                    f"sensitive column {name!r} must be a declared int or float column",
                    metadata={"column": name},
                )
            if name == self.id_column:
                raise DatasetError("the id column cannot be sensitive")

    def with_record_ids(self, record_ids: frozenset[int]) -> DatasetSchema:
        """Return a copy of this schema bound to ``record_ids``."""
        return dataclasses.replace(self, record_ids=frozenset(record_ids))


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class All:
    """Every record (JSON ``{}``)."""


@dataclass(frozen=True)
class And:
    """Conjunction of one or more predicates."""

    parts: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    """Disjunction of one or more predicates."""

    parts: tuple[Predicate, ...]


@dataclass(frozen=True)
class Not:
    """Complement of a predicate."""

    part: Predicate


@dataclass(frozen=True)
class Ids:
    """An explicit set of record ids."""

    ids: frozenset[int]


@dataclass(frozen=True)
class Compare:
    """``column OP value`` on a non-sensitive column.

    ``value`` is a scalar, a ``frozenset`` (``in``/``not_in``) or a
    ``(lo, hi)`` tuple (``between``), already type-checked.
    """

    column: str
    op: str
    value: Any


Predicate = All | And | Or | Not | Ids | Compare
"""A parsed predicate (a frozen tree)."""


# --------------------------------------------------------------------------- parsing


def _type_ok(typ: str, v: Any) -> bool:
    if typ == "bool":
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    if typ == "int":
        return isinstance(v, int)
    if typ == "float":
        return isinstance(v, (int, float)) and math.isfinite(v)
    return isinstance(v, str)


class _Parser:
    def __init__(self, schema: DatasetSchema, allow_ids: bool) -> None:
        self.schema = schema
        self.allow_ids = allow_ids
        self.nodes = 0
        self.leaves = 0

    def fail(self, path: str, msg: str) -> PredicateError:
        return PredicateError(f"predicate at {path or '/'}: {msg}", metadata={"path": path or "/"})

    def count(self, path: str, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > MAX_PREDICATE_NODES:
            raise self.fail(path, f"more than {MAX_PREDICATE_NODES} nodes")

    def leaf(self, path: str) -> None:
        self.leaves += 1
        if self.leaves > MAX_PREDICATE_COMPARISONS:
            raise self.fail(path, f"more than {MAX_PREDICATE_COMPARISONS} comparisons")

    def parse(self, obj: Any, path: str, depth: int) -> Predicate:
        if depth > MAX_PREDICATE_DEPTH:
            raise self.fail(path, f"nested deeper than {MAX_PREDICATE_DEPTH}")
        self.count(path)
        if not isinstance(obj, dict):
            raise self.fail(path, f"expected a JSON object, got {type(obj).__name__}")
        if not obj:
            self.leaf(path)
            return All()
        keys = set(obj)
        if keys in ({"and"}, {"or"}):
            (key,) = keys
            parts = obj[key]
            if not isinstance(parts, list) or not parts:
                raise self.fail(f"{path}/{key}", "expected a non-empty list of predicates")
            parsed = tuple(self.parse(p, f"{path}/{key}/{i}", depth + 1) for i, p in enumerate(parts))
            return And(parsed) if key == "and" else Or(parsed)
        if keys == {"not"}:
            return Not(self.parse(obj["not"], f"{path}/not", depth + 1))
        if keys == {"ids"}:
            self.leaf(path)
            return self.parse_ids(obj["ids"], f"{path}/ids")
        if keys == {"col", "op", "val"}:
            self.leaf(path)
            return self.parse_compare(obj, path)
        raise self.fail(path, f"unexpected keys {sorted(map(str, keys))}")

    def parse_ids(self, ids: Any, path: str) -> Ids:
        if not self.allow_ids:
            raise self.fail(path, "explicit id sets are not allowed here")
        if not isinstance(ids, list):
            raise self.fail(path, "expected a list of integer ids")
        self.count(path, len(ids))
        out: set[int] = set()
        known = self.schema.record_ids
        for i, v in enumerate(ids):
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.fail(f"{path}/{i}", f"expected an integer id, got {v!r}")
            if known is not None and v not in known:
                raise self.fail(f"{path}/{i}", f"id {v} is not in the dataset")
            out.add(v)
        return Ids(frozenset(out))

    def parse_compare(self, obj: dict[str, Any], path: str) -> Compare:
        col, op, val = obj["col"], obj["op"], obj["val"]
        if not isinstance(col, str):
            raise self.fail(f"{path}/col", "expected a column name")
        typ = self.schema.columns.get(col)
        if typ is None:
            raise self.fail(f"{path}/col", f"unknown column {col!r}")
        if col in self.schema.sensitive:
            raise self.fail(f"{path}/col", f"column {col!r} is sensitive")
        if col == self.schema.id_column and not self.allow_ids:
            raise self.fail(f"{path}/col", "predicates on the id column are not allowed here")
        if op not in _OPS:
            raise self.fail(f"{path}/op", f"expected one of {sorted(_OPS)}, got {op!r}")
        vpath = f"{path}/val"
        if op in ("in", "not_in"):
            if not isinstance(val, list):
                raise self.fail(vpath, f"{op} expects a list")
            self.count(vpath, len(val))
            for i, v in enumerate(val):
                if not _type_ok(typ, v):
                    raise self.fail(f"{vpath}/{i}", f"expected a {typ} value, got {v!r}")
            value: Any = frozenset(val)
        elif op == "between":
            if not isinstance(val, list) or len(val) != 2:
                raise self.fail(vpath, "between expects [lo, hi]")
            for i, v in enumerate(val):
                if not _type_ok(typ, v):
                    raise self.fail(f"{vpath}/{i}", f"expected a {typ} value, got {v!r}")
            if typ == "bool":
                raise self.fail(f"{path}/op", "bool columns are not ordered")
            value = (val[0], val[1])
        else:
            if not _type_ok(typ, val):
                raise self.fail(vpath, f"expected a {typ} value, got {val!r}")
            if op in _ORDER_OPS and typ == "bool":
                raise self.fail(f"{path}/op", "bool columns are not ordered")
            value = val
        if op in ("==", "in") and col == self.schema.id_column and self.schema.record_ids:
            vals = value if isinstance(value, frozenset) else (value,)
            for v in vals:
                if v not in self.schema.record_ids:
                    raise self.fail(vpath, f"id {v} is not in the dataset")
        return Compare(col, op, value)


def parse_predicate(obj: Any, schema: DatasetSchema, *, allow_ids: bool = True) -> Predicate:
    """Parse a JSON predicate against a schema.

    Args:
        obj: the decoded JSON value (see the module docstring for the grammar).
        schema: the dataset schema; if ``schema.record_ids`` is set, explicit
            ids must be in it (use :attr:`Dataset.schema`, which is bound).
        allow_ids: False to refuse ``{"ids": ...}`` and comparisons on the id
            column (a contract may forbid explicit id sets, the worst case for
            reconstruction).

    Returns:
        The frozen predicate tree.

    Raises:
        PredicateError: (``INVALID_PREDICATE``) malformed shape, unknown or
            sensitive column, type mismatch, unknown operator, id outside the
            dataset, ids when not allowed, nesting deeper than
            :data:`MAX_PREDICATE_DEPTH`, more than
            :data:`MAX_PREDICATE_NODES` nodes plus list elements, or more
            than :data:`MAX_PREDICATE_COMPARISONS` comparisons.

    """
    return _Parser(schema, allow_ids).parse(obj, "", 1)


_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))


def loads_bounded(
    text: str | bytes, *, max_bytes: int = MAX_QUERY_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """Decode JSON that arrived from a peer, after bounding its size and nesting.

    The size is checked first (UTF-8 bytes), then the nesting depth with one
    vectorised pass over the text outside string literals, and only then is
    the text decoded. So neither a huge document nor a deeply nested one
    (which makes :func:`json.loads` raise ``RecursionError``) costs more
    than a linear scan of at most ``max_bytes`` bytes.

    Args:
        text: the JSON text (``str`` or UTF-8 ``bytes``).
        max_bytes: largest accepted size in bytes.
        max_depth: deepest accepted nesting of arrays and objects (a scalar
            is depth 0, ``[]`` depth 1).

    Returns:
        The decoded value.

    Raises:
        PredicateError: (``INVALID_PREDICATE``, ``metadata["path"] == "/"``)
            larger than ``max_bytes``, nested deeper than ``max_depth``, not
            UTF-8 or not JSON. ``metadata["limit"]`` names the bound that was
            exceeded (``bytes`` or ``depth``) when one was.

    """

    def fail(msg: str, **meta: str) -> PredicateError:
        return PredicateError(f"aggregate query: {msg}", metadata={"path": "/", **meta})

    if isinstance(text, str):
        if len(text) > max_bytes:  # every character is at least one byte
            raise fail(f"larger than {max_bytes} bytes", limit="bytes")
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            raise fail("not valid UTF-8 text") from None
    elif isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
    else:
        raise fail(f"expected JSON text, got {type(text).__name__}")
    if len(raw) > max_bytes:
        raise fail(f"larger than {max_bytes} bytes", limit="bytes")
    buf = np.frombuffer(raw, dtype=np.uint8)
    # mask out string literals: a quote toggles "inside" unless escaped by an odd run of backslashes
    quote = buf == ord('"')
    if quote.any():
        back = buf == ord("\\")
        # length of the run of backslashes ending just before each position
        idx = np.arange(buf.shape[0])
        last_non = np.maximum.accumulate(np.where(back, -1, idx))
        run_before = np.empty_like(idx)
        run_before[0] = 0
        run_before[1:] = idx[:-1] - last_non[:-1]
        quote &= run_before % 2 == 0
        inside = np.cumsum(quote) % 2 == 1  # True from an opening quote up to (excluding) its closing one
        outside = ~(inside | quote)
    else:
        outside = np.ones(buf.shape[0], dtype=np.bool_)
    step = np.where(outside & np.isin(buf, _OPEN), 1, 0) - np.where(outside & np.isin(buf, _CLOSE), 1, 0)
    if step.shape[0] and int(np.cumsum(step).max()) > max_depth:
        raise fail(f"nested deeper than {max_depth}", limit="depth")
    try:
        return json.loads(raw)
    except RecursionError:  # cannot happen after the depth check; kept as a backstop
        raise fail(f"nested deeper than {max_depth}", limit="depth") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise fail(f"not JSON ({e})") from None


def id_reach(pred: Predicate, id_column: str) -> float:
    """Count the record ids a predicate names through the id column, however it is spelled.

    A cap on how many subjects one request may single out by id must hold
    for every spelling: ``{"ids": [...]}``, ``id in [...]``, an ``or`` of
    ``id == x``, ``id != x``, ``not_in``, a ``between`` range. The measure is
    structural (it never looks at the data, so a refusal based on it says
    nothing about the data):

    * ``ids``, ``in``, ``not_in``: the number of distinct ids listed;
    * ``==``, ``!=``: 1;
    * ``between [lo, hi]``: the number of integers in the range;
    * ``<``, ``<=``, ``>``, ``>=``: unbounded (``math.inf``), since the
      range is open (spell a bounded range with ``between``);
    * comparisons on other columns and ``{}``: 0;
    * ``and``, ``or``: the sum over the parts; ``not``: its part's count
      (the complement of a named set singles out the same subjects).

    Args:
        pred: a parsed predicate.
        id_column: the dataset's id column.

    Returns:
        The count, an ``int``, or ``math.inf`` when unbounded.

    """
    if isinstance(pred, (And, Or)):
        return sum((id_reach(p, id_column) for p in pred.parts), 0)
    if isinstance(pred, Not):
        return id_reach(pred.part, id_column)
    if isinstance(pred, Ids):
        return len(pred.ids)
    if isinstance(pred, Compare) and pred.column == id_column:
        if pred.op in ("in", "not_in"):
            return len(pred.value)
        if pred.op in ("==", "!="):
            return 1
        if pred.op == "between":
            lo, hi = pred.value
            return max(0, math.floor(hi) - math.ceil(lo) + 1)
        return math.inf
    return 0


# --------------------------------------------------------------------------- evaluation

_Rec = Mapping[str, Any]


def _compile(pred: Predicate, id_column: str) -> Callable[[_Rec], bool]:
    if isinstance(pred, All):
        return lambda r: True
    if isinstance(pred, And):
        fs = [_compile(p, id_column) for p in pred.parts]
        return lambda r: all(f(r) for f in fs)
    if isinstance(pred, Or):
        fs = [_compile(p, id_column) for p in pred.parts]
        return lambda r: any(f(r) for f in fs)
    if isinstance(pred, Not):
        f = _compile(pred.part, id_column)
        return lambda r: not f(r)
    if isinstance(pred, Ids):
        ids = pred.ids
        return lambda r: r[id_column] in ids
    col, op, val = pred.column, pred.op, pred.value

    def cmp(r: _Rec) -> bool:
        x = r.get(col)
        if x is None:
            return False
        if op == "==":
            return bool(x == val)
        if op == "!=":
            return bool(x != val)
        if op == "<":
            return bool(x < val)
        if op == "<=":
            return bool(x <= val)
        if op == ">":
            return bool(x > val)
        if op == ">=":
            return bool(x >= val)
        if op == "in":
            return x in val
        if op == "not_in":
            return x not in val
        return bool(val[0] <= x <= val[1])  # between

    return cmp


class _Col(NamedTuple):
    """One column, ready for vectorised evaluation.

    ``vals`` holds the values (a placeholder where missing); for ``str``
    columns it holds int32 codes into ``levels`` (the sorted distinct values;
    -1 where missing), so every comparison is an integer scan and ordering
    comparisons keep Python's string order.
    """

    vals: np.ndarray
    present: np.ndarray
    levels: list[Any] | None = None


def _eval_levels(op: str, v: Any, codes: np.ndarray, levels: list[Any]) -> np.ndarray:
    def code(x: Any) -> int:
        i = bisect.bisect_left(levels, x)
        return i if i < len(levels) and levels[i] == x else -2  # -2 matches no record

    if op == "==":
        return codes == code(v)
    if op == "!=":
        return codes != code(v)
    if op in ("in", "not_in"):
        m = np.isin(codes, np.asarray([c for c in map(code, v) if c >= 0], dtype=np.int32))
        return ~m if op == "not_in" else m
    if op == "<":
        return codes < bisect.bisect_left(levels, v)
    if op == "<=":
        return codes < bisect.bisect_right(levels, v)
    if op == ">":
        return codes >= bisect.bisect_right(levels, v)
    if op == ">=":
        return codes >= bisect.bisect_left(levels, v)
    lo, hi = v  # between
    return (codes >= bisect.bisect_left(levels, lo)) & (codes < bisect.bisect_right(levels, hi))


def _isin(vals: np.ndarray, v: frozenset[Any]) -> np.ndarray:
    """``vals[i] in v`` for every i, with Python's ``==`` semantics, in O(len(vals) + len(v)) vectorised."""
    if vals.dtype == np.int64:
        lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        return np.isin(vals, np.asarray([x for x in v if lo <= x <= hi], dtype=np.int64))
    if vals.dtype == np.float64:
        wanted = []
        for x in v:
            try:
                f = float(x)
            except OverflowError:
                continue  # no float64 equals it
            if f == x:  # an int no float64 represents equals no value
                wanted.append(f)
        return np.isin(vals, np.asarray(wanted, dtype=np.float64))
    if vals.dtype == np.bool_:
        return np.isin(vals, np.asarray(sorted(v), dtype=np.bool_))
    n = vals.shape[0]
    return np.fromiter((x in v for x in vals.tolist()), dtype=np.bool_, count=n)


def _eval_np(pred: Predicate, cols: Mapping[str, _Col], id_column: str, n: int) -> np.ndarray:
    if isinstance(pred, All):
        return np.ones(n, dtype=np.bool_)
    if isinstance(pred, And):
        m = _eval_np(pred.parts[0], cols, id_column, n)
        for part in pred.parts[1:]:
            m = m & _eval_np(part, cols, id_column, n)
        return m
    if isinstance(pred, Or):
        m = _eval_np(pred.parts[0], cols, id_column, n)
        for part in pred.parts[1:]:
            m = m | _eval_np(part, cols, id_column, n)
        return m
    if isinstance(pred, Not):
        return ~_eval_np(pred.part, cols, id_column, n)
    if isinstance(pred, Ids):
        return _isin(cols[id_column].vals, pred.ids)
    vals, present, levels = cols[pred.column]
    op, v = pred.op, pred.value
    if levels is not None:
        m = _eval_levels(op, v, vals, levels)
    elif op in ("in", "not_in"):
        m = _isin(vals, v)
        if op == "not_in":
            m = ~m
    elif op == "between":
        m = np.asarray((vals >= v[0]) & (vals <= v[1]), dtype=np.bool_)
    else:
        m = np.asarray(_NP_OPS[op](vals, v), dtype=np.bool_)
    return m & present


_NP_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Dataset:
    """An in-memory dataset: a schema and its records.

    Attributes:
        schema: the schema; the constructor binds it to the record ids (so
            ``dataset.schema.record_ids`` is set).
        records: the records, each a dict of column name to value (``None``
            for missing non-id values).

    Raises:
        DatasetError: a record lacks the id, has a duplicate id, an unknown
            column, or a value of the wrong type.

    """

    schema: DatasetSchema
    records: Sequence[Mapping[str, Any]]

    def __post_init__(self) -> None:
        s = self.schema
        ids: set[int] = set()
        recs = tuple(dict(r) for r in self.records)
        for i, r in enumerate(recs):
            rid = r.get(s.id_column)
            if isinstance(rid, bool) or not isinstance(rid, int):
                raise DatasetError(
                    f"record {i}: id column {s.id_column!r} must be an integer, got {rid!r}",
                    metadata={"record": str(i)},
                )
            if rid in ids:
                raise DatasetError(f"record {i}: duplicate id {rid}", metadata={"id": str(rid)})
            ids.add(rid)
            for k, v in r.items():
                typ = s.columns.get(k)
                if typ is None:
                    raise DatasetError(f"record {i}: unknown column {k!r}", metadata={"column": str(k)})
                if v is not None and not _type_ok(typ, v):
                    raise DatasetError(
                        f"record {i}: column {k!r} expected {typ}, got {v!r}",
                        metadata={"column": str(k), "record": str(i)},
                    )
        object.__setattr__(self, "records", recs)
        object.__setattr__(self, "schema", s.with_record_ids(frozenset(ids)))
        object.__setattr__(self, "_by_id", {r[s.id_column]: r for r in recs})

    @property
    def record_ids(self) -> list[int]:
        """All record ids, in record order."""
        return [r[self.schema.id_column] for r in self.records]

    def parse(self, obj: Any, *, allow_ids: bool = True) -> Predicate:
        """Parse ``obj`` against this dataset's bound schema (see :func:`parse_predicate`)."""
        return parse_predicate(obj, self.schema, allow_ids=allow_ids)

    def _present(self, contributing: str | None) -> np.ndarray | None:
        if contributing is None:
            return None
        if contributing not in self.schema.columns:
            raise DatasetError(f"unknown column {contributing!r}", metadata={"column": str(contributing)})
        return self._columns()[contributing].present

    def select(self, pred: Predicate, *, contributing: str | None = None) -> list[int]:
        """Return the ids of the records ``pred`` selects, in record order.

        Args:
            pred: the parsed predicate.
            contributing: a column name to keep only the selected records
                that have a value (not ``None``) in it: the records that
                actually contribute to an aggregate of that column (SQL's
                ``COUNT(col)``, ``SUM(col)``, ``AVG(col)`` skip missing
                values, so these, not the selection, are what the
                reconstruction auditor must see).

        Raises:
            DatasetError: ``contributing`` is not a column of the schema.

        """
        present = self._present(contributing)
        f = _compile(pred, self.schema.id_column)
        idc = self.schema.id_column
        if present is None:
            return [r[idc] for r in self.records if f(r)]
        return [r[idc] for r, ok in zip(self.records, present.tolist(), strict=True) if ok and f(r)]

    def select_array(self, pred: Predicate, *, contributing: str | None = None) -> np.ndarray:
        """Return the ids ``pred`` selects as a sorted-by-record-order int64 NumPy array.

        Same result as :meth:`select` (including ``contributing``), evaluated
        column-wise with NumPy (the columns are built once, on first use); the
        fast path for large datasets and for
        :meth:`policy.auditor.Auditor.check`.

        Raises:
            DatasetError: ``contributing`` is not a column of the schema.

        """
        return self._columns()[self.schema.id_column].vals[self._mask(pred, contributing)]

    def select_positions(self, pred: Predicate, *, contributing: str | None = None) -> np.ndarray:
        """Return the positions (0-based record ordinals, int64, ascending) ``pred`` selects.

        Positions are dense, so they are the natural record ids for
        :class:`policy.auditor.Auditor` whatever the dataset's own ids are.
        ``contributing`` as for :meth:`select`.

        Raises:
            DatasetError: ``contributing`` is not a column of the schema.

        """
        return np.flatnonzero(self._mask(pred, contributing))

    def _mask(self, pred: Predicate, contributing: str | None) -> np.ndarray:
        present = self._present(contributing)
        mask = _eval_np(pred, self._columns(), self.schema.id_column, len(self.records))
        return mask if present is None else mask & present

    def _columns(self) -> dict[str, _Col]:
        cached = self.__dict__.get("_np_columns")
        if cached is not None:
            return cached
        out: dict[str, _Col] = {}
        for name, typ in self.schema.columns.items():
            raw = [r.get(name) for r in self.records]
            present = np.fromiter((v is not None for v in raw), dtype=np.bool_, count=len(raw))
            levels = None
            if typ == "int":
                vals = np.fromiter((0 if v is None else v for v in raw), dtype=object)
                try:
                    vals = vals.astype(np.int64)
                except OverflowError:
                    pass  # beyond int64: keep exact Python ints (object array)
            elif typ == "float":
                vals = np.fromiter((0.0 if v is None else v for v in raw), dtype=np.float64)
            elif typ == "bool":
                vals = np.fromiter((bool(v) for v in raw), dtype=np.bool_, count=len(raw))
            else:  # str: int32 codes into the sorted distinct values
                levels = sorted({v for v in raw if v is not None})
                index = {u: i for i, u in enumerate(levels)}
                codes = (-1 if v is None else index[v] for v in raw)
                vals = np.fromiter(codes, dtype=np.int32, count=len(raw))
            out[name] = _Col(vals, present, levels)
        object.__setattr__(self, "_np_columns", out)
        return out

    def values(self, ids: Sequence[int] | frozenset[int], column: str) -> list[float]:
        """Return the non-missing values of ``column`` for ``ids``.

        Raises:
            DatasetError: unknown column or unknown id.

        """
        if column not in self.schema.columns:
            raise DatasetError(f"unknown column {column!r}", metadata={"column": column})
        by_id: dict[int, Mapping[str, Any]] = self._by_id  # type: ignore[attr-defined]
        out: list[float] = []
        for i in ids:
            r = by_id.get(i)
            if r is None:
                raise DatasetError(f"unknown record id {i}", metadata={"id": str(i)})
            v = r.get(column)
            if v is not None:
                out.append(v)
        return out
