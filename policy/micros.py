"""Conversions of trust, sensitivity and budget values to integer micro-units.

The base policy (Rego) compares and sums integers: 1.0 = ``MICROS`` micro-units.
Every conversion from a float rounds *against the requester* (issue #18.3):

- what the requester is charged or must reach rounds **up** (:func:`micros_up`):
  a field's ``sensitivity``, a field's ``min_trust``, the budget already used;
- what the requester is granted rounds **down** (:func:`micros_down`): its
  effective trust τ, the contract's ``trust_ceiling``, the budget's ``units``.

The float is read as the shortest decimal that round-trips to it (``repr``),
which is the number an author wrote in a contract (``0.29`` is 290000 micro-units,
not the 289999.99… of its binary value); that decimal is then rounded in the
stated direction, exactly (no epsilon slack). So a charge of 0.0000005 units
costs 1 micro-unit (never 0), and τ = 0.7499996 is 749999 micro-units, below a
``min_trust`` of 0.75.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

__all__ = ["MICROS", "micros_down", "micros_up"]

#: Micro-units per unit (1.0 = 1 000 000).
MICROS = 1_000_000


def _decimal(value: float | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if isinstance(value, int):
        return Decimal(value)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return Decimal(repr(value))


def micros_up(value: float | int) -> int:
    """Return ``value`` in micro-units rounded up (toward +∞): for charges and thresholds.

    Args:
        value: a finite int or float, in units.

    Raises:
        ValueError: ``value`` is not a finite number (bool excluded).
    """
    return int((_decimal(value) * MICROS).to_integral_value(rounding=ROUND_CEILING))


def micros_down(value: float | int) -> int:
    """Return ``value`` in micro-units rounded down (toward −∞): for trust and allowances.

    Args:
        value: a finite int or float, in units.

    Raises:
        ValueError: ``value`` is not a finite number (bool excluded).
    """
    return int((_decimal(value) * MICROS).to_integral_value(rounding=ROUND_FLOOR))
