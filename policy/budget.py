"""Trust-budget accounting: sensitivity units spent per sliding window.

Each contract's ``trust_budget`` allows ``units`` of beyond-MNI sensitivity
per ``window_seconds`` for each requester organization. The node charges
``Decision.budget_spent`` after an allowed disclosure and passes
:meth:`BudgetLedger.spent` as ``DecisionInput.budget_used``. The same
sliding-window sum counts requests for a contract's ``rate_limit``
(charge 1 unit per decision; ``spent`` is then ``recent_requests``).

Every approximation here errs against the requester (issues #10.2, #18.3):

- charges are kept in integer micro-units, rounded **up**
  (:func:`policy.micros.micros_up`): 0.0000005 units cost 1 micro-unit;
- a charge is filed at the end of its time slot (``ceil(t / slot) · slot``),
  so it stays in a window up to one slot longer, never shorter; charges
  stamped later than ``now`` (the clock went back) still count;
- state is bounded: at most ``max_keys`` keys, and at most
  ``max_slots_per_key`` slots per key. A key whose slots overflow doubles
  its slot width (merging neighbours onto the later time); charges older
  than the longest window ever asked for the key (or ``retention_seconds``)
  are dropped. A new key past ``max_keys`` may only take the place of a key
  with nothing left in its windows; otherwise :meth:`BudgetLedger.admit`
  refuses it (``BUDGET_KEYS_EXHAUSTED``): a spent key is never evicted, so it
  can never reset to a full budget.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from policy.contract import TrustBudget
from policy.errors import PolicyError
from policy.micros import MICROS, micros_up

__all__ = ["BudgetKey", "BudgetLedger", "BudgetKeysExhaustedError", "BudgetStateError"]

#: (contract id, requester org DID)
BudgetKey = tuple[str, str]

_DEFAULT_RETENTION = 30 * 24 * 3600.0


class BudgetStateError(PolicyError):
    """A charge, a window or a persisted ledger is malformed."""

    reason = "BUDGET_STATE_INVALID"
    caller_fault = True


class BudgetKeysExhaustedError(BudgetStateError):
    """The ledger tracks ``max_keys`` keys, each with charges still in a window."""

    reason = "BUDGET_KEYS_EXHAUSTED"
    caller_fault = False


def _ts(now: datetime) -> float:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise BudgetStateError("now must be a timezone-aware datetime")
    return now.timestamp()


@dataclass
class _Slots:
    slot: float  # seconds per slot
    horizon: float  # longest window asked for this key (seconds)
    charges: deque[list[Any]] = field(default_factory=deque)  # [slot end (Unix s), micro-units]

    def requantize(self) -> None:
        merged: deque[list[Any]] = deque()
        for t, u in self.charges:
            end = math.ceil(t / self.slot) * self.slot
            if merged and merged[-1][0] >= end:
                merged[-1][1] += u
            else:
                merged.append([end, u])
        self.charges = merged


class BudgetLedger:
    """Sliding-window sums of charges per (contract id, requester org). Thread-safe.

    Args:
        retention_seconds: longest window ever asked (default 30 days); also the
            horizon of a key no window was asked for yet.
        max_keys: keys tracked at most (default 10000).
        max_slots_per_key: slots kept per key before its slot width doubles
            (default 4096).
        slot_seconds: initial slot width (default 1 s).

    Raises:
        BudgetStateError: a parameter is out of range.
    """

    def __init__(
        self,
        *,
        retention_seconds: float = _DEFAULT_RETENTION,
        max_keys: int = 10_000,
        max_slots_per_key: int = 4096,
        slot_seconds: float = 1.0,
    ) -> None:
        if not (isinstance(retention_seconds, int | float) and math.isfinite(retention_seconds)) or not (
            retention_seconds > 0
        ):
            raise BudgetStateError("retention_seconds must be > 0")
        for name, v in (("max_keys", max_keys), ("max_slots_per_key", max_slots_per_key)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise BudgetStateError(f"{name} must be an int >= 2")
        if not (isinstance(slot_seconds, int | float) and 0 < slot_seconds <= retention_seconds):
            raise BudgetStateError("slot_seconds must be in (0, retention_seconds]")
        self.retention_seconds = float(retention_seconds)
        self.max_keys = max_keys
        self.max_slots_per_key = max_slots_per_key
        self.slot_seconds = float(slot_seconds)
        self._keys: dict[BudgetKey, _Slots] = {}
        self._dirty: set[BudgetKey] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ bounds

    @staticmethod
    def _check_key(key: Any) -> BudgetKey:
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) and k for k in key)):
            raise BudgetStateError("key must be (contract_id, requester_org)")
        return key

    def _slots(self, key: BudgetKey, t: float, *, create: bool) -> _Slots | None:
        s = self._keys.get(key)
        if s is not None or not create:
            return s
        if len(self._keys) >= self.max_keys:
            # only a key with nothing left in any window it was asked about may go
            for k, other in list(self._keys.items()):
                self._prune_h(other, t)
                if not other.charges:
                    del self._keys[k]
                    self._dirty.add(k)
                    break
            else:
                raise BudgetKeysExhaustedError(
                    f"budget ledger tracks {self.max_keys} keys, all with charges in their windows",
                    metadata={"contract_id": key[0]},
                )
        s = self._keys[key] = _Slots(slot=self.slot_seconds, horizon=0.0)  # 0: no window asked yet
        return s

    def _horizon(self, s: _Slots) -> float:
        return s.horizon if s.horizon > 0 else self.retention_seconds

    def admit(self, key: BudgetKey, *, now: datetime) -> None:
        """Make sure ``key`` can be charged at ``now`` (call before deciding).

        Raises:
            BudgetKeysExhaustedError: the ledger is full of keys still spending.
            BudgetStateError: malformed key or naive ``now``.
        """
        self._check_key(key)
        t = _ts(now)
        with self._lock:
            self._slots(key, t, create=True)

    # ------------------------------------------------------------ charging

    def charge(self, key: BudgetKey, units: float, *, now: datetime) -> None:
        """Record ``units`` (≥ 0, finite) spent at ``now``, rounded up to micro-units.

        Raises:
            BudgetStateError: negative/non-finite units, malformed key or naive ``now``.
            BudgetKeysExhaustedError: ``key`` is new and the ledger is full (see :meth:`admit`).
        """
        if (
            isinstance(units, bool)
            or not isinstance(units, int | float)
            or not (math.isfinite(units) and units >= 0)
        ):
            raise BudgetStateError(f"units must be finite and >= 0, got {units!r}")
        self._check_key(key)
        t = _ts(now)
        micros = micros_up(units)
        if micros == 0:
            return
        with self._lock:
            s = self._slots(key, t, create=True)
            assert s is not None
            end = math.ceil(t / s.slot) * s.slot
            if s.charges and s.charges[-1][0] >= end:
                s.charges[-1][1] += micros  # same slot, or the clock went back: file it later
            else:
                s.charges.append([end, micros])
            self._prune_h(s, t)
            while len(s.charges) > self.max_slots_per_key:
                s.slot *= 2
                s.requantize()
            self._dirty.add(key)

    def refund(self, key: BudgetKey, units: float) -> int:
        """Take back up to ``units`` (≥ 0, finite) from the key's latest charges (issue #15).

        For a decision whose release did not happen (a request held for an
        operator's approval): the budget pays only for what crosses.

        Returns:
            The micro-units taken back (at most what was charged).

        Raises:
            BudgetStateError: negative/non-finite units or a malformed key.
        """
        if (
            isinstance(units, bool)
            or not isinstance(units, int | float)
            or not (math.isfinite(units) and units >= 0)
        ):
            raise BudgetStateError(f"units must be finite and >= 0, got {units!r}")
        self._check_key(key)
        left = micros_up(units)
        back = 0
        with self._lock:
            s = self._keys.get(key)
            if s is None:
                return 0
            for slot in reversed(s.charges):
                take = min(left, slot[1])
                slot[1] -= take
                left -= take
                back += take
                if not left:
                    break
            kept = [c for c in s.charges if c[1] > 0]
            s.charges.clear()
            s.charges.extend(kept)
            self._dirty.add(key)
        return back

    def spent_micros(self, key: BudgetKey, *, window_seconds: float, now: datetime) -> int:
        """Micro-units charged in the window ``(now - window_seconds, ∞)`` (later stamps count too).

        Raises:
            BudgetStateError: window not in (0, retention_seconds] or naive ``now``.
        """
        if (
            isinstance(window_seconds, bool)
            or not isinstance(window_seconds, int | float)
            or not (0 < window_seconds <= self.retention_seconds)
        ):
            raise BudgetStateError(
                f"window_seconds must be in (0, {self.retention_seconds}], got {window_seconds!r}"
            )
        t = _ts(now)
        lo = t - window_seconds
        with self._lock:
            s = self._keys.get(key)
            if s is None:
                return 0
            if window_seconds > s.horizon:
                if s.horizon == 0:
                    # first window asked: slots fine enough for it (a finer slot than the
                    # last charge's only files later charges into that later slot)
                    fine = max(self.slot_seconds, 2 * window_seconds / self.max_slots_per_key)
                    s.slot = min(s.slot, fine)
                s.horizon = float(window_seconds)
                self._dirty.add(key)
            return sum(u for (ts, u) in s.charges if ts > lo)

    def spent(self, key: BudgetKey, *, window_seconds: float, now: datetime) -> float:
        """Units charged in the window ``(now - window_seconds, ∞)``: :meth:`spent_micros` / 1e6.

        Raises:
            BudgetStateError: window not in (0, retention_seconds] or naive ``now``.
        """
        return self.spent_micros(key, window_seconds=window_seconds, now=now) / MICROS

    def remaining(self, key: BudgetKey, *, budget: TrustBudget, now: datetime) -> float:
        """``budget.units`` minus :meth:`spent` over ``budget.window_seconds``, floored at 0."""
        return max(0.0, budget.units - self.spent(key, window_seconds=budget.window_seconds, now=now))

    def prune(self, *, now: datetime) -> int:
        """Drop charges past every key's horizon and keys left empty; return keys dropped."""
        t = _ts(now)
        dropped = 0
        with self._lock:
            for k, s in list(self._keys.items()):
                before = len(s.charges)
                self._prune_h(s, t)
                if len(s.charges) != before:
                    self._dirty.add(k)
                if not s.charges:
                    del self._keys[k]
                    self._dirty.add(k)
                    dropped += 1
        return dropped

    def _prune_h(self, s: _Slots, t: float) -> None:
        lo = t - self._horizon(s)
        while s.charges and s.charges[0][0] <= lo:
            s.charges.popleft()

    def __len__(self) -> int:
        """Number of keys tracked."""
        with self._lock:
            return len(self._keys)

    # ------------------------------------------------------------ persistence

    @staticmethod
    def _row(key: BudgetKey, s: _Slots) -> dict[str, Any]:
        return {
            "contract_id": key[0],
            "requester": key[1],
            "slot_seconds": s.slot,
            "horizon_seconds": s.horizon,
            "charges": [[t, u] for t, u in s.charges],
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the whole ledger.

        Shape: ``{"retention_seconds", "keys": [{"contract_id", "requester",
        "slot_seconds", "horizon_seconds" (0: none asked yet), "charges":
        [[slot end (Unix seconds), micro-units], ...]}]}``.
        """
        with self._lock:
            keys = [self._row(k, s) for k, s in sorted(self._keys.items())]
        return {"retention_seconds": self.retention_seconds, "keys": keys}

    def take_dirty(self) -> dict[BudgetKey, dict[str, Any] | None]:
        """Return the rows of the keys changed since the last call and forget them.

        A key mapped to None was dropped (delete its row). If persisting fails,
        hand the keys back with :meth:`mark_dirty`.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            return {k: (self._row(k, self._keys[k]) if k in self._keys else None) for k in dirty}

    def key_row(self, key: BudgetKey) -> dict[str, Any] | None:
        """The persisted row of one key (shape as in :meth:`to_dict`), or None when it is not tracked.

        With :meth:`set_key_row`, lets several processes share one key's
        charges: read the row under a lock they share, load it, decide and
        charge, write this row back (the node's replicas, docs/architecture.md).
        """
        with self._lock:
            s = self._keys.get(self._check_key(key))
            return None if s is None else self._row(key, s)

    def set_key_row(self, key: BudgetKey, row: Mapping[str, Any] | None) -> None:
        """Replace what this ledger holds for ``key`` by ``row`` (None: forget the key).

        The key is not marked dirty (the row came from where it is persisted).

        Raises:
            BudgetStateError: malformed row, or a row for another key.
        """
        key = self._check_key(key)
        with self._lock:
            old = self._keys.pop(key, None)
            if row is None:
                return
            if (row.get("contract_id"), row.get("requester")) != key:
                if old is not None:
                    self._keys[key] = old
                raise BudgetStateError("row is for another key")
            try:
                self._load_row(row)
            except BudgetStateError:
                if old is not None:
                    self._keys[key] = old
                raise
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                if old is not None:
                    self._keys[key] = old
                raise BudgetStateError(f"malformed budget row: {exc}") from None

    def mark_dirty(self, keys: Iterable[BudgetKey]) -> None:
        """Mark ``keys`` changed again (after a failed write of :meth:`take_dirty` rows)."""
        with self._lock:
            self._dirty.update(keys)

    def _load_row(self, r: Mapping[str, Any]) -> None:
        key = self._check_key((r["contract_id"], r["requester"]))
        slot = float(r.get("slot_seconds", self.slot_seconds))
        horizon = float(r.get("horizon_seconds", 0.0))
        if not (math.isfinite(slot) and slot > 0 and math.isfinite(horizon) and horizon >= 0):
            raise ValueError("bad slot or horizon")
        s = _Slots(slot=slot, horizon=min(horizon, self.retention_seconds))
        pairs = sorted((float(t), int(u)) for t, u in r.get("charges", []))
        for t, u in pairs:
            if not (math.isfinite(t) and u >= 0):
                raise ValueError("bad charge")
        s.charges = deque([t, u] for t, u in pairs)
        s.requantize()
        while len(s.charges) > self.max_slots_per_key:
            s.slot *= 2
            s.requantize()
        if key in self._keys:
            raise ValueError(f"key {key!r} twice")
        self._keys[key] = s

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], **kwargs: Any) -> BudgetLedger:
        """Rebuild a ledger from :meth:`take_dirty` / :meth:`to_dict` key rows.

        Args:
            rows: key rows.
            **kwargs: the constructor's bounds.

        Raises:
            BudgetStateError: malformed row, or more keys than ``max_keys``.
        """
        led = cls(**kwargs)
        try:
            for r in rows:
                led._load_row(r)
        except BudgetStateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise BudgetStateError(f"malformed budget ledger: {exc}") from None
        if len(led._keys) > led.max_keys:
            raise BudgetStateError(f"persisted ledger has more than {led.max_keys} keys")
        return led

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetLedger:
        """Rebuild a ledger from :meth:`to_dict` output, or the earlier ``charges`` list form.

        The earlier form (``{"charges": [{"contract_id", "requester", "at",
        "units"}]}``) is converted with every charge rounded up to micro-units.

        Raises:
            BudgetStateError: malformed document.
        """
        try:
            retention = float(d.get("retention_seconds", _DEFAULT_RETENTION))
            if "keys" in d:
                return cls.from_rows(d["keys"], retention_seconds=retention)
            led = cls(retention_seconds=retention)
            grouped: dict[BudgetKey, list[list[Any]]] = {}
            for c in d.get("charges", []):
                units = float(c["units"])
                at = float(c["at"])
                if not (math.isfinite(units) and units >= 0 and math.isfinite(at)):
                    raise ValueError("bad charge")
                grouped.setdefault((str(c["contract_id"]), str(c["requester"])), []).append(
                    [at, micros_up(units)]
                )
            return cls.from_rows(
                [{"contract_id": k[0], "requester": k[1], "charges": v} for k, v in grouped.items()],
                retention_seconds=led.retention_seconds,
            )
        except BudgetStateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise BudgetStateError(f"malformed budget ledger: {exc}") from None
