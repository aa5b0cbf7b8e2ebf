"""Simulatable reconstruction-attack auditor for SUM / AVG / COUNT queries.

Model (Kenthapadi, Mishra, Nissim, "Simulatable auditing", PODS 2005; Dinur
and Nissim, "Revealing information while preserving privacy", PODS 2003;
Denning, Denning and Schwartz, "The tracker", TODS 1979): every answered SUM
over a selected record set S contributes the indicator vector 1_S to a
matrix M. The requester learns record i's sensitive value exactly iff the
unit vector e_i lies in the row space of M over the rationals. Before a new
SUM (or AVG: the count of S is assumed known, so AVG counts as SUM) is
answered, :meth:`Auditor.check` decides whether adding 1_S would put any e_i
in the row space. The decision reads only the selected id sets, never the
values, so a denial reveals nothing the requester could not simulate (the
requester is assumed to know the selected sets: exact COUNTs reveal their
cells; see docs/auditing.md for the model, and DP mode where that does not
hold). The sets are the records that *contribute* to an aggregate (selected
and with a value): a missing value must not count as a member. COUNT
never reveals a sensitive value: it is always allowed (for a non-empty
selection) and recorded, but does not enter M. Denied queries do not enter
the history.

Cells (atoms). Records that every answered query treats alike (selected by
exactly the same queries) form one *atom*; every row of M is constant on
atoms, so the auditor works in atom coordinates: a record i is disclosed iff
its atom is a singleton and that atom's unit vector lies in the row space of
the atom-level matrix. A new query splits the atoms it cuts. Predicates over a
few quasi-identifier columns give few atoms, which makes analytics cheap;
random id sets split everything into singletons (the worst case). Records
never selected form the implicit all-zero atom, so the record universe need
not be known in advance.

Linear algebra. Per scope the auditor keeps the row space in reduced form:
each basis row has a pivot atom (coefficient 1, zero in every other row) and
a sparse *free part*. Then e_a is in the row space iff a is a pivot whose
free part is empty; adding a reduced query q' with pivot f0 changes only the
rows that have f0 in their free part, and such a row c becomes e_c iff its
free part is parallel to q'. Arithmetic is modulo a node-secret random prime
p of about 127 bits (:func:`random_prime`). Rank over GF(p) can fall below the
rank over Q only when p divides a non-zero minor; for 0/1 matrices of rank
r <= 10^4 this happens for a fixed decision with probability below
r·log2(r)·127·ln2 / (2·126·2^126) < 2^-100, and the randomised fast path for
"already implied" queries (a secret random linear functional that vanishes on
the row space) errs with probability at most 1/p per query. See
``docs/auditing.md``.

Dense engine. When a scope's basis outgrows ``dense_switch_entries`` and at
least half its cells are single records (explicit id sets), the scope moves
to :mod:`policy.audit_dense`: a pool of random null-space vectors modulo a
23-bit prime, with a few milliseconds per decision at 10,000 records and
2,000 answered. It never misses a disclosure, whatever the prime: chance
there only adds refusals. It answers an implied query only when it repeats
an answered set.

History is pooled per scope key (:func:`scope_key`): one agent, one
organization, a coalition of organizations, or global;
:meth:`Auditor.merge_scopes` pools existing histories when a coalition is
declared. A per-scope work cap (``max_entries``) fails closed with
``AUDIT_CAPACITY`` so that explicit id sets, the worst case, cannot exhaust
the node.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import flint
import numpy as np

from policy.audit_dense import DENSE_PRIME_BITS, K_MIN, DensePlan, DenseScope, dense_prime
from policy.errors import PolicyError

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_DENSE_SCOPES",
    "DENSE_SWITCH_ENTRIES",
    "SPARSE_MAX_ENTRIES",
    "MAX_RECORD_ID",
    "AuditCommitRefusedError",
    "AuditDecision",
    "AuditError",
    "AuditState",
    "AuditStateError",
    "Auditor",
    "InvalidQueryKindError",
    "InvalidScopeError",
    "QueryKind",
    "ScopeStatus",
    "UnknownRecordError",
    "random_prime",
    "scope_key",
]

QueryKind = Literal["count", "sum", "avg"]
_KINDS = frozenset({"count", "sum", "avg"})
MAX_RECORD_ID = 2**27 - 1
"""Largest record id accepted. Per-scope state holds one 4-byte atom label per
id up to the largest id seen, so ids should be dense row ordinals."""

_STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
DEFAULT_MAX_ENTRIES = 25_000_000
SPARSE_MAX_ENTRIES = 2_000_000
"""The sparse engine's own cap (about 200 MB of Python objects), below ``max_entries``."""
DEFAULT_MAX_DENSE_SCOPES = 8
"""Scopes that may hold a dense pool at once (each up to ``4 x max_entries`` bytes)."""
DENSE_SWITCH_ENTRIES = 20_000
"""Default basis size past which a scope of mostly one-record cells moves to the dense engine."""
ORIGINAL_ROWS_BUDGET = 500_000
"""Record ids of answered rows a sparse scope keeps to be able to move to the dense engine."""
_SCOPES = ("agent", "org", "coalition", "global")


# --------------------------------------------------------------------------- errors


class AuditError(PolicyError):
    """Base class of the auditor's errors (reason ``AUDIT_ERROR``)."""

    reason = "AUDIT_ERROR"
    caller_fault = False


class UnknownRecordError(AuditError):
    """A selected id is outside the auditor's record set or id range.

    Reason ``UNKNOWN_RECORD``; the node computed the selection, so it is not
    the requester's fault.
    """

    reason = "UNKNOWN_RECORD"
    caller_fault = False


class InvalidQueryKindError(AuditError):
    """The query kind is not ``count``, ``sum`` or ``avg`` (``INVALID_QUERY_KIND``)."""

    reason = "INVALID_QUERY_KIND"
    caller_fault = True


class InvalidScopeError(AuditError):
    """Unknown pooling scope or missing scope input (``INVALID_SCOPE``)."""

    reason = "INVALID_SCOPE"
    caller_fault = True


class AuditStateError(AuditError):
    """A persisted auditor state does not parse (``INVALID_AUDIT_STATE``)."""

    reason = "INVALID_AUDIT_STATE"
    caller_fault = False


class AuditCommitRefusedError(AuditError):
    """:meth:`Auditor.commit` was asked to record a query the auditor denies.

    Reason ``AUDIT_COMMIT_REFUSED``; ``metadata["decision_reason"]`` holds the
    denial reason (``RECONSTRUCTION_RISK`` or ``EMPTY_SELECTION``).
    """

    reason = "AUDIT_COMMIT_REFUSED"
    caller_fault = False


# --------------------------------------------------------------------------- scope keys


def scope_key(
    scope: str,
    *,
    requester_org: str,
    agent: str | None = None,
    coalitions: Iterable[Iterable[str]] = (),
) -> str:
    """Compute the history-pooling key for a query.

    Args:
        scope: ``"agent"`` (one agent's own history), ``"org"`` (all agents
            of the requester's organization), ``"coalition"`` (all
            organizations linked to the requester's by declared or suspected
            collusion; the links are closed transitively, so an organization
            always pools into exactly one coalition) or ``"global"`` (every
            requester together).
        requester_org: the requesting organization (e.g. its DID).
        agent: the requesting agent (e.g. its DID); required for ``"agent"``.
        coalitions: groups of organization names that collude.

    Returns:
        A string key, e.g. ``'org:["did:web:a.example"]'`` or
        ``'coalition:["A","B"]'`` (members sorted). Changing the coalitions
        changes the key: see :meth:`Auditor.merge_scopes`.

    Raises:
        InvalidScopeError: unknown scope, empty org, or ``"agent"`` without agent.

    """
    if not requester_org:
        raise InvalidScopeError("requester_org must be non-empty")
    if scope == "agent":
        if not agent:
            raise InvalidScopeError("scope 'agent' needs the agent identifier")
        return "agent:" + json.dumps([requester_org, agent], separators=(",", ":"))
    if scope == "org":
        return "org:" + json.dumps([requester_org], separators=(",", ":"))
    if scope == "coalition":
        members = _coalition_of(requester_org, coalitions)
        return "coalition:" + json.dumps(sorted(members), separators=(",", ":"))
    if scope == "global":
        return "global"
    raise InvalidScopeError(
        f"unknown scope {scope!r}, expected one of {list(_SCOPES)}", metadata={"scope": scope}
    )


def _coalition_of(org: str, coalitions: Iterable[Iterable[str]]) -> set[str]:
    groups = [set(g) for g in coalitions]
    members = {org}
    changed = True
    while changed:
        changed = False
        for g in groups:
            if g & members and not g <= members:
                members |= g
                changed = True
    return members


# --------------------------------------------------------------------------- primes


def random_prime(bits: int = 127) -> int:
    """Return a fresh random prime of exactly ``bits`` bits (from :mod:`secrets`).

    Args:
        bits: size of the prime in bits, at least 32.

    Raises:
        ValueError: ``bits`` < 32.

    """
    if bits < 32:
        raise ValueError("the auditor's prime needs at least 32 bits")
    while True:
        n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if flint.fmpz(n).is_prime():
            return n


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AuditDecision:
    """Outcome of auditing one query.

    Attributes:
        allow: True if the query may be answered.
        reason: ``"OK"``, ``"RECONSTRUCTION_RISK"`` (answering would let the
            scope determine at least one record's sensitive value exactly),
            ``"EMPTY_SELECTION"`` (nothing selected: denied for every kind,
            since an AVG is undefined and a 0 answer is not worth a special
            case) or ``"AUDIT_CAPACITY"`` (the scope's state exceeds the
            auditor's ``max_entries`` work cap and the query is not already
            implied: fail closed).
        rank_before: rank of the scope's SUM history before the query.
        rank_after: rank if the query is answered (``rank_before`` when denied
            or when the query is a COUNT or already implied).

    """

    allow: bool
    reason: str
    rank_before: int
    rank_after: int


@dataclass(frozen=True)
class ScopeStatus:
    """Counters of one scope (see :meth:`Auditor.status`).

    Attributes:
        history: answered SUM/AVG queries.
        counts: answered COUNT queries.
        rank: rank of the SUM history (number of independent answered sums).
        atoms: number of cells the answered queries distinguish (excluding
            the never-selected records); on the dense engine, the number of
            record coordinates it works in.
        denials: denied checks.
        entries: non-zero entries of the reduced basis (the state's size and
            the cost driver; see ``max_entries``); on the dense engine, the
            numbers its pool holds.

    """

    history: int
    counts: int
    rank: int
    atoms: int
    denials: int
    entries: int = 0


AuditState = dict[str, Any]
"""JSON-able persisted auditor state (see :meth:`Auditor.to_state`). Contains
the node-secret prime and weights: store it like a key."""


@dataclass
class _Plan:
    """A computed, not yet applied, SUM insertion for one scope."""

    version: int
    allow: bool
    reason: str
    sel: np.ndarray | None = None
    labels: np.ndarray | None = None  # current atom labels of sel
    partial: np.ndarray | None = None  # old atom ids that split
    counts: np.ndarray | None = None  # per old atom, selected count
    untouched: int = 0
    qp: dict[int, int] | None = None  # reduced query over (virtual) atom ids
    f0: int = -1


# --------------------------------------------------------------------------- scope


class _Scope:
    """Reduced row-space state of one scope's answered SUM queries."""

    def __init__(self, p: int) -> None:
        self.p = p
        self.atom_of = np.full(0, -1, dtype=np.int32)
        self.size = np.zeros(16, dtype=np.int64)
        self.n_atoms = 0
        self.w: list[int] = []
        self.proj: list[int] = []
        self.rows: dict[int, dict[int, int]] = {}
        self.cols: dict[int, set[int]] = {}
        self.history = 0
        self.counts = 0
        self.denials = 0
        self.version = 0
        self.nnz = 0
        # the answered rows that raised the rank, as record ids, while they fit in
        # ORIGINAL_ROWS_BUDGET (None after): what the dense engine is built from
        self.orig: list[np.ndarray] | None = []
        self.orig_ids = 0

    def keep_original(self, sel: np.ndarray) -> None:
        """Remember an answered rank-raising row (bounded; see ``orig``)."""
        if self.orig is None:
            return
        self.orig_ids += int(sel.shape[0])
        if self.orig_ids > ORIGINAL_ROWS_BUDGET:
            self.orig = None
            return
        self.orig.append(np.sort(sel).astype(np.int32))

    def mostly_singletons(self) -> bool:
        """True when at least half the cells are single records (explicit id sets)."""
        n = self.n_atoms
        return n > 0 and 2 * int(np.count_nonzero(self.size[:n] == 1)) >= n

    # -- storage helpers
    def ensure_ids(self, upto: int) -> None:
        if upto > self.atom_of.shape[0]:
            cap = max(upto, 2 * self.atom_of.shape[0], 1024)
            new = np.full(cap, -1, dtype=np.int32)
            new[: self.atom_of.shape[0]] = self.atom_of
            self.atom_of = new

    def new_atom(self, size: int) -> int:
        a = self.n_atoms
        if a >= self.size.shape[0]:
            grown = np.zeros(2 * self.size.shape[0], dtype=np.int64)
            grown[: self.size.shape[0]] = self.size
            self.size = grown
        self.size[a] = size
        self.n_atoms += 1
        wa = secrets.randbelow(self.p - 1) + 1
        self.w.append(wa)
        self.proj.append(wa)
        return a

    # -- planning
    def plan(self, sel: np.ndarray, max_entries: int | None = None) -> _Plan:
        p = self.p
        if sel.shape[0] == 0:
            return _Plan(self.version, False, "EMPTY_SELECTION")
        self.ensure_ids(int(sel.max()) + 1)
        labels = self.atom_of[sel]
        n = self.n_atoms
        cnt = np.bincount(labels + 1, minlength=n + 1)
        untouched = int(cnt[0])
        cnt = cnt[1:]
        sz = self.size[:n]
        hit = cnt > 0
        full = np.flatnonzero(hit & (cnt == sz))
        partial = np.flatnonzero(hit & (cnt < sz))
        plan = _Plan(self.version, True, "OK", sel, labels, partial, cnt, untouched)
        proj = self.proj
        if partial.shape[0] == 0 and untouched == 0:
            if sum(proj[a] for a in full.tolist()) % p == 0:
                plan.qp = {}
                return plan  # already implied by the history: nothing new
        if max_entries is not None and self.nnz > max_entries:
            plan.allow, plan.reason = False, "AUDIT_CAPACITY"
            return plan
        # virtual split: the selected part of a cut atom gets a new id
        split: dict[int, int] = {}
        vsize: dict[int, int] = {}
        nxt = n
        for a in partial.tolist():
            k = int(cnt[a])
            split[a] = nxt
            vsize[a] = int(sz[a]) - k
            vsize[nxt] = k
            nxt += 1
        z = -1
        if untouched:
            z = nxt
            vsize[z] = untouched
            nxt += 1
        rows = self.rows

        def vrow(c: int) -> dict[int, int]:
            r = rows[c]
            if not split:
                return r  # read-only use below
            out = dict(r)
            for f, v in r.items():
                if f in split:
                    out[split[f]] = v
            if c in split:
                out[split[c]] = 1
            return out

        qp: dict[int, int] = {}
        for a in full.tolist():
            if a in rows:
                for f, v in vrow(a).items():
                    qp[f] = (qp.get(f, 0) - v) % p
            else:
                qp[a] = (qp.get(a, 0) + 1) % p
        for a2 in split.values():
            qp[a2] = (qp.get(a2, 0) + 1) % p
        if z >= 0:
            qp[z] = 1
        qp = {f: v for f, v in qp.items() if v}
        plan.qp = qp
        if not qp:
            return plan

        def vsz(a: int) -> int:
            return vsize[a] if a in vsize else int(self.size[a])

        inv_split = {v: k for k, v in split.items()}
        cols = self.cols

        def vcols(f: int) -> set[int]:
            if f == z:
                return set()
            if f in inv_split:
                a = inv_split[f]
                return {a} if a in rows else cols.get(a, set())
            return cols.get(f, set())

        if len(qp) == 1:
            (f,) = qp
            if vsz(f) == 1:
                plan.allow, plan.reason = False, "RECONSTRUCTION_RISK"
                return plan
        f0 = min(qp, key=lambda f: len(vcols(f)))
        plan.f0 = f0
        qinv = pow(qp[f0], -1, p)
        for c in vcols(f0):
            if vsz(c) != 1:
                continue
            r = vrow(c)
            if len(r) != len(qp):
                continue
            alpha = r[f0] * qinv % p
            if all(r.get(f) == alpha * v % p for f, v in qp.items()):
                plan.allow, plan.reason = False, "RECONSTRUCTION_RISK"
                return plan
        return plan

    # -- applying
    def apply(self, plan: _Plan) -> None:
        assert plan.allow and plan.qp is not None and plan.version == self.version
        self.history += 1
        if plan.qp:
            assert plan.sel is not None and plan.labels is not None
            assert plan.partial is not None and plan.counts is not None
            self._split(plan.sel, plan.labels, plan.partial, plan.counts, plan.untouched)
            self._insert_reduced(plan.qp, plan.f0)
            self.keep_original(plan.sel)
        self.version += 1

    def split_by(self, sel: np.ndarray) -> None:
        """Refine the atoms so that ``sel`` is a union of atoms (no row added)."""
        if sel.shape[0] == 0:
            return
        self.ensure_ids(int(sel.max()) + 1)
        labels = self.atom_of[sel]
        n = self.n_atoms
        cnt = np.bincount(labels + 1, minlength=n + 1)
        partial = np.flatnonzero((cnt[1:] > 0) & (cnt[1:] < self.size[:n]))
        self._split(sel, labels, partial, cnt[1:], int(cnt[0]))
        self.version += 1

    def insert_vector(self, vec: Mapping[int, int]) -> bool:
        """Add a row given over current atom ids; return False if already implied."""
        p, rows = self.p, self.rows
        qp: dict[int, int] = {}
        for a, c in vec.items():
            if a in rows:
                for f, v in rows[a].items():
                    qp[f] = (qp.get(f, 0) - c * v) % p
            else:
                qp[a] = (qp.get(a, 0) + c) % p
        qp = {f: v for f, v in qp.items() if v}
        if not qp:
            return False
        self.orig = None  # pooled rows are not kept as record sets
        self._insert_reduced(qp, min(qp, key=lambda f: len(self.cols.get(f, ()))))
        self.version += 1
        return True

    def _split(
        self,
        sel: np.ndarray,
        labels: np.ndarray,
        partial: np.ndarray,
        counts: np.ndarray,
        untouched: int,
    ) -> None:
        """Move the selected part of each cut atom (and of the untouched records) to a new atom."""
        p = self.p
        lut = np.arange(-1, self.n_atoms, dtype=np.int32)
        w, proj, rows, cols = self.w, self.proj, self.rows, self.cols
        for a in partial.tolist():
            k = int(counts[a])
            a2 = self.new_atom(k)
            self.size[a] -= k
            lut[a + 1] = a2
            if a in rows:
                rows[a][a2] = 1
                self.nnz += 1
                cols[a2] = {a}
                proj[a] = (proj[a] - w[a2]) % p
            else:
                cs = cols.get(a)
                if cs:
                    for c in cs:
                        v = rows[c][a]
                        rows[c][a2] = v
                        self.nnz += 1
                        proj[c] = (proj[c] - v * w[a2]) % p
                    cols[a2] = set(cs)
        if untouched:
            lut[0] = self.new_atom(untouched)
        self.atom_of[sel] = lut[labels + 1]

    def _insert_reduced(self, qp: dict[int, int], f0: int) -> None:
        """Add the reduced row ``qp`` (over free atoms) with pivot ``f0``; keep rows reduced."""
        p = self.p
        w, proj, rows, cols = self.w, self.proj, self.rows, self.cols
        inv = pow(qp[f0], -1, p)
        qn = {f: v * inv % p for f, v in qp.items() if f != f0}
        qw = (w[f0] + sum(v * w[f] for f, v in qn.items())) % p
        items = list(qn.items())
        nnz = self.nnz + len(qn)
        for c in cols.pop(f0, set()):
            r = rows[c]
            alpha = r.pop(f0)
            nnz -= 1
            neg = p - alpha
            get = r.get
            for f, v in items:
                old = get(f)
                if old is None:  # p is prime: -alpha*v != 0
                    r[f] = neg * v % p
                    nnz += 1
                    cols.setdefault(f, set()).add(c)
                    continue
                nv = (old + neg * v) % p
                if nv:
                    r[f] = nv
                else:
                    del r[f]
                    nnz -= 1
                    cs = cols[f]
                    cs.discard(c)
                    if not cs:
                        del cols[f]
            proj[c] = (proj[c] + alpha * qw) % p
        rows[f0] = qn
        self.nnz = nnz
        for f in qn:
            cols.setdefault(f, set()).add(f0)
        proj[f0] = (w[f0] - qw) % p

    # -- persistence
    def to_state(self) -> dict[str, Any]:
        return {
            "atom_of": _b64(self.atom_of.astype("<i4")),
            "size": _b64(self.size[: self.n_atoms].astype("<i8")),
            "w": [format(x, "x") for x in self.w],
            "proj": [format(x, "x") for x in self.proj],
            "rows": {str(c): {str(f): format(v, "x") for f, v in r.items()} for c, r in self.rows.items()},
            "history": self.history,
            "counts": self.counts,
            "denials": self.denials,
            "orig": None if self.orig is None else [_b64(r.astype("<i4")) for r in self.orig],
        }

    @classmethod
    def from_state(cls, p: int, d: Mapping[str, Any]) -> _Scope:
        s = cls(p)
        s.atom_of = np.frombuffer(base64.b64decode(d["atom_of"]), dtype="<i4").astype(np.int32)
        sizes = np.frombuffer(base64.b64decode(d["size"]), dtype="<i8").astype(np.int64)
        s.n_atoms = int(sizes.shape[0])
        s.size = np.zeros(max(16, 2 * s.n_atoms), dtype=np.int64)
        s.size[: s.n_atoms] = sizes
        s.w = [int(x, 16) for x in d["w"]]
        s.proj = [int(x, 16) for x in d["proj"]]
        s.rows = {int(c): {int(f): int(v, 16) for f, v in r.items()} for c, r in d["rows"].items()}
        for c, r in s.rows.items():
            for f in r:
                s.cols.setdefault(f, set()).add(c)
        s.history, s.counts, s.denials = int(d["history"]), int(d["counts"]), int(d["denials"])
        s.nnz = sum(len(r) for r in s.rows.values())
        orig = d.get("orig")  # absent in version 1 states: the scope stays sparse
        s.orig = (
            None
            if orig is None
            else [np.frombuffer(base64.b64decode(r), dtype="<i4").astype(np.int32) for r in orig]
        )
        s.orig_ids = 0 if s.orig is None else sum(int(r.shape[0]) for r in s.orig)
        for r in s.orig or ():
            if not r.shape[0] or int(r[0]) < 0 or int(r[-1]) > MAX_RECORD_ID or (np.diff(r) <= 0).any():
                raise ValueError("an original row is not a sorted set of record ids")
        if s.orig_ids > ORIGINAL_ROWS_BUDGET:
            raise ValueError("original rows over their budget")
        if len(s.w) != s.n_atoms or len(s.proj) != s.n_atoms:
            raise ValueError("weights do not match the atom count")
        if s.atom_of.shape[0] and int(s.atom_of.max()) >= s.n_atoms:
            raise ValueError("atom label out of range")
        if any(c >= s.n_atoms or c < 0 for c in s.rows) or any(
            f >= s.n_atoms or f < 0 or f in s.rows for f in s.cols
        ):
            raise ValueError("row refers to an unknown or pivot atom")
        return s

    def status(self) -> ScopeStatus:
        return ScopeStatus(self.history, self.counts, len(self.rows), self.n_atoms, self.denials, self.nnz)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


# --------------------------------------------------------------------------- auditor


class Auditor:
    """Decides, per pooling scope, whether an aggregate may be answered.

    Args:
        record_ids: the dataset's record ids (non-negative ints up to
            :data:`MAX_RECORD_ID`), or None for an open universe (any id in
            range is accepted; records never selected do not affect any
            decision, so knowing the universe is only a consistency check).
        prime: the modulus (a prime of at least 32 bits, kept secret by the
            node); default: a fresh random 127-bit prime.
        max_entries: fail-closed work cap per scope, in stored numbers. The
            sparse engine denies queries that are not already implied with
            reason ``AUDIT_CAPACITY`` once its reduced basis holds more than
            ``min(max_entries, SPARSE_MAX_ENTRIES)`` non-zero entries (about
            200 MB of Python objects). A scope on the dense engine holds a
            pool of ``max_entries // records`` vectors (4 bytes a number:
            100 MB at the default 25,000,000), which bounds its rank at about
            that many answered queries; past it, ``AUDIT_CAPACITY``. None
            disables the cap, and with it the dense engine (explicit id sets
            must not exhaust the node's memory or CPU).
        dense_switch_entries: a scope moves to the dense engine
            (:mod:`policy.audit_dense`) once its sparse basis holds more than
            this many entries and at least half its cells are single records
            (explicit id sets). None keeps every scope sparse. Default
            :data:`DENSE_SWITCH_ENTRIES`.
        max_dense_scopes: how many scopes may be on the dense engine at
            once (each pool takes up to ``4 x max_entries`` bytes, allocated
            when the scope moves). Past it, scopes stay on the sparse engine
            and its cap. Default :data:`DEFAULT_MAX_DENSE_SCOPES`.

    Selections (``selected_ids``) may be a ``frozenset``/``set`` of ints, any
    iterable of ints, or a 1-D integer NumPy array (the fast path for large
    selections). Duplicates are ignored.

    Thread-safe: every public method holds one lock.

    Raises:
        UnknownRecordError: an id in ``record_ids`` is out of range.
        ValueError: ``prime`` is not a prime of at least 32 bits.

    """

    def __init__(
        self,
        record_ids: Sequence[int] | None = None,
        *,
        prime: int | None = None,
        max_entries: int | None = DEFAULT_MAX_ENTRIES,
        dense_switch_entries: int | None = DENSE_SWITCH_ENTRIES,
        max_dense_scopes: int = DEFAULT_MAX_DENSE_SCOPES,
    ) -> None:
        if prime is None:
            prime = random_prime()
        elif prime.bit_length() < 32 or not flint.fmpz(prime).is_prime():
            raise ValueError("prime must be a prime of at least 32 bits")
        self._p = prime
        self._dense_p = dense_prime()
        self._max_entries = max_entries
        self._dense_switch = dense_switch_entries
        self._max_dense = max_dense_scopes
        self._scopes: dict[str, _Scope | DenseScope] = {}
        self._known: np.ndarray | None = None
        self._lock = threading.RLock()
        self._cached: tuple[str, frozenset[int], _Plan] | None = None
        if record_ids is not None:
            self._known = np.zeros(0, dtype=np.bool_)
            self.add_records(record_ids)

    @property
    def prime(self) -> int:
        """The modulus (secret)."""
        return self._p

    # -- records
    def add_records(self, ids: Iterable[int]) -> None:
        """Declare records that joined the dataset.

        New records have never been selected, so every scope's state stays
        valid as is. With an open universe (``record_ids=None``) this only
        validates the ids.

        Raises:
            UnknownRecordError: an id is negative, not an int or above
                :data:`MAX_RECORD_ID`.

        """
        with self._lock:
            arr = self._to_array(ids, check_known=False)
            if self._known is not None and arr.shape[0]:
                top = int(arr.max()) + 1
                if top > self._known.shape[0]:
                    grown = np.zeros(max(top, 2 * self._known.shape[0]), dtype=np.bool_)
                    grown[: self._known.shape[0]] = self._known
                    self._known = grown
                self._known[arr] = True

    def _to_array(self, ids: Any, *, check_known: bool = True) -> np.ndarray:
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
                raise UnknownRecordError("selected ids must be a 1-D integer array")
            arr = ids.astype(np.int64, copy=False)
            dedupe = True
        elif isinstance(ids, (set, frozenset)):
            try:
                arr = np.fromiter(ids, dtype=np.int64, count=len(ids))
            except (TypeError, ValueError, OverflowError) as e:
                raise UnknownRecordError(f"selected ids must be integers: {e}") from None
            dedupe = False
        else:
            try:
                vals = list(ids)
                if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in vals):
                    raise TypeError("non-integer id")
                arr = np.fromiter(vals, dtype=np.int64, count=len(vals))
            except (TypeError, ValueError, OverflowError) as e:
                raise UnknownRecordError(f"selected ids must be integers: {e}") from None
            dedupe = True
        if arr.shape[0]:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > MAX_RECORD_ID:
                bad = lo if lo < 0 else hi
                raise UnknownRecordError(
                    f"record id {bad} outside [0, {MAX_RECORD_ID}]", metadata={"id": str(bad)}
                )
            if dedupe:
                mark = np.zeros(hi + 1, dtype=np.bool_)
                mark[arr] = True
                if int(np.count_nonzero(mark)) != arr.shape[0]:
                    arr = np.flatnonzero(mark).astype(np.int64)
            if check_known and self._known is not None:
                known = self._known
                if hi >= known.shape[0] or not bool(known[arr].all()):
                    bad_ids = [int(i) for i in arr if i >= known.shape[0] or not known[i]]
                    raise UnknownRecordError(
                        f"record id {bad_ids[0]} is not in the dataset",
                        metadata={"id": str(bad_ids[0]), "unknown": str(len(bad_ids))},
                    )
        return arr

    # -- auditing
    def _scope(self, key: str) -> _Scope | DenseScope:
        s = self._scopes.get(key)
        if s is None:
            if not isinstance(key, str) or not key:
                raise InvalidScopeError("scope key must be a non-empty string")
            s = self._scopes[key] = _Scope(self._p)
        return s

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in _KINDS:
            raise InvalidQueryKindError(
                f"query kind must be one of {sorted(_KINDS)}, got {kind!r}",
                metadata={"kind": str(kind)},
            )
        return kind

    def _plan(self, key: str, kind: str, selected_ids: Any) -> tuple[_Scope | DenseScope, _Plan | DensePlan]:
        self._kind(kind)
        s = self._scope(key)
        sel = self._to_array(selected_ids)
        if kind == "count":
            if sel.shape[0] == 0:
                return s, _Plan(s.version, False, "EMPTY_SELECTION")
            return s, _Plan(s.version, True, "OK", qp={})
        if isinstance(s, DenseScope):
            return s, s.plan(sel)
        cap = self._max_entries
        return s, s.plan(sel, None if cap is None else min(cap, SPARSE_MAX_ENTRIES))

    def _dense_columns(self, n: int) -> int:
        """Pool vectors a dense scope over ``n`` records may hold (0: none fit the cap)."""
        if self._max_entries is None:
            return 0
        cols = self._max_entries // max(n, 1)
        return cols if cols >= 2 * K_MIN else 0

    def _dimension(self, s: _Scope) -> int:
        """Record coordinates a dense scope needs: the known records, or the ids seen."""
        if self._known is not None:
            return max(1, int(np.flatnonzero(self._known)[-1]) + 1 if self._known.any() else 1)
        seen = np.flatnonzero(s.atom_of >= 0)
        return int(seen[-1]) + 1 if seen.shape[0] else 1

    def _maybe_densify(self, key: str, s: _Scope) -> None:
        """Move a sparse scope of mostly one-record cells to the dense engine."""
        if (
            self._dense_switch is None
            or s.orig is None
            or s.nnz <= self._dense_switch
            or not s.mostly_singletons()
            or sum(isinstance(x, DenseScope) for x in self._scopes.values()) >= self._max_dense
        ):
            return
        n = self._dimension(s)
        cols = self._dense_columns(n)
        if not cols:
            return
        d = DenseScope.build(n, cols, self._dense_p, secrets.randbits(64), s.orig)
        if d.frozen or d.disclosed_ids().shape[0]:
            s.orig = None  # not certified mod the dense prime: stay sparse (its cap still holds)
            return
        d.history, d.counts, d.denials = s.history, s.counts, s.denials
        self._scopes[key] = d

    def check(self, scope_key: str, kind: str, selected_ids: Any) -> AuditDecision:
        """Decide whether a query may be answered, without recording it.

        Args:
            scope_key: the pooling key (:func:`scope_key`).
            kind: ``"count"``, ``"sum"`` or ``"avg"``.
            selected_ids: ids of the records that *contribute* to the query:
                selected by its predicate and with a value in the aggregated
                column (:meth:`policy.predicates.Dataset.select` with
                ``contributing=``). A selected record whose value is missing
                adds nothing to a SUM, so counting it would let a "group of
                two" reveal one value.

        Returns:
            The decision. A denial is counted in :meth:`status`.

        Raises:
            InvalidQueryKindError: unknown kind.
            UnknownRecordError: an id is outside the dataset or id range.

        """
        with self._lock:
            s, plan = self._plan(scope_key, kind, selected_ids)
            if isinstance(selected_ids, frozenset) and plan.allow:
                self._cached = (scope_key, selected_ids, plan)
            return self._decision(s, kind, plan)

    @staticmethod
    def _decision(s: _Scope | DenseScope, kind: str, plan: _Plan | DensePlan) -> AuditDecision:
        r = len(s.rows)
        if not plan.allow:
            s.denials += 1
            return AuditDecision(False, plan.reason, r, r)
        grows = kind != "count" and (plan.grows if isinstance(plan, DensePlan) else bool(plan.qp))
        return AuditDecision(True, "OK", r, r + 1 if grows else r)

    def commit(self, scope_key: str, kind: str, selected_ids: Any) -> None:
        """Record an answered query in the scope's history.

        Raises:
            AuditCommitRefusedError: the auditor would deny this query now
                (e.g. another query was committed since the check).
            InvalidQueryKindError: unknown kind.
            UnknownRecordError: an id is outside the dataset or id range.

        """
        with self._lock:
            cached = self._cached
            self._cached = None
            s = self._scope(scope_key)
            if (
                kind in ("sum", "avg")
                and cached is not None
                and cached[0] == scope_key
                and (
                    cached[1] is selected_ids
                    or (isinstance(selected_ids, frozenset) and cached[1] == selected_ids)
                )
                and cached[2].version == s.version
                and cached[2].sel is not None
                and (isinstance(cached[2], DensePlan) == isinstance(s, DenseScope))
            ):
                plan = cached[2]
            else:
                s, plan = self._plan(scope_key, kind, selected_ids)
            self._apply(scope_key, s, kind, plan)

    def _apply(self, key: str, s: _Scope | DenseScope, kind: str, plan: _Plan | DensePlan) -> None:
        if not plan.allow:
            raise AuditCommitRefusedError(
                f"refusing to record a query the auditor denies ({plan.reason})",
                metadata={"decision_reason": plan.reason},
            )
        if kind == "count":
            s.counts += 1
        elif isinstance(s, DenseScope):
            assert isinstance(plan, DensePlan)
            s.apply(plan)
        else:
            assert isinstance(plan, _Plan)
            s.apply(plan)
            self._maybe_densify(key, s)

    def audit(self, scope_key: str, kind: str, selected_ids: Any) -> AuditDecision:
        """Check a query and, if allowed, record it (atomically).

        Returns:
            The decision (see :meth:`check`).

        Raises:
            InvalidQueryKindError: unknown kind.
            UnknownRecordError: an id is outside the dataset or id range.

        """
        with self._lock:
            s, plan = self._plan(scope_key, kind, selected_ids)
            decision = self._decision(s, kind, plan)
            if plan.allow:
                self._apply(scope_key, s, kind, plan)
            return decision

    def denials(self) -> dict[str, int]:
        """Return the denied-check counter of every scope that has denied at least once.

        A few bytes per scope: the node persists it on a denial instead of the
        whole state (:meth:`to_state`), which changes only on a commit.
        """
        with self._lock:
            return {k: s.denials for k, s in self._scopes.items() if s.denials}

    def restore_denials(self, counts: Mapping[str, int]) -> None:
        """Raise each scope's denied-check counter to ``counts[scope]`` (counters only grow).

        A scope not in the auditor is created empty, as the denied check that
        counted it had created it.

        Raises:
            InvalidScopeError: an empty or non-string scope key.
        """
        with self._lock:
            for k, n in counts.items():
                s = self._scope(k)
                s.denials = max(s.denials, int(n))

    def disclosed(self, scope_key: str) -> frozenset[int]:
        """Return the record ids whose values the scope's history determines.

        Always empty unless a state was tampered with; used by tests and
        audits of the auditor itself.
        """
        with self._lock:
            s = self._scopes.get(scope_key)
            if s is None:
                return frozenset()
            if isinstance(s, DenseScope):
                return frozenset(int(i) for i in s.disclosed_ids())
            atoms = [c for c, r in s.rows.items() if not r and s.size[c] == 1]
            if not atoms:
                return frozenset()
            ids = np.flatnonzero(np.isin(s.atom_of, np.asarray(atoms, dtype=np.int32)))
            return frozenset(int(i) for i in ids)

    def merge_scopes(self, target: str, sources: Iterable[str]) -> frozenset[int]:
        """Pool the answered history of ``sources`` into ``target``.

        Use it when a coalition is declared or widened (the coalition's scope
        key changes): merge the members' old scopes into the new key. The
        sources are left as they are. Answers already given cannot be taken
        back, so the merged history may disclose records even though each
        source was safe alone; they are returned so the node can raise it.

        Args:
            target: the scope key to pool into (created if absent).
            sources: scope keys to pool from (unknown keys and ``target``
                itself are skipped).

        Returns:
            The record ids the merged ``target`` history now determines.

        """
        with self._lock:
            t = self._scope(target)
            keys = [k for k in sources if k != target and k in self._scopes]
            if isinstance(t, DenseScope) or any(isinstance(self._scopes[k], DenseScope) for k in keys):
                self._merge_dense(target, t, [self._scopes[k] for k in keys])
                self._cached = None
                return self.disclosed(target)
            assert isinstance(t, _Scope)
            for key in keys:
                src = self._scopes[key]
                assert isinstance(src, _Scope)
                ids = np.flatnonzero(src.atom_of >= 0)
                labels = src.atom_of[ids]
                order = np.argsort(labels, kind="stable")
                ids, labels = ids[order], labels[order]
                bounds = np.flatnonzero(np.diff(labels)) + 1
                groups = np.split(ids, bounds) if ids.shape[0] else []
                members: dict[int, list[int]] = {}
                for g in groups:
                    t.split_by(g)
                for g in groups:
                    b = int(src.atom_of[g[0]])
                    members[b] = np.unique(t.atom_of[g]).tolist()
                for c, free in src.rows.items():
                    vec: dict[int, int] = {}
                    for b, coef in ((c, 1), *free.items()):
                        for a in members[b]:
                            vec[a] = (vec.get(a, 0) + coef) % self._p
                    t.insert_vector(vec)
                t.history += src.history
                t.counts += src.counts
                t.version += 1
            self._cached = None
            return self.disclosed(target)

    def _merge_dense(self, target: str, t: _Scope | DenseScope, sources: list[_Scope | DenseScope]) -> None:
        """Pool histories into a dense ``target`` rebuilt from every member's answered rows.

        A sparse member that no longer keeps its rows as record sets, a row
        that the pooled rows imply mod the dense prime without repeating one
        (not certifiable), or a cap too small for the pool, freezes the
        target: every later SUM is refused (``AUDIT_CAPACITY``).
        """
        rows: list[np.ndarray] = []
        frozen = False
        n = 1
        for x in (t, *sources):
            if isinstance(x, DenseScope):
                rows += x.rows
                frozen |= x.frozen
                n = max(n, x.n)
            else:
                n = max(n, self._dimension(x))
                if x.orig is not None:
                    rows += x.orig
                elif x.rows:
                    frozen = True
        cols = self._dense_columns(n)
        if not cols:
            cols, frozen = 2 * K_MIN, True
        d = DenseScope.build(n, cols, self._dense_p, secrets.randbits(64), rows)
        d.frozen |= frozen
        d.history = sum(x.history for x in (t, *sources))
        d.counts = sum(x.counts for x in (t, *sources))
        d.denials = t.denials
        self._scopes[target] = d

    # -- introspection and persistence
    def status(self) -> dict[str, ScopeStatus]:
        """Return per-scope counters (history size, rank, atoms, denials)."""
        with self._lock:
            return {
                k: ScopeStatus(*s.counters()) if isinstance(s, DenseScope) else s.status()
                for k, s in self._scopes.items()
            }

    def to_state(self) -> AuditState:
        """Serialize the whole auditor to a JSON-able dict.

        The dict holds the secret prime and per-atom weights: persist it with
        the node's secrets. Arrays are base64 little-endian; big integers hex.
        """
        with self._lock:
            known = None
            if self._known is not None:
                known = base64.b64encode(np.packbits(self._known, bitorder="little")).decode()
            return {
                "version": _STATE_VERSION,
                "prime": format(self._p, "x"),
                "max_entries": self._max_entries,
                "dense_prime": format(self._dense_p, "x"),
                "dense_switch_entries": self._dense_switch,
                "max_dense_scopes": self._max_dense,
                "known": known,
                "known_len": 0 if self._known is None else int(self._known.shape[0]),
                "scopes": {k: s.to_state() for k, s in self._scopes.items()},
            }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Auditor:
        """Rebuild an auditor from :meth:`to_state` output.

        Raises:
            AuditStateError: wrong version or a malformed/inconsistent state.

        """
        try:
            if state.get("version") not in _READABLE_VERSIONS:
                raise ValueError(f"expected version {_STATE_VERSION}, got {state.get('version')!r}")
            p = int(state["prime"], 16)
            a = cls.__new__(cls)
            if p.bit_length() < 32 or not flint.fmpz(p).is_prime():
                raise ValueError("prime is not a prime of at least 32 bits")
            a._p = p
            cap = state.get("max_entries", DEFAULT_MAX_ENTRIES)
            a._max_entries = None if cap is None else int(cap)
            dp = state.get("dense_prime")
            a._dense_p = dense_prime() if dp is None else int(dp, 16)
            if a._dense_p.bit_length() != DENSE_PRIME_BITS or not flint.fmpz(a._dense_p).is_prime():
                raise ValueError("dense prime is not a prime of the expected size")
            switch = state.get("dense_switch_entries", DENSE_SWITCH_ENTRIES)
            a._dense_switch = None if switch is None else int(switch)
            a._max_dense = int(state.get("max_dense_scopes", DEFAULT_MAX_DENSE_SCOPES))
            a._lock = threading.RLock()
            a._cached = None
            a._known = None
            if state.get("known") is not None:
                bits = np.frombuffer(base64.b64decode(state["known"]), dtype=np.uint8)
                n = int(state["known_len"])
                a._known = np.unpackbits(bits, bitorder="little")[:n].astype(np.bool_)
            a._scopes = {
                str(k): DenseScope.from_state(v) if v.get("engine") == "dense" else _Scope.from_state(p, v)
                for k, v in state["scopes"].items()
            }
            return a
        except AuditStateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise AuditStateError(f"invalid auditor state: {e}") from None
