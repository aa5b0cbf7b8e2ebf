"""Dense engine of the reconstruction auditor: many cells, dense histories (explicit id sets).

The sparse engine of :mod:`policy.auditor` keeps the answered rows in reduced
form over cells (atoms), with Python integers modulo a 127-bit prime. That is
cheap while the rows are sparse over few cells (analytics), and costs
``O(rank x records)`` dictionary operations per query once random id sets have
split every record into a cell of its own. A scope whose basis grows past
``dense_switch_entries`` moves to this engine (docs/auditing.md, *Dense
engine*).

The idea: keep a *pool* of random vectors of the null space ``N`` of the
answered rows ``B`` (``B z = 0``), modulo a word-size prime ``p``, in record
coordinates. For a new SUM over the set ``q``:

* ``q . z`` for every pool vector is the sum of the pool's rows over ``q``
  (``O(|q| x K)``). If one is not zero, ``q`` is not in the row space mod
  ``p``, hence not over Q either.
* Take that pool vector ``y`` as pivot and project the others onto
  ``N' = N ∩ q^⊥`` (``z - y (q.z)/(q.y)``). Record ``i`` is determined by
  ``B ∪ {q}`` mod ``p`` iff coordinate ``i`` vanishes on ``N'``: iff row
  ``i`` of every projected pool vector is zero.
* If every ``q . z`` is zero, ``q`` is implied mod ``p``. It is answered
  only when it repeats an answered set exactly (then it is implied over Q
  too); otherwise it is refused, since that could be a rank drop mod ``p``.

Exactness (the argument is in docs/auditing.md): the answered rows kept in
``B`` are linearly independent mod ``p``, hence over Q. Then ``e_i`` in the
rational row space of ``B ∪ {q}`` implies ``e_i`` in its row space mod ``p``,
and a coordinate that vanishes on ``N'`` vanishes on every pool vector. So no
disclosure over Q is ever missed, whatever ``p`` and the pool are. Chance
only adds refusals: a coordinate that does not vanish on ``N'`` vanishes on
``K - 1`` independent uniform vectors with probability ``p^-(K-1)``.

Each pivot consumes one pool vector. Fresh ones come from a reserve, kept in
step lazily: the pivots are logged, ``LOG_MAX`` to a log. A full log
becomes the *old* log, which is applied to the reserve a slice per
rank-raising query, so that it is done when the next log fills. When fewer
than ``K_MIN`` active vectors remain, the next reserve vectors are brought
up to date (through the old log if their slice is not done, then the
current one) and join the active pool (at most ``ACTIVE``). Both use matrix
products (a compact "WY" form of the logged projections) in float64 with
every product and sum below ``2^53``, so exact.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import flint
import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["ACTIVE", "DENSE_PRIME_BITS", "K_MIN", "LOG_MAX", "DensePlan", "DenseScope", "dense_prime"]

DENSE_PRIME_BITS = 23
"""Size of the dense engine's prime: ``64 p^2 < 2^53`` keeps float64 products exact."""
K_MIN = 8
"""Active pool vectors kept before a decision: a spurious refusal needs a
coordinate to vanish on ``K_MIN - 1`` uniform vectors (probability ``p^-7``)."""
ACTIVE = 16
"""Active pool vectors after a refill (each decision costs ``O(records x active)``)."""
LOG_MAX = 56
"""Logged pivots before the whole reserve is refreshed (at most 64 for exactness)."""


def dense_prime(bits: int = DENSE_PRIME_BITS) -> int:
    """Return a fresh random prime of exactly ``bits`` bits (from :mod:`secrets`)."""
    while True:
        n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if flint.fmpz(n).is_prime():
            return n


_CHUNK = 512
_BLAS = ThreadpoolController()
"""The log and refresh products run on one BLAS thread: their shapes (56 rows
against 10,000 columns) gain nothing from OpenBLAS's threads, which on a busy
2-core machine made one such product 100x slower (910 ms instead of 8 ms,
measured)."""
_MAX_ID = 2**27 - 1  # policy.auditor.MAX_RECORD_ID


def _reduce(x: np.ndarray, p: int) -> None:
    """In place, integers ``|x| < 2^52`` in float64 to ``[-p, 2p)`` congruent mod ``p``.

    ``floor(x / p)`` computed as ``floor(x * (1/p))`` is off by at most one
    (relative error below ``2^-51`` on a quotient below ``2^30``), and
    ``x - k p`` is exact since both are integers below ``2^53``.
    """
    q = x * (1.0 / p)
    np.floor(q, out=q)
    q *= p
    x -= q


def _canon(x: np.ndarray, p: int) -> np.ndarray:
    """Integers ``|x| < 2^52`` in float64 to the canonical ``[0, p)`` (in place; returned)."""
    _reduce(x, p)
    x[x < 0] += p
    x[x >= p] -= p
    return x


def _encode_row(r: np.ndarray) -> str:
    """A sorted id set as ``"i:"`` + base64 int32 ids or ``"b:"`` + base64 bitmap, the shorter."""
    top = int(r[-1]) + 1
    if 4 * r.shape[0] <= (top + 7) // 8:
        return "i:" + base64.b64encode(r.astype("<i4").tobytes()).decode("ascii")
    mask = np.zeros(top, dtype=np.bool_)
    mask[r] = True
    return "b:" + base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode("ascii")


def _decode_row(s: str) -> np.ndarray:
    raw = base64.b64decode(s[2:], validate=True)
    if len(raw) > _MAX_ID // 8 + 1:
        raise ValueError("dense row longer than the record id range")
    if s.startswith("i:"):
        return np.frombuffer(raw, dtype="<i4").astype(np.int64)
    if s.startswith("b:"):
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")
        return np.flatnonzero(bits).astype(np.int64)
    raise ValueError("dense row encoding must start with 'i:' or 'b:'")


def _digest(sel: np.ndarray) -> bytes:
    return hashlib.blake2b(sel.astype("<i8", copy=False).tobytes(), digest_size=16).digest()


class _Log:
    """Logged pivots: rows ``q_j`` (0/1), pivots ``y_j`` and ``L[j, i] = q_j . y_i``.

    ``L`` is lower triangular (a pivot is orthogonal to every earlier row)
    with the non-zero ``q_j . y_j`` on its diagonal.
    """

    def __init__(self, n: int, p: int) -> None:
        self.p = p
        self.m = 0
        self.q = np.zeros((LOG_MAX, n))
        self.y = np.zeros((LOG_MAX, n))
        self.lmat = np.zeros((LOG_MAX, LOG_MAX))
        self.invs: list[int] = []

    def grow(self, extra: int) -> None:
        """New record coordinates: zero in every row and pivot."""
        pad = np.zeros((LOG_MAX, extra))
        self.q = np.hstack([self.q, pad])
        self.y = np.hstack([self.y, pad])

    def append(self, sel: np.ndarray, y: np.ndarray) -> None:
        """Log the pivot ``y`` used for the row ``sel``."""
        j, p = self.m, self.p
        self.y[j] = y
        self.q[j, sel] = 1.0
        self.lmat[j, : j + 1] = _canon(self.y[: j + 1] @ self.q[j], p)  # sums < n p
        self.invs.append(pow(int(self.lmat[j, j]), -1, p))
        self.m = j + 1

    def clear(self) -> None:
        """Empty the log."""
        self.q[: self.m] = 0.0
        self.y[: self.m] = 0.0
        self.lmat[:] = 0.0
        self.invs.clear()
        self.m = 0

    def project(self, blk: np.ndarray) -> None:
        """In place: vectors (rows of ``blk``, null space as of the log's start) to its end.

        ``R`` becomes ``R - W Y`` with ``L W^T = Q R^T``. Entries in and out
        are in ``[-p, 2p)``; every float64 product and sum stays below
        ``2^53`` (``m <= 64``, ``p < 2^23``).
        """
        m, p = self.m, self.p
        if not m or not blk.shape[0]:
            return
        qt, yt, lmat = self.q[:m], self.y[:m], self.lmat
        s_mat = _canon(blk @ qt.T, p)  # |sums| < 2 n p
        w = np.zeros_like(s_mat)
        for i in range(m):
            acc = s_mat[:, i] - w[:, :i] @ lmat[i, :i]  # < 64 p^2 < 2^52
            w[:, i] = _canon(_canon(acc, p) * self.invs[i], p)
        blk -= w @ yt  # |W Y| < m p^2 < 2^52: exact
        _reduce(blk, p)


@dataclass
class DensePlan:
    """A computed, not yet applied, SUM decision of a :class:`DenseScope`."""

    version: int
    allow: bool
    reason: str
    sel: np.ndarray | None = None
    digest: bytes = b""
    grows: bool = False  # True: a new independent row (pivot consumed)
    active: np.ndarray | None = None  # projected active pool, pivot column removed
    pivot: np.ndarray | None = None  # the consumed pool vector (logged)


class DenseScope:
    """Row-space state of one scope's answered SUM queries, dense engine.

    Args:
        n: dimension (record ids below ``n``; grows on demand).
        columns: pool vectors allocated in all (active + reserve); the rank
            this scope can reach is about ``columns - K_MIN``.
        p: the prime (``DENSE_PRIME_BITS`` bits).
        seed: seed of the pool's random generator (secret, like ``p``).

    """

    def __init__(self, n: int, columns: int, p: int, seed: int) -> None:
        self.p = p
        self.seed = seed
        self.columns = columns
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.n = max(int(n), 1)
        take = min(ACTIVE, columns)
        self.active = self.rng.integers(0, p, (self.n, take), dtype=np.int64)
        # float32 holds the reserve's integers in [-p, 2p) exactly (below 2^24): half the memory
        self.reserve = np.empty((columns - take, self.n), dtype=np.float32)
        for lo in range(0, self.reserve.shape[0], _CHUNK):
            blk = self.reserve[lo : lo + _CHUNK]
            blk[:] = self.rng.integers(0, p, blk.shape)
        # pivots logged since the reserve's last full refresh (``log``), and the
        # previous full log (``old``) still being applied to the reserve, a
        # slice per rank-raising query: rows [0, done) are through ``old``
        self.log = _Log(self.n, p)
        self.old = _Log(self.n, p)
        self.done = 0
        self.rows: list[np.ndarray] = []
        self.digests: set[bytes] = set()
        self.known_disclosed = np.zeros(self.n, dtype=np.bool_)
        self.history = 0
        self.counts = 0
        self.denials = 0
        self.version = 0
        self.frozen = False
        self.n0 = self.n
        self._encoded: list[str] = []

    # -- dimension
    def ensure_dim(self, upto: int) -> None:
        """Grow the record dimension to ``upto``: new coordinates are free (random)."""
        extra = upto - self.n
        if extra <= 0:
            return
        p = self.p
        self.active = np.vstack([self.active, self.rng.integers(0, p, (extra, self.active.shape[1]))])
        if self.reserve.shape[0]:
            fresh = self.rng.integers(0, p, (self.reserve.shape[0], extra)).astype(np.float32)
            self.reserve = np.hstack([self.reserve, fresh])
        else:
            self.reserve = np.zeros((0, upto), dtype=np.float32)
        self.log.grow(extra)
        self.old.grow(extra)
        self.known_disclosed = np.concatenate([self.known_disclosed, np.zeros(extra, dtype=np.bool_)])
        self.n = upto
        self.version += 1  # plans computed before hold the old dimension

    # -- deciding
    def plan(self, sel: np.ndarray) -> DensePlan:
        """Decide a SUM over the sorted, duplicate-free record ids ``sel`` (not recorded)."""
        if sel.shape[0] == 0:
            return DensePlan(self.version, False, "EMPTY_SELECTION")
        sel = np.sort(sel)
        if self.frozen:
            return DensePlan(self.version, False, "AUDIT_CAPACITY")
        self.ensure_dim(int(sel[-1]) + 1)
        p = self.p
        a = self.active
        c = a[sel].sum(axis=0) % p
        nz = np.flatnonzero(c)
        digest = _digest(sel)
        if nz.shape[0] == 0:
            # implied mod p: certified over Q only as a repeat of an answered set
            if digest in self.digests:
                return DensePlan(self.version, True, "OK", sel, digest)
            return DensePlan(self.version, False, "RECONSTRUCTION_RISK", sel, digest)
        if a.shape[1] < K_MIN:
            return DensePlan(self.version, False, "AUDIT_CAPACITY", sel, digest)
        j = int(nz[0])
        y = a[:, j].copy()
        f = c * pow(int(c[j]), -1, p) % p
        b = np.multiply.outer(y, f)  # < p^2 < 2^46
        np.subtract(a, b, out=b)
        np.remainder(b, p, out=b)
        last = b.shape[1] - 1
        if j != last:
            b[:, j] = b[:, last]
        b = b[:, :last]
        zero = ~b.any(axis=1)
        if bool((zero & ~self.known_disclosed).any()):
            return DensePlan(self.version, False, "RECONSTRUCTION_RISK", sel, digest)
        return DensePlan(self.version, True, "OK", sel, digest, True, b, y)

    # -- applying
    def apply(self, plan: DensePlan) -> None:
        """Record an allowed plan computed at the current version."""
        assert plan.allow and plan.version == self.version and plan.sel is not None
        self.history += 1
        if plan.grows:
            assert plan.active is not None and plan.pivot is not None
            self.active = plan.active
            self.rows.append(plan.sel.astype(np.int32))
            self.digests.add(plan.digest)
            with _BLAS.limit(limits=1, user_api="blas"):
                self.log.append(plan.sel, plan.pivot)
                if self.log.m == LOG_MAX:
                    self._rotate()
                self._advance()
                if self.active.shape[1] < K_MIN:
                    self._refill()
        self.version += 1

    def insert(self, sel: np.ndarray) -> bool:
        """Add an answered row without the disclosure check (pooling histories).

        Returns False, and freezes the scope (every later SUM is refused with
        ``AUDIT_CAPACITY``: fail closed), if the row is implied mod ``p``
        without repeating an answered set: it cannot be certified over Q.
        """
        sel = np.unique(np.asarray(sel, dtype=np.int64))
        if sel.shape[0] == 0:
            return True
        self.ensure_dim(int(sel[-1]) + 1)
        p, a = self.p, self.active
        c = a[sel].sum(axis=0) % p
        nz = np.flatnonzero(c)
        digest = _digest(sel)
        if nz.shape[0] == 0:
            if digest in self.digests:
                return True
            self.frozen = True
            return False
        if a.shape[1] < K_MIN:
            self.frozen = True
            return False
        j = int(nz[0])
        y = a[:, j].copy()
        b = (a - np.multiply.outer(y, c * pow(int(c[j]), -1, p) % p)) % p
        b[:, j] = b[:, -1]
        self.apply(DensePlan(self.version, True, "OK", sel, digest, True, b[:, :-1], y))
        return True

    def _through(self, log: _Log, lo: int, hi: int) -> None:
        """Project reserve rows ``[lo, hi)`` through ``log`` (float64 in chunks, stored back)."""
        for a in range(lo, hi, _CHUNK):
            b = min(hi, a + _CHUNK)
            blk = self.reserve[a:b].astype(np.float64)
            log.project(blk)
            self.reserve[a:b] = blk  # exact: integers in [-p, 2p), below 2^24

    def _advance(self) -> None:
        """Apply the old log to the next slice of the reserve, sized to finish in time."""
        left = self.reserve.shape[0] - self.done
        if not self.old.m or left <= 0:
            return
        step = -(-left // max(1, LOG_MAX - self.log.m))
        self._through(self.old, self.done, self.done + step)
        self.done = min(self.reserve.shape[0], self.done + step)

    def _rotate(self) -> None:
        """The log is full: finish the old log on the reserve, then the log becomes the old one."""
        self._through(self.old, self.done, self.reserve.shape[0])
        self.old, self.log = self.log, self.old
        self.log.clear()
        self.done = 0

    def _refill(self) -> None:
        """Move the next reserve vectors, brought up to date, into the active pool."""
        take = min(ACTIVE - self.active.shape[1], self.reserve.shape[0])
        if take <= 0:
            return
        blk = self.reserve[:take].astype(np.float64)
        if take > self.done:
            self.old.project(blk[self.done :])
        self.log.project(blk)
        fresh = _canon(blk, self.p).T.astype(np.int64)
        self.active = np.hstack([self.active, fresh])
        self.reserve = self.reserve[take:]  # a view: rows of a C-ordered array stay contiguous
        self.done = max(0, self.done - take)

    # -- introspection
    def disclosed_ids(self) -> np.ndarray:
        """Record ids whose value the rows determine (zero on every active vector)."""
        if self.active.shape[1] == 0:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(~self.active.any(axis=1))

    @property
    def rank(self) -> int:
        """Number of independent answered rows."""
        return len(self.rows)

    def counters(self) -> tuple[int, int, int, int, int, int]:
        """(history, counts, rank, dimension, denials, stored numbers) for ``ScopeStatus``."""
        stored = self.n * (self.active.shape[1] + self.reserve.shape[0] + 4 * LOG_MAX)  # 4-8 bytes each
        return self.history, self.counts, self.rank, self.n, self.denials, stored

    # -- persistence
    def _encoded_rows(self) -> list[str]:
        """The rows' encodings, computed once per row (rows never change)."""
        done = self._encoded
        for r in self.rows[len(done) :]:
            done.append(_encode_row(r))
        return list(done)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: the answered rows and the secrets; the pool is rebuilt on load."""
        return {
            "engine": "dense",
            "p": format(self.p, "x"),
            "seed": format(self.seed, "x"),
            "n0": self.n0,
            "columns": self.columns,
            "rows": self._encoded_rows(),
            "history": self.history,
            "counts": self.counts,
            "denials": self.denials,
            "frozen": self.frozen,
        }

    @classmethod
    def build(cls, n: int, columns: int, p: int, seed: int, rows: Iterable[np.ndarray]) -> DenseScope:
        """A scope holding ``rows`` (answered, in order); frozen if one cannot be certified."""
        s = cls(n, columns, p, seed)
        for r in rows:
            if not s.insert(np.asarray(r, dtype=np.int64)):
                break
        s.history = 0
        s.known_disclosed = np.zeros(s.n, dtype=np.bool_)
        s.known_disclosed[s.disclosed_ids()] = True
        return s

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> DenseScope:
        """Rebuild from :meth:`to_state` by replaying the rows (raises ValueError if malformed)."""
        p = int(d["p"], 16)
        if p.bit_length() != DENSE_PRIME_BITS or not flint.fmpz(p).is_prime():
            raise ValueError("dense prime is not a prime of the expected size")
        rows = [_decode_row(r) for r in d["rows"]]
        for r in rows:
            if r.shape[0] == 0 or int(r[0]) < 0 or int(r[-1]) > _MAX_ID or bool((np.diff(r) <= 0).any()):
                raise ValueError("dense row is not a sorted set of record ids")
        columns = int(d["columns"])
        if columns < K_MIN:
            raise ValueError("dense pool too small")
        s = cls.build(int(d["n0"]), columns, p, int(d["seed"], 16), rows)
        if s.frozen or len(s.rows) != len(rows):
            raise ValueError("dense rows do not replay to the recorded state")
        s.frozen = bool(d["frozen"])
        s.history, s.counts, s.denials = int(d["history"]), int(d["counts"]), int(d["denials"])
        return s
