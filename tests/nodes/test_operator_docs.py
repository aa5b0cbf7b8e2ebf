"""The operator documentation names only commands and options that exist.

Every ``accord NOUN VERB [--option ...]`` written in docs/operator-guide.md and
docs/quickstart.md is looked up in the real Typer application: the command
must exist and every ``--option`` after it on the same line must be one of its
parameters. A renamed command or option fails here instead of in an operator's shell.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("operator-guide.md", "quickstart.md", "agents.md")
COMMAND = re.compile(r"accord((?: [a-z][a-z0-9-]*)+)((?: [^`|\n]*)?)")


def _is_group(cmd) -> bool:
    """A group that needs a subcommand (``accord console`` runs by itself: not one of these)."""
    return hasattr(cmd, "commands") and not getattr(cmd, "invoke_without_command", False)


def _cli():
    from federation.cli.main import app

    return typer.main.get_command(app)


def _mentions(page: str) -> list[tuple[int, list[str], list[str]]]:
    out = []
    for n, line in enumerate((DOCS / page).read_text().splitlines(), 1):
        for m in COMMAND.finditer(line):
            words = m.group(1).split()
            rest = m.group(2)
            out.append((n, words, re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest)))
    return out


@pytest.mark.parametrize("page", PAGES)
def test_documented_commands_and_options_exist(page):
    root = _cli()
    checked = 0
    for n, words, options in _mentions(page):
        cmd = root
        path = []
        for w in words:
            if not _is_group(cmd) or w not in cmd.commands:
                break
            cmd = cmd.commands[w]
            path.append(w)
        if not path:
            continue  # prose such as "accord is ..." or a package name
        assert not _is_group(cmd), f"{page}:{n}: accord {' '.join(words)} is not a command"
        known = {o for p in cmd.params for o in p.opts} | {"--help"}
        for opt in options:
            assert opt in known, f"{page}:{n}: accord {' '.join(path)} has no {opt}"
        checked += 1
    assert checked >= 10


def test_lifecycle_commands_are_documented():
    text = (DOCS / "operator-guide.md").read_text()
    for command in ("node stop", "node migrate", "peer remove", "ledger status", "--version", "/readyz", "/healthz"):
        assert command in text
