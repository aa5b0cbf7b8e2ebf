"""Independent exact oracle for the auditor tests (Gaussian elimination over Q).

Written separately from ``policy.auditor`` (which works modulo a prime, in
atom coordinates, incrementally) so that the two can disagree.
"""

from __future__ import annotations

from fractions import Fraction


def rational_rank(rows: list[list[Fraction]]) -> int:
    """Plain Gaussian elimination over Q (fractions), written for the tests."""
    m = [list(r) for r in rows]
    rank = 0
    ncols = len(m[0]) if m else 0
    for col in range(ncols):
        piv = next((i for i in range(rank, len(m)) if m[i][col] != 0), None)
        if piv is None:
            continue
        m[rank], m[piv] = m[piv], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][col] != 0:
                f = m[i][col] / m[rank][col]
                m[i] = [a - f * b for a, b in zip(m[i], m[rank], strict=True)]
        rank += 1
    return rank


def discloses(history: list[frozenset[int]], n: int) -> set[int]:
    """Records i with e_i in the rational row space of the indicator vectors."""
    rows = [[Fraction(int(i in q)) for i in range(n)] for q in history]
    if not rows:
        return set()
    r = rational_rank(rows)
    out = set()
    for i in range(n):
        e = [Fraction(int(j == i)) for j in range(n)]
        if rational_rank([*rows, e]) == r:
            out.add(i)
    return out


def test_oracle_on_known_cases():
    assert rational_rank([[Fraction(1), Fraction(1)], [Fraction(2), Fraction(2)]]) == 1
    assert discloses([frozenset({0, 1, 2}), frozenset({1, 2})], 3) == {0}
    assert discloses([frozenset({0, 1}), frozenset({1, 2}), frozenset({0, 2})], 3) == {0, 1, 2}
    assert discloses([frozenset({0, 1}), frozenset({2, 3})], 4) == set()
