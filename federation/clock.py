"""The node's clock: one reading per request, injected (STYLE principle 15).

Everything in an exchange that depends on the time — the policy input, the
ledger entry's ``time``, credential validity, trust decay — uses the one
``datetime`` read from :class:`Clock` when the request arrived, so that a
decision and its ledger entry agree and tests can drive time.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock", "now_utc", "rfc3339"]


class Clock(Protocol):
    """A source of wall-clock and monotonic time."""

    def now(self) -> dt.datetime:
        """The current time: timezone-aware UTC, whole seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes back (cache ages, TTLs)."""
        ...


class SystemClock:
    """The operating system's clock."""

    def now(self) -> dt.datetime:  # noqa: D102
        return now_utc()

    def monotonic(self) -> float:  # noqa: D102
        return time.monotonic()


def now_utc() -> dt.datetime:
    """The current time, UTC, second precision."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def rfc3339(t: dt.datetime) -> str:
    """RFC 3339 UTC string with a ``Z`` suffix (RFC 3339 §5.6), whole seconds."""
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
