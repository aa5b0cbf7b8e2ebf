"""docs/threat-model.md names only tests that exist, and maps every threat of the seeds' taxonomy.

Every ``tests/….py`` and ``tests/….py::test_name`` written in the page is
looked up: the file must exist and define that function (parsed with
``ast``, nothing imported). A ``::test_name`` without a file refers to the
last file named before it in the same table (same row first). A renamed or
deleted test fails here instead of leaving the page pointing at nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "threat-model.md"
#: a test name is an identifier: ``::1`` (IPv6 loopback, written in the page) is not one
REF = re.compile(r"(?<![\w/])(tests/[\w/]+\.py)(::[A-Za-z_][\w…]*)?|`(::[A-Za-z_][\w…]*)`")
#: the seeds' taxonomy and Ko et al.'s challenges (issue #15)
TAXONOMY = (
    "Identity and provenance",
    "Inter-agent prompt injection",
    "Leakage by contextual recall",
    "Transitive trust",
    "Telemetry blind spots",
    "Unsafe workflows and human-in-the-loop fatigue",
    "Memory poisoning",
    "Poisoning of shared context",
    "Misaligned incentives",
    "Prompt injection",
)


def references(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, file, test name or None)`` for each reference in table rows; ``…`` abbreviations skipped."""
    out: list[tuple[int, str, str | None]] = []
    last: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            last = None
            continue
        for m in REF.finditer(line):
            path, name = m.group(1), m.group(2) or m.group(3)
            if path:
                last = path
            if name and "…" in name:
                continue
            if path and not name:
                out.append((n, path, None))
            elif name:
                out.append((n, last or "?", name[2:]))
    return out


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_named_in_the_threat_model_exists():
    refs = references(PAGE.read_text())
    assert len(refs) > 100
    missing = []
    cache: dict[str, set[str] | None] = {}
    for line, file, name in refs:
        if file not in cache:
            cache[file] = _defined(ROOT / file) if (ROOT / file).is_file() else None
        if cache[file] is None or (name is not None and name not in cache[file]):
            missing.append(f"line {line}: {file}{'::' + name if name else ''}")
    assert not missing, "\n".join(missing)


def test_every_threat_of_the_taxonomy_has_a_row_with_a_named_test():
    rows = [
        line
        for line in PAGE.read_text().split("## The seeds' taxonomy, threat by threat")[1].splitlines()
        if line.startswith("| **")
    ]
    for threat in TAXONOMY:
        row = next((r for r in rows if r.startswith(f"| **{threat}**")), None)
        assert row is not None, threat
        control, tests = row.split(" | ")[1:3]
        assert control.strip() and re.search(r"tests/[\w/]+\.py::test_\w+", tests), threat


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("| a | `tests/x.py::test_a`, `::test_b` |", [("tests/x.py", "test_a"), ("tests/x.py", "test_b")]),
        ("| a | `tests/x.py` |\n| b | `::test_c` |", [("tests/x.py", None), ("tests/x.py", "test_c")]),
        ("| a | `tests/x.py` |\n\n| b | `::test_c` |", [("tests/x.py", None), ("?", "test_c")]),
        ("| a | `interop_tests/misbehaving.py`, `…_suites` |", []),
    ],
)
def test_reference_parsing(text, expected):
    assert [(f, n) for _, f, n in references(text)] == expected
