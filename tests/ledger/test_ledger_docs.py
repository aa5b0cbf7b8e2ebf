"""Docs generated from code stay in sync; architecture rules hold."""

from __future__ import annotations

import ast
from pathlib import Path

from ledger.commit import TRANSITIONS, CommitState, commit_state, transition_table_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_transition_table_is_generated_from_code():
    text = (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
    block = text.split("<!-- BEGIN TRANSITIONS -->\n")[1].split("<!-- END TRANSITIONS -->")[0]
    assert block == transition_table_markdown()


def test_transition_table_is_a_chain_over_all_states():
    assert [t[2] for t in TRANSITIONS] == list(CommitState)
    assert [t[0] for t in TRANSITIONS[1:]] == list(CommitState)[:-1]
    marks = dict(integrated_size=6, checkpoint_size=4, witnessed_size=2)
    assert [commit_state(i, **marks) for i in (1, 3, 5, 6)] == [
        CommitState.WITNESSED,
        CommitState.CHECKPOINTED,
        CommitState.INTEGRATED,
        CommitState.SEQUENCED,
    ]


def test_ledger_imports_no_grpc_federation_or_sibling_packages():
    forbidden = {"grpc", "federation", "credentials", "policy"}
    for path in (ROOT / "ledger").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path}: imports {name}"
